"""The reports a run leaves: what the console prints, junit.xml against its schema, warning counts, GitHub's hooks.

Most results are built in memory, so each test says exactly which verdicts and findings it shows; the rest replay
the bundled recordings through `harness run`, the way a CI job meets them.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from rich.console import Console as RichConsole

from harness.cli import build_parser
from harness.endpoints import Endpoint
from harness.models import Exchange, Finding, HttpResponse, Result, SentRequest, Severity, Timings, Verdict
from harness.report import RunInfo, failure_block, tell, write_reports
from harness.report.console import TABLE_LIMIT, Console
from harness.report.digest import Digest, digest
from harness.report.files import junit_xml, results_json, summarize, summary_md
from harness.report.github import annotation
from harness.report.matrix import Column, build, markdown, overview
from harness.report.records import Run, record
from harness.resources import bundled
from tests.conftest import Harness, Outcome
from tests.servers import Server

SCHEMA = Path(__file__).resolve().parent / "data" / "junit.xsd"
RECORDINGS = bundled("recordings")
ANSI = re.compile(r"\x1b\[[0-9;]*m")

INFO = RunInfo(
    run_id="20260101-000000",
    started="2026-01-01T00:00:00Z",
    finished="2026-01-01T00:00:01Z",
    duration_s=1.0,
    harness_version="0.0.0",
    endpoints=(Endpoint(name="local", base_url="http://127.0.0.1:9/v1", model="m"),),
    origin="replay:recordings",
)


def _exchange(text: str = '{"object": "chat.completion"}', status: int = 200) -> Exchange:
    return Exchange(
        request=SentRequest(
            method="POST", url="http://127.0.0.1:9/v1/chat/completions", headers={}, body={"model": "m"}
        ),
        response=HttpResponse(status=status, headers={"content-type": "application/json"}, text=text, size=len(text)),
        timings=Timings(started="2026-01-01T00:00:00Z", total_ms=12.0),
    )


def _result(case_id: str, verdict: Verdict, *findings: Finding, **more: Any) -> Result:
    fields: dict[str, Any] = {"file": "cases/text.case.yaml", "line": 2, "exchange": _exchange()} | more
    return Result(case_id=case_id, endpoint="local", verdict=verdict, findings=findings, **fields)


def _warning(code: str, pointer: str, message: str) -> Finding:
    return Finding(code=code, pointer=pointer, message=message, severity=Severity.WARNING, note="a profile said so")


def _ticking_clock(events: int) -> tuple[Finding, ...]:
    """What `stream.consistent_created` gives for a stream whose clock ticks on every one of `events` events."""
    return tuple(
        _warning(
            "stream.consistent_created",
            f"/stream/events/{i}/data/created",
            f"created changed within the stream from {1000 + i - 1} to {1000 + i}",
        )
        for i in range(1, events + 1)
    )


FAILED = _result(
    "text-basic",
    Verdict.FAIL,
    Finding(code="response.usage_total", pointer="/response/body/usage/total_tokens", message="total is wrong"),
)
ERRORED = _result(
    "text-errored",
    Verdict.ERROR,
    Finding(code="transport.connect", pointer="", message="connection refused"),
    exchange=None,
)
SKIPPED = _result("text-skipped", Verdict.SKIP, reason="no recording of case 'text-skipped'", exchange=None)
PASSED = _result("text-passed", Verdict.PASS)
WARNED = _result("text-passed", Verdict.PASS, *_ticking_clock(24), mode="stream")


def _printed(results: list[Result], **console: Any) -> str:
    """What the console prints for a run of `results`, start to finish, into a pipe (not a terminal)."""
    buffer = io.StringIO()
    out = Console(buffer, reports=[Path("r/results.json"), Path("r/junit.xml")], **console)
    tell([out], replace(INFO, banner="REPLAYED FROM RECORDINGS"), results)
    return buffer.getvalue()


@pytest.fixture
def harness(harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    """The command in an empty folder, so the bundled catalogue and recordings are the defaults."""
    monkeypatch.chdir(tmp_path)
    return harness


def _replay(harness: Callable[..., Outcome], *more: str) -> Outcome:
    """The tools cases from the bundled recordings: passes, failures, and one case run both ways."""
    return harness("run", "--replay", RECORDINGS, "--select", "tools-choice-*", "--report-dir", "r", *more)


# --- junit.xml and its schema ------------------------------------------------------------------------------------


def test_junit_of_every_verdict_is_valid() -> None:
    # Control characters in the answer's text, and a lone surrogate that a JSON "\ud800" escape decodes to.
    nasty = replace(
        FAILED,
        findings=(replace(FAILED.findings[0], actual={"a": "\ud800"}),),
        exchange=_exchange(text='{"a": "\x00\x1b[31m 50% off, a:b"}', status=500),
        line=None,  # a result built in code has no line
    )
    document = junit_xml(INFO, [nasty, ERRORED, SKIPPED, PASSED, WARNED])
    xmlschema.XMLSchema(SCHEMA).validate(document)
    assert "\\x1b[31m" in document and "\\ud800" in document, "control characters are shown, not dropped"


def test_junit_of_a_replayed_run_with_pass_fail_error_and_skip_is_valid(
    harness: Callable[..., Outcome], tmp_path: Path
) -> None:
    cases = bundled("cases")
    shutil.copy(cases / "tools.case.yaml", tmp_path / "tools.case.yaml")
    text = (cases / "text.case.yaml").read_text(encoding="utf-8")
    edited = text.replace("What is the capital of France?", "What is the capital of Spain?")  # a stale recording
    assert edited != text
    edited += '\n- id: not-recorded\n  request: {model: "${model}", messages: [{role: user, content: hi}]}\n'
    (tmp_path / "text.case.yaml").write_text(edited, encoding="utf-8")

    outcome = harness("run", "--replay", RECORDINGS, "--report-dir", "r", "text.case.yaml", "tools.case.yaml")
    assert outcome.code == 1, outcome.err
    verdicts = {r["verdict"] for r in json.loads((tmp_path / "r" / "results.json").read_text())["results"]}
    assert verdicts == {"pass", "fail", "error", "skip"}
    xmlschema.XMLSchema(SCHEMA).validate(str(tmp_path / "r" / "junit.xml"))


def test_an_answer_with_a_lone_surrogate_still_gets_its_report(tmp_path: Path) -> None:
    odd = replace(FAILED, findings=(replace(FAILED.findings[0], actual={"content": "\ud800", "text": "café 🎒"}),))
    write_reports(tmp_path, INFO, [odd])
    written = (tmp_path / "results.json").read_text(encoding="utf-8")
    assert "café 🎒" in written, "text UTF-8 can hold is written as it is"
    [result] = json.loads(written)["results"]
    assert result["findings"][0]["actual"] == {"content": "\ud800", "text": "café 🎒"}
    assert "\\ud800" in (tmp_path / "summary.md").read_text(encoding="utf-8")
    xmlschema.XMLSchema(SCHEMA).validate(str(tmp_path / "junit.xml"))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (' hostname="', ' host="'),  # a testsuite without a hostname
        (' line="2"', ' line="0"'),  # a case built in code, as junit_xml used to write it
        (' time="0.012"', ' time="12 ms"'),
        ("<skipped ", "<skip "),
    ],
)
def test_the_schema_refuses_what_dashboards_refuse(before: str, after: str) -> None:
    """The schema has teeth: what junit_xml used to write (no hostname, line 0) does not pass it."""
    document = junit_xml(INFO, [FAILED, SKIPPED, PASSED])
    assert before in document
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        xmlschema.XMLSchema(SCHEMA).validate(document.replace(before, after, 1))


# --- warnings: counted per case and code -------------------------------------------------------------------------


def test_a_repeated_warning_counts_once_for_its_case() -> None:
    other = _warning("response.system_fingerprint", "/response/body", "no system_fingerprint")
    warned = replace(WARNED, findings=(*WARNED.findings, other))
    assert summarize([warned])["warnings"] == 2
    assert "2 warnings" in _printed([warned])
    assert "**1 passed, 0 failed, 0 errors, 0 skipped, 2 warnings** out of 1." in summary_md(INFO, [warned])
    assert "| stream.consistent_created | 1 |" in summary_md(INFO, [warned])


def test_the_same_warning_in_two_cases_counts_twice() -> None:
    plain = replace(WARNED, mode="", findings=_ticking_clock(1))
    assert summarize([WARNED, plain])["warnings"] == 2
    assert "| stream.consistent_created | 2 |" in summary_md(INFO, [WARNED, plain])


def test_a_failure_block_shows_a_repeated_code_once_with_its_count() -> None:
    block = failure_block(WARNED, INFO)
    assert block.count("stream.consistent_created") == 2, block  # the headline, and one line for the code
    assert "stream.consistent_created  at /stream/events/1/data/created (first of 24)" in block
    assert "from 1000 to 1001" in block and "from 1001 to 1002" not in block
    junit = junit_xml(INFO, [WARNED])
    assert junit.count("stream.consistent_created") == 2 and "(first of 24)" in junit


def test_a_code_found_once_has_no_count() -> None:
    block = failure_block(FAILED, INFO)
    assert "response.usage_total  at /response/body/usage/total_tokens\n" in block
    assert "first of" not in block


def test_results_json_keeps_every_finding() -> None:
    [result] = json.loads(results_json(INFO, [WARNED]))["results"]
    assert len(result["findings"]) == 24
    assert json.loads(results_json(INFO, [WARNED]))["summary"]["warnings"] == 1


def test_a_digest_keeps_each_code_once_and_the_matrix_reads_the_same() -> None:
    d = digest(WARNED, INFO)
    assert d.record.findings == (("stream.consistent_created", "warning", ""),), "24 findings, one code"
    assert d.record.codes == record(WARNED).codes and d.record.verdict is Verdict.PASS
    results = [FAILED, PASSED, WARNED, SKIPPED, replace(FAILED, endpoint="other")]
    info = replace(INFO, endpoints=(*INFO.endpoints, Endpoint(name="other", base_url="http://127.0.0.1:9/v1")))
    endpoints: dict[str, dict[str, Any]] = {"local": {}, "other": {}}
    whole = Run(label="r", path="", records=tuple(record(r) for r in results), endpoints=endpoints, origin=INFO.origin)
    shown = markdown(build([whole]), short=True).rstrip()
    assert "| local | 2/3 |" in shown, shown
    assert shown in summary_md(info, results), "the digests' matrix is the one of the whole records"


def test_summary_md_folds_its_matrix_from_records_read_once() -> None:
    """A long run's summary.md reads its records back one at a time: the short matrix folded from a single pass
    is the one built from every record held, repetitions that disagree and rows where the endpoints part ways
    included, and a one-endpoint run keeps no row (there is nothing to differ)."""
    results = [
        FAILED,
        replace(FAILED, repetition=2, verdict=Verdict.PASS, findings=()),
        PASSED,
        WARNED,
        SKIPPED,
        replace(FAILED, endpoint="other"),
        replace(PASSED, endpoint="other", verdict=Verdict.FAIL),
        replace(WARNED, endpoint="other"),
    ]
    endpoints: dict[str, dict[str, Any]] = {"local": {"model": "m"}, "other": {"model": "m"}}
    run = Run(label="r", path="", records=tuple(record(r) for r in results), endpoints=endpoints, origin="live")
    columns = [Column(key=e, run="r", endpoint=e, origin="live", model="m") for e in endpoints]
    once = overview(columns, (record(r) for r in results))  # a generator: read once
    shown = markdown(once, short=True)
    assert shown == markdown(build([run]), short=True)
    assert "Cases where the endpoints' verdicts differ (2):" in shown, shown
    assert "| text-basic | fail 1/2 | fail |" in shown and "| text-passed | pass | fail |" in shown, shown
    alone = overview(columns[:1], (record(r) for r in results if r.endpoint == "local"))
    assert not alone.rows and not alone.cells
    assert "| local | 3/4 | 1/1 | 12/12/12 |" in markdown(alone, short=True), "3 of 4 judged passed, the stream too"


def test_results_json_has_its_header_indented_and_a_result_a_line() -> None:
    # A lone surrogate and a line break in an answer still leave one line a result, which reads back exactly.
    odd = replace(FAILED, findings=(replace(FAILED.findings[0], actual={"a": "\ud800", "b": "x\ny"}),))
    text = results_json(INFO, [odd, PASSED, SKIPPED])
    document = json.loads(text)
    lines = text.splitlines()
    assert lines[:3] == ["{", '  "format": "chat-conformance/results@1",', '  "run": {']
    assert '    "id": "20260101-000000",' in lines, "the header is indented for a reader"
    results = [line.rstrip(",") for line in lines[lines.index('  "results": [') + 1 : -2]]
    assert [json.loads(line) for line in results] == document["results"]
    assert document["results"][0]["findings"][0]["actual"] == {"a": "\ud800", "b": "x\ny"}
    assert lines[-2:] == ["  ]", "}"]
    assert json.loads(results_json(INFO, []))["results"] == []


# --- the console's table: a both-ways case has two rows that can be told apart ------------------------------------


def test_the_streamed_row_of_a_both_ways_case_is_marked() -> None:
    printed = _printed([PASSED, WARNED])
    rows = [line for line in printed.splitlines() if "text-passed" in line and "│" in line]
    assert len(rows) == 2
    assert "text-passed [stream]" in rows[1] and "[stream]" not in rows[0]
    assert "| text-passed [stream] |" in summary_md(INFO, [PASSED, WARNED])


def test_a_replayed_both_ways_case_shows_one_plain_and_one_streamed_row(harness: Callable[..., Outcome]) -> None:
    outcome = _replay(harness)
    rows = [line for line in outcome.out.splitlines() if "│ tools-choice-required" in line]
    assert [row.split("│")[1].strip() for row in rows] == ["tools-choice-required", "tools-choice-required [stream]"]
    assert "tools-choice-named [stream]" not in outcome.out, "a plain-only case has no streamed row"


# --- -q and --color ------------------------------------------------------------------------------------------------


def test_quiet_prints_failures_the_count_the_paths_and_the_replay_banner_only() -> None:
    printed = _printed([FAILED, PASSED, WARNED, SKIPPED], quiet=True, verbose=True)
    assert "FAILURES" in printed and failure_block(FAILED, INFO) in printed
    assert "FAIL text-basic[local] - response.usage_total: total is wrong" in printed
    assert "1 failed, 2 passed, 1 skipped, 1 warnings in" in printed
    assert "report: r/results.json" in printed and "report: r/junit.xml" in printed
    assert printed.count("REPLAYED FROM RECORDINGS") == 2  # replayed answers never pass for live ones
    for absent in ("PASS  text-passed", "Summary", "│", "WARNINGS", "cases: cases"):
        assert absent not in printed, absent


def test_without_quiet_every_case_and_the_table_are_printed() -> None:
    printed = _printed([FAILED, PASSED])
    assert "PASS  text-passed[local]" in printed and "FAIL  text-basic[local]" in printed
    assert "Summary" in printed and "│ text-passed" in printed and "REPLAYED" in printed


def test_quiet_on_the_command_line(harness: Callable[..., Outcome]) -> None:
    quiet, loud = _replay(harness, "-q"), _replay(harness)
    assert quiet.code == loud.code == 1
    assert "short test summary info" in quiet.out and "report: r/junit.xml" in quiet.out
    assert "Summary" not in quiet.out and "PASS " not in quiet.out
    # Replayed answers say so on the first and the last page even when quiet.
    lines = quiet.out.splitlines()
    assert lines[0].startswith("REPLAYED FROM RECORDINGS") and lines[-5].startswith("REPLAYED FROM RECORDINGS")
    assert lines[-4:] == [f"report: r/{name}" for name in ("results.json", "junit.xml", "summary.md", "report.html")]
    assert "Summary" in loud.out and "PASS  tools-choice-required" in loud.out
    assert not (quiet.err or loud.err)


def test_quiet_and_verbose_together_is_a_usage_error(harness: Callable[..., Outcome]) -> None:
    outcome = _replay(harness, "-q", "-v")
    assert outcome.code == 2 and "not allowed with argument" in outcome.err


def test_fuzz_takes_quiet_and_color() -> None:
    args = build_parser().parse_args(["fuzz", "--base-url", "http://x/v1", "-q", "--color", "always"])
    assert args.quiet and args.color == "always"
    assert not build_parser().parse_args(["fuzz", "--base-url", "http://x/v1"]).quiet


@pytest.mark.parametrize(
    ("color", "environ", "coloured"),
    [
        ("auto", {}, False),  # a pipe, not a terminal
        ("auto", {"NO_COLOR": "1"}, False),
        ("always", {}, True),
        ("always", {"NO_COLOR": "1"}, True),  # the flag wins over the variable
        ("never", {}, False),
    ],
)
def test_color(color: str, environ: Mapping[str, str], coloured: bool) -> None:
    printed = _printed([FAILED, PASSED], color=color, environ=environ)
    assert bool(ANSI.search(printed)) is coloured
    assert "text-passed" in ANSI.sub("", printed)


def test_color_always_on_the_command_line_beats_no_color(harness: Callable[..., Outcome]) -> None:
    assert ANSI.search(_replay(harness, "--color", "always").out)  # conftest sets NO_COLOR
    assert not ANSI.search(_replay(harness).out)
    assert not ANSI.search(_replay(harness, "--color", "never").out)
    assert _replay(harness, "--color", "sometimes").code == 2


# --- the summary table's bound, and plain text where no terminal reads it ------------------------------------------


def _table_rows(printed: str) -> list[str]:
    """The first column of the summary table's rows."""
    table = printed[printed.index("Summary\n") :]
    rows = [line for line in table.splitlines() if line.startswith("│ ")]
    return [row.split("│")[1].strip() for row in rows]


