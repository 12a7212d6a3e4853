"""The `harness` command as a user runs it: exit codes, what it prints, what it writes, and what it never leaks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cases import load_cases, select
from harness.checks import all_codes
from harness.resources import bundled
from tests.conftest import Harness, Outcome
from tests.servers import Server, serve

REPO = Path(__file__).resolve().parent.parent
CASES = bundled("cases")
TEXT_CASES = CASES / "text.case.yaml"
SENTINEL = "sk-sentinel-0123456789"
HEADER_SENTINEL = "sk-sentinel-header-9876543210"
REPORT_FILES = ["junit.xml", "report.html", "results.json", "results.jsonl", "summary.md"]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory: no harness.yaml, no recordings, no cases/ to pick up by default."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def report_text(directory: Path) -> str:
    return "".join(p.read_text(encoding="utf-8", errors="replace") for p in sorted(directory.rglob("*")) if p.is_file())


def assert_usage_error(outcome: Outcome) -> None:
    assert outcome.code == 2, outcome
    assert outcome.err.startswith("error: "), outcome.err
    assert "Traceback" not in outcome.err + outcome.out


# --- a run -------------------------------------------------------------------------------------------------------


def test_run_against_a_conformant_endpoint(server: Server, workdir: Path, harness: Harness) -> None:
    reports = workdir / "report"
    sent_before = len(server.requests)
    # The core catalogue: what every OpenAI-compatible endpoint must answer (Google's own shapes are tagged google).
    outcome = harness(
        "run", "--base-url", server.url("ok"), "--model", "m", "--report-dir", reports, "--select", "core", CASES
    )
    assert outcome.code == 0, outcome.out + outcome.err
    cases = select(load_cases([CASES]), ["core"])
    # A case run both ways (plain and streamed) is sent twice and has two results: `id[cli]` and `id[cli][stream]`.
    names = sorted([f"{c.id}[cli]" for c in cases] + [f"{c.id}[cli][stream]" for c in cases if c.both_ways])
    assert len(server.requests) - sent_before == len(names)
    assert sorted(p.name for p in reports.iterdir()) == REPORT_FILES

    document = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert document["format"] == "chat-conformance/results@1"
    assert document["summary"]["total"] == document["summary"]["pass"] == len(names)
    assert [e["name"] for e in document["run"]["endpoints"]] == ["cli"]
    results = document["results"]
    assert sorted(r["name"] for r in results) == names
    files = {c.id: c.file for c in cases}
    for result in results:
        assert result["verdict"] == "pass" and result["findings"] == []
        assert result["endpoint"] == "cli" and result["file"] == files[result["id"]]
        assert result["timings"]["total_ms"] >= 0 and result["timings"]["started"].endswith("Z")

    root = ET.parse(reports / "junit.xml").getroot()
    testcases = root.findall(".//testcase")
    assert sorted(t.get("name") or "" for t in testcases) == names
    assert not root.findall(".//failure") and not root.findall(".//error")

    summary = (reports / "summary.md").read_text(encoding="utf-8")
    assert f"**{len(names)} passed, 0 failed" in summary
    assert f"{len(names)} passed" in outcome.out
    assert f"report: {reports / 'results.json'}" in outcome.out


def test_run_against_a_broken_endpoint(server: Server, workdir: Path, harness: Harness) -> None:
    reports = workdir / "report"
    url = server.url("usage-total-wrong")
    outcome = harness("run", "--base-url", url, "--model", "m", "--report-dir", reports, TEXT_CASES)
    assert outcome.code == 1
    assert "FAIL text-basic[cli] - response.usage_total: " in outcome.out
    assert f"harness run {TEXT_CASES} --select text-basic --base-url {url} --model m" in outcome.out

    document = json.loads((reports / "results.json").read_text(encoding="utf-8"))
    assert {r["verdict"] for r in document["results"]} == {"fail"}
    assert all([f["code"] for f in r["findings"]] == ["response.usage_total"] for r in document["results"])

    failures = ET.parse(reports / "junit.xml").getroot().findall(".//testcase/failure")
    assert len(failures) == len(document["results"])
    assert {f.get("type") for f in failures} == {"response.usage_total"}
    assert "response.usage_total" in (reports / "summary.md").read_text(encoding="utf-8")


def test_reproduce_line_names_the_profile(server: Server, workdir: Path, harness: Harness) -> None:
    """Run under openai, a missing chatcmpl- prefix fails; the reproduce line must fail the same way."""
    url = server.url("id-no-prefix")
    outcome = harness(
        "run",
        "--base-url",
        url,
        "--model",
        "m",
        "--profile",
        "openai",
        "--select",
        "text-basic",
        "--report-dir",
        workdir / "r",
        TEXT_CASES,
    )
    assert outcome.code == 1
    assert "response.id_prefix" in outcome.out
    assert f"--select text-basic --base-url {url} --model m --profile openai" in outcome.out
    assert (
        harness(
            "run",
            "--base-url",
            url,
            "--model",
            "m",
            "--select",
            "text-basic",
            "--report-dir",
            workdir / "r2",
            TEXT_CASES,
        ).code
        == 0
    ), "generic leaves id_prefix off"


def test_transport_failure_is_an_error_verdict(workdir: Path, harness: Harness) -> None:
    with serve() as gone:
        url = gone.url("ok")
    outcome = harness(
        "run",
        "--base-url",
        url,
        "--model",
        "m",
        "--select",
        "text-basic",
        "--timeout",
        "2",
        "--report-dir",
        workdir / "r",
        TEXT_CASES,
    )
    assert outcome.code == 1
    [result] = json.loads((workdir / "r" / "results.json").read_text(encoding="utf-8"))["results"]
    assert result["verdict"] == "error" and result["findings"][0]["code"] == "transport.connect"
    assert ET.parse(workdir / "r" / "junit.xml").getroot().find(".//testcase/error").get("type") == "transport.connect"


def test_reports_are_written_atomically(server: Server, workdir: Path, harness: Harness) -> None:
    reports = workdir / "report"
    for _ in range(2):  # the second run replaces the first run's files
        outcome = harness("run", "--base-url", server.url("ok"), "--model", "m", "--report-dir", reports, TEXT_CASES)
        assert outcome.code == 0
    assert sorted(p.name for p in reports.iterdir()) == REPORT_FILES
    assert not [p for p in reports.iterdir() if p.name.startswith(".")]


def test_default_report_dir_is_under_reports(server: Server, workdir: Path, harness: Harness) -> None:
    assert harness("run", "--base-url", server.url("ok"), "--model", "m", TEXT_CASES).code == 0
    [run_dir] = (workdir / "reports").iterdir()
    assert sorted(p.name for p in run_dir.iterdir()) == REPORT_FILES


def test_report_files_are_readable_as_the_umask_allows(server: Server, workdir: Path, harness: Harness) -> None:
    old = os.umask(0o022)
    try:
        harness("run", "--base-url", server.url("ok"), "--model", "m", "--report-dir", workdir / "r", TEXT_CASES)
    finally:
        os.umask(old)
    for path in (workdir / "r").iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


# --- nothing is sent when the input is wrong ---------------------------------------------------------------------


def test_broken_case_file_exits_2_and_sends_nothing(server: Server, workdir: Path, harness: Harness) -> None:
    broken = write(workdir, "typo.case.yaml", "id: typo\nrequest: {model: m}\nexpekt: {status: 200}\n")
    sent_before = len(server.requests)
    outcome = harness("run", "--base-url", server.url("ok"), "--model", "m", TEXT_CASES, broken)
    assert_usage_error(outcome)
    assert f"error: {broken}:3:1: /expekt: unknown key 'expekt' (did you mean 'expect'?)" in outcome.err
    assert len(server.requests) == sent_before
    assert not (workdir / "reports").exists()


def test_report_dir_that_is_a_file_exits_2_and_sends_nothing(server: Server, workdir: Path, harness: Harness) -> None:
    not_a_folder = write(workdir, "report", "I am a file\n")
    sent_before = len(server.requests)
    outcome = harness("run", "--base-url", server.url("ok"), "--model", "m", "--report-dir", not_a_folder, TEXT_CASES)
    assert_usage_error(outcome)
    assert str(not_a_folder) in outcome.err
    assert len(server.requests) == sent_before


def test_unknown_placeholder_exits_2_and_sends_nothing(server: Server, workdir: Path, harness: Harness) -> None:
    case = write(workdir, "ph.case.yaml", "id: ph\nrequest:\n  model: ${modle}\n  messages: []\n")
    sent_before = len(server.requests)
    outcome = harness("run", "--base-url", server.url("ok"), "--model", "m", TEXT_CASES, case)
    assert_usage_error(outcome)
    assert f"{case}:3:10: /request/model: unknown placeholder ${{modle}} (did you mean ${{model}}?)" in outcome.err
    assert len(server.requests) == sent_before


def test_var_fills_a_placeholder(server: Server, workdir: Path, harness: Harness) -> None:
    case = write(
        workdir,
        "v.case.yaml",
        "id: v\nrequest:\n  model: ${model}\n  messages: [{role: user, content: 'hi from ${region}'}]\n",
    )
    sent_before = len(server.requests)
    outcome = harness(
        "run", "--base-url", server.url("ok"), "--model", "m", "--var", "region=eu", "--report-dir", workdir / "r", case
    )
    assert outcome.code == 0, outcome
    [received] = server.requests[sent_before:]
    assert json.loads(received.body)["messages"][0]["content"] == "hi from eu"


def test_unset_api_key_variable_exits_2_and_sends_nothing(server: Server, workdir: Path, harness: Harness) -> None:
    sent_before = len(server.requests)
    outcome = harness(
        "run", "--base-url", server.url("ok"), "--model", "m", "--api-key-env", "HARNESS_TEST_KEY", TEXT_CASES
    )
    assert_usage_error(outcome)
    assert "HARNESS_TEST_KEY" in outcome.err and "not set" in outcome.err
    assert len(server.requests) == sent_before


def test_select_with_no_match_exits_2(server: Server, workdir: Path, harness: Harness) -> None:
    sent_before = len(server.requests)
    outcome = harness("run", "--base-url", server.url("ok"), "--model", "m", "--select", "no-such-case", CASES)
    assert_usage_error(outcome)
    assert "no case matches no-such-case" in outcome.err
    assert len(server.requests) == sent_before


def test_select_narrows_the_run(server: Server, workdir: Path, harness: Harness) -> None:
    outcome = harness(
        "run",
        "--base-url",
        server.url("ok"),
        "--model",
        "m",
        "--select",
        "text-basic,structured",
        "--report-dir",
        workdir / "r",
        CASES,
    )
    assert outcome.code == 0
    ids = {r["id"] for r in json.loads((workdir / "r" / "results.json").read_text(encoding="utf-8"))["results"]}
    assert ids == {"text-basic"} | {c.id for c in load_cases([CASES]) if "structured" in c.tags}


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--base-url", "ftp://example.invalid/v1", str(TEXT_CASES)],
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--concurrency", "0", str(TEXT_CASES)],
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--header", "no colon", str(TEXT_CASES)],
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--var", "novalue", str(TEXT_CASES)],
        ["run", "--base-url", "http://127.0.0.1:9/v1", "--profile", "opnai", str(TEXT_CASES)],
        ["run", "--replay", str(REPO / "no-such-folder"), str(TEXT_CASES)],
        ["run", "--base-url", "http://127.0.0.1:9/v1", str(REPO / "no-such-folder")],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(workdir: Path, harness: Harness, argv: list[str]) -> None:
    assert_usage_error(harness(*argv))


def test_help_exits_0(harness: Harness) -> None:
    outcome = harness("run", "--help")
    assert outcome.code == 0 and "--base-url" in outcome.out


# --- secrets ------------------------------------------------------------------------------------------------------


def test_api_key_is_sent_and_never_written(workdir: Path, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_TEST_KEY", SENTINEL)
    reports = workdir / "report"
    with serve(api_key=SENTINEL) as locked:
        outcome = harness(
            "run",
            "--base-url",
            locked.url("ok"),
            "--model",
            "m",
            "--api-key-env",
            "HARNESS_TEST_KEY",
            "--report-dir",
            reports,
            "-v",
            TEXT_CASES,
        )
        assert outcome.code == 0, outcome.out + outcome.err
        assert locked.requests and all(r.headers["authorization"] == f"Bearer {SENTINEL}" for r in locked.requests)
    assert SENTINEL not in outcome.out + outcome.err
    assert SENTINEL not in report_text(reports)


def test_secrets_stay_out_of_a_failing_run(workdir: Path, harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing run prints and writes the most (exchanges, failure blocks, curl lines): none may hold a secret."""
    monkeypatch.setenv("HARNESS_TEST_KEY", SENTINEL)
    reports = workdir / "report"
    with serve(api_key=SENTINEL) as locked:
        outcome = harness(
            "run",
            "--base-url",
            locked.url("usage-total-wrong+id-no-prefix"),
            "--model",
            "m",
            "--api-key-env",
            "HARNESS_TEST_KEY",
            "--header",
            f"X-Api-Key: {HEADER_SENTINEL}",
            "--profile",
            "openai",
            "--report-dir",
            reports,
            "-v",
            CASES,
        )
        assert outcome.code == 1
        assert all(r.headers.get("x-api-key") == HEADER_SENTINEL for r in locked.requests)
    written = report_text(reports)
    assert "[redacted]" in written
    for secret in (SENTINEL, HEADER_SENTINEL, "sk-sentinel"):
        assert secret not in outcome.out + outcome.err
        assert secret not in written
    assert '"Authorization: Bearer $HARNESS_TEST_KEY"' in outcome.out, "the curl line names the variable instead"
    assert "--api-key-env HARNESS_TEST_KEY" in outcome.out


