"""The public Hypothesis strategies in harness.strategies: what they generate is what they promise.

Valid requests satisfy the request schema (schemas/request.schema.json, through `harness.schemas.request_problems`,
the one definition of a valid request, which the local test server agrees with), invalid ones break a rule it
states, bad arguments are refused the Hypothesis way (InvalidArgument, naming the argument), and generated
conversations are coherent: tool results answer an earlier call, json_object requests mention JSON.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from harness import strategies as cs
from harness.cases import fill, load_cases
from harness.resources import bundled
from harness.schemas import request_problems, schema_problems
from tests import servers

EXAMPLES = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def sample(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` examples, the same on every run (derandomized): for properties an xfail pins on known data.

    The known-bug tests assert on such a sample instead of failing inside @given, so a failure is a plain
    assertion (and the same one on every run, as `strict=True` needs)."""
    drawn: list[Any] = []

    @settings(EXAMPLES, max_examples=count, derandomize=True, phases=[Phase.generate])
    @given(strategy)
    def take(value: Any) -> None:
        drawn.append(value)

    take()
    return drawn


def draw_one(strategy: st.SearchStrategy[Any]) -> Any:
    """One example, drawn the way a test draws it (so that lazy argument checks run)."""
    drawn = []

    @settings(max_examples=1, database=None, deadline=None)
    @given(strategy)
    def take(value: Any) -> None:
        drawn.append(value)

    take()
    return drawn[0]


