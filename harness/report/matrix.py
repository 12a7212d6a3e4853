"""The matrix: every case against every endpoint side by side, with the figures a team choosing a model compares.

Built from records (`records.py`), so it renders one run, several earlier runs, or recording sets alike. A
`Matrix` is plain data (`to_json`), rendered here as text and Markdown; an HTML report can render the same.
Per case and endpoint: the verdict, the finding codes, latency, time to first token, tokens in and out, output
tokens per second and the answer's size (medians when a case was repeated). Per endpoint: the pass rate by
tag, the tags whose every case passed, and latency percentiles, with the concurrency they were measured at,
since requests queued behind others take longer.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_stream, atomic_write
from ..models import Verdict
from ..support import SupportMatrix
from .html import render_html
from .records import Record, Run, json_document, json_text
from .support import matrix_markdown

__all__ = [
    "COMPARE_FORMAT",
    "FEATURES",
    "PERCENTILES",
    "Cell",
    "Column",
    "Matrix",
    "Stats",
    "build",
    "markdown",
    "overview",
    "percentile",
    "sending",
    "text",
    "write_comparison",
]

COMPARE_FORMAT = "chat-conformance/compare@1"

# The tags a reader looks for first, in this order (the catalogue's topics); other tags follow, sorted.
FEATURES = ("text", "stream", "tools", "multimodal", "structured", "extensions", "google", "negative")
PERCENTILES = (50, 90, 99)
_WORST = (Verdict.ERROR, Verdict.FAIL, Verdict.PASS, Verdict.SKIP)


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile, interpolated between the closest ranks (numpy's default); None with no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _median(values: Iterable[float | int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """One endpoint of one run: `key` heads it in tables (the endpoint's name, or `run/endpoint` when two runs
    have an endpoint of the same name)."""

    key: str
    run: str
    endpoint: str
    path: str = ""
    origin: str = ""
    model: str | None = None
    profile: str | None = None
    concurrency: int | None = None
    repeat: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """A case against one endpoint: one record, or the repetitions of a repeated case taken together."""

    verdicts: tuple[Verdict, ...]
    codes: tuple[str, ...] = ()
    total_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: float | None = None
    completion_tokens: float | None = None
    tokens_per_s: float | None = None
    size: float | None = None

    @property
    def verdict(self) -> Verdict:
        """The worst verdict of its repetitions: one failure in three is a failure."""
        return next(v for v in _WORST if v in self.verdicts)

    @property
    def shown(self) -> str:
        """`pass`, or `fail 1/3` when the repetitions disagree."""
        worst = self.verdict
        if len(set(self.verdicts)) == 1:
            return worst.value
        return f"{worst.value} {self.verdicts.count(worst)}/{len(self.verdicts)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Stats:
    """One endpoint over every case: verdict counts, pass rate by tag, the tags it honours, latency percentiles."""

    counts: dict[str, int]
    rates: dict[str, tuple[int, int]]  # tag: (passed, judged); skipped cases are not judged
    honours: tuple[str, ...]
    latency: dict[str, dict[str, float | None]]  # total_ms / ttft_ms: {"n", "p50", "p90", "p99"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Matrix:
    columns: tuple[Column, ...]
    rows: tuple[str, ...]
    titles: dict[str, str] = field(default_factory=dict)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    stats: dict[str, Stats] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def tags(self) -> tuple[str, ...]:
        """Every tag some endpoint was judged on, the featured ones first."""
        return tuple(sorted({tag for s in self.stats.values() for tag in s.rates}, key=_featured))

    def differing(self) -> tuple[str, ...]:
        """The rows whose verdicts differ between the columns that ran them: where the endpoints part ways."""
        out = []
        for row in self.rows:
            shown = {self.cells[(row, c.key)].shown for c in self.columns if (row, c.key) in self.cells}
            if len(shown) > 1:
                out.append(row)
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        def cell(c: Cell) -> dict[str, Any]:
            return {
                "verdict": c.verdict.value,
                "verdicts": [v.value for v in c.verdicts],
                "codes": list(c.codes),
                "total_ms": c.total_ms,
                "ttft_ms": c.ttft_ms,
                "prompt_tokens": c.prompt_tokens,
                "completion_tokens": c.completion_tokens,
                "tokens_per_s": None if c.tokens_per_s is None else round(c.tokens_per_s, 2),
                "size": c.size,
            }

        return {
            "columns": [
                {
                    "key": c.key,
                    "run": c.run,
                    "endpoint": c.endpoint,
                    "path": c.path,
                    "origin": c.origin,
                    "model": c.model,
                    "profile": c.profile,
                    "concurrency": c.concurrency,
                    "repeat": c.repeat,
                }
                for c in self.columns
            ],
            "rows": [
                {
                    "row": row,
                    "title": self.titles.get(row, ""),
                    "cells": {
                        c.key: cell(self.cells[(row, c.key)]) for c in self.columns if (row, c.key) in self.cells
                    },
                }
                for row in self.rows
            ],
            "endpoints": {
                key: {
                    "counts": s.counts,
                    "pass_rate": {tag: {"passed": p, "judged": n} for tag, (p, n) in s.rates.items()},
                    "honours": list(s.honours),
                    "latency": s.latency,
                }
                for key, s in self.stats.items()
            },
            "notes": list(self.notes),
        }


def _cell(records: Sequence[Record]) -> Cell:
    return Cell(
        verdicts=tuple(r.verdict for r in records),
        codes=tuple(sorted({code for r in records for code in r.codes})),
        total_ms=_median(r.total_ms for r in records),
        ttft_ms=_median(r.ttft_ms for r in records),
        prompt_tokens=_median(r.prompt_tokens for r in records),
        completion_tokens=_median(r.completion_tokens for r in records),
        tokens_per_s=_median(r.tokens_per_s for r in records),
        size=_median(r.size for r in records),
    )


class _Fold:
    """One column's `Stats`, folded a record at a time: what it keeps of a record is a verdict count and two
    numbers, so a long run's records need not be held together."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys((v.value for v in Verdict), 0)
        self.rates: dict[str, tuple[int, int]] = {}
        self.latency: dict[str, list[float]] = {"total_ms": [], "ttft_ms": []}

    def add(self, r: Record) -> None:
        self.counts[r.verdict.value] += 1
        if r.verdict is not Verdict.SKIP:  # a skipped case is not judged
            for tag in r.features:
                passed, judged = self.rates.get(tag, (0, 0))
                self.rates[tag] = (passed + (r.verdict is Verdict.PASS), judged + 1)
        for name, pick in (("total_ms", _total), ("ttft_ms", _ttft)):
            value = pick(r)
            if value is not None:
                self.latency[name].append(value)

    def stats(self) -> Stats:
        latency = {
            name: {"n": len(values), **{f"p{p}": percentile(values, p) for p in PERCENTILES}}
            for name, values in self.latency.items()
        }
        honours = tuple(sorted((t for t, (passed, judged) in self.rates.items() if passed == judged), key=_featured))
        return Stats(counts=dict(self.counts), rates=dict(self.rates), honours=honours, latency=latency)


