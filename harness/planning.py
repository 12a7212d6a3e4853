"""What a case becomes before it is sent: filled in for one endpoint, then the exact request (URL, headers, body).

Built in one place so that a run, `--dry-run` and the recordings all see the same request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import __version__
from .cases import Case, Step, fill, follow
from .endpoints import Endpoint
from .errors import CaseFileError

__all__ = ["Outgoing", "Planned", "build_request", "is_stream", "outgoing", "plan", "step_of"]


@dataclass(frozen=True, slots=True)
class Planned:
    """A case filled in for one endpoint, ready to send."""

    case: Case
    endpoint: Endpoint
    variables: dict[str, str] = field(default_factory=dict)
    mode: str = ""
    step: str = ""

    @property
    def key(self) -> str:
        """The case's name in recordings: its id, with `.stream` for the streamed run of a both-ways case and
        `.STEP` for a step of a multi-step case (each step is recorded, and replayed, on its own)."""
        suffix = self.mode or self.step
        return f"{self.case.id}.{suffix}" if suffix else self.case.id


def step_of(planned: Planned, step: Step, saved: Mapping[str, Mapping[str, object]]) -> Planned:
    """One step of a multi-step case, ready to send: its request with what the steps before it saved, its own
    expectations. `saved` must hold every value the step uses (the runner stops a case at a step that lacks one)."""
    case = replace(planned.case, request=follow(step.request, saved), expect=step.expect, steps=(), both_ways=False)
    return replace(planned, case=case, step=step.id)


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
    if is_stream(planned):
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
            text = json.dumps([case.request, case.raw_body, case.headers, *(s.request for s in case.steps)])
            used = {k: v for k, v in variables.items() if v is not None and f"${{{k}}}" in text}
            if filled.modes == ("", "stream") and isinstance(filled.request, dict):
                plain = {k: v for k, v in filled.request.items() if k not in ("stream", "stream_options")}
                planned.append(Planned(replace(filled, request=plain), endpoint, used))
                planned.append(Planned(replace(filled, request={**plain, "stream": True}), endpoint, used, "stream"))
            elif filled.modes == ("", "repeat") and isinstance(filled.request, dict):
                # the same request again (with what `repeat: {with: ...}` changes), once the first is answered
                planned.append(Planned(filled, endpoint, used))
                again = _merged(filled.request, filled.repeat_with)
                planned.append(Planned(replace(filled, request=again), endpoint, used, "repeat"))
            else:
                planned.append(Planned(filled, endpoint, used))
    if problems:
        unique = list(dict.fromkeys(problems))
        raise CaseFileError(unique)
    return planned


def _merged(base: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `changes` merged in, object into object; any other value replaces what was there."""
    out = dict(base)
    for key, value in changes.items():
        old = out.get(key)
        out[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def is_stream(planned: Planned) -> bool:
    return bool(isinstance(planned.case.request, dict) and planned.case.request.get("stream") is True)
