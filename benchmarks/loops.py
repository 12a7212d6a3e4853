"""Bare client loops: the same requests the harness sends, with nothing checked, as the baselines to beat.

Each loop sends `--requests` requests with `--concurrency` in flight, JSON-encodes every body and JSON-parses every
answer (every event's data for a stream), and prints one JSON line: wall seconds, CPU seconds of this process,
requests and events received. Run in a process of its own so it pays for its own imports and pinning:

    python -m benchmarks.loops aiohttp|httpx-aiohttp|httpx URL [--requests N] [--concurrency C] [--stream]

`httpx` is a plain synchronous `httpx.Client` loop (concurrency 1), the cheapest whole-process baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .endpoint import MODEL, PATH

__all__ = ["CLIENTS", "REQUEST", "main"]

REQUEST: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 32}
CLIENTS = ("aiohttp", "httpx-aiohttp", "httpx")
HEADERS = {"content-type": "application/json"}
IMPORTS = {"aiohttp": ["aiohttp"], "httpx-aiohttp": ["httpx", "httpx_aiohttp"], "httpx": ["httpx"]}

Send = Callable[[bytes], Awaitable[int]]


def _events(lines: list[bytes]) -> int:
    """Events in the lines of a stream, each event's data parsed as JSON, as any client must."""
    count = 0
    for line in lines:
        if line.startswith(b"data: ") and line[6:].strip() != b"[DONE]":
            json.loads(line[6:])
            count += 1
    return count


async def _aiohttp(url: str, stream: bool, total: int, concurrency: int) -> int:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def send(body: bytes) -> int:
            async with session.post(url, data=body, headers=HEADERS) as answer:
                if stream:
                    return _events([line async for line in answer.content])
                json.loads(await answer.read())
                return 0

        return await _drive(send, stream, total, concurrency)


async def _httpx_aiohttp(url: str, stream: bool, total: int, concurrency: int) -> int:
    import httpx
    from httpx_aiohttp import AiohttpTransport

    async with httpx.AsyncClient(transport=AiohttpTransport()) as client:

        async def send(body: bytes) -> int:
            if stream:
                async with client.stream("POST", url, content=body, headers=HEADERS) as answer:
                    return _events([line.encode() async for line in answer.aiter_lines()])
            answer = await client.post(url, content=body, headers=HEADERS)
            answer.json()
            return 0

        return await _drive(send, stream, total, concurrency)


async def _drive(send: Send, stream: bool, total: int, concurrency: int) -> int:
    """`total` requests from `concurrency` workers; returns the events received."""
    request = {**REQUEST, "stream": True} if stream else REQUEST
    left = total
    events = 0

    async def worker() -> None:
        nonlocal left, events
        while left > 0:
            left -= 1
            got = await send(json.dumps(request).encode())
            events += got  # not `events += await ...`: that reads `events` before the await and loses updates

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return events


def _httpx_sync(url: str, stream: bool, total: int) -> int:
    import httpx

    request = {**REQUEST, "stream": True} if stream else REQUEST
    events = 0
    with httpx.Client() as client:
        for _ in range(total):
            body = json.dumps(request).encode()
            if stream:
                with client.stream("POST", url, content=body, headers=HEADERS) as answer:
                    events += _events([line.encode() for line in answer.iter_lines()])
            else:
                client.post(url, content=body, headers=HEADERS).json()
    return events


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("client", choices=CLIENTS)
    parser.add_argument("base_url")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--stream", action="store_true")
    options = parser.parse_args(argv)
    url = options.base_url.rstrip("/").removesuffix("/v1") + PATH
    for module in IMPORTS[options.client]:  # before the clock starts, as the harness's are (see probe.py)
        importlib.import_module(module)
    started, cpu = time.perf_counter(), _cpu()
    if options.client == "httpx":
        events = _httpx_sync(url, options.stream, options.requests)
    else:
        loop = _aiohttp if options.client == "aiohttp" else _httpx_aiohttp
        events = asyncio.run(loop(url, options.stream, options.requests, options.concurrency))
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    print(json.dumps({"seconds": seconds, "cpu": cpu, "requests": options.requests, "events": events}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
