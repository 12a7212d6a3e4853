"""What ships in the package works from any folder: the bundled catalogue and recordings, and `harness init`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.resources import BUNDLED, bundled, profile_names

REPLAY_BANNER = "REPLAYED FROM RECORDINGS in "


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder far from the checkout, as the current directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_every_bundled_folder_is_in_the_package() -> None:
    package = Path(__file__).resolve().parent.parent / "harness"
    for name in BUNDLED:
        assert bundled(name).is_dir()
        assert bundled(name).resolve().is_relative_to(package.resolve()), name
    assert {"generic", "openai", "vertex", "gemini-api", "self-deployed"} <= set(profile_names())
    with pytest.raises(ValueError, match="no bundled data called 'tests'"):
        bundled("tests")


def test_from_an_empty_folder_run_replays_the_bundled_recordings_of_the_bundled_catalogue(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "run", "--report-dir", "out")
    assert code == 1, err  # llama.cpp's real deviations
    assert out[0].startswith(REPLAY_BANNER + str(bundled("recordings")))
    assert out[1] == f"cases: {bundled('cases')} (the catalogue bundled with chat-conformance)"
    assert [line for line in out if not line.startswith("report: ")][-1].startswith(REPLAY_BANNER)
    document = json.loads((elsewhere / "out" / "results.json").read_text(encoding="utf-8"))
    assert document["run"]["origin"] == f"replay:{bundled('recordings')}"
    assert document["summary"]["skip"] == 0  # every bundled case has its bundled recording
    assert all(Path(r["file"]).parent == bundled("cases") for r in document["results"])


def test_local_cases_and_recordings_take_precedence(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (elsewhere / "cases").mkdir()
    shutil.copy(bundled("cases") / "text.case.yaml", elsewhere / "cases")
    code, out, _ = run(capsys, "run", "--report-dir", "out")
    assert code == 0
    assert out[1] == "cases: ./cases"
    ran = json.loads((elsewhere / "out" / "results.json").read_text(encoding="utf-8"))["results"]
    assert {r["file"] for r in ran} == {"cases/text.case.yaml"}

    shutil.copytree(bundled("recordings"), elsewhere / "recordings")
    recording = next((elsewhere / "recordings").rglob("text-basic.yaml"))
    data = yaml.safe_load(recording.read_text(encoding="utf-8"))
    data["request"]["body"]["max_tokens"] = 7  # no longer what the case sends: this folder's copy is the one read
    recording.write_text(yaml.safe_dump(data), encoding="utf-8")
    code, out, _ = run(capsys, "run", "--report-dir", "out2", "--select", "text-basic")
    assert code == 1
    assert out[0].startswith(REPLAY_BANNER + "./recordings, not a live run")
    assert any("replay.stale" in line and "max_tokens" in line for line in out)


def test_lint_with_no_paths_checks_the_bundled_catalogue(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "lint")
    count = sum(1 for _ in bundled("cases").rglob("*.case.yaml"))
    assert code == 0 and count >= 7
    assert out[-1].endswith("case(s), no problems")
    (elsewhere / "cases").mkdir()
    (elsewhere / "cases" / "mine.case.yaml").write_text("id: mine\nrequest: {}\ntitel: x\n", encoding="utf-8")
    code, out, _ = run(capsys, "lint")
    assert code == 2
    assert out[0].startswith("cases/mine.case.yaml:3:1: /titel: unknown key 'titel' (did you mean 'title'?)")


def test_init_writes_a_starter_suite_that_lints_and_replays(
    elsewhere: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, "init", "suite")
    assert code == 0, err
    suite = elsewhere / "suite"
    copied = sorted(p.relative_to(suite / "cases") for p in (suite / "cases").rglob("*") if p.is_file())
    shipped = sorted(p.relative_to(bundled("cases")) for p in bundled("cases").rglob("*") if p.is_file())
    assert copied == shipped
    config = (suite / "harness.yaml").read_text(encoding="utf-8")
    assert yaml.safe_load(config) == {"endpoints": {}}
    assert "# endpoints:" in config and "kind: vertex" in config  # the commented examples
    assert sorted(p.name for p in suite.iterdir()) == ["cases", "harness.yaml"]  # nothing left over

    # A starter config that names no endpoint leaves `harness run` to replay, on the suite's own cases.
    (suite / "cases" / "text.case.yaml").unlink()
    code, out, _ = run(capsys, "lint", str(suite / "cases"))
    assert code == 0
    monkeypatch.chdir(suite)
    code, out, _ = run(capsys, "run", "--report-dir", "r")
    assert code == 1
    assert out[0].startswith(REPLAY_BANNER) and out[1] == "cases: ./cases"
    results = json.loads((suite / "r" / "results.json").read_text(encoding="utf-8"))["results"]
    assert results and not any(r["id"] == "text-basic" for r in results)
    # Named on the command line, a config that defines no endpoint is a usage error that says what to do.
    code, _, err = run(capsys, "run", "--config", "harness.yaml", "--endpoint", "local")
    assert code == 2 and "names no endpoint yet" in err


def test_init_never_overwrites(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (elsewhere / "harness.yaml").write_text("endpoints: {mine: {base_url: 'http://127.0.0.1:1/v1'}}\n")
    code, _, err = run(capsys, "init")
    assert code == 2
    assert err == "error: harness.yaml: already exists; harness init never overwrites (pick another DIR)\n"
    assert not (elsewhere / "cases").exists()
    assert "mine" in (elsewhere / "harness.yaml").read_text()
