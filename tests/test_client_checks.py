"""The client.* checks both ways: answers that break the official SDKs, and conformant twins that they read whole.

Each row is an answer served in memory (httpx.MockTransport) and what each SDK must be found to make of it, as
(what, pointer) pairs under `client.openai_python.` and `client.openai_node.`; an empty set is a conformant twin.
The Node.js rows skip, saying why, where Node.js or the openai npm package is missing (CI installs both:
.ci/run points HARNESS_OPENAI_NODE_DIR at the pinned package).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness import clients
from harness.checks import client as client_checks
from harness.clients import ClientRead, node_status, python_status, read_node, read_python, replay_of
from harness.models import Exchange, Result, Severity, Verdict
from harness.pointer import MISSING
from harness.profiles import load_profile
from harness.resources import bundled
from tests.conftest import Harness, run_case
from tests.servers import Server

REPO = Path(__file__).resolve().parent.parent
NODE_CHECKED = node_status().startswith("openai-node ") and "not checked" not in node_status()
needs_node = pytest.mark.skipif(not NODE_CHECKED, reason=node_status())

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TOOLS = {"model": "${model}", "messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [WEATHER]}
STREAM_TOOLS = {**TOOLS, "stream": True}
PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"age": {"type": "integer"}},
            "required": ["age"],
            "additionalProperties": False,
        },
    },
}
JSON_SCHEMA = {"model": "${model}", "messages": [{"role": "user", "content": "Your age?"}], "response_format": PERSON}
TEXT = {"model": "${model}", "messages": [{"role": "user", "content": "Say hello."}]}
CALLS = "/stream/assembled/choices/0/message/tool_calls"


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}


def call(index: int, arguments: str, id: str | None = None, name: str | None = None) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id is not None:
        fragment |= {"id": id, "type": "function"}
    if name is not None:
        fragment["function"]["name"] = name
    return fragment


def sse(*events: dict[str, Any] | bytes, done: bool = True) -> bytes:
    out = b"".join(b"data: " + (e if isinstance(e, bytes) else json.dumps(e).encode()) + b"\n\n" for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


def completion(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
    }


def _vertex_docs_stream() -> tuple[dict[str, Any], bytes]:
    """Google's documented Vertex stream (stream_function_call_arguments), as its page prints it."""
    path = REPO / "examples/google-docs/recordings/vertex-docs/docs-vertex-function-call-stream.yaml"
    recording = yaml.safe_load(path.read_text(encoding="utf-8"))
    return recording["request"]["body"], "".join(c["text"] for c in recording["response"]["chunks"]).encode()


VERTEX_REQUEST, VERTEX_STREAM = _vertex_docs_stream()
SIGNED_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    "extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}},
}
TOOL_ANSWER = completion({"role": "assistant", "content": None, "tool_calls": [SIGNED_CALL]}, "tool_calls")


@dataclass
class Row:
    id: str
    request: dict[str, Any]
    body: bytes | dict[str, Any] | list[Any]
    python: set[tuple[str, str]]
    node: set[tuple[str, str]]
    status: int = 200
    profile: str = "generic"
    expect: dict[str, Any] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        return "text/event-stream" if self.request.get("stream") and self.status == 200 else "application/json"


