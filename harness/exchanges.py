"""Turning what arrived into an `Exchange`: a stream read as events, anything else decoded as one JSON document.

The same function builds live and replayed exchanges, from what the sending loop received (`Received`), so
checks cannot tell them apart.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from typing import Any

from .models import Exchange, HttpResponse, SentRequest, Stream, Timings, TransportError
from .pointer import MISSING
from .recordings import Chunk, redact_chunks
from .redact import Redactor
from .streams import read_stream

__all__ = ["Received", "build_exchange"]


class Received:
    """What has arrived so far: kept even when the connection fails half-way, so a truncated answer is shown."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.http_version = "HTTP/1.1"
        self.chunks: list[tuple[float, bytes]] = []
        self.size = 0
        self.ttfb: float | None = None
        self.total: float | None = None
        self.recorded: dict[str, Any] | None = None


def _decode(raw: bytes, content_type: str) -> tuple[str, Any, str | None]:
    """(text, parsed JSON or MISSING, why it is not JSON)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return raw.decode("utf-8", errors="replace"), MISSING, f"it is not valid UTF-8 (byte {exc.start})"
    if not text.strip():
        return text, MISSING, "it is empty"

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return text, json.loads(text, parse_constant=reject_constant), None
    except ValueError as exc:
        lowered = text.lstrip()[:200].lower()
        if "html" in content_type or lowered.startswith(("<!doctype html", "<html")):
            return text, MISSING, "it is an HTML page"
        return text, MISSING, f"it does not parse ({exc})"


def build_exchange(
    sent: SentRequest,
    reading: Received,
    started: str,
    attempts: int,
    error: TransportError | None,
    streaming: bool,
    redactor: Redactor,
) -> Exchange:
    """The exchange from what arrived; a stream is parsed as events, anything else as one JSON document."""
    if reading.recorded is not None:  # replay: report what the real endpoint took, chunk by chunk
        times = reading.recorded.get("chunk_ms") or []
        reading.chunks = [(times[i] if i < len(times) else at, data) for i, (at, data) in enumerate(reading.chunks)]
        reading.ttfb = reading.recorded.get("ttfb_ms", reading.ttfb)
        reading.total = reading.recorded.get("total_ms", reading.total)
    if reading.status is None:
        return Exchange(sent, None, Timings(started, _ms(reading.ttfb), _ms(reading.total)), error, attempts)
    streamed = streaming and 200 <= reading.status < 300
    if streamed and redactor.active:
        # A secret cut across two writes or two deltas is in no single chunk: the raw text kept of a stream must
        # lose both halves, as a recording's chunks do.
        chunks = redact_chunks([Chunk(at_ms=at, data=data) for at, data in reading.chunks], redactor, stream=True)
        reading.chunks = [(c.at_ms, c.data) for c in chunks]
    data = b"".join(chunk for _, chunk in reading.chunks)
    headers = redactor.headers(reading.headers)
    stream = None
    if streamed:
        stream = read_stream(reading.chunks, redactor)
        text, parsed, body_error = data.decode("utf-8", errors="replace"), MISSING, None
    else:
        text, parsed, body_error = _decode(data, headers.get("content-type", ""))
    response = HttpResponse(
        status=reading.status,
        headers=headers,
        text=redactor.text(text),
        body=MISSING if parsed is MISSING else redactor.value(parsed),
        body_error=body_error,
        size=reading.size,
        http_version=reading.http_version,
    )
    timings = Timings(started, _ms(reading.ttfb), _ms(reading.total))
    if stream is not None:
        timings = _stream_timings(timings, stream)
    return Exchange(sent, response, timings, error, attempts, stream)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _stream_timings(timings: Timings, stream: Stream) -> Timings:
    arrivals = [e.at_ms for e in stream.events]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    first = next((e.at_ms for e in stream.events if _carries_token(e.json)), None)
    return replace(timings, ttft_ms=_ms(first), max_gap_ms=_ms(max(gaps)) if gaps else None, events=len(arrivals))


def _carries_token(chunk: Any) -> bool:
    """A chunk with the first piece of the answer: content text or a tool call."""
    if not isinstance(chunk, dict):
        return False
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict) and (delta.get("content") or delta.get("tool_calls") or delta.get("refusal")):
            return True
    return False
