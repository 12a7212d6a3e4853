"""Sending one request and reading its answer: timeouts by phase, a size cap, a deadline, bounded retries.

Sending is async with a connect timeout, read timeouts by phase (the first byte, which may wait in a busy
server's queue, then the gaps in a stream), a per-case deadline and bounded retries of 429/503 that honour
Retry-After as far as the deadline allows. The size cap counts decoded bytes, decoded a bounded piece at a
time (`decoding`), so a compression bomb stops at the cap. Every failure (httpx's, a missing or stale
recording's, an answer that is not HTTP at all) is mapped to a `transport.<kind>` finding kind in one function,
so a broken or hostile endpoint yields an `error` verdict and the run goes on. Checks never see a secret: the
exchange, the failure's message included, is redacted as it is built.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from .decoding import ACCEPT, Decoder, Undecodable, decoder_for
from .endpoints import Endpoint
from .exchanges import Received, build_exchange
from .limits import size
from .models import Exchange, SentRequest, TransportError
from .planning import Planned, is_stream, outgoing
from .redact import Redactor
from .transport import ELAPSED, EXTENSION, StaleRecording, UnreadableRecording

__all__ = ["RETRY_STATUSES", "Options", "retry_delay", "send"]

RETRY_STATUSES = (429, 503)


@dataclass(frozen=True, slots=True)
class Options:
    """How to send: the knobs a user sets with flags."""

    concurrency: int = 4
    timeout: float = 60.0
    deadline: float = 180.0
    retries: int = 2
    max_response_bytes: int = 16 * 1024 * 1024
    stream_idle_timeout: float = 30.0
    extra_secrets: tuple[str, ...] = ()
    clients: bool = True
    """Feed every answer to the official SDKs (the `client.*` checks); off with --no-clients, which saves most of a
    run's CPU (the SDKs build their models for every answer) and the import of openai and the start of Node.js."""


class _TooLarge(Exception):
    """The answer grew past --max-response-bytes (its decoded bytes, or the raw bytes that were to decode)."""


class _RetryRefused(Exception):
    """A 429 or 503 asked for a wait (Retry-After) that would end past the case's deadline: not retried."""

    def __init__(self, status: int, value: str, delay: float, left: float) -> None:
        super().__init__(f"Retry-After {value!r}")
        self.status = status
        self.value = value
        self.delay = delay
        self.left = left


class _Silence(Exception):
    """Nothing arrived within a limit the runner keeps itself; `phase` says which limit ran out.

    Phases: `first` (not one byte of the answer), `headers` (its headers, then nothing), `stream` (a stream
    that had started went quiet), `body` (a plain answer that had started went quiet).
    """

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"no data in the {phase} phase for {seconds:g} s")
        self.phase = phase
        self.seconds = seconds


class _FirstByte:
    """The wait for an answer's first byte, counted from when the request was written.

    httpx has one read timeout for a whole answer, but a stream needs two: a request queued at a server whose
    slots are busy waits long for its first byte, then its events come quickly. So the runner times reads
    itself. httpcore's `trace` extension says when the request has been written; a transport that does not
    trace (replay, mocks) gets the connect limit on top, so a slow connection still ends as `connect`.
    """

    def __init__(self, seconds: float, connect: float) -> None:
        self.seconds = seconds
        self._connect = connect
        self._timer: asyncio.Timeout | None = None

    async def trace(self, name: str, info: Mapping[str, Any]) -> None:
        timer = self._timer
        if timer is not None and not timer.expired() and name.endswith(".send_request_body.complete"):
            timer.reschedule(asyncio.get_running_loop().time() + self.seconds)

    async def response(self, sending: Awaitable[httpx.Response]) -> httpx.Response:
        timer = self._timer = asyncio.timeout(self._connect + self.seconds)
        try:
            async with timer:
                return await sending
        except TimeoutError:
            if timer.expired():
                raise _Silence("first", self.seconds) from None
            raise
        finally:
            self._timer = None


@dataclass(slots=True)
class _Progress:
    """What a case went through before it failed, for the failure's message: the answers it retried, and what had
    arrived of the last one."""

    retried: list[int]
    reading: Received


