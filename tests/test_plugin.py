"""The pytest plugin, run end to end with pytester: case files become items named as `harness run` names them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cases import CASE_FILE_PATTERNS, load_cases
from harness.pytest_plugin import DEFAULT_PATTERNS
from harness.resources import bundled
from tests.servers import Server

pytest_plugins = ["pytester"]
# Each test runs pytest in a subprocess (seconds apiece): with the fuzzing suites, under -m slow, which CI runs.
pytestmark = pytest.mark.slow

RECORDINGS = bundled("recordings")
ENDPOINT = "llama.cpp-smollm2"  # the endpoint the bundled recordings were made of

CASES = """\
- id: hello
  tags: [text, core]
  request:
    model: ${model}
    messages: [{role: user, content: "Say hello."}]
- id: tools-both
  tags: [tools]
  both_ways: true
  request:
    model: ${model}
    messages: [{role: user, content: "Weather?"}]
"""
LIVE = ("--harness-base-url=http://127.0.0.1:9/v1", "--harness-model=m", "--harness-name=local")


def _run(pytester: pytest.Pytester, *args: str) -> tuple[dict[str, str], pytest.RunResult]:
    """Each item's outcome by its name in the JUnit file pytest writes, the name CI dashboards show; and the run.

    Every run is a subprocess: an in-process run would import httpcore's lazily imported parts anew, and
    pytester drops them afterwards, leaving httpx mapping exceptions of classes no longer in use.
    """
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(*args, f"--junitxml={junit}")
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        kinds = {child.tag for child in case}
        outcome = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
        assert str(case.get("name")) not in outcomes, "an item reported twice"
        outcomes[str(case.get("name"))] = outcome
    return outcomes, result


def _outcomes(pytester: pytest.Pytester, *args: str) -> dict[str, str]:
    return _run(pytester, *args)[0]


def _cli(folder: Path, *args: str) -> None:
    """`harness ARGS` in `folder`, in a process of its own, as the pytest runs are: in this one, pytester's restoring
    of the modules a test imported would leave the openai SDK's classes of an earlier run in the client checks."""
    subprocess.run([sys.executable, "-m", "harness", *args], cwd=folder, capture_output=True, check=False)


def _harness_run(folder: Path, *args: str) -> dict[str, str]:
    """Each result's outcome, as pytest would name it, from `harness run ARGS` in `folder` (its results.json)."""
    report = folder / "cli-report"
    _cli(folder, "run", *args, "--report-dir", str(report), "-q")
    return {
        r["name"]: {"pass": "passed", "fail": "failed", "error": "failed", "skip": "skipped"}[r["verdict"]]
        for r in json.loads((report / "results.json").read_text())["results"]
    }


def _workers(run: pytest.RunResult) -> set[str]:
    """The pytest-xdist workers that ran an item, from `-v` lines such as `[gw1] [ 50%] PASSED cases/...`."""
    return {line.split("]")[0].lstrip("[") for line in run.stdout.lines if line.startswith("[gw")}


def _catalogue(pytester: pytest.Pytester) -> Path:
    """The bundled catalogue copied under ./cases, where both pytest and `harness run` find it."""
    folder = pytester.path / "cases"
    shutil.copytree(bundled("cases"), folder)
    return folder


def test_installing_the_plugin_changes_no_unrelated_run(pytester: pytest.Pytester) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "mine.case.yaml" not in result.stdout.str()