ROWS = [
    # Vertex's documented stream: the tool-call index changes between fragments, id and name repeat on each.
    Row(
        "vertex-docs-stream",
        VERTEX_REQUEST,
        VERTEX_STREAM,
        python={("raised", "/stream/events")},
        node={("changed", f"{CALLS}/0/id"), ("signature_lost", f"{CALLS}/0/extra_content")},
        profile="vertex",
    ),
    # The same with the index fixed: role, id and name repeated on every delta are concatenated by openai-python.
    Row(
        "repeated-id-name-role",
        STREAM_TOOLS,
        sse(
            chunk({"role": "assistant", "tool_calls": [call(0, "", "call_1", "get_weather")]}),
            chunk({"role": "assistant", "tool_calls": [call(0, '{"city":', "call_1", "get_weather")]}),
            chunk({"role": "assistant", "tool_calls": [call(0, '"Paris"}', "call_1", "get_weather")]}),
            chunk({}, "tool_calls"),
        ),
        python={
            ("changed", "/stream/assembled/choices/0/message/role"),
            ("changed", f"{CALLS}/0/id"),
            ("changed", f"{CALLS}/0/function/name"),
        },
        node=set(),
    ),
    Row(
        "tool-stream-twin",
        STREAM_TOOLS,
        sse(
            chunk({"role": "assistant", "tool_calls": [call(0, "", "call_1", "get_weather")]}),
            chunk({"tool_calls": [call(0, '{"city":')]}),
            chunk({"tool_calls": [call(0, '"Paris"}')]}),
            chunk({}, "tool_calls"),
        ),
        python=set(),
        node=set(),
    ),
    # The id comes on the second fragment: the SDKs make one call of what the harness reads as two.
    Row(
        "first-fragment-without-id",
        STREAM_TOOLS,
        sse(
            chunk({"role": "assistant", "tool_calls": [call(0, "", None, "get_weather")]}),
            chunk({"tool_calls": [call(0, '{"city":', "call_1")]}),
            chunk({"tool_calls": [call(0, '"Paris"}')]}),
            chunk({}, "tool_calls"),
        ),
        python={("changed", CALLS)},
        node={("changed", CALLS)},
    ),
    # Two calls under one index in one chunk: openai-python joins them into one, openai-node keeps the last.
    Row(
        "two-calls-one-index",
        STREAM_TOOLS,
        sse(
            chunk(
                {
                    "role": "assistant",
                    "tool_calls": [
                        call(0, '{"city":"Paris"}', "call_1", "get_weather"),
                        call(0, '{"city":"Rome"}', "call_2", "get_weather"),
                    ],
                }
            ),
            chunk({}, "tool_calls"),
        ),
        python={("changed", CALLS)},
        node={("changed", CALLS)},
    ),
    Row(
        "two-calls-twin",
        STREAM_TOOLS,
        sse(
            chunk(
                {
                    "role": "assistant",
                    "tool_calls": [
                        call(0, '{"city":"Paris"}', "call_1", "get_weather"),
                        call(1, '{"city":"Rome"}', "call_2", "get_weather"),
                    ],
                }
            ),
            chunk({}, "tool_calls"),
        ),
        python=set(),
        node=set(),
    ),
    # Google's error body, a one-element array: neither SDK finds its message or code.
    Row(
        "google-array-error",
        TEXT,
        [{"error": {"code": 400, "message": "Invalid JSON payload received.", "status": "INVALID_ARGUMENT"}}],
        python={("error_unread", "/response/body")},
        node={("error_unread", "/response/body")},
        status=400,
        profile="vertex",
        expect={"status": "4xx"},
    ),
    Row(
        "openai-error-twin",
        TEXT,
        {"error": {"message": "Invalid JSON payload received.", "type": "invalid_request_error", "code": "bad"}},
        python=set(),
        node=set(),
        status=400,
        expect={"status": "4xx"},
    ),
    # An integer code: openai-python hands it on as a string.
    Row(
        "integer-error-code",
        TEXT,
        {"error": {"message": "Invalid JSON payload received.", "type": "invalid_request_error", "code": 400}},
        python={("error_changed", "/response/body/error/code")},
        node=set(),
        status=400,
        expect={"status": "4xx"},
    ),
    # An error written outside `data:`: neither SDK sees it, and the stream ends as if it were complete.
    Row(
        "error-outside-data",
        {**TEXT, "stream": True},
        sse(chunk({"role": "assistant", "content": "Hel"}), done=False)
        + b'{"error": {"message": "Quota exceeded.", "type": "rate_limit_error"}}\n\n',
        python={("error_unread", "/stream/events")},
        node={("error_unread", "/stream/events")},
    ),
    Row(
        "error-event-twin",
        {**TEXT, "stream": True},
        sse(
            chunk({"role": "assistant", "content": "Hel"}),
            {"error": {"message": "Quota exceeded.", "type": "rate_limit_error", "code": None}},
            done=False,
        ),
        python=set(),
        node=set(),
    ),
    # The parse helpers raise LengthFinishReasonError on any answer cut off at `length`: by design, no finding.
    Row(
        "json-schema-length",
        JSON_SCHEMA,
        completion({"role": "assistant", "content": '{"age": '}, "length"),
        python=set(),
        node=set(),
    ),
    Row(
        "json-schema-length-stream",
        {**JSON_SCHEMA, "stream": True},
        sse(chunk({"role": "assistant", "content": '{"age": '}), chunk({}, "length")),
        python=set(),
        node=set(),
    ),
    Row(
        "json-schema-fenced",
        JSON_SCHEMA,
        completion({"role": "assistant", "content": '```json\n{"age": 7}\n```'}),
        python={("raised", "/response/body")},
        node={("raised", "/response/body")},
    ),
    Row(
        "json-schema-twin",
        JSON_SCHEMA,
        completion({"role": "assistant", "content": '{"age": 7}'}),
        python=set(),
        node=set(),
    ),
    # A thought signature on a tool call survives reading and sending back in both SDKs.
    Row("signed-tool-call", TOOLS, TOOL_ANSWER, python=set(), node=set(), profile="gemini-api"),
    Row(
        "text-stream-twin",
        {**TEXT, "stream": True, "stream_options": {"include_usage": True}},
        sse(
            chunk({"role": "assistant", "content": "Hel"}),
            chunk({"content": "lo."}),
            chunk({}, "stop"),
            {**chunk({}), "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}},
        ),
        python=set(),
        node=set(),
    ),
]


def answering(status: int, body: bytes | dict[str, Any] | list[Any], content_type: str) -> httpx.MockTransport:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.MockTransport(
        lambda request: httpx.Response(status, headers={"content-type": content_type}, content=raw)
    )


def outcome(row: Row) -> Result:
    transport = answering(row.status, row.body, row.content_type)
    return run_case("http://sdk.invalid/v1", row.request, transport=transport, profile=row.profile, expect=row.expect)


def found(result: Result, family: str) -> set[tuple[str, str]]:
    return {(f.code.removeprefix(family), f.pointer) for f in result.findings if f.code.startswith(family)}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_openai_python(row: Row) -> None:
    result = outcome(row)
    assert found(result, "client.openai_python.") == row.python, [f.message for f in result.findings]
    version = python_status().split()[-1]
    for finding in result.findings:
        if finding.code.startswith("client.openai_python."):
            assert f"openai-python {version}" in finding.message


@needs_node
@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_openai_node(row: Row) -> None:
    result = outcome(row)
    assert found(result, "client.openai_node.") == row.node, [f.message for f in result.findings]
    for finding in result.findings:
        if finding.code.startswith("client.openai_node."):
            assert node_status().split()[1] in finding.message and "openai-node" in finding.message


def _exchange(row: Row) -> Exchange:
    exchange = outcome(row).exchange
    assert exchange is not None
    return exchange


@pytest.mark.parametrize("row", [r for r in ROWS if "length" in r.id], ids=lambda r: r.id)
def test_an_answer_cut_at_length_makes_the_parse_helpers_raise_by_design(row: Row) -> None:
    """The proof behind the length rows: the SDK did raise, and a raise it makes for any such answer is no finding."""
    replay = replay_of(_exchange(row))
    assert replay is not None
    read = read_python(replay)
    assert read is not None and read.error is not None
    assert read.error["name"] == "LengthFinishReasonError" and read.by_design


def test_the_vertex_stream_raises_index_error_in_openai_python() -> None:
    result = outcome(ROWS[0])
    (raised,) = [f for f in result.findings if f.code == "client.openai_python.raised"]
    assert "IndexError" in raised.message and result.verdict is Verdict.FAIL


def test_the_async_client_reads_the_same_bytes_as_the_sync_one() -> None:
    """The checks run the sync client once per answer; the async client's reading is the same, stream or not."""
    import openai
    from openai.lib.streaming.chat import ChatCompletionStreamState

    async def read(row: Row) -> dict[str, Any]:
        transport = httpx.MockTransport(
            lambda request: httpx.Response(
                row.status,
                headers={"content-type": row.content_type},
                content=row.body if isinstance(row.body, bytes) else json.dumps(row.body).encode(),
            )
        )
        settings: dict[str, Any] = {"http_client": httpx.AsyncClient(transport=transport)}
        async with openai.AsyncOpenAI(api_key="x", base_url="http://sdk.invalid/v1", max_retries=0, **settings) as sdk:
            if not row.request.get("stream"):
                done = await sdk.chat.completions.create(model="m", messages=[])
                return done.to_dict(mode="json")
            state: Any = ChatCompletionStreamState()
            async for piece in await sdk.chat.completions.create(model="m", messages=[], stream=True):
                state.handle_chunk(piece)
            return state.current_completion_snapshot.to_dict(mode="json")

    for row in (ROWS[1], ROWS[2], next(r for r in ROWS if r.id == "signed-tool-call")):
        replay = replay_of(_exchange(row))
        assert replay is not None
        sync = read_python(replay)
        assert sync is not None
        assert asyncio.run(read(row)) == sync.value, row.id


# The codes no SDK version at hand triggers on its own: the comparison is tested with what an SDK might make.


FAMILIES = ("client.openai_python", "client.openai_node")


def _judged(
    read: ClientRead, exchange: Exchange, family: str, profile: str = "generic"
) -> set[tuple[str, str, Severity]]:
    found = client_checks._judge(exchange, family, read)
    judged = [load_profile(profile).judge(f) for f in found]
    return {(f.code.removeprefix(family + "."), f.pointer, f.severity) for f in judged if f is not None}


SIGNED = next(r for r in ROWS if r.id == "signed-tool-call")
BODY = "/response/body/choices/0/message"


@pytest.mark.parametrize("family", FAMILIES)
def test_a_reference_member_dropped_and_an_extension_lost(family: str) -> None:
    answer = json.loads(json.dumps(TOOL_ANSWER))
    message = answer["choices"][0]["message"]
    message["reasoning_content"] = "thinking"
    exchange = _exchange(Row("x", TOOLS, answer, set(), set()))
    value = json.loads(json.dumps(answer))
    del value["choices"][0]["message"]["tool_calls"][0]["id"]
    del value["choices"][0]["message"]["reasoning_content"]
    read = ClientRead("an-sdk", "9.9.9", value=value, history=value["choices"][0]["message"])
    assert _judged(read, exchange, family) == {
        ("dropped", f"{BODY}/tool_calls/0/id", Severity.ERROR),
        ("extension_lost", f"{BODY}/reasoning_content", Severity.WARNING),
    }


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("profile", "severity"), [("generic", Severity.WARNING), ("vertex", Severity.ERROR)])
def test_a_message_sent_back_without_its_tool_call_id_or_signature(
    profile: str, severity: Severity, family: str
) -> None:
    exchange = _exchange(SIGNED)
    value = json.loads(json.dumps(TOOL_ANSWER))
    history = json.loads(json.dumps(value["choices"][0]["message"]))
    del history["tool_calls"][0]["id"]
    del history["tool_calls"][0]["extra_content"]
    read = ClientRead("an-sdk", "9.9.9", value=value, history=history)
    assert _judged(read, exchange, family, profile) == {
        ("round_trip", f"{BODY}/tool_calls/0/id", Severity.ERROR),
        ("signature_lost", f"{BODY}/tool_calls/0/extra_content", severity),
    }
    intact = ClientRead("an-sdk", "9.9.9", value=value, history=value["choices"][0]["message"])
    assert _judged(intact, exchange, family, profile) == set()