def _map_transport_error(
    exc: BaseException,
    options: Options,
    limit: float | None = None,
    flag: str = "--timeout",
    progress: _Progress | None = None,
) -> TransportError:
    """The one place an exception from sending becomes a finding kind, with a message naming what to change.

    `limit` is the endpoint's wait for data (`--timeout`, or its own `timeout`, which `flag` names).
    """
    limit = options.timeout if limit is None else limit
    progress = progress or _Progress(retried=[], reading=Received())
    if isinstance(exc, _TooLarge):
        return TransportError("too_large", _too_large_message(options, progress.reading))
    if isinstance(exc, _RetryRefused):
        return TransportError("deadline", _refused_message(exc, options))
    if isinstance(exc, _Silence):
        return TransportError("timeout", _silence_message(exc, options, flag))
    if isinstance(exc, TimeoutError):
        return TransportError("deadline", _deadline_message(options, progress))
    if isinstance(exc, Undecodable):
        return TransportError("protocol", str(exc))
    if isinstance(exc, httpx.ConnectTimeout):
        return TransportError(
            "connect",
            f"timed out connecting ({type(exc).__name__}); on a network that needs a proxy, set HTTPS_PROXY "
            "or HTTP_PROXY",
        )
    if isinstance(exc, httpx.ConnectError):
        return TransportError("connect", f"cannot connect: {exc or type(exc).__name__}")
    if isinstance(exc, httpx.TimeoutException):
        return TransportError("timeout", f"no progress for {limit:g} s ({type(exc).__name__}); raise {flag}")
    if isinstance(exc, httpx.RemoteProtocolError) and not _closed(exc):
        return TransportError(
            "protocol",
            f"the answer is not HTTP as the harness reads it ({_shown(exc)}); check that --base-url names the "
            "endpoint's host, port and scheme (http or https)",
        )
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return TransportError(
            "reset", f"the connection was closed before the answer was complete: {exc or type(exc).__name__}"
        )
    return TransportError("protocol", f"{type(exc).__name__}: {_shown(exc)}")


def _closed(exc: httpx.RemoteProtocolError) -> bool:
    """Whether h11 or httpcore said the server hung up (a reset), rather than that it sent what is not HTTP."""
    text = str(exc).lower()
    return any(word in text for word in ("disconnected", "closed", "incomplete", "without sending"))


def _shown(exc: BaseException) -> str:
    """An exception's text as a message may quote it: what a server sent can be long."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _too_large_message(options: Options, reading: Received) -> str:
    """What the cap cut: how much arrived, and for a compressed answer how little it came from (a bomb, likely)."""
    cap = size(options.max_response_bytes)
    arrived = f"{reading.size:,} bytes"
    if reading.encoding and reading.raw_size > options.max_response_bytes:
        arrived = f"{reading.raw_size:,} bytes of {reading.encoding} (decoded to {reading.size:,})"
    elif reading.encoding:
        arrived += f", decoded from {reading.raw_size:,} bytes of {reading.encoding} (a compression bomb?)"
    return (
        f"the answer is larger than --max-response-bytes ({cap}): reading stopped after {arrived}; raise "
        "--max-response-bytes if the endpoint's answers are legitimately this large"
    )


def _deadline_message(options: Options, progress: _Progress) -> str:
    """Why the deadline ran out: the answer was still arriving, or the case was busy retrying, or neither."""
    message = f"the case did not finish within its deadline of {options.deadline:g} s, retries included"
    reading = progress.reading
    if reading.raw_size:
        message += f": the answer was still arriving ({reading.raw_size:,} bytes so far)"
    elif reading.status is not None:
        message += f": the answer's headers came ({reading.status}), then not all of its body"
    if progress.retried:
        statuses = sorted(set(progress.retried))
        message += (
            f" after {len(progress.retried)} retried answer(s) ({', '.join(map(str, statuses))}; --retries "
            f"{options.retries}, honouring Retry-After)"
        )
    return message + "; raise --deadline for an endpoint this slow"


def _refused_message(refused: _RetryRefused, options: Options) -> str:
    wait = "without end" if refused.delay == float("inf") else f"{refused.delay:,.0f} s"
    value = refused.value if len(refused.value) <= 60 else refused.value[:57] + "..."
    return (
        f"the endpoint answered {refused.status} and asked to be retried after {wait} (Retry-After: {value!r}), "
        f"more than the {refused.left:.0f} s left before the case's deadline (--deadline {options.deadline:g}, "
        "retries included): it was not retried, and the case ends here; raise --deadline to wait that long"
    )


def _silence_message(silence: _Silence, options: Options, flag: str) -> str:
    """What a timeout means in its phase: before the first byte the request was most likely queued."""
    seconds = f"{silence.seconds:g} s"
    if silence.phase == "stream":
        return (
            f"the stream stalled: no data for {seconds} after it had started; raise --stream-idle-timeout if the "
            "endpoint pauses this long between events"
        )
    if silence.phase == "body":
        return f"the answer stalled: no data for {seconds} after it had started; raise {flag} for an endpoint this slow"
    what = "not one byte of the answer came" if silence.phase == "first" else "the headers came, then no data"
    return (
        f"{what} within {seconds} of sending ({flag}); a server whose slots are all busy queues requests, "
        f"so lower --concurrency (now {options.concurrency}) or raise {flag}"
    )


def retry_delay(value: str | None, attempt: int, now: datetime | None = None) -> float:
    """Seconds to wait before retry `attempt`, as Retry-After asks: a number of seconds (negative means now), or an
    HTTP date; anything else (or no header) gets an exponential backoff. Never raises and may return infinity: the
    header is whatever the endpoint sent, and the caller holds the wait to the case's deadline."""
    return _delay(_asked_wait(value, now), attempt)