def test_importing_the_plugin_loads_no_httpx_hypothesis_or_google_auth() -> None:
    code = (
        "import sys, harness.pytest_plugin; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'httpx', 'hypothesis', 'google', 'jsonschema'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_plugin_collects_the_case_file_patterns_of_harness_run() -> None:
    assert DEFAULT_PATTERNS == CASE_FILE_PATTERNS


def test_items_are_named_case_endpoint_and_mode(pytester: pytest.Pytester) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    pytester.makefile(".yaml", unrelated="a: 1\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", *LIVE)
    result.stdout.fnmatch_lines(
        [
            "mine.case.yaml::hello[[]local[]]",
            "mine.case.yaml::tools-both[[]local[]]",
            "mine.case.yaml::tools-both[[]local[]][[]stream[]]",
            "3 tests collected*",
        ]
    )
    assert "unrelated" not in result.stdout.str()


def test_tags_are_markers_that_strict_markers_accepts(pytester: pytest.Pytester) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--strict-markers", "--collect-only", "-q", "-m", "tools", *LIVE
    )
    result.stdout.fnmatch_lines(
        ["*tools-both[[]local[]]", "*tools-both[[]local[]][[]stream[]]", "2/3 tests collected*"]
    )
    assert result.ret == pytest.ExitCode.OK


def test_a_parameter_probe_is_the_marker_before_its_colon(pytester: pytest.Pytester) -> None:
    probe = "- {id: probe-stop, tags: [params, 'param:stop'], request: {model: m, messages: [], stop: '7'}}\n"
    pytester.makefile(".case.yaml", mine=CASES + probe)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--strict-markers", "--collect-only", "-q", "-m", "param", *LIVE
    )
    result.stdout.fnmatch_lines(["*probe-stop[[]local[]]", "1/4 tests collected*"])
    assert result.ret == pytest.ExitCode.OK


def test_a_case_sent_twice_is_two_items(pytester: pytest.Pytester) -> None:
    twice = "- {id: seeded, repeat: true, request: {model: m, messages: [], seed: 1}}\n"
    pytester.makefile(".case.yaml", mine=CASES + twice)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", *LIVE)
    result.stdout.fnmatch_lines(["*seeded[[]local[]]", "*seeded[[]local[]][[]repeat[]]", "5 tests collected*"])


def test_a_flag_outweighs_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    pytester.makeini("[pytest]\nharness_base_url = http://127.0.0.1:9/v1\nharness_name = from-ini\n")
    from_ini = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    from_ini.stdout.fnmatch_lines(["*hello[[]from-ini[]]"])
    from_flag = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--collect-only", "-q", "--harness-name=from-flag"
    )
    from_flag.stdout.fnmatch_lines(["*hello[[]from-flag[]]"])


def test_a_case_file_that_does_not_load_is_a_failing_item_with_the_place(pytester: pytest.Pytester) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    pytester.makefile(".case.yaml", broken="- id: x\n  request: {model: m}\n  expect: {stauts: 200}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q", *LIVE)
    result.stdout.fnmatch_lines(["broken.case.yaml::load", "4 tests collected*"])
    run = pytester.runpytest_subprocess("-p", "no:cacheprovider", "broken.case.yaml", *LIVE)
    run.assert_outcomes(failed=1)
    run.stdout.fnmatch_lines(["*broken.case.yaml:3:*unknown key 'stauts' (did you mean 'status'?)*"])


def test_a_usage_error_stops_the_session_as_harness_run_would(pytester: pytest.Pytester) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-kind=vertex")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kind vertex needs --project, --location, --model*"])


def test_a_failing_item_shows_the_failure_block_and_no_traceback(pytester: pytest.Pytester) -> None:
    _catalogue(pytester)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-k", "params-n-2", f"--harness-replay={RECORDINGS}"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            f"FAIL params-n-2[[]{ENDPOINT}[]] - *",
            f"  params-n-2[[]{ENDPOINT}[]]  cases/params.case.yaml:*",
            "  reproduce with:",
            f"    harness run cases/params.case.yaml --select params-n-2 --replay * --endpoint {ENDPOINT}",
            f"FAILED cases/params.case.yaml::params-n-2[[]{ENDPOINT}[]] - FAIL *",
        ]
    )
    out = result.stdout.str()
    assert "Traceback" not in out and "engine.py" not in out


def test_replay_gives_the_verdicts_of_harness_run(pytester: pytest.Pytester) -> None:
    _catalogue(pytester)
    expected = _harness_run(pytester.path, "--replay", str(RECORDINGS))
    seen = _outcomes(pytester, "-p", "no:cacheprovider", "cases", f"--harness-replay={RECORDINGS}")
    assert seen == expected
    assert "failed" in seen.values() and "passed" in seen.values()