@pytest.mark.parametrize("family", FAMILIES)
def test_an_error_code_handed_on_as_another_type(family: str) -> None:
    row = next(r for r in ROWS if r.id == "integer-error-code")
    exchange = _exchange(row)
    error = {"name": "BadRequestError", "message": "400 Invalid JSON payload received.", "code": "400"}
    error["type"] = "invalid_request_error"
    assert _judged(ClientRead("an-sdk", "9.9.9", error=error), exchange, family) == {
        ("error_changed", "/response/body/error/code", Severity.WARNING)
    }
    error["code"] = 400
    assert _judged(ClientRead("an-sdk", "9.9.9", error=error), exchange, family) == set()


def test_both_sdks_send_the_signed_message_back_whole() -> None:
    replay = replay_of(_exchange(SIGNED))
    assert replay is not None
    reads = [read_python(replay), *([read_node(replay)] if NODE_CHECKED else [])]
    for read in reads:
        assert read is not None and read.history is not MISSING
        assert read.history["tool_calls"][0]["id"] == "call_1"
        assert read.history["tool_calls"][0]["extra_content"] == SIGNED_CALL["extra_content"]


@pytest.mark.parametrize(
    ("message", "sent_back"),
    [
        ({"role": "assistant", "content": "Hello"}, False),
        ({"role": "assistant", "content": "Hello", "extra_content": {"google": {"thought_signature": "c2ln"}}}, True),
        ({"role": "model", "content": "Hello"}, True),
        ({"content": "Hello"}, True),
    ],
    ids=["plain-text", "extra-content", "another-role", "no-role"],
)
def test_only_a_message_with_something_to_lose_is_sent_back(message: dict[str, Any], sent_back: bool) -> None:
    """A plain assistant message costs a second SDK call with nothing for the round_trip check to find."""
    replay = replay_of(_exchange(Row("x", TOOLS, completion(message, "stop"), set(), set())))
    assert replay is not None and replay.send_back is sent_back
    reads = [read_python(replay), *([read_node(replay)] if NODE_CHECKED else [])]
    for read in reads:
        assert read is not None and read.value is not MISSING
        assert (read.history is not MISSING) is sent_back, read.label
        if sent_back:
            assert read.history.get("role") == message.get("role"), "sent back as the SDK exposes it"


