"""Tests of the test double in tests/servers.py: the conformant scenario, validation, and every defect."""

from __future__ import annotations

import base64
import contextlib
import copy
import itertools
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from tests.servers import (
    ANSWER,
    ANSWER_DEFECTS,
    COUNTING,
    DEFECTS,
    FRAMINGS,
    GOOGLE_DEFECTS,
    QUEUED_SECONDS,
    STALL_SECONDS,
    STREAMED_ANSWER_DEFECTS,
    SURFACES,
    THOUGHTS,
    UTF8_ANSWER,
    minimal_instance,
    serve,
    violating_instance,
)

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


def test_requests_are_recorded_in_order(server: Any, post: Callable[..., httpx.Response]) -> None:
    marker = uuid.uuid4().hex
    before = time.monotonic()
    post({"messages": [{"role": "user", "content": marker}]}, "usage-missing", headers={"X-Marker": marker})
    last = server.requests[-1]
    assert before <= last.arrived <= time.monotonic()
    assert [r.arrived for r in server.requests] == sorted(r.arrived for r in server.requests)
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
    (
        "params-ignored",
        {**PLAIN, "stop": "7", "max_tokens": 3, "logprobs": True},
        lambda r: _content(r) == COUNTING and r.json()["choices"][0]["logprobs"] is None,
    ),
    (
        "params-refused",
        {**PLAIN, "logprobs": True},
        lambda r: r.status_code == 400 and r.json()["error"]["param"] == "logprobs" and "logprobs" in r.text,
    ),
    ("huge", PLAIN, lambda r: len(_content(r)) == 8 * 1024 * 1024),
    (
        "fuzz-500-on-emoji",
        {**PLAIN, "messages": [{"role": "user", "content": "Hi 🎒"}]},
        lambda r: r.status_code == 500 and set(r.json()["error"]) == OPENAI_ERROR_KEYS,
    ),
    ("fuzz-created-string-n2", {**PLAIN, "n": 2}, lambda r: isinstance(r.json()["created"], str)),
]
SPECIAL = {"slow", "queued", "reset", "retry-429", "retry-503"}  # tested below, one test each


@pytest.mark.parametrize(("scenario", "body", "produces"), DEFECT_CASES, ids=[c[0] for c in DEFECT_CASES])
def test_defect_produces_what_it_says(
    post: Callable[..., httpx.Response], scenario: str, body: Any, produces: Callable[[httpx.Response], bool]
) -> None:
    assert produces(post(body, scenario))


def test_every_defect_is_tested() -> None:
    stream_only = {n for n in DEFECTS if n.startswith("stream-")}
    assert {c[0] for c in DEFECT_CASES} | SPECIAL | stream_only | set(GOOGLE_DEFECTS) == DEFECTS


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


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "𐀀"}],
        [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b 🎒✨"}]}],
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "😀"}, {"role": "user", "content": "x"}],
        [{"role": "wizard", "content": "🎒"}],  # before validation: an invalid request gets the 500 too
    ],
)
def test_fuzz_500_on_emoji_fails_any_message_text_beyond_the_bmp(
    post: Callable[..., httpx.Response], messages: list[dict[str, Any]]
) -> None:
    error = assert_openai_error(post({**PLAIN, "messages": messages}, "fuzz-500-on-emoji"), 500)
    assert error["type"] == "server_error"


@pytest.mark.parametrize(
    "body",
    [
        PLAIN,
        {**PLAIN, "messages": [{"role": "user", "content": "日本語 مرحبا e\u0301 \uffff"}]},
        {**PLAIN, "stop": "🎒", "metadata": {"k": "🎒"}},  # outside the messages
        {**PLAIN, "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "🎒"}}]}]},
        {**PLAIN, "n": 3},
    ],
)
def test_fuzz_500_on_emoji_leaves_everything_else_conformant(
    post: Callable[..., httpx.Response], body: dict[str, Any]
) -> None:
    same = {"id": "", "created": 0}
    assert post(body, "fuzz-500-on-emoji").json() | same == post(body).json() | same


def test_fuzz_500_on_emoji_still_refuses_invalid_requests(post: Callable[..., httpx.Response]) -> None:
    assert_openai_error(post(INVALID_BODY, "fuzz-500-on-emoji"), 400, "messages")
    assert_openai_error(post(b"{not json \xf0\x9f\x8e\x92", "fuzz-500-on-emoji"), 400)


@pytest.mark.parametrize(("n", "created_type"), [(None, int), (1, int), (2, str), (3, str), (128, str)])
def test_fuzz_created_string_n2_needs_n_of_2_or_more(
    post: Callable[..., httpx.Response], n: int | None, created_type: type
) -> None:
    body = PLAIN if n is None else {**PLAIN, "n": n}
    answer = post(body, "fuzz-created-string-n2").json()
    assert type(answer["created"]) is created_type
    assert len(answer["choices"]) == (n or 1)
    if created_type is str:
        assert answer["created"].isdigit()


def test_fuzz_created_string_n2_leaves_streams_alone(fetch: Callable[..., Streamed]) -> None:
    body = {**PLAIN, "n": 2, "stream": True}
    chunks = fetch(body, "fuzz-created-string-n2").chunks
    assert chunks and all(isinstance(c["created"], int) for c in chunks)
    assert normalized(chunks) == normalized(fetch(body).chunks)


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


def test_queued_answers_in_full_once_a_slot_frees(post: Callable[..., httpx.Response]) -> None:
    started = time.monotonic()
    assert _content(post(PLAIN, "queued")) == ANSWER
    assert time.monotonic() - started >= QUEUED_SECONDS
    with pytest.raises(httpx.ReadTimeout):  # and until then, not one byte
        post(PLAIN, "queued", timeout=httpx.Timeout(10, read=0.2))


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


# ------------------------------------------------------------------------------------------ streams

EOL = re.compile(r"\r\n|\r|\n")
USAGE_ON: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
TEXT_STREAM: dict[str, Any] = {**PLAIN, **USAGE_ON}
TOOL_STREAM: dict[str, Any] = {**TOOL_CALL, **USAGE_ON}
JSON_OBJECT_STREAM: dict[str, Any] = {**JSON_OBJECT, **USAGE_ON}
JSON_SCHEMA_STREAM: dict[str, Any] = {**JSON_SCHEMA, **USAGE_ON}
CHUNK_KEYS = {"id", "object", "created", "model", "system_fingerprint", "choices"}
ONE_MB = 1 << 20


def parse_sse(raw: bytes, *, dispatch_at_eof: bool = False) -> list[str]:
    """The data of each event, by the WHATWG rules: a reference written here, independent of harness/sse.py.

    Lines end with CRLF, LF or CR; comments are skipped; data lines join with a newline, after one leading space
    is stripped; a leading BOM goes. An event with no blank line after it is dropped at the end, as the standard
    says, unless ``dispatch_at_eof``.
    """
    lines = EOL.split(raw.decode("utf-8").removeprefix("\ufeff"))
    unfinished = lines.pop()
    if dispatch_at_eof:
        lines += [unfinished, ""] if unfinished else [""]
    events: list[str] = []
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                events.append("\n".join(data))
            data = []
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            if name == "data":
                data.append(value.removeprefix(" "))
    return events


@dataclass
class Streamed:
    """One streamed answer as the client saw it: each raw piece (HTTP chunk data) and when it arrived."""

    response: httpx.Response
    pieces: list[bytes] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    headers_at: float = field(default_factory=time.perf_counter)

    @property
    def raw(self) -> bytes:
        return b"".join(self.pieces)

    @property
    def events(self) -> list[str]:
        return parse_sse(self.raw)

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.events if e != "[DONE]"]

    @property
    def entries(self) -> list[dict[str, Any]]:
        return [entry for chunk in self.chunks for entry in chunk["choices"]]

    @property
    def calls(self) -> list[dict[str, Any]]:
        return [call for entry in self.entries for call in entry["delta"].get("tool_calls") or []]