def _delay(asked: float | None, attempt: int) -> float:
    """The wait Retry-After asked for, or without one the harness's own exponential backoff."""
    return 0.5 * 2.0 ** min(attempt, 16) if asked is None else asked


def _asked_wait(value: str | None, now: datetime | None = None) -> float | None:
    """The wait Retry-After states (seconds, at least 0, maybe infinite), or None when it states none."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        until = _seconds_until(text, now or datetime.now(UTC))
        if until is None:
            return None
        seconds = until
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def _seconds_until(text: str, now: datetime) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - now).total_seconds()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _body(response: httpx.Response) -> tuple[AsyncIterator[bytes], Decoder, str | None]:
    """The answer's raw bytes, their decoder, and the Content-Encoding it leaves undone.

    An answer httpx has already read (one a mock transport built in memory) is decoded already, so it is taken as
    it is; every other is read raw and decoded here, within the cap.
    """
    if response.is_stream_consumed:
        decoder, _ = decoder_for(None)
        return _once(response.content), decoder, None
    decoder, undone = decoder_for(response.headers.get("content-encoding"))
    return response.aiter_raw(), decoder, undone


async def _read(
    response: httpx.Response,
    reading: Received,
    options: Options,
    limit: float,
    between: float,
    streaming: bool,
    clock: Clock,
) -> None:
    """Read the answer into `reading`, timing each wait by its phase and stopping at the cap; each piece is stamped
    by `clock`, the answer's own (see `_clock`)."""
    raw, decoder, reading.undecoded = _body(response)
    encoding = response.headers.get("content-encoding")
    reading.encoding = encoding.strip().lower() if encoding and not reading.undecoded else None
    cap = options.max_response_bytes
    loop = asyncio.get_running_loop()
    # One timer for the whole answer, moved on once each piece is taken (a timer per read cost more than reading a
    # stream's event): the first piece has `limit` to come, each later one `between`. The case's deadline around it
    # still wins when it comes first.
    phase, seconds = "headers", limit
    timer = asyncio.timeout(limit)
    try:
        async with timer:
            async for data in raw:
                reading.raw_size += len(data)
                if not reading.take(clock(), decoder.decode(data), cap) or reading.raw_size > cap:
                    raise _TooLarge
                if reading.raw_size:  # the answer has started
                    phase, seconds = ("stream" if streaming else "body"), between
                timer.reschedule(loop.time() + seconds)
    except TimeoutError:
        if timer.expired():
            raise _Silence(phase, seconds) from None
        raise
    if not reading.take(clock(), decoder.flush(), cap):
        raise _TooLarge


Clock = Callable[[], float]
"""Milliseconds since the request was sent."""


def _stopwatch(t0: float) -> Clock:
    return lambda: (time.perf_counter() - t0) * 1000


def _clock(response: httpx.Response, live: Clock) -> Clock:
    """The clock an answer is timed by: the one its transport gives (a replay tells the recorded times), else
    `live`. Live and replayed answers are then read and timed by the same code."""
    given = response.extensions.get(ELAPSED)
    return given if callable(given) else live


