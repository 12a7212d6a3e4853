"""httpx transports that record exchanges to recordings and replay them, so live and offline runs take one path.

Both see the request as httpx sends it, with the case and endpoint it belongs to in the request's
`chat_conformance` extension (set by the runner). A replayed answer also carries its own clock (the `ELAPSED`
response extension): the sending loop times every answer by the clock of the transport that gave it, so a
replayed exchange reports what the real endpoint took, chunk by chunk, through the same code as a live one.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from . import __version__
from .errors import HarnessError
from .recordings import Chunk, Recording, diff, redact_chunks, save
from .redact import REDACTED, Redactor

__all__ = [
    "ELAPSED",
    "EXTENSION",
    "EnvironmentTransport",
    "NoRecording",
    "RecordedClock",
    "RecordingTransport",
    "ReplayTransport",
    "StaleRecording",
    "UnreadableRecording",
]

EXTENSION = "chat_conformance"
ELAPSED = "chat_conformance_elapsed"
"""A response extension: a callable giving the milliseconds since the request was sent, as the transport tells
them. Replay's clock stands at each recorded moment as the answer is read; an answer without one is timed live."""


class NoRecording(Exception):
    """The case has no recording for this endpoint: it is skipped, not failed."""


class StaleRecording(Exception):
    """The request the case makes now is not the one recorded: the case changed since it was recorded."""

    def __init__(self, path: str, differences: list[str]) -> None:
        self.path = path
        self.differences = differences
        super().__init__(f"{path}: " + "; ".join(differences))


class UnreadableRecording(Exception):
    """The case's recording was indexed, but its answer cannot be read: malformed, or changed since the run began."""

    def __init__(self, problems: str) -> None:
        self.problems = problems  # each with its file, line and column
        super().__init__(problems)


def _meta(request: httpx.Request) -> dict[str, Any]:
    meta = request.extensions.get(EXTENSION)
    if not isinstance(meta, dict):
        raise RuntimeError("request sent without the chat_conformance extension (not from the harness runner)")
    return meta


def _request_body(request: httpx.Request, redactor: Redactor) -> dict[str, Any]:
    text = request.content.decode("utf-8", errors="replace")
    try:
        return {"body": redactor.value(json.loads(text))}
    except ValueError:
        return {"raw_body": redactor.text(text)}


class _RecordingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, t0: float, finish: Any) -> None:
        self._inner = inner
        self._t0 = t0
        self._finish = finish
        self._chunks: list[Chunk] = []
        self._done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for data in self._inner:
            self._chunks.append(Chunk((time.perf_counter() - self._t0) * 1000, data))
            yield data
        self._done = True

    async def aclose(self) -> None:
        await self._inner.aclose()
        if self._done:  # a stream abandoned half-way (too large, timed out) is not what the server said
            self._finish(self._chunks, (time.perf_counter() - self._t0) * 1000)


def _decoded(chunks: list[Chunk], headers: list[tuple[str, str]]) -> tuple[list[Chunk], list[tuple[str, str]]]:
    """gzip/deflate bodies stored decoded, so a recording stays readable; the headers say so."""
    encoding = next((v.strip().lower() for k, v in headers if k.lower() == "content-encoding"), "")
    if encoding not in ("gzip", "deflate"):
        return chunks, headers
    decoder = zlib.decompressobj(wbits=47)  # accepts gzip and zlib framing
    try:
        out = [Chunk(c.at_ms, decoder.decompress(c.data)) for c in chunks]
    except zlib.error:
        return chunks, headers
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-encoding", "content-length")]
    return out, [*kept, ("x-recorded-content-encoding", encoding)]


class EnvironmentTransport(httpx.AsyncBaseTransport):
    """Sends as a live run's client does: over aiohttp (`network`), through HTTPS_PROXY/HTTP_PROXY unless NO_PROXY
    names the host.

    httpx picks proxies from the environment only for the transports it builds itself, so a recording run,
    which wraps the transport, would otherwise go direct where a plain live run goes through the proxy.
    """

    def __init__(self) -> None:
        from .network import NetworkClient  # aiohttp is loaded only for a live run

        self._client = NetworkClient(follow_redirects=False, trust_env=True)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        await self._client.aclose()


