"""What every benchmark shares: its settings, the rows it reports, and the processes it times.

A row is one figure and its comparisons with baselines measured in the same run; each comparison may carry a
target (`>= 0.9` of the baseline, `<= 2` times it) that the table marks met or not met.
"""

from __future__ import annotations

import compileall
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "Comparison",
    "Row",
    "Settings",
    "Step",
    "available",
    "byte_compiled",
    "harness_run",
    "loop",
    "median_of",
    "plain_cases",
    "rate",
    "subprocess_json",
    "timed_process",
    "without_clients",
]

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Settings:
    """How much to measure: `quick` makes every benchmark small enough to check that it works in a minute."""

    quick: bool
    rounds: int | None  # None: each benchmark's own default
    scratch: Path
    base_url: str | None  # the local endpoint, for the benchmarks that send requests
    tavern_python: str | None

    def rounds_for(self, full: int, quick: int = 1) -> int:
        return self.rounds or (quick if self.quick else full)


@dataclass(frozen=True, slots=True)
class Comparison:
    """The figure against one baseline: `ratio` is figure / baseline, judged by `target` (an operator and a bound)."""

    baseline: str
    shown: str
    ratio: float
    target: tuple[str, float] | None = None
    percent: bool = False  # a share of the baseline, shown as a percentage

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        op, bound = self.target
        return self.ratio >= bound if op == ">=" else self.ratio <= bound


@dataclass(frozen=True, slots=True)
class Row:
    bench: str
    measure: str
    figure: str
    comparisons: tuple[Comparison, ...] = ()
    note: str = ""
    rounds: int = 1

    @property
    def met(self) -> bool | None:
        judged = [c.met for c in self.comparisons if c.met is not None]
        return all(judged) if judged else None


Step = tuple[str, Callable[[], dict[str, float]]]


def median_of(rounds: int, steps: Sequence[Step]) -> dict[str, dict[str, float]]:
    """Run the steps in turn, `rounds` times over (interleaved, so a machine that gets busier slows every side
    alike), and give the median of each figure each step returns."""
    samples: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for name, step in steps:
            for key, value in step().items():
                samples.setdefault(name, {}).setdefault(key, []).append(value)
    return {
        name: {key: statistics.median(values) for key, values in figures.items()} for name, figures in samples.items()
    }


def available(module: str) -> bool:
    """Whether a baseline's library is installed (the `bench` extra)."""
    return importlib.util.find_spec(module) is not None


def timed_process(argv: Sequence[str], cwd: Path | None = None, ok: Sequence[int] = (0, 1)) -> float:
    """Wall seconds of a whole process, start-up included; it must exit with one of `ok` (a verdict)."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in ok:
        raise RuntimeError(f"{' '.join(argv[:6])} ... exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def byte_compiled() -> None:
    """Write the harness's bytecode, as pip does when it installs a wheel, before a whole process is timed.

    An editable install run with PYTHONDONTWRITEBYTECODE set (as some CI images and containers do) would otherwise
    compile every module of the harness again in every process, while the dependencies it is compared with load
    from the bytecode pip wrote: a cost no installed copy pays."""
    spec = importlib.util.find_spec("harness")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        compileall.compile_dir(folder, quiet=2)  # a read-only install already has its bytecode


def without_clients(args: Sequence[str]) -> list[str]:
    """`harness ARGS` as where the `clients` extra is not installed and Node.js is not set up: the client.* checks
    then run no SDK (openai-python alone takes longer to import than every dependency of the harness together)."""
    code = (
        "import os, sys; sys.modules['openai'] = None; os.environ.pop('HARNESS_OPENAI_NODE_DIR', None); "
        f"from harness.cli import main; sys.exit(main({list(args)!r}))"
    )
    return [sys.executable, "-c", code]


def subprocess_json(argv: Sequence[str], cwd: Path | None = None) -> dict[str, Any]:
    """Run a measuring process and read the JSON figures it prints last (on stdout or stderr)."""
    done = subprocess.run(argv, cwd=cwd or ROOT, capture_output=True, text=True, check=False)
    for stream in (done.stderr, done.stdout):
        lines = stream.strip().splitlines()
        if lines and lines[-1].startswith("{"):
            figures: dict[str, Any] = json.loads(lines[-1])
            return figures
    raise RuntimeError(f"{' '.join(argv[:6])} ... exited {done.returncode} with no figures: {done.stderr[-2000:]}")


def harness_run(args: Sequence[str], scratch: Path, expect_pass: bool = True) -> dict[str, Any]:
    """`harness run ARGS` timed from inside its process (see probe.py); its report goes to a fresh folder."""
    report = scratch / f"report-{time.monotonic_ns()}"
    argv = [sys.executable, "-m", "benchmarks.probe", "run", *args, "--report-dir", str(report), "--color", "never"]
    figures = subprocess_json(argv)
    if expect_pass and figures["code"] != 0:
        raise RuntimeError(f"harness run exited {figures['code']} against canned conformant answers ({report})")
    return figures


def plain_cases(path: Path, count: int, stream: bool = False) -> Path:
    """A case file of `count` one-request cases asking the local endpoint for an answer (or a stream)."""
    from .loops import REQUEST

    request = {**REQUEST, "stream": True} if stream else REQUEST
    lines = [
        f"- id: {'stream' if stream else 'plain'}-{i:05d}\n  request: {json.dumps(request)}\n" for i in range(count)
    ]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def loop(client: str, base_url: str, requests: int, concurrency: int, stream: bool = False) -> dict[str, Any]:
    """One bare client loop (see loops.py) in a process of its own."""
    argv = [sys.executable, "-m", "benchmarks.loops", client, base_url, "--requests", str(requests)]
    argv += ["--concurrency", str(concurrency), *(["--stream"] if stream else [])]
    return subprocess_json(argv)


def rate(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.1f} {unit}"
