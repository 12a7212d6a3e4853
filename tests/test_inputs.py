"""Hostile input: every reader refuses what is past `harness.limits`, and never fails any other way than it says.

Case files, harness.yaml, profiles and recordings all go through one YAML loader, so an alias bomb or a 50 MB file
is refused by each of them at once, with the file, line and column and the bound it broke (and `harness lint`
exits 2). A JSON Schema inside a case that cannot be applied is a lint error, and a check that meets one anyway
reports it as a finding, never as a crash. And whatever bytes a reader is given, it returns cases or problems or
raises the harness's own error, in bounded time: Hypothesis feeds each reader random bytes, YAML-ish text, and
documents built from its own vocabulary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import cases as case_module
from harness.cases import lint, load_cases
from harness.checks import CheckContext, run_checks
from harness.cli import main
from harness.endpoints import load_config
from harness.errors import CaseFileError, HarnessError
from harness.limits import MAX_VALUES, RECORDING_LIMITS
from harness.models import Exchange, HttpResponse, SentRequest, Timings
from harness.profiles import load_profile
from harness.recordings import load_recordings
from harness.schemas import compile_schema, schema_problems, validate
from tests.test_yamlfile import billion_laughs


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def refused_as_a_bomb(problems: list[Any], path: Path, limit: int = MAX_VALUES) -> None:
    assert len(problems) == 1, problems
    assert str(problems[0]).startswith(f"{path}:"), problems[0]
    assert "alias bomb" in problems[0].message and str(limit) in problems[0].message
    assert problems[0].line is not None and problems[0].column is not None


# --- an alias bomb, refused by every reader, and by `harness lint` with exit 2 ------------------------------------


def test_an_alias_bomb_in_a_case_file_is_a_located_lint_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.case.yaml", billion_laughs())
    started = time.monotonic()
    cases, problems = lint([path])
    assert cases == []
    refused_as_a_bomb(problems, path)
    with pytest.raises(CaseFileError) as exc:
        load_cases([path])
    refused_as_a_bomb(exc.value.problems, path)
    assert time.monotonic() - started < 20


def test_harness_lint_exits_2_on_an_alias_bomb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "bomb.case.yaml", billion_laughs())
    assert main(["lint", str(path)]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"{path}:6:8: alias *e stands for 66430 values"), out


def test_an_alias_bomb_in_a_config_file_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "harness.yaml", billion_laughs())
    with pytest.raises(HarnessError) as exc:
        load_config(path)
    refused_as_a_bomb(exc.value.problems, path)


def test_an_alias_bomb_in_a_profile_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.yaml", billion_laughs())
    with pytest.raises(HarnessError) as exc:
        load_profile(str(path))
    refused_as_a_bomb(exc.value.problems, path)


def test_an_alias_bomb_in_a_recording_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "recordings/local/bomb.yaml", billion_laughs())
    with pytest.raises(HarnessError) as exc:
        load_recordings(tmp_path / "recordings")
    refused_as_a_bomb(exc.value.problems, path, RECORDING_LIMITS.values)  # larger bounds, a bomb all the same


def test_a_50_mib_case_file_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "huge.case.yaml"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: nothing is written
    started = time.monotonic()
    _, problems = lint([path])
    assert time.monotonic() - started < 20
    assert [str(p) for p in problems] == [
        f"{path}: file is 50 MiB (52428800 bytes), more than the 8 MiB one YAML file may hold; split it into several "
        "files"
    ]


# --- cases per run -------------------------------------------------------------------------------------------------

CASE = "- id: c{n}\n  request: {{messages: [{{role: user, content: hi}}]}}\n"


def case_file(folder: Path, name: str, first: int, count: int) -> Path:
    return write(folder, name, "".join(CASE.format(n=n) for n in range(first, first + count)))


@pytest.fixture
def three_cases_a_run(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(case_module, "MAX_CASES", 3)
    return 3


def test_a_run_of_as_many_cases_as_the_limit_loads(tmp_path: Path, three_cases_a_run: int) -> None:
    case_file(tmp_path, "a.case.yaml", 0, 2)
    case_file(tmp_path, "b.case.yaml", 2, 1)
    assert [c.id for c in load_cases([tmp_path])] == ["c0", "c1", "c2"]


def test_a_case_past_the_limit_is_located_and_says_how_to_run_the_rest(tmp_path: Path, three_cases_a_run: int) -> None:
    case_file(tmp_path, "a.case.yaml", 0, 2)
    second = case_file(tmp_path, "b.case.yaml", 2, 2)
    _, problems = lint([tmp_path])
    assert [(p.path, p.line, p.pointer) for p in problems] == [(str(second), 3, "/1")]
    assert "more than 3 cases in one run" in problems[0].message
    assert "harness run cases/a, then harness run cases/b" in problems[0].message


def test_more_case_files_than_the_limit_are_not_read(tmp_path: Path, three_cases_a_run: int) -> None:
    for n in range(5):
        case_file(tmp_path, f"f{n}.case.yaml", n, 1)
    with pytest.raises(CaseFileError) as exc:
        load_cases([tmp_path])
    [problem] = exc.value.problems
    assert problem.path == str(tmp_path) and "more than 3 case files in one run" in problem.message


# --- a JSON Schema in a case that cannot be applied: a finding, never a crash --------------------------------------

CIRCULAR = {"$defs": {"a": {"anyOf": [{"$ref": "#/$defs/a"}]}}, "properties": {"x": {"$ref": "#/$defs/a"}}}
UNRESOLVABLE = {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}
REMOTE = {"$ref": "http://127.0.0.1:9/never-fetched.json"}
INVALID = {"type": "object", "required": "x"}
TREE = {
    "$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
    "$ref": "#/$defs/node",
}


def exchange(request: dict[str, Any], message: dict[str, Any]) -> Exchange:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    return Exchange(
        request=SentRequest(method="POST", url="http://127.0.0.1:9/v1/chat/completions", headers={}, body=request),
        response=HttpResponse(
            status=200, headers={"content-type": "application/json"}, text=json.dumps(body), body=body
        ),
        timings=Timings(started="2026-01-01T00:00:00Z"),
    )


def tool_call(parameters: Any) -> Exchange:
    request = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}],
    }
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}}
    return exchange(request, {"content": None, "tool_calls": [call]})


def json_answer(schema: Any) -> Exchange:
    request = {
        "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    return exchange(request, {"content": '{"x": 1}'})


@pytest.mark.parametrize(
    "schema", [CIRCULAR, UNRESOLVABLE, REMOTE, INVALID], ids=["circular", "unresolvable", "remote", "invalid"]
)
@pytest.mark.parametrize(
    ("build", "code"), [(tool_call, "tools.arguments_valid"), (json_answer, "structured.schema_valid")]
)
def test_a_check_reports_a_schema_it_cannot_apply(build: Any, code: str, schema: dict[str, Any]) -> None:
    findings = run_checks(build(schema), CheckContext())
    assert "harness.check_crashed" not in {f.code for f in findings}, findings
    [finding] = [f for f in findings if f.code == code]
    assert "the schema cannot be applied, so this cannot be judged" in finding.message
    assert schema_problems(schema)[0].message in finding.message


@pytest.mark.parametrize(
    ("build", "code"), [(tool_call, "tools.arguments_valid"), (json_answer, "structured.schema_valid")]
)
def test_a_recursive_type_still_judges_the_answer(build: Any, code: str) -> None:
    assert code not in {f.code for f in run_checks(build(TREE), CheckContext())}
    wrong = {**TREE, "$defs": {"node": {**TREE["$defs"]["node"], "required": ["kids"]}}}  # type: ignore[dict-item]
    [finding] = [f for f in run_checks(build(wrong), CheckContext()) if f.code == code]
    assert "missing required member 'kids'" in finding.message


# --- every reader, fed anything: cases or problems, or the harness's own error --------------------------------------

FUZZ = settings(
    max_examples=100,
    deadline=None,  # the bound is on the input's size, not on one machine's speed
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],  # one file, overwritten
)

YAMLISH = st.lists(
    st.sampled_from(
        [*"ab1:-[]{}&*!?|>'\"#%@`,.\n \t~<=\\/$", "id", "request", "messages", "${model}", "&a ", "*a", "<<: ", "$ref"]
    ),
    max_size=40,
).map("".join)
WORDS = st.sampled_from(
    ["", "x", "${model}", "${modle}", "${env:HOME}", "$${", "${", "#", "#/$defs/a", "#a", "http://["]
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=False), WORDS, st.text(max_size=8)
)


def documents(keys: list[str]) -> st.SearchStrategy[Any]:
    """JSON documents whose keys come from a reader's own vocabulary, so they reach past its first checks."""
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(keys), inner, max_size=4)),
        max_leaves=12,
    )


