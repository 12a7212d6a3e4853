"""Comparing endpoints: runs and recording sets read back as records, the matrix, and `harness compare`.

Every run here is a real `harness run` against two local test doubles that behave differently, so what is
compared is what the harness wrote, read back the way a user's earlier runs are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.compare import load_runs
from harness.errors import HarnessError
from harness.models import Verdict
from harness.report.matrix import Cell, build, percentile
from harness.report.matrix import text as matrix_text
from harness.report.records import Run
from tests.conftest import Harness
from tests.servers import Server

CASES_TEXT = """\
- id: text-hello
  tags: [text, core]
  request: {model: "${model}", messages: [{role: user, content: Say hello.}], max_tokens: 16}
- id: stream-hello
  tags: [stream, text, core]
  request: {model: "${model}", messages: [{role: user, content: Say hello.}], max_tokens: 16, stream: true}
- id: structured-object
  tags: [structured, core]
  request:
    model: ${model}
    messages: [{role: user, content: Answer in JSON.}]
    max_tokens: 64
    response_format: {type: json_object}
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory holding the cases and a config naming two endpoints that behave differently."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "small.case.yaml").write_text(CASES_TEXT, encoding="utf-8")
    return tmp_path


def configure(folder: Path, server: Server, **endpoints: str) -> Path:
    """harness.yaml naming each endpoint after the test double's scenario it answers with."""
    lines = ["endpoints:"]
    for name, scenario in endpoints.items():
        lines += [f"  {name}:", f"    base_url: {server.url(scenario)}", "    model: m"]
    path = folder / "harness.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_two(harness: Harness, server: Server, folder: Path, name: str = "run", *more: str) -> Path:
    """A run of both endpoints, `good` (conformant) and `bad` (JSON in a code fence, a wrong finish_reason)."""
    configure(folder, server, good="ok", bad="json-fenced+finish-invalid")
    reports = folder / name
    outcome = harness("run", "--report-dir", reports, "-q", *more)
    assert outcome.code == 1, outcome
    return reports


def only(runs: list[Run]) -> Run:
    assert len(runs) == 1
    return runs[0]


# --- reading back ------------------------------------------------------------------------------------------------


def test_a_report_folder_reads_back_as_its_results(server: Server, workdir: Path, harness: Harness) -> None:
    reports = run_two(harness, server, workdir)
    run = only(load_runs([str(reports)]))
    written = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert [(r.case, r.endpoint, r.verdict.value) for r in run.records] == [
        (r["id"], r["endpoint"], r["verdict"]) for r in written["results"]
    ]
    assert run.concurrency == 4 and run.repeat == 1 and set(run.endpoints) == {"good", "bad"}
    good = {r.case: r for r in run.records if r.endpoint == "good"}
    assert all(r.verdict is Verdict.PASS for r in good.values())
    assert good["text-hello"].status == 200 and good["text-hello"].size and good["text-hello"].total_ms
    assert good["stream-hello"].ttft_ms is not None and good["stream-hello"].completion_tokens is None
    assert ("/response/body/choices/*/finish_reason", "string") in good["text-hello"].shape
    assert ("/stream/events/*/data/choices/*/delta/content", "string") in good["stream-hello"].shape
    bad = {r.case: r for r in run.records if r.endpoint == "bad"}
    assert "response.finish_reason_valid" in bad["text-hello"].codes and bad["text-hello"].verdict is Verdict.FAIL
    assert bad["text-hello"].finish_reasons == tuple(r.upper() for r in good["text-hello"].finish_reasons)
    # results.json itself, and the folder, read the same.
    assert only(load_runs([str(reports / "results.json")])).records == run.records