def test_a_path_given_after_a_space_works_in_the_project_and_is_refused_where_it_would_move_the_rootdir(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    _catalogue(pytester)
    shutil.copytree(RECORDINGS, pytester.path / "recordings")
    spaced = _outcomes(pytester, "-p", "no:cacheprovider", "cases", "--harness-replay", "recordings")
    assert spaced == _outcomes(pytester, "-p", "no:cacheprovider", "cases", "--harness-replay=recordings")
    # Elsewhere, beside another project's ini file, pytest would root the run there before the plugin is loaded.
    shutil.copytree(RECORDINGS, tmp_path / "recordings")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    moved = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "cases", "--harness-replay", str(tmp_path / "recordings")
    )
    assert moved.ret == pytest.ExitCode.USAGE_ERROR
    moved.stderr.fnmatch_lines(
        [
            f"*--harness-replay {tmp_path / 'recordings'}: pytest took * for a test path *"
            f"rootdir ({tmp_path}) and ini file ({tmp_path / 'pytest.ini'}) *"
            f"write --harness-replay={tmp_path / 'recordings'}"
        ]
    )


def test_xdist_spreads_the_items_over_workers_with_the_verdicts_of_harness_run(pytester: pytest.Pytester) -> None:
    _catalogue(pytester)
    expected = _harness_run(pytester.path, "--replay", str(RECORDINGS))
    seen, run = _run(pytester, "-p", "no:cacheprovider", "-v", "-n", "2", "cases", f"--harness-replay={RECORDINGS}")
    assert _workers(run) == {"gw0", "gw1"}
    assert seen == expected


@pytest.mark.parametrize("workers", [(), ("-n", "2"), ("-n", "auto")], ids=["one-process", "xdist", "xdist-auto"])
def test_a_tag_selects_items_with_m_and_only_they_run(pytester: pytest.Pytester, workers: tuple[str, ...]) -> None:
    _catalogue(pytester)
    ran = _outcomes(
        pytester,
        "-p",
        "no:cacheprovider",
        *workers,
        "cases",
        "-m",
        "stream",
        f"--harness-replay={RECORDINGS}",
        "--strict-markers",
    )
    tagged = [case for case in load_cases([bundled("cases")]) if "stream" in case.tags]
    expected = {f"{c.id}[{ENDPOINT}]" for c in tagged} | {f"{c.id}[{ENDPOINT}][stream]" for c in tagged if c.both_ways}
    assert tagged and set(ran) == expected


def test_ini_keys_alone_turn_the_plugin_on_and_name_the_case_files(pytester: pytest.Pytester) -> None:
    pytester.makefile(".chat.yaml", mine=CASES)
    pytester.makeini(
        textwrap.dedent(
            f"""\
            [pytest]
            harness_replay = {RECORDINGS}
            harness_case_pattern = *.chat.yaml
            """
        )
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    result.stdout.fnmatch_lines([f"mine.chat.yaml::hello[[]{ENDPOINT}[]]", "*3 tests collected*"])


def test_a_conftest_turns_the_plugin_on_the_ini_file_and_flags_outweighing_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".chat.yaml", mine=CASES)
    pytester.makeconftest(
        """
        def pytest_harness_options(config):
            return {"base_url": "http://127.0.0.1:9/v1", "name": "from-conftest", "case_pattern": "*.chat.yaml"}
        """
    )
    collect = ("-p", "no:cacheprovider", "--collect-only", "-q")
    pytester.runpytest_subprocess(*collect).stdout.fnmatch_lines(["mine.chat.yaml::hello[[]from-conftest[]]"])
    pytester.makeini("[pytest]\nharness_name = from-ini\n")
    pytester.runpytest_subprocess(*collect).stdout.fnmatch_lines(["mine.chat.yaml::hello[[]from-ini[]]"])
    from_flag = pytester.runpytest_subprocess(*collect, "--harness-name=from-flag")
    from_flag.stdout.fnmatch_lines(["mine.chat.yaml::hello[[]from-flag[]]"])