def test_header_secret_is_redacted(server: Server, workdir: Path, harness: Harness) -> None:
    reports = workdir / "report"
    sent_before = len(server.requests)
    outcome = harness(
        "run",
        "--base-url",
        server.url("ok"),
        "--model",
        "m",
        "--select",
        "text-basic",
        "--header",
        f"X-Api-Key: {HEADER_SENTINEL}",
        "--report-dir",
        reports,
        TEXT_CASES,
    )
    assert outcome.code == 0
    assert [r.headers.get("x-api-key") for r in server.requests[sent_before:]] == [HEADER_SENTINEL]
    assert HEADER_SENTINEL not in outcome.out + outcome.err + report_text(reports)
    [result] = json.loads((reports / "results.json").read_text(encoding="utf-8"))["results"]
    assert result["exchange"]["request"]["headers"]["x-api-key"] == "[redacted]"


# --- lint and checks ----------------------------------------------------------------------------------------------


def test_lint_of_the_shipped_catalogue(workdir: Path, harness: Harness) -> None:
    outcome = harness("lint", CASES)
    assert outcome.code == 0
    assert outcome.out == f"{len(load_cases([CASES]))} case(s), no problems\n"


def test_lint_lists_every_problem_in_every_file(workdir: Path, harness: Harness) -> None:
    write(workdir, "cases/good.case.yaml", "id: good\nrequest: {messages: [{role: user, content: hi}]}\n")
    write(workdir, "cases/a.case.yaml", "id: a\nrequest: {}\ntags: x\n")
    write(workdir, "cases/sub/b.case.yaml", "- id: b\n  request: {}\n  expect: {content_matches: '('}\n")
    outcome = harness("lint")  # the default folder: ./cases
    assert outcome.code == 2
    lines = outcome.out.splitlines()
    assert len(lines) == 2, lines
    assert lines[0] == "cases/a.case.yaml:3:7: /tags: 'x' is not of type 'array'"
    assert lines[1].startswith("cases/sub/b.case.yaml:3:29: /0/expect/content_matches: ")
    assert "2 problem(s)" in outcome.err and "Traceback" not in outcome.err