async def send(client: httpx.AsyncClient, planned: Planned, options: Options, redactor: Redactor) -> Exchange:
    sending = outgoing(planned)
    # Only the encodings that are decoded within the cap are asked for (a case may ask for its own).
    headers, content = {"accept-encoding": ACCEPT, **sending.headers}, sending.content
    case = planned.case
    streaming = is_stream(planned)
    started = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    sent_headers: list[tuple[str, str]] = list(headers.items())
    body = redactor.value(case.request) if case.raw_body is None else None
    raw = redactor.text(case.raw_body) if case.raw_body is not None else None
    meta = {"case": planned.key, "case_file": case.file, "endpoint": _describe(planned.endpoint)}
    limit = planned.endpoint.timeout or options.timeout
    flag = "--timeout" if planned.endpoint.timeout is None else "the endpoint's `timeout`"
    connect = min(10.0, limit)
    # Reads are timed below, by phase: the first byte within `limit` (the request may wait in the server's
    # queue), then a stream's events within the idle timeout, and a plain answer's bytes within `limit`.
    timeout = httpx.Timeout(limit, connect=connect, read=None)
    between = options.stream_idle_timeout if streaming else limit
    progress = _Progress(retried=[], reading=Received())
    error: TransportError | None = None
    attempt = 0
    resent = False
    loop = asyncio.get_running_loop()
    ends = loop.time() + options.deadline
    clock = _stopwatch(time.perf_counter())
    try:
        async with asyncio.timeout(options.deadline):
            while True:
                attempt += 1
                reading = progress.reading = Received()  # a retried answer replaces the one before
                clock = _stopwatch(time.perf_counter())
                first_byte = _FirstByte(limit, connect)
                request = client.build_request(
                    sending.method,
                    _url(sending.url),
                    headers=headers,
                    content=content,
                    extensions={EXTENSION: meta, "trace": first_byte.trace},
                    timeout=timeout,
                )
                try:
                    response = await first_byte.response(client.send(request, stream=True))
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                    if resent:
                        raise
                    # A kept-alive connection the server closed as we reused it fails before any answer:
                    # send once more on a fresh one. A server that drops this request every time still fails.
                    resent = True
                    continue
                refused: _RetryRefused | None = None
                try:
                    clock = _clock(response, clock)
                    reading.ttfb = clock()
                    reading.status = response.status_code
                    reading.headers = list(response.headers.items())
                    reading.http_version = response.http_version
                    sent_headers = list(response.request.headers.items())
                    if response.status_code in RETRY_STATUSES and attempt <= options.retries:
                        value = response.headers.get("retry-after") or ""
                        asked = _asked_wait(value)
                        delay = _delay(asked, attempt)
                        left = ends - loop.time()
                        if delay < left:
                            progress.retried.append(response.status_code)
                            await response.aclose()
                            await asyncio.sleep(delay)
                            continue
                        if left <= 0 or asked is None:
                            # The deadline ends the case, not a wait the endpoint asked for: the answer came as
                            # the time ran out, or the wait is the harness's own backoff. Said as any deadline is.
                            progress.retried.append(response.status_code)
                            raise TimeoutError
                        # Waiting as asked would only run into the deadline: this answer is the last, read as it is.
                        refused = _RetryRefused(response.status_code, value, delay, left)
                    await _read(response, reading, options, limit, between, streaming, clock)
                    reading.total = clock()
                finally:
                    await response.aclose()
                if refused is not None:
                    raise refused
                break
    except StaleRecording as exc:
        error = TransportError(
            "stale",
            f"the case changed since {exc.path} was recorded: "
            f"{'; '.join(exc.differences)}; record it again with --record",
        )
    except UnreadableRecording as exc:
        error = TransportError(
            "unreadable", f"its recording cannot be read: {exc.problems}; record it again with --record"
        )
    except (httpx.HTTPError, TimeoutError, _TooLarge, _Silence, _RetryRefused, Undecodable) as exc:
        error = _map_transport_error(exc, options, limit, flag, progress)
        progress.reading.total = clock()
    if error is not None:  # it may quote what the endpoint sent (a status line, a Retry-After), which may echo a secret
        error = TransportError(error.kind, redactor.text(error.message))
    sent = SentRequest("POST", redactor.url(planned.endpoint.url), redactor.headers(sent_headers), body, raw)
    return build_exchange(sent, progress.reading, started, attempt, error, streaming, redactor)


@functools.lru_cache(maxsize=256)
def _url(text: str) -> httpx.URL:
    """An endpoint's URL parsed once, not for every request: parsing it was half the cost of building a request."""
    return httpx.URL(text)


def _describe(endpoint: Endpoint) -> dict[str, Any]:
    """What a recording keeps of the endpoint, so that replaying it needs no config."""
    return {"name": endpoint.name, "base_url": endpoint.base_url, "model": endpoint.model, "profile": endpoint.profile}