def _many(count: int, verdict: Verdict = Verdict.PASS) -> list[Result]:
    return [replace(PASSED if verdict is Verdict.PASS else FAILED, case_id=f"case-{n:04}") for n in range(count)]


def test_a_run_within_the_bound_shows_every_case_in_its_table() -> None:
    printed = _printed([*_many(TABLE_LIMIT - 1), FAILED])
    assert len(_table_rows(printed)) == TABLE_LIMIT
    assert "more (" not in printed


def test_a_longer_run_shows_only_what_did_not_pass_and_counts_the_rest() -> None:
    printed = _printed([*_many(TABLE_LIMIT), FAILED, SKIPPED, ERRORED])
    assert _table_rows(printed) == ["text-basic", "text-skipped", "text-errored"]
    assert f"... and {TABLE_LIMIT} more ({TABLE_LIMIT} passed): summary.md has a row for every case" in printed
    assert f"PASS  case-{TABLE_LIMIT - 1:04}[local]" in printed, "each case still has its line as it ends"


def test_the_failures_in_the_table_are_bounded_too() -> None:
    printed = _printed([*_many(3), *_many(TABLE_LIMIT + 2, Verdict.FAIL)])
    assert len(_table_rows(printed)) == TABLE_LIMIT
    assert "... and 5 more (3 passed, 2 failed): summary.md has a row for every case" in printed
    short = printed.split("short test summary info")[1]
    assert short.count("FAIL case-") == TABLE_LIMIT + 2, "every failure keeps its line in the short summary"