def test_checks_lists_every_code(harness: Harness) -> None:
    outcome = harness("checks", "--profile", "openai")
    assert outcome.code == 0
    listed = {line.split()[0]: line.split()[1] for line in outcome.out.splitlines()[1:]}
    assert sorted(listed) == all_codes()
    assert listed["response.id_prefix"] == "error"
    assert harness("checks").out.count("response.id_prefix                         off") == 1


def test_checks_describes_each_runner_code_as_itself(harness: Harness) -> None:
    lines = {ln.split()[0]: ln for ln in harness("checks").out.splitlines()[1:]}
    assert "could not be completed" not in lines["harness.check_crashed"]
    transport = lines["transport.connect"].split(None, 2)[2]
    assert lines["harness.check_crashed"].split(None, 2)[2] != transport
    assert all(len(line.split()) > 2 for line in lines.values()), "every code has a description"


# --- broken input the harness must not crash on ------------------------------------------------------------------


def test_lint_of_a_file_with_a_control_character(workdir: Path, harness: Harness) -> None:
    path = write(workdir, "ctl.case.yaml", 'id: ctl\nrequest: {model: "a\x1fb"}\n')
    outcome = harness("lint", path)
    assert outcome.code == 2
    assert outcome.out.startswith(f"{path}:2:20: invalid YAML: ")
    assert "Traceback" not in outcome.err


