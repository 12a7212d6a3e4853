"""What the servers' own suites assert, both ways: parallel tool calls in a stream, stream finish semantics,
reasoning members and token accounting. Each row is an answer built in memory; its defect fails with its own code,
and its conformant twin passes."""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.cases import parse_case
from harness.endpoints import Endpoint
from harness.engine import run
from harness.models import Severity, Verdict
from harness.sending import Options
from tests.conftest import run_case, without_clients
from tests.test_checks import TEXT, WEATHER

TOOLS = {**TEXT, "tools": [WEATHER], "tool_choice": "required"}


def _chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": choices,
        **extra,
    }


def _entry(delta: dict[str, Any], finish: str | None = None, index: int = 0) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}


def _call(index: int, arguments: str, head: bool, call_id: str = "") -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if head:
        fragment.update(id=call_id or f"call_{index}", type="function")
        fragment["function"]["name"] = "get_weather"
    return fragment


def parallel_stream() -> list[dict[str, Any]]:
    """Two calls, each announced on its first fragment, then their arguments in pieces."""
    return [
        _chunk([_entry({"role": "assistant", "content": None, "tool_calls": [_call(0, "", True)]})]),
        _chunk([_entry({"tool_calls": [_call(0, '{"city": ', False)]})]),
        _chunk([_entry({"tool_calls": [_call(0, '"Paris"}', False)]})]),
        _chunk([_entry({"tool_calls": [_call(1, "", True)]})]),
        _chunk([_entry({"tool_calls": [_call(1, '{"city": "London"}', False)]})]),
        _chunk([_entry({}, "tool_calls")]),
    ]


def text_stream(n: int = 1) -> list[dict[str, Any]]:
    chunks = [_chunk([_entry({"role": "assistant", "content": ""}, index=i) for i in range(n)])]
    chunks += [_chunk([_entry({"content": word}, index=i)]) for word in ("Hello", " there") for i in range(n)]
    chunks += [_chunk([_entry({}, "stop", index=i)]) for i in range(n)]
    return chunks


def _usage(completion: int, reasoning: int | None = None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 5, "completion_tokens": completion, "total_tokens": 5 + completion}
    if reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return usage


def answer(message: dict[str, Any], usage: dict[str, Any] | None = None, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "logprobs": None, "finish_reason": finish}
        ],
        "usage": usage or _usage(2),
    }


def _sse(chunks: list[dict[str, Any]]) -> httpx.MockTransport:
    text = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())
    )


def _json(body: dict[str, Any]) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, json=body))


@dataclass(frozen=True)
class Row:
    name: str
    request: dict[str, Any]
    broken: dict[str, Any] | list[dict[str, Any]]
    twin: dict[str, Any] | list[dict[str, Any]]
    wanted: set[tuple[str, str]]


def _edit(chunks: list[dict[str, Any]], at: int, **delta: Any) -> list[dict[str, Any]]:
    out = copy.deepcopy(chunks)
    out[at]["choices"][0]["delta"].update(delta)
    return out


def _shifted(chunk: dict[str, Any]) -> dict[str, Any]:
    """The chunk with its tool calls indexed from 1."""
    out = copy.deepcopy(chunk)
    for fragment in out["choices"][0]["delta"].get("tool_calls") or []:
        fragment["index"] += 1
    return out


_P = parallel_stream()
_T = text_stream()
_HALF_CALL = {
    "content": None,
    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "get_weather", "arguments": '{"ci'}}],
}
_REASONING = "First I recall that Paris is the capital of France, so the answer follows."

