"""What a run was: the header every report carries, and how to point `harness run` at each endpoint again."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .. import __version__
from ..endpoints import Endpoint
from ..events import RunFinished, RunStarted
from ..parameters import Documented
from ..support import SupportMatrix

__all__ = ["RunInfo"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """What was run, against what, and when: the header of every report."""

    run_id: str
    started: str
    harness_version: str
    endpoints: tuple[Endpoint, ...]
    finished: str = ""
    duration_s: float = 0.0
    case_paths: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    origin: str = "live"
    profiles: dict[str, str] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    banner: str = ""
    clients: tuple[str, ...] = ()
    interrupted: bool = False
    interrupted_by: str = ""
    concurrency: int = 1
    repeat: int = 1
    documented: dict[str, dict[str, Documented]] = field(default_factory=dict)

    @classmethod
    def opening(cls, event: RunStarted, targets: dict[str, str] | None = None) -> RunInfo:
        """The header as far as it is known when a run starts; `targets` are the flags that reach each endpoint."""
        return cls(
            run_id=event.run_id,
            started=event.started,
            harness_version=__version__,
            endpoints=event.endpoints,
            case_paths=event.case_paths,
            selected=event.selected,
            origin=event.origin,
            profiles=dict(event.profiles),
            targets=dict(targets or {}),
            banner=event.banner,
            clients=event.clients,
            concurrency=event.concurrency,
            repeat=event.repeat,
            documented={name: dict(params) for name, params in event.documented.items()},
        )

    def closing(self, event: RunFinished) -> RunInfo:
        return replace(
            self,
            finished=event.finished,
            duration_s=event.duration_s,
            interrupted=event.interrupted,
            interrupted_by=event.reason,
        )

    def matrix(self) -> SupportMatrix:
        """An empty support matrix for this run's endpoints, held against what their profiles document."""
        return SupportMatrix([e.name for e in self.endpoints], self.documented)

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)
