"""Hostile endpoints: whatever an endpoint sends, its case ends with a verdict, the run goes on, and memory stays
bounded.

`Hostile` is a raw-socket server on 127.0.0.1 that writes what no HTTP server library would: JSON nested past
any parser's limit, bodies and lines without end, compression bombs, answers that never start or trickle a byte
at a time, resets at every point, bytes that are not HTTP, redirects, 429 storms and absurd Retry-After values.
Each test runs a hostile case beside a conformant endpoint (the test double) and holds both to a verdict. Time is
bounded loosely (a deadline plus a margin), never tightly: these tests run on busy machines.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import json
import select
import socket
import struct
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest

from harness.cases import parse_case
from harness.cli import main
from harness.decoding import ACCEPT
from harness.endpoints import Endpoint
from harness.engine import execute, run
from harness.events import ResultReady, RunFinished, RunStarted
from harness.models import Result, Verdict
from harness.report.files import ResultsFile
from harness.sending import Options, retry_delay
from harness.sse import SSEDecoder
from tests.conftest import run_case
from tests.servers import Server

TEXT = {"model": "${model}", "messages": [{"role": "user", "content": "Say hello."}]}
STREAM = {**TEXT, "stream": True}
NODE = {"type": "object", "properties": {"child": {"$ref": "#"}}, "additionalProperties": False}
RECURSIVE = {**TEXT, "response_format": {"type": "json_schema", "json_schema": {"name": "node", "schema": NODE}}}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
TOOLS = {**TEXT, "tools": [WEATHER], "tool_choice": "required"}
DEEP = 100_000  # far past any parser's recursion limit
MARGIN = 30.0  # seconds a busy machine may add to a bound; a hang would take far longer
SECRET = "sk-hostile-0123456789abcdef"


# ------------------------------------------------------------------------------------ the hostile server


@dataclass(frozen=True, slots=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


Fault = Callable[["Hostile", socket.socket, Request], None]


def _completion(content: Any = "Hello.", **extra: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    return {
        "id": "chatcmpl-hostile",
        "object": "chat.completion",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        **extra,
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-hostile",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


OPENING = _chunk({"role": "assistant", "content": ""})
WORD = _chunk({"content": "word "})
CLOSING = _chunk({}, "stop") + b"data: [DONE]\n\n"


def _head(status: int = 200, headers: dict[str, str] | None = None, reason: str = "OK") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", "Connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _json_answer(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> bytes:
    fields = {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})}
    return _head(status, fields) + body


def _stream_head(headers: dict[str, str] | None = None) -> bytes:
    return _head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked", **(headers or {})})


def _piece(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _nested(depth: int, inner: str = "{}") -> str:
    return '{"child": ' * depth + inner + "}" * depth


@functools.cache
def _bomb(wbits: int) -> bytes:
    """128 MiB of zeros compressed to about 128 KiB (gzip for wbits 31, zlib-wrapped deflate for 15)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = bytes(1 << 20)
    return b"".join([*(packer.compress(block) for _ in range(128)), packer.flush()])


def _send(conn: socket.socket, data: bytes) -> None:
    conn.sendall(data)


