"""P3: 200 one-request cases (50 with --quick) run as a user runs them: the whole process, one case at a time.

`harness run FILE --concurrency 1` against the local endpoint, against a bare loop of the same requests in a
process of its own (a synchronous `httpx.Client`, each answer JSON-parsed), and against Tavern running the same
requests as YAML tests (`pytest` over a `.tavern.yaml` file, each test checking the status) when Tavern is
installed: it is no dependency of this project, so give its interpreter with `--tavern-python` (a separate virtual
environment keeps its pytest plugin out of this one). Target: at most 2x the bare loop. The harness is timed twice:
as installed with the `clients` extra (every answer also read by openai-python, imported once), and without it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from .common import (
    Comparison,
    Row,
    Settings,
    byte_compiled,
    loop,
    median_of,
    plain_cases,
    timed_process,
    without_clients,
)
from .loops import REQUEST

__all__ = ["run"]

NAME = "P3"
TITLE = "200 one-request cases, whole process"
TARGET = 2.0


def _tavern_file(folder: Path, url: str, count: int) -> Path:
    """The same requests as Tavern tests, one YAML document each, in a folder with a pytest.ini of its own."""
    folder.mkdir(exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    stage = {
        "name": "ask",
        "request": {"url": url, "method": "POST", "json": REQUEST},
        "response": {"status_code": 200},
    }
    documents = [json.dumps({"test_name": f"plain-{i:05d}", "stages": [stage]}) for i in range(count)]
    path = folder / "test_bench.tavern.yaml"
    path.write_text("\n---\n".join(documents) + "\n", encoding="utf-8")
    return path


def run(settings: Settings) -> list[Row]:
    assert settings.base_url is not None
    url = settings.base_url
    rounds = settings.rounds_for(full=5)
    count = 50 if settings.quick else 200
    cases = plain_cases(settings.scratch / "p3.case.yaml", count)
    report = settings.scratch / "p3-report"
    args = ["run", str(cases), "--base-url", url, "--concurrency", "1", "--report-dir", str(report), "--color", "never"]
    harness = [sys.executable, "-m", "harness", *args]
    bare = [sys.executable, "-m", "benchmarks.loops", "httpx", url, "--requests", str(count)]
    steps = [
        ("harness", lambda: {"seconds": timed_process(harness, ok=(0,))}),
        ("harness without clients", lambda: {"seconds": timed_process(without_clients(args), ok=(0,))}),
        ("bare", lambda: {"seconds": timed_process(bare)}),
    ]
    byte_compiled()
    loop("httpx", url, 1, 1)  # fail here, with its error, if the loop itself cannot run
    if settings.tavern_python:
        tavern_file = _tavern_file(settings.scratch / "tavern", url.removesuffix("/v1") + "/v1/chat/completions", count)
        tavern = [settings.tavern_python, "-m", "pytest", "-q", "-p", "no:cacheprovider", tavern_file.name]
        steps.append(("tavern", lambda: {"seconds": timed_process(tavern, cwd=tavern_file.parent, ok=(0,))}))
    median = median_of(rounds, steps)
    bare_seconds = median["bare"]["seconds"]
    rows = []
    for name, measure in (
        ("harness", f"harness run, {count} cases, concurrency 1, whole process"),
        ("harness without clients", "the same, without the clients extra"),
    ):
        seconds = median[name]["seconds"]
        comparisons = [
            Comparison(
                baseline="httpx loop, whole process",
                shown=f"{bare_seconds:.2f} s",
                ratio=seconds / bare_seconds,
                target=("<=", TARGET),
            )
        ]
        if "tavern" in median:
            tavern_seconds = median["tavern"]["seconds"]
            comparisons.append(
                Comparison(
                    baseline=f"Tavern, {count} YAML tests",
                    shown=f"{tavern_seconds:.2f} s ({tavern_seconds / bare_seconds:.1f}x the loop)",
                    ratio=seconds / tavern_seconds,
                )
            )
        rows.append(
            Row(bench=NAME, measure=measure, figure=f"{seconds:.2f} s", comparisons=tuple(comparisons), rounds=rounds)
        )
    if "tavern" not in median:
        rows[-1] = replace(rows[-1], note="Tavern not measured: give its interpreter with --tavern-python")
    return rows
