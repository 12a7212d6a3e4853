"""Live sending: httpx's client on aiohttp's connection pool, through the `httpx-aiohttp` transport.

httpx's own pool (httpcore) costs more per request the more are in flight; aiohttp's costs a fraction of it. Only
the transport changes: the client stays httpx's, with its auth, its reading of HTTPS_PROXY/HTTP_PROXY/NO_PROXY and
SSL_CERT_FILE, and the transport seam that recording wraps and replay replaces, so a live answer is read by the
same code as a replayed one. Three things are made to hold as they do on httpx's own transport:

- Failures. What aiohttp raises is translated here, in one place, into the exception httpx's transport raises for
  the same failure (httpx-aiohttp maps some otherwise: a refused connection to `ConnectTimeout`, a malformed
  answer not at all), so the sending loop turns them into the same findings whatever the transport.
- The wire. Bodies come as they were sent (no decompression: `decoding` decodes them within the size cap), and
  aiohttp adds no header of its own to those httpx built.
- Timing. httpx's `trace` extension hears when the request has been written (`sending._FirstByte` starts the wait
  for the first byte there), and the response says which HTTP version the server answered in.

This module loads aiohttp, so only a live run imports it.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
from aiohttp.http_exceptions import ContentLengthError, HttpProcessingError, TransferEncodingError
from httpx_aiohttp import AiohttpTransport

__all__ = ["NetworkClient", "translated"]

Trace = Callable[[str, Mapping[str, Any]], Awaitable[None]]

MAX_HEAD = 100 * 1024
"""The longest status line or header aiohttp reads (its default is 8 KiB): httpx's transport reads a head of up to
100 KiB, however it is split into lines, and an answer that httpx reads must not become a protocol error here."""
MAX_HEADERS = 32 * 1024
"""How many header lines aiohttp reads (its default is 128): more than fit in a head httpx reads."""

# aiohttp's own headers, which httpx has always set already (or, for Content-Type, deliberately left out).
_AUTO_HEADERS = ("Accept", "Accept-Encoding", "User-Agent", "Content-Type")


class _Sending:
    """What the request being sent in this task wants to hear from aiohttp's trace signals, and what they said."""

    __slots__ = ("trace", "version")

    def __init__(self, trace: Trace | None) -> None:
        self.trace = trace
        self.version: str | None = None


# aiohttp's trace signals run in the task that sends (and in the body writer it starts, which copies the context).
_SENDING: contextvars.ContextVar[_Sending | None] = contextvars.ContextVar("chat_conformance_sending", default=None)


async def _written(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    """A piece of the request went to the socket: where httpcore's `send_request_body.complete` would be heard."""
    sending = _SENDING.get()
    if sending is not None and sending.trace is not None:
        await sending.trace("http11.send_request_body.complete", {})


async def _answered(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
    sending = _SENDING.get()
    if sending is not None:
        version = params.response.version
        sending.version = f"HTTP/{version.major}.{version.minor}"


def _trace_config() -> aiohttp.TraceConfig:
    config = aiohttp.TraceConfig()
    config.on_request_headers_sent.append(_written)
    config.on_request_chunk_sent.append(_written)
    config.on_request_end.append(_answered)
    config.freeze()
    return config


def translated(exc: BaseException) -> BaseException:
    """The exception httpx's own transport raises for the failure behind `exc`; `exc` itself when it is none of
    aiohttp's (httpx's, or the caller's own timers and cancellation).

    httpx-aiohttp raises its mapping of an aiohttp error `from` it, or the aiohttp error itself when it maps none;
    the original is what says what happened.
    """
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) else exc
    if not isinstance(cause, aiohttp.ClientError | HttpProcessingError):
        return exc
    text = str(cause) or type(cause).__name__
    if isinstance(cause, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake, an unreachable proxy
        return httpx.ConnectError(text)
    if isinstance(cause, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text)
    if isinstance(cause, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(text)
    if isinstance(cause, aiohttp.ClientHttpProxyError):
        return httpx.ProxyError(text)
    if isinstance(cause, aiohttp.ServerDisconnectedError):  # closed before a whole head had come
        return httpx.RemoteProtocolError(f"Server disconnected without sending a complete response: {text}")
    if isinstance(cause, aiohttp.ClientPayloadError):
        underlying = cause.__cause__
        if isinstance(underlying, ContentLengthError | TransferEncodingError) and "Not enough data" in str(underlying):
            return httpx.RemoteProtocolError(f"peer closed connection without sending complete message body: {text}")
        return httpx.RemoteProtocolError(text)
    if isinstance(cause, aiohttp.ClientConnectionError):  # reset, broken pipe, lost mid-answer
        return httpx.ReadError(text)
    if isinstance(cause, aiohttp.NonHttpUrlClientError | aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(text)
    if isinstance(cause, aiohttp.ClientResponseError | HttpProcessingError):  # a head or a chunk that is not HTTP
        return httpx.RemoteProtocolError(str(cause.message) or text)
    return httpx.TransportError(text)


class _Body(httpx.AsyncByteStream):
    """The answer's bytes as aiohttp reads them, its failures translated."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for data in self._inner:
                yield data
        except Exception as exc:
            raise translated(exc) from exc

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        except Exception as exc:
            raise translated(exc) from exc


class _Transport(AiohttpTransport):
    """httpx-aiohttp's transport with failures translated, nothing added to the request and its timing traced."""

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        return aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=_AUTO_HEADERS,
            cookie_jar=aiohttp.DummyCookieJar(),  # aiohttp keeps none either (see runner._NoCookies)
            trace_configs=[_trace_config()],
            max_line_size=MAX_HEAD,
            max_field_size=MAX_HEAD,
            max_headers=MAX_HEADERS,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sending = _Sending(request.extensions.get("trace"))
        token = _SENDING.set(sending)
        try:
            response = await super().handle_async_request(request)
        except Exception as exc:
            raise translated(exc) from exc
        finally:
            _SENDING.reset(token)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        if sending.version is not None:
            response.extensions["http_version"] = sending.version.encode()
        return response


class NetworkClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` whose transports (direct, and one per proxy it reads from the environment) are
    aiohttp's; given a transport of its own (a mock, a replay) it uses that, as httpx's client does.

    httpx builds its transports through these two methods, always with keywords (`verify`, `cert`, `trust_env`,
    `http1`, `http2`, `limits`), which httpx-aiohttp's transport takes as they are.
    """

    def _init_transport(  # type: ignore[override]
        self, *, transport: httpx.AsyncBaseTransport | None = None, **settings: Any
    ) -> httpx.AsyncBaseTransport:
        return transport if transport is not None else _Transport(**settings)

    def _init_proxy_transport(  # type: ignore[override]
        self, proxy: httpx.Proxy, **settings: Any
    ) -> httpx.AsyncBaseTransport:
        return _Transport(proxy=proxy, **settings)
