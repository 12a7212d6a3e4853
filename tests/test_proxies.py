"""Proxies: a live run honours HTTP_PROXY and NO_PROXY as httpx does by default; a replay never reads them."""

from __future__ import annotations

import asyncio
import http.client
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harness.cases import parse_case
from harness.endpoints import Endpoint
from harness.engine import run
from harness.models import Result, Verdict
from harness.recordings import load_recordings
from harness.sending import Options
from tests.conftest import run_case
from tests.servers import Server
from tests.test_checks import TEXT

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}


class _Forwarding(http.server.BaseHTTPRequestHandler):
    """Forwards an absolute-form request (what a client sends to an HTTP proxy) and relays the whole answer."""

    protocol_version = "HTTP/1.1"
    server: _ProxyServer

    def do_POST(self) -> None:
        target = urlsplit(self.path)
        self.server.seen.append(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream = http.client.HTTPConnection(target.hostname or "", target.port, timeout=30)
        try:
            upstream.request(self.command, target.path + (f"?{target.query}" if target.query else ""), body, headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        self.send_response_only(answer.status)  # no Server or Date of its own: the endpoint's are relayed
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read `seen` instead."""


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.seen: list[str] = []
        super().__init__(("127.0.0.1", 0), _Forwarding)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def proxy() -> Iterator[_ProxyServer]:
    running = _ProxyServer()
    thread = threading.Thread(target=running.serve_forever, name="test-proxy", daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()
        thread.join()


def _run(server: Server, tmp_path: Path, **kwargs: Any) -> list[Result]:
    cases = [
        parse_case({"id": "plain", "request": TEXT}),
        parse_case({"id": "streamed", "request": {**TEXT, "stream": True}}),
    ]
    endpoints = [Endpoint("local", server.url("ok"), model="m")]
    return asyncio.run(run(cases, endpoints, Options(timeout=10, deadline=20), environ={}, **kwargs))


def test_the_tests_see_no_proxy_of_the_machine_they_run_on() -> None:
    assert not [name for name in os.environ if name.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")]


def test_a_live_run_goes_through_http_proxy(
    server: Server, proxy: _ProxyServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    results = _run(server, tmp_path)
    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.PASS], [r.findings for r in results]
    assert proxy.seen == [server.url("ok") + "/chat/completions"] * 2


def test_a_host_named_in_no_proxy_is_reached_directly(
    server: Server, proxy: _ProxyServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    results = _run(server, tmp_path)
    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.PASS], [r.findings for r in results]
    assert proxy.seen == []


def test_a_proxy_that_cannot_be_reached_is_a_connect_error(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    with _ProxyServer() as closed:  # bound, then closed: nothing listens on its port any more
        dead = closed.url
    monkeypatch.setenv("HTTP_PROXY", dead)
    result = run_case(server.url("ok"), TEXT)
    assert [f.code for f in result.findings] == ["transport.connect"]


def test_a_recording_made_through_the_proxy_holds_what_a_direct_one_holds(
    server: Server, proxy: _ProxyServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _run(server, tmp_path, record=tmp_path / "direct")
    assert proxy.seen == []
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    _run(server, tmp_path, record=tmp_path / "proxied")
    assert len(proxy.seen) == 2, "a recording run sends live, so it goes where a live run goes"
    direct, proxied = load_recordings(tmp_path / "direct"), load_recordings(tmp_path / "proxied")
    assert direct.keys() == proxied.keys() == {("local", "plain"), ("local", "streamed")}
    for key, recording in proxied.items():
        assert recording.request == direct[key].request
        assert recording.status == direct[key].status == 200
        assert not [name for name, _ in recording.headers if name.startswith("proxy-")]


def test_a_replay_reads_no_proxy_from_the_environment(
    server: Server, proxy: _ProxyServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    recorded = _run(server, tmp_path, record=tmp_path / "rec")
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    replayed = _run(server, tmp_path, replay=load_recordings(tmp_path / "rec"))
    assert [r.verdict for r in replayed] == [r.verdict for r in recorded] == [Verdict.PASS, Verdict.PASS]
    assert proxy.seen == []