def test_the_results_jsonl_of_a_killed_run_reads_back(server: Server, workdir: Path, harness: Harness) -> None:
    reports = run_two(harness, server, workdir)
    (reports / "results.json").unlink()  # killed before the end: only the append-only record is there
    log = reports / "results.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
    log.write_text("".join(lines[:-1]) + lines[-1][:40], encoding="utf-8")  # the last line cut while written
    run = only(load_runs([str(reports)]))
    assert len(run.records) == len(lines) - 1
    assert run.concurrency is None and "results.jsonl" in run.notes[0]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "results.json:1:2: not JSON: Expecting property name enclosed in double quotes"),
        ('{"format": "something/else@1"}', "results.json: /format: not a results file"),
        ('{"format": "chat-conformance/results@1", "results": {}}', "results.json: /results: expected a list"),
    ],
)
def test_a_bad_results_file_is_refused_saying_where(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "results.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(HarnessError) as caught:
        load_runs([str(path)])
    assert str(caught.value).startswith(str(tmp_path / expected))


def test_a_bad_result_is_located_by_its_line_and_pointer(server: Server, workdir: Path, harness: Harness) -> None:
    reports = run_two(harness, server, workdir)
    path = reports / "results.json"
    text = path.read_text(encoding="utf-8")
    assert '"verdict": "fail"' in text
    path.write_text(text.replace('"verdict": "fail"', '"verdict": "failed"', 1), encoding="utf-8")
    number = next(i for i, line in enumerate(text.splitlines(), 1) if '"verdict": "fail"' in line)
    index = next(i for i, r in enumerate(json.loads(text)["results"]) if r["verdict"] == "fail")
    with pytest.raises(HarnessError) as caught:
        load_runs([str(reports)])
    assert str(caught.value) == (
        f'{path}:{number}: /results/{index}/verdict: expected one of pass, fail, error, skip, got "failed"'
    )
    log = reports / "results.jsonl"
    log.write_text("{}\n" + log.read_text(encoding="utf-8"), encoding="utf-8")
    path.unlink()
    with pytest.raises(HarnessError) as caught:
        load_runs([str(reports)])
    assert str(caught.value).startswith(f"{log}:1: /verdict: expected one of")


def test_a_folder_that_is_neither_a_report_nor_recordings_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(HarnessError) as caught:
        load_runs([str(tmp_path / "empty"), str(tmp_path / "absent")])
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'empty'}: neither a report folder (results.json, results.jsonl) nor a folder of recordings",
        f"{tmp_path / 'absent'}: no such file or folder",
    ]


def test_a_recording_set_is_judged_by_replaying_it(server: Server, workdir: Path, harness: Harness) -> None:
    configure(workdir, server, good="ok", bad="json-fenced+finish-invalid")
    live = workdir / "live"
    outcome = harness("run", "--report-dir", live, "--record", workdir / "recordings", "-q")
    assert outcome.code == 1, outcome
    (workdir / "harness.yaml").unlink()
    recorded = only(load_runs([str(workdir / "recordings")]))
    run = only(load_runs([str(live)]))
    assert recorded.origin.startswith("replay:") and recorded.endpoints["bad"]["model"] == "m"

    def judged(run: Run) -> set[tuple[str, str, str, tuple[str, ...], tuple[tuple[str, str], ...]]]:
        return {(r.case, r.endpoint, r.verdict.value, r.codes, r.shape) for r in run.records}

    assert judged(recorded) == judged(run)


# --- the matrix ---------------------------------------------------------------------------------------------------


def test_two_endpoints_in_one_run_give_a_matrix_that_shows_the_difference(
    server: Server, workdir: Path, harness: Harness
) -> None:
    matrix = build(load_runs([str(run_two(harness, server, workdir))]))
    assert [c.key for c in matrix.columns] == ["good", "bad"]
    assert matrix.rows == ("text-hello", "stream-hello", "structured-object")
    good, bad = matrix.stats["good"], matrix.stats["bad"]
    assert good.rates == {"text": (2, 2), "core": (3, 3), "stream": (1, 1), "structured": (1, 1)}
    assert bad.rates["structured"] == (0, 1) and bad.rates["text"] == (0, 2)
    assert good.honours == ("text", "stream", "structured", "core") and bad.honours == ()
    cell = matrix.cells[("structured-object", "bad")]
    assert cell.verdict is Verdict.FAIL and "structured.content_json" in cell.codes
    assert matrix.cells[("structured-object", "good")].codes == ()
    assert matrix.differing() == matrix.rows
    text = matrix_text(matrix)
    assert "structured-object  pass  fail" in text
    assert "concurrency 4" in text
    plain = matrix.cells[("text-hello", "good")]
    assert plain.total_ms and plain.prompt_tokens and plain.completion_tokens and plain.size
    assert plain.tokens_per_s == pytest.approx(plain.completion_tokens / (plain.total_ms / 1000))
    assert matrix.cells[("stream-hello", "good")].ttft_ms is not None
    assert good.latency["total_ms"]["n"] == 3 and good.latency["ttft_ms"]["n"] == 1
    data = json.loads(json.dumps(matrix.to_json()))
    assert data["endpoints"]["bad"]["pass_rate"]["structured"] == {"passed": 0, "judged": 1}
    assert data["rows"][0]["cells"]["bad"]["verdict"] == "fail"


