"""P5: how long a command takes to start and finish, whole process, against importing every dependency.

`harness --help`, `harness lint FILE` (a bundled case file) and `harness run` of one case replayed from the bundled
recordings, against `python -c pass` and against a bare interpreter importing every runtime dependency at once.
Target: each command at most 0.6x that import, i.e. a command loads only what it uses. The replayed case is timed
twice: as installed with the `clients` extra (the client.* checks import openai-python, which alone outweighs every
runtime dependency together), and without it.
"""

from __future__ import annotations

import functools
import sys

from .common import Comparison, Row, Settings, byte_compiled, median_of, timed_process, without_clients

__all__ = ["run"]

NAME = "P5"
TITLE = "start-up"
TARGET = 0.6
DEPENDENCIES = "httpx, sniffio, jsonschema, yaml, hypothesis, google.auth, rich, pygal"


def _seconds(argv: list[str]) -> dict[str, float]:
    return {"s": timed_process(argv)}


def run(settings: Settings) -> list[Row]:
    from harness.resources import bundled

    rounds = settings.rounds_for(full=10, quick=2)
    cases, recordings = bundled("cases"), bundled("recordings")
    harness = [sys.executable, "-m", "harness"]
    report = str(settings.scratch / "p5-report")
    replayed = [
        *("run", str(cases / "text.case.yaml"), "--select", "text-basic", "--replay", str(recordings)),
        *("--report-dir", report, "-q"),
    ]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "import all dependencies": [sys.executable, "-c", f"import {DEPENDENCIES}"],
        "harness --help": [*harness, "--help"],
        "harness lint text.case.yaml": [*harness, "lint", str(cases / "text.case.yaml")],
        "harness run, 1 replayed case": [*harness, *replayed],
        "harness run, 1 replayed case, without the clients extra": without_clients(replayed),
    }
    byte_compiled()
    for argv in commands.values():  # warm the file cache first
        timed_process(argv)
    median = median_of(rounds, [(name, functools.partial(_seconds, argv)) for name, argv in commands.items()])
    bare, imports = median["python -c pass"]["s"], median["import all dependencies"]["s"]
    rows = [
        Row(
            bench=NAME,
            measure=f"import {DEPENDENCIES}",
            figure=f"{imports * 1000:.0f} ms",
            comparisons=(Comparison(baseline="python -c pass", shown=f"{bare * 1000:.0f} ms", ratio=imports / bare),),
            rounds=rounds,
        )
    ]
    for name in list(commands)[2:]:
        seconds = median[name]["s"]
        rows.append(
            Row(
                bench=NAME,
                measure=name,
                figure=f"{seconds * 1000:.0f} ms",
                comparisons=(
                    Comparison(
                        baseline="import all dependencies",
                        shown=f"{imports * 1000:.0f} ms",
                        ratio=seconds / imports,
                        target=("<=", TARGET),
                    ),
                    Comparison(baseline="python -c pass", shown=f"{bare * 1000:.0f} ms", ratio=seconds / bare),
                ),
                rounds=rounds,
            )
        )
    return rows