@pytest.fixture
def fetch(server: Any, client: httpx.Client) -> Callable[..., Streamed]:
    def stream(body: dict[str, Any], scenario: str = "ok", **kwargs: Any) -> Streamed:
        with client.stream("POST", server.url(scenario) + "/chat/completions", json=body, **kwargs) as response:
            streamed = Streamed(response)
            for piece in response.iter_raw():
                streamed.pieces.append(piece)
                streamed.times.append(time.perf_counter())
        return streamed

    return stream


def normalized(chunks: list[dict[str, Any]], *, content: bool = True) -> list[dict[str, Any]]:
    """The chunks with what differs between two requests (ids, created) blanked; ``content=False``: texts too."""
    chunks = copy.deepcopy(chunks)
    for chunk in chunks:
        chunk["id"], chunk["created"] = "ID", 0
        for entry in chunk["choices"]:
            for call in entry["delta"].get("tool_calls") or []:
                if "id" in call:
                    call["id"] = "CALL"
            if not content and entry["delta"].get("content"):
                entry["delta"]["content"] = "TEXT"
    return chunks


def reassemble(chunks: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Choice index -> {message, finish_reason}, tool calls accumulated by index as OpenAI's clients do."""
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for entry in chunk["choices"]:
            choice = choices.setdefault(entry["index"], {"message": {}, "finish_reason": None})
            message, delta = choice["message"], entry["delta"]
            if "role" in delta:
                message["role"] = delta["role"]
            if "content" in delta:
                if delta["content"] is None:
                    message.setdefault("content", None)
                else:
                    message["content"] = (message.get("content") or "") + delta["content"]
            for call in delta.get("tool_calls") or []:
                calls = message.setdefault("tool_calls", [])
                while len(calls) <= call["index"]:
                    calls.append({"id": None, "type": None, "function": {"name": None, "arguments": ""}})
                target = calls[call["index"]]
                target.update({k: call[k] for k in ("id", "type") if k in call})
                if "name" in call.get("function", {}):
                    target["function"]["name"] = call["function"]["name"]
                target["function"]["arguments"] += call.get("function", {}).get("arguments", "")
            if entry.get("finish_reason") is not None:
                choice["finish_reason"] = entry["finish_reason"]
    return choices


def _without_call_ids(message: dict[str, Any]) -> dict[str, Any]:
    message = copy.deepcopy(message)
    message.pop("refusal", None)
    for call in message.get("tool_calls") or []:
        call["id"] = "CALL"
    return message


def _wait_until_no_stream_is_open(server: Any, post: Callable[..., httpx.Response]) -> None:
    deadline = time.monotonic() + 2
    while server.streams_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.streams_open == 0
    assert post(PLAIN).status_code == 200  # and the server still answers


def test_stream_is_exactly_openai_s_shape(fetch: Callable[..., Streamed]) -> None:
    streamed = fetch(TEXT_STREAM)
    assert streamed.response.headers["content-type"] == "text/event-stream"
    assert streamed.response.headers["transfer-encoding"] == "chunked"
    assert re.fullmatch(rb"(data: \{[^\n]*\}\n\n)+data: \[DONE\]\n\n", streamed.raw)
    chunks = streamed.chunks
    assert all(set(c) == CHUNK_KEYS | {"usage"} for c in chunks)
    assert len({c["id"] for c in chunks}) == len({c["created"] for c in chunks}) == 1
    assert re.fullmatch(r"chatcmpl-[A-Za-z0-9]{24}", chunks[0]["id"])
    assert {(c["object"], c["model"], c["system_fingerprint"]) for c in chunks} == {
        ("chat.completion.chunk", "some-model", "fp_test")
    }
    *answer, last = chunks
    assert [c["usage"] for c in answer] == [None] * len(answer)
    assert last["choices"] == []
    assert last["usage"] == fetch_non_stream_usage(streamed)
    entries = [c["choices"][0] for c in answer]
    assert all(
        len(c["choices"]) == 1 and set(c["choices"][0]) == {"index", "delta", "logprobs", "finish_reason"}
        for c in answer
    )
    assert entries[0]["delta"] == {"role": "assistant", "content": ""}
    assert [e["delta"] for e in entries[1:-1]] == [{"content": w} for w in re.findall(r"\S+\s*", ANSWER)]
    assert entries[-1]["delta"] == {}
    assert [e["finish_reason"] for e in entries] == [None] * (len(entries) - 1) + ["stop"]
    assert {e["index"] for e in entries} == {0}
    assert {json.dumps(e["logprobs"]) for e in entries} == {"null"}
    # Each event is flushed on its own (a piece never spans two events), and they arrive at different times.
    ends = set(itertools.accumulate(len(p) for p in streamed.pieces))
    assert set(itertools.accumulate(len(e) for e in re.findall(rb"data: [^\n]*\n\n", streamed.raw))) <= ends
    assert streamed.times[-1] - streamed.times[0] >= 0.005
    assert len(set(streamed.times)) == len(streamed.times)


def fetch_non_stream_usage(streamed: Streamed) -> dict[str, Any]:
    words = len(USER[0]["content"].split()), len(ANSWER.split())
    usage = streamed.chunks[-1]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == words
    assert usage["total_tokens"] == sum(words)
    return usage


def test_stream_without_include_usage_has_no_usage(fetch: Callable[..., Streamed]) -> None:
    chunks = fetch({**PLAIN, "stream": True}).chunks
    assert all(set(c) == CHUNK_KEYS and c["choices"] for c in chunks)


@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("body", [TEXT_STREAM, TOOL_STREAM, JSON_SCHEMA_STREAM], ids=["text", "tools", "json_schema"])
def test_stream_reassembles_to_the_non_stream_answer(
    fetch: Callable[..., Streamed], post: Callable[..., httpx.Response], body: dict[str, Any], n: int
) -> None:
    streamed = fetch({**body, "n": n})
    answer = post({k: v for k, v in body.items() if k not in USAGE_ON} | {"n": n}).json()
    choices = reassemble(streamed.chunks)
    assert sorted(choices) == list(range(n))
    for expected in answer["choices"]:
        got = choices[expected["index"]]
        assert got["finish_reason"] == expected["finish_reason"]
        assert _without_call_ids(got["message"]) == _without_call_ids(expected["message"])
        message = got["message"]
        if "tool_calls" in message:
            [call] = message["tool_calls"]
            assert re.fullmatch(r"call_[A-Za-z0-9]+", call["id"])
            jsonschema.validate(json.loads(call["function"]["arguments"]), WEATHER["function"]["parameters"])
        elif body is JSON_SCHEMA_STREAM:
            jsonschema.Draft202012Validator(PERSON).validate(json.loads(message["content"]))
        else:
            assert message["content"] == ANSWER
    assert streamed.chunks[-1]["usage"] == answer["usage"]
    entries = streamed.entries
    # n choices interleave: 0, 1, 0, 1, ...
    assert [e["index"] for e in entries] == [i % n for i in range(len(entries))]
    for index in range(n):
        own = [e for e in entries if e["index"] == index]
        assert own[-1]["delta"] == {} and own[-1]["finish_reason"] is not None
        if body is TOOL_STREAM:
            assert own[0]["delta"] == {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "index": 0,
                        "id": choices[index]["message"]["tool_calls"][0]["id"],
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            }
            fragments = [e["delta"] for e in own[1:-1]]
            assert len(fragments) >= 3
            assert all(set(f) == {"tool_calls"} and set(f["tool_calls"][0]) == {"index", "function"} for f in fragments)
        else:
            assert own[0]["delta"] == {"role": "assistant", "content": ""}


def _lines(s: Streamed) -> list[str]:
    return EOL.split(s.raw.decode().removeprefix("\ufeff"))


def _events(s: Streamed) -> list[str]:
    return parse_sse(s.raw, dispatch_at_eof=True)


# what each framing must show in the raw bytes, whatever it is combined with
FRAMING_MARKS: dict[str, Callable[[Streamed], bool]] = {
    "sse-crlf": lambda s: s.raw.count(b"\r\n") == s.raw.count(b"\n") == s.raw.count(b"\r") > 0,
    "sse-cr": lambda s: b"\n" not in s.raw and b"\r\r" in s.raw,
    "sse-comments": lambda s: (
        _lines(s)[0] == ":" and _lines(s).count(":") == 1 and _lines(s).count(": keep-alive") == len(_events(s))
    ),
    "sse-multiline-data": lambda s: (
        all("\n" in e for e in _events(s)[:-1])
        and sum(line.startswith("data:") for line in _lines(s)) > 10 * len(_events(s))
    ),
    "sse-bom": lambda s: s.raw.startswith(b"\xef\xbb\xbf") and not s.raw[3:].startswith(b"\xef\xbb\xbf"),
    "sse-fields": lambda s: (
        _lines(s).count("event: message") == len(_events(s))
        and _lines(s).count("retry: 1000") == 1
        and [line for line in _lines(s) if line.startswith("id:")] == [f"id: {i}" for i in range(len(_events(s)))]
    ),
    "sse-no-space": lambda s: (
        not any(re.match(r"data: \S", line) for line in _lines(s))  # pretty-printed JSON lines start indented
        and sum(line.startswith("data:") for line in _lines(s)) >= len(_events(s))
    ),
    "sse-bytewise": lambda s: {len(p) for p in s.pieces} == {1},
    "sse-split-utf8": lambda s: (
        reassemble(s.chunks)[0]["message"]["content"] == UTF8_ANSWER and not all(_is_utf8(p) for p in s.pieces)
    ),
    "sse-final-unterminated": lambda s: (
        _lines(s)[-2:] != ["", ""] and _lines(s)[-2].endswith("[DONE]") and s.events[-1] != "[DONE]"
    ),
}
COMBINED_FRAMING = "sse-crlf+sse-comments+sse-multiline-data+sse-bom+sse-fields+sse-no-space+sse-final-unterminated"


def _is_utf8(piece: bytes) -> bool:
    try:
        piece.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_every_framing_is_tested() -> None:
    assert set(FRAMING_MARKS) == FRAMINGS


@pytest.mark.parametrize("scenario", [*sorted(FRAMINGS), COMBINED_FRAMING, "sse-bytewise+sse-cr+sse-comments"])
@pytest.mark.parametrize("body", [TEXT_STREAM, TOOL_STREAM], ids=["text", "tools"])
def test_framings_carry_the_same_events(fetch: Callable[..., Streamed], scenario: str, body: dict[str, Any]) -> None:
    reference, streamed = fetch(body), fetch(body, scenario)
    assert streamed.response.headers["content-type"] == "text/event-stream"
    events = parse_sse(streamed.raw, dispatch_at_eof=True)
    assert events[-1] == "[DONE]"
    if "sse-final-unterminated" not in scenario:
        assert streamed.events == events
    texts = "sse-split-utf8" not in scenario
    chunks = [json.loads(e) for e in events[:-1]]
    assert normalized(chunks, content=texts) == normalized(reference.chunks, content=texts)
    for name in scenario.split("+"):
        if name != "sse-split-utf8" or body is TEXT_STREAM:  # the tool answer has no text to split
            assert FRAMING_MARKS[name](streamed), name


def test_split_utf8_also_changes_the_non_stream_answer(post: Callable[..., httpx.Response]) -> None:
    assert _content(post(PLAIN, "sse-split-utf8")) == UTF8_ANSWER
    assert len(UTF8_ANSWER.split()) == len(ANSWER.split())


def _finish(s: Streamed) -> Any:
    return reassemble(s.chunks)[0]["finish_reason"]


def _streamed_message(s: Streamed) -> dict[str, Any]:
    return reassemble(s.chunks)[0]["message"]


def _streamed_call(s: Streamed) -> dict[str, Any]:
    return _streamed_message(s)["tool_calls"][0]


def _json_events(s: Streamed) -> bool:
    return all(json.loads(e) for e in s.events[:-1]) and s.events[-1] == "[DONE]"


def _usage_chunk(s: Streamed) -> dict[str, Any]:
    [chunk] = [c for c in s.chunks if not c["choices"]]
    return chunk["usage"]


def _one_index_per_fragment(s: Streamed) -> bool:
    ids = {c["id"] for c in s.calls}
    names = {c["function"]["name"] for c in s.calls}
    return [c["index"] for c in s.calls] == list(range(len(s.calls))) >= [0, 1, 2] and len(ids) == len(names) == 1


def _usage_only_on_the_finish_chunk(s: Streamed) -> bool:
    with_usage = [c for c in s.chunks if "usage" in c]
    return (
        len(with_usage) == 1
        and with_usage[0]["choices"][0]["finish_reason"] == "stop"
        and with_usage[0]["usage"]["completion_tokens"] == len(ANSWER.split())
        and all(c["choices"] for c in s.chunks)
    )


# scenario, request, what the defect must show in the raw bytes or the parsed events
STREAM_DEFECT_CASES: list[tuple[str, dict[str, Any], Callable[[Streamed], bool]]] = [
    (
        "stream-content-type",
        TEXT_STREAM,
        lambda s: s.response.headers["content-type"] == "text/plain" and _json_events(s),
    ),
    ("stream-bad-line", TEXT_STREAM, lambda s: b"\n\noops this is not a field\n\ndata: {" in s.raw and _json_events(s)),
    (
        "stream-raw-error",
        TEXT_STREAM,
        lambda s: (
            s.raw.endswith(b'}\n\n{"error": {"message": "upstream cancelled", "code": 499}}\n\n')
            and "[DONE]" not in s.events
            and _finish(s) == "stop"
        ),
    ),
    ("stream-not-json", TEXT_STREAM, lambda s: s.events.count("{not json") == 1 and s.events[-1] == "[DONE]"),
    ("stream-after-done", TEXT_STREAM, lambda s: s.events.index("[DONE]") == len(s.events) - 2),
    ("stream-no-done", TEXT_STREAM, lambda s: s.raw.endswith(b"}\n\n") and "[DONE]" not in s.events),
    (
        "stream-error-event",
        TEXT_STREAM,
        lambda s: (
            [e for e in s.chunks if "error" in e] == [{"error": {"message": "quota exceeded", "type": "server_error"}}]
            and s.events[-1] == "[DONE]"
        ),
    ),
    ("stream-chunk-schema", TEXT_STREAM, lambda s: [type(c["created"]) for c in s.chunks].count(str) == 1),
    ("stream-id-changes", TEXT_STREAM, lambda s: len({c["id"] for c in s.chunks}) == 2),
    ("stream-index-wrong", TEXT_STREAM, lambda s: {e["index"] for e in s.entries} == {1}),
    ("stream-no-finish", TEXT_STREAM, lambda s: {e["finish_reason"] for e in s.entries} == {None}),
    ("stream-role-wrong", TEXT_STREAM, lambda s: s.entries[0]["delta"]["role"] == "model"),
    (
        "stream-finish-key-absent",
        TEXT_STREAM,
        lambda s: (
            ["finish_reason" in e for e in s.entries] == [False] * (len(s.entries) - 1) + [True]
            and _finish(s) == "stop"
        ),
    ),
    ("stream-role-every", TEXT_STREAM, lambda s: all(e["delta"]["role"] == "assistant" for e in s.entries)),
    ("stream-tool-no-index", TOOL_STREAM, lambda s: len(s.calls) >= 4 and all("index" not in c for c in s.calls)),
    ("stream-tool-index-changes", TOOL_STREAM, _one_index_per_fragment),
    ("stream-usage-on-final", TEXT_STREAM, _usage_only_on_the_finish_chunk),
    (
        "stream-usage-every",
        TEXT_STREAM,
        lambda s: all(c["choices"] and c["usage"]["total_tokens"] > 0 for c in s.chunks),
    ),
    ("stream-usage-missing", TEXT_STREAM, lambda s: all("usage" not in c and c["choices"] for c in s.chunks)),
    # answer defects, carried by the stream
    ("finish-stop-with-tools", TOOL_STREAM, lambda s: _finish(s) == "stop" and _streamed_call(s)),
    ("finish-invalid", TEXT_STREAM, lambda s: _finish(s) == "STOP"),
    (
        "tool-undeclared",
        TOOL_STREAM,
        lambda s: _streamed_call(s)["function"]["name"] not in {"get_weather", "get_time"},
    ),
    ("tool-args-invalid-json", TOOL_STREAM, lambda s: _streamed_call(s)["function"]["arguments"] == "{city: Paris"),
    (
        "tool-args-schema",
        TOOL_STREAM,
        lambda s: (
            not jsonschema.Draft202012Validator(WEATHER["function"]["parameters"]).is_valid(
                json.loads(_streamed_call(s)["function"]["arguments"])
            )
        ),
    ),
    ("tool-args-array", TOOL_STREAM, lambda s: _streamed_call(s)["function"]["arguments"] == "[]"),
    ("tool-id-empty", TOOL_STREAM, lambda s: _streamed_call(s)["id"] == ""),
    (
        "tool-ids-duplicate",
        {**TOOL_STREAM, "n": 2},
        lambda s: len({c["id"] for c in s.calls if "id" in c}) == 1 and len(_streamed_message(s)["tool_calls"]) == 2,
    ),
    (
        "tool-choice-ignored",
        TOOL_STREAM,
        lambda s: _streamed_message(s) == {"role": "assistant", "content": ANSWER} and _finish(s) == "stop",
    ),
    (
        "json-fenced",
        JSON_OBJECT_STREAM,
        lambda s: re.fullmatch(r"```json\n\{.*\}\n```", _streamed_message(s)["content"]) is not None,
    ),
    ("json-prose", JSON_OBJECT_STREAM, lambda s: _streamed_message(s)["content"].startswith("Here is the JSON: {")),
    (
        "json-schema-invalid",
        JSON_SCHEMA_STREAM,
        lambda s: not jsonschema.Draft202012Validator(PERSON).is_valid(json.loads(_streamed_message(s)["content"])),
    ),
    ("json-not-object", JSON_OBJECT_STREAM, lambda s: _streamed_message(s)["content"] == "[1, 2]"),
    (
        "content-missing",
        TOOL_STREAM,
        lambda s: _streamed_message(s) == {"role": "assistant", "content": None} and _finish(s) == "stop",
    ),
    ("n-ignored", {**TEXT_STREAM, "n": 3}, lambda s: list(reassemble(s.chunks)) == [0]),
    ("id-null", TEXT_STREAM, lambda s: {c["id"] for c in s.chunks} == {None}),
    ("id-no-prefix", TEXT_STREAM, lambda s: all(c["id"].startswith("resp-") for c in s.chunks)),
    ("usage-negative", TEXT_STREAM, lambda s: _usage_chunk(s)["completion_tokens"] == -1),
    (
        "usage-total-wrong",
        TEXT_STREAM,
        lambda s: (
            _usage_chunk(s)["total_tokens"]
            == _usage_chunk(s)["prompt_tokens"] + _usage_chunk(s)["completion_tokens"] + 7
        ),
    ),
    (
        "usage-google-total",
        TEXT_STREAM,
        lambda s: _usage_chunk(s)["completion_tokens_details"]["reasoning_tokens"] == 5,
    ),
]
STREAM_SPECIAL = {"stream-drop", "stream-stall", "stream-endless", "stream-late-start"}  # tested below, one each


# defects around the chunks, which leave the chunks themselves as they are
AROUND_THE_CHUNKS = {
    "stream-content-type",
    "stream-bad-line",
    "stream-raw-error",
    "stream-not-json",
    "stream-after-done",
    "stream-no-done",
    "stream-error-event",
}


def _answer_chunks(s: Streamed) -> list[dict[str, Any]]:
    """The chunk events before any [DONE], skipping what is not a chunk."""
    events = s.events[: s.events.index("[DONE]")] if "[DONE]" in s.events else s.events
    chunks = []
    for event in events:
        with contextlib.suppress(ValueError):
            if "object" in (chunk := json.loads(event)):
                chunks.append(chunk)
    return chunks


@pytest.mark.parametrize(("scenario", "body", "shows"), STREAM_DEFECT_CASES, ids=[c[0] for c in STREAM_DEFECT_CASES])
def test_stream_defect_shows_in_the_stream(
    fetch: Callable[..., Streamed], scenario: str, body: dict[str, Any], shows: Callable[[Streamed], bool]
) -> None:
    streamed = fetch(body, scenario)
    assert streamed.response.status_code == 200
    assert shows(streamed)
    if scenario in AROUND_THE_CHUNKS:
        assert normalized(_answer_chunks(streamed)) == normalized(fetch(body).chunks)


def test_every_stream_defect_is_tested() -> None:
    names = {c[0] for c in STREAM_DEFECT_CASES}
    assert names | STREAM_SPECIAL == {n for n in DEFECTS if n.startswith("stream-")} | STREAMED_ANSWER_DEFECTS


@pytest.mark.parametrize("scenario", sorted(set(ANSWER_DEFECTS) - STREAMED_ANSWER_DEFECTS))
def test_answer_defects_a_stream_cannot_carry_leave_it_alone(fetch: Callable[..., Streamed], scenario: str) -> None:
    assert normalized(fetch(TEXT_STREAM, scenario).chunks) == normalized(fetch(TEXT_STREAM).chunks)


@pytest.mark.parametrize("scenario", ["stream-usage-on-final", "stream-usage-every", "stream-usage-missing"])
def test_usage_placements_need_include_usage(fetch: Callable[..., Streamed], scenario: str) -> None:
    body = {**PLAIN, "stream": True}
    assert normalized(fetch(body, scenario).chunks) == normalized(fetch(body).chunks)


def test_stream_drop_breaks_the_chunked_body(server: Any, client: httpx.Client) -> None:
    pieces = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", server.url("stream-drop") + "/chat/completions", json=TEXT_STREAM) as response,
    ):
        pieces.extend(response.iter_raw())
    raw = b"".join(pieces)
    assert raw.startswith(b"data: {") and not raw.endswith(b"\n\n")
    assert len(parse_sse(raw)) >= 2


