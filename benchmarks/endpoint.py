"""A local Chat Completions endpoint fast enough never to be the bottleneck: canned conformant answers.

A raw asyncio protocol (uvloop's loop when it is installed) that parses just enough HTTP/1.1 to find each request's
end, keeps connections alive, and answers every POST with the same bytes: a `chat.completion`, or with
`"stream": true` in the body a stream of `EVENTS` `chat.completion.chunk` events and `data: [DONE]`. Nothing is
built per request, so the client under test is always what limits the rate.

It runs in its own process, pinned to one core where the machine allows, and prints its port on the first line:

    python -m benchmarks.endpoint [--core 0]

These are hand-made answers for measuring speed, not a server's: nothing here is presented as one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["EVENTS", "MODEL", "PATH", "answers", "pin", "serve"]

MODEL = "bench-model"
PATH = "/v1/chat/completions"
EVENTS = 30
"""Chunks in a streamed answer: the role, `EVENTS - 2` words, the finish_reason (then `data: [DONE]`)."""


def answers(created: int) -> tuple[bytes, bytes]:
    """(plain, streamed): the full HTTP responses, head included, answered to every request."""
    common: dict[str, Any] = {"id": "chatcmpl-bench", "created": created, "model": MODEL, "system_fingerprint": "fp_b"}
    words = ["word "] * (EVENTS - 2)
    message = {"role": "assistant", "content": "".join(words), "refusal": None}
    usage = {"prompt_tokens": 8, "completion_tokens": len(words), "total_tokens": 8 + len(words)}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}
    body = json.dumps({**common, "object": "chat.completion", "choices": [choice], "usage": usage}).encode()
    plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

    deltas = [({"role": "assistant", "content": ""}, None), *(({"content": w}, None) for w in words), ({}, "stop")]
    events = [
        {
            **common,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": f}],
        }
        for d, f in deltas
    ]
    sse = b"".join(b"data: %s\n\n" % json.dumps(e).encode() for e in events) + b"data: [DONE]\n\n"
    streamed = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(sse), sse)
    )
    return plain, streamed


class _Connection(asyncio.Protocol):
    """One keep-alive connection: requests may arrive split or several in one read."""

    def __init__(self, plain: bytes, streamed: bytes) -> None:
        self._plain, self._streamed = plain, streamed
        self._buffer = b""
        self._transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for line in self._buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            body = self._buffer[end + 4 : end + 4 + length]
            self._buffer = self._buffer[end + 4 + length :]
            streamed = b'"stream": true' in body or b'"stream":true' in body
            self._transport.write(self._streamed if streamed else self._plain)


async def _main(port: int) -> None:
    plain, streamed = answers(int(time.time()))
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(plain, streamed), "127.0.0.1", port, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def pin(core: int | None) -> bool:
    """Keep this process on one core, when the machine has more than one and allows it; True if it did."""
    if core is None or not hasattr(os, "sched_setaffinity"):
        return False
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2 or core not in allowed:
        return False
    os.sched_setaffinity(0, {core})
    return True


@contextlib.contextmanager
def serve(core: int | None) -> Iterator[str]:
    """The endpoint in a process of its own (pinned to `core`); yields its base URL and stops it by its pid."""
    argv = [sys.executable, "-m", "benchmarks.endpoint", "--core", str(-1 if core is None else core)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=_ROOT)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(timeout=10)


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", type=int, default=0, help="the core to run on (-1: any)")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    pin(None if options.core < 0 else options.core)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # the bench extra is not installed: asyncio's own loop is still far faster than a client
        runner = asyncio.run
    with contextlib.suppress(KeyboardInterrupt):
        runner(_main(options.port))


if __name__ == "__main__":
    main()
