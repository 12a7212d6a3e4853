"""Run the benchmarks and print one table: each figure beside baselines measured in the same run.

    python -m benchmarks [--quick] [--rounds N] [--tavern-python PATH] [P1 P2 ...]

Every figure is the median of interleaved rounds (the baseline and the harness take turns, so a machine that gets
busier slows both); only ratios within one run mean anything. The client runs pinned to one core and the local
endpoint to another, where the machine has two and allows it. Exit 0 when every target is met, 1 when one is not.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from . import plain, replay, report_share, start_up, streaming, validation, whole_process
from .common import Row, Settings, available
from .endpoint import pin, serve

BENCHMARKS: dict[str, ModuleType] = {
    "P1": plain,
    "P2": streaming,
    "P3": whole_process,
    "P4": validation,
    "P5": start_up,
    "P6": replay,
    "P7": report_share,
}
NEEDS_ENDPOINT = {"P1", "P2", "P3", "P7"}
ENDPOINT_CORE, CLIENT_CORE = 0, 1


def _cpu_model() -> str:
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def machine() -> str:
    """The line that names the machine a table was measured on."""
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), Python {platform.python_version()}, "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
    )


def _ratio(value: float, percent: bool) -> str:
    return f"{value * 100:.1f} %" if percent else f"{value:.2f}x"


def table(rows: list[Row]) -> str:
    """A Markdown table, one line per comparison; the figure is written on its row's first line only."""
    head = ("", "measure", "figure", "rounds", "baseline", "ratio", "target", "met")
    lines: list[tuple[str, ...]] = []
    for row in rows:
        comparisons = row.comparisons or (None,)
        for i, c in enumerate(comparisons):
            first = i == 0
            lines.append(
                (
                    row.bench if first else "",
                    row.measure if first else "",
                    row.figure if first else "",
                    str(row.rounds) if first else "",
                    f"{c.baseline}: {c.shown}" if c else "",
                    _ratio(c.ratio, c.percent) if c else "",
                    f"{c.target[0].replace('>=', '≥').replace('<=', '≤')} {_ratio(c.target[1], c.percent)}"
                    if c and c.target
                    else "",
                    {True: "met", False: "NOT MET", None: ""}[c.met] if c else "",
                )
            )
        if row.note:
            lines.append(("", f"({row.note})", "", "", "", "", "", ""))
    widths = [max(len(line[i]) for line in [head, *lines]) for i in range(len(head))]

    def render(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)) + " |"

    return "\n".join([render(head), render(tuple("-" * w for w in widths)), *map(render, lines)])


@contextlib.contextmanager
def _endpoint(needed: bool, pinned: bool) -> Iterator[str | None]:
    if not needed:
        yield None
        return
    with serve(ENDPOINT_CORE if pinned else None) as url:
        yield url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"which to run (default all): {', '.join(BENCHMARKS)}")
    parser.add_argument(
        "--quick", action="store_true", help="fewer cases and rounds: shows that it works, in about a minute"
    )
    parser.add_argument("--rounds", type=int, help="rounds per figure (default: each benchmark's own)")
    parser.add_argument("--tavern-python", metavar="PATH", help="an interpreter with Tavern installed, for P3")
    options = parser.parse_args(argv)
    names = [name.upper() for name in options.names] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    tavern = options.tavern_python or (sys.executable if available("tavern") else None)
    pinned = pin(CLIENT_CORE)
    rows: list[Row] = []
    failed: list[str] = []
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="benchmarks-") as scratch,
        _endpoint(bool(NEEDS_ENDPOINT & set(names)), pinned) as url,
    ):
        settings = Settings(
            quick=options.quick, rounds=options.rounds, scratch=Path(scratch), base_url=url, tavern_python=tavern
        )
        for name in names:
            module = BENCHMARKS[name]
            print(f"{name} {module.TITLE} ...", file=sys.stderr, flush=True)
            began = time.perf_counter()
            try:
                rows += module.run(settings)
            except Exception as exc:  # one broken benchmark still leaves the others' rows
                traceback.print_exc()
                said = (str(exc).splitlines() or [""])[0][:160]
                rows.append(
                    Row(bench=name, measure=module.TITLE, figure="failed", note=f"{type(exc).__name__}: {said}")
                )
                failed.append(name)
            print(f"{name} done in {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    where = "client on core 1, endpoint on core 0" if pinned else "not pinned (fewer than 2 cores allowed)"
    print(f"python -m benchmarks {' '.join(sys.argv[1:] if argv is None else argv)}")
    print(f"{machine()}; {where}; {time.perf_counter() - started:.0f} s")
    print()
    print(table(rows))
    judged = [c.met for row in rows for c in row.comparisons if c.met is not None]
    print()
    print(f"{judged.count(True)} of {len(judged)} targets met")
    if failed:
        print(f"failed to measure: {', '.join(failed)}")
    return 0 if all(judged) and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