def test_stream_stall_is_cut_by_a_read_timeout(
    server: Any, client: httpx.Client, post: Callable[..., httpx.Response]
) -> None:
    pieces = []
    started = time.monotonic()
    with (
        pytest.raises(httpx.ReadTimeout),
        client.stream(
            "POST",
            server.url("stream-stall") + "/chat/completions",
            json=TEXT_STREAM,
            timeout=httpx.Timeout(5, read=0.5),
        ) as response,
    ):
        pieces.extend(response.iter_raw())
    assert time.monotonic() - started < STALL_SECONDS  # cut by the read timeout, not by the stall's end
    assert len(parse_sse(b"".join(pieces))) == 2
    _wait_until_no_stream_is_open(server, post)


def test_stream_late_start_sends_its_headers_then_waits(
    server: Any, client: httpx.Client, fetch: Callable[..., Streamed]
) -> None:
    late = fetch(TEXT_STREAM, "stream-late-start")
    assert late.response.status_code == 200
    # The server counts its pause from writing the headers, the client from reading them: a little less here.
    assert late.times[0] - late.headers_at >= QUEUED_SECONDS / 2
    assert normalized(late.chunks) == normalized(fetch(TEXT_STREAM).chunks)


def test_stream_endless_stops_when_the_client_hangs_up(
    server: Any, client: httpx.Client, post: Callable[..., httpx.Response]
) -> None:
    pieces: list[bytes] = []
    with client.stream("POST", server.url("stream-endless") + "/chat/completions", json=TEXT_STREAM) as response:
        for piece in response.iter_raw():
            pieces.append(piece)
            if sum(map(len, pieces)) >= ONE_MB:
                break
    events = parse_sse(b"".join(pieces))
    assert "[DONE]" not in events
    entries = [json.loads(e)["choices"][0] for e in events]
    assert entries[0]["delta"] == {"role": "assistant", "content": ""}
    assert all(set(e["delta"]) == {"content"} and e["finish_reason"] is None for e in entries[1:])
    _wait_until_no_stream_is_open(server, post)


