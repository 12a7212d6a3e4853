"""Live sending on aiohttp (`harness.network`): what reaches the wire, and what comes back, is what httpx's own
transport sent and read; every aiohttp failure becomes the finding httpx's failure would."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import aiohttp
import httpx
import pytest
from aiohttp.http_exceptions import BadHttpMessage, ContentLengthError, TransferEncodingError

from harness.cases import parse_case
from harness.decoding import ACCEPT
from harness.endpoints import Endpoint
from harness.engine import run
from harness.models import Verdict
from harness.network import NetworkClient, translated
from harness.sending import Options, _map_transport_error
from tests.conftest import run_case
from tests.test_hostile import FAULTS, TEXT, Hostile, Request, _completion, _send

CONNECTION = aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None)


def _payload_error(underlying: Exception) -> aiohttp.ClientPayloadError:
    error = aiohttp.ClientPayloadError(f"Response payload is not completed: {underlying!r}")
    error.__cause__ = underlying
    return error


def _response_error(message: str) -> aiohttp.ClientResponseError:
    info = aiohttp.RequestInfo(url=aiohttp.client.URL("http://x/"), method="POST", headers=aiohttp.client.CIMultiDict())
    return aiohttp.ClientResponseError(info, (), status=400, message=message)


def _mapped_like_httpx_aiohttp(exc: Exception, wrapper: type[httpx.TransportError]) -> httpx.TransportError:
    """As httpx-aiohttp raises it: its mapping of the aiohttp error, raised from that error."""
    mapped = wrapper(str(exc))
    mapped.__cause__ = exc
    return mapped


@pytest.mark.parametrize(
    ("raised", "expected", "kind"),
    [
        (aiohttp.ClientConnectorError(CONNECTION, ConnectionRefusedError(111, "no")), httpx.ConnectError, "connect"),
        (aiohttp.ClientProxyConnectionError(CONNECTION, OSError(111, "refused")), httpx.ConnectError, "connect"),
        (aiohttp.ConnectionTimeoutError("connect"), httpx.ConnectTimeout, "connect"),
        (aiohttp.SocketTimeoutError("read"), httpx.ReadTimeout, "timeout"),
        (aiohttp.ServerDisconnectedError(), httpx.RemoteProtocolError, "reset"),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx.ReadError, "reset"),
        (_payload_error(ContentLengthError("Not enough data to satisfy content length header.")), None, "reset"),
        (_payload_error(TransferEncodingError("Not enough data to satisfy transfer length header.")), None, "reset"),
        (_payload_error(TransferEncodingError("Invalid chunk size")), httpx.RemoteProtocolError, "protocol"),
        (_response_error("Invalid constant string"), httpx.RemoteProtocolError, "protocol"),
        (BadHttpMessage("Bad status line 'SSH-2.0'"), httpx.RemoteProtocolError, "protocol"),
        (aiohttp.NonHttpUrlClientError("ftp://x"), httpx.UnsupportedProtocol, "protocol"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_every_aiohttp_failure_becomes_the_finding_httpx_s_would(
    raised: Exception, expected: type[Exception] | None, kind: str
) -> None:
    for seen in (raised, _mapped_like_httpx_aiohttp(raised, httpx.ConnectTimeout)):
        exc = translated(seen)
        assert isinstance(exc, expected or httpx.RemoteProtocolError), exc
        assert _map_transport_error(exc, Options()).kind == kind


@pytest.mark.parametrize(
    "raised",
    [httpx.ReadError("already httpx's"), TimeoutError(), ValueError("a bug"), asyncio.CancelledError()],
)
def test_what_is_not_aiohttp_s_passes_unchanged(raised: BaseException) -> None:
    assert translated(raised) is raised


@pytest.fixture
def hostile() -> Iterator[Hostile]:
    server = Hostile()
    try:
        yield server
    finally:
        server.close()


def _head(version: str, *extra: str) -> Any:
    body = httpx.Response(200, json=_completion()).content

    def write(server: Hostile, conn: socket.socket, request: Request) -> None:
        lines = [f"{version} 200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}", *extra]
        _send(conn, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    return write


def test_the_request_on_the_wire_carries_httpx_s_headers_and_nothing_of_aiohttp_s(hostile: Hostile) -> None:
    result = run_case(hostile.url("ok"), TEXT)
    assert result.verdict is Verdict.PASS, result.findings
    (sent,) = hostile.requests
    assert sent.headers["user-agent"].startswith("chat-conformance/")
    assert sent.headers["accept-encoding"] == ACCEPT and sent.headers["accept"] == "application/json"
    assert sent.headers["content-type"] == "application/json"
    assert set(sent.headers) == {"host", "accept", "accept-encoding", "connection", "user-agent", "content-length",
                                 "content-type"}  # fmt: skip


def test_a_cookie_an_answer_sets_is_not_sent_with_the_requests_after_it(hostile: Hostile) -> None:
    """Each case's request is what its file says, whatever answered before it: neither httpx's jar nor aiohttp's
    keeps what an answer's Set-Cookie asks for, so a run's requests do not depend on its order."""
    FAULTS["cookie"] = _head("HTTP/1.1", "Set-Cookie: session=abc123; Path=/", "Set-Cookie: other=1")
    cases = [parse_case({"id": name, "request": TEXT}) for name in ("first", "second", "third")]
    # By a host name too: aiohttp's own jar refuses cookies from an IP address, and would keep this host's.
    for url in (hostile.url("cookie"), hostile.url("cookie").replace("127.0.0.1", "localhost")):
        hostile.requests.clear()
        endpoint = Endpoint("test", url, model="test-model")
        results = asyncio.run(run(cases, [endpoint], Options(timeout=10, deadline=20, concurrency=1), environ={}))
        assert [r.verdict for r in results] == [Verdict.PASS] * 3, [r.findings for r in results]
        assert len(hostile.requests) == 3
        assert not [sent.headers for sent in hostile.requests if "cookie" in sent.headers], url


def test_the_answer_s_http_version_is_the_one_the_server_spoke(hostile: Hostile) -> None:
    FAULTS["http-1.0"] = _head("HTTP/1.0")
    FAULTS["http-1.1"] = _head("HTTP/1.1")
    for version in ("HTTP/1.0", "HTTP/1.1"):
        result = run_case(hostile.url(version.lower().replace("/", "-")), TEXT)
        assert result.verdict is Verdict.PASS, result.findings
        assert result.exchange is not None and result.exchange.response is not None
        assert result.exchange.response.http_version == version


@pytest.mark.parametrize(
    "extra",
    [["X-Long: " + "z" * 90_000], [f"X-Many-{i}: {i}" for i in range(1000)]],
    ids=["one-header-of-90-KB", "a-thousand-headers"],
)
def test_a_head_that_httpx_reads_is_read(hostile: Hostile, extra: list[str]) -> None:
    FAULTS["big-head"] = _head("HTTP/1.1", *extra)
    result = run_case(hostile.url("big-head"), TEXT)
    assert result.verdict is Verdict.PASS, result.findings


def test_the_trace_extension_hears_the_request_written_and_aiohttp_adds_no_header(hostile: Hostile) -> None:
    heard: list[str] = []

    async def trace(name: str, info: Any) -> None:
        heard.append(name)

    async def send() -> httpx.Response:
        async with NetworkClient() as client:
            response = await client.post(hostile.url("ok"), content=b'{"stream": false}', extensions={"trace": trace})
            await response.aread()
            return response

    response = asyncio.run(send())
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"
    assert "http11.send_request_body.complete" in heard
    (sent,) = hostile.requests
    assert "content-type" not in sent.headers, "httpx sends raw bytes without one, and so must aiohttp"
    assert sent.headers["user-agent"].startswith("python-httpx/")


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class _Tls(Hostile):
    """The hostile server behind TLS; the handshake happens on the first read, in the connection's own thread."""

    files: ClassVar[tuple[Path, Path]]

    def __post_init__(self) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*self.files)
        listener = socket.create_server(("127.0.0.1", 0))
        self._listener = context.wrap_socket(listener, server_side=True, do_handshake_on_connect=False)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="hostile-tls", daemon=True)
        self._thread.start()

    def url(self, fault: str) -> str:
        return super().url(fault).replace("http://", "https://")


def test_tls_is_verified_against_the_trust_httpx_reads_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _Tls.files = _certificate(tmp_path)
    server = _Tls()
    try:
        untrusted = run_case(server.url("ok"), TEXT)
        assert [f.code for f in untrusted.findings] == ["transport.connect"]
        assert "certificate verify failed" in untrusted.findings[0].message.lower()
        monkeypatch.setenv("SSL_CERT_FILE", str(_Tls.files[0]))
        trusted = run_case(server.url("ok"), TEXT)
        assert trusted.verdict is Verdict.PASS, trusted.findings
    finally:
        server.close()
