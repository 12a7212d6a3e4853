"""Running cases against endpoints: build each request, send it, keep the exchange, check it, judge it.

Sending is async with bounded concurrency, a connect timeout, read timeouts by phase (the first byte, which
may wait in a busy server's queue, then the gaps in a stream), a per-case deadline and bounded retries
of 429/503 that honour Retry-After. Every httpx failure is mapped to a `transport.<kind>` finding in one
function, so a broken endpoint yields an `error` verdict and the run goes on. Checks never see a secret:
the exchange is redacted as it is built.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import os
import time
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from . import __version__
from .auth import GoogleAuth, auth_for
from .cases import Case, fill
from .checks import INTERNAL_CODE, CheckContext, run_checks
from .checks.stream import plain_contradictions
from .endpoints import Endpoint
from .errors import CaseFileError, HarnessError
from .models import (
    Exchange,
    Finding,
    HttpResponse,
    Result,
    SentRequest,
    Severity,
    Stream,
    Timings,
    TransportError,
    Verdict,
)
from .pointer import MISSING
from .profiles import Profile, load_profile
from .recordings import Recording
from .redact import Redactor
from .streams import read_stream
from .transport import (
    EXTENSION,
    RECORDED_TIMINGS,
    EnvironmentTransport,
    NoRecording,
    RecordingTransport,
    ReplayTransport,
    StaleRecording,
)

__all__ = ["Options", "Outgoing", "Planned", "Session", "build_request", "compare", "judge", "outgoing", "plan"]

RETRY_STATUSES = (429, 503)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Options:
    """How to send: the knobs a user sets with flags."""

    concurrency: int = 4
    timeout: float = 60.0
    deadline: float = 180.0
    retries: int = 2
    max_response_bytes: int = 16 * 1024 * 1024
    stream_idle_timeout: float = 30.0
    extra_secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Planned:
    """A case filled in for one endpoint, ready to send."""

    case: Case
    endpoint: Endpoint
    variables: dict[str, str] = field(default_factory=dict)
    mode: str = ""

    @property
    def key(self) -> str:
        """The case's name in recordings: its id, with `.stream` for the streamed run of a both-ways case."""
        return f"{self.case.id}.{self.mode}" if self.mode else self.case.id


class _TooLarge(Exception):
    pass


class _Silence(Exception):
    """Nothing arrived within a limit the runner keeps itself; `phase` says which limit ran out.

    Phases: `first` (not one byte of the answer), `headers` (its headers, then nothing), `stream` (a stream
    that had started went quiet), `body` (a plain answer that had started went quiet).
    """

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"no data in the {phase} phase for {seconds:g} s")
        self.phase = phase
        self.seconds = seconds


async def _within(seconds: float, phase: str, awaitable: Awaitable[_T]) -> _T:
    """`awaitable`, or `_Silence` after `seconds`; the case's deadline around it still wins when it comes first."""
    timer = asyncio.timeout(seconds)
    try:
        async with timer:
            return await awaitable
    except TimeoutError:
        if timer.expired():
            raise _Silence(phase, seconds) from None
        raise


class _FirstByte:
    """The wait for an answer's first byte, counted from when the request was written.

    httpx has one read timeout for a whole answer, but a stream needs two: a request queued at a server whose
    slots are busy waits long for its first byte, then its events come quickly. So the runner times reads
    itself. httpcore's `trace` extension says when the request has been written; a transport that does not
    trace (replay, mocks) gets the connect limit on top, so a slow connection still ends as `connect`.
    """

    def __init__(self, seconds: float, connect: float) -> None:
        self.seconds = seconds
        self._connect = connect
        self._timer: asyncio.Timeout | None = None

    async def trace(self, name: str, info: Mapping[str, Any]) -> None:
        timer = self._timer
        if timer is not None and not timer.expired() and name.endswith(".send_request_body.complete"):
            timer.reschedule(asyncio.get_running_loop().time() + self.seconds)

    async def response(self, sending: Awaitable[httpx.Response]) -> httpx.Response:
        timer = self._timer = asyncio.timeout(self._connect + self.seconds)
        try:
            async with timer:
                return await sending
        except TimeoutError:
            if timer.expired():
                raise _Silence("first", self.seconds) from None
            raise
        finally:
            self._timer = None


