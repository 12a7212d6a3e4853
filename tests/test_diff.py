"""`harness diff OLD NEW`: what changed in shape between two recording sets or runs, and nothing else.

Each recording set is recorded from the local test double through `harness run --record`, once conformant and
once with a planted change, under the same endpoint name, the way a team records a provider before and after a
model update. Two sets recorded from the same behaviour must show no drift at all: their ids, timestamps and
timings differ, their shape does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.compare import load_runs
from harness.report.drift import drift
from harness.resources import bundled
from tests.conftest import Harness
from tests.servers import Server
from tests.test_compare import configure, workdir

__all__ = ["workdir"]


def record(harness: Harness, server: Server, folder: Path, scenario: str, name: str) -> Path:
    """A recording set of endpoint `local` answering as `scenario`; returns its folder."""
    configure(folder, server, local=scenario)
    recordings = folder / name
    harness("run", "--record", recordings, "--report-dir", folder / f"report-{name}", "-q")
    (folder / "harness.yaml").unlink()
    return recordings


def changes(harness: Harness, old: Path, new: Path) -> tuple[int, list[tuple[str, str, str, str, str]]]:
    """The exit code of `harness diff --json OLD NEW` and its changes as (case, kind, pointer, old, new)."""
    outcome = harness("diff", "--json", old, new)
    data = json.loads(outcome.out)
    assert data["format"] == "chat-conformance/diff@1" and data["compared"] == 3, data
    return outcome.code, [(c["case"], c["kind"], c["pointer"], c["old"], c["new"]) for c in data["changes"]]


def test_two_recordings_of_the_same_behaviour_show_no_drift(server: Server, workdir: Path, harness: Harness) -> None:
    before = record(harness, server, workdir, "ok", "before")
    after = record(harness, server, workdir, "ok", "after")
    assert (before / "local" / "text-hello.yaml").read_text() != (after / "local" / "text-hello.yaml").read_text()
    assert changes(harness, before, after) == (0, [])
    outcome = harness("diff", before, after)
    assert outcome.code == 0 and outcome.out.endswith("no change in shape: 3 case(s) compared\n"), outcome


def test_members_that_vanished_are_listed_and_nothing_else(server: Server, workdir: Path, harness: Harness) -> None:
    before = record(harness, server, workdir, "ok", "before")
    after = record(harness, server, workdir, "no-nullable", "after")  # plain answers lose logprobs and refusal
    code, found = changes(harness, before, after)
    assert code == 1
    assert found == [
        ("text-hello", "member vanished", "/response/body/choices/*/logprobs", "null", ""),
        ("text-hello", "member vanished", "/response/body/choices/*/message/refusal", "null", ""),
        ("structured-object", "member vanished", "/response/body/choices/*/logprobs", "null", ""),
        ("structured-object", "member vanished", "/response/body/choices/*/message/refusal", "null", ""),
    ]
    outcome = harness("diff", before, after)
    assert outcome.code == 1
    assert "text-hello [local]\n  member vanished /response/body/choices/*/logprobs: null\n" in outcome.out
    assert outcome.out.endswith("4 change(s) in 2 case(s); 3 case(s) compared\n")
    # And back again: what vanished one way appeared the other.
    code, found = changes(harness, after, before)
    assert code == 1 and {kind for _, kind, *_ in found} == {"member appeared"} and len(found) == 4


def test_a_type_change_a_new_finish_reason_a_finding_and_a_verdict_flip(
    server: Server, workdir: Path, harness: Harness
) -> None:
    before = record(harness, server, workdir, "ok", "before")
    after = record(harness, server, workdir, "created-string+finish-invalid", "after")
    runs = load_runs([str(before), str(after)])
    old = {r.row: r for r in runs[0].records}
    code, found = changes(harness, before, after)
    assert code == 1
    text = [c for c in found if c[0] == "text-hello"]
    [reason] = old["text-hello"].finish_reasons
    assert text == [
        ("text-hello", "verdict", "", "pass", "fail"),
        ("text-hello", "finding new", "", "", "response.finish_reason_valid (error)"),
        ("text-hello", "finding new", "", "", "response.schema (error)"),
        ("text-hello", "finish_reason new", "", "", reason.upper()),
        ("text-hello", "finish_reason gone", "", reason, ""),
        ("text-hello", "member type", "/response/body/created", "integer", "string"),
    ]
    # created-string cannot be said in a stream: the streamed case changes only its finish_reason.
    stream = [c[1] for c in found if c[0] == "stream-hello"]
    assert "member type" not in stream and "finish_reason new" in stream
    assert len(drift(*runs)) == len(found)


def test_a_run_and_a_recording_set_compare_too(server: Server, workdir: Path, harness: Harness) -> None:
    before = record(harness, server, workdir, "ok", "before")
    configure(workdir, server, other="ok")  # another endpoint name: a lone endpoint on each side is paired
    outcome = harness("run", "--report-dir", workdir / "now", "-q")
    assert outcome.code == 0, outcome
    outcome = harness("diff", before, workdir / "now")
    assert outcome.code == 0 and "local (OLD) is compared with other (NEW)" in outcome.out, outcome


@pytest.mark.parametrize("missing", ["old", "new"])
def test_diff_of_a_missing_source_is_a_usage_error(workdir: Path, harness: Harness, missing: str) -> None:
    (workdir / "empty").mkdir()
    args = ["absent", "empty"] if missing == "old" else ["empty", "absent"]
    outcome = harness("diff", *args)
    assert outcome.code == 2 and "Traceback" not in outcome.err
    assert "error: absent: no such file or folder" in outcome.err
    assert "error: empty: neither a report folder (results.json, results.jsonl) nor a folder of recordings" in (
        outcome.err
    )


def test_the_bundled_recordings_and_a_run_that_replayed_them_show_no_drift(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, harness: Harness
) -> None:
    """Answers of a real server: judged by replaying the folder, and read back from a run's results.json."""
    monkeypatch.chdir(tmp_path)
    assert harness("run", "--report-dir", tmp_path / "run", "-q").code == 1  # llama.cpp really does deviate
    outcome = harness("diff", "--json", bundled("recordings"), tmp_path / "run")
    data = json.loads(outcome.out)
    assert outcome.code == 0 and data["changes"] == [] and data["unpaired"] == []
    assert data["compared"] == len(json.loads((tmp_path / "run" / "results.json").read_text())["results"])