BEHAVIOUR_FAILING: list[Row] = [
    Row(
        "two-entries-one-index-in-a-chunk",
        {**TOOLS, "stream": True},
        [
            *_P[:1],
            _chunk([_entry({"tool_calls": [_call(0, '{"city": ', False), _call(0, '"Paris"}', False)]})]),
            *_P[3:],
        ],
        [*_P[:1], _chunk([_entry({"tool_calls": [_call(0, '{"city": "Paris"}', False)]})]), *_P[3:]],
        {("stream.tool_call_index_once", "/stream/events/1/data/choices/0/delta/tool_calls/1/index")},
    ),
    Row(
        "name-repeated-on-a-later-fragment",
        {**TOOLS, "stream": True},
        _edit(_P, 1, tool_calls=[_call(0, '{"city": ', True)]),
        _P,
        {("stream.tool_call_head_once", "/stream/events/1/data/choices/0/delta/tool_calls/0")},
    ),
    Row(
        "calls-indexed-from-one",
        {**TOOLS, "stream": True},
        [_shifted(chunk) for chunk in _P],
        _P,
        {("stream.tool_call_indexes_dense", "/stream/events/0/data/choices")},
    ),
    Row(
        "two-finish-reasons",
        {**TEXT, "stream": True},
        [*_T[:2], _chunk([_entry({"content": " there"}, "length")]), _T[-1]],
        _T,
        {("stream.finish_reason_once", "/stream/events/3/data/choices/0/finish_reason")},
    ),
    Row(
        "content-after-finish",
        {**TEXT, "stream": True},
        [*_T[:2], _T[-1], _T[2]],
        _T,
        {("stream.finish_reason_once", "/stream/events/3/data/choices/0/delta")},
    ),
    Row(
        "n2-choice-finished-twice",
        {**TEXT, "stream": True, "n": 2},
        [*text_stream(2), _chunk([_entry({}, "stop", index=1)])],
        text_stream(2),
        {("stream.finish_reason_once", "/stream/events/7/data/choices/0/finish_reason")},
    ),
    Row(
        "reasoning-not-a-string",
        TEXT,
        answer({"content": "Paris.", "reasoning_content": ["thinking"]}),
        answer({"content": "Paris.", "reasoning_content": "thinking"}),
        {("response.reasoning_well_formed", "/response/body/choices/0/message/reasoning_content")},
    ),
    Row(
        "reasoning-repeated-in-content",
        TEXT,
        answer({"content": f"{_REASONING}\n\nParis.", "reasoning_content": _REASONING}),
        answer({"content": "Paris.", "reasoning_content": _REASONING}),
        {("response.reasoning_not_in_content", "/response/body/choices/0/message/content")},
    ),
    Row(
        "think-tags-left-in-content",
        TEXT,
        answer({"content": f"<think>{_REASONING}</think>\n\nParis."}),
        answer({"content": "Paris.", "reasoning": _REASONING}),
        {("response.reasoning_not_in_content", "/response/body/choices/0/message/content")},
    ),
    Row(
        "streamed-reasoning-leaked",
        {**TEXT, "stream": True},
        [
            *_T[:1],
            _chunk([_entry({"reasoning_content": _REASONING})]),
            _chunk([_entry({"content": _REASONING})]),
            _T[-1],
        ],
        [*_T[:1], _chunk([_entry({"reasoning_content": _REASONING})]), _chunk([_entry({"content": "Paris."})]), _T[-1]],
        {("response.reasoning_not_in_content", "/stream/assembled/choices/0/message/content")},
    ),
    Row(
        "reasoning-not-counted",
        TEXT,
        answer({"content": "Paris.", "reasoning_content": _REASONING}, _usage(20, reasoning=0)),
        answer({"content": "Paris.", "reasoning_content": _REASONING}, _usage(20, reasoning=16)),
        {("response.reasoning_tokens_counted", "/response/body/usage/completion_tokens_details/reasoning_tokens")},
    ),
    Row(
        "completion-tokens-above-max-tokens",
        {**TEXT, "max_tokens": 5},
        answer({"content": "One two three four five six"}, _usage(6), finish="length"),
        answer({"content": "One two three four five"}, _usage(5), finish="length"),
        {("params.token_limit", "/response/body/usage/completion_tokens")},
    ),
    Row(
        "completion-tokens-above-max-completion-tokens",
        {**TEXT, "max_tokens": 50, "max_completion_tokens": 5},
        answer({"content": "One two three four five six"}, _usage(6), finish="length"),
        answer({"content": "One two three four five"}, _usage(5), finish="length"),
        {("params.token_limit", "/response/body/usage/completion_tokens")},
    ),
    Row(
        "half-call-presented-as-complete",
        {**TOOLS, "max_tokens": 3},
        answer(_HALF_CALL, _usage(3), finish="tool_calls"),
        answer(_HALF_CALL, _usage(3), finish="length"),
        {("tools.arguments_json", "/response/body/choices/0/message/tool_calls/0/function/arguments")},
    ),
]