def _reset(conn: socket.socket) -> None:
    """Close with RST instead of FIN, as a crashed peer or a middlebox does."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _ok(server: Hostile, conn: socket.socket, request: Request) -> None:
    if json.loads(request.body).get("stream"):
        _send(conn, _stream_head() + b"".join(_piece(e) for e in (OPENING, WORD, CLOSING)) + b"0\r\n\r\n")
    else:
        _send(conn, _json_answer(json.dumps(_completion()).encode()))


def _gzip_ok(server: Hostile, conn: socket.socket, request: Request) -> None:
    if json.loads(request.body).get("stream"):
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        pieces = [packer.compress(e) + packer.flush(zlib.Z_SYNC_FLUSH) for e in (OPENING, WORD, CLOSING)]
        pieces.append(packer.flush())
        _send(conn, _stream_head({"Content-Encoding": "gzip"}) + b"".join(_piece(p) for p in pieces) + b"0\r\n\r\n")
    else:
        _send(
            conn, _json_answer(gzip.compress(json.dumps(_completion()).encode()), headers={"Content-Encoding": "gzip"})
        )


def _body(text: str | bytes, status: int = 200, headers: dict[str, str] | None = None) -> Fault:
    data = text.encode() if isinstance(text, str) else text
    return lambda server, conn, request: _send(conn, _json_answer(data, status, headers))


def _events(*events: bytes, headers: dict[str, str] | None = None) -> Fault:
    return lambda server, conn, request: _send(
        conn, _stream_head(headers) + b"".join(_piece(e) for e in events) + b"0\r\n\r\n"
    )


def _endless(head: bytes, piece: bytes, pause: float = 0.0, framed: bool = True) -> Fault:
    """`head`, then `piece` again and again (as chunks when `framed`) until the client hangs up."""

    def write(server: Hostile, conn: socket.socket, request: Request) -> None:
        _send(conn, head)
        block = _piece(piece) if framed else piece
        if not pause:
            block *= max(1, (64 * 1024) // len(block))
        while server.pause(pause):
            _send(conn, block)

    return write


def _never(server: Hostile, conn: socket.socket, request: Request) -> None:
    server.pause(3600)


def _trickle(data: bytes, every: float = 0.05) -> Fault:
    def write(server: Hostile, conn: socket.socket, request: Request) -> None:
        for i in range(len(data)):
            if not server.pause(every):
                return
            _send(conn, data[i : i + 1])
        server.pause(3600)

    return write


def _cut(data: bytes) -> Fault:
    def write(server: Hostile, conn: socket.socket, request: Request) -> None:
        if data:
            _send(conn, data)
            server.pause(0.5)  # so the bytes are read before the reset discards them
        _reset(conn)

    return write


def _after(head: bytes, then: Fault) -> Fault:
    def write(server: Hostile, conn: socket.socket, request: Request) -> None:
        _send(conn, head)
        then(server, conn, request)

    return write


def _sends(data: bytes | Callable[[], bytes]) -> Fault:
    """The bytes (made when first asked for: a bomb takes a moment), then the server hangs up."""
    return lambda server, conn, request: _send(conn, data() if callable(data) else data)


def _redirect(status: int) -> Fault:
    def write(server: Hostile, conn: socket.socket, request: Request) -> None:
        where = f"http://user:{SECRET}@127.0.0.1:{server.elsewhere}/v1/chat/completions?key={SECRET}"
        _send(conn, _json_answer(b'{"moved": true}', status, {"Location": where}))

    return write


def _storm(status: int) -> Fault:
    def write(server: Hostile, conn: socket.socket, request: Request) -> None:
        _send(conn, _json_answer(b'{"error": {"message": "slow down"}}', status, {"Retry-After": "0"}))

    return write


def _retry_after(server: Hostile, conn: socket.socket, request: Request) -> None:
    """`/retry-after=<value>/...`: a 429 with that Retry-After, every time."""
    value = unquote(request.path.split("/")[1].partition("=")[2], encoding="latin-1")
    _send(conn, _json_answer(b'{"error": {"message": "later"}}', 429, {"Retry-After": value}))


def _deep_stream(depth: int) -> Fault:
    deep = ("data: " + "[" * depth + "]" * depth + "\n\n").encode()
    return _events(OPENING, deep, WORD, CLOSING)


def _tool_call(arguments: str) -> bytes:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    answer = _completion(None)
    answer["choices"][0]["message"]["tool_calls"] = [call]
    answer["choices"][0]["finish_reason"] = "tool_calls"
    return json.dumps(answer).encode()


JSON_HEAD = {"Content-Type": "application/json"}
SSE_HEAD = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
FAULTS: dict[str, Fault] = {
    "ok": _ok,
    "gzip-ok": _gzip_ok,
    # nesting
    "deep-body": _body("[" * DEEP + "]" * DEEP),
    "deep-body-900": _body("[" * 900 + "]" * 900),  # Python parses it; every recursive reader after it would not
    "deep-member": _body(json.dumps(_completion())[:-1] + ', "extra": ' + "[" * DEEP + "]" * DEEP + "}"),
    "deep-chunk": _deep_stream(DEEP),
    "deep-chunk-900": _deep_stream(900),
    "deep-content": _body(json.dumps(_completion(_nested(DEEP)))),
    "deep-content-60": _body(json.dumps(_completion(_nested(60)))),
    "deep-content-60-wrong": _body(json.dumps(_completion(_nested(60, '{"child": 1}')))),
    "deep-arguments": _body(_tool_call('{"city": ' + "[" * DEEP + "]" * DEEP + "}")),
    # bytes that are not what they say
    "invalid-utf8": _body(json.dumps(_completion("caf\\udcff")).encode().replace(b"\\\\udcff", b"\xff\xfe")),
    "invalid-utf8-stream": _events(OPENING, b'data: {"choices": [{"delta": {"content": "\xff\xfe"}}]}\n\n', CLOSING),
    # size
    "huge-body": _endless(_head(200, {**JSON_HEAD, "Content-Length": str(1 << 40)}), b"x" * 4096, framed=False),
    "huge-line": _endless(_stream_head() + _piece(b"data: "), b"x" * 4096),
    "huge-chunk": _endless(_head(200, SSE_HEAD) + b"ffffffffff\r\ndata: ", b"x" * 4096, framed=False),
    "endless-stream": _endless(_stream_head() + _piece(OPENING), WORD),
    "slow-stream": _endless(_stream_head() + _piece(OPENING), WORD, pause=0.1),
    "endless-echo": _endless(
        _stream_head() + _piece(OPENING), _chunk({"content": SECRET[:10]}) + _chunk({"content": SECRET[10:] + " "})
    ),
    # compression
    "gzip-bomb": _sends(lambda: _json_answer(_bomb(31), headers={"Content-Encoding": "gzip"})),
    "deflate-bomb": _sends(lambda: _json_answer(_bomb(15), headers={"Content-Encoding": "deflate"})),
    "gzip-gzip-bomb": _sends(
        lambda: _json_answer(gzip.compress(_bomb(31)), headers={"Content-Encoding": "gzip, gzip"})
    ),
    "gzip-bomb-stream": _sends(lambda: _stream_head({"Content-Encoding": "gzip"}) + _piece(_bomb(31)) + b"0\r\n\r\n"),
    "gzip-corrupt": _body(b"this is not gzip at all", headers={"Content-Encoding": "gzip"}),
    "zstd": _body(b"(\xb5/\xfd\x00Xa\x00\x00{}", headers={"Content-Encoding": "zstd"}),
    # time
    "never-start": _never,
    "trickle-headers": _trickle(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 100_000),
    "trickle-body": _after(_head(200, {**JSON_HEAD, "Content-Length": "1000000"}), _trickle(b"{" + b" " * 999_999)),
    "trickle-stream": _after(_stream_head() + _piece(OPENING), _trickle(_piece(WORD) * 1000)),
    # resets
    "reset-before": _cut(b""),
    "reset-status": _cut(b"HTTP/1.1 2"),
    "reset-headers": _cut(_head(200, {**JSON_HEAD, "Content-Length": "500"})),
    "reset-body": _cut(_head(200, {**JSON_HEAD, "Content-Length": "500"}) + b'{"id": "chatcmpl-'),
    "reset-stream": _cut(_stream_head() + _piece(OPENING) + _piece(WORD) + b'40\r\ndata: {"id"'),
    # not HTTP
    "garbage-ssh": _sends(b"SSH-2.0-OpenSSH_8.9\r\n\r\n"),
    "garbage-binary": _sends(bytes(range(256)) * 16),
    "garbage-header": _sends(b"HTTP/1.1 200 OK\r\nthis is not a header\r\n\r\n{}"),
    "garbage-chunk": _sends(_stream_head() + b"zz\r\nhello\r\n"),
    "garbage-endless": _endless(b"", b"x" * 4096, framed=False),
    # redirects
    **{f"redirect-{status}": _redirect(status) for status in (301, 302, 303, 307, 308)},
    # rate limits
    "storm-429": _storm(429),
    "storm-503": _storm(503),
    "retry-after": _retry_after,
}


@dataclass
class Hostile:
    """The server: `url(fault)` is a base URL whose requests `FAULTS[fault]` answers; `requests` what arrived."""

    elsewhere: int = 0  # the port redirects point at
    redirected: Hostile | None = None  # the server listening there
    requests: list[Request] = field(default_factory=list)
    closing: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="hostile", daemon=True)
        self._thread.start()

    def url(self, fault: str) -> str:
        return f"http://127.0.0.1:{self.port}/{fault}/v1"

    def pause(self, seconds: float) -> bool:
        """False once the server closes; the handler's writes end anyway when the client hangs up."""
        return not self.closing.wait(seconds) if seconds else not self.closing.is_set()

    def close(self) -> None:
        self.closing.set()
        self._listener.close()
        self._thread.join(timeout=10)

    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                ready, _, _ = select.select([self._listener], [], [], 0.05)
                if ready:
                    conn, _ = self._listener.accept()
                    threading.Thread(target=self._handle, args=(conn,), daemon=True).start()
            except (OSError, ValueError):  # closed under us
                return

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(60)
            request = _read_request(conn)
            if request is None:
                return
            with self._lock:
                self.requests.append(request)
            FAULTS[request.path.split("/")[1].partition("=")[0]](self, conn, request)