SCHEMA_KEYS = ["$ref", "$id", "$defs", "$anchor", "$dynamicRef", "$dynamicAnchor", "$schema", "anyOf", "allOf", "not"]
SCHEMA_KEYS += ["if", "then", "properties", "items", "type", "required", "pattern", "enum", "a", "x", "minimum"]
SCHEMAS = documents(SCHEMA_KEYS)
CASES = st.fixed_dictionaries(
    {"id": st.sampled_from(["c", "d", "x y"])},
    optional={
        "request": st.fixed_dictionaries(
            {},
            optional={
                "messages": documents(["role", "content", "type", "text", "image_url", "url", "tool_calls"]),
                "tools": st.lists(
                    st.fixed_dictionaries(
                        {
                            "type": st.just("function"),
                            "function": st.fixed_dictionaries({"name": WORDS}, optional={"parameters": SCHEMAS}),
                        }
                    ),
                    max_size=2,
                ),
                "response_format": st.fixed_dictionaries(
                    {
                        "type": st.sampled_from(["json_schema", "text"]),
                        "json_schema": st.fixed_dictionaries({"name": st.just("s"), "schema": SCHEMAS}),
                    }
                ),
                "tool_choice": documents(["type", "function", "name"]),
                "temperature": SCALARS,
                "model": WORDS,
            },
        ),
        "raw_body": WORDS,
        "headers": documents(["X-A", "Authorization"]),
        "expect": documents(["status", "finish_reason", "content_matches", "pointers", "pointer", "equals"]),
        "variables": documents(["x"]),
        "nonstandard": WORDS,
        "tags": documents(["x"]),
    },
)
CONFIG_KEYS = ["kind", "base_url", "model", "project", "location", "endpoint_id", "api_version", "api_endpoint"]
CONFIG_KEYS += ["api_key_env", "access_token_env", "credentials", "headers", "variables", "profile", "timeout"]
CONFIG_WORDS = st.sampled_from(
    ["openai", "vertex", "vertex-endpoint", "gemini-api", "http://127.0.0.1:9/v1", "http://[", "v1", "global", "adc"]
)
CONFIGS = st.fixed_dictionaries(
    {
        "endpoints": st.dictionaries(
            st.sampled_from(["local", "a.b", "-bad"]),
            st.dictionaries(st.sampled_from(CONFIG_KEYS), st.one_of(CONFIG_WORDS, SCALARS, documents(["X-A"]))),
            max_size=2,
        )
    }
)


