"""Streams both ways: every legal framing passes, every defect fails with its own code, stalls end in time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.cases import parse_case
from harness.endpoints import Endpoint
from harness.engine import run
from harness.models import Severity, Verdict
from harness.recordings import load_recordings
from harness.redact import Redactor
from harness.sending import Options
from harness.streams import read_stream
from tests import servers
from tests.conftest import run_case, without_clients
from tests.servers import Server
from tests.test_checks import JSON_SCHEMA, N2, TEXT, TOOLS

STREAM = {**TEXT, "stream": True}
USAGE = {**STREAM, "stream_options": {"include_usage": True}}
S_TOOLS = {**TOOLS, "stream": True}
S_JSON = {**JSON_SCHEMA, "stream": True}
S_N2 = {**N2, "stream": True}
ASSEMBLED = "/stream/assembled/choices/0"

# (scenario, request, profile) -> {(code, pointer prefix)} reported as errors
STREAM_FAILING: list[tuple[str, dict[str, Any], str, set[tuple[str, str]]]] = [
    ("stream-content-type", STREAM, "generic", {("stream.content_type", "/response/headers/content-type")}),
    ("stream-bad-line", STREAM, "generic", {("stream.framing", "/stream/events")}),
    (
        "stream-raw-error",
        STREAM,
        "generic",
        {("stream.framing", "/stream/events"), ("stream.done_marker", "/stream/events")},
    ),
    ("stream-not-json", STREAM, "generic", {("stream.data_json", "/stream/events/")}),
    ("stream-after-done", STREAM, "generic", {("stream.after_done", "/stream/events/")}),
    ("stream-no-done", STREAM, "generic", {("stream.done_marker", "/stream/events")}),
    ("stream-error-event", STREAM, "generic", {("stream.error_event", "/stream/events/")}),
    ("stream-chunk-schema", STREAM, "generic", {("stream.chunk_schema", "/stream/events/")}),
    ("stream-id-changes", STREAM, "generic", {("stream.consistent_id", "/stream/events/")}),
    (
        "stream-index-wrong",
        STREAM,
        "generic",
        {("stream.choice_index", "/stream/events/"), ("response.choices_indexed", "/stream/assembled/choices/0/index")},
    ),
    ("stream-no-finish", STREAM, "generic", {("stream.finish_reason", "/stream/events")}),
    (
        "stream-role-wrong",
        STREAM,
        "generic",
        {("stream.role_assistant", "/stream/events/"), ("response.role_assistant", f"{ASSEMBLED}/message/role")},
    ),
    ("stream-finish-key-absent", STREAM, "openai", {("stream.finish_reason_key", "/stream/events/")}),
    ("stream-role-every", STREAM, "openai", {("stream.role_first_only", "/stream/events/")}),
    ("stream-tool-no-index", S_TOOLS, "generic", {("stream.tool_call_index", "/stream/events/")}),
    ("stream-tool-index-changes", S_TOOLS, "generic", {("stream.tool_call_fragments", "/stream/events/")}),
    ("stream-usage-missing", USAGE, "generic", {("stream.usage_present", "/stream/events")}),
    ("stream-usage-on-final", USAGE, "openai", {("stream.usage_chunk", "/stream/events/")}),
    ("stream-usage-every", USAGE, "openai", {("stream.usage_chunk", "/stream/events/")}),
    (
        "finish-stop-with-tools",
        S_TOOLS,
        "generic",
        {("response.finish_reason_consistent", f"{ASSEMBLED}/finish_reason")},
    ),
    (
        "tool-args-schema",
        S_TOOLS,
        "generic",
        {("tools.arguments_valid", f"{ASSEMBLED}/message/tool_calls/0/function/arguments")},
    ),
    ("tool-choice-ignored", S_TOOLS, "generic", {("tools.choice_honoured", f"{ASSEMBLED}/message")}),
    ("json-fenced", S_JSON, "generic", {("structured.content_json", f"{ASSEMBLED}/message/content")}),
    ("json-schema-invalid", S_JSON, "generic", {("structured.schema_valid", f"{ASSEMBLED}/message/content")}),
    ("usage-total-wrong", USAGE, "generic", {("response.usage_total", "/stream/assembled/usage/total_tokens")}),
]

# Deviations a profile accepts: the stream passes there, with these warnings.
STREAM_ALLOWED: list[tuple[str, dict[str, Any], str, set[str]]] = [
    ("stream-finish-key-absent", STREAM, "generic", set()),
    ("stream-role-every", STREAM, "vertex", set()),
    ("stream-tool-index-changes", S_TOOLS, "vertex", {"stream.tool_call_fragments"}),
    ("stream-usage-on-final", USAGE, "vertex", {"stream.usage_chunk"}),
    ("stream-usage-on-final", USAGE, "generic", {"stream.usage_chunk"}),
    ("stream-usage-every", USAGE, "gemini-api", {"stream.usage_chunk"}),
    ("sse-final-unterminated", STREAM, "openai", {"stream.unterminated"}),
]

# Every legal framing the test server knows, alone and combined; the unterminated one passes with a warning.
FRAMINGS = [
    "ok",
    *sorted(servers.FRAMINGS - {"sse-final-unterminated"}),
    "sse-crlf+sse-comments+sse-fields+sse-bom",
]


def _ids(rows: list[tuple[Any, ...]]) -> list[str]:
    return [f"{row[0]}-{row[2]}" for row in rows]


@pytest.mark.parametrize(("scenario", "request_body", "profile", "wanted"), STREAM_FAILING, ids=_ids(STREAM_FAILING))
def test_stream_defect_fails_with_its_code_and_its_twin_passes(
    server: Server, scenario: str, request_body: dict[str, Any], profile: str, wanted: set[tuple[str, str]]
) -> None:
    result = without_clients(run_case(server.url(scenario), request_body, profile=profile))
    assert result.verdict is Verdict.FAIL, result.findings
    assert {f.code for f in result.errors} == {code for code, _ in wanted}, [f.message for f in result.errors]
    prefixes = dict(wanted)
    for finding in result.errors:
        assert finding.pointer.startswith(prefixes[finding.code]), finding
    twin = run_case(server.url("ok"), request_body, profile=profile)
    assert twin.verdict is Verdict.PASS and twin.findings == (), twin.findings


@pytest.mark.parametrize(("scenario", "request_body", "profile", "warned"), STREAM_ALLOWED, ids=_ids(STREAM_ALLOWED))
def test_documented_stream_deviation_passes_under_its_profile(
    server: Server, scenario: str, request_body: dict[str, Any], profile: str, warned: set[str]
) -> None:
    result = without_clients(run_case(server.url(scenario), request_body, profile=profile))
    assert result.verdict is Verdict.PASS, result.findings
    assert {f.code for f in result.findings} == warned
    assert all(f.severity is Severity.WARNING for f in result.findings)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize(
    "request_body", [STREAM, USAGE, S_TOOLS, S_JSON, S_N2], ids=["text", "usage", "tools", "json", "n2"]
)
def test_every_legal_framing_passes(server: Server, framing: str, request_body: dict[str, Any]) -> None:
    result = without_clients(run_case(server.url(framing), request_body, profile="openai"))
    assert result.verdict is Verdict.PASS and result.findings == (), [f.message for f in result.findings]


def test_the_rebuilt_message_equals_the_plain_answer(server: Server) -> None:
    for body in (TEXT, TOOLS, JSON_SCHEMA, N2):
        plain = run_case(server.url("ok"), body)
        streamed = run_case(server.url("ok"), {**body, "stream": True})
        assert plain.exchange is not None and streamed.exchange is not None and streamed.exchange.stream is not None
        messages = [c["message"] for c in plain.exchange.response.body["choices"]]  # type: ignore[union-attr]
        rebuilt = [c["message"] for c in streamed.exchange.stream.assembled["choices"]]
        for before, after in zip(messages, rebuilt, strict=True):
            for message in (before, after):  # call ids are fresh in every answer
                for call in message.get("tool_calls", []):
                    call.pop("id")
            assert {k: v for k, v in before.items() if k != "refusal"} == after


def _sse(chunks: list[dict[str, Any]]) -> httpx.MockTransport:
    text = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks) + "data: [DONE]\n\n"
    return httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())
    )


def test_a_changing_created_is_reported_by_weight() -> None:
    """llama.cpp stamps each chunk with its own second; OpenAI documents one timestamp for the whole stream."""

    def chunk(created: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": created,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    chunks = [chunk(1, {"role": "assistant", "content": ""}), chunk(1, {"content": "Hi"}), chunk(2, {}, "stop")]
    strict = run_case("http://mock/v1", STREAM, profile="openai", transport=_sse(chunks))
    assert [(f.code, f.pointer) for f in strict.errors] == [
        ("stream.consistent_created", "/stream/events/2/data/created")
    ]
    lenient = run_case("http://mock/v1", STREAM, transport=_sse(chunks))
    assert lenient.verdict is Verdict.PASS and [f.code for f in lenient.warnings] == ["stream.consistent_created"]
    chunks[2]["created"] = 1
    assert run_case("http://mock/v1", STREAM, profile="openai", transport=_sse(chunks)).findings == ()


def test_stream_timings(server: Server) -> None:
    result = run_case(server.url("ok"), STREAM)
    assert result.exchange is not None
    timings = result.exchange.timings
    assert timings.events and timings.events >= 3
    assert timings.ttfb_ms is not None and timings.ttft_ms is not None and timings.total_ms is not None
    assert timings.ttfb_ms <= timings.ttft_ms <= timings.total_ms
    assert timings.max_gap_ms is not None and timings.max_gap_ms >= 0


def test_a_stalled_stream_ends_within_the_idle_timeout(server: Server) -> None:
    result = run_case(server.url("stream-stall"), STREAM, options=Options(stream_idle_timeout=0.5, deadline=20))
    assert result.verdict is Verdict.ERROR
    assert [f.code for f in result.findings] == ["transport.timeout"]
    message = result.findings[0].message
    assert "stalled" in message and "--stream-idle-timeout" in message and "--timeout" not in message
    assert result.exchange is not None and result.exchange.stream is not None
    assert len(result.exchange.stream.events) == 2, "the events before the stall are kept"
    assert result.exchange.timings.total_ms is not None
    assert result.exchange.timings.total_ms < servers.STALL_SECONDS * 1000  # cut by the timeout, not the stall's end


@pytest.mark.parametrize("scenario", ["queued", "stream-late-start"])
def test_a_stream_queued_at_a_busy_server_waits_under_timeout_not_the_idle_timeout(
    server: Server, scenario: str
) -> None:
    """Queued for a slot, a request gets no byte (or only headers) for a while; then its events come quickly."""
    options = Options(timeout=10, stream_idle_timeout=0.5, deadline=20)
    result = run_case(server.url(scenario), STREAM, options=options)
    assert result.verdict is Verdict.PASS and result.findings == (), [f.message for f in result.findings]
    assert result.exchange is not None and result.exchange.timings.ttft_ms is not None
    assert result.exchange.timings.ttft_ms >= servers.QUEUED_SECONDS * 1000, "it did wait longer than the idle timeout"


@pytest.mark.parametrize(
    ("scenario", "request_body", "said"),
    [
        ("queued", STREAM, "not one byte of the answer came"),
        ("queued", TEXT, "not one byte of the answer came"),
        ("stream-late-start", STREAM, "the headers came, then no data"),
    ],
    ids=["queued-stream", "queued-plain", "late-start-stream"],
)
def test_a_wait_for_the_first_byte_past_timeout_says_to_lower_concurrency(
    server: Server, scenario: str, request_body: dict[str, Any], said: str
) -> None:
    options = Options(timeout=0.5, stream_idle_timeout=30, deadline=20, concurrency=3)
    result = run_case(server.url(scenario), request_body, options=options)
    assert result.verdict is Verdict.ERROR
    [finding] = result.findings
    assert finding.code == "transport.timeout"
    assert said in finding.message and "within 0.5 s of sending (--timeout)" in finding.message
    assert "lower --concurrency (now 3)" in finding.message and "--stream-idle-timeout" not in finding.message


def test_an_endpoint_s_own_timeout_bounds_its_first_byte_and_is_named(server: Server) -> None:
    """A config file's `timeout:` for one endpoint overrides --timeout there, streams included."""
    case = parse_case({"id": "queued", "request": STREAM})
    patient, hurried = (Endpoint(n, server.url("queued"), model="m", timeout=t) for n, t in (("p", 10), ("h", 0.5)))
    results = asyncio.run(run([case], [patient, hurried], Options(timeout=0.5, deadline=20), environ={}))
    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.ERROR]
    assert "within 0.5 s of sending (the endpoint's `timeout`)" in results[1].findings[0].message