def test_repeated_cases_give_percentiles_measured_at_the_stated_concurrency(
    server: Server, workdir: Path, harness: Harness
) -> None:
    configure(workdir, server, slowish="ok")
    reports = workdir / "repeated"
    outcome = harness("run", "--repeat", "3", "--concurrency", "2", "--report-dir", reports, "-q")
    assert outcome.code == 0, outcome
    assert "text-hello[slowish][3/3]" in (reports / "results.json").read_text(encoding="utf-8")
    run = only(load_runs([str(reports)]))
    assert (run.concurrency, run.repeat) == (2, 3)
    matrix = build([run])
    cell = matrix.cells[("text-hello", "slowish")]
    assert cell.verdicts == (Verdict.PASS,) * 3
    latency = matrix.stats["slowish"].latency
    assert latency["total_ms"]["n"] == 9 and latency["ttft_ms"]["n"] == 3
    times = sorted(r.total_ms or 0 for r in run.records)
    assert latency["total_ms"]["p50"] == times[4] and latency["total_ms"]["p99"] == pytest.approx(
        times[7] + (times[8] - times[7]) * 0.92
    )
    assert "concurrency 2, each case 3x" in matrix_text(matrix)


def test_repeat_does_not_go_with_record(server: Server, workdir: Path, harness: Harness) -> None:
    configure(workdir, server, local="ok")
    outcome = harness("run", "--repeat", "2", "--record", workdir / "recordings")
    assert outcome.code == 2 and "--repeat: --record keeps one answer per case" in outcome.err
    assert not (workdir / "recordings").exists()


def test_percentiles_interpolate_between_ranks() -> None:
    assert percentile([], 50) is None
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 0.0, 20.0], 90) == pytest.approx(18.0)
    assert percentile(list(map(float, range(101))), 99) == 99.0


def test_a_repeated_case_that_fails_once_shows_it() -> None:
    cell = Cell(verdicts=(Verdict.PASS, Verdict.FAIL, Verdict.PASS))
    assert cell.verdict is Verdict.FAIL and cell.shown == "fail 1/3"


# --- harness compare ------------------------------------------------------------------------------------------------