def _read_request(conn: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(65536)
        if not more:
            return None
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", "0")):
        more = conn.recv(65536)
        if not more:
            break
        body += more
    return Request(path=lines[0].split(" ")[1], headers=headers, body=body)


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    elsewhere = Hostile()
    server = Hostile(elsewhere=elsewhere.port, redirected=elsewhere)
    try:
        yield server
    finally:
        server.close()
        elsewhere.close()


# ------------------------------------------------------------------------------------ running cases


def _beside(
    hostile: Hostile,
    server: Server,
    fault: str,
    request: dict[str, Any],
    options: Options | None = None,
    expect: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> tuple[list[Result], float]:
    """Two cases against the hostile endpoint and a conformant one: the four results (hostile first) and seconds."""
    data: dict[str, Any] = {"request": request} | ({"expect": expect} if expect else {})
    cases = [parse_case({"id": name, **data}) for name in ("first", "second")]
    endpoints = [
        Endpoint("hostile", hostile.url(fault), model="m", api_key_env="HOSTILE_KEY" if environ else None),
        Endpoint("ok", server.url("ok"), model="m"),
    ]
    started = time.monotonic()
    results = asyncio.run(run(cases, endpoints, options or Options(timeout=10, deadline=20), environ=environ or {}))
    elapsed = time.monotonic() - started
    assert [r.endpoint for r in results] == ["hostile", "hostile", "ok", "ok"]
    assert [r.verdict for r in results[2:]] == [Verdict.PASS, Verdict.PASS], [r.findings for r in results[2:]]
    return results, elapsed


def _ended(results: list[Result], verdict: Verdict, code: str, *said: str) -> Result:
    """Both hostile results end with `verdict` and a finding `code` whose message says each of `said`."""
    for result in results[:2]:
        assert result.verdict is verdict, (result.verdict, result.findings)
        found = [f for f in result.findings if f.code == code]
        assert found, result.findings
        for words in said:
            assert words in found[0].message, found[0].message
    return results[0]


def test_the_hostile_server_s_own_answers_are_conformant(hostile: Hostile, server: Server) -> None:
    for fault in ("ok", "gzip-ok"):
        for request in (TEXT, STREAM):
            results, _ = _beside(hostile, server, fault, request)
            assert [r.verdict for r in results] == [Verdict.PASS] * 4, [r.findings for r in results]


# ------------------------------------------------------------------------------------ nesting


@pytest.mark.parametrize("fault", ["deep-body", "deep-body-900", "deep-member"])
def test_a_body_nested_past_the_bound_fails_and_the_run_goes_on(hostile: Hostile, server: Server, fault: str) -> None:
    results, _ = _beside(hostile, server, fault, TEXT)
    result = _ended(results, Verdict.FAIL, "http.body_json", "more than 64 levels deep")
    assert result.exchange is not None and result.exchange.response is not None


def test_a_deep_body_with_a_key_to_redact_fails_too(hostile: Hostile, server: Server) -> None:
    results, _ = _beside(hostile, server, "deep-body-900", TEXT, environ={"HOSTILE_KEY": SECRET})
    _ended(results, Verdict.FAIL, "http.body_json", "more than 64 levels deep")


@pytest.mark.parametrize("fault", ["deep-chunk", "deep-chunk-900"])
def test_a_chunk_nested_past_the_bound_fails_the_stream(hostile: Hostile, server: Server, fault: str) -> None:
    results, _ = _beside(hostile, server, fault, STREAM)
    result = _ended(results, Verdict.FAIL, "stream.data_json", "event 1", "more than 64 levels deep")
    assert result.exchange is not None and result.exchange.stream is not None
    assert result.exchange.stream.assembled["choices"][0]["message"]["content"] == "word "


def test_a_deep_chunk_with_a_key_to_redact_fails_the_stream(hostile: Hostile, server: Server) -> None:
    results, _ = _beside(hostile, server, "deep-chunk-900", STREAM, environ={"HOSTILE_KEY": SECRET})
    _ended(results, Verdict.FAIL, "stream.data_json", "more than 64 levels deep")


def test_json_content_nested_past_the_bound_fails_against_its_schema(hostile: Hostile, server: Server) -> None:
    results, _ = _beside(hostile, server, "deep-content", RECURSIVE)
    _ended(results, Verdict.FAIL, "structured.content_json", "more than 64 levels deep")


def test_json_content_within_the_bound_is_judged_against_a_recursive_schema(hostile: Hostile, server: Server) -> None:
    """The bound leaves jsonschema room: a schema that recurses with the content is applied at every level."""
    passing, _ = _beside(hostile, server, "deep-content-60", RECURSIVE)
    assert [r.verdict for r in passing[:2]] == [Verdict.PASS, Verdict.PASS], passing[0].findings
    failing, _ = _beside(hostile, server, "deep-content-60-wrong", RECURSIVE)
    result = _ended(failing, Verdict.FAIL, "structured.schema_valid", "/child/child")
    assert "cannot be applied" not in result.findings[0].message


def test_tool_arguments_nested_past_the_bound_fail(hostile: Hostile, server: Server) -> None:
    results, _ = _beside(hostile, server, "deep-arguments", TOOLS)
    _ended(results, Verdict.FAIL, "tools.arguments_json", "more than 64 levels deep")


def test_a_deep_answer_ends_the_cli_run_with_a_report_not_a_traceback(
    hostile: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hostile.case.yaml").write_text(
        "- id: deep\n  request: {model: m, messages: [{role: user, content: hi}]}\n"
        "- id: deep-stream\n  request: {model: m, messages: [{role: user, content: hi}], stream: true}\n",
        encoding="utf-8",
    )
    for fault, request in (("deep-body", "deep"), ("deep-chunk", "deep-stream")):
        code = main(
            [
                "run",
                "hostile.case.yaml",
                "--select",
                request,
                "--base-url",
                hostile.url(fault),
                "--report-dir",
                "r",
                "-q",
            ]
        )
        output = capsys.readouterr()
        assert code == 1, output.err
        assert "Traceback" not in output.out + output.err
        [result] = json.loads((tmp_path / "r" / "results.json").read_text(encoding="utf-8"))["results"]
        assert result["verdict"] == "fail"


# ------------------------------------------------------------------------------------ bytes


@pytest.mark.parametrize(
    ("fault", "request_body", "code"),
    [("invalid-utf8", TEXT, "http.body_json"), ("invalid-utf8-stream", STREAM, "stream.framing")],
)
def test_invalid_utf8_fails(
    hostile: Hostile, server: Server, fault: str, request_body: dict[str, Any], code: str
) -> None:
    results, _ = _beside(hostile, server, fault, request_body)
    _ended(results, Verdict.FAIL, code, "not valid UTF-8")


# ------------------------------------------------------------------------------------ size


CAP = 1 << 20


@pytest.mark.parametrize(
    ("fault", "request_body"),
    [("huge-body", TEXT), ("huge-line", STREAM), ("huge-chunk", STREAM), ("endless-stream", STREAM)],
)
def test_an_answer_past_the_cap_ends_as_too_large_with_an_excerpt(
    hostile: Hostile, server: Server, fault: str, request_body: dict[str, Any]
) -> None:
    results, _ = _beside(hostile, server, fault, request_body, Options(max_response_bytes=CAP, deadline=60))
    result = _ended(results, Verdict.ERROR, "transport.too_large", "--max-response-bytes (1 MiB)", "bytes")
    exchange = result.exchange
    assert exchange is not None and exchange.response is not None
    assert CAP < exchange.response.size <= CAP + 64 * 1024 + 8192, "reading stopped at the cap"
    assert len(exchange.response.text) <= 64 * 1024, "only the first 64 KiB is kept"
    if exchange.stream is not None:
        assert len(exchange.stream.events) <= 64 * 1024 // 100 + 5
        assert sum(len(e.data) for e in exchange.stream.events) <= 2 * 64 * 1024 + 5 * 4096
        assert exchange.stream.notes and "cut off at --max-response-bytes" in exchange.stream.notes[0]


def test_an_endless_stream_keeps_its_first_and_last_events_and_counts_the_rest(
    hostile: Hostile, server: Server
) -> None:
    results, _ = _beside(hostile, server, "endless-stream", STREAM, Options(max_response_bytes=CAP, deadline=60))
    result = _ended(results, Verdict.ERROR, "transport.too_large", "events had arrived")
    exchange = result.exchange
    assert exchange is not None and exchange.stream is not None
    arrived = exchange.timings.events
    assert arrived is not None and arrived >= CAP // len(WORD) - 1, "every event that arrived is counted"
    kept = exchange.stream.events
    assert 5 < len(kept) < arrived
    head, tail = kept[:-5], kept[-5:]
    assert [e.line for e in head] == [1 + 2 * i for i in range(len(head))], "the first events, in order"
    assert tail[-1].line >= 2 * (arrived - 1), "the last events that arrived whole"
    assert all(e.json["choices"][0]["delta"]["content"] == "word " for e in [*head[1:], *tail])
    assert f"{arrived} events had arrived" in result.findings[0].message


def test_the_excerpt_of_an_answer_past_the_cap_holds_no_secret(hostile: Hostile, server: Server) -> None:
    """The key, echoed whole and cut across two deltas on every pair of events, is out of all that is kept."""
    options = Options(max_response_bytes=CAP, deadline=60)
    results, _ = _beside(hostile, server, "endless-echo", STREAM, options, environ={"HOSTILE_KEY": SECRET})
    result = _ended(results, Verdict.ERROR, "transport.too_large", "events had arrived")
    assert result.exchange is not None and result.exchange.stream is not None
    assert len(result.exchange.stream.events) > 10
    kept = json.dumps([result.exchange.view(), [f.message for f in result.findings]], default=str)
    assert SECRET not in kept and SECRET[:10] not in kept and SECRET[10:] not in kept


def _peak_while(call: Callable[[], Any]) -> tuple[Any, int]:
    """What `call` returns, and the most memory Python held meanwhile above what it held before (tracemalloc)."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        value = call()
        return value, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_memory_for_an_answer_past_the_cap_is_a_small_multiple_of_the_cap(hostile: Hostile) -> None:
    """The bytes up to the cap are held while they arrive, then only the excerpt: never the whole stream parsed."""
    cap = 4 << 20
    result, peak = _peak_while(
        lambda: run_case(hostile.url("endless-stream"), STREAM, options=Options(max_response_bytes=cap, deadline=60))
    )
    assert [f.code for f in result.findings] == ["transport.too_large"]
    assert peak < 3 * cap, f"peak {peak / (1 << 20):.1f} MiB for a cap of {cap >> 20} MiB"


def test_results_json_keeps_an_excerpt_of_an_answer_past_the_cap(hostile: Hostile, tmp_path: Path) -> None:
    cap = 4 << 20
    cases = [parse_case({"id": "endless", "request": STREAM}), parse_case({"id": "huge", "request": TEXT})]
    endpoints = [Endpoint("endless", hostile.url("endless-stream"), model="m")]
    huge = [Endpoint("huge", hostile.url("huge-body"), model="m")]
    options = Options(max_response_bytes=cap, deadline=60)
    for endpoint, case in ((endpoints, cases[0]), (huge, cases[1])):
        report = ResultsFile(tmp_path / endpoint[0].name)
        asyncio.run(execute([case], endpoint, [report], options=options, environ={}))
        written = report.path.stat().st_size
        assert written < 1 << 20, f"results.json is {written} bytes for an answer cut at {cap} bytes"
        [result] = json.loads(report.path.read_text(encoding="utf-8"))["results"]
        assert result["verdict"] == "error" and result["timings"]["total_ms"] is not None


# ------------------------------------------------------------------------------------ compression


@pytest.mark.parametrize(
    ("fault", "request_body", "encoding"),
    [
        ("gzip-bomb", TEXT, "gzip"),
        ("deflate-bomb", TEXT, "deflate"),
        ("gzip-gzip-bomb", TEXT, "gzip, gzip"),
        ("gzip-bomb-stream", STREAM, "gzip"),
    ],
)
def test_a_compression_bomb_stops_at_the_cap_on_decoded_bytes(
    hostile: Hostile, server: Server, fault: str, request_body: dict[str, Any], encoding: str
) -> None:
    _bomb(31), _bomb(15)  # made before memory is measured
    (results, _), peak = _peak_while(
        lambda: _beside(hostile, server, fault, request_body, Options(max_response_bytes=CAP, deadline=60))
    )
    result = _ended(results, Verdict.ERROR, "transport.too_large", f"bytes of {encoding}", "compression bomb")
    assert result.exchange is not None and result.exchange.response is not None
    assert result.exchange.response.size <= CAP + 64 * 1024, "decoding stopped one piece past the cap"
    assert peak < 16 * CAP, f"peak {peak / (1 << 20):.1f} MiB: the bomb was decoded past the cap"


def test_only_encodings_decoded_within_the_cap_are_asked_for(hostile: Hostile) -> None:
    count = len(hostile.requests)
    run_case(hostile.url("ok"), TEXT)
    assert hostile.requests[count].headers["accept-encoding"] == ACCEPT
    assert set(ACCEPT.replace(" ", "").split(",")) <= {"gzip", "deflate", "br"}


def test_a_corrupt_body_for_its_encoding_is_a_protocol_error(hostile: Hostile, server: Server) -> None:
    results, _ = _beside(hostile, server, "gzip-corrupt", TEXT)
    _ended(results, Verdict.ERROR, "transport.protocol", "not valid gzip")


def test_an_encoding_nobody_asked_for_is_kept_as_it_came_and_said_so(hostile: Hostile, server: Server) -> None:
    results, _ = _beside(hostile, server, "zstd", TEXT)
    _ended(results, Verdict.FAIL, "http.body_json", "zstd-encoded", "does not decode")


@pytest.mark.skipif(
    not ACCEPT.endswith("br"), reason="needs Brotli 1.2 (or brotlicffi 1.2), whose decoder bounds its output"
)
def test_a_brotli_bomb_stops_at_the_cap(hostile: Hostile, server: Server) -> None:
    import brotli  # type: ignore[import-not-found,unused-ignore]

    bomb = brotli.compress(bytes(64 << 20), quality=11)
    FAULTS["br-bomb"] = lambda s, c, r: _send(c, _json_answer(bomb, headers={"Content-Encoding": "br"}))
    (results, _), peak = _peak_while(
        lambda: _beside(hostile, server, "br-bomb", TEXT, Options(max_response_bytes=CAP, deadline=60))
    )
    _ended(results, Verdict.ERROR, "transport.too_large", "bytes of br")
    assert peak < 16 * CAP


# ------------------------------------------------------------------------------------ time


@pytest.mark.parametrize(
    ("fault", "request_body", "code", "said"),
    [
        ("never-start", TEXT, "transport.timeout", "within 1 s of sending"),
        ("never-start", STREAM, "transport.timeout", "within 1 s of sending"),
        ("trickle-headers", TEXT, "transport.timeout", "within 1 s of sending"),
        ("trickle-body", TEXT, "transport.deadline", "still arriving"),
        ("trickle-stream", STREAM, "transport.deadline", "still arriving"),
        ("slow-stream", STREAM, "transport.deadline", "still arriving"),
    ],
)
def test_an_answer_that_never_starts_or_trickles_ends_within_its_bounds(
    hostile: Hostile, server: Server, fault: str, request_body: dict[str, Any], code: str, said: str
) -> None:
    options = Options(timeout=1, stream_idle_timeout=1, deadline=3, concurrency=4)
    results, elapsed = _beside(hostile, server, fault, request_body, options)
    _ended(results, Verdict.ERROR, code, said)
    assert elapsed < options.deadline + MARGIN
    if code == "transport.deadline" and request_body is STREAM:
        stream = results[0].exchange.stream  # type: ignore[union-attr]
        assert stream is not None and stream.events, "what arrived before the deadline is kept"


# ------------------------------------------------------------------------------------ resets


@pytest.mark.parametrize(
    ("fault", "request_body", "status"),
    [
        ("reset-before", TEXT, None),
        ("reset-status", TEXT, None),
        ("reset-headers", TEXT, 200),
        ("reset-body", TEXT, 200),
        ("reset-stream", STREAM, 200),
    ],
)
def test_a_reset_at_any_point_is_an_error_keeping_what_arrived(
    hostile: Hostile, server: Server, fault: str, request_body: dict[str, Any], status: int | None
) -> None:
    results, _ = _beside(hostile, server, fault, request_body)
    result = _ended(results, Verdict.ERROR, "transport.reset", "closed before the answer was complete")
    assert result.exchange is not None
    assert (result.exchange.response.status if result.exchange.response else None) == status
    if fault == "reset-body":
        assert result.exchange.response is not None and result.exchange.response.text == '{"id": "chatcmpl-'
    if fault == "reset-stream":
        assert result.exchange.stream is not None
        assert [e.data for e in result.exchange.stream.events][1:] == [WORD[6:-2].decode(), '{"id"']


# ------------------------------------------------------------------------------------ not HTTP


@pytest.mark.parametrize(
    "fault", ["garbage-ssh", "garbage-binary", "garbage-header", "garbage-chunk", "garbage-endless"]
)
def test_an_answer_that_is_not_http_is_a_protocol_error(hostile: Hostile, server: Server, fault: str) -> None:
    results, _ = _beside(hostile, server, fault, STREAM if fault == "garbage-chunk" else TEXT)
    _ended(results, Verdict.ERROR, "transport.protocol", "not HTTP")


# ------------------------------------------------------------------------------------ redirects


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_never_followed_nor_sent_credentials(hostile: Hostile, server: Server, status: int) -> None:
    elsewhere = hostile.redirected
    assert elsewhere is not None
    before = len(hostile.requests)
    results, _ = _beside(hostile, server, f"redirect-{status}", TEXT, environ={"HOSTILE_KEY": SECRET})
    result = _ended(results, Verdict.FAIL, "http.status", f"got {status}", "never followed")
    assert elsewhere.requests == [], "nothing went where the redirect pointed"
    sent = hostile.requests[before:]
    assert len(sent) == 2 and all(r.headers["authorization"] == f"Bearer {SECRET}" for r in sent)
    message = result.findings[0].message
    assert f"127.0.0.1:{elsewhere.port}/v1/chat/completions" in message
    assert SECRET not in message and "user" not in message and "key=" not in message


# ------------------------------------------------------------------------------------ rate limits


def test_a_429_storm_is_retried_as_often_as_asked_then_judged(hostile: Hostile, server: Server) -> None:
    before = len(hostile.requests)
    results, _ = _beside(hostile, server, "storm-429", TEXT, Options(retries=3, deadline=20))
    _ended(results, Verdict.FAIL, "http.status", "got 429", "the last of 4 attempts")
    assert len(hostile.requests) - before == 2 * 4


def test_a_503_storm_with_endless_retries_ends_at_the_deadline_saying_so(hostile: Hostile, server: Server) -> None:
    options = Options(retries=1_000_000, deadline=2, concurrency=4)
    results, elapsed = _beside(hostile, server, "storm-503", TEXT, options)
    _ended(results, Verdict.ERROR, "transport.deadline", "deadline of 2 s", "retried answer(s) (503")
    assert elapsed < options.deadline + MARGIN


def test_a_backoff_past_the_deadline_is_the_deadline_not_a_wait_the_endpoint_asked_for(
    hostile: Hostile, server: Server
) -> None:
    """429s with an empty Retry-After: the harness's own backoff (1 s, then 2 s) runs past the deadline, and the
    finding says the deadline ended the case; the endpoint asked for no wait, so none is blamed on it."""
    results, elapsed = _beside(hostile, server, "retry-after=", TEXT, Options(retries=5, deadline=1.5))
    result = _ended(results, Verdict.ERROR, "transport.deadline", "deadline of 1.5 s", "retried answer(s) (429")
    assert all("asked to be retried" not in f.message for f in result.findings)
    assert elapsed < 1.5 + MARGIN


@pytest.mark.parametrize(
    ("value", "wait"),
    [
        ("99999999999", "99,999,999,999 s"),
        ("1e999", "without end"),
        ("Fri, 31 Dec 9999 23:59:59 GMT", " s (Retry-After: 'Fri, 31 Dec 9999"),
    ],
    ids=["huge", "infinite", "far-future-date"],
)
def test_a_retry_after_past_the_deadline_is_not_waited_for(
    hostile: Hostile, server: Server, value: str, wait: str
) -> None:
    results, elapsed = _beside(hostile, server, f"retry-after={quote(value)}", TEXT, Options(retries=2, deadline=120))
    result = _ended(results, Verdict.ERROR, "transport.deadline", "asked to be retried after", wait, "not retried")
    assert elapsed < MARGIN, "nothing waited for the Retry-After, nor for the deadline"
    assert result.exchange is not None and result.exchange.response is not None
    assert result.exchange.response.status == 429 and result.exchange.attempts == 1


@pytest.mark.parametrize("value", ["-5", "soon", "Mon, 99 Foo 2020 00:00:00 GMT", "nan", "\u00ff"])
def test_a_retry_after_that_is_negative_or_unreadable_is_retried_all_the_same(
    hostile: Hostile, server: Server, value: str
) -> None:
    fault = f"retry-after={quote(value, encoding='latin-1')}"
    results, _ = _beside(hostile, server, fault, TEXT, Options(retries=1, deadline=60))
    _ended(results, Verdict.FAIL, "http.status", "got 429", "the last of 2 attempts")


def test_retry_delay_reads_anything_without_raising() -> None:
    assert retry_delay("3", 1) == 3.0 and retry_delay("-3", 1) == 0.0 and retry_delay("1e999", 1) == float("inf")
    assert retry_delay(None, 1) == retry_delay("soon", 1) == retry_delay("nan", 1) == 1.0
    assert retry_delay("Fri, 31 Dec 99999 23:59:59 GMT", 2) == 2.0
    assert retry_delay("Fri, 31 Dec 9999 23:59:59 GMT", 1) > 2.5e11


# ------------------------------------------------------------------------------------ a server that goes away


class _CloseAfterFirst:
    """A handler that takes the server down as soon as the first result is in."""

    def __init__(self, server: Hostile) -> None:
        self.server = server
        self.results: list[Result] = []

    def start(self, event: RunStarted) -> None:
        pass

    def result(self, event: ResultReady) -> None:
        self.results.append(event.result)
        self.server.close()

    def finish(self, event: RunFinished) -> None:
        self.finished = event


def test_a_server_that_goes_away_mid_run_leaves_every_case_a_verdict() -> None:
    going = Hostile()
    cases = [parse_case({"id": f"c{i}", "request": TEXT}) for i in range(4)]
    handler = _CloseAfterFirst(going)
    try:
        asyncio.run(
            execute(
                cases,
                [Endpoint("going", going.url("ok"), model="m")],
                [handler],
                options=Options(concurrency=1),
                environ={},
            )
        )
    finally:
        going.close()
    assert [r.verdict for r in handler.results] == [Verdict.PASS] + [Verdict.ERROR] * 3
    assert all([f.code for f in r.findings] == ["transport.connect"] for r in handler.results[1:])
    assert handler.finished.completed == 4 and not handler.finished.interrupted


# ------------------------------------------------------------------------------------ the stream reader's cost


def test_reading_a_stream_takes_time_in_proportion_to_its_bytes() -> None:
    """One read holding many events, and one line arriving in many reads, are each scanned once: scanned again for
    every line or every read, as they were, each of these takes minutes, where once takes seconds."""
    started = time.monotonic()
    decoder = SSEDecoder()
    assert len(decoder.feed(b'data: {"a": 1}\n\n' * 600_000)) == 600_000
    decoder = SSEDecoder()
    for _ in range(16_384):
        decoder.feed(b"x" * 2048)
    assert decoder.close() == [] and len(decoder.issues) == 1
    assert time.monotonic() - started < 90


def test_a_stream_of_endless_bad_lines_keeps_a_count_not_every_message() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"not a field\n" * 10_000)
    assert len(decoder.issues) == 100 and decoder.more_issues == 9_900


def test_the_findings_of_one_check_are_bounded_with_a_count(hostile: Hostile) -> None:
    """An id that changes on every one of 500 chunks is 100 findings and a count, not 501 findings."""

    def chunk(number: int) -> bytes:
        return _chunk({"content": "w"}).replace(b'"chatcmpl-hostile"', f'"chatcmpl-{number}"'.encode())

    FAULTS["many-ids"] = _events(OPENING, b"".join(chunk(i) for i in range(500)), CLOSING)
    result = run_case(hostile.url("many-ids"), STREAM)
    found = [f for f in result.findings if f.code == "stream.consistent_id"]
    assert len(found) == 101
    assert "and 401 more findings of this check" in found[-1].message