class RecordingTransport(httpx.AsyncBaseTransport):
    """Sends through `inner` and writes each complete exchange as a recording under `directory`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, directory: Path, redactor: Redactor) -> None:
        self._inner = inner
        self._directory = directory
        self._redactor = redactor
        self.written: list[Path] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        meta = _meta(request)
        redact = self._redactor
        started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        t0 = time.perf_counter()
        response = await self._inner.handle_async_request(request)
        ttfb = (time.perf_counter() - t0) * 1000
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers.raw]
        http_version = response.extensions.get("http_version", b"HTTP/1.1")
        http_version = http_version.decode() if isinstance(http_version, bytes) else str(http_version)

        def finish(chunks: list[Chunk], total: float) -> None:
            # The URLs and headers first: a credential they carry (`?key=`, userinfo, a header named for a token)
            # is then redacted from the bodies too.
            endpoint = {**meta["endpoint"], "base_url": redact.url(str(meta["endpoint"].get("base_url", "")))}
            url = redact.url(str(request.url))
            sent = redact.headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw)
            body_chunks, kept = _decoded(chunks, headers)
            received = [(k, redact.header(k, v)) for k, v in kept]
            streamed = any(k == "content-type" and "event-stream" in v for k, v in kept)
            server = next((v for k, v in kept if k == "server"), None)
            recording = Recording(
                case=str(meta["case"]),
                # The name stays as it is: replay finds a recording by it (and the file is named after it).
                endpoint={k: v if k == "name" else redact.value(v) for k, v in endpoint.items()},
                provenance=redact.value(
                    {
                        "source": "live",
                        "recorded_at": started,
                        "server": server,
                        "harness_version": __version__,
                        "case_file": meta.get("case_file"),
                    }
                ),
                request={
                    "method": request.method,
                    "url": url,
                    "headers": sent,
                    **_request_body(request, redact),
                },
                status=response.status_code,
                headers=received,
                chunks=redact_chunks(body_chunks, redact, stream=streamed),
                http_version=http_version,
                timings={"ttfb_ms": round(ttfb, 2), "total_ms": round(total, 2)},
            )
            self.written.append(save(recording, self._directory))

        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_RecordingStream(response.stream, t0, finish),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class RecordedClock:
    """The time of a replayed answer as its recording tells it: at the first byte when the headers are given, at
    each chunk's recorded arrival as that chunk is read, at the recorded end once the last one has been."""

    def __init__(self, recording: Recording) -> None:
        chunks = recording.chunks
        self.first_byte_ms = _number(recording.timings.get("ttfb_ms"), chunks[0].at_ms if chunks else 0.0)
        self.end_ms = _number(recording.timings.get("total_ms"), chunks[-1].at_ms if chunks else self.first_byte_ms)
        self.now_ms = self.first_byte_ms

    def __call__(self) -> float:
        return self.now_ms


def _number(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


class _ReplayStream(httpx.AsyncByteStream):
    def __init__(self, chunks: tuple[Chunk, ...], clock: RecordedClock) -> None:
        self._chunks = chunks
        self._clock = clock

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            self._clock.now_ms = chunk.at_ms
            yield chunk.data
        self._clock.now_ms = self._clock.end_ms


def _fits(parts: list[str], text: str) -> bool:
    """Whether `text` is `parts` with something (at least one character) between each two: what was redacted."""
    if not (text.startswith(parts[0]) and text.endswith(parts[-1])):
        return False
    at = len(parts[0])
    for part in parts[1:-1]:
        found = text.find(part, at + 1)  # the leftmost place leaves the most room for the parts after it
        if found < 0:
            return False
        at = found + len(part)
    return len(text) - len(parts[-1]) > at


def _against(recorded: Any, now: Any) -> Any:
    """The request made now, as compared with its recording: a string that was recorded with `[redacted]` in it
    counts as the same when the rest of it is, and is hidden when it is not.

    Replay may not know the secret the recording run redacted (no credential is asked for), so the request made
    now can hold it in the clear: it must neither make the case stale nor be shown in the stale message.
    """
    if isinstance(recorded, str) and isinstance(now, str) and REDACTED in recorded:
        return recorded if _fits(recorded.split(REDACTED), now) else f"(not shown: recorded with {REDACTED} in it)"
    if isinstance(recorded, dict) and isinstance(now, dict):
        return {k: _against(recorded[k], v) if k in recorded else v for k, v in now.items()}
    if isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now):
        return [_against(a, b) for a, b in zip(recorded, now, strict=True)]
    return now


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers each request from its recording; raises `NoRecording` or `StaleRecording` instead of guessing."""

    def __init__(self, recordings: dict[tuple[str, str], Recording], redactor: Redactor | None = None) -> None:
        self._recordings = recordings
        self._redactor = redactor or Redactor()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        meta = _meta(request)
        endpoint = str(meta["endpoint"].get("name"))
        recording = self._recordings.get((endpoint, str(meta["case"])))
        if recording is None:
            raise NoRecording(f"no recording of case {meta['case']!r} for endpoint {endpoint!r}")
        try:
            recording = recording.answer()
        except HarnessError as exc:
            raise UnreadableRecording("; ".join(str(p) for p in exc.problems)) from None
        now = {"method": request.method, **_request_body(request, self._redactor)}
        then: dict[str, Any] = {
            "method": recording.request.get("method"),
            **{k: recording.request[k] for k in ("body", "raw_body") if k in recording.request},
        }
        differences = diff(then, _against(then, now))
        if differences:
            raise StaleRecording(recording.path, differences)
        clock = RecordedClock(recording)
        return httpx.Response(
            recording.status,
            headers=recording.headers,
            stream=_ReplayStream(recording.chunks, clock),
            extensions={"http_version": recording.http_version.encode(), ELAPSED: clock},
        )