def _featured(tag: str) -> tuple[int, str]:
    """The featured tags first, in their order, then the others by name."""
    return (FEATURES.index(tag) if tag in FEATURES else len(FEATURES), tag)


def _total(r: Record) -> float | None:
    # Only complete answers: a refused connection or a timeout measures the limit, not the endpoint.
    return r.total_ms if r.verdict in (Verdict.PASS, Verdict.FAIL) else None


def _ttft(r: Record) -> float | None:
    return r.ttft_ms if r.verdict in (Verdict.PASS, Verdict.FAIL) else None


def build(runs: Sequence[Run]) -> Matrix:
    """The matrix of one run or several: a column per endpoint of each run, a row per case (and mode)."""
    names = [e for run in runs for e in dict.fromkeys([*run.endpoints, *(r.endpoint for r in run.records)])]
    columns = []
    for run in runs:
        for endpoint in dict.fromkeys([*run.endpoints, *(r.endpoint for r in run.records)]):
            described = run.endpoints.get(endpoint) or {}
            columns.append(
                Column(
                    key=endpoint if names.count(endpoint) == 1 else f"{run.label}/{endpoint}",
                    run=run.label,
                    endpoint=endpoint,
                    path=run.path,
                    origin=run.origin,
                    model=described.get("model"),
                    profile=described.get("profile"),
                    concurrency=run.concurrency,
                    repeat=run.repeat,
                )
            )
    grouped: dict[tuple[str, str], list[Record]] = {}
    folds = {c.key: _Fold() for c in columns}
    titles: dict[str, str] = {}
    rows: dict[str, None] = {}
    for run in runs:
        for r in run.records:
            key = next(c.key for c in columns if c.run == run.label and c.endpoint == r.endpoint)
            grouped.setdefault((r.row, key), []).append(r)
            folds[key].add(r)
            rows.setdefault(r.row)
            titles.setdefault(r.row, r.title)
    notes = tuple(f"{run.label}: {note}" for run in runs for note in run.notes)
    return Matrix(
        columns=tuple(columns),
        rows=tuple(rows),
        titles=titles,
        cells={key: _cell(records) for key, records in grouped.items()},
        stats={key: fold.stats() for key, fold in folds.items()},
        notes=notes,
    )


