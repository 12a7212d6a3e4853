"""What a run tells as it goes: the events the engine emits and the handlers (reporters) that consume them.

A run is told as `RunStarted`, then one `ResultReady` per case, endpoint and mode as soon as it is judged, then
`RunFinished` (which says whether the run was interrupted, and why). `RunStarted` also carries what each
endpoint's profile documents of the request parameters, so a reporter can hold the support matrix against it.
The console, the report files, and later the pytest plugin and comparison reports are handlers: they never
drive a run, and the engine never knows which handlers listen. Modelled on Schemathesis's engine events and
pytest's reporters that consume hooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from .endpoints import Endpoint
from .models import Result
from .parameters import Documented

__all__ = ["Event", "Handler", "ResultReady", "RunFinished", "RunStarted"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStarted:
    """What will run, against what, and where the answers come from (live, or recordings and who made them).

    `concurrency` (requests in flight) and `repeat` (times each case is sent) go with every latency figure: a
    request queued behind others takes longer than one sent alone.
    """

    run_id: str
    started: str
    endpoints: tuple[Endpoint, ...]
    profiles: dict[str, str]
    total: int
    origin: str = "live"
    banner: str = ""
    sources: str = ""
    case_paths: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    """The official SDKs the client.* checks feed each answer to, with their versions, or why one is not checked."""
    concurrency: int = 1
    repeat: int = 1
    documented: dict[str, dict[str, Documented]] = field(default_factory=dict)
    """Per endpoint, what its profile says the provider documents of each request parameter."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultReady:
    """One judged result; `index` is its place in the planned order (results arrive as they finish)."""

    result: Result
    index: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFinished:
    """The end of a run: every planned result arrived, or the run was interrupted (`reason` says by what)."""

    finished: str
    duration_s: float
    completed: int
    interrupted: bool = False
    reason: str = ""


Event = RunStarted | ResultReady | RunFinished


class Handler(Protocol):
    """A reporter: three methods, called in order, from the thread that runs the engine."""

    def start(self, event: RunStarted) -> None: ...

    def result(self, event: ResultReady) -> None: ...

    def finish(self, event: RunFinished) -> None: ...
