"""What the reports keep of a result once it has been written out: a few lines, never the exchange.

A run of thousands of cases must not hold thousands of exchanges (bodies, stream events) until it ends. Each
reporter turns a result into a `Digest` as it arrives: the row of a table, the counts, and for a case that
did not pass, its failure block, already rendered. The exchange itself goes to `results.jsonl` and is dropped.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePath
from typing import Any, BinaryIO

from ..models import Result, Verdict, to_json
from ..support import Probe, Support, probes
from .failure import failure_block, headline
from .figures import case_cell, figures
from .info import RunInfo
from .records import Record, record

__all__ = ["Digest", "Digests", "Places", "Tally", "digest", "summarize"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Digest:
    """One result as tables, counts and failure blocks need it."""

    name: str
    case: str
    endpoint: str
    file: str
    line: int | None
    verdict: Verdict
    reason: str
    codes: tuple[str, ...]
    warnings: tuple[tuple[str, str], ...]
    kind: str
    headline: str
    block: str
    cells: tuple[str, str, str, str]
    seconds: float
    record: Record
    support: tuple[Probe, ...]

    @property
    def bad(self) -> bool:
        return self.verdict in (Verdict.FAIL, Verdict.ERROR)

    @property
    def classname(self) -> str:
        """Grouped by case file, named as dashboards show it: the file's name, not its absolute path."""
        return PurePath(self.file).name.removesuffix(".yaml").removesuffix(".yml").removesuffix(".case")

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data, for a digest made in one process and reported by another (a pytest-xdist worker's)."""
        data: dict[str, Any] = to_json(self)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Digest:
        return cls(
            **{
                **data,
                "verdict": Verdict(data["verdict"]),
                "codes": tuple(data["codes"]),
                "warnings": tuple((code, note) for code, note in data["warnings"]),
                "cells": tuple(data["cells"]),
                "record": Record.from_json(data["record"]),
                "support": tuple((name, Support(verdict), why) for name, verdict, why in data["support"]),
            }
        )


def digest(result: Result, info: RunInfo | None) -> Digest:
    """The digest of a result; its failure block is rendered now, while the exchange is still there."""
    return _digest(result, info)


def _digest(result: Result, info: RunInfo | None) -> Digest:
    warned = {f.code: f.note or "" for f in result.warnings}
    if result.verdict is Verdict.FAIL:
        kind = result.errors[0].code if result.errors else "fail"
    elif result.verdict is Verdict.ERROR:
        kind = result.findings[0].code if result.findings else "error"
    else:
        kind = ""
    shown = result.verdict in (Verdict.FAIL, Verdict.ERROR) or bool(warned)
    exchange = result.exchange
    return Digest(
        name=result.name,
        case=case_cell(result),
        endpoint=result.endpoint,
        file=result.file,
        line=result.line,
        verdict=result.verdict,
        reason=result.reason,
        codes=tuple(sorted({f.code for f in result.findings})),
        warnings=tuple(sorted(warned.items())),
        kind=kind,
        headline=headline(result),
        block=failure_block(result, info) if shown else "",
        cells=figures(result).cells(),
        seconds=(exchange.timings.total_ms or 0) / 1000 if exchange else 0.0,
        record=_for_matrix(record(result, with_shape=False)),
        support=probes(result),
    )


def _for_matrix(made: Record) -> Record:
    """A record as summary.md's matrix reads it: each finding code once, with its severity, no pointer, and no
    shape (that is for `harness diff`). Every reporter reads each digest back several times at the end of a run,
    and a pytest-xdist worker sends it whole: a stream's dozens of findings of one code are one here."""
    return replace(made, findings=tuple(sorted({(code, severity, "") for code, severity, _ in made.findings})))


class Tally:
    """Counts by verdict, and warnings as (case, code) pairs, kept as results arrive.

    A stream whose clock ticks 24 times has one `stream.consistent_created` problem, not 24: counting findings
    would let one chatty case outweigh every other warning of the run.
    """

    def __init__(self) -> None:
        self._verdicts: Counter[str] = Counter()
        self._warnings = 0

    def add(self, result: Result | Digest) -> None:
        self._verdicts[result.verdict.value] += 1
        self._warnings += len(result.warnings) if isinstance(result, Digest) else len({f.code for f in result.warnings})

    def counts(self) -> dict[str, int]:
        verdicts = {v.value: self._verdicts.get(v.value, 0) for v in Verdict}
        return {"total": sum(self._verdicts.values()), **verdicts, "warnings": self._warnings}


class Places:
    """Where each result of a run was written, by its planned index, for reading them back in planned order.

    Kept in two flat arrays, not as a tuple each: a run's thousands of them are then two buffers rather than
    thousands of small objects scattered among those each result makes and frees, which would keep that memory
    from being reused."""

    def __init__(self) -> None:
        self._indexes = array("q")
        self._places = array("q")

    def add(self, index: int, place: int) -> None:
        self._indexes.append(index)
        self._places.append(place)

    def in_order(self) -> Iterator[int]:
        """The places, in planned order (results arrive in the order they finish)."""
        for number in sorted(range(len(self._indexes)), key=self._indexes.__getitem__):
            yield self._places[number]


class Digests:
    """The digests of a run, by their planned index, shared by the reporters that render them at the end.

    Results arrive in the order they finish, and every reporter is handed each one in turn: the first to add a
    result makes its digest (its failure block rendered once), the others find it there. Given a folder, the
    digests are written to an unnamed temp file in it as they arrive and read back one at a time, in planned
    order, each time the digests are iterated: a run of thousands of cases holds none of them in memory, and a
    killed run leaves no such file behind. Without a folder they are kept in memory.
    """

    def __init__(self, folder: Path | None = None) -> None:
        self._folder = folder
        self._spill: BinaryIO | None = None
        self._places = Places()  # byte offsets in the temp file, or places in _kept
        self._kept: list[Digest] = []
        self._tally = Tally()
        self._last: tuple[int, Result | Digest] | None = None
        self._users = 0

    def open(self) -> None:
        """A reporter starts a run with this store: the first one empties it (every start comes before any
        result)."""
        if not self._users:
            self._close()
            self._places, self._kept, self._tally = Places(), [], Tally()
        self._users += 1

    def release(self) -> None:
        """A reporter has rendered its file: once every one has, the temp file goes (the counts stay)."""
        self._users = max(0, self._users - 1)
        if not self._users:
            self._close()
            self._places, self._kept = Places(), []

    def _close(self) -> None:
        if self._spill is not None:
            self._spill.close()
        self._spill, self._last = None, None

    def add(self, index: int, result: Result | Digest, info: RunInfo | None) -> None:
        """Keep the digest of the result at planned `index` (or the digest made of it in a pytest-xdist worker),
        unless another reporter already did."""
        if self._last is not None and self._last[0] == index and self._last[1] is result:
            return
        self._last = (index, result)
        item = result if isinstance(result, Digest) else digest(result, info)
        self._tally.add(item)
        if self._folder is None:
            self._places.add(index, len(self._kept))
            self._kept.append(item)
            return
        if self._spill is None:
            self._folder.mkdir(parents=True, exist_ok=True)
            # Open from the first result until every reporter has released the store; unnamed, so that even a
            # killed run leaves nothing behind.
            self._spill = tempfile.TemporaryFile(dir=self._folder, prefix=".digests.")  # noqa: SIM115
        self._spill.seek(0, os.SEEK_END)
        self._places.add(index, self._spill.tell())
        pickle.dump(item, self._spill, protocol=pickle.HIGHEST_PROTOCOL)

    def __iter__(self) -> Iterator[Digest]:
        """The digests in planned order, read one at a time."""
        for place in self._places.in_order():
            if self._spill is None:
                yield self._kept[place]
                continue
            self._spill.seek(place)
            item = pickle.load(self._spill)
            assert isinstance(item, Digest)
            yield item

    def in_order(self) -> list[Digest]:
        return list(self)

    def counts(self) -> dict[str, int]:
        return self._tally.counts()


def summarize(results: Iterable[Result | Digest]) -> dict[str, int]:
    """Counts by verdict, and warnings as (case, code) pairs."""
    tally = Tally()
    for result in results:
        tally.add(result)
    return tally.counts()
