"""Case files as a user writes them: loading, defaults, discovery, lint problems, placeholders and selection."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cases import Case, fill, find_case_files, lint, load_cases, select
from harness.errors import CaseFileError, Problem
from harness.resources import bundled

CATALOGUE = bundled("cases")
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "google-docs" / "cases"
HI = "{messages: [{role: user, content: hi}]}"  # the least request a case that expects success may send


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(*paths: Path) -> list[str]:
    _, problems = lint(paths)
    return [str(p) for p in problems]


def one_problem(path: Path) -> str:
    problems = problems_of(path)
    assert len(problems) == 1, problems
    return problems[0]


def case_of(tmp_path: Path, text: str) -> Case:
    [case] = load_cases([write(tmp_path, "c.case.yaml", text)])
    return case


# --- loading ----------------------------------------------------------------------------------------------------


def test_minimal_case_loads_with_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "hello.case.yaml", "id: hello\nrequest:\n  messages: [{role: user, content: hi}]\n")
    [case] = load_cases([path])
    assert case.id == "hello"
    assert case.file == str(path) and case.line == 1
    assert case.request == {"messages": [{"role": "user", "content": "hi"}]}
    assert case.raw_body is None and case.headers == {} and case.tags == ()
    assert case.expect.status == ("200",)
    assert case.expect.accepts(200) and not case.expect.accepts(400) and not case.expect.negative
    assert case.expect.finish_reason == () and case.expect.content_matches is None


def test_status_class_and_list(tmp_path: Path) -> None:
    case = case_of(tmp_path, "id: neg\nrequest: {}\nexpect: {status: [4xx, 503]}\n")
    assert case.expect.accepts(404) and case.expect.accepts(503) and not case.expect.accepts(500)
    assert not case.expect.negative
    assert case_of(tmp_path, "id: neg\nrequest: {}\nexpect: {status: 4xx}\n").expect.negative


def test_a_list_of_cases_in_one_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "many.case.yaml",
        "# two cases\n- id: first\n  request: {model: m}\n\n- id: second\n  raw_body: '{'\n  tags: [negative]\n",
    )
    cases = load_cases([path])
    assert [(c.id, c.line) for c in cases] == [("first", 2), ("second", 5)]
    assert cases[1].raw_body == "{" and cases[1].request is None and cases[1].tags == ("negative",)


def test_folder_discovery_takes_only_case_files(tmp_path: Path) -> None:
    body = "id: {}\nrequest: {{}}\n"
    write(tmp_path, "a.case.yaml", body.format("a"))
    write(tmp_path, "nested/deeper/b.case.yml", body.format("b"))
    write(tmp_path, "notes.yaml", body.format("notes"))
    write(tmp_path, "c.case.yaml.bak", body.format("bak"))
    write(tmp_path, "harness.yaml", "endpoints: {}\n")
    found = find_case_files([tmp_path])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in found) == ["a.case.yaml", "nested/deeper/b.case.yml"]
    assert sorted(c.id for c in load_cases([tmp_path])) == ["a", "b"]


def test_a_file_named_explicitly_is_loaded_whatever_its_name(tmp_path: Path) -> None:
    path = write(tmp_path, "my-smoke-test.yaml", "id: smoke\nrequest: {}\n")
    assert [c.id for c in load_cases([path])] == ["smoke"]


def test_a_file_named_twice_is_loaded_once(tmp_path: Path) -> None:
    path = write(tmp_path, "a.case.yaml", "id: a\nrequest: {}\n")
    assert [c.id for c in load_cases([path, tmp_path])] == ["a"]


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError) as exc:
        load_cases([tmp_path / "nope"])
    assert str(exc.value) == f"{tmp_path / 'nope'}: no such file or folder"


# --- lint problems, each at file:line:column --------------------------------------------------------------------


def test_unknown_key_with_did_you_mean(tmp_path: Path) -> None:
    """The typical typo: `reqest` is unknown, and so the case has no request either; both are said."""
    path = write(tmp_path, "typo.case.yaml", "id: typo\nreqest: {model: m}\n")
    assert problems_of(path) == [
        f"{path}:1:1: a case needs exactly one of 'request' (a JSON body), 'raw_body' (a string sent as is) or "
        "'steps' (a conversation; its steps have their own expect, and it is not run both ways)",
        f"{path}:2:1: /reqest: unknown key 'reqest' (did you mean 'request'?); "
        "expected one of id, title, description, tags, request, raw_body, repeat, steps, both_ways, headers, expect, "
        "variables, nonstandard",
    ]


def test_a_case_runs_both_ways_or_twice_not_both(tmp_path: Path) -> None:
    path = write(tmp_path, "x.case.yaml", "id: x\nboth_ways: true\nrepeat: true\nrequest: {}\nexpect: {status: 4xx}\n")
    assert one_problem(path) == (
        f"{path}:3:1: /repeat: a case runs plain then streamed (both_ways) or twice (repeat), not both; make two cases"
    )
    [case] = load_cases([write(tmp_path, "y.case.yaml", "id: y\nrepeat: true\nrequest: {}\n")])
    assert case.repeat and case.modes == ("", "repeat")


def test_repeat_with_changes_only_the_second_request(tmp_path: Path) -> None:
    from harness.endpoints import Endpoint
    from harness.planning import plan

    text = (
        "id: y\nrequest:\n  model: ${model}\n  extra_body: {google: {thinking_config: {thinking_budget: 128}}}\n"
        "  messages: [{role: user, content: hi}]\n"
        "repeat:\n  with: {model: '${model}-2', extra_body: {google: {thinking_config: {thinking_budget: 512}}}}\n"
    )
    [case] = load_cases([write(tmp_path, "y.case.yaml", text)])
    assert case.modes == ("", "repeat")
    first, second = plan([case], [Endpoint(name="e", base_url="http://127.0.0.1:9/v1", model="m")], {})
    assert first.mode == "" and second.mode == "repeat"
    assert first.case.request == {
        "model": "m",
        "extra_body": {"google": {"thinking_config": {"thinking_budget": 128}}},
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert second.case.request == {
        "model": "m-2",  # placeholders are filled in what `with` changes too
        "extra_body": {"google": {"thinking_config": {"thinking_budget": 512}}},
        "messages": [{"role": "user", "content": "hi"}],
    }


@pytest.mark.parametrize(
    ("repeat", "expected"),
    [
        ("{with: {}}", "3:16: /repeat/with: {} should be non-empty"),
        ("{with: 3}", "3:16: /repeat/with: 3 is not of type 'object'"),
        ("{also: {seed: 1}}", "3:10: /repeat/also: unknown key 'also'; expected one of with"),
    ],
)
def test_a_bad_repeat_with_is_located(tmp_path: Path, repeat: str, expected: str) -> None:
    request = "{model: m, messages: [{role: user, content: hi}]}"
    path = write(tmp_path, "x.case.yaml", f"id: x\nrequest: {request}\nrepeat: {repeat}\n")
    assert f"{path}:{expected}" in problems_of(path)


def test_an_unknown_placeholder_in_repeat_with_is_located(tmp_path: Path) -> None:
    from harness.endpoints import Endpoint
    from harness.planning import plan

    text = "id: x\nrequest: {model: m, messages: [{role: user, content: hi}]}\nrepeat: {with: {model: '${nope}'}}\n"
    cases = load_cases([write(tmp_path, "x.case.yaml", text)])
    with pytest.raises(CaseFileError) as caught:
        plan(cases, [Endpoint(name="e", base_url="http://127.0.0.1:9/v1", model="m")], {})
    assert "/repeat/with/model" in str(caught.value) and "nope" in str(caught.value)


def test_unknown_key_in_expect(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.case.yaml", "id: typo\nrequest: {}\nexpect:\n  finish_reasons: stop\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:4:3: /expect/finish_reasons: unknown key 'finish_reasons'"), problem
    assert "(did you mean 'finish_reason'?)" in problem


def test_unknown_key_is_located_at_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.case.yaml", "id: typo\nrequest: {}\nreqest:\n  model: m\n")
    assert one_problem(path).startswith(f"{path}:3:1: /reqest: unknown key 'reqest' (did you mean 'request'?)")


def test_missing_id(tmp_path: Path) -> None:
    path = write(tmp_path, "noid.case.yaml", "# no id\ntitle: nameless\nrequest: {}\n")
    assert one_problem(path) == f"{path}:2:1: missing required key: 'id'"


def test_missing_id_in_a_list_points_at_that_case(tmp_path: Path) -> None:
    path = write(tmp_path, "list.case.yaml", f"- id: ok\n  request: {HI}\n- title: nameless\n  request: {{}}\n")
    assert one_problem(path) == f"{path}:3:3: /1: missing required key: 'id'"


def test_both_request_and_raw_body(tmp_path: Path) -> None:
    path = write(tmp_path, "both.case.yaml", "id: both\nrequest: {}\nraw_body: '{}'\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:1:1: ")
    assert "exactly one of 'request'" in problem and "'raw_body'" in problem


def test_neither_request_nor_raw_body(tmp_path: Path) -> None:
    path = write(tmp_path, "none.case.yaml", "id: none\n")
    assert "exactly one of 'request'" in one_problem(path)


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, "tags.case.yaml", 'id: tags\ntags: "x"\nrequest: {}\n')
    assert one_problem(path) == f"{path}:2:7: /tags: 'x' is not of type 'array'"


def test_invalid_regex_in_content_matches(tmp_path: Path) -> None:
    path = write(tmp_path, "re.case.yaml", "id: re\nrequest: {}\nexpect:\n  content_matches: '(unclosed'\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:4:20: /expect/content_matches: ")
    assert "(unclosed" in problem and "regex" in problem


def test_invalid_json_schema_in_tool_parameters(tmp_path: Path) -> None:
    text = """\