def lint_never_crashes(path: Path) -> None:
    cases, problems = lint([path])
    assert all(p.path == str(path) for p in problems), problems
    try:
        loaded = load_cases([path])
    except CaseFileError as exc:
        assert exc.problems
    else:
        assert [c.id for c in loaded] == [c.id for c in cases] or problems


def config_never_crashes(path: Path) -> None:
    try:
        endpoints = load_config(path)
    except HarnessError as exc:
        assert exc.problems
    else:
        assert isinstance(endpoints, dict)


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_as_a_case_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.case.yaml"
    path.write_bytes(data)
    lint_never_crashes(path)


@FUZZ
@given(text=YAMLISH)
def test_yamlish_text_as_a_case_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "random.case.yaml"
    path.write_text(text, encoding="utf-8")
    lint_never_crashes(path)


@FUZZ
@given(case=st.one_of(CASES, st.lists(CASES, max_size=3)))
def test_cases_built_from_the_case_vocabulary(tmp_path: Path, case: Any) -> None:
    path = tmp_path / "random.case.yaml"
    path.write_text(yaml.safe_dump(case), encoding="utf-8")
    lint_never_crashes(path)


@FUZZ
@given(schema=SCHEMAS, instance=documents(["x", "a"]))
def test_any_schema_compiles_and_validates_without_raising(schema: Any, instance: Any) -> None:
    """What a check does with a schema from a request: whatever the schema, an answer or a problem, no exception."""
    problems = schema_problems(schema)
    if isinstance(schema, dict | bool):
        errors = validate(compile_schema(schema), instance)
        if problems:
            assert [e.message for e in errors] == [
                f"the schema cannot be applied, so this cannot be judged: it is broken "
                f"{f'at {problems[0].pointer} ' if problems[0].pointer else ''}({problems[0].message})"
            ]
    else:
        assert problems


@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_as_a_config_file(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "harness.yaml"
    path.write_bytes(data)
    config_never_crashes(path)


@FUZZ
@given(text=YAMLISH)
def test_yamlish_text_as_a_config_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "harness.yaml"
    path.write_text(text, encoding="utf-8")
    config_never_crashes(path)


@FUZZ
@given(config=CONFIGS)
def test_configs_built_from_the_config_vocabulary(tmp_path: Path, config: Any) -> None:
    path = tmp_path / "harness.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    config_never_crashes(path)