def test_a_plain_answer_that_stalls_after_it_started_names_timeout() -> None:
    """Its first bytes came, so it was not queued: the message does not suggest fewer requests in flight."""

    class Stalling(httpx.AsyncByteStream):
        def __init__(self, pause: float) -> None:
            self.pause = pause

        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield b'{"id": "chatcmpl-1", '
            await asyncio.sleep(self.pause)
            yield b'"object": "chat.completion"}'

    def answer(pause: float) -> httpx.MockTransport:
        async def handler(request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "application/json"}, stream=Stalling(pause))

        return httpx.MockTransport(handler)

    options = Options(timeout=0.3, deadline=20)
    stalled = run_case("http://mock/v1", TEXT, options=options, transport=answer(30))
    assert [f.code for f in stalled.findings] == ["transport.timeout"]
    message = stalled.findings[0].message
    assert "the answer stalled: no data for 0.3 s after it had started; raise --timeout" in message
    assert "--concurrency" not in message
    brief = run_case("http://mock/v1", TEXT, options=options, transport=answer(0.01))
    assert "transport.timeout" not in [f.code for f in brief.findings]


def test_the_cases_after_a_stall_still_run(server: Server) -> None:
    cases = [parse_case({"id": f"c{i}", "request": STREAM}) for i in range(3)]
    stalled = [Endpoint("stall", server.url("stream-stall"), model="m"), Endpoint("ok", server.url("ok"), model="m")]
    results = asyncio.run(run(cases, stalled, Options(stream_idle_timeout=0.5, deadline=20, concurrency=2), environ={}))
    assert [r.verdict for r in results] == [Verdict.ERROR] * 3 + [Verdict.PASS] * 3