id: tool
request:
  tools:
    - type: function
      function:
        name: get_weather
        parameters:
          type: object
          properties:
            city: {type: strin}
  messages: [{role: user, content: hi}]
"""
    path = write(tmp_path, "tool.case.yaml", text)
    problem = one_problem(path)
    pointer = "/request/tools/0/function/parameters/properties/city/type"
    assert problem.startswith(f"{path}:10:26: {pointer}: not a valid JSON Schema: "), problem
    assert "'strin'" in problem


def test_invalid_json_schema_in_response_format(tmp_path: Path) -> None:
    text = (
        "id: fmt\nrequest:\n  response_format:\n    type: json_schema\n    json_schema:\n      name: x\n"
        "      schema: {type: object, required: name}\n  messages: [{role: user, content: hi}]\n"
    )
    path = write(tmp_path, "fmt.case.yaml", text)
    problem = one_problem(path)
    assert problem.startswith(f"{path}:7:"), problem
    assert "/request/response_format/json_schema/schema/required: not a valid JSON Schema" in problem


def test_unterminated_placeholder(tmp_path: Path) -> None:
    path = write(tmp_path, "ph.case.yaml", 'id: ph\nrequest:\n  messages:\n    - {role: user, content: "hi ${model"}\n')
    assert one_problem(path) == (
        f"{path}:4:29: /request/messages/0/content: unterminated placeholder '${{' (write '$${{' for a literal '${{')"
    )


def test_invalid_placeholder_name(tmp_path: Path) -> None:
    path = write(
        tmp_path, "ph.case.yaml", "id: ph\nrequest:\n  model: ${my model}\n  messages: [{role: user, content: hi}]\n"
    )
    assert one_problem(path).startswith(f"{path}:3:10: /request/model: invalid placeholder '${{my model}}'")


def test_duplicate_ids_across_two_files_name_the_first_location(tmp_path: Path) -> None:
    first = write(tmp_path, "a.case.yaml", f"- id: one\n  request: {HI}\n- id: twice\n  request: {HI}\n")
    second = write(tmp_path, "b.case.yaml", f"# again\n- id: twice\n  request: {HI}\n")
    problems = problems_of(tmp_path)
    assert problems == [f"{second}:2:7: /0/id: duplicate id 'twice' (first defined at {first}:3)"]
    with pytest.raises(CaseFileError):
        load_cases([tmp_path])


def test_every_problem_in_every_file_is_reported(tmp_path: Path) -> None:
    a = write(tmp_path, "a.case.yaml", "id: a\nreqest: {}\nrequest: {}\ntags: x\n")
    b = write(tmp_path, "b.case.yaml", "id: [b\n")
    c = write(tmp_path, "c.case.yaml", "- not a case\n")
    d = write(tmp_path, "d.case.yaml", "")
    problems = problems_of(tmp_path)
    assert [p.split(":")[0] for p in problems] == [str(a), str(a), str(b), str(c), str(d)]
    with pytest.raises(CaseFileError) as exc:
        load_cases([tmp_path])
    assert len(exc.value.problems) == 5
    assert "expected a case" in problems[3] and "empty case file" in problems[4]


def test_problems_are_problem_values(tmp_path: Path) -> None:
    path = write(tmp_path, "t.case.yaml", "id: t\ntags: x\nrequest: {}\n")
    [problem] = lint([path])[1]
    assert problem == Problem(str(path), "'x' is not of type 'array'", 2, 7, "/tags")


# --- placeholders -------------------------------------------------------------------------------------------------

PLACEHOLDERS = """\
id: ph
request:
  model: ${model}
  messages:
    - {role: user, content: "key ${env:HARNESS_CASE_VAR}, ${region}, price $${model}"}