@pytest.mark.parametrize("profile", ["generic", "openai", "vertex", "gemini-api", "self-deployed"])
def test_client_findings_are_errors_unless_a_profile_says_why_not(profile: str) -> None:
    loaded = load_profile(profile)
    google = profile in ("vertex", "gemini-api")
    for family in ("client.openai_python", "client.openai_node"):
        for what in client_checks.CODES:
            rule = loaded.rule(f"{family}.{what}")
            lowered = what in ("extension_lost", "error_changed") or (what == "signature_lost" and not google)
            assert rule.severity is (Severity.WARNING if lowered else Severity.ERROR), (profile, what)
            assert not lowered or rule.note


def test_without_node_the_node_client_is_not_checked_and_nothing_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_NODE", "no-such-node-binary")
    assert node_status().startswith("openai-node not checked: Node.js was not found")
    result = outcome(next(r for r in ROWS if r.id == "google-array-error"))
    assert {f.code for f in result.findings if f.code.startswith("client.")} == {"client.openai_python.error_unread"}
    monkeypatch.setenv("HARNESS_NODE", "node")
    monkeypatch.delenv(clients.NODE_DIR_VARIABLE, raising=False)
    assert "no openai npm package" in node_status()


def test_a_run_reads_openai_python_in_a_process_of_its_own_as_it_would_read_here() -> None:
    """read_all hands every answer to openai-python's reading process; what comes back is what the SDK makes of
    the answer read in this process, conformant answers and broken ones alike."""
    rows = [r for r in ROWS if r.id in ("vertex-docs-stream", "two-calls-one-index", "google-array-error")] * 2
    rows.append(SIGNED)
    exchanges = [_exchange(row) for row in rows]

    async def judged() -> list[dict[str, ClientRead | None] | None]:
        return list(await asyncio.gather(*(clients.read_all(exchange) for exchange in exchanges)))

    for row, exchange, reads in zip(rows, exchanges, asyncio.run(judged()), strict=True):
        assert reads is not None
        assert reads["openai-python"] == read_python(replay_of(exchange)), row.id  # type: ignore[arg-type]
    reader = clients._PYTHON[sys.executable]
    assert reader is not None and reader.version == python_status().split()[-1] and reader.failure() is None