def test_compare_over_two_earlier_runs(server: Server, workdir: Path, harness: Harness) -> None:
    first = run_two(harness, server, workdir, "first")
    configure(workdir, server, good="ok", bad="ok")  # later, `bad` was fixed
    second = workdir / "second"
    assert harness("run", "--report-dir", second, "-q").code == 0
    outcome = harness("compare", first, second, "--report-dir", workdir / "cmp")
    assert outcome.code == 0, outcome
    keys = ["first/good", "first/bad", "second/good", "second/bad"]
    assert "  case               " + "  ".join(keys) in outcome.out
    assert "structured-object  pass        fail       pass         pass" in outcome.out
    assert f"report: {workdir / 'cmp' / 'compare.json'}" in outcome.out
    text = (workdir / "cmp" / "compare.json").read_text(encoding="utf-8")
    data = json.loads(text)
    assert data["format"] == "chat-conformance/compare@1"
    rows = [json.loads(line.rstrip(",")) for line in text.splitlines() if line.startswith('    {"row": ')]
    assert rows == data["rows"] and len(rows) > 1, "a row a line, the rest indented"
    assert '  "sources": [' in text
    assert [s["label"] for s in data["sources"]] == ["first", "second"]
    assert [c["key"] for c in data["columns"]] == keys
    assert data["endpoints"]["second/bad"]["pass_rate"]["structured"] == {"passed": 1, "judged": 1}
    markdown = (workdir / "cmp" / "compare.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Comparison of first, second\n")
    assert "| structured-object | pass | fail | pass | pass |" in markdown
    page = (workdir / "cmp" / "report.html").read_text(encoding="utf-8")
    assert f"report: {workdir / 'cmp' / 'report.html'}" in outcome.out
    assert "comparison of 2 runs" in page
    for key in keys:  # a column per endpoint of each run, as in the matrix
        assert f'data-endpoint="{key}"' in page
    codes = {code for row in data["rows"] for code in row["cells"]["first/bad"]["codes"]}
    assert codes and all(code in page for code in codes)  # each finding, with the exchange it came from
    printed = harness("compare", "--json", first, second, "--report-dir", workdir / "cmp2")
    assert json.loads(printed.out)["columns"] == data["columns"]


def test_two_recording_sets_of_one_endpoint_stay_two_columns(server: Server, workdir: Path, harness: Harness) -> None:
    for name, scenario in (("before", "ok"), ("after", "json-fenced")):
        configure(workdir, server, local=scenario)
        harness("run", "--record", workdir / name, "--report-dir", workdir / f"report-{name}", "-q")
    (workdir / "harness.yaml").unlink()
    # `harness run` refuses to replay both at once (one answer per case and endpoint) ...
    refused = harness("run", "--replay", workdir / "before", "--replay", workdir / "after")
    assert refused.code == 2 and "is recorded in both" in refused.err
    # ... and `harness compare` lines them up side by side, neither hiding the other.
    outcome = harness("compare", workdir / "before", workdir / "after", "--report-dir", workdir / "cmp")
    assert outcome.code == 0, outcome
    assert "structured-object  pass          fail" in outcome.out
    assert "before/local: local of before" in outcome.out and "after/local: local of after" in outcome.out
    # The replayed results are kept whole beside the comparison, and report.html shows both sets' exchanges.
    kept = [json.loads(line) for line in (workdir / "cmp" / "after.results.jsonl").read_text().splitlines()]
    assert {r["id"] for r in kept} == {"text-hello", "stream-hello", "structured-object"}
    assert all(r["exchange"]["request"] for r in kept)
    page = (workdir / "cmp" / "report.html").read_text(encoding="utf-8")
    assert 'data-endpoint="before/local"' in page and 'data-endpoint="after/local"' in page


def test_compare_of_a_bad_source_is_a_usage_error(workdir: Path, harness: Harness) -> None:
    (workdir / "results.json").write_text("[]", encoding="utf-8")
    outcome = harness("compare", workdir / "results.json", "--report-dir", workdir / "cmp")
    assert outcome.code == 2 and "Traceback" not in outcome.err
    assert f"error: {workdir / 'results.json'}: /format: not a results file" in outcome.err


# --- summary.md ------------------------------------------------------------------------------------------------------


def test_summary_md_has_a_short_matrix(server: Server, workdir: Path, harness: Harness) -> None:
    summary = (run_two(harness, server, workdir) / "summary.md").read_text(encoding="utf-8")
    section = summary[summary.index("## Matrix") : summary.index("## Results")]
    lines = section.splitlines()
    assert lines[2] == (
        "| endpoint | passed | text | stream | structured | ms p50/p90/p99 | ttft p50/p90/p99 | measured at |"
    )
    assert lines[4].startswith("| good | 3/3 | 2/2 | 1/1 | 1/1 | ") and lines[4].endswith(" | concurrency 4 |")
    assert lines[5].startswith("| bad | 0/3 | 0/2 | 0/1 | 0/1 | ")
    assert "Cases where the endpoints' verdicts differ (3):" in section
    assert "| structured-object | pass | fail |" in section
    assert len(lines) < 20  # short enough for a CI job's summary page
