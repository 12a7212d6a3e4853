"""The harness as a process: what start-up costs in imports, and how a run ends when it is interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.resources import bundled
from tests.servers import Server

REPO = Path(__file__).resolve().parent.parent
HEAVY = ("hypothesis", "google.auth", "httpx", "jsonschema", "rich")


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
    assert {"httpx", "jsonschema", "rich"} <= ran  # the probe sees a real run, not an early exit


@pytest.mark.parametrize("how", [signal.SIGINT])
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
    assert "Traceback" not in err
    document = json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in document["results"]] == ["text-basic[fast]"]
    assert document["results"][0]["verdict"] == "pass"