ECHO = """
import json, sys
print(json.dumps({"version": "1"}), flush=True)
for line in sys.stdin:
    print(json.dumps({"id": json.loads(line)["id"], "value": {"read": True}}), flush=True)
"""


def test_a_reading_process_ends_after_its_reads_or_at_once_if_it_was_given_none() -> None:
    """A run starts the SDKs' processes before it reads its cases, so that they load meanwhile: a run that then
    ends on a usage error, or sends nothing, stops them at once instead of waiting while they load; one that was
    given answers ends when it has read them all."""
    loading = "import sys, time; time.sleep(2); sys.stdin.read()"  # would end on its own once it has loaded
    idle = clients._Reader([sys.executable, "-c", loading], "idle")
    idle.close()
    assert idle._process.returncode == -signal.SIGKILL, "stopped, not waited for"
    used = clients._Reader([sys.executable, "-c", ECHO], "echo")
    replay = clients.Replay(request={}, status=200, headers={}, body=b"{}", stream=False, parse=False)
    assert used.read(replay) == {"id": 1, "value": {"read": True}}
    used.close()
    assert used._process.returncode == 0, "its stdin closed, it ended on its own"


def _python_reader_as(script: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """openai-python's reading process started from `script` (holding `text`) for the test, in place of the
    interpreter's own; the readers started before and during it are stopped."""

    def stop_readers() -> None:
        for process in clients._PYTHON.values():
            if process is not None:
                process.close()
        clients._PYTHON.clear()

    stop_readers()
    script.write_text(text, encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(script))
    yield
    stop_readers()


@pytest.fixture
def dying_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """openai-python's reading process as one that says its version, then fails on the first answer."""
    dying = "#!/bin/sh\necho '{\"version\": \"3.63.0\"}'\nread line\necho 'Fatal: out of luck' >&2\nexit 3\n"
    yield from _python_reader_as(tmp_path / "dying-python", dying, monkeypatch)


@pytest.fixture
def slow_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """openai-python's reading process as one that takes a second over each answer, then reads it as the SDK does."""
    slow = (
        f"#!{sys.executable}\n"
        "import json, sys, time\n"
        "from harness.clients import Replay, read_python\n"
        "print(json.dumps({'version': '3.63.0'}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    data = json.loads(line)\n"
        "    time.sleep(1.0)\n"
        "    read = read_python(Replay.from_json(data))\n"
        "    print(json.dumps({**read.to_json(), 'id': data['id']}), flush=True)\n"
    )
    yield from _python_reader_as(tmp_path / "slow-python", slow, monkeypatch)


@pytest.mark.usefixtures("slow_python")
def test_the_event_loop_goes_on_while_openai_python_reads() -> None:
    """A long read (a stream of hundreds of chunks) must not hold the loop: it stamps the arrival of other answers'
    bytes, and a read made in the loop's own process and thread inflated the gaps it measured several times over."""
    exchange = _exchange(SIGNED)

    async def both() -> tuple[dict[str, ClientRead | None] | None, int]:
        turns = 0
        reading = asyncio.ensure_future(clients.read_all(exchange))
        while not reading.done():
            await asyncio.sleep(0.01)
            turns += 1
        return reading.result(), turns

    reads, turns = asyncio.run(both())
    assert turns >= 20, "the loop took turns while openai-python read"
    assert reads is not None and reads["openai-python"] == read_python(replay_of(exchange))  # type: ignore[arg-type]


def test_an_interpreter_that_cannot_be_started_again_leaves_openai_python_unchecked(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No reading process (an embedded interpreter, a moved venv): the run goes on, the clients line says why."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    try:
        result = outcome(next(r for r in ROWS if r.id == "vertex-docs-stream"))
        assert not [f for f in result.findings if f.code.startswith("client.openai_python.")]
        assert python_status().startswith("openai-python not checked: its reading process could not be started")
    finally:
        clients._PYTHON.pop(str(tmp_path / "no-such-python"), None)


@pytest.mark.usefixtures("dying_python")
def test_a_reading_process_that_fails_leaves_its_client_unchecked_and_says_why() -> None:
    result = outcome(next(r for r in ROWS if r.id == "vertex-docs-stream"))
    assert not [f for f in result.findings if f.code.startswith("client.openai_python.")]
    status = python_status()
    assert status.startswith("openai-python not checked past the first answers: its reading process failed")
    assert "Fatal: out of luck" in status


def test_the_pinned_versions_are_the_ones_installed_for_the_tests() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["optional-dependencies"]["clients"] == ["openai==" + python_status().split()[-1]]
    package = json.loads((bundled("clients") / "package.json").read_text(encoding="utf-8"))
    if NODE_CHECKED:
        assert node_status().split()[1] == package["dependencies"]["openai"]


def test_a_run_names_the_clients_it_checked(harness: Harness, tmp_path: Path) -> None:
    outcome = harness("run", "--select", "text-basic", "--report-dir", tmp_path / "r")
    line = next(ln for ln in outcome.out.splitlines() if ln.startswith("clients: "))
    assert python_status() in line and "openai-node" in line
    run = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))["run"]
    assert run["clients"][0] == python_status()
    assert "Clients checked: openai-python" in (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")


CLIENT_FAILING = {f"{family}.{what}" for family in FAMILIES for what in client_checks.CODES}
"""The codes a row or test above sees fail; test_checks requires every code to be seen failing somewhere."""


def _client_findings(report: Path) -> set[tuple[str, str, str]]:
    results = json.loads((report / "results.json").read_text(encoding="utf-8"))["results"]
    return {
        (r["name"], f["code"], f["severity"]) for r in results for f in r["findings"] if f["code"].startswith("client.")
    }


def test_the_bundled_recordings_break_no_client(harness: Harness, tmp_path: Path) -> None:
    """llama.cpp's real answers: the SDKs read every one; only its integer error codes are handed on as strings."""
    harness("run", "--report-dir", tmp_path / "r")
    found = _client_findings(tmp_path / "r")
    assert found and {code for _, code, _ in found} == {"client.openai_python.error_changed"}
    assert {severity for _, _, severity in found} == {"warning"}


def test_no_clients_leaves_the_sdks_out_and_says_so(harness: Harness, tmp_path: Path) -> None:
    """The same replay as above with --no-clients: no client.* finding, every other verdict the same, and the
    header says the checks were left out rather than passing them off as clean."""
    checked = harness("run", "--select", "negative-*", "--report-dir", tmp_path / "with")
    left_out = harness("run", "--select", "negative-*", "--report-dir", tmp_path / "without", "--no-clients")
    assert _client_findings(tmp_path / "with") and not _client_findings(tmp_path / "without")
    assert "clients: client.* checks left out (--no-clients)" in left_out.out
    assert "client.* checks left out" not in checked.out

    def verdicts(name: str) -> list[tuple[str, str]]:
        results = json.loads((tmp_path / name / "results.json").read_text(encoding="utf-8"))["results"]
        return [(r["name"], r["verdict"]) for r in results]

    assert verdicts("with") == verdicts("without")


def test_googles_documented_examples_break_the_clients_on_the_vertex_stream_only(
    harness: Harness, tmp_path: Path
) -> None:
    examples = REPO / "examples" / "google-docs"
    harness("run", examples / "cases", "--replay", examples / "recordings", "--report-dir", tmp_path / "r")
    found = _client_findings(tmp_path / "r")
    stream = "docs-vertex-function-call-stream[vertex-docs]"
    wanted = {(stream, "client.openai_python.raised", "error")}
    if NODE_CHECKED:
        wanted |= {
            (stream, "client.openai_node.changed", "error"),
            (stream, "client.openai_node.signature_lost", "error"),
        }
    assert found == wanted
    summary = (tmp_path / "r" / "summary.md").read_text(encoding="utf-8")
    assert f"| vertex-docs | {python_status()} | 1 of 4: {stream} (client.openai_python.raised) |" in summary
    assert f"| gemini-api-docs | {python_status()} | none of 3 |" in summary


@pytest.mark.parametrize("framing", ["ok", "sse-crlf", "sse-comments", "sse-fields", "sse-bom"])
def test_legal_framings_reach_the_clients_whole_but_a_byte_order_mark(server: Server, framing: str) -> None:
    """A leading byte order mark is legal SSE (the standard strips it); openai-python reads it as part of the first
    field's name and loses the first event, role and all. openai-node strips it."""
    request = {**TEXT, "stream": True}
    result = run_case(server.url(framing), request, profile="openai")
    found = {(f.code, f.pointer) for f in result.findings if f.code.startswith("client.")}
    bom = {("client.openai_python.changed", "/stream/assembled/choices/0/message/role")}
    assert found == (bom if framing == "sse-bom" else set()), [f.message for f in result.findings]


@pytest.fixture
def chatty_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Node.js as a wrapper that prints a line of its own after every line of the script's: a warning, a log
    line or anything else a process may write to stdout besides its reads."""
    node = shutil.which("node")
    assert node is not None
    wrapper = tmp_path / "chatty-node"
    wrapper.write_text(
        f'#!/bin/sh\n"{node}" "$@" | while IFS= read -r line; do printf \'%s\\n\' "$line"; '
        "printf '%s\\n' '{\"note\": \"not a read\"}' 'not JSON'; done\n",
        encoding="utf-8",
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("HARNESS_NODE", str(wrapper))
    yield
    for process in clients._NODE.values():
        process.close()
    clients._NODE.clear()


@needs_node
@pytest.mark.usefixtures("chatty_node")
def test_lines_node_prints_besides_its_reads_shift_no_read_onto_another_answer() -> None:
    """Each read is matched to its answer by the id it echoes: a stray line is passed over, not taken for the next
    answer's read (which would move every later read one answer on)."""
    assert (
        node_status().split()[1]
        == json.loads((bundled("clients") / "package.json").read_text())["dependencies"]["openai"]
    )
    for row in [r for r in ROWS if r.id in ("two-calls-one-index", "tool-stream-twin", "google-array-error")] * 2:
        result = outcome(row)
        assert found(result, "client.openai_node.") == row.node, (row.id, [f.message for f in result.findings])
    assert clients._node() is not None and clients._node().version != "?"  # type: ignore[union-attr]


@needs_node
def test_a_run_awaits_node_while_it_serves_other_answers() -> None:
    """Replays go to Node without waiting for the reads before them; each read comes back to its own answer."""
    rows = [r for r in ROWS if r.id in ("two-calls-one-index", "tool-stream-twin", "google-array-error")] * 4
    exchanges = [_exchange(row) for row in rows]

    async def judged() -> list[dict[str, ClientRead | None] | None]:
        return list(await asyncio.gather(*(clients.read_all(exchange) for exchange in exchanges)))

    for row, exchange, reads in zip(rows, exchanges, asyncio.run(judged()), strict=True):
        assert reads is not None
        alone = clients.read_node(replay_of(exchange))  # type: ignore[arg-type]
        assert reads["openai-node"] == alone, row.id
        judged = client_checks._judge(exchange, "client.openai_node", alone)
        assert {(f.code.removeprefix("client.openai_node."), f.pointer) for f in judged} == row.node, row.id