def build_request(case: Case, endpoint: Endpoint) -> tuple[dict[str, str], bytes]:
    """The headers and body bytes for a filled-in case (credentials are added later, by the auth flow)."""
    headers = {
        "content-type": "application/json",
        "accept": "application/json",
        "user-agent": f"chat-conformance/{__version__}",
    }
    headers.update({k.lower(): v for k, v in endpoint.headers.items()})
    headers.update({k.lower(): v for k, v in case.headers.items()})
    if case.raw_body is not None:
        return headers, case.raw_body.encode("utf-8")
    return headers, json.dumps(case.request, ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A request as the harness sends it, before the auth flow adds the credential."""

    method: str
    url: str
    headers: dict[str, str]
    content: bytes


def outgoing(planned: Planned) -> Outgoing:
    """The request a filled-in case becomes, built in one place so that `--dry-run` prints what a run sends."""
    headers, content = build_request(planned.case, planned.endpoint)
    if _is_stream(planned):
        headers["accept"] = "text/event-stream"
    return Outgoing(method="POST", url=planned.endpoint.url, headers=headers, content=content)


def plan(cases: Iterable[Case], endpoints: Iterable[Endpoint], environ: Mapping[str, str]) -> list[Planned]:
    """Fill every case for every endpoint up front, so an unknown placeholder stops the run before anything is sent."""
    planned: list[Planned] = []
    problems = []
    for endpoint in endpoints:
        variables = endpoint.placeholders()
        for case in cases:
            try:
                filled = fill(case, variables, environ)
            except CaseFileError as exc:
                problems += exc.problems
                continue
            used = {
                k: v
                for k, v in variables.items()
                if v is not None and f"${{{k}}}" in json.dumps([case.request, case.raw_body, case.headers])
            }
            if filled.both_ways and isinstance(filled.request, dict):
                plain = {k: v for k, v in filled.request.items() if k not in ("stream", "stream_options")}
                planned.append(Planned(replace(filled, request=plain), endpoint, used))
                planned.append(Planned(replace(filled, request={**plain, "stream": True}), endpoint, used, "stream"))
            else:
                planned.append(Planned(filled, endpoint, used))
    if problems:
        unique = list(dict.fromkeys(problems))
        raise CaseFileError(unique)
    return planned


def _map_transport_error(
    exc: BaseException, options: Options, limit: float | None = None, flag: str = "--timeout"
) -> TransportError:
    """The one place an exception from sending becomes a finding kind, with a message naming what to change.

    `limit` is the endpoint's wait for data (`--timeout`, or its own `timeout`, which `flag` names).
    """
    limit = options.timeout if limit is None else limit
    if isinstance(exc, _TooLarge):
        return TransportError(
            "too_large", f"the response is larger than --max-response-bytes ({options.max_response_bytes} bytes)"
        )
    if isinstance(exc, _Silence):
        return TransportError("timeout", _silence_message(exc, options, flag))
    if isinstance(exc, TimeoutError):
        return TransportError(
            "deadline",
            f"the case did not finish within its deadline of {options.deadline:g} s, retries included; "
            "raise --deadline for an endpoint this slow",
        )
    if isinstance(exc, httpx.ConnectTimeout):
        return TransportError(
            "connect",
            f"timed out connecting ({type(exc).__name__}); on a network that needs a proxy, set HTTPS_PROXY "
            "or HTTP_PROXY",
        )
    if isinstance(exc, httpx.ConnectError):
        return TransportError("connect", f"cannot connect: {exc or type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return TransportError("timeout", f"no progress for {limit:g} s ({type(exc).__name__}); raise {flag}")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return TransportError(
            "reset", f"the connection was closed before the answer was complete: {exc or type(exc).__name__}"
        )
    return TransportError("protocol", f"{type(exc).__name__}: {exc}")


def _silence_message(silence: _Silence, options: Options, flag: str) -> str:
    """What a timeout means in its phase: before the first byte the request was most likely queued."""
    seconds = f"{silence.seconds:g} s"
    if silence.phase == "stream":
        return (
            f"the stream stalled: no data for {seconds} after it had started; raise --stream-idle-timeout if the "
            "endpoint pauses this long between events"
        )
    if silence.phase == "body":
        return f"the answer stalled: no data for {seconds} after it had started; raise {flag} for an endpoint this slow"
    what = "not one byte of the answer came" if silence.phase == "first" else "the headers came, then no data"
    return (
        f"{what} within {seconds} of sending ({flag}); a server whose slots are all busy queues requests, "
        f"so lower --concurrency (now {options.concurrency}) or raise {flag}"
    )


def _decode(raw: bytes, content_type: str) -> tuple[str, Any, str | None]:
    """(text, parsed JSON or MISSING, why it is not JSON)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return raw.decode("utf-8", errors="replace"), MISSING, f"it is not valid UTF-8 (byte {exc.start})"
    if not text.strip():
        return text, MISSING, "it is empty"

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return text, json.loads(text, parse_constant=reject_constant), None
    except ValueError as exc:
        lowered = text.lstrip()[:200].lower()
        if "html" in content_type or lowered.startswith(("<!doctype html", "<html")):
            return text, MISSING, "it is an HTML page"
        return text, MISSING, f"it does not parse ({exc})"


def _retry_delay(response: httpx.Response, attempt: int) -> float:
    value: str | None = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, (parsed - datetime.now(parsed.tzinfo)).total_seconds())
    return 0.5 * 2.0**attempt


