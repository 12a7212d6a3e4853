"""`harness run --dry-run`: every request a run would send, printed instead of sent.

It is how a Google endpoint's requests can be checked with no Google account and no network: the request
is built by the runner's own `outgoing` (so what is printed is what a run sends), and the credential is
named, never fetched: no connection is opened and no token is minted or refreshed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace

import httpx

from .auth import shown_authorization
from .cases import Case
from .endpoints import Endpoint
from .errors import HarnessError, Problem
from .planning import Planned, outgoing, plan
from .redact import Redactor

__all__ = ["dry_run"]


def dry_run(
    cases: Sequence[Case],
    endpoints: Sequence[Endpoint],
    *,
    extra_secrets: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> str:
    """Each request of every case for every endpoint (both modes of a both-ways case) as text: method, URL, headers,
    then the body indented. What would stop a run (a placeholder, a missing variable or key file) raises the
    same `HarnessError` here, so a dry run that passes says the run would start."""
    environ = os.environ if environ is None else environ
    planned = _flat(plan(cases, endpoints, environ))
    redactor = Redactor(extra_secrets)
    authorization: dict[str, str | None] = {}
    problems: list[Problem] = []
    for endpoint in endpoints:
        try:
            authorization[endpoint.name], secrets = shown_authorization(endpoint, environ)
        except HarnessError as exc:
            problems += exc.problems
            continue
        for secret in (*secrets, *endpoint.secret_headers()):
            redactor.add(secret)
        # As in a run: what the URL and the headers carry as credentials is redacted from the bodies too.
        redactor.url(endpoint.url)
        redactor.headers(endpoint.headers.items())
    if problems:
        raise HarnessError(problems)
    # A client only builds the request here (adding its default headers, as in a run); sending is never called.
    with httpx.Client(trust_env=False) as client:
        blocks = [_block(client, item, authorization[item.endpoint.name], redactor) for item in planned]
    count = len({item.endpoint.name for item in planned})
    blocks.append(f"# {len(planned)} request(s) to {count} endpoint(s); dry run: nothing was sent\n")
    return "\n".join(blocks)


def _flat(planned: Sequence[Planned]) -> list[Planned]:
    """Each request a run sends: a multi-step case's steps one by one, what earlier answers give left as the
    references that take it (`${steps.call.id}`, `{from: call.message}`), since nothing is sent to learn it."""
    out: list[Planned] = []
    for item in planned:
        if not item.case.steps:
            out.append(item)
            continue
        for step in item.case.steps:
            out.append(replace(item, case=replace(item.case, request=step.request, steps=()), step=step.id))
    return out


def _block(client: httpx.Client, item: Planned, authorization: str | None, redactor: Redactor) -> str:
    sending = outgoing(item)
    request = client.build_request(sending.method, sending.url, headers=sending.headers, content=sending.content)
    if authorization is not None:
        request.headers["Authorization"] = authorization  # where the auth flow puts the real one
    case = item.case
    name = f"{case.id}[{item.endpoint.name}]" + (f"[{item.mode}]" if item.mode else "")
    name += f" step {item.step}" if item.step else ""
    where = case.file + (f":{case.line}" if case.line else "")
    lines = [f"# {name}  {where}", f"{request.method} {redactor.url(str(request.url))}"]
    for raw_key, raw_value in request.headers.raw:
        key, value = raw_key.decode("latin-1"), raw_value.decode("latin-1")
        # The credential is shown by name (`Bearer <redacted: $OPENAI_API_KEY>`); any other header whose name
        # says it holds one, or whose value holds a secret, is redacted as in a run's report.
        named = key.lower() == "authorization" and value == authorization
        lines.append(f"{key}: {redactor.text(value) if named else redactor.header(key, value)}")
    if case.raw_body is not None:
        body = redactor.text(case.raw_body)
    else:
        body = json.dumps(redactor.value(case.request), indent=2, ensure_ascii=False)
    return "\n".join([*lines, "", body, ""])