def test_a_dropped_stream_is_reported_not_crashed_on(server: Server) -> None:
    result = run_case(server.url("stream-drop"), STREAM)
    assert result.verdict is Verdict.ERROR
    assert [f.code for f in result.findings] == ["transport.reset"]
    assert result.exchange is not None and result.exchange.stream is not None
    assert result.exchange.stream.events, "what arrived before the drop is kept"


def test_an_endless_stream_is_cut_at_the_size_limit(server: Server) -> None:
    result = run_case(server.url("stream-endless"), STREAM, options=Options(max_response_bytes=256 * 1024, deadline=20))
    assert [f.code for f in result.findings] == ["transport.too_large"]


def test_streams_replay_with_their_framing_and_timings(server: Server, tmp_path: Path) -> None:
    cases = [
        parse_case({"id": "text", "request": STREAM}),
        parse_case({"id": "tools", "request": S_TOOLS}),
        parse_case({"id": "usage", "request": USAGE}),
    ]
    endpoints = [
        Endpoint("ok", server.url("sse-crlf+sse-comments"), model="m"),
        Endpoint("vertexish", server.url("stream-tool-index-changes+stream-usage-on-final"), model="m"),
        Endpoint("broken", server.url("stream-bad-line"), model="m"),
    ]
    recorded = asyncio.run(run(cases, endpoints, Options(), environ={}, record=tmp_path))
    recordings = load_recordings(tmp_path)
    replayed = asyncio.run(run(cases, endpoints, Options(), environ={}, replay=recordings))

    def outcome(r: Any) -> tuple[Any, ...]:
        events = [(e.data, e.line, e.event) for e in r.exchange.stream.events]
        return r.verdict, [(f.code, f.pointer, f.message) for f in r.findings], events

    assert [outcome(r) for r in replayed] == [outcome(r) for r in recorded]
    for after in replayed:
        # Replay reports the times the recording holds (when each piece arrived as it was recorded), not the
        # microseconds replay takes; they are compared exactly, so load on the machine cannot matter.
        recording = recordings[(after.endpoint, after.case_id)]
        as_recorded = read_stream([(c.at_ms, c.data) for c in recording.chunks], Redactor())
        assert after.exchange is not None and after.exchange.stream is not None
        timings, stream = after.exchange.timings, after.exchange.stream
        assert [e.at_ms for e in stream.events] == [e.at_ms for e in as_recorded.events]
        assert (timings.ttfb_ms, timings.total_ms) == (recording.timings["ttfb_ms"], recording.timings["total_ms"])
        assert timings.events == len(as_recorded.events) and timings.ttft_ms in {e.at_ms for e in as_recorded.events}
        assert (recording.timings["total_ms"] or 0) >= max(c.at_ms for c in recording.chunks) > 0
    raw = (tmp_path / "ok" / "text.yaml").read_text()
    assert "at_ms" in raw and ": keep-alive" in raw


