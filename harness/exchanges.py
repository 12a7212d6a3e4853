"""Turning what arrived into an `Exchange`: a stream read as events, anything else decoded as one JSON document.

The same function builds live and replayed exchanges, from what the sending loop received (`Received`), so
checks cannot tell them apart. What an endpoint sent is read within bounds (`bounded`): JSON nested too deep is
not JSON the checks judge, and an answer cut off at --max-response-bytes becomes an excerpt with its counts, so
that neither the exchange nor the report built from it holds the whole of what a hostile endpoint sent.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from .bounded import EXCERPT_BYTES, TAIL_EVENTS, TooDeep, cut, loads
from .limits import size
from .models import Exchange, HttpResponse, SentRequest, Stream, Timings, TransportError
from .pointer import MISSING
from .recordings import Chunk, redact_chunks
from .redact import Redactor
from .streams import read_excerpt, read_stream

__all__ = ["Received", "build_exchange"]


class Received:
    """What has arrived so far: kept even when the connection fails half-way, so a truncated answer is shown.

    `size` counts the decoded bytes and `raw_size` the bytes as they came; `encoding` is the Content-Encoding
    that was decoded, `undecoded` one that was left as it came.
    """

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.http_version = "HTTP/1.1"
        self.chunks: list[tuple[float, bytes]] = []
        self.size = 0
        self.raw_size = 0
        self.encoding: str | None = None
        self.undecoded: str | None = None
        self.ttfb: float | None = None
        self.total: float | None = None

    def take(self, at: float, pieces: Iterable[bytes], cap: int) -> bool:
        """Add the pieces one read decoded to, each as a chunk that arrived at `at`; False once the answer is past
        `cap`, having stopped decoding there. The piece that crossed the cap is kept: the last events the report
        shows of a cut-off stream may be in it."""
        for piece in pieces:
            self.chunks.append((at, piece))
            self.size += len(piece)
            if self.size > cap:
                return False
        return True


def _decode(raw: bytes, content_type: str, undecoded: str | None = None) -> tuple[str, Any, str | None]:
    """(text, parsed JSON or MISSING, why it is not JSON)."""
    if undecoded:
        return (
            raw.decode("utf-8", errors="replace"),
            MISSING,
            f"it is {undecoded}-encoded (Content-Encoding: {undecoded}), which the harness does not decode",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return raw.decode("utf-8", errors="replace"), MISSING, f"it is not valid UTF-8 (byte {exc.start})"
    if not text.strip():
        return text, MISSING, "it is empty"
    try:
        return text, loads(text), None
    except TooDeep as exc:
        return text, MISSING, str(exc)
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
    if reading.status is None:
        return Exchange(sent, None, Timings(started, _ms(reading.ttfb), _ms(reading.total)), error, attempts)
    streamed = streaming and 200 <= reading.status < 300
    if error is not None and error.kind == "too_large":
        return _cut_off(sent, reading, started, attempts, error, streamed, redactor)
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
        text, parsed, body_error = _decode(data, headers.get("content-type", ""), reading.undecoded)
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


def _cut_off(
    sent: SentRequest,
    reading: Received,
    started: str,
    attempts: int,
    error: TransportError,
    streamed: bool,
    redactor: Redactor,
) -> Exchange:
    """The exchange of an answer cut off at --max-response-bytes: its first bytes, and for a stream the events they
    hold and its last ones, with how many bytes and events came. Nothing past the cap is judged (the verdict is
    `error`), so nothing more is worth its memory, here or in the report."""
    head = _first_bytes(reading.chunks, EXCERPT_BYTES + _LOOKAHEAD)
    head, following = head[:EXCERPT_BYTES], head[EXCERPT_BYTES:]
    if redactor.active:
        # As a whole answer's raw text is: a secret cut across two writes or two deltas goes too, also one that
        # runs on past the excerpt (the bytes after it are redacted with it, then dropped).
        pieces = [Chunk(at_ms=0.0, data=head), Chunk(at_ms=0.0, data=following)]
        head = redact_chunks(pieces, redactor, stream=streamed)[0].data
    text = redactor.text(cut(head.decode("utf-8", errors="replace"), EXCERPT_BYTES, ended=False))
    stream = None
    message = error.message
    timings = Timings(started, _ms(reading.ttfb), _ms(reading.total))
    if streamed:
        stream, count, gap = read_excerpt(reading.chunks, redactor, keep_bytes=EXCERPT_BYTES, keep_last=TAIL_EVENTS)
        timings = replace(_stream_timings(timings, stream), events=count, max_gap_ms=_ms(gap))
        message += f"; {count} events had arrived, of which the report keeps {len(stream.events)}"
    response = HttpResponse(
        status=reading.status or 0,
        headers=redactor.headers(reading.headers),
        text=text,
        body_error=f"it was cut off at --max-response-bytes after {reading.size:,} bytes; its first {size(len(head))} "
        "are kept",
        size=reading.size,
        http_version=reading.http_version,
    )
    reading.chunks = []  # let the bytes go: only the excerpt is kept
    return Exchange(sent, response, timings, TransportError(error.kind, message), attempts, stream)


_LOOKAHEAD = 8 * 1024  # read past an excerpt only to find a secret that runs on beyond it


def _first_bytes(chunks: list[tuple[float, bytes]], limit: int) -> bytes:
    kept: list[bytes] = []
    held = 0
    for _, data in chunks:
        if held >= limit:
            break
        kept.append(data[: limit - held])
        held += len(kept[-1])
    return b"".join(kept)


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
