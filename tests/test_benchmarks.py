"""`python -m benchmarks` runs and prints its table: a smoke test of the runner, never of a timing.

The figures of a busy machine say nothing, so nothing here compares one with a bound; a target missed (exit 1)
is a figure, not a failure of the runner. P4 and P5 need no local endpoint and no optional baseline library.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.benchmark
def test_the_quick_benchmarks_print_their_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--rounds", "1", "P4", "P5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode in (0, 1), done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("| P4 | validate a response") for line in lines), done.stdout
    assert any(line.startswith("| P5 | harness --help") for line in lines), done.stdout
    assert "failed to measure" not in done.stdout, done.stderr
    assert lines[-1].endswith("targets met")


def test_an_unknown_benchmark_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "P9"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 2
    assert "unknown benchmark P9" in done.stderr