def test_a_case_run_both_ways_gets_two_results_and_they_agree(server: Server) -> None:
    case = parse_case({"id": "both", "both_ways": True, "request": TOOLS})
    results = asyncio.run(run([case], [Endpoint("ok", server.url("ok"), model="m")], Options(), environ={}))
    assert [r.name for r in results] == ["both[ok]", "both[ok][stream]"]
    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.PASS]
    assert results[0].exchange.stream is None and results[1].exchange.stream is not None
    assert results[0].exchange.request.body.get("stream") is None and results[1].exchange.request.body["stream"] is True


def test_a_stream_that_differs_in_kind_from_the_plain_answer_is_reported() -> None:
    """The plain answer calls the tool; the stream answers in text: worth a warning, with both sides named."""
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    plain = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]},
            }
        ],
    }
    chunks = [
        {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        for delta, finish in (({"role": "assistant", "content": "It is sunny."}, None), ({}, "stop"))
    ]
    streamed = _sse(chunks)

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            return streamed.handle_request(request)
        return httpx.Response(200, json=plain)

    auto = {**TOOLS, "tool_choice": "auto"}
    case = parse_case({"id": "both", "both_ways": True, "request": auto})
    results = asyncio.run(
        run(
            [case],
            [Endpoint("mock", "http://mock/v1", model="m")],
            Options(),
            environ={},
            transport=httpx.MockTransport(handler),
        )
    )
    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.PASS]
    [finding] = results[1].findings
    assert finding.code == "stream.matches_plain" and finding.severity is Severity.WARNING
    assert "'tool_calls' plain, 'stop' streamed" in finding.message and "get_weather" in finding.message


