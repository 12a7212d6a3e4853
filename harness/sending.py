"""Sending one request and reading its answer: timeouts by phase, a size cap, a deadline, bounded retries.

Sending is async with a connect timeout, read timeouts by phase (the first byte, which may wait in a busy
server's queue, then the gaps in a stream), a per-case deadline and bounded retries of 429/503 that honour
Retry-After. Every failure (httpx's, a missing or stale recording's) is mapped to a `transport.<kind>`
finding kind in one function, so a broken endpoint yields an `error` verdict and the run goes on. Checks never
see a secret: the exchange is redacted as it is built.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from .endpoints import Endpoint
from .exchanges import Received, build_exchange
from .models import Exchange, SentRequest, TransportError
from .planning import Planned, is_stream, outgoing
from .redact import Redactor
from .transport import EXTENSION, RECORDED_TIMINGS, StaleRecording

__all__ = ["RETRY_STATUSES", "Options", "send"]

RETRY_STATUSES = (429, 503)
_T = TypeVar("_T")


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


class _TooLarge(Exception):
    pass


class _Silence(Exception):
    """Nothing arrived within a limit the runner keeps itself; `phase` says which limit ran out.

    Phases: `first` (not one byte of the answer), `headers` (its headers, then nothing), `stream` (a stream
    that had started went quiet), `body` (a plain answer that had started went quiet).
    """

    def __init__(self, phase: str, seconds: float) -> None:
        super().__init__(f"no data in the {phase} phase for {seconds:g} s")
        self.phase = phase
        self.seconds = seconds


async def _within(seconds: float, phase: str, awaitable: Awaitable[_T]) -> _T:
    """`awaitable`, or `_Silence` after `seconds`; the case's deadline around it still wins when it comes first."""
    timer = asyncio.timeout(seconds)
    try:
        async with timer:
            return await awaitable
    except TimeoutError:
        if timer.expired():
            raise _Silence(phase, seconds) from None
        raise


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


def _map_transport_error(
    exc: BaseException, options: Options, limit: float | None = None, flag: str = "--timeout"
) -> TransportError:
    """The one place an exception from sending becomes a finding kind, with a message naming what to change.

    `limit` is the endpoint's wait for data (`--timeout`, or its own `timeout`, which `flag` names).
    """
    limit = options.timeout if limit is None else limit
    if isinstance(exc, _TooLarge):
        return TransportError(
            "too_large", f"the response is larger than --max-response-bytes ({options.max_response_bytes} bytes)"
        )
    if isinstance(exc, _Silence):
        return TransportError("timeout", _silence_message(exc, options, flag))
    if isinstance(exc, TimeoutError):
        return TransportError(
            "deadline",
            f"the case did not finish within its deadline of {options.deadline:g} s, retries included; "
            "raise --deadline for an endpoint this slow",
        )
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
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return TransportError(
            "reset", f"the connection was closed before the answer was complete: {exc or type(exc).__name__}"
        )
    return TransportError("protocol", f"{type(exc).__name__}: {exc}")


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


def _retry_delay(response: httpx.Response, attempt: int) -> float:
    value: str | None = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value) if value else None
            if parsed is not None:
                return max(0.0, (parsed - datetime.now(parsed.tzinfo)).total_seconds())
    return 0.5 * 2.0**attempt


async def send(client: httpx.AsyncClient, planned: Planned, options: Options, redactor: Redactor) -> Exchange:
    sending = outgoing(planned)
    headers, content = sending.headers, sending.content
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
    reading = Received()
    error: TransportError | None = None
    attempt = 0
    resent = False
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(options.deadline):
            while True:
                attempt += 1
                reading = Received()  # a retried answer replaces the one before
                t0 = time.perf_counter()
                first_byte = _FirstByte(limit, connect)
                request = client.build_request(
                    sending.method,
                    sending.url,
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
                try:
                    reading.ttfb = (time.perf_counter() - t0) * 1000
                    reading.status = response.status_code
                    reading.headers = list(response.headers.items())
                    reading.http_version = response.http_version
                    sent_headers = list(response.request.headers.items())
                    if response.status_code in RETRY_STATUSES and attempt <= options.retries:
                        delay = _retry_delay(response, attempt)
                        await response.aclose()
                        await asyncio.sleep(delay)
                        continue
                    recorded = response.extensions.get(RECORDED_TIMINGS)
                    reading.recorded = recorded if isinstance(recorded, dict) else None
                    chunks = response.aiter_bytes()
                    while True:
                        if reading.chunks:  # the answer has started
                            wait = _within(between, "stream" if streaming else "body", anext(chunks, None))
                        else:
                            wait = _within(limit, "headers", anext(chunks, None))
                        if (chunk := await wait) is None:
                            break
                        reading.size += len(chunk)
                        if reading.size > options.max_response_bytes:
                            raise _TooLarge
                        reading.chunks.append(((time.perf_counter() - t0) * 1000, chunk))
                    reading.total = (time.perf_counter() - t0) * 1000
                finally:
                    await response.aclose()
                break
    except StaleRecording as exc:
        error = TransportError(
            "stale",
            f"the case changed since {exc.path} was recorded: "
            f"{'; '.join(exc.differences)}; record it again with --record",
        )
    except (httpx.HTTPError, TimeoutError, _TooLarge, _Silence) as exc:
        error = _map_transport_error(exc, options, limit, flag)
        reading.total = (time.perf_counter() - t0) * 1000
    sent = SentRequest("POST", redactor.url(planned.endpoint.url), redactor.headers(sent_headers), body, raw)
    return build_exchange(sent, reading, started, attempt, error, streaming, redactor)


def _describe(endpoint: Endpoint) -> dict[str, Any]:
    """What a recording keeps of the endpoint, so that replaying it needs no config."""
    return {"name": endpoint.name, "base_url": endpoint.base_url, "model": endpoint.model, "profile": endpoint.profile}