def _texts(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if isinstance(content, str):
        return [content]
    if isinstance(content, list):
        return [p["text"] for p in content if p.get("type") == "text"]
    return []


def test_public_names_are_pinned() -> None:
    assert cs.__all__ == [
        "PARTS",
        "chat_requests",
        "content_parts",
        "conversations",
        "google_extensions",
        "invalid_chat_requests",
        "json_schemas",
        "malformed_bodies",
        "messages",
        "response_formats",
        "sampling_params",
        "texts",
        "tool_choices",
        "tools",
    ]
    assert all(callable(getattr(cs, name)) for name in cs.__all__ if name != "PARTS")


@EXAMPLES
@given(cs.chat_requests(model="m"))
def test_every_valid_request_satisfies_the_request_schema(request: dict[str, Any]) -> None:
    assert request_problems(request) == []


@EXAMPLES
@given(cs.chat_requests(pin={"n": 1, "temperature": 0}, exclude={"image_url", "input_audio", "tools", "google"}))
def test_pinned_and_excluded_requests_satisfy_the_schema_too(request: dict[str, Any]) -> None:
    assert request_problems(request) == []
    assert (request["n"], request["temperature"]) == (1, 0)
    assert "model" not in request and "tools" not in request and "extra_body" not in request
    parts = [p for m in request["messages"] if isinstance(m.get("content"), list) for p in m["content"]]
    assert all(p["type"] == "text" for p in parts)


@EXAMPLES
@given(cs.invalid_chat_requests(model="m"))
def test_every_invalid_request_breaks_a_rule_of_the_schema(request: dict[str, Any]) -> None:
    assert request_problems(request), request


def test_every_kind_of_invalid_request_is_seen_and_breaks_a_rule() -> None:
    """The same on a fixed sample, which holds each way invalid_chat_requests breaks a rule (max_tokens=-5 too)."""
    drawn = sample(cs.invalid_chat_requests(model="m"), 400)
    assert [r for r in drawn if not request_problems(r)] == []
    assert any(r.get("max_tokens") == -5 for r in drawn)
    assert any("messages" not in r for r in drawn) and any(r.get("messages") == [] for r in drawn)


@settings(max_examples=50, deadline=None, database=None)
@given(cs.malformed_bodies())
def test_malformed_bodies_are_not_json(body: str) -> None:
    with pytest.raises(ValueError):
        json.loads(body)


@pytest.mark.parametrize(
    ("make", "argument"),
    [
        (lambda: cs.texts(min_size=-1), "min_size"),
        (lambda: cs.texts(min_size=5, max_size=2), "max_size"),
        (lambda: cs.json_schemas(max_depth=9), "max_depth"),
        (lambda: cs.tools(min_size=0), "min_size"),
        (lambda: cs.tool_choices([]), "declared"),
        (lambda: cs.messages(role="tool"), "role"),
        (lambda: draw_one(cs.chat_requests(exclude={"bogus"})), "exclude"),
        (lambda: draw_one(cs.chat_requests(exclude={"image_url", "imagez"})), "imagez"),
    ],
    ids=[
        "texts-min_size",
        "texts-max_size",
        "json_schemas-max_depth",
        "tools-min_size",
        "tool_choices-empty",
        "messages-role",
        "chat_requests-exclude",
        "chat_requests-exclude-typo",
    ],
)
def test_invalid_arguments_are_refused_naming_the_argument(make: Any, argument: str) -> None:
    with pytest.raises(InvalidArgument, match=argument):
        make()


@pytest.mark.parametrize("pin", ["n=1", 5])
def test_a_pin_that_is_not_a_mapping_is_refused_naming_pin(pin: Any) -> None:
    with pytest.raises(InvalidArgument, match="pin"):
        draw_one(cs.chat_requests(pin=pin))


def _tool_results_answer_earlier_calls(conversation: list[dict[str, Any]]) -> int:
    """Asserts each tool result names the id of a call an earlier assistant turn made; returns how many."""
    called: set[str] = set()
    results = 0
    for message in conversation:
        if message["role"] == "assistant":
            called |= {c["id"] for c in message.get("tool_calls") or []}
        if message["role"] == "tool":
            assert message["tool_call_id"] in called, conversation
            results += 1
    return results


TOOL_RESULTS: Counter[str] = Counter()


@EXAMPLES
@given(cs.tools().flatmap(lambda declared: st.tuples(st.just(declared), cs.conversations(declared=declared))))
def test_tool_results_answer_an_earlier_tool_call(drawn: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    declared, conversation = drawn
    TOOL_RESULTS["conversations"] += 1
    TOOL_RESULTS["with results"] += bool(_tool_results_answer_earlier_calls(conversation))
    names = {t["function"]["name"] for t in declared}
    calls = [c for m in conversation if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert all(c["function"]["name"] in names for c in calls)
    assert conversation[-1]["role"] == "user"


def test_generated_conversations_do_hold_tool_results() -> None:
    """The property above is not vacuous: a good share of the conversations it saw answered a call."""
    assert TOOL_RESULTS["conversations"] >= 100
    assert TOOL_RESULTS["with results"] >= 10, TOOL_RESULTS


@EXAMPLES
@given(cs.chat_requests(model="m"))
def test_tool_results_in_whole_requests_answer_earlier_calls(request: dict[str, Any]) -> None:
    _tool_results_answer_earlier_calls(request["messages"])
    if "tool_choice" in request and isinstance(request["tool_choice"], dict):
        declared = {t["function"]["name"] for t in request["tools"]}
        assert request["tool_choice"]["function"]["name"] in declared


@EXAMPLES
@given(cs.chat_requests(model="m", exclude={"tools"}).filter(lambda r: "response_format" in r))
def test_json_object_requests_mention_json(request: dict[str, Any]) -> None:
    if request["response_format"]["type"] == "json_object":
        assert any("json" in text.lower() for m in request["messages"] for text in _texts(m)), request


@settings(max_examples=100, deadline=None, database=None)
@given(cs.texts(min_size=3, max_size=5))
def test_texts_have_no_nul_and_no_lone_surrogate(text: str) -> None:
    assert len(text) >= 3
    assert "\x00" not in text
    text.encode("utf-8")


def test_texts_respect_max_size() -> None:
    too_long = [t for t in sample(cs.texts(min_size=3, max_size=5), 100) if len(t) > 5]
    assert not too_long, too_long[:3]


@settings(max_examples=100, deadline=None, database=None)
@given(cs.json_schemas(max_depth=3))
def test_json_schemas_are_valid_object_schemas(schema: dict[str, Any]) -> None:
    assert schema_problems(schema) == []
    assert schema["type"] == "object"


# --- one definition of a valid request: the local test server agrees with request_problems ---------------------------
# tests/servers.py validates by hand, as OpenAI words its 400s (and with rules no schema states, such as tool_choice
# naming a declared tool); here its verdicts are held to the schema's, so the two cannot drift apart.


def _server_refuses(body: Any) -> bool:
    try:
        servers.validate(body)
    except servers.InvalidRequest:
        return True
    return False


@EXAMPLES
@given(cs.chat_requests(model="m"))
def test_the_test_server_accepts_every_valid_request(request: dict[str, Any]) -> None:
    assert not _server_refuses(request)


@EXAMPLES
@given(cs.invalid_chat_requests(model="m"))
def test_the_test_server_refuses_every_invalid_request(request: dict[str, Any]) -> None:
    assert _server_refuses(request)


# Where the test server is knowingly looser than the schema: it does not read input_audio.format.
SERVER_GAPS = {"google-audio-gcs-mime-format"}
# What OpenAI refuses beyond its published schema, and the test server with it: a model it does not serve, more
# tokens than the context holds, an empty tools list ("[] is too short").
BEYOND_SCHEMA = {
    "negative-unknown-model",
    "negative-context-length-exceeded",
    "negative-context-length-exceeded-stream",
    "negative-tools-empty",
}


def test_the_test_server_and_the_schema_agree_on_every_catalogue_request() -> None:
    examples = Path(__file__).resolve().parent.parent / "examples" / "google-docs" / "cases"
    cases = [c for c in load_cases([bundled("cases"), examples]) if c.request is not None]
    assert len(cases) > 50
    disagree = set()
    for case in cases:
        request = fill(case, {"model": "m"}, {}).request
        if _server_refuses(request) != bool(request_problems(request)):
            disagree.add(case.id)
    assert disagree == SERVER_GAPS | BEYOND_SCHEMA


VALID = {"messages": [{"role": "user", "content": "hi"}]}
WEATHER = {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize(
    ("members", "pointer"),
    [
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            "/tool_choice/function/name",
        ),
        ({"tool_choice": "required"}, "/tool_choice"),
        ({"top_logprobs": 2}, "/top_logprobs"),
        ({"stream_options": {"include_usage": True}}, "/stream_options"),
    ],
    ids=["undeclared-tool", "choice-without-tools", "top-logprobs-alone", "stream-options-alone"],
)
def test_rules_between_members_are_part_of_a_valid_request(members: dict[str, Any], pointer: str) -> None:
    """What no schema can state, request_problems says too, as OpenAI (and the test server) refuse it."""
    request = {**VALID, **members}
    assert [p.pointer for p in request_problems(request)] == [pointer]
    assert _server_refuses(request)


@pytest.mark.parametrize(
    "members",
    [
        {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        {"tool_choice": "none"},
        {"top_logprobs": 2, "logprobs": True},
        {"stream_options": {"include_usage": True}, "stream": True},
    ],
    ids=["declared-tool", "none-without-tools", "top-logprobs-with-logprobs", "stream-options-with-stream"],
)
def test_members_that_keep_the_rules_are_valid(members: dict[str, Any]) -> None:
    request = {**VALID, **members}
    assert request_problems(request) == []
    assert not _server_refuses(request)