def test_wire_defects_reach_streams(fetch: Callable[..., Streamed]) -> None:
    complete = fetch(TEXT_STREAM).raw
    broken = fetch(TEXT_STREAM, "invalid-utf8").raw
    assert broken.startswith(b'data: {"id": "\xff\xfechatcmpl-')
    truncated = fetch(TEXT_STREAM, "truncated").raw
    assert abs(len(truncated) - len(complete) // 2) < 10
    assert b"[DONE]" not in truncated
    assert fetch(TEXT_STREAM, "content-type-text").response.headers["content-type"] == "text/plain"


# ------------------------------------------------------------------------------------------ Google's surfaces

ASK = [{"role": "user", "content": "What is 17 times 23?"}]
VERTEX_MODEL = "google/gemini-2.5-flash"
THINKING = {"thinking_config": {"include_thoughts": True, "thinking_budget": 1024}, "thought_tag_marker": "think"}
V_PLAIN: dict[str, Any] = {"model": VERTEX_MODEL, "messages": ASK}
V_THINK: dict[str, Any] = {**V_PLAIN, "extra_body": {"google": THINKING}}
V_MARKER: dict[str, Any] = {**V_PLAIN, "extra_body": {"google": {"thought_tag_marker": "think"}}}
V_TOOLS: dict[str, Any] = {**V_PLAIN, "tools": [WEATHER], "tool_choice": "required"}
G_PLAIN: dict[str, Any] = {"model": "gemini-2.5-flash", "messages": ASK}
G_THINK: dict[str, Any] = {**G_PLAIN, "extra_body": {"google": {"thinking_config": {"include_thoughts": True}}}}
G_QUIET: dict[str, Any] = {**G_PLAIN, "extra_body": {"google": {"thinking_config": {"include_thoughts": False}}}}
TAGGED = f"<think>{THOUGHTS}</think>{ANSWER}"
GEMINI_TAGGED = f"<thought>{THOUGHTS}</thought>{ANSWER}"
GOOGLE_ID = re.compile(r"[A-Za-z0-9_-]{20,}")
ON_DEMAND = {"google": {"traffic_type": "ON_DEMAND"}}
GCS_IMAGE = {"type": "image_url", "image_url": "gs://cloud-samples-data/generative-ai/image/scones.jpg"}
GCS_AUDIO = {"type": "input_audio", "input_audio": {"format": "audio/mp3", "data": "gs://bucket/pixel.mp3"}}


def _choice(response: httpx.Response) -> dict[str, Any]:
    [choice] = response.json()["choices"]
    return choice


def _google_refusal(name: str, at: str = "") -> list[dict[str, Any]]:
    message = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    return [{"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}]


def _contents(s: Streamed) -> list[str]:
    return [e["delta"].get("content") or "" for e in s.entries]


def test_vertex_answers_in_its_documented_shape(post: Callable[..., httpx.Response]) -> None:
    body = post(V_PLAIN, "vertex").json()
    assert set(body) == {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"}
    assert GOOGLE_ID.fullmatch(body["id"]) and not body["id"].startswith("chatcmpl-")
    assert (body["object"], body["model"], body["system_fingerprint"]) == ("chat.completion", VERTEX_MODEL, "")
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "logprobs": None, "finish_reason": "stop"}
    ]
    assert body["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 9,
        "total_tokens": 14,
        "extra_properties": ON_DEMAND,
    }


@pytest.mark.parametrize(
    "body",
    [
        {**V_PLAIN, "messages": [{"role": "user", "content": [{"type": "text", "text": "Describe"}, GCS_IMAGE]}]},
        {**V_PLAIN, "messages": [{"role": "user", "content": [{"type": "text", "text": "Describe"}, GCS_AUDIO]}]},
        {**V_PLAIN, "store": True, "parallel_tool_calls": False, "web_search_options": {}, "google": THINKING},
        {**V_TOOLS, "tool_choice": "validated"},
    ],
    ids=["gcs-image-string", "audio-mime-gcs", "unknown-members", "tool_choice-validated"],
)
def test_vertex_accepts_google_request_shapes(post: Callable[..., httpx.Response], body: dict[str, Any]) -> None:
    assert post(body, "vertex").status_code == 200


def test_ok_refuses_what_vertex_accepts(post: Callable[..., httpx.Response]) -> None:
    body = {**V_PLAIN, "messages": [{"role": "user", "content": [{"type": "text", "text": "Describe"}, GCS_IMAGE]}]}
    assert_openai_error(post(body, "ok"), 400, "messages[0].content[1].image_url")


@pytest.mark.parametrize(
    ("body", "content"),
    [
        (V_THINK, TAGGED),
        (
            {**V_PLAIN, "extra_body": {"google": {"thinking_config": {"include_thoughts": True}}}},
            THOUGHTS + "\n\n" + ANSWER,
        ),
        (V_MARKER, ANSWER),
        ({**V_PLAIN, "google": THINKING}, ANSWER),  # a top-level google key is ignored
    ],
    ids=["marker", "untagged", "marker-alone", "top-level-google"],
)
def test_vertex_honours_extra_body_google(
    post: Callable[..., httpx.Response], body: dict[str, Any], content: str
) -> None:
    response = post(body, "vertex")
    assert _content(response) == content
    usage = _usage(response)
    reasoning = 12 if content != ANSWER else 0
    assert usage["completion_tokens"] == len(ANSWER.split())
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] + reasoning
    assert usage.get("completion_tokens_details", {}).get("reasoning_tokens", 0) == reasoning


@pytest.mark.parametrize(
    ("max_tokens", "content"),
    [(1, "<think>Some"), (2, f"<think>{THOUGHTS}</think>"), (3, f"<think>{THOUGHTS}</think>This")],
)
def test_vertex_thoughts_count_against_the_token_limit(
    post: Callable[..., httpx.Response], max_tokens: int, content: str
) -> None:
    choice = _choice(post({**V_THINK, "max_tokens": max_tokens}, "vertex"))
    assert (choice["message"]["content"], choice["finish_reason"]) == (content, "length")


def test_vertex_tool_calls_carry_a_signature(post: Callable[..., httpx.Response]) -> None:
    choice = _choice(post(V_TOOLS, "vertex"))
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [call] = choice["message"]["tool_calls"]
    assert call["id"].startswith("function-call-") and uuid.UUID(call["id"].removeprefix("function-call-"))
    assert base64.b64decode(call["extra_content"]["google"]["thought_signature"], validate=True)


@pytest.mark.parametrize("options", [{}, {"stream_options": {"include_usage": True}}], ids=["plain", "include_usage"])
def test_vertex_streams_in_its_documented_shape(
    fetch: Callable[..., Streamed], post: Callable[..., httpx.Response], options: dict[str, Any]
) -> None:
    streamed = fetch({**V_THINK, "stream": True, **options}, "vertex")
    chunks, entries = streamed.chunks, streamed.entries
    assert len({c["id"] for c in chunks}) == 1 and GOOGLE_ID.fullmatch(chunks[0]["id"])
    assert {(c["object"], c["model"], c["system_fingerprint"]) for c in chunks} == {
        ("chat.completion.chunk", VERTEX_MODEL, "")
    }
    assert all(e["delta"]["role"] == "assistant" and e["logprobs"] is None for e in entries)
    assert ["finish_reason" in e for e in entries] == [False] * (len(entries) - 1) + [True]
    assert entries[-1]["finish_reason"] == "stop" and entries[-1]["delta"]["content"]
    assert ["usage" in c for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1]["usage"] == _usage(post(V_THINK, "vertex"))
    # The tags arrive cut in two, and join up again.
    assert _contents(streamed)[:2] == ["<th", "ink>Some "]
    assert not any("<think>" in c or "</think>" in c for c in _contents(streamed))
    assert "".join(_contents(streamed)) == TAGGED


def test_vertex_streams_a_tool_call_in_one_delta(fetch: Callable[..., Streamed]) -> None:
    [chunk] = fetch({**V_TOOLS, "stream": True}, "vertex").chunks
    [entry] = chunk["choices"]
    [call] = entry["delta"]["tool_calls"]
    assert call["index"] == 0 and call["id"].startswith("function-call-") and call["function"]["name"] == "get_weather"
    assert call["extra_content"]["google"]["thought_signature"]
    assert entry["finish_reason"] == "tool_calls" and chunk["usage"]["extra_properties"] == ON_DEMAND


@pytest.mark.parametrize(
    ("body", "name", "at"),
    [
        ({**G_PLAIN, "google": THINKING}, "google", ""),
        ({**G_PLAIN, "store": True}, "store", ""),
        ({**G_PLAIN, "parallel_tool_calls": False}, "parallel_tool_calls", ""),
        ({**G_PLAIN, "thinking_config": {"include_thoughts": True}}, "thinking_config", ""),
        ({**G_PLAIN, "extra_body": {"extra_body": {"google": THINKING}}}, "extra_body", " at 'extra_body'"),
    ],
    ids=["google", "store", "parallel_tool_calls", "thinking_config", "double-extra_body"],
)
def test_gemini_refuses_unknown_members_in_google_s_array(
    post: Callable[..., httpx.Response], body: dict[str, Any], name: str, at: str
) -> None:
    response = post(body, "gemini")
    assert response.status_code == 400
    assert response.json() == _google_refusal(name, at)


def test_gemini_writes_every_refusal_as_google_does(post: Callable[..., httpx.Response]) -> None:
    assert _google_error(post({"model": "gemini-2.5-flash", "messages": []}, "gemini"))


def test_gemini_accepts_extra_content_on_messages(post: Callable[..., httpx.Response]) -> None:
    signature = {"google": {"thought_signature": "skip_thought_signature_validator"}}
    call = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    history = [
        *ASK,
        {"role": "assistant", "content": "391", "extra_content": signature},
        {"role": "assistant", "content": [{"type": "text", "text": "391", "extra_content": signature}]},
        {"role": "assistant", "content": None, "tool_calls": [{**call, "extra_content": signature}]},
        {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "{}"},
    ]
    assert _content(post({**G_PLAIN, "messages": history}, "gemini")) == ANSWER


def test_gemini_answers_in_its_observed_shape(post: Callable[..., httpx.Response]) -> None:
    body = post({**G_PLAIN, "model": "models/gemini-2.5-flash"}, "gemini").json()
    assert set(body) == {"id", "object", "created", "model", "choices", "usage"}
    assert GOOGLE_ID.fullmatch(body["id"]) and body["model"] == "gemini-2.5-flash"
    assert body["choices"] == [
        {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
    ]
    assert "extra_properties" not in body["usage"]


@pytest.mark.parametrize("marker", [None, "think"])
def test_gemini_tags_thoughts_as_thought_whatever_the_marker(
    post: Callable[..., httpx.Response], marker: str | None
) -> None:
    settings = {"thinking_config": {"include_thoughts": True}} | ({"thought_tag_marker": marker} if marker else {})
    response = post({**G_PLAIN, "extra_body": {"google": settings}}, "gemini")
    assert _message(response) == {"role": "assistant", "content": GEMINI_TAGGED}
    assert _usage(response)["completion_tokens_details"] == {"reasoning_tokens": 12}


def test_gemini_streams_flag_thought_deltas(fetch: Callable[..., Streamed]) -> None:
    streamed = fetch({**G_THINK, "stream": True}, "gemini")
    assert all(set(c) == {"id", "object", "created", "model", "choices"} for c in streamed.chunks)
    entries = streamed.entries
    assert all(e["delta"]["role"] == "assistant" and "logprobs" not in e for e in entries)
    assert ["finish_reason" in e for e in entries] == [False] * (len(entries) - 1) + [True]
    flagged = ["extra_content" in e["delta"] for e in entries]
    assert flagged == [True, True] + [False] * (len(entries) - 2)
    assert all(e["delta"]["extra_content"] == {"google": {"thought": True}} for e in entries[:2])
    assert entries[2]["delta"]["content"].startswith("</thought>")  # the closing tag opens the answer
    assert "".join(_contents(streamed)) == GEMINI_TAGGED


def test_gemini_sends_usage_on_every_chunk_when_asked(fetch: Callable[..., Streamed]) -> None:
    chunks = fetch({**G_THINK, **USAGE_ON}, "gemini").chunks
    assert len(chunks) > 3 and all(c["usage"] == chunks[-1]["usage"] and c["choices"] for c in chunks)
    assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 12}


def _extra(r: httpx.Response) -> Any:
    return _message(r).get("extra_content")


# scenario, request, what the Google defect must produce
GOOGLE_DEFECT_CASES: list[tuple[str, dict[str, Any], Callable[[httpx.Response], bool]]] = [
    (
        "vertex+google-ignore-extensions",
        V_THINK,
        lambda r: _content(r) == ANSWER and "completion_tokens_details" not in _usage(r),
    ),
    ("gemini+google-ignore-extensions", G_THINK, lambda r: _content(r) == ANSWER),
    ("vertex+google-tags-unbalanced", V_THINK, lambda r: _content(r) == f"<think>{THOUGHTS}{ANSWER}"),
    ("gemini+google-tags-unbalanced", G_THINK, lambda r: _content(r) == f"<thought>{THOUGHTS}{ANSWER}"),
    ("vertex+google-text-before-thoughts", V_THINK, lambda r: _content(r) == f"{ANSWER}<think>{THOUGHTS}</think>"),
    (
        "vertex+google-empty-answer",
        V_THINK,
        lambda r: _content(r) == f"<think>{THOUGHTS}</think>" and _choice(r)["finish_reason"] == "stop",
    ),
    ("vertex+google-thought-leak", V_MARKER, lambda r: _content(r) == TAGGED),
    ("vertex+google-thought-leak", V_PLAIN, lambda r: _content(r) == f"<thought>{THOUGHTS}</thought>{ANSWER}"),
    ("gemini+google-thought-leak", G_QUIET, lambda r: _content(r) == GEMINI_TAGGED),
    (
        "vertex+google-signature-not-base64",
        V_TOOLS,
        lambda r: _call(r)["extra_content"] == {"google": {"thought_signature": "not base64!!"}},
    ),
    ("vertex+google-thought-not-bool", V_THINK, lambda r: _extra(r) == {"google": {"thought": "yes"}}),
    (
        "vertex+google-extra-content-misplaced",
        V_PLAIN,
        lambda r: _extra(r) is None and "thought_signature" in _choice(r)["extra_content"]["google"],
    ),
    (
        "vertex+google-traffic-type-wrong",
        V_PLAIN,
        lambda r: _usage(r)["extra_properties"] == {"google": {"traffic_type": "FREE"}},
    ),
    (
        "gemini+google-traffic-type-wrong",
        G_PLAIN,
        lambda r: _usage(r)["extra_properties"] == {"google": {"traffic_type": "FREE"}},
    ),
]


@pytest.mark.parametrize(
    ("scenario", "body", "produces"),
    GOOGLE_DEFECT_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(GOOGLE_DEFECT_CASES)],
)
def test_google_defect_produces_what_it_says(
    post: Callable[..., httpx.Response], scenario: str, body: Any, produces: Callable[[httpx.Response], bool]
) -> None:
    response = post(body, scenario)
    assert response.status_code == 200
    assert produces(response), response.json()