headers:
  X-Model: ${model}
"""


def test_placeholders_are_filled(tmp_path: Path) -> None:
    case = case_of(tmp_path, PLACEHOLDERS)
    filled = fill(case, {"model": "gpt-test", "region": "eu"}, {"HARNESS_CASE_VAR": "v1"})
    assert filled.request == {
        "model": "gpt-test",
        "messages": [{"role": "user", "content": "key v1, eu, price ${model}"}],
    }
    assert filled.headers == {"X-Model": "gpt-test"}
    assert case.request is not None and case.request["model"] == "${model}", "the loaded case is not changed"


def test_missing_env_var_is_an_error_naming_it(tmp_path: Path) -> None:
    case = case_of(tmp_path, PLACEHOLDERS)
    with pytest.raises(CaseFileError) as exc:
        fill(case, {"model": "m", "region": "eu"}, {})
    [problem] = exc.value.problems
    assert problem.line == 5 and "HARNESS_CASE_VAR" in problem.message and "not set" in problem.message


def test_unknown_placeholder_names_the_case_position_and_a_close_match(tmp_path: Path) -> None:
    path = write(tmp_path, "c.case.yaml", "id: c\nrequest:\n  model: ${modle}\n")
    [case] = load_cases([path])
    with pytest.raises(CaseFileError) as exc:
        fill(case, {"model": "m"}, {})
    [problem] = exc.value.problems
    assert str(problem).startswith(f"{path}:3:10: /request/model: unknown placeholder ${{modle}}")
    assert "(did you mean ${model}?)" in problem.message


def test_double_dollar_is_a_literal(tmp_path: Path) -> None:
    case = case_of(tmp_path, "id: d\nraw_body: 'literal $${model} and $${env:X}'\n")
    assert fill(case, {"model": "m"}, {}).raw_body == "literal ${model} and ${env:X}"


def test_model_placeholder_is_dropped_when_the_endpoint_takes_no_model(tmp_path: Path) -> None:
    case = case_of(tmp_path, PLACEHOLDERS)
    filled = fill(case, {"model": None, "region": "eu"}, {"HARNESS_CASE_VAR": "v"})
    assert filled.request is not None and "model" not in filled.request
    assert filled.request["messages"][0]["content"] == "key v, eu, price ${model}"
    assert filled.headers == {}


def test_model_inside_text_without_a_model_is_an_error(tmp_path: Path) -> None:
    case = case_of(tmp_path, "id: t\nrequest:\n  messages: [{role: user, content: 'I am ${model}'}]\n")
    with pytest.raises(CaseFileError) as exc:
        fill(case, {"model": None}, {})
    assert "${model}" in str(exc.value) and "no value" in str(exc.value)


# --- lint catches what a run would: placeholders no endpoint is said to give ----------------------------------------


def test_a_misspelt_placeholder_is_a_lint_error_at_its_place(tmp_path: Path) -> None:
    path = write(tmp_path, "c.case.yaml", f"id: c\nrequest:\n  model: ${{modle}}\n  messages: {HI[11:-1]}\n")
    assert (
        one_problem(path) == f"{path}:3:10: /request/model: unknown placeholder ${{modle}} (did you mean ${{model}}?)"
    )


def test_a_placeholder_the_case_does_not_declare_is_a_lint_error_saying_how_to_declare_it(tmp_path: Path) -> None:
    path = write(tmp_path, "c.case.yaml", "id: c\nheaders: {X-Region: '${region}'}\nraw_body: '{}'\n")
    problem = one_problem(path)
    assert problem.startswith(f"{path}:2:21: /headers/X-Region: unknown placeholder ${{region}}: "), problem
    assert "--var region=VALUE" in problem and "'variables: [region]'" in problem


def test_model_env_and_declared_placeholders_lint_clean(tmp_path: Path) -> None:
    text = (
        "id: c\nvariables: [region, team.name]\nheaders: {X-Team: '${team.name}'}\nrequest:\n  model: ${model}\n"
        "  messages: [{role: user, content: 'from ${region} as ${env:HARNESS_UNSET_ANYWHERE}, $${literal}'}]\n"
    )
    path = write(tmp_path, "c.case.yaml", text)
    assert problems_of(path) == []
    [case] = load_cases([path])
    assert case.variables == ("region", "team.name")


def test_a_misspelt_declared_placeholder_names_the_declared_one(tmp_path: Path) -> None:
    text = "id: c\nvariables: [region]\nrequest:\n  messages: [{role: user, content: '${regoin}'}]\n"
    path = write(tmp_path, "c.case.yaml", text)
    assert "unknown placeholder ${regoin} (did you mean ${region}?)" in one_problem(path)


def test_a_declared_name_must_be_a_placeholder_name(tmp_path: Path) -> None:
    path = write(tmp_path, "c.case.yaml", f"id: c\nvariables: ['my var']\nrequest: {HI}\n")
    assert one_problem(path).startswith(f"{path}:2:13: /variables/0: 'my var' does not match")


def test_run_leaves_undeclared_placeholders_to_the_endpoint(tmp_path: Path) -> None:
    """A run knows the endpoint, so it fills what the endpoint gives, declared or not, and names what it lacks."""
    path = write(tmp_path, "c.case.yaml", "id: c\nrequest:\n  messages: [{role: user, content: '${region}'}]\n")
    [case] = load_cases([path])
    assert fill(case, {"model": "m", "region": "eu"}, {}).request == {"messages": [{"role": "user", "content": "eu"}]}
    with pytest.raises(CaseFileError) as exc:
        fill(case, {"model": "m"}, {})
    assert "unknown placeholder ${region}; this endpoint defines: model; give it with --var region=VALUE" in str(
        exc.value
    )


# --- lint holds a case that expects success to the request schema ---------------------------------------------------


def test_a_positive_case_with_an_invalid_request_is_a_lint_error_at_the_member(tmp_path: Path) -> None:
    text = "id: hot\nrequest:\n  messages: [{role: user, content: hi}]\n  temperature: 5\n  n: 0\n"
    path = write(tmp_path, "hot.case.yaml", text)
    problems = problems_of(path)
    assert [p.split(" (")[0] for p in problems] == [
        f"{path}:5:6: /request/n: must be >= 1; got 0",
        f"{path}:4:16: /request/temperature: must be <= 2; got 5",
    ]
    assert all("schemas/request.schema.json" in p and "nonstandard" in p for p in problems)
    assert [c.id for c in load_cases([path])] == ["hot"], "a run sends it anyway: the endpoint is what is tested"


def test_a_deep_pointer_is_named(tmp_path: Path) -> None:
    text = (
        "id: img\nrequest:\n  messages:\n    - role: user\n      content:\n        - {type: image_url, image_url: x}\n"
    )
    path = write(tmp_path, "img.case.yaml", text)
    assert one_problem(path).startswith(
        f"{path}:6:40: /request/messages/0/content/0/image_url: must be of type object; got a string"
    )


@pytest.mark.parametrize(
    "case",
    [
        "id: c\nrequest: {temperature: 5}\nexpect: {status: 4xx}\n",
        "id: c\nrequest: {temperature: 5}\nexpect: {status: [400, 422]}\n",
        "id: c\nraw_body: '{\"temperature\": 5}'\n",
        "id: c\nnonstandard: a provider's own shape\nrequest: {messages: [{role: model, content: hi}]}\n",
    ],
    ids=["negative", "negative-list", "raw-body", "nonstandard"],
)
def test_cases_that_may_send_anything_lint_clean(tmp_path: Path, case: str) -> None:
    assert problems_of(write(tmp_path, "c.case.yaml", case)) == []


def test_a_case_that_accepts_a_2xx_among_others_is_held_to_the_schema(tmp_path: Path) -> None:
    path = write(tmp_path, "c.case.yaml", "id: c\nrequest: {temperature: 5}\nexpect: {status: [200, 400]}\n")
    assert [p.split(": ", 2)[1] for p in problems_of(path)] == ["/request", "/request/temperature"]


def test_a_placeholder_is_held_to_its_type_but_not_its_content(tmp_path: Path) -> None:
    """`${fn}` cannot match a name pattern before it is filled; a placeholder where a number goes stays a string."""
    text = (
        "id: c\nvariables: [fn, t]\nrequest:\n  messages: [{role: user, content: hi}]\n"
        "  tools: [{type: function, function: {name: '${fn}'}}]\n  temperature: '${t}'\n"
    )
    path = write(tmp_path, "c.case.yaml", text)
    assert [p.split(" (")[0] for p in problems_of(path)] == [
        f'{path}:6:16: /request/temperature: must be of type number or null; got a string "${{t}}"'
    ]


def test_a_nonstandard_reason_must_be_given(tmp_path: Path) -> None:
    path = write(tmp_path, "c.case.yaml", f"id: c\nnonstandard: ''\nrequest: {HI}\n")
    assert one_problem(path).startswith(f"{path}:2:14: /nonstandard: ")


# --- JSON Schemas inside a case: invalid, unresolvable and circular ones --------------------------------------------

TOOL_WITH = """\
id: tool
request:
  messages: [{{role: user, content: hi}}]
  tools:
    - type: function
      function:
        name: f
        parameters:
{schema}
"""


def schema_case(tmp_path: Path, schema: str) -> Path:
    return write(tmp_path, "tool.case.yaml", TOOL_WITH.format(schema=schema))


def test_a_circular_ref_is_a_located_error_for_lint_and_run(tmp_path: Path) -> None:
    path = schema_case(
        tmp_path,
        "          $defs:\n            a: {$ref: '#/$defs/b'}\n            b: {anyOf: [{$ref: '#/$defs/a'}]}\n"
        "          properties: {x: {$ref: '#/$defs/a'}}",
    )
    problem = one_problem(path)
    pointer = "/request/tools/0/function/parameters/$defs/b/anyOf/0/$ref"
    assert problem.startswith(f"{path}:11:32: {pointer}: $ref '#/$defs/a' is circular: "), problem
    assert "never finish" in problem
    with pytest.raises(CaseFileError):
        load_cases([path])


@pytest.mark.parametrize(
    ("schema", "position", "why"),
    [
        ("          properties: {x: {$ref: '#/$defs/nowhere'}}", "9:34", "nothing in the schema is at that pointer"),
        ("          properties: {x: {$ref: '#nowhere'}}", "9:34", "no subschema declares that anchor"),
        ("          $ref: https://example.com/schema.json", "9:17", "schemas are never fetched"),
    ],
    ids=["pointer", "anchor", "remote"],
)
def test_an_unresolvable_ref_is_a_located_error(tmp_path: Path, schema: str, position: str, why: str) -> None:
    problem = one_problem(schema_case(tmp_path, schema))
    assert f":{position}: /request/tools/0/function/parameters/" in problem and "cannot be resolved" in problem
    assert why in problem


def test_a_recursive_type_is_not_circular(tmp_path: Path) -> None:
    """A tree refers to itself through `properties`: each step goes into the value, so validation ends."""
    path = schema_case(
        tmp_path,
        "          $defs:\n            node:\n              type: object\n"
        "              properties: {children: {type: array, items: {$ref: '#/$defs/node'}}}\n"
        "          $ref: '#/$defs/node'",
    )
    assert problems_of(path) == []


# --- select ---------------------------------------------------------------------------------------------------------

SELECTION = """\
- {id: text-basic, tags: [text, core], request: {}}
- {id: text-long, tags: [text], request: {}}
- {id: tools-auto, tags: [tools, core], request: {}}
- {id: negative-n-zero, tags: [negative, params], request: {}}
"""
PROBES = """\
- {id: param-stop, tags: [params, "param:stop"], request: {}}
- {id: param-audio, tags: [params, costly, "param:audio", "param:modalities"], request: {}}
- {id: param-google, tags: [params, "param:extra_body.google.thinking_config.thinking_budget"], request: {}}
"""


@pytest.mark.parametrize(
    ("patterns", "wanted"),
    [
        ([], ["text-basic", "text-long", "tools-auto", "negative-n-zero"]),
        (["tools-auto"], ["tools-auto"]),
        (["core"], ["text-basic", "tools-auto"]),
        (["text-*"], ["text-basic", "text-long"]),
        (["*-n-?ero"], ["negative-n-zero"]),
        (["tools-auto,params"], ["tools-auto", "negative-n-zero"]),
        (["text-long", "negative"], ["text-long", "negative-n-zero"]),
        (["text"], ["text-basic", "text-long"]),
        (["tex"], []),
        (["TEXT-BASIC"], []),
        (["!core"], ["text-long", "negative-n-zero"]),
        (["text,!core"], ["text-long"]),
        (["*", "!text-*,!params"], ["tools-auto"]),
    ],
)
def test_select(tmp_path: Path, patterns: list[str], wanted: list[str]) -> None:
    cases = load_cases([write(tmp_path, "s.case.yaml", SELECTION)])
    assert [c.id for c in select(cases, patterns)] == wanted


@pytest.mark.parametrize(
    ("patterns", "wanted"),
    [
        (["param:*"], ["param-stop", "param-audio", "param-google"]),
        (["param:*,!costly"], ["param-stop", "param-google"]),
        (["param:stop"], ["param-stop"]),
        (["param:extra_body.*"], ["param-google"]),
        (["param:*", "!param:stop"], ["param-audio", "param-google"]),
        (["params", "!param:*"], ["negative-n-zero"]),
    ],
)
def test_select_probes_by_parameter(tmp_path: Path, patterns: list[str], wanted: list[str]) -> None:
    cases = load_cases([write(tmp_path, "s.case.yaml", SELECTION), write(tmp_path, "p.case.yaml", PROBES)])
    assert [c.id for c in select(cases, patterns)] == wanted


# --- the shipped catalogue --------------------------------------------------------------------------------------


def test_shipped_catalogue_lints_clean() -> None:
    cases, problems = lint([CATALOGUE])
    assert problems == []
    assert cases, "the catalogue has cases"


def test_the_google_docs_examples_lint_clean() -> None:
    cases, problems = lint([EXAMPLES])
    assert problems == []
    assert cases


@pytest.mark.parametrize("path", sorted(CATALOGUE.glob("*.case.yaml")), ids=lambda p: p.name)
def test_every_shipped_case_file_lints_clean_and_is_tagged_core(path: Path) -> None:
    """Every case is `core` (what any endpoint must answer), except Google's shapes, tagged `google`, and the probes
    of single parameters (`param:<name>`), which the support matrix reads whatever the answer."""
    cases, problems = lint([path])
    assert problems == []
    assert cases
    for case in cases:
        probe = any(t.startswith("param:") for t in case.tags)
        assert ("core" in case.tags) != ("google" in case.tags) or (probe and "core" not in case.tags), (
            f"{case.id}: exactly one of core, google"
        )
        assert case.title and case.description, f"{case.id} lacks a title or description"


def test_shipped_catalogue_fills_for_an_endpoint_with_and_without_a_model() -> None:
    for case in load_cases([CATALOGUE]):
        with_model = fill(case, {"model": "m"}, {})
        without = fill(case, {"model": None}, {})
        if case.request is not None and case.request.get("model") == "${model}":
            assert with_model.request is not None and with_model.request["model"] == "m"
            assert without.request is not None and "model" not in without.request
