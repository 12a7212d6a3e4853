"""What a run was: the header every report carries, and how to point `harness run` at each endpoint again."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..endpoints import Endpoint

__all__ = ["RunInfo"]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What was run, against what, and when: the header of every report."""

    run_id: str
    started: str
    finished: str
    duration_s: float
    harness_version: str
    endpoints: tuple[Endpoint, ...]
    case_paths: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()
    origin: str = "live"
    profiles: dict[str, str] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)
