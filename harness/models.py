"""The values that flow through a run: case → request → exchange → findings → verdict → result.

Every value is frozen: a check cannot change what another check sees, and a result can be handed to any
reporter (or, later, across processes) as it is. `to_json` is the one way any of them becomes JSON.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from .pointer import MISSING

__all__ = [
    "Exchange",
    "Finding",
    "HttpResponse",
    "Result",
    "SentRequest",
    "Severity",
    "StepResult",
    "Stream",
    "StreamEvent",
    "Timings",
    "TransportError",
    "Verdict",
    "to_json",
]


class Severity(enum.StrEnum):
    """How much a finding weighs: `error` fails the case, `warning` is reported and does not."""

    ERROR = "error"
    WARNING = "warning"


class Verdict(enum.StrEnum):
    """`error` means the exchange could not be completed (timeout, refused, reset), so nothing was judged."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with one exchange: enough on its own to tell a user what to fix.

    `pointer` is rooted at the JSON view of the exchange (`/response/body/choices/0/index`). `note` is
    the profile's reason when it changed the severity (usually the provider documentation that allows it).
    """

    code: str
    pointer: str
    message: str
    expected: Any = None
    actual: Any = None
    severity: Severity = Severity.ERROR
    note: str | None = None

    def __repr__(self) -> str:
        return f"<Finding {self.code} {self.severity} {self.pointer or '/'}>"


@dataclass(frozen=True, slots=True)
class SentRequest:
    """What went on the wire, secrets already redacted. `body` is the JSON value, or None for a raw body."""

    method: str
    url: str
    headers: dict[str, str]
    body: Any = None
    raw_body: str | None = None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back. `body` is the parsed JSON (MISSING when the body is not JSON; `body_error` says why)."""

    status: int
    headers: dict[str, str]
    text: str
    body: Any = MISSING
    body_error: str | None = None
    size: int = 0
    http_version: str = "HTTP/1.1"


@dataclass(frozen=True, slots=True)
class TransportError:
    """Why there is no (complete) response: `kind` is one of connect, timeout, reset, too_large, deadline, protocol,
    or for a replay stale and unreadable (the recording's fault, not the endpoint's)."""

    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds from sending the request; `started` is an ISO 8601 UTC time.

    For a stream: `ttft_ms` is the time to the first content (or tool-call) token, `max_gap_ms` the longest
    wait between two events, and `events` how many there were.
    """

    started: str
    ttfb_ms: float | None = None
    total_ms: float | None = None
    ttft_ms: float | None = None
    max_gap_ms: float | None = None
    events: int | None = None


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One server-sent event: its raw data, the JSON it holds (MISSING if none), and when it arrived."""

    data: str
    json: Any = MISSING
    at_ms: float = 0.0
    line: int = 0
    event: str | None = None


@dataclass(frozen=True, slots=True)
class Stream:
    """A streamed answer as read: events, framing issues, whether `[DONE]` came, and the message rebuilt from it.

    `assembled` is a `chat.completion`-shaped object rebuilt from the chunks' deltas, so the same message checks
    run on a stream as on a plain answer. `issues` are (kind, line, message) from the SSE reader.
    """

    events: tuple[StreamEvent, ...]
    issues: tuple[tuple[str, int, str], ...] = ()
    done_index: int | None = None
    assembled: Any = MISSING
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer: the value that checks, reports and recordings all read."""

    request: SentRequest
    response: HttpResponse | None
    timings: Timings
    transport_error: TransportError | None = None
    attempts: int = 1
    stream: Stream | None = None

    def answer(self) -> Any:
        """The answer's body: the JSON document, or for a stream the message rebuilt from its chunks."""
        if self.stream is not None:
            return self.stream.assembled
        return self.response.body if self.response is not None else MISSING

    def view(self) -> dict[str, Any]:
        """The JSON document that finding pointers are rooted at."""
        request: dict[str, Any] = {
            "method": self.request.method,
            "url": self.request.url,
            "headers": self.request.headers,
        }
        request["body"] = self.request.body if self.request.raw_body is None else self.request.raw_body
        view: dict[str, Any] = {"request": request}
        if self.response is not None:
            r = self.response
            view["response"] = {
                "status": r.status,
                "headers": r.headers,
                "body": r.text if r.body is MISSING else r.body,
            }
        if self.stream is not None:
            view["stream"] = {
                "events": [
                    {"data": e.data if e.json is MISSING else e.json, "at_ms": e.at_ms, "line": e.line}
                    for e in self.stream.events
                ],
                "assembled": None if self.stream.assembled is MISSING else self.stream.assembled,
                "notes": list(self.stream.notes),
            }
        return view


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a multi-step case: its verdict and its exchange. Its findings are the case's, under `/steps/ID`."""

    step: str
    verdict: Verdict
    exchange: Exchange | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Result:
    """The outcome of one case against one endpoint."""

    case_id: str
    endpoint: str
    verdict: Verdict
    findings: tuple[Finding, ...] = ()
    file: str = ""
    line: int | None = None
    title: str = ""
    tags: tuple[str, ...] = ()
    exchange: Exchange | None = None
    reason: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    mode: str = ""
    repetition: int = 1
    repetitions: int = 1
    steps: tuple[StepResult, ...] = ()

    @property
    def name(self) -> str:
        """The name a case has everywhere: console, JUnit, and pytest (`case-id[endpoint]`, `…[stream]`); a run
        that repeats each case (`--repeat N`) tells the repetitions apart as `…[2/3]`."""
        repeated = f"[{self.repetition}/{self.repetitions}]" if self.repetitions > 1 else ""
        return f"{self.case_id}[{self.endpoint}]" + (f"[{self.mode}]" if self.mode else "") + repeated

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity is Severity.WARNING)

    def __repr__(self) -> str:
        return f"<Result {self.name} {self.verdict}>"


def to_json(value: Any) -> Any:
    """Any model value (nested in dicts, lists and tuples) as plain JSON data."""
    if value is MISSING:
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, HttpResponse) and value.body is MISSING:
            out.pop("body")
        return out
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value