def overview(columns: Sequence[Column], records: Iterable[Record]) -> Matrix:
    """The matrix as `markdown(short=True)` reads it, from one run's records read once: each column's stats and,
    when there are columns to differ, each row's verdicts by column (the part of a cell by which they differ).

    What a long run's summary.md needs without holding its records. `columns` name the run's endpoints (a record
    of another endpoint gets a column of its own, its rows' verdicts kept from then on)."""
    found = {c.endpoint: c for c in columns}
    folds = {c.endpoint: _Fold() for c in columns}
    cells: dict[tuple[str, str], Cell] = {}
    rows: dict[str, None] = {}
    for r in records:
        if r.endpoint not in found:
            found[r.endpoint] = Column(key=r.endpoint, run="", endpoint=r.endpoint)
            folds[r.endpoint] = _Fold()
        folds[r.endpoint].add(r)
        if len(found) > 1:
            key = (r.row, found[r.endpoint].key)
            got = cells.get(key)
            cells[key] = Cell(verdicts=(*got.verdicts, r.verdict) if got else (r.verdict,))
            rows.setdefault(key[0])
    return Matrix(
        columns=tuple(found.values()),
        rows=tuple(rows),
        cells=cells,
        stats={found[endpoint].key: fold.stats() for endpoint, fold in folds.items()},
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _rate(rate: tuple[int, int] | None) -> str:
    if not rate or not rate[1]:
        return "-"
    return f"{rate[0]}/{rate[1]}"


def sending(column: Column) -> str:
    """How the column's figures were measured: the requests in flight and the repetitions. Replayed answers carry
    the timings they were recorded with, whatever the replay's own concurrency."""
    if column.origin.startswith("replay:"):
        concurrency = "timings as recorded"
    else:
        concurrency = "concurrency ?" if column.concurrency is None else f"concurrency {column.concurrency}"
    return concurrency + ("" if not column.repeat or column.repeat == 1 else f", each case {column.repeat}x")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Plain-text columns, each as wide as its widest cell."""
    widths = [max(len(str(x)) for x in column) for column in zip(head, *rows, strict=True)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)).rstrip() for line in [head, *rows]]


def _md(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    return [
        "| " + " | ".join(map(cell, head)) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(map(cell, row)) + " |" for row in rows),
    ]


def _verdicts(matrix: Matrix, row: str, keys: Sequence[str]) -> list[str]:
    """A row of the verdicts table: the case, then its verdict in each column."""
    return [row, *(matrix.cells[(row, k)].shown if (row, k) in matrix.cells else "-" for k in keys)]


def _sections(matrix: Matrix) -> dict[str, list[Any]]:
    """The matrix's tables as (head, rows), shared by text and Markdown."""
    keys = [c.key for c in matrix.columns]
    verdicts = [_verdicts(matrix, row, keys) for row in matrix.rows]
    figures = []
    for row in matrix.rows:
        for k in keys:
            got = matrix.cells.get((row, k))
            if got is None:
                continue
            tokens = "-"
            if got.completion_tokens is not None:
                tokens = f"{_number(got.prompt_tokens)}/{_number(got.completion_tokens)}"
            figures.append(
                [
                    row,
                    k,
                    got.shown,
                    _ms(got.total_ms),
                    _ms(got.ttft_ms),
                    tokens,
                    _number(got.tokens_per_s, 1),
                    _number(got.size),
                    ", ".join(got.codes),
                ]
            )
    rates = [[tag, *(_rate(matrix.stats[k].rates.get(tag)) for k in keys)] for tag in matrix.tags]
    latency = []
    for c in matrix.columns:
        s = matrix.stats[c.key].latency
        total, ttft = s["total_ms"], s["ttft_ms"]
        latency.append(
            [
                c.key,
                _number(total["n"]),
                *(_ms(total[f"p{p}"]) for p in PERCENTILES),
                _number(ttft["n"]),
                *(_ms(ttft[f"p{p}"]) for p in PERCENTILES),
                sending(c),
            ]
        )
    return {
        "verdicts": [["case", *keys], verdicts],
        "figures": [
            ["case", "endpoint", "verdict", "ms", "ttft ms", "tokens in/out", "out tok/s", "bytes", "findings"],
            figures,
        ],
        "rates": [["tag", *keys], rates],
        "latency": [
            [
                "endpoint",
                "n",
                *(f"ms p{p}" for p in PERCENTILES),
                "ttft n",
                *(f"ttft p{p}" for p in PERCENTILES),
                "measured at",
            ],
            latency,
        ],
    }


def _columns_described(matrix: Matrix) -> list[str]:
    out = []
    for c in matrix.columns:
        parts = [f"model {c.model or '(none)'}", f"profile {c.profile or '?'}", c.origin or "?", sending(c)]
        out.append(f"{c.key}: {c.endpoint} of {c.run} ({'; '.join(parts)})")
    return out


def text(matrix: Matrix) -> str:
    """The matrix as plain text, for the console."""
    s = _sections(matrix)
    lines = ["columns:", *(f"  {line}" for line in _columns_described(matrix)), ""]
    lines += ["verdicts:", *(f"  {line}" for line in _table(*s["verdicts"])), ""]
    lines += ["figures (medians over repetitions):", *(f"  {line}" for line in _table(*s["figures"])), ""]
    lines += ["pass rate by tag (passed/judged):", *(f"  {line}" for line in _table(*s["rates"])), ""]
    lines += ["latency of complete answers (ms):", *(f"  {line}" for line in _table(*s["latency"]))]
    honours = [f"{key}: {', '.join(st.honours) or '-'}" for key, st in matrix.stats.items()]
    lines += ["", "every case passed, by tag:", *(f"  {line}" for line in honours)]
    if matrix.notes:
        lines += ["", "notes:", *(f"  {note}" for note in matrix.notes)]
    return "\n".join(lines) + "\n"


def markdown(matrix: Matrix, *, short: bool = False, limit: int = 30) -> str:
    """The matrix as Markdown. `short` is for a CI job's summary page: per endpoint the pass rate of the featured
    tags and the latency, then only the cases whose verdicts differ between endpoints (at most `limit`)."""
    keys = [c.key for c in matrix.columns]
    lines: list[str] = []
    if short:
        tags = [t for t in matrix.tags if t in FEATURES]
        head = ["endpoint", "passed", *tags, "ms p50/p90/p99", "ttft p50/p90/p99", "measured at"]
        rows = []
        for c in matrix.columns:
            st = matrix.stats[c.key]
            judged = sum(n for k, n in st.counts.items() if k != "skip")
            total, ttft = st.latency["total_ms"], st.latency["ttft_ms"]
            rows.append(
                [
                    c.key,
                    f"{st.counts['pass']}/{judged}",
                    *(_rate(st.rates.get(t)) for t in tags),
                    "/".join(_ms(total[f"p{p}"]) for p in PERCENTILES),
                    "/".join(_ms(ttft[f"p{p}"]) for p in PERCENTILES),
                    sending(c),
                ]
            )
        lines += _md(head, rows)
        differing = matrix.differing() if len(keys) > 1 else ()
        if differing:
            lines += ["", f"Cases where the endpoints' verdicts differ ({len(differing)}):", ""]
            lines += _md(["case", *keys], [_verdicts(matrix, row, keys) for row in differing[:limit]])
            if len(differing) > limit:
                lines += ["", f"... and {len(differing) - limit} more: `harness compare` lists them all."]
        return "\n".join(lines) + "\n"
    s = _sections(matrix)  # every row's tables: the short form, in every summary.md, builds none of them
    lines += ["## Columns", "", *(f"- {line}" for line in _columns_described(matrix)), ""]
    lines += ["## Verdicts", "", *_md(*s["verdicts"]), ""]
    lines += ["## Figures", "", "Medians over repetitions; tokens as the endpoint reported them.", ""]
    lines += [*_md(*s["figures"]), ""]
    lines += ["## Pass rate by tag", "", *_md(*s["rates"]), ""]
    lines += ["## Latency of complete answers (ms)", "", *_md(*s["latency"]), ""]
    lines += [
        "## Every case passed, by tag",
        "",
        *(f"- {key}: {', '.join(st.honours) or '-'}" for key, st in matrix.stats.items()),
    ]
    if matrix.notes:
        lines += ["", "## Notes", "", *(f"- {note}" for note in matrix.notes)]
    return "\n".join(lines) + "\n"


def write_comparison(directory: Path, runs: Sequence[Run], matrix: Matrix) -> list[Path]:
    """`compare.json` (the matrix as data, with where each column came from), `compare.md` and `report.html`,
    written atomically."""
    sources = [
        {
            "label": run.label,
            "path": run.path,
            "origin": run.origin,
            "concurrency": run.concurrency,
            "repeat": run.repeat,
            "results": len(run.records),
            "notes": list(run.notes),
        }
        for run in runs
    ]
    columns = {(c.run, c.endpoint): c.key for c in matrix.columns}
    # Each source's support matrix, its endpoints named as their columns: a parameter side by side on every endpoint.
    support = {
        columns.get((run.label, name), name): cells for run in runs for name, cells in run.support.items() if cells
    }
    data = {"format": COMPARE_FORMAT, "sources": sources, **matrix.to_json(), "support": support}
    rows = data.pop("rows")
    paths = [directory / "compare.json", directory / "compare.md", directory / "report.html"]
    # Its rows, a case each (thousands of them), one a line, as results.json has its results.
    lines = (json_text(json.dumps(row, ensure_ascii=False)) for row in rows)
    atomic_stream(paths[0], lambda out: json_document(out, data, "rows", lines))
    title = f"# Comparison of {', '.join(run.label for run in runs)}\n\n"
    table = matrix_markdown(SupportMatrix.from_json(support))
    atomic_write(paths[1], title + markdown(matrix) + ("\n" + "\n".join(table) + "\n" if table else ""))
    headers = [
        {
            "id": run.label,
            "origin": run.origin,
            "endpoints": [
                {"name": columns.get((run.label, name), name), **about} for name, about in run.endpoints.items()
            ],
        }
        for run in runs
    ]
    notes = [f"{run.label}: {note}" for run in runs for note in run.notes]
    results = _Columns(runs, columns)
    atomic_stream(paths[2], lambda out: render_html(out, records=results, runs=headers, notes=notes, support=support))
    return paths


class _Columns:
    """Every run's results whole, each endpoint renamed as its column in the matrix (`before/local`), read from
    their files each time they are iterated."""

    def __init__(self, runs: Sequence[Run], columns: dict[tuple[str, str], str]) -> None:
        self._runs = runs
        self._columns = columns

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for run in self._runs:
            for item in run.results:
                name = str(item.get("endpoint"))
                yield {**item, "endpoint": self._columns.get((run.label, name), name)}
