"""What the reports keep of a result once it has been written out: a few lines, never the exchange.

A run of thousands of cases must not hold thousands of exchanges (bodies, stream events) until it ends. Each
reporter turns a result into a `Digest` as it arrives: the row of a table, the counts, and for a case that
did not pass, its failure block, already rendered. The exchange itself goes to `results.jsonl` and is dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from ..models import Result, Verdict, to_json
from ..support import Probe, Support, probes
from .failure import failure_block, headline
from .figures import case_cell, figures
from .info import RunInfo
from .records import Record, record

__all__ = ["Digest", "Digests", "Tally", "digest", "summarize"]


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


_last: tuple[Result, Digest] | None = None


def digest(result: Result, info: RunInfo | None) -> Digest:
    """The digest of a result; its failure block is rendered now, while the exchange is still there.

    Every reporter asks for the digest of the same result in turn: the last one is kept, so a failure block
    is rendered once and its text shared, not held three times.
    """
    global _last
    if _last is not None and _last[0] is result:
        return _last[1]
    made = _digest(result, info)
    _last = (result, made)
    return made


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
        record=record(result, with_shape=False),  # for the matrix; the shape is only for `harness diff`
        support=probes(result),
    )


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


class Digests:
    """The digests of a run kept by their planned index, since results arrive in the order they finish: what
    the console and the digest files render at the end, in the order the run planned."""

    def __init__(self) -> None:
        self._items: list[tuple[int, Digest]] = []

    def add(self, index: int, item: Digest) -> None:
        self._items.append((index, item))

    def in_order(self) -> list[Digest]:
        return [item for _, item in sorted(self._items, key=lambda pair: pair[0])]

    def counts(self) -> dict[str, int]:
        return summarize(item for _, item in self._items)


def summarize(results: Iterable[Result | Digest]) -> dict[str, int]:
    """Counts by verdict, and warnings as (case, code) pairs."""
    tally = Tally()
    for result in results:
        tally.add(result)
    return tally.counts()
