"""Sessions: the clients, credentials and profiles of a set of endpoints, through which each case is sent.

`Session.open` finds what can be wrong with the endpoints before anything is sent; `Session.result` sends
one filled-in case (`sending`), builds its exchange (`exchanges`) and judges it (`judging`). The engine and
the fuzzer both send through a session.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import httpx

from .auth import GoogleAuth, auth_for
from .checks import root
from .clients import read_all as read_clients
from .clients import warm as warm_clients
from .endpoints import Endpoint
from .errors import HarnessError
from .judging import judge, judge_steps, value_missing
from .models import Exchange, Finding, Result, StepResult, Verdict
from .planning import Planned, step_of
from .pointer import MISSING, join, resolve
from .profiles import Profile, load_profile
from .recordings import Recording
from .redact import Redactor
from .sending import Options, send
from .transport import EnvironmentTransport, NoRecording, RecordingTransport, ReplayTransport

__all__ = ["Session"]


class _NoCookies(http.cookiejar.CookieJar):
    """A jar that keeps nothing: a cookie one answer sets is not sent with the requests after it, so each case's
    request is what its file says whatever ran before it (httpx has no switch for this)."""

    def extract_cookies(self, response: object, request: object) -> None:
        pass

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        pass


class Session:
    """Open clients, profiles and the redactor for a set of endpoints: what `run` and the fuzzer send through.

    Opening it finds everything that can be wrong with the endpoints (profiles, credentials, a credential
    that cannot mint a token) before the first request, and raises a `HarnessError`.
    """

    def __init__(self, options: Options, redactor: Redactor) -> None:
        self.options = options
        self.redactor = redactor
        self.clients: dict[str, httpx.AsyncClient] = {}
        self.profiles: dict[str, Profile] = {}
        self._semaphore = asyncio.Semaphore(max(1, options.concurrency))

    @classmethod
    async def open(
        cls,
        endpoints: list[Endpoint],
        options: Options | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        record: Path | None = None,
        replay: dict[tuple[str, str], Recording] | None = None,
    ) -> Session:
        environ = os.environ if environ is None else environ
        options = options or Options()
        session = cls(options, Redactor(options.extra_secrets))
        redactor = session.redactor
        problems = []
        for endpoint in endpoints:
            try:
                session.profiles[endpoint.name] = load_profile(endpoint.profile)
                auth, secrets = (None, []) if replay is not None else auth_for(endpoint, environ, redactor.add)
                if isinstance(auth, GoogleAuth):
                    await auth.token()  # a credential that cannot mint a token stops the run before anything is sent
            except HarnessError as exc:
                problems += exc.problems
                continue
            for secret in (*secrets, *endpoint.secret_headers()):
                redactor.add(secret)
            limit = endpoint.timeout or options.timeout
            sender: httpx.AsyncBaseTransport | None = transport
            if replay is not None:
                sender = ReplayTransport(replay, redactor)
            elif record is not None:
                sender = RecordingTransport(transport or EnvironmentTransport(), record, redactor)
            client = httpx.AsyncClient
            if sender is None:
                from .network import NetworkClient  # aiohttp is loaded only for a live run

                client = NetworkClient
            session.clients[endpoint.name] = client(
                auth=auth,
                timeout=httpx.Timeout(limit, connect=min(10.0, limit)),
                transport=sender,
                follow_redirects=False,
                cookies=_NoCookies(),
                # A live run goes through HTTPS_PROXY/HTTP_PROXY except for NO_PROXY hosts, as httpx does by
                # default, since corporate networks reach endpoints only that way; a replay reads nothing from
                # the environment. httpx ignores these variables when it is given a transport (tests' mocks).
                trust_env=replay is None,
            )
        if problems:
            await session.aclose()
            raise HarnessError(problems)
        if session.options.clients:
            warm_clients()  # the official SDKs load before the first answer, not inside a timed run
        return session

    async def result(self, item: Planned, plain: Exchange | None = None) -> Result:
        """Send one filled-in case and judge the answer by its endpoint's profile.

        `plain` is the plain answer to the same case when this is the streamed run of a both-ways case: the
        checks then also compare the two.
        """
        case = item.case
        skipped = Result(
            case_id=case.id,
            endpoint=item.endpoint.name,
            verdict=Verdict.SKIP,
            file=case.file,
            line=case.line,
            title=case.title,
            tags=case.tags,
            variables=item.variables,
            mode=item.mode,
        )
        try:
            async with self._semaphore:
                exchange = await send(self.clients[item.endpoint.name], item, self.options, self.redactor)
        except NoRecording as exc:
            return replace(skipped, reason=f"{exc} (record it with --record)")
        # The official SDKs read the answer first, awaited: the event loop serves other exchanges meanwhile.
        clients = await read_clients(exchange) if self.options.clients else {}  # {}: no SDK read, none checked
        verdict, findings = judge(exchange, case, self.profiles[item.endpoint.name], plain=plain, clients=clients)
        return replace(skipped, verdict=verdict, findings=findings, exchange=exchange)

    async def conversation(self, item: Planned) -> Result:
        """Send the steps of a multi-step case in order, each judged as a case is, and weigh them into one result.

        A step that could not be completed, or whose answer lacks a value a later step uses, ends the case there:
        what the later steps would send is not known. Each finding's pointer starts with `/steps/ID`.
        """
        saved: dict[str, dict[str, object]] = {}
        outcomes: list[StepResult] = []
        findings: list[Finding] = []
        last: Result | None = None
        for step in item.case.steps:
            last = await self.result(step_of(item, step, saved))
            if last.verdict is Verdict.SKIP:
                return replace(last, case_id=item.case.id, reason=f"step {step.id!r}: {last.reason}", steps=())
            outcomes.append(StepResult(step.id, last.verdict, last.exchange))
            findings += [replace(f, pointer=join("/steps", step.id) + f.pointer) for f in last.findings]
            if last.verdict is Verdict.ERROR or last.exchange is None:
                break
            answer = last.exchange.answer()
            values = {name: resolve(answer, pointer) for name, pointer in step.save.items()}
            missing = [
                value_missing(step.id, name, step.save[name], root(last.exchange))
                for name, value in values.items()
                if value is MISSING
            ]
            if missing:
                findings += [f for f in (self.profiles[item.endpoint.name].judge(m) for m in missing) if f]
                break
            saved[step.id] = values
        assert last is not None  # a multi-step case has at least one step (the case schema says so)
        steps = tuple(outcomes)
        return replace(
            last,
            case_id=item.case.id,
            verdict=judge_steps(steps, tuple(findings)),
            findings=tuple(findings),
            title=item.case.title,
            steps=steps,
        )

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