def test_the_same_problem_on_many_events_is_one_finding_with_a_count() -> None:
    chunks = [
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "model", "content": word},
                    "logprobs": None,
                    "finish_reason": "stop" if word == "c" else None,
                }
            ],
        }
        for word in "abc"
    ]
    result = run_case("http://mock/v1", STREAM, transport=_sse(chunks))
    [finding] = [f for f in result.findings if f.code == "stream.role_assistant"]
    assert finding.pointer == "/stream/events/0/data/choices/0/delta/role"
    assert finding.message == "delta.role must be 'assistant'; got 'model' (on 3 events)"


def test_usage_nobody_asked_for_is_an_openai_deviation() -> None:
    """Vertex sends usage on the final chunk without stream_options; OpenAI sends it only when asked."""
    chunks = [
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        for delta, finish in (({"role": "assistant", "content": "Hi."}, None), ({}, "stop"))
    ]
    chunks[1]["usage"] = {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}
    strict = run_case("http://mock/v1", STREAM, profile="openai", transport=_sse(chunks))
    assert [(f.code, f.pointer) for f in strict.errors] == [("stream.usage_unrequested", "/stream/events/1/data/usage")]
    assert run_case("http://mock/v1", STREAM, transport=_sse(chunks)).findings == ()
    assert (
        run_case(
            "http://mock/v1", STREAM, profile="openai", transport=_sse([*chunks[:1], {**chunks[1], "usage": None}])
        ).findings
        == ()
    )
