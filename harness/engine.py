"""The engine: runs cases against endpoints and tells what happens as events, to whichever handlers listen.

It never prints and never writes a file; the CLI, `harness fuzz`, the pytest plugin and comparison reports
drive it and subscribe to it. Results are handed on as soon as each is judged and not kept, so memory is
bounded by what is in flight, not by the number of cases. Setting `stop` (the CLI does on SIGINT or SIGTERM)
ends the run early: nothing more is sent, cases in flight are cancelled, and `RunFinished` says why.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from .cases import Case, unfilled
from .clients import statuses as client_statuses
from .endpoints import Endpoint
from .errors import CaseFileError, Problem
from .events import Handler, ResultReady, RunFinished, RunStarted
from .models import Result
from .planning import plan
from .recordings import Recording
from .runner import Session
from .sending import Options

__all__ = ["Collector", "Source", "Stop", "execute", "run", "run_id", "stamp"]


def run_id(moment: datetime, prefix: str = "") -> str:
    """A run's id, from when it started: the name of its report folder unless one is given."""
    return prefix + moment.strftime("%Y%m%d-%H%M%S")


def stamp(moment: datetime) -> str:
    """A moment as reports show it: UTC, to the second, with a Z."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Stop:
    """Asks a running engine to end early, and says why (the CLI requests it on SIGINT or SIGTERM)."""

    def __init__(self) -> None:
        self.reason = ""
        self._event = asyncio.Event()

    def request(self, reason: str) -> None:
        self.reason = self.reason or reason
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> None:
        await self._event.wait()


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Where the run's cases and answers come from, as `RunStarted` tells it to every handler."""

    run_id: str = ""
    origin: str = "live"
    banner: str = ""
    sources: str = ""
    case_paths: tuple[str, ...] = ()
    selected: tuple[str, ...] = ()