class _Reading:
    """What has arrived so far: kept even when the connection fails half-way, so a truncated answer is shown."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.http_version = "HTTP/1.1"
        self.chunks: list[tuple[float, bytes]] = []
        self.size = 0
        self.ttfb: float | None = None
        self.total: float | None = None
        self.recorded: dict[str, Any] | None = None


def _is_stream(planned: Planned) -> bool:
    return bool(isinstance(planned.case.request, dict) and planned.case.request.get("stream") is True)


async def _exchange(client: httpx.AsyncClient, planned: Planned, options: Options, redactor: Redactor) -> Exchange:
    sending = outgoing(planned)
    headers, content = sending.headers, sending.content
    case = planned.case
    streaming = _is_stream(planned)
    started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sent_headers: list[tuple[str, str]] = list(headers.items())
    body = redactor.value(case.request) if case.raw_body is None else None
    raw = redactor.text(case.raw_body) if case.raw_body is not None else None
    meta = {"case": planned.key, "case_file": case.file, "endpoint": _describe(planned.endpoint)}
    limit = planned.endpoint.timeout or options.timeout
    flag = "--timeout" if planned.endpoint.timeout is None else "the endpoint's `timeout`"
    connect = min(10.0, limit)
    # Reads are timed below, by phase: the first byte within `limit` (the request may wait in the server's
    # queue), then a stream's events within the idle timeout, and a plain answer's bytes within `limit`.
    timeout = httpx.Timeout(limit, connect=connect, read=None)
    between = options.stream_idle_timeout if streaming else limit
    reading = _Reading()
    error: TransportError | None = None
    attempt = 0
    resent = False
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(options.deadline):
            while True:
                attempt += 1
                reading = _Reading()  # a retried answer replaces the one before
                t0 = time.perf_counter()
                first_byte = _FirstByte(limit, connect)
                request = client.build_request(
                    sending.method,
                    sending.url,
                    headers=headers,
                    content=content,
                    extensions={EXTENSION: meta, "trace": first_byte.trace},
                    timeout=timeout,
                )
                try:
                    response = await first_byte.response(client.send(request, stream=True))
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                    if resent:
                        raise
                    # A kept-alive connection the server closed as we reused it fails before any answer:
                    # send once more on a fresh one. A server that drops this request every time still fails.
                    resent = True
                    continue
                try:
                    reading.ttfb = (time.perf_counter() - t0) * 1000
                    reading.status = response.status_code
                    reading.headers = list(response.headers.items())
                    reading.http_version = response.http_version
                    sent_headers = list(response.request.headers.items())
                    if response.status_code in RETRY_STATUSES and attempt <= options.retries:
                        delay = _retry_delay(response, attempt)
                        await response.aclose()
                        await asyncio.sleep(delay)
                        continue
                    recorded = response.extensions.get(RECORDED_TIMINGS)
                    reading.recorded = recorded if isinstance(recorded, dict) else None
                    chunks = response.aiter_bytes()
                    while True:
                        if reading.chunks:  # the answer has started
                            wait = _within(between, "stream" if streaming else "body", anext(chunks, None))
                        else:
                            wait = _within(limit, "headers", anext(chunks, None))
                        if (chunk := await wait) is None:
                            break
                        reading.size += len(chunk)
                        if reading.size > options.max_response_bytes:
                            raise _TooLarge
                        reading.chunks.append(((time.perf_counter() - t0) * 1000, chunk))
                    reading.total = (time.perf_counter() - t0) * 1000
                finally:
                    await response.aclose()
                break
    except StaleRecording as exc:
        error = TransportError(
            "stale",
            f"the case changed since {exc.path} was recorded: "
            f"{'; '.join(exc.differences)}; record it again with --record",
        )
    except (httpx.HTTPError, TimeoutError, _TooLarge, _Silence) as exc:
        error = _map_transport_error(exc, options, limit, flag)
        reading.total = (time.perf_counter() - t0) * 1000
    sent = SentRequest("POST", redactor.url(planned.endpoint.url), redactor.headers(sent_headers), body, raw)
    return _build_exchange(sent, reading, started, attempt, error, streaming, redactor)


def _build_exchange(
    sent: SentRequest,
    reading: _Reading,
    started: str,
    attempts: int,
    error: TransportError | None,
    streaming: bool,
    redactor: Redactor,
) -> Exchange:
    """The exchange from what arrived; a stream is parsed as events, anything else as one JSON document."""
    if reading.recorded is not None:  # replay: report what the real endpoint took, chunk by chunk
        times = reading.recorded.get("chunk_ms") or []
        reading.chunks = [(times[i] if i < len(times) else at, data) for i, (at, data) in enumerate(reading.chunks)]
        reading.ttfb = reading.recorded.get("ttfb_ms", reading.ttfb)
        reading.total = reading.recorded.get("total_ms", reading.total)
    if reading.status is None:
        return Exchange(sent, None, Timings(started, _ms(reading.ttfb), _ms(reading.total)), error, attempts)
    data = b"".join(chunk for _, chunk in reading.chunks)
    headers = redactor.headers(reading.headers)
    stream = None
    if streaming and 200 <= reading.status < 300:
        stream = read_stream(reading.chunks, redactor)
        text, parsed, body_error = data.decode("utf-8", errors="replace"), MISSING, None
    else:
        text, parsed, body_error = _decode(data, headers.get("content-type", ""))
    response = HttpResponse(
        status=reading.status,
        headers=headers,
        text=redactor.text(text),
        body=MISSING if parsed is MISSING else redactor.value(parsed),
        body_error=body_error,
        size=reading.size,
        http_version=reading.http_version,
    )
    timings = Timings(started, _ms(reading.ttfb), _ms(reading.total))
    if stream is not None:
        timings = _stream_timings(timings, stream)
    return Exchange(sent, response, timings, error, attempts, stream)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _stream_timings(timings: Timings, stream: Stream) -> Timings:
    arrivals = [e.at_ms for e in stream.events]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    first = next((e.at_ms for e in stream.events if _carries_token(e.json)), None)
    return replace(timings, ttft_ms=_ms(first), max_gap_ms=_ms(max(gaps)) if gaps else None, events=len(arrivals))


def _carries_token(chunk: Any) -> bool:
    """A chunk with the first piece of the answer: content text or a tool call."""
    if not isinstance(chunk, dict):
        return False
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls") or delta.get("refusal")):
            return True
    return False


def _describe(endpoint: Endpoint) -> dict[str, Any]:
    """What a recording keeps of the endpoint, so that replaying it needs no config."""
    return {"name": endpoint.name, "base_url": endpoint.base_url, "model": endpoint.model, "profile": endpoint.profile}


def judge(exchange: Exchange, case: Case, profile: Profile) -> tuple[Verdict, tuple[Finding, ...]]:
    """Run the checks and weigh the findings: transport failures and crashed checks are `error`, not `fail`."""
    if exchange.transport_error is not None:
        error = exchange.transport_error
        code = "replay.stale" if error.kind == "stale" else f"transport.{error.kind}"
        return Verdict.ERROR, (
            Finding(code, "/request/body", error.message)
            if error.kind == "stale"
            else Finding(code, "/response", error.message),
        )
    raw = run_checks(exchange, CheckContext(case.expect))
    findings = tuple(f for f in (profile.judge(f) for f in raw) if f is not None)
    if any(f.code == INTERNAL_CODE for f in findings):
        return Verdict.ERROR, findings
    if any(f.severity is Severity.ERROR for f in findings):
        return Verdict.FAIL, findings
    return Verdict.PASS, findings


def compare(plain: Result, streamed: Result, profile: Profile) -> Result:
    """The streamed result, with what it says differently in kind from the plain answer to the same case."""
    if plain.exchange is None or streamed.exchange is None or streamed.verdict is Verdict.ERROR:
        return streamed
    found = [f for f in (profile.judge(f) for f in plain_contradictions(plain.exchange, streamed.exchange)) if f]
    if not found:
        return streamed
    findings = (*streamed.findings, *found)
    verdict = Verdict.FAIL if any(f.severity is Severity.ERROR for f in findings) else streamed.verdict
    return replace(streamed, verdict=verdict, findings=findings)


def _skip(planned: Planned, reason: str) -> Result:
    case = planned.case
    return Result(
        case.id,
        planned.endpoint.name,
        Verdict.SKIP,
        (),
        case.file,
        case.line,
        case.title,
        case.tags,
        None,
        reason,
        planned.variables,
        planned.mode,
    )


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
        options: Options = Options(),
        *,
        environ: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        record: Path | None = None,
        replay: dict[tuple[str, str], Recording] | None = None,
    ) -> Session:
        environ = os.environ if environ is None else environ
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
            session.clients[endpoint.name] = httpx.AsyncClient(
                auth=auth,
                timeout=httpx.Timeout(limit, connect=min(10.0, limit)),
                transport=sender,
                follow_redirects=False,
                # A live run goes through HTTPS_PROXY/HTTP_PROXY except for NO_PROXY hosts, as httpx does by
                # default, since corporate networks reach endpoints only that way; a replay reads nothing from
                # the environment. httpx ignores these variables when it is given a transport (tests' mocks).
                trust_env=replay is None,
            )
        if problems:
            await session.aclose()
            raise HarnessError(problems)
        return session

    async def result(self, item: Planned) -> Result:
        """Send one filled-in case and judge the answer by its endpoint's profile."""
        case = item.case
        try:
            async with self._semaphore:
                exchange = await _exchange(self.clients[item.endpoint.name], item, self.options, self.redactor)
        except NoRecording as exc:
            return _skip(item, f"{exc} (record it with --record)")
        verdict, findings = judge(exchange, case, self.profiles[item.endpoint.name])
        return Result(
            case.id,
            item.endpoint.name,
            verdict,
            findings,
            case.file,
            case.line,
            case.title,
            case.tags,
            exchange,
            "",
            item.variables,
            item.mode,
        )

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()