def test_a_conftest_s_empty_options_turn_it_on_with_the_defaults_and_a_wrong_key_is_named(
    pytester: pytest.Pytester,
) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    pytester.makeconftest("def pytest_harness_options(config):\n    return {}\n")
    on = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-q")
    on.stdout.fnmatch_lines([f"mine.case.yaml::hello[[]{ENDPOINT}[]]", "3 tests collected*"])  # bundled replay
    pytester.makeconftest("def pytest_harness_options(config):\n    return {'base_ur': 'http://127.0.0.1:9/v1'}\n")
    wrong = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert wrong.ret == pytest.ExitCode.USAGE_ERROR
    wrong.stderr.fnmatch_lines(["*pytest_harness_options: unknown option 'base_ur' (did you mean 'base_url'?)*"])


def test_the_fixtures_run_cases_from_a_team_s_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_mine=f"""
        from harness.resources import bundled

        def test_endpoint(harness_endpoint):
            assert harness_endpoint.name == "{ENDPOINT}"

        def test_file(harness_run_case):
            results = harness_run_case(bundled("cases") / "params.case.yaml", select="params-n-2")
            assert [(r.name, r.verdict.value) for r in results] == [("params-n-2[{ENDPOINT}]", "fail")]
            assert results[0].exchange is not None and results[0].findings

        def test_dict(harness_run_case):
            messages = [{{"role": "user", "content": "hi"}}]
            harness_run_case({{"id": "x", "request": {{"model": "${{nope}}", "messages": messages}}}})
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--harness-replay={RECORDINGS}")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*unknown placeholder ${nope}*"])


def test_the_fixtures_skip_when_no_endpoint_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mine="def test_endpoint(harness_endpoint):\n    pass\n")
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(skipped=1)


def test_xdist_workers_report_into_one_folder_written_once_by_the_controller(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    _catalogue(pytester)
    replay = f"--harness-replay={RECORDINGS}"
    pytester.runpytest_subprocess("-p", "no:cacheprovider", "cases", replay, f"--harness-report-dir={tmp_path / 'one'}")
    seen, run = _run(
        pytester, "-p", "no:cacheprovider", "-v", "-n", "2", "cases", replay, f"--harness-report-dir={tmp_path / 'xd'}"
    )
    assert _workers(run) == {"gw0", "gw1"}
    run.stdout.fnmatch_lines([f"harness report: {tmp_path / 'xd' / 'results.json'}"])
    one, xd = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "xd"))
    names = [r["name"] for r in xd["results"]]
    assert sorted(names) == sorted(seen) and len(names) == len(set(names))  # every item, exactly once
    assert names == [r["name"] for r in one["results"]]  # in collection order, whichever worker ran each
    assert xd["summary"] == one["summary"]
    assert [r["verdict"] for r in xd["results"]] == [r["verdict"] for r in one["results"]]
    assert len((tmp_path / "xd" / "results.jsonl").read_text().splitlines()) == len(seen)
    junit = ET.parse(tmp_path / "xd" / "junit.xml").getroot()
    assert sorted(str(case.get("name")) for case in junit.iter("testcase")) == sorted(seen)
    assert {p.name for p in (tmp_path / "xd").iterdir()} == {p.name for p in (tmp_path / "one").iterdir()}


def test_a_report_folder_from_pytest_holds_what_harness_run_writes(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _catalogue(pytester)
    _cli(pytester.path, "run", "--replay", str(RECORDINGS), "--report-dir", str(tmp_path / "cli"), "-q")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "cases", f"--harness-replay={RECORDINGS}", f"--harness-report-dir={tmp_path / 'py'}"
    )
    result.stdout.fnmatch_lines([f"harness report: {tmp_path / 'py' / 'results.json'}"])
    cli, py = (json.loads((tmp_path / name / "results.json").read_text()) for name in ("cli", "py"))
    assert py["summary"] == cli["summary"]
    assert [(r["name"], r["verdict"]) for r in py["results"]] == [(r["name"], r["verdict"]) for r in cli["results"]]
    assert {p.name for p in (tmp_path / "py").iterdir()} == {p.name for p in (tmp_path / "cli").iterdir()}


def test_last_failed_sends_only_the_items_that_failed(pytester: pytest.Pytester) -> None:
    _catalogue(pytester)
    first = pytester.runpytest_subprocess("cases", f"--harness-replay={RECORDINGS}")
    failed = first.parseoutcomes()["failed"]
    again = _outcomes(pytester, "cases", "--lf", f"--harness-replay={RECORDINGS}")
    assert list(again.values()) == ["failed"] * failed


def test_deselect_takes_an_item_s_id(pytester: pytest.Pytester) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--collect-only", "-q", "--deselect=mine.case.yaml::tools-both[local][stream]", *LIVE
    )
    result.stdout.fnmatch_lines(["mine.case.yaml::hello[[]local[]]", "mine.case.yaml::tools-both[[]local[]]", "2/3 *"])
    assert "[stream]" not in result.stdout.str()


def test_an_id_defined_twice_fails_its_second_place_as_harness_run_refuses_it(pytester: pytest.Pytester) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    pytester.makefile(".case.yaml", other="- id: hello\n  request: {model: m, messages: []}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "other.case.yaml", "mine.case.yaml", "-q", *LIVE)
    result.stdout.fnmatch_lines(["*mine.case.yaml:1:*duplicate id 'hello' (first defined at other.case.yaml:1)*"])


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_recordings_made_from_pytest_replay_in_harness_run_with_the_same_verdicts(
    pytester: pytest.Pytester, server: Server, tmp_path: Path, workers: tuple[str, ...]
) -> None:
    pytester.makefile(".case.yaml", mine=CASES)
    recordings = tmp_path / "recordings"
    flags = (f"--harness-base-url={server.url('ok')}", "--harness-model=m", "--harness-name=local")
    before = len(server.requests)
    seen = _outcomes(pytester, "-p", "no:cacheprovider", *workers, *flags, f"--harness-record={recordings}")
    assert len(seen) == 3
    # One request a run: under xdist the plain and the streamed item of a both-ways case go to the same worker,
    # so neither worker sends the other's request or writes the other's recording.
    assert len(server.requests) - before == 3
    assert sorted(p.name for p in (recordings / "local").iterdir()) == [
        "hello.yaml",
        "tools-both.stream.yaml",
        "tools-both.yaml",
    ]
    assert _harness_run(pytester.path, "mine.case.yaml", "--replay", str(recordings)) == seen


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["one-process", "xdist"])
def test_an_item_marked_skip_is_not_sent(
    pytester: pytest.Pytester, server: Server, tmp_path: Path, workers: tuple[str, ...]
) -> None:
    """A team's conftest that skips an item (a known outage, a costly probe) keeps its request from going out; a
    both-ways case is sent as a pair (the second is judged against the first) while either of its items runs."""
    pytester.makefile(".case.yaml", mine=CASES)
    pytester.makeconftest(
        """
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if item.name == "hello[local]":
                    item.add_marker(pytest.mark.skip(reason="known outage"))
                if item.name == "tools-both[local][stream]":
                    item.add_marker(pytest.mark.skipif(True, reason="not today"))
        """
    )
    flags = (f"--harness-base-url={server.url('ok')}", "--harness-model=m", "--harness-name=local")
    before = len(server.requests)
    seen = _outcomes(pytester, "-p", "no:cacheprovider", *workers, *flags, f"--harness-report-dir={tmp_path / 'r'}")
    assert seen == {"hello[local]": "skipped", "tools-both[local]": "passed", "tools-both[local][stream]": "skipped"}
    assert [json.loads(r.body).get("stream", False) for r in server.requests[before:]] == [False, True]
    results = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))["results"]
    assert [r["name"] for r in results] == ["tools-both[local]"]