async def execute(
    cases: Iterable[Case],
    endpoints: Sequence[Endpoint],
    handlers: Iterable[Handler],
    *,
    options: Options | None = None,
    source: Source | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
    record: Path | None = None,
    replay: dict[tuple[str, str], Recording] | None = None,
    stop: Stop | None = None,
    repeat: int = 1,
) -> RunFinished:
    """Run every case against every endpoint, telling `handlers` as it goes; returns the closing event.

    `repeat` sends each case that many times (for latency figures over several answers); each result says which
    repetition it is. Everything that can be wrong with the input (placeholders, credentials, profiles) raises a
    `HarnessError` before the first request and before any event. `cases` is read twice, once to check it and
    once as it is sent, so a `CaseFiles` (or a list) serves; a one-pass iterator is read into a list first.
    """
    if iter(cases) is cases:
        cases = list(cases)
    listeners = list(handlers)
    options = options or Options()
    source = source or Source()
    environ = os.environ if environ is None else environ
    repeat = max(1, repeat)
    total = _checked(cases, endpoints, environ) * repeat
    session = await Session.open(
        list(endpoints), options, environ=environ, transport=transport, record=record, replay=replay
    )
    started = datetime.now(UTC)
    opening = RunStarted(
        run_id=source.run_id or run_id(started),
        started=stamp(started),
        endpoints=tuple(e.shown(session.redactor.url) for e in endpoints),
        profiles={name: profile.name for name, profile in session.profiles.items()},
        total=total,
        origin=source.origin,
        banner=source.banner,
        sources=source.sources,
        case_paths=source.case_paths,
        selected=source.selected,
        clients=client_statuses() if options.clients else ("client.* checks left out (--no-clients)",),
        concurrency=max(1, options.concurrency),
        repeat=max(1, repeat),
        documented={name: dict(profile.parameters) for name, profile in session.profiles.items()},
    )
    for handler in listeners:
        handler.start(opening)
    t0 = time.perf_counter()
    completed = 0
    units = _units(cases, endpoints, repeat)  # in the planned order, each case read as a worker takes it

    async def unit(case: Case, endpoint: Endpoint, first: int, repetition: int) -> None:
        """One case against one endpoint: once, or both ways (plain, then streamed, then compared)."""
        nonlocal completed
        items = plan([case], [endpoint], environ)  # filled when sent, once, so only what is in flight is held
        sending = session.conversation(items[0]) if case.steps else session.result(items[0])
        results = [await sending]
        if len(items) == 2:  # the streamed run of a both-ways case is also held against the plain answer
            results.append(await session.result(items[1], plain=results[0].exchange))
        if repeat > 1:
            results = [replace(r, repetition=repetition, repetitions=repeat) for r in results]
        for index, result in enumerate(results, start=first):
            completed += 1
            event = ResultReady(result=result, index=index)
            for handler in listeners:
                handler.result(event)

    halt = stop or Stop()

    async def worker() -> None:
        while not halt.requested:  # once a stop is asked for, nothing more is sent
            taken = next(units, None)
            if taken is None:
                break
            await unit(*taken)
            # A replayed answer never waits on a socket, so without this a worker would run every case in one step
            # of the loop: a signal would not be heard until the end, and the timers each case cancels would pile
            # up (the loop clears them only between its steps), memory growing with the number of cases.
            await asyncio.sleep(0)

    reason = ""
    workers: asyncio.Future[Any] = asyncio.gather(*(worker() for _ in range(max(1, options.concurrency))))
    stopping: asyncio.Future[Any] = asyncio.ensure_future(halt.wait())
    try:
        await asyncio.wait({workers, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if halt.requested and completed < total:
            reason = halt.reason or "stopped"
        if workers.done():
            workers.result()  # a bug in a worker is a bug, not an interruption
    finally:
        stopping.cancel()
        if not workers.done():
            workers.cancel()
            await asyncio.gather(workers, return_exceptions=True)
        await session.aclose()
    closing = RunFinished(
        finished=stamp(datetime.now(UTC)),
        duration_s=round(time.perf_counter() - t0, 3),
        completed=completed,
        interrupted=bool(reason),
        reason=reason,
    )
    for handler in listeners:
        handler.finish(closing)
    return closing


def _results(case: Case) -> int:
    """How many results a case gives against one endpoint: two when it runs both ways or twice (`repeat: true`)."""
    return len(case.modes)


def _checked(cases: Iterable[Case], endpoints: Sequence[Endpoint], environ: Mapping[str, str]) -> int:
    """How many results the run will give, every case's placeholders checked against every endpoint.

    An unknown placeholder stops the run before anything is sent; nothing is filled here (each case is filled
    once, when it is sent), and no case is held past its check.
    """
    given = [endpoint.placeholders() for endpoint in endpoints]
    problems: list[list[Problem]] = [[] for _ in endpoints]  # by endpoint, as a run meets them
    count = 0
    for case in cases:
        count += _results(case)
        for found, variables in zip(problems, given, strict=True):
            found += unfilled(case, variables, environ)
    every = [problem for found in problems for problem in found]
    if every:
        raise CaseFileError(list(dict.fromkeys(every)))
    return count * len(endpoints)


def _units(
    cases: Iterable[Case], endpoints: Sequence[Endpoint], repeat: int = 1
) -> Iterator[tuple[Case, Endpoint, int, int]]:
    """(case, endpoint, index of its first result, repetition) in planned order: every case against the first
    endpoint, then the next; a repeated case's repetitions follow each other."""
    index = 0
    for endpoint in endpoints:
        for case in cases:
            for repetition in range(1, repeat + 1):
                yield case, endpoint, index, repetition
                index += _results(case)


@dataclass(slots=True)
class Collector:
    """A handler that keeps every result, in planned order: for callers that want a list, not a stream."""

    on_result: Callable[[Result], None] | None = None
    _results: dict[int, Result] = field(default_factory=dict)

    def start(self, event: RunStarted) -> None:
        self._results.clear()

    def result(self, event: ResultReady) -> None:
        self._results[event.index] = event.result
        if self.on_result is not None:
            self.on_result(event.result)

    def finish(self, event: RunFinished) -> None:
        pass

    @property
    def results(self) -> list[Result]:
        return [self._results[i] for i in sorted(self._results)]


async def run(
    cases: Iterable[Case],
    endpoints: Sequence[Endpoint],
    options: Options | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    on_result: Callable[[Result], None] | None = None,
    environ: Mapping[str, str] | None = None,
    record: Path | None = None,
    replay: dict[tuple[str, str], Recording] | None = None,
) -> list[Result]:
    """Every case against every endpoint; results come back in planned order, and to `on_result` as they finish.

    `record` writes each exchange as a recording into that folder; `replay` answers every request from
    recordings instead of the network (and needs no credentials).
    """
    collector = Collector(on_result=on_result)
    await execute(
        cases,
        endpoints,
        [collector],
        options=options,
        transport=transport,
        environ=environ,
        record=record,
        replay=replay,
    )
    return collector.results