def test_binary_value_in_a_case_is_a_case_file_error(server: Server, workdir: Path, harness: Harness) -> None:
    path = write(
        workdir,
        "bin.case.yaml",
        "id: bin\nrequest:\n  model: m\n  messages: [{role: user, content: !!binary aGVsbG8=}]\n",
    )
    outcome = harness("run", "--base-url", server.url("ok"), "--report-dir", workdir / "r", path)
    assert_usage_error(outcome)
    assert f"{path}:4:36: /request/messages/0/content: 'aGVsbG8=' (binary) is not a JSON value" in outcome.err
    assert harness("lint", path).code == 2


# --- endpoint config files ----------------------------------------------------------------------------------------

CONFIG = """\
endpoints:
  local:
    base_url: {ok}
    model: local-model
  broken:
    base_url: {broken}
    model: broken-model
    profile: openai
"""


def test_config_file_picks_an_endpoint(server: Server, workdir: Path, harness: Harness) -> None:
    write(workdir, "harness.yaml", CONFIG.format(ok=server.url("ok"), broken=server.url("usage-total-wrong")))
    sent_before = len(server.requests)
    outcome = harness("run", "--endpoint", "local", "--report-dir", workdir / "r", TEXT_CASES)
    assert outcome.code == 0, outcome
    document = json.loads((workdir / "r" / "results.json").read_text(encoding="utf-8"))
    assert [e["name"] for e in document["run"]["endpoints"]] == ["local"]
    assert {r["endpoint"] for r in document["results"]} == {"local"}
    sent = server.requests[sent_before:]
    assert sent and all(r.path == "/ok/v1/chat/completions" for r in sent)
    assert all(json.loads(r.body)["model"] == "local-model" for r in sent)