def test_every_google_defect_is_tested() -> None:
    names = {name for scenario, _, _ in GOOGLE_DEFECT_CASES for name in scenario.split("+")}
    assert names == set(GOOGLE_DEFECTS) | set(SURFACES)


def test_google_defects_reach_streams(fetch: Callable[..., Streamed]) -> None:
    unbalanced = fetch({**V_THINK, "stream": True}, "vertex+google-tags-unbalanced")
    assert "".join(_contents(unbalanced)) == f"<think>{THOUGHTS}{ANSWER}"
    assert _contents(unbalanced)[0] == "<th"
    not_bool = fetch({**G_THINK, "stream": True}, "gemini+google-thought-not-bool").entries
    assert [e["delta"].get("extra_content") for e in not_bool[:3]] == [{"google": {"thought": "yes"}}] * 2 + [None]
    misplaced = fetch({**V_PLAIN, "stream": True}, "vertex+google-extra-content-misplaced").entries
    assert "thought_signature" in misplaced[0]["extra_content"]["google"]
    assert not any("extra_content" in e["delta"] for e in misplaced)


@pytest.mark.parametrize(
    ("scenario", "says"),
    [("google-thought-leak", "add vertex or gemini"), ("vertex+gemini", "several Google surfaces")],
)
def test_google_scenarios_that_make_no_sense_404(post: Callable[..., httpx.Response], scenario: str, says: str) -> None:
    assert says in assert_openai_error(post(PLAIN, scenario), 404)["message"]


def test_google_surfaces_combine_with_other_defects(
    post: Callable[..., httpx.Response], fetch: Callable[..., Streamed]
) -> None:
    assert "usage" not in post(V_PLAIN, "vertex+usage-missing").json()
    assert post({"messages": []}, "gemini+error-vllm").json()["object"] == "error"
    assert all("index" not in c for c in fetch({**V_TOOLS, "stream": True}, "vertex+stream-tool-no-index").calls)