def test_into_a_pipe_nothing_is_rendered_by_rich(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("rendered by rich")

    for method in ("print", "rule", "out"):
        monkeypatch.setattr(RichConsole, method, refused)
    printed = _printed([FAILED, PASSED, SKIPPED, WARNED], verbose=True)
    assert "PASS  text-passed[local]" in printed and "FAILURES" in printed and "WARNINGS" in printed
    assert "│ text-skipped         │ local    │ skip    │ -" in printed
    assert printed.splitlines()[-4].startswith("─") and " 1 failed, 2 passed, 1 skipped" in printed


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_a_bar_replaces_the_line_per_case() -> None:
    screen = _Terminal()
    console = Console(screen, environ={})
    assert not console.plain
    tell([console], INFO, [FAILED, PASSED])
    printed = ANSI.sub("", screen.getvalue())
    assert "FAIL text-basic[local] - response.usage_total: total is wrong" in printed
    assert "PASS  text-passed" not in printed
    assert "│ text-passed" in printed and "1 failed, 1 passed" in printed


# --- GitHub Actions -----------------------------------------------------------------------------------------------


def test_annotation_points_at_the_case_file_and_line() -> None:
    assert annotation(FAILED) == (
        "::error file=cases/text.case.yaml,line=2,title=text-basic[local]::"
        "FAIL text-basic[local] - response.usage_total: total is wrong"
    )


def test_annotation_escapes_what_github_would_misread() -> None:
    odd = replace(
        FAILED,
        case_id="a,b:c",
        file="cases/x,y:z.case.yaml",
        findings=(Finding(code="http.status", pointer="", message="100% bad\r\nsecond line: a, b"),),
    )
    line = annotation(odd)
    assert line == (
        "::error file=cases/x%2Cy%3Az.case.yaml,line=2,title=a%2Cb%3Ac[local]::"
        "FAIL a,b:c[local] - http.status: 100%25 bad%0D%0Asecond line: a, b"
    )
    assert "\n" not in line and "\r" not in line


def test_annotation_is_relative_to_the_workspace(tmp_path: Path) -> None:
    inside = replace(FAILED, file=str(tmp_path / "cases" / "text.case.yaml"))
    assert annotation(inside, str(tmp_path)).startswith("::error file=cases/text.case.yaml,line=2,")
    assert annotation(inside, "/somewhere/else").startswith(f"::error file={inside.file},")
    assert ",line=" not in annotation(replace(FAILED, line=None))


def test_failures_are_annotated_inside_github_actions() -> None:
    printed = _printed([FAILED, ERRORED, PASSED, SKIPPED], environ={"GITHUB_ACTIONS": "true"})
    lines = [line for line in printed.splitlines() if line.startswith("::")]
    assert lines == [annotation(FAILED), annotation(ERRORED)]
    quiet = _printed([FAILED, PASSED], quiet=True, environ={"GITHUB_ACTIONS": "true"})
    assert annotation(FAILED) in quiet.splitlines()


@pytest.mark.parametrize("environ", [{}, {"GITHUB_ACTIONS": "false"}, {"CI": "true"}])
def test_no_annotations_outside_github_actions(environ: Mapping[str, str]) -> None:
    assert "::error" not in _printed([FAILED, ERRORED], environ=environ)


def test_a_run_annotates_and_adds_its_summary_to_the_job(
    harness: Callable[..., Outcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = tmp_path / "step-summary.md"
    step_summary.write_text("# an earlier step's part\n", encoding="utf-8")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    outcome = _replay(harness)
    failed = [r for r in json.loads((tmp_path / "r" / "results.json").read_text())["results"] if r["verdict"] == "fail"]
    annotations = [line for line in outcome.out.splitlines() if line.startswith("::error ")]
    assert failed and len(annotations) == len(failed)
    assert all(
        f"title={r['name']}::" in a and f",line={r['line']}," in a for r, a in zip(failed, annotations, strict=True)
    )
    summary = (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")
    assert step_summary.read_text(encoding="utf-8") == "# an earlier step's part\n" + summary


def test_a_run_outside_github_actions_leaves_no_trace_of_it(harness: Callable[..., Outcome], tmp_path: Path) -> None:
    outcome = _replay(harness)
    assert outcome.code == 1 and "::error" not in outcome.out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]


def test_an_unwritable_step_summary_does_not_change_the_verdict(
    harness: Callable[..., Outcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no-such-folder" / "summary.md"))
    outcome = _replay(harness)
    assert outcome.code == 1 and "could not add the summary to GITHUB_STEP_SUMMARY" in outcome.out


def test_fuzz_adds_its_summary_to_the_job(
    server: Server, harness: Callable[..., Outcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step_summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    fuzz = ("fuzz", "--base-url", server.url("ok"), "--model", "m", "--max-examples", "3", "--seed", "1")
    outcome = harness(*fuzz, "--export", "cases", "--report-dir", "r", "-q")
    assert outcome.code == 0, outcome.out + outcome.err
    assert "FUZZ RUN against cli: 3 examples" in step_summary.read_text(encoding="utf-8")
    assert step_summary.read_text(encoding="utf-8") == (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")


def test_junit_groups_cases_by_the_name_of_their_file(harness: Callable[..., Outcome]) -> None:
    harness("run", "--replay", RECORDINGS, "--report-dir", "r")
    classes = {t.get("classname") for t in ET.parse("r/junit.xml").getroot().iter("testcase")}
    assert classes == {p.name.removesuffix(".case.yaml") for p in bundled("cases").glob("*.case.yaml")}


@pytest.mark.parametrize("result", [FAILED, ERRORED, SKIPPED, PASSED, WARNED], ids=lambda r: r.verdict.value)
def test_a_digest_made_in_another_process_reads_back_as_it_was_made(result: Result) -> None:
    # A pytest-xdist worker sends the digest to the controller as JSON, which writes junit.xml and summary.md from it.
    made = digest(result, INFO)
    sent = json.loads(json.dumps(made.to_json()))
    assert Digest.from_json(sent) == made


# --- the support matrix -------------------------------------------------------------------------------------------


def _probes(harness: Callable[..., Outcome], *more: str) -> Outcome:
    return harness("run", "--replay", RECORDINGS, *more)


def test_the_bundled_probes_give_the_matrix_in_every_report(harness: Callable[..., Outcome], tmp_path: Path) -> None:
    outcome = _probes(harness, "--select", "param:stop,param:n", "--report-dir", str(tmp_path / "r"))
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))
    support = results["support"]["llama.cpp-smollm2"]
    assert support["stop"]["verdict"] == "honoured"
    assert support["stop"]["cases"] == ["params-stop-string", "params-stop-list", "params-stop-stream"]
    assert support["n"] == {
        "verdict": "rejected",
        "cases": ["params-n-2", "params-n-sampled"],
        "why": "400, naming it",
    }
    assert support["logprobs"] == {"verdict": "not probed", "cases": []}
    assert list(results)[:4] == ["format", "run", "summary", "support"]
    summary = (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")
    assert "| `n` | rejected (params-n-2, params-n-sampled) |" in summary
    assert "│ n " in outcome.out and "Parameter support" in outcome.out
    quiet = _probes(harness, "--select", "param:n", "-q", "--report-dir", str(tmp_path / "q"))
    assert "Parameter support" not in quiet.out  # -q: only failures, and contradictions of the documentation


def test_a_contradiction_of_the_documentation_fails_the_run_even_quietly(harness: Callable[..., Outcome]) -> None:
    passing = _probes(
        harness, "--select", "params-seed", "--report-dir", "ok"
    )  # n is not probed: nothing to contradict
    assert passing.code == 0
    assert not [t for t in ET.parse("ok/junit.xml").getroot().iter("testcase") if t.get("classname") == "support"]
    outcome = _probes(harness, "--select", "param:n", "--profile", "vertex", "-q", "--report-dir", "bad")
    assert outcome.code == 1
    assert "error n[llama.cpp-smollm2]: documented as supported (https://cloud.google.com/" in outcome.out
    assert "1 against the documentation" in outcome.out
    # junit.xml fails it too, so a dashboard that reads only junit.xml agrees with the exit code
    root = ET.parse("bad/junit.xml").getroot()
    (suite,) = root.iter("testsuite")
    (departure,) = [t for t in suite.iter("testcase") if t.get("classname") == "support"]
    assert departure.get("name") == "n"
    failure = departure.find("failure")
    assert failure is not None and failure.get("type") == "support.contradicts_documentation"
    assert "documented as supported (https://cloud.google.com/" in failure.get("message", "")
    cases = len(list(suite.iter("testcase")))
    assert suite.get("tests") == root.get("tests") == str(cases)
    failed = len([t for t in suite.iter("testcase") if t.find("failure") is not None])
    assert suite.get("failures") == root.get("failures") == str(failed)


def test_report_rows_wait_on_disk_and_read_back_in_planned_order(tmp_path: Path) -> None:
    """The store of digests the report files share writes each as it comes and leaves no file once they are done."""
    from harness.report.digest import Digests, digest

    results = [FAILED, ERRORED, SKIPPED, PASSED, WARNED]
    store = Digests(tmp_path)
    store.open()
    for index in (3, 0, 4, 1, 2):  # in the order they finish
        store.add(index, results[index], INFO)
        store.add(index, results[index], INFO)  # a second reporter handed the same result: kept once
    assert list(tmp_path.iterdir()) == []  # the temp file has no name
    assert list(store) == [digest(r, INFO) for r in results]
    assert store.counts() == summarize(results)
    store.release()
    assert list(store) == [] and store.counts() == summarize(results)


def test_report_files_written_from_the_shared_store_are_those_of_the_results_in_hand(tmp_path: Path) -> None:
    results = [FAILED, ERRORED, SKIPPED, PASSED, WARNED]
    paths = write_reports(tmp_path, INFO, results)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "junit.xml",
        "report.html",
        "results.json",
        "results.jsonl",
        "summary.md",
    ]
    assert (tmp_path / "junit.xml").read_text(encoding="utf-8") == junit_xml(INFO, results)
    from harness import __version__

    as_written = replace(INFO, harness_version=__version__)  # a reporter names the version that wrote it
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == summary_md(as_written, results)
    assert len(paths) == 4