def _transport(value: dict[str, Any] | list[dict[str, Any]]) -> httpx.MockTransport:
    return _sse(value) if isinstance(value, list) else _json(value)


@pytest.mark.parametrize("row", BEHAVIOUR_FAILING, ids=lambda row: row.name)
def test_behaviour_defect_fails_with_its_code_and_its_twin_passes(row: Row) -> None:
    # What the official SDKs make of these answers is tested in tests/test_client_checks.py.
    broken = without_clients(run_case("http://mock.invalid/v1", row.request, transport=_transport(row.broken)))
    assert broken.verdict is Verdict.FAIL, broken.findings
    assert {(f.code, f.pointer) for f in broken.errors} == row.wanted
    twin = without_clients(run_case("http://mock.invalid/v1", row.request, transport=_transport(row.twin)))
    assert twin.verdict is Verdict.PASS and not twin.errors, twin.findings


def test_parallel_calls_streamed_rebuild_into_two_calls_with_their_ids() -> None:
    result = run_case("http://mock.invalid/v1", {**TOOLS, "stream": True}, transport=_sse(parallel_stream()))
    assert result.exchange is not None
    calls = result.exchange.answer()["choices"][0]["message"]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [
        ("call_0", '{"city": "Paris"}'),
        ("call_1", '{"city": "London"}'),
    ]


def test_streamed_reasoning_is_rebuilt_beside_the_content() -> None:
    chunks = [*text_stream()[:1], _chunk([_entry({"reasoning": "a"})]), _chunk([_entry({"reasoning": "b"})])]
    chunks += text_stream()[1:]
    result = run_case("http://mock.invalid/v1", {**TEXT, "stream": True}, transport=_sse(chunks))
    assert result.exchange is not None
    assert result.exchange.answer()["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello there",
        "reasoning": "ab",
    }


def test_google_thought_tags_asked_for_are_left_to_the_google_checks() -> None:
    body = {**TEXT, "extra_body": {"google": {"thought_tag_marker": "think"}}}
    result = run_case(
        "http://mock.invalid/v1", body, transport=_json(answer({"content": f"<think>{_REASONING}</think>Paris."}))
    )
    assert "response.reasoning_not_in_content" not in {f.code for f in result.findings}


def _both_ways(plain: str, streamed: str) -> httpx.MockTransport:
    """An endpoint that answers `plain` to a plain request and streams `streamed` word by word."""

    def respond(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            words = streamed.split(" ")
            chunks = [_chunk([_entry({"role": "assistant", "content": ""})])]
            chunks += [_chunk([_entry({"content": w if i == 0 else " " + w})]) for i, w in enumerate(words)]
            chunks.append(_chunk([_entry({}, "stop")]))
            text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())
        return httpx.Response(200, json=answer({"content": plain}))

    return httpx.MockTransport(respond)


@pytest.mark.parametrize("profile", ["generic", "openai"])
def test_streamed_text_that_differs_from_the_plain_text_at_temperature_0_is_a_warning(profile: str) -> None:
    case = parse_case({"id": "greedy", "both_ways": True, "request": {**TEXT, "temperature": 0, "seed": 7}})
    endpoint = Endpoint("mock", "http://mock.invalid/v1", model="m", profile=profile)

    def results(plain: str, streamed: str) -> list[Any]:
        return asyncio.run(
            run([case], [endpoint], Options(timeout=10, deadline=20), environ={}, transport=_both_ways(plain, streamed))
        )

    _, differing = results("Hello there friend", "Hello there pal")
    assert differing.verdict is Verdict.PASS
    assert [(f.code, f.pointer, f.severity) for f in differing.findings] == [
        ("stream.text_matches_plain", "/stream/assembled/choices/0/message/content", Severity.WARNING)
    ]
    assert "from character 12: 'friend' plain, 'pal' streamed" in differing.findings[0].message
    _, same = results("Hello there friend", "Hello there friend")
    assert same.findings == ()
    sampled = parse_case({"id": "sampled", "both_ways": True, "request": {**TEXT, "temperature": 1, "seed": 7}})
    _, free = asyncio.run(
        run(
            [sampled],
            [endpoint],
            Options(timeout=10, deadline=20),
            environ={},
            transport=_both_ways("Hello there friend", "Hello there pal"),
        )
    )
    assert free.findings == (), "sampling may say something else: nothing to compare"
