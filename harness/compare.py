"""Earlier runs and recording sets, read back as records for `harness compare` and `harness diff`.

A source is a report folder (its `results.json`, or the `results.jsonl` a killed run left), one of those files,
or a folder of recordings. Recordings are judged by replaying them through the engine, exactly as
`harness run --replay DIR` does, against the case catalogue (`./cases`, else the bundled one, or the paths
given), so a recording set and a run of the same endpoint compare on equal terms. Each source is read on its
own: two recording sets of the same endpoint stay two columns, never merged into one.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from .errors import HarnessError, Problem
from .events import ResultReady, RunFinished, RunStarted
from .report.digest import Places
from .report.files import result_line
from .report.info import RunInfo
from .report.records import Record, RecordLog, Run, read_run, record
from .support import SupportMatrix

__all__ = ["load_runs", "replay_run"]


class _Records:
    """A handler that keeps each wanted result's record (small), never the result (its exchange), in planned
    order; with a `spool`, it also writes each wanted result whole there, as a line of results.jsonl."""

    def __init__(self, wanted: Callable[[Record], bool], spool: Path | None = None) -> None:
        self.items: dict[int, Record] = {}
        self.places = Places()
        self.concurrency = 1
        self._wanted = wanted
        self._spool = spool
        self._handle: BinaryIO | None = None
        self.support = SupportMatrix()

    def start(self, event: RunStarted) -> None:
        self.concurrency = event.concurrency
        self.support = RunInfo.opening(event).matrix()
        if self._spool is not None:
            self._spool.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self._spool.open("wb")

    def result(self, event: ResultReady) -> None:
        made = record(event.result)
        if not self._wanted(made):
            return
        self.items[event.index] = made
        self.support.add(event.result)
        if self._handle is not None:
            self.places.add(event.index, self._handle.tell())
            self._handle.write((result_line(event.result) + "\n").encode("utf-8"))

    def finish(self, event: RunFinished) -> None:
        if self._handle is not None:
            self._handle.close()

    def results(self) -> Iterable[dict[str, Any]]:
        if self._spool is None:
            return ()
        return RecordLog(self._spool, list(self.places.in_order()))


def replay_run(
    folder: Path, label: str, case_paths: Sequence[str], profile: str | None = None, spool: Path | None = None
) -> Run:
    """The records of a recording set, judged by replaying it against the catalogue at `case_paths`; with a
    `spool`, the results are written there whole (results.jsonl's lines), for the HTML report."""
    from .cases import load_cases
    from .engine import Source, execute
    from .profiles import load_profile
    from .recordings import load_recordings
    from .setup import catalogue, replay_endpoints

    recordings = load_recordings(folder, answers=False)
    if not recordings:
        raise HarnessError(
            Problem(str(folder), "neither a report folder (results.json, results.jsonl) nor a folder of recordings")
        )
    paths, named = catalogue(list(case_paths))
    # A recording is named for its case, `CASE.MODE` for the streamed (or repeated) run of a case, and
    # `CASE.STEP` for each step of a multi-step case.
    plain = {(endpoint, name.split(".", 1)[0]) for endpoint, name in recordings}
    recorded = {case for _, case in plain}
    cases = [c for c in load_cases(paths) if c.id in recorded]
    missing = sorted(recorded - {c.id for c in cases})
    flags = argparse.Namespace(base_url=None, kind=None, config=None, model=None, profile=profile, endpoint=[])
    endpoints = replay_endpoints(recordings, flags, str(folder))
    for endpoint in endpoints:
        load_profile(endpoint.profile)
    keeper = _Records(
        lambda r: (r.endpoint, f"{r.case}.{r.mode}") in recordings if r.mode else (r.endpoint, r.case) in plain,
        spool if cases else None,
    )
    if cases:
        asyncio.run(
            execute(cases, endpoints, [keeper], source=Source(origin=f"replay:{folder}"), replay=recordings, environ={})
        )
    records = tuple(r for _, r in sorted(keeper.items.items()))
    notes = [f"judged by replaying against the cases in {named}"]
    if missing:
        shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
        notes.append(f"{len(missing)} recorded case(s) not in that catalogue, left out: {shown}")
    first = {name: r.endpoint for (name, _), r in sorted(recordings.items())}
    return Run(
        label=label,
        path=str(folder),
        origin=f"replay:{folder}",
        endpoints={
            e.name: {"base_url": first[e.name].get("base_url"), "model": e.model, "profile": e.profile}
            for e in endpoints
        },
        records=records,
        concurrency=keeper.concurrency,
        repeat=1,
        notes=tuple(notes),
        results=keeper.results(),
        support=keeper.support.to_json(),
    )


def _labels(paths: Sequence[Path]) -> list[str]:
    """A short name for each source: its folder's name, numbered where two would read the same."""
    names = [(p.parent.name if p.is_file() else p.resolve().name) or str(p) for p in paths]
    return [f"{name}#{names[:i].count(name) + 1}" if names.count(name) > 1 else name for i, name in enumerate(names)]


def load_runs(
    sources: Sequence[str], case_paths: Sequence[str] = (), profile: str | None = None, spool: Path | None = None
) -> list[Run]:
    """Every source as a run of records; every source that cannot be read is reported, each with its location.

    With a `spool` folder, a recording set's replayed results are kept there whole (`LABEL.results.jsonl`), so
    that `report.html` can show their exchanges as it shows a run's."""
    paths = [Path(s) for s in sources]
    runs: list[Run] = []
    problems: list[Problem] = []
    for path, label in zip(paths, _labels(paths), strict=True):
        try:
            if not path.exists():
                raise HarnessError(Problem(str(path), "no such file or folder"))
            run = read_run(path, label)
            if run is None:
                kept = spool / f"{label.replace('/', '_')}.results.jsonl" if spool is not None else None
                run = replay_run(path, label, case_paths, profile, kept)
            runs.append(run)
        except HarnessError as exc:
            problems += exc.problems
    if problems:
        raise HarnessError(problems)
    return runs
