"""Tests of the test double in tests/servers.py: the conformant scenario, validation, and every defect."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.servers import ANSWER, DEFECTS, minimal_instance, serve, violating_instance

USER = [{"role": "user", "content": "What is the weather in Paris today?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 2},
        "age": {"type": "integer", "minimum": 18, "maximum": 99},
        "born": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "pet": {"$ref": "#/$defs/pet"},
    },
    "required": ["name", "age", "born", "tags", "pet"],
    "additionalProperties": False,
    "$defs": {
        "pet": {
            "type": "object",
            "properties": {
                "kind": {"enum": ["cat", "dog"]},
                "legs": {"type": "number", "exclusiveMinimum": 0},
            },
            "required": ["kind", "legs"],
            "additionalProperties": False,
        }
    },
}

PLAIN: dict[str, Any] = {"model": "some-model", "messages": USER}
TOOL_CALL: dict[str, Any] = {**PLAIN, "tools": [WEATHER, TIME], "tool_choice": "required"}
JSON_OBJECT: dict[str, Any] = {**PLAIN, "response_format": {"type": "json_object"}}
JSON_SCHEMA: dict[str, Any] = {
    **PLAIN,
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "person", "schema": PERSON, "strict": True},
    },
}

OPENAI_ERROR_KEYS = {"message", "type", "param", "code"}


@pytest.fixture(scope="module")
def server() -> Iterator[Any]:
    with serve() as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


@pytest.fixture
def post(server: Any, client: httpx.Client) -> Callable[..., httpx.Response]:
    def send(body: dict[str, Any] | bytes, scenario: str = "ok", **kwargs: Any) -> httpx.Response:
        url = server.url(scenario) + "/chat/completions"
        if isinstance(body, bytes):
            return client.post(url, content=body, headers={"content-type": "application/json"}, **kwargs)
        return client.post(url, json=body, **kwargs)

    return send


def assert_openai_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert set(error) == OPENAI_ERROR_KEYS
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["param"] == param
    return error


# ------------------------------------------------------------------------------------------ the "ok" scenario


def test_ok_answers_with_every_documented_member(post: Callable[..., httpx.Response]) -> None:
    response = post(PLAIN)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"}
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{24}", body["id"])
    assert body["object"] == "chat.completion"
    assert isinstance(body["created"], int)
    assert abs(body["created"] - time.time()) < 60
    assert body["model"] == "some-model"
    assert body["system_fingerprint"] == "fp_test"
    [choice] = body["choices"]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": ANSWER, "refusal": None},
        "logprobs": None,
        "finish_reason": "stop",
    }
    usage = body["usage"]
    assert usage["prompt_tokens"] == len(USER[0]["content"].split())
    assert usage["completion_tokens"] == len(ANSWER.split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_ok_defaults_the_model_name(post: Callable[..., httpx.Response]) -> None:
    assert post({"messages": USER}).json()["model"] == "test-model"


def test_n_gives_that_many_choices(post: Callable[..., httpx.Response]) -> None:
    body = post({**PLAIN, "n": 2}).json()
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"]["completion_tokens"] == 2 * len(ANSWER.split())


def test_max_tokens_truncates_to_that_many_words(post: Callable[..., httpx.Response]) -> None:
    [choice] = post({**PLAIN, "max_tokens": 2}).json()["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == "This is"


def test_the_smaller_of_max_tokens_and_max_completion_tokens_wins(
    post: Callable[..., httpx.Response],
) -> None:
    body = post({**PLAIN, "max_tokens": 5, "max_completion_tokens": 3}).json()
    assert len(body["choices"][0]["message"]["content"].split()) == 3
    assert body["usage"]["completion_tokens"] == 3


def test_a_limit_above_the_answer_changes_nothing(post: Callable[..., httpx.Response]) -> None:
    [choice] = post({**PLAIN, "max_tokens": 100}).json()["choices"]
    assert (choice["message"]["content"], choice["finish_reason"]) == (ANSWER, "stop")


@pytest.mark.parametrize(
    ("stop", "content"),
    [
        ("answer", "This is a conformant "),
        (["zebra", "answer"], "This is a conformant "),
        (["server", "is"], "Th"),
    ],
)
def test_stop_cuts_before_the_first_stop_string(post: Callable[..., httpx.Response], stop: Any, content: str) -> None:
    [choice] = post({**PLAIN, "stop": stop}).json()["choices"]
    assert (choice["message"]["content"], choice["finish_reason"]) == (content, "stop")


@pytest.mark.parametrize(
    ("tool_choice", "called"),
    [
        ("required", "get_weather"),
        ("auto", "get_weather"),
        ({"type": "function", "function": {"name": "get_time"}}, "get_time"),
    ],
)
def test_tool_choice_gives_one_tool_call_with_valid_arguments(
    post: Callable[..., httpx.Response], tool_choice: Any, called: str
) -> None:
    [choice] = post({**TOOL_CALL, "tool_choice": tool_choice}).json()["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert re.fullmatch(r"call_[A-Za-z0-9]+", call["id"])
    assert call["type"] == "function"
    assert call["function"]["name"] == called
    arguments = json.loads(call["function"]["arguments"])
    schema = WEATHER if called == "get_weather" else TIME
    jsonschema.validate(arguments, schema["function"]["parameters"])


def test_tool_calls_get_their_own_id_per_choice(post: Callable[..., httpx.Response]) -> None:
    choices = post({**TOOL_CALL, "n": 3}).json()["choices"]
    ids = {c["message"]["tool_calls"][0]["id"] for c in choices}
    assert len(ids) == 3


@pytest.mark.parametrize(
    "request_body",
    [
        {**TOOL_CALL, "tool_choice": "none"},
        {
            **TOOL_CALL,
            "tool_choice": "auto",
            "messages": [
                *USER,
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
            ],
        },
    ],
    ids=["tool_choice-none", "after-a-tool-result"],
)
def test_text_answers_when_no_call_is_due(post: Callable[..., httpx.Response], request_body: Any) -> None:
    [choice] = post(request_body).json()["choices"]
    assert (choice["message"]["content"], choice["finish_reason"]) == (ANSWER, "stop")
    assert "tool_calls" not in choice["message"]


def test_json_object_content_is_a_json_object(post: Callable[..., httpx.Response]) -> None:
    [choice] = post(JSON_OBJECT).json()["choices"]
    assert json.loads(choice["message"]["content"]) == {"answer": ANSWER}


def test_json_schema_content_validates(post: Callable[..., httpx.Response]) -> None:
    [choice] = post(JSON_SCHEMA).json()["choices"]
    instance = json.loads(choice["message"]["content"])
    jsonschema.Draft202012Validator(PERSON, format_checker=jsonschema.FormatChecker()).validate(instance)


def test_json_cut_by_max_tokens_is_truncated_text_with_length(post: Callable[..., httpx.Response]) -> None:
    [choice] = post({**JSON_OBJECT, "max_tokens": 3}).json()["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] == '{"answer": "This is'


SCHEMAS = [
    PERSON,
    {"type": "string", "enum": ["red", "green"]},
    {"type": "integer", "minimum": 5, "maximum": 9, "multipleOf": 3},
    {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 2},
    {"type": "array", "items": {"type": "integer"}, "minItems": 3, "uniqueItems": True},
    {"anyOf": [{"type": "null"}, {"type": "string"}]},
    {"oneOf": [{"type": "object", "properties": {"a": {"const": 1}}, "required": ["a"]}, {"type": "string"}]},
    {"allOf": [{"properties": {"a": {"type": "boolean"}}, "required": ["a"]}, {"required": ["b"]}]},
    {"type": "string", "pattern": "^[0-9]+$", "minLength": 2},
    {"type": "string", "format": "date-time", "maxLength": 40},
    {"type": ["string", "null"], "minLength": 3},
    {
        "type": "object",
        "properties": {"child": {"$ref": "#/definitions/node"}},
        "definitions": {
            "node": {
                "type": "object",
                "properties": {"value": {"type": "integer"}, "next": {"$ref": "#/definitions/node"}},
                "required": ["value"],
            }
        },
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_minimal_instance_validates_and_violating_instance_does_not(schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate(minimal_instance(schema))
    assert not validator.is_valid(violating_instance(schema))


def test_stream_is_a_conformant_sse_stream_of_the_same_answer(post: Callable[..., httpx.Response]) -> None:
    response = post({**PLAIN, "stream": True, "stream_options": {"include_usage": True}})
    assert response.headers["content-type"] == "text/event-stream"
    events = [block.removeprefix("data: ") for block in response.text.split("\n\n") if block]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == ANSWER
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == len(ANSWER.split())


def test_requests_are_recorded_in_order(server: Any, post: Callable[..., httpx.Response]) -> None:
    marker = uuid.uuid4().hex
    post({"messages": [{"role": "user", "content": marker}]}, "usage-missing", headers={"X-Marker": marker})
    last = server.requests[-1]
    assert last.path == "/usage-missing/v1/chat/completions"
    assert last.headers["x-marker"] == marker
    assert json.loads(last.body)["messages"][0]["content"] == marker


# ------------------------------------------------------------------------------------------ validation

INVALID = [
    (b"{not json", None),
    (b"[1, 2]", None),
    ({}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": ["hi"]}, "messages[0]"),
    ({"messages": [{"content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    (
        {"messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]},
        "messages[0].content[0].text",
    ),
    ({"messages": [{"role": "system", "content": [{"type": "image_url"}]}]}, "messages[0].content[0].type"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    ({"messages": USER, "model": 5}, "model"),
    ({"messages": USER, "model": None}, "model"),
    ({"messages": USER, "temperature": "hot"}, "temperature"),
    ({"messages": USER, "temperature": True}, "temperature"),
    ({"messages": USER, "temperature": 2.5}, "temperature"),
    ({"messages": USER, "temperature": -0.1}, "temperature"),
    ({"messages": USER, "top_p": 1.5}, "top_p"),
    ({"messages": USER, "n": 0}, "n"),
    ({"messages": USER, "n": 129}, "n"),
    ({"messages": USER, "n": 1.5}, "n"),
    ({"messages": USER, "n": True}, "n"),
    ({"messages": USER, "max_tokens": 0}, "max_tokens"),
    ({"messages": USER, "max_tokens": "10"}, "max_tokens"),
    ({"messages": USER, "max_completion_tokens": True}, "max_completion_tokens"),
    ({"messages": USER, "stop": 5}, "stop"),
    ({"messages": USER, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"messages": USER, "stop": ["a", 1]}, "stop[1]"),
    ({"messages": USER, "seed": 1.5}, "seed"),
    ({"messages": USER, "seed": False}, "seed"),
    ({"messages": USER, "stream": "yes"}, "stream"),
    ({"messages": USER, "tools": "get_weather"}, "tools"),
    ({"messages": USER, "tools": []}, "tools"),
    ({"messages": USER, "tools": [{"type": "retrieval"}]}, "tools[0].type"),
    ({"messages": USER, "tools": [{"type": "function"}]}, "tools[0].function"),
    ({"messages": USER, "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ({"messages": USER, "tools": [WEATHER], "tool_choice": "any"}, "tool_choice"),
    ({"messages": USER, "tool_choice": "required"}, "tool_choice"),
    (
        {
            "messages": USER,
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "x"}},
        },
        "tool_choice.function.name",
    ),
    ({"messages": USER, "response_format": {"type": "xml"}}, "response_format.type"),
    ({"messages": USER, "response_format": {"type": "json_schema"}}, "response_format.json_schema"),
    (
        {"messages": USER, "response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
        "response_format.json_schema.name",
    ),
    (
        {"messages": USER, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
        "response_format.json_schema.schema",
    ),
]


@pytest.mark.parametrize(("body", "param"), INVALID, ids=[f"{i}-{p}" for i, (_, p) in enumerate(INVALID)])
def test_invalid_requests_get_400_with_an_openai_error(
    post: Callable[..., httpx.Response], body: Any, param: str | None
) -> None:
    error = assert_openai_error(post(body), 400, param)
    assert error["type"] == "invalid_request_error"
    assert error["code"] is None


VALID = [
    {"messages": USER, "temperature": 0, "top_p": 1, "n": 1, "seed": 7, "stream": False},
    {"messages": USER, "temperature": 2.0, "max_tokens": None, "stop": None, "tools": None},
    {"messages": USER, "stop": ["a", "b", "c", "d"]},
    {
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "Be kind."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
        ]
    },
]


@pytest.mark.parametrize("body", VALID)
def test_valid_requests_get_200(post: Callable[..., httpx.Response], body: dict[str, Any]) -> None:
    assert post(body).status_code == 200


def test_api_key_is_enforced() -> None:
    with serve(api_key="sk-test") as keyed, httpx.Client() as http:
        url = keyed.url("ok") + "/chat/completions"
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sk-test"}):
            response = http.post(url, json=PLAIN, headers=headers)
            assert response.status_code == 401
            assert response.json() == {
                "error": {
                    "message": "Invalid API key",
                    "type": "authentication_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            }
        assert http.post(url, json=PLAIN, headers={"Authorization": "Bearer sk-test"}).status_code == 200


def test_an_unknown_defect_404s_naming_it(post: Callable[..., httpx.Response]) -> None:
    error = assert_openai_error(post(PLAIN, "usage-negative+choices-emtpy"), 404)
    assert "'choices-emtpy'" in error["message"]
    assert "did you mean 'choices-empty'" in error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ok/v1/chat/completions"),
        ("POST", "/ok/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/"),
    ],
)
def test_other_routes_404(server: Any, client: httpx.Client, method: str, path: str) -> None:
    assert_openai_error(client.request(method, server.base + path), 404)


# ------------------------------------------------------------------------------------------ defects


def _message(response: httpx.Response) -> dict[str, Any]:
    return response.json()["choices"][0]["message"]


def _call(response: httpx.Response) -> dict[str, Any]:
    return _message(response)["tool_calls"][0]


def _usage(response: httpx.Response) -> dict[str, Any]:
    return response.json()["usage"]


def _content(response: httpx.Response) -> Any:
    return _message(response)["content"]


def _bad_json(response: httpx.Response) -> bool:
    try:
        json.loads(response.content)
    except ValueError:
        return True
    return False


def _invalid_against_person(response: httpx.Response) -> bool:
    return not jsonschema.Draft202012Validator(PERSON).is_valid(json.loads(_content(response)))


def _invalid_weather_args(response: httpx.Response) -> bool:
    arguments = json.loads(_call(response)["function"]["arguments"])
    return not jsonschema.Draft202012Validator(WEATHER["function"]["parameters"]).is_valid(arguments)


def _google_error(response: httpx.Response) -> bool:
    [item] = response.json()
    return item["error"]["code"] == 400 and item["error"]["status"] == "INVALID_ARGUMENT"


INVALID_BODY: dict[str, Any] = {"messages": []}

# scenario, request, what the defect must produce
DEFECT_CASES: list[tuple[str, Any, Callable[[httpx.Response], bool]]] = [
    ("choices-empty", PLAIN, lambda r: r.json()["choices"] == []),
    ("choices-missing", PLAIN, lambda r: "choices" not in r.json()),
    ("index-wrong", {**PLAIN, "n": 2}, lambda r: [c["index"] for c in r.json()["choices"]] == [1, 2]),
    ("role-wrong", PLAIN, lambda r: _message(r)["role"] == "model"),
    ("content-array", PLAIN, lambda r: _content(r) == [{"type": "text", "text": ANSWER}]),
    ("content-missing", TOOL_CALL, lambda r: _content(r) is None and "tool_calls" not in _message(r)),
    ("finish-invalid", PLAIN, lambda r: r.json()["choices"][0]["finish_reason"] == "STOP"),
    (
        "finish-stop-with-tools",
        TOOL_CALL,
        lambda r: r.json()["choices"][0]["finish_reason"] == "stop" and _call(r),
    ),
    ("id-null", PLAIN, lambda r: r.json()["id"] is None),
    ("id-no-prefix", PLAIN, lambda r: re.fullmatch(r"resp-[A-Za-z0-9]{24}", r.json()["id"]) is not None),
    (
        "created-string",
        PLAIN,
        lambda r: isinstance(r.json()["created"], str) and r.json()["created"].isdigit(),
    ),
    ("object-wrong", PLAIN, lambda r: r.json()["object"] == "chat.completion.chunk"),
    (
        "no-nullable",
        PLAIN,
        lambda r: "logprobs" not in r.json()["choices"][0] and "refusal" not in _message(r),
    ),
    ("usage-missing", PLAIN, lambda r: "usage" not in r.json()),
    ("usage-negative", PLAIN, lambda r: _usage(r)["completion_tokens"] == -1),
    (
        "usage-total-wrong",
        PLAIN,
        lambda r: _usage(r)["total_tokens"] == _usage(r)["prompt_tokens"] + _usage(r)["completion_tokens"] + 7,
    ),
    (
        "usage-google-total",
        PLAIN,
        lambda r: (
            _usage(r)["completion_tokens_details"]["reasoning_tokens"] == 5
            and _usage(r)["total_tokens"] == _usage(r)["prompt_tokens"] + _usage(r)["completion_tokens"] + 5
        ),
    ),
    ("n-ignored", {**PLAIN, "n": 3}, lambda r: len(r.json()["choices"]) == 1),
    (
        "content-type-text",
        PLAIN,
        lambda r: r.headers["content-type"] == "text/plain" and _content(r) == ANSWER,
    ),
    (
        "html",
        PLAIN,
        lambda r: (
            r.status_code == 200
            and r.headers["content-type"] == "text/html"
            and r.text == "<html><body>Bad gateway</body></html>"
        ),
    ),
    ("truncated", PLAIN, lambda r: len(r.content) == int(r.headers["content-length"]) and _bad_json(r)),
    ("invalid-utf8", PLAIN, lambda r: b"\xff\xfe" in r.content and _bad_json(r)),
    ("tool-undeclared", TOOL_CALL, lambda r: _call(r)["function"]["name"] not in {"get_weather", "get_time"}),
    ("tool-args-invalid-json", TOOL_CALL, lambda r: _call(r)["function"]["arguments"] == "{city: Paris"),
    ("tool-args-object", TOOL_CALL, lambda r: isinstance(_call(r)["function"]["arguments"], dict)),
    ("tool-args-schema", TOOL_CALL, _invalid_weather_args),
    ("tool-args-array", TOOL_CALL, lambda r: _call(r)["function"]["arguments"] == "[]"),
    ("tool-id-empty", TOOL_CALL, lambda r: _call(r)["id"] == ""),
    (
        "tool-ids-duplicate",
        {**TOOL_CALL, "n": 2},
        lambda r: (
            len({c["id"] for ch in r.json()["choices"] for c in ch["message"]["tool_calls"]}) == 1
            and len(_message(r)["tool_calls"]) == 2
        ),
    ),
    (
        "tool-choice-ignored",
        TOOL_CALL,
        lambda r: "tool_calls" not in _message(r) and r.json()["choices"][0]["finish_reason"] == "stop",
    ),
    ("json-fenced", JSON_OBJECT, lambda r: re.fullmatch(r"```json\n\{.*\}\n```", _content(r)) is not None),
    ("json-prose", JSON_OBJECT, lambda r: _content(r).startswith("Here is the JSON: {")),
    ("json-schema-invalid", JSON_SCHEMA, _invalid_against_person),
    ("json-not-object", JSON_OBJECT, lambda r: _content(r) == "[1, 2]"),
    ("error-google", INVALID_BODY, _google_error),
    (
        "error-vllm",
        INVALID_BODY,
        lambda r: r.json()["object"] == "error" and r.json()["code"] == 400 and r.json()["type"] == "BadRequestError",
    ),
    (
        "error-llamacpp",
        INVALID_BODY,
        lambda r: set(r.json()["error"]) == {"code", "message", "type"} and r.json()["error"]["code"] == 400,
    ),
    (
        "error-text",
        INVALID_BODY,
        lambda r: r.status_code == 400 and r.headers["content-type"] == "text/plain" and r.text == "Bad Request",
    ),
    ("error-html", INVALID_BODY, lambda r: r.status_code == 400 and r.text.startswith("<html>")),
    ("error-empty", INVALID_BODY, lambda r: r.status_code == 400 and r.content == b""),
    ("error-no-message", INVALID_BODY, lambda r: r.json() == {"error": {"type": "invalid_request_error"}}),
    ("accept-all", b"\x00not json at all", lambda r: r.status_code == 200 and _content(r) == ANSWER),
    ("server-error", PLAIN, lambda r: r.status_code == 500 and r.json()["error"]["type"] == "server_error"),
    ("reject-valid", PLAIN, lambda r: r.status_code == 400 and set(r.json()["error"]) == OPENAI_ERROR_KEYS),
    ("huge", PLAIN, lambda r: len(_content(r)) == 8 * 1024 * 1024),
]
SPECIAL = {"slow", "reset", "retry-429", "retry-503"}  # tested below, one test each


@pytest.mark.parametrize(("scenario", "body", "produces"), DEFECT_CASES, ids=[c[0] for c in DEFECT_CASES])
def test_defect_produces_what_it_says(
    post: Callable[..., httpx.Response], scenario: str, body: Any, produces: Callable[[httpx.Response], bool]
) -> None:
    assert produces(post(body, scenario))


def test_every_defect_is_tested() -> None:
    assert {c[0] for c in DEFECT_CASES} | SPECIAL == DEFECTS


@pytest.mark.parametrize("scenario", ["error-google", "error-text", "error-empty"])
def test_error_defects_leave_valid_requests_alone(post: Callable[..., httpx.Response], scenario: str) -> None:
    assert _content(post(PLAIN, scenario)) == ANSWER


def test_defects_combine(post: Callable[..., httpx.Response]) -> None:
    body = post(PLAIN, "role-wrong+usage-negative+ok").json()
    assert (body["choices"][0]["message"]["role"], body["usage"]["completion_tokens"]) == ("model", -1)


def test_accept_all_answers_odd_bodies(post: Callable[..., httpx.Response]) -> None:
    odd = {
        "messages": {"x": 1},
        "n": 10_000,
        "tools": "x",
        "response_format": {"type": "json_schema"},
        "stop": 3,
    }
    assert post(odd, "accept-all").status_code == 200
    assert post(b"[]", "accept-all").status_code == 200


@pytest.mark.parametrize(("scenario", "status"), [("retry-429", 429), ("retry-503", 503)])
def test_retry_defects_fail_once_per_body(post: Callable[..., httpx.Response], scenario: str, status: int) -> None:
    body = {"messages": [{"role": "user", "content": uuid.uuid4().hex}]}
    first = post(body, scenario)
    assert_openai_error(first, status)
    assert first.headers["retry-after"] == "0"
    assert post(body, scenario).status_code == 200


def test_slow_times_the_client_out(post: Callable[..., httpx.Response]) -> None:
    with pytest.raises(httpx.ReadTimeout):
        post(PLAIN, "slow", timeout=0.2)


def test_reset_closes_without_answering(post: Callable[..., httpx.Response]) -> None:
    with pytest.raises(httpx.TransportError):
        post(PLAIN, "reset")


def test_the_module_runs_in_the_foreground() -> None:
    root = Path(__file__).resolve().parent.parent
    with subprocess.Popen(
        [sys.executable, "-m", "tests.servers", "--port", "0"], cwd=root, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert process.stdout is not None
            base = process.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/ok/v1", base)
            assert httpx.post(base + "/chat/completions", json=PLAIN).status_code == 200
        finally:
            process.terminate()
