"""The harness as a process: what start-up costs in imports, and how a run ends when it is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.resources import bundled
from tests.servers import Server

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("hypothesis", "google.auth", "httpx", "jsonschema", "rich", "pygal", "openai")


def _imported_after(argv: list[str], cwd: Path) -> set[str]:
    """The heavy packages loaded once `harness ARGV` has run in a fresh interpreter."""
    probe = (
        "import sys\nfrom harness.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        f"print('\\n'.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return set(done.stderr.split())


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    assert _imported_after(["--help"], tmp_path) == set()
    assert _imported_after(["run", "--help"], tmp_path) == set()
    assert _imported_after(["fuzz", "--help"], tmp_path) == set()


def test_each_command_imports_only_what_it_uses(tmp_path: Path) -> None:
    # lint reads YAML and validates it; it sends nothing and generates nothing.
    assert _imported_after(["lint", str(bundled("cases"))], tmp_path) == {"jsonschema"}
    # A replayed run needs no credentials and no generator.
    ran = _imported_after(["run", "--report-dir", str(tmp_path / "r")], tmp_path)
    assert "hypothesis" not in ran and "google.auth" not in ran
    assert {"httpx", "jsonschema", "rich", "pygal"} <= ran  # the probe sees a real run, and its report.html
    # The client.* checks feed every answer to openai-python, which reads in a process of its own ...
    assert "openai" not in ran
    checked = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))["run"]["clients"]
    assert checked[0].startswith("openai-python ") and "not checked" not in checked[0]
    bare = _imported_after(["run", "--report-dir", str(tmp_path / "b"), "--no-clients"], tmp_path)
    assert "openai" not in bare and "httpx" in bare  # ... unless they are left out
    left_out = json.loads((tmp_path / "b" / "results.json").read_text(encoding="utf-8"))["run"]["clients"]
    assert left_out == ["client.* checks left out (--no-clients)"]


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_exits_4_and_keeps_what_finished(
    server: Server, tmp_path: Path, how: signal.Signals
) -> None:
    (tmp_path / "harness.yaml").write_text(
        f"endpoints:\n  fast: {{base_url: '{server.url('ok')}', model: m}}\n"
        f"  stuck: {{base_url: '{server.url('slow')}', model: m}}\n",
        encoding="utf-8",
    )
    case = bundled("cases") / "text.case.yaml"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", str(case), "--select", "text-basic", "--report-dir", "out"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen = []
        for line in process.stdout:  # the fast endpoint's result comes first; the slow one never answers
            seen.append(line)
            if line.startswith("PASS  text-basic[fast]"):
                break
        else:
            pytest.fail("the run ended before the fast case passed: " + "".join(seen) + process.stderr.read())
        time.sleep(0.2)  # let the slow request be in flight
        process.send_signal(how)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 4, err
    assert "interrupted: the report holds the cases that finished" in out
    assert f"interrupted ({how.name}) after 1 passed in" in out
    assert "Traceback" not in err
    reports = tmp_path / "out"
    document = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert document["run"]["interrupted"] is True and document["run"]["interrupted_by"] == how.name
    assert [r["name"] for r in document["results"]] == ["text-basic[fast]"]
    assert document["results"][0]["verdict"] == "pass"
    assert document["summary"]["total"] == 1
    assert [json.loads(line)["name"] for line in (reports / "results.jsonl").read_text().splitlines()] == [
        "text-basic[fast]"
    ]
    junit = ET.parse(reports / "junit.xml").getroot()
    assert [t.get("name") for t in junit.iter("testcase")] == ["text-basic[fast]"]
    assert {(p.get("name"), p.get("value")) for p in junit.iter("property")} == {("interrupted", how.name)}
    summary = (reports / "summary.md").read_text(encoding="utf-8")
    assert f"INTERRUPTED ({how.name})" in summary and "| text-basic | fast | pass |" in summary


def test_a_run_that_is_not_interrupted_says_so(server: Server, tmp_path: Path) -> None:
    argv = ["run", "--base-url", server.url("ok"), "--model", "m", "--select", "text-basic", "--report-dir", "out"]
    done = subprocess.run(
        [sys.executable, "-m", "harness", *argv, str(bundled("cases") / "text.case.yaml")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert document["run"]["interrupted"] is False and document["run"]["interrupted_by"] is None
    assert "INTERRUPTED" not in (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert "interrupted" not in done.stdout


def test_a_replay_hears_a_signal_between_cases(tmp_path: Path) -> None:
    """A replayed answer never waits on a socket: the run still hands the loop its turn between cases, so a signal
    stops it mid-way, as it stops a live run (and the timers each case cancels are cleared as it goes)."""
    from benchmarks.replay_memory import _catalogue

    cases, recordings = _catalogue(tmp_path, 5)
    argv = ["run", str(cases), "--replay", str(recordings), "--report-dir", "out", "-q"]
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", *argv],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = tmp_path / "out" / "results.jsonl"
    try:
        deadline = time.monotonic() + 120
        while not (log.is_file() and log.read_text(encoding="utf-8").count("\n") >= 20):
            assert process.poll() is None, "the replay ended before 20 results were written"
            assert time.monotonic() < deadline, "no results within 120 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 4, err
    document = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert document["run"]["interrupted"] is True
    # stopped soon after the 20th result (with the cases in flight), far from the 500-odd a whole replay gives
    assert 20 <= document["summary"]["total"] < 200, document["summary"]