def test_config_file_runs_every_endpoint_by_default(server: Server, workdir: Path, harness: Harness) -> None:
    text = CONFIG.format(ok=server.url("ok"), broken=server.url("usage-total-wrong"))
    config = write(workdir, "elsewhere.yaml", text)
    outcome = harness("run", "--config", config, "--select", "text-basic", "--report-dir", workdir / "r", TEXT_CASES)
    assert outcome.code == 1
    results = json.loads((workdir / "r" / "results.json").read_text(encoding="utf-8"))["results"]
    assert {(r["endpoint"], r["verdict"]) for r in results} == {("local", "pass"), ("broken", "fail")}
    assert f"--select text-basic --config {config} --endpoint broken" in outcome.out
    suites = ET.parse(workdir / "r" / "junit.xml").getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["local", "broken"]


def test_unknown_endpoint_name_suggests_one(server: Server, workdir: Path, harness: Harness) -> None:
    write(workdir, "harness.yaml", CONFIG.format(ok=server.url("ok"), broken=server.url("ok")))
    outcome = harness("run", "--endpoint", "locl", TEXT_CASES)
    assert_usage_error(outcome)
    assert "no endpoint named 'locl' (did you mean 'local'?)" in outcome.err


def test_config_with_an_unknown_key(workdir: Path, harness: Harness) -> None:
    config = write(workdir, "harness.yaml", "endpoints:\n  local:\n    base_url: http://127.0.0.1:9/v1\n    modle: m\n")
    outcome = harness("run", "--endpoint", "local", TEXT_CASES)
    assert_usage_error(outcome)
    assert f"error: {config.name}:4:5: " in outcome.err
    assert "/endpoints/local/modle: unknown key 'modle' (did you mean 'model'?)" in outcome.err


def test_config_and_base_url_together_is_a_usage_error(server: Server, workdir: Path, harness: Harness) -> None:
    config = write(workdir, "c.yaml", CONFIG.format(ok=server.url("ok"), broken=server.url("ok")))
    assert_usage_error(harness("run", "--base-url", server.url("ok"), "--config", config, TEXT_CASES))


# --- the installed entry point ------------------------------------------------------------------------------------


def test_python_dash_m_harness(tmp_path: Path) -> None:
    broken = write(tmp_path, "broken.case.yaml", "id: broken\nrequest: {}\ntags: x\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_COLOR": "1"}
    clean = subprocess.run(
        [sys.executable, "-m", "harness", "lint", str(CASES)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert clean.returncode == 0, clean.stderr
    failed = subprocess.run(
        [sys.executable, "-m", "harness", "lint", str(broken)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert failed.returncode == 2
    assert failed.stdout.startswith(f"{broken}:3:7: /tags: ")
