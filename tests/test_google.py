"""Google's endpoints: URLs built as the docs give them, and google-auth's real credential path, offline.

A local server stands in for both Google's OAuth token endpoint (a service-account key's `token_uri` points
at it) and the chat endpoint (`--api-endpoint`, as Google's client libraries take `api_endpoint`), so every
request is checked as sent: path, headers, body.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from harness.cli import main
from harness.endpoints import GEMINI_API_BASE, Endpoint, api_origin, build_endpoint, vertex_base_url

ANSWER = {
    "id": "chatcmpl-google-test",
    "object": "chat.completion",
    "created": 1,
    "model": "google/gemini-2.5-flash",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "logprobs": None,
            "message": {"role": "assistant", "content": "Hello.", "refusal": None},
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
TOKEN_PREFIX = "ya29.sentinel-token-"
# A Gemini endpoint on Vertex AI's global location, as flags.
GLOBAL_VERTEX = ("--kind", "vertex", "--project", "p", "--location", "global", "--model", "m")


@dataclass
class Google:
    """What the stand-in received, and how it answers token requests."""

    url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    tokens_issued: int = 0
    expires_in: int = 3600
    refuse_tokens: bool = False

    def chat(self) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
        return [(p, h, json.loads(b)) for p, h, b in self.requests if not p.endswith("/token")]


@pytest.fixture
def stand_in() -> Iterator[Google]:
    state = Google()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            with lock:
                state.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            if self.path.endswith("/token"):
                if state.refuse_tokens:
                    self._send(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                    return
                with lock:
                    state.tokens_issued += 1
                    token = f"{TOKEN_PREFIX}{state.tokens_issued}"
                self._send(200, {"access_token": token, "expires_in": state.expires_in, "token_type": "Bearer"})
            else:
                self._send(200, ANSWER)

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()
    server.server_close()


def service_account_key(path: Path, token_uri: str) -> Path:
    """A real service-account key file (fresh RSA key) whose token endpoint is the local stand-in."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "my-proj",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "harness@my-proj.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": token_uri,
            }
        )
    )
    return path


def write_case(folder: Path, body: dict[str, Any] | None = None) -> Path:
    path = folder / "hello.case.yaml"
    request = body or {"model": "${model}", "messages": [{"role": "user", "content": "Say hello."}]}
    path.write_text(json.dumps({"id": "hello", "request": request}))
    return path


def run(tmp_path: Path, *args: str) -> int:
    return main(["run", *args, "--report-dir", str(tmp_path / "report")])


def all_written(tmp_path: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (tmp_path / "report").rglob("*") if p.is_file())


# URLs, exactly as Google documents them


def test_vertex_urls_regional_and_global() -> None:
    assert (
        vertex_base_url("p", "us-central1")
        == "https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/endpoints/openapi"
    )
    assert (
        vertex_base_url("p", "global", "v1beta1")
        == "https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/endpoints/openapi"
    )
    assert (
        vertex_base_url("p", "global", "v1beta1", endpoint_id="123")
        == "https://aiplatform.googleapis.com/v1beta1/projects/p/locations/global/endpoints/123"
    )
    vertex = build_endpoint(
        "v", {"kind": "vertex", "project": "p", "location": "europe-west4", "model": "gemini-2.5-flash"}
    )
    assert (
        vertex.url
        == "https://europe-west4-aiplatform.googleapis.com/v1/projects/p/locations/europe-west4/endpoints/openapi/chat/completions"
    )
    assert (vertex.model, vertex.profile, vertex.credentials) == ("google/gemini-2.5-flash", "vertex", "adc")
    maas = build_endpoint(
        "m", {"kind": "vertex", "project": "p", "location": "us-central1", "model": "meta/llama-3.3-70b-instruct-maas"}
    )
    assert maas.model == "meta/llama-3.3-70b-instruct-maas"
    gemini = build_endpoint("g", {"kind": "gemini-api", "model": "gemini-2.5-flash"})
    assert gemini.url == GEMINI_API_BASE + "/chat/completions"
    assert (gemini.api_key_env, gemini.profile) == ("GEMINI_API_KEY", "gemini-api")
    own = build_endpoint("e", {"kind": "vertex-endpoint", "project": "p", "location": "us-east1", "endpoint_id": "42"})
    assert (own.model, own.profile, own.variables["project"]) == (None, "self-deployed", "p")


def test_vertex_request_with_a_service_account(google: Google, tmp_path: Path) -> None:
    key = service_account_key(tmp_path / "key.json", google.url + "/token")
    code = run(
        tmp_path,
        str(write_case(tmp_path)),
        "--kind",
        "vertex",
        "--project",
        "my-proj",
        "--location",
        "us-central1",
        "--model",
        "gemini-2.5-flash",
        "--credentials",
        str(key),
        "--api-version",
        "v1",
    )
    assert code == 1 or code == 0
    # The chat request is the one Vertex documents; the host is the stand-in's because no network is allowed.
    [(path, headers, body)] = [r for r in google.chat()]
    assert path == "/v1/projects/my-proj/locations/us-central1/endpoints/openapi/chat/completions"
    assert headers["authorization"] == f"Bearer {TOKEN_PREFIX}1"
    assert headers["content-type"] == "application/json"
    assert body == {"model": "google/gemini-2.5-flash", "messages": [{"role": "user", "content": "Say hello."}]}
    assert TOKEN_PREFIX not in all_written(tmp_path)


@pytest.fixture
def google(stand_in: Google, monkeypatch: pytest.MonkeyPatch) -> Google:
    """--kind vertex builds googleapis.com URLs; tests point the same builder at the local stand-in."""
    import harness.endpoints as endpoints

    original = endpoints.vertex_base_url

    def local(
        project: str,
        location: str,
        api_version: str = "v1",
        *,
        endpoint_id: str | None = None,
        api_endpoint: str | None = None,
    ) -> str:
        return original(
            project, location, api_version, endpoint_id=endpoint_id, api_endpoint=api_endpoint or google.url
        )

    google = stand_in
    monkeypatch.setattr(endpoints, "vertex_base_url", local)
    monkeypatch.setattr(endpoints, "GEMINI_API_BASE", google.url + "/v1beta/openai")
    return google


def test_vertex_endpoint_sends_no_model(google: Google, tmp_path: Path) -> None:
    key = service_account_key(tmp_path / "key.json", google.url + "/token")
    code = run(
        tmp_path,
        str(write_case(tmp_path)),
        "--kind",
        "vertex-endpoint",
        "--project",
        "my-proj",
        "--location",
        "global",
        "--endpoint-id",
        "1234567890",
        "--api-version",
        "v1beta1",
        "--credentials",
        str(key),
    )
    assert code in (0, 1)
    [(path, _, body)] = google.chat()
    assert path == "/v1beta1/projects/my-proj/locations/global/endpoints/1234567890/chat/completions"
    assert body == {"messages": [{"role": "user", "content": "Say hello."}]}


def test_gemini_api_key_goes_as_a_bearer_token(google: Google, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-sentinel-key-000111")
    assert run(tmp_path, str(write_case(tmp_path)), "--kind", "gemini-api", "--model", "gemini-2.5-flash") in (0, 1)
    [(path, headers, body)] = google.chat()
    assert path == "/v1beta/openai/chat/completions"
    assert headers["authorization"] == "Bearer AIza-sentinel-key-000111"
    assert body["model"] == "gemini-2.5-flash"
    assert "AIza-sentinel-key-000111" not in all_written(tmp_path)


def test_application_default_credentials_from_a_key_file(
    google: Google, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "GOOGLE_APPLICATION_CREDENTIALS", str(service_account_key(tmp_path / "adc.json", google.url + "/token"))
    )
    run(
        tmp_path,
        str(write_case(tmp_path)),
        "--kind",
        "vertex",
        "--project",
        "p",
        "--location",
        "global",
        "--model",
        "gemini-2.5-flash",
    )
    [(path, headers, _)] = google.chat()
    assert path == "/v1/projects/p/locations/global/endpoints/openapi/chat/completions"
    assert headers["authorization"] == f"Bearer {TOKEN_PREFIX}1"


def three_requests(google: Google, tmp_path: Path, *more: str) -> None:
    """Three cases sent one after another to a Vertex endpoint, with a service-account key."""
    key = service_account_key(tmp_path / "key.json", google.url + "/token")
    cases = tmp_path / "cases"
    cases.mkdir()
    hello = [
        {"id": f"c{i}", "request": {"model": "${model}", "messages": [{"role": "user", "content": f"hi {i}"}]}}
        for i in range(3)
    ]
    (cases / "many.case.yaml").write_text(json.dumps(hello))
    run(
        tmp_path,
        str(cases),
        "--kind",
        "vertex",
        "--project",
        "p",
        "--location",
        "us-central1",
        "--model",
        "m",
        "--credentials",
        str(key),
        "--concurrency",
        "1",
        *more,
    )


def test_a_token_is_refreshed_before_it_expires(google: Google, tmp_path: Path) -> None:
    """Tokens that expire within five minutes are refreshed before the next request, through google-auth."""
    google.expires_in = 120
    three_requests(google, tmp_path)
    sent = [h["authorization"] for _, h, _ in google.chat()]
    assert len(sent) == 3 and len(set(sent)) == 3, "each request needed a fresh token"
    assert google.tokens_issued >= 3
    assert TOKEN_PREFIX not in all_written(tmp_path)


def test_a_long_lived_token_is_reused(google: Google, tmp_path: Path) -> None:
    three_requests(google, tmp_path)
    assert google.tokens_issued == 1 and len(google.chat()) == 3


# A missing or broken credential: exit 2, what was tried, nothing sent


def test_no_application_default_credentials(google: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(
        tmp_path,
        str(write_case(tmp_path)),
        "--kind",
        "vertex",
        "--project",
        "p",
        "--location",
        "global",
        "--model",
        "gemini-2.5-flash",
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "no Application Default Credentials found" in err and "GOOGLE_APPLICATION_CREDENTIALS (not set)" in err
    assert "metadata server" in err and "Traceback" not in err
    assert google.requests == []


def test_a_refused_credential_stops_the_run_before_anything_is_sent(
    google: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    google.refuse_tokens = True
    key = service_account_key(tmp_path / "key.json", google.url + "/token")
    code = run(
        tmp_path,
        str(write_case(tmp_path)),
        *GLOBAL_VERTEX,
        "--credentials",
        str(key),
    )
    err = capsys.readouterr().err
    assert code == 2 and f"credentials file {key}" in err and "invalid_grant" in err
    assert google.chat() == []


def test_a_broken_key_file(google: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "key.json"
    key.write_text("{not json")
    assert (
        run(
            tmp_path,
            str(write_case(tmp_path)),
            *GLOBAL_VERTEX,
            "--credentials",
            str(key),
        )
        == 2
    )
    assert "not a usable Google credentials file" in capsys.readouterr().err
    assert google.requests == []


def test_missing_flags_for_a_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, str(write_case(tmp_path)), "--kind", "vertex", "--model", "m") == 2
    assert "--kind vertex needs --project, --location" in capsys.readouterr().err


def test_a_config_takes_project_and_location_from_the_environment(
    google: Google, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = service_account_key(tmp_path / "key.json", google.url + "/token")
    config = tmp_path / "harness.yaml"
    config.write_text(
        "endpoints:\n"
        "  vertex-flash:\n"
        "    kind: vertex\n"
        "    project: ${env:GOOGLE_CLOUD_PROJECT}\n"
        "    location: ${env:GOOGLE_CLOUD_LOCATION}\n"
        "    model: gemini-2.5-flash\n"
        f"    api_endpoint: {google.url}\n"
        "    credentials: key.json\n"
    )
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-proj")
    monkeypatch.delenv("GOOGLE_CLOUD_LOCATION", raising=False)
    assert run(tmp_path, str(write_case(tmp_path)), "--config", str(config), "--endpoint", "vertex-flash") == 2
    assert (
        f"{config}:5:15: /endpoints/vertex-flash/location: environment variable GOOGLE_CLOUD_LOCATION is not set"
        in capsys.readouterr().err
    )
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", "asia-northeast1")
    assert key.is_file()
    run(tmp_path, str(write_case(tmp_path)), "--config", str(config), "--endpoint", "vertex-flash")
    [(path, _, _)] = google.chat()
    assert path == "/v1/projects/env-proj/locations/asia-northeast1/endpoints/openapi/chat/completions"


# --api-endpoint: Google's documented path on another host, as Google's client libraries take api_endpoint


def endpoint_flags(stand_in: Google, key: Path) -> tuple[str, ...]:
    """A self-deployed model on Vertex AI, moved to the stand-in, with a key file the stand-in mints tokens for."""
    return (
        "--kind",
        "vertex-endpoint",
        "--project",
        "P",
        "--location",
        "L",
        "--endpoint-id",
        "E",
        "--credentials",
        str(key),
        "--api-endpoint",
        stand_in.url,
    )


def test_api_endpoint_sends_the_documented_path_to_a_local_server(stand_in: Google, tmp_path: Path) -> None:
    key = service_account_key(tmp_path / "key.json", stand_in.url + "/token")
    assert run(tmp_path, str(write_case(tmp_path)), *endpoint_flags(stand_in, key)) == 0
    [(path, headers, body)] = stand_in.chat()
    assert path == "/v1/projects/P/locations/L/endpoints/E/chat/completions"
    assert headers["authorization"] == f"Bearer {TOKEN_PREFIX}1", "a token minted by the local token endpoint"
    assert body == {"messages": [{"role": "user", "content": "Say hello."}]}
    assert [p for p, _, _ in stand_in.requests] == ["/token", path]


def test_without_api_endpoint_the_url_is_googles() -> None:
    spec = {"kind": "vertex-endpoint", "project": "P", "location": "L", "endpoint_id": "E"}
    google = build_endpoint("e", spec).url
    moved = build_endpoint("e", {**spec, "api_endpoint": "http://127.0.0.1:8080"}).url
    assert google == "https://L-aiplatform.googleapis.com/v1/projects/P/locations/L/endpoints/E/chat/completions"
    assert moved == "http://127.0.0.1:8080/v1/projects/P/locations/L/endpoints/E/chat/completions"
    gemini = {"kind": "gemini-api", "model": "m"}
    assert build_endpoint("g", gemini).url == GEMINI_API_BASE + "/chat/completions"
    assert build_endpoint("g", {**gemini, "api_endpoint": "localhost:9"}).url == (
        "https://localhost:9/v1beta/openai/chat/completions"
    ), "a bare host means https, as in Google's client libraries"


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1:8080/v1", "http://h/?key=x", "ftp://h", "http://user:pw@h", "http://h:port", ""]
)
def test_api_endpoint_takes_a_scheme_and_host_only(value: str) -> None:
    with pytest.raises(ValueError, match="scheme and host only"):
        api_origin(value)


@pytest.mark.parametrize("value", ["http://127.0.0.1:8080", "https://h/", "europe-west4-aiplatform.googleapis.com"])
def test_api_endpoint_accepts_a_host_or_an_origin(value: str) -> None:
    assert api_origin(value) in ("http://127.0.0.1:8080", "https://h", "https://europe-west4-aiplatform.googleapis.com")


def test_base_url_with_a_google_kind_is_refused(
    stand_in: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = service_account_key(tmp_path / "key.json", stand_in.url + "/token")
    flags = (*GLOBAL_VERTEX, "--credentials", str(key), "--base-url", stand_in.url + "/v1")
    assert run(tmp_path, str(write_case(tmp_path)), *flags) == 2
    err = capsys.readouterr().err
    assert "error: --base-url: --kind vertex builds the URL Google documents" in err
    assert "give --api-endpoint" in err
    assert stand_in.requests == [], "never a silent replacement of the whole URL"


def test_api_endpoint_with_a_path_is_refused(
    stand_in: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = (*GLOBAL_VERTEX, "--api-endpoint", stand_in.url + "/v1", "--dry-run")
    assert run(tmp_path, str(write_case(tmp_path)), *flags) == 2
    assert "error: --api-endpoint: expected a scheme and host only" in capsys.readouterr().err


def test_api_endpoint_is_for_google_kinds_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    flags = ("--base-url", "http://127.0.0.1:9/v1", "--api-endpoint", "http://127.0.0.1:9", "--dry-run")
    assert run(tmp_path, str(write_case(tmp_path)), *flags) == 2
    assert "--api-endpoint: only Google's kinds" in capsys.readouterr().err


def test_a_config_entry_takes_api_endpoint_and_refuses_base_url(
    stand_in: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service_account_key(tmp_path / "key.json", stand_in.url + "/token")
    config = tmp_path / "harness.yaml"
    entry = "".join(
        f"    {line}\n"
        for line in ("kind: vertex-endpoint", "project: P", "location: L", "endpoint_id: E", "credentials: key.json")
    )
    entry = "  own:\n" + entry
    config.write_text(f"endpoints:\n{entry}    base_url: {stand_in.url}/v1\n")
    assert run(tmp_path, str(write_case(tmp_path)), "--config", str(config)) == 2
    err = capsys.readouterr().err
    assert f"{config}:8:15: /endpoints/own/base_url: kind vertex-endpoint builds the URL Google documents" in err
    assert "give api_endpoint" in err and stand_in.requests == []
    config.write_text(f"endpoints:\n{entry}    api_endpoint: {stand_in.url}\n")
    assert run(tmp_path, str(write_case(tmp_path)), "--config", str(config)) == 0
    [(path, _, _)] = stand_in.chat()
    assert path == "/v1/projects/P/locations/L/endpoints/E/chat/completions"


def test_api_endpoint_flag_needs_a_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "harness.yaml"
    config.write_text("endpoints:\n  local:\n    base_url: http://127.0.0.1:9/v1\n")
    assert run(tmp_path, str(write_case(tmp_path)), "--config", str(config), "--api-endpoint", "http://h") == 2
    assert "--api-endpoint: goes with a Google --kind" in capsys.readouterr().err


# --dry-run: each request as it would be sent; nothing is sent, no token is fetched


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a connection fails the test, wherever it comes from."""
    import socket

    def refuse(self: socket.socket, *args: Any) -> None:
        raise AssertionError(f"a dry run opened a connection to {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


def both_ways_case(folder: Path) -> Path:
    path = folder / "both.case.yaml"
    request = {"model": "${model}", "messages": [{"role": "user", "content": "Say hello."}]}
    path.write_text(json.dumps({"id": "both", "both_ways": True, "request": request}))
    return path


@pytest.mark.usefixtures("no_connections")
def test_dry_run_prints_each_request_and_sends_nothing(
    stand_in: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = service_account_key(tmp_path / "key.json", stand_in.url + "/token")
    assert run(tmp_path, str(both_ways_case(tmp_path)), *endpoint_flags(stand_in, key), "--dry-run") == 0
    out = capsys.readouterr().out
    url = f"POST {stand_in.url}/v1/projects/P/locations/L/endpoints/E/chat/completions"
    assert out.count(url) == 2, "the plain and the streamed request of a both-ways case"
    assert "# both[cli]  " in out and "# both[cli][stream]  " in out
    assert out.count(f"Authorization: Bearer <redacted: token from key file {key}>") == 2
    assert "accept: application/json" in out and "accept: text/event-stream" in out
    assert '{\n  "messages": [\n    {\n      "role": "user",' in out, "the body, indented"
    assert '  "stream": true\n}' in out
    assert stand_in.requests == [] and stand_in.tokens_issued == 0
    assert not (tmp_path / "report").exists(), "a dry run writes no report"


@pytest.mark.usefixtures("no_connections")
@pytest.mark.parametrize("adc", [False, True])
def test_dry_run_names_application_default_credentials_without_looking_for_them(
    stand_in: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, adc: bool
) -> None:
    """With no ADC a run would stop (exit 2); with ADC it would mint a token: a dry run does neither."""
    if adc:
        key = service_account_key(tmp_path / "adc.json", stand_in.url + "/token")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    assert run(tmp_path, str(write_case(tmp_path)), *GLOBAL_VERTEX, "--dry-run") == 0
    out = capsys.readouterr().out
    assert (
        "POST https://aiplatform.googleapis.com/v1/projects/p/locations/global/endpoints/openapi/chat/completions"
        in out
    )
    assert "Authorization: Bearer <redacted: token from Application Default Credentials>" in out
    assert '"model": "google/m"' in out
    assert stand_in.requests == [], "no token request"


@pytest.mark.usefixtures("no_connections")
def test_dry_run_of_an_endpoint_without_a_credential_and_of_a_missing_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = ("--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--dry-run")
    assert run(tmp_path, str(write_case(tmp_path)), *plain) == 0
    out = capsys.readouterr().out
    assert "POST http://127.0.0.1:9/v1/chat/completions" in out and "Authorization" not in out
    missing = tmp_path / "gone.json"
    assert run(tmp_path, str(write_case(tmp_path)), *GLOBAL_VERTEX, "--credentials", str(missing), "--dry-run") == 2
    assert f"credentials file {missing} does not exist" in capsys.readouterr().err


def test_the_same_flags_without_dry_run_send(stand_in: Google, tmp_path: Path) -> None:
    key = service_account_key(tmp_path / "key.json", stand_in.url + "/token")
    assert run(tmp_path, str(both_ways_case(tmp_path)), *endpoint_flags(stand_in, key)) in (0, 1)
    assert stand_in.tokens_issued == 1 and len(stand_in.chat()) == 2


def test_dry_run_names_the_key_variable_and_never_shows_its_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    gemini = ("--kind", "gemini-api", "--model", "gemini-2.5-flash", "--dry-run")
    assert run(tmp_path, str(write_case(tmp_path)), *gemini) == 2, "a missing variable is the usual usage error"
    assert "the API key variable GEMINI_API_KEY is not set" in capsys.readouterr().err
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-sentinel-key-000111")
    monkeypatch.setenv("TEAM_TOKEN", "team-sentinel-222")
    echo = {"model": "${model}", "messages": [{"role": "user", "content": "${env:GEMINI_API_KEY}"}]}
    assert run(tmp_path, str(write_case(tmp_path, echo)), *gemini, "--header", "X-Goog-Api-Key: header-sentinel") == 0
    out = capsys.readouterr().out
    assert "POST https://generativelanguage.googleapis.com/v1beta/openai/chat/completions" in out
    assert "Authorization: Bearer <redacted: $GEMINI_API_KEY>" in out
    assert "x-goog-api-key: [redacted]" in out and '"content": "[redacted]"' in out
    assert "sentinel" not in out
    vertex = (*GLOBAL_VERTEX, "--api-key-env", "TEAM_TOKEN", "--dry-run")
    assert run(tmp_path, str(write_case(tmp_path)), *vertex) == 0
    assert "Authorization: Bearer <redacted: $TEAM_TOKEN>" in capsys.readouterr().out


def test_dry_run_does_not_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, str(write_case(tmp_path)), "--replay", str(tmp_path), "--dry-run") == 2
    assert "--dry-run: shows what would be sent to an endpoint" in capsys.readouterr().err


# "reproduce with": the credential as a shell gets it, never its value


@pytest.mark.parametrize(
    ("settings", "header"),
    [
        ({"kind": "vertex", "project": "p", "location": "global", "model": "m"}, "$(gcloud auth print-access-token)"),
        (
            {"kind": "vertex-endpoint", "project": "p", "location": "l", "endpoint_id": "1", "credentials": "/k.json"},
            "$(gcloud auth print-access-token)",
        ),
        ({"kind": "gemini-api", "model": "m"}, "$GEMINI_API_KEY"),
        ({"kind": "gemini-api", "model": "m", "api_key_env": "MY_KEY"}, "$MY_KEY"),
        ({"kind": "vertex", "project": "p", "location": "l", "model": "m", "access_token_env": "TOK"}, "$TOK"),
        ({"base_url": "http://127.0.0.1:9/v1", "api_key_env": "OPENAI_API_KEY"}, "$OPENAI_API_KEY"),
    ],
)
def test_the_curl_line_carries_the_credential_as_a_shell_gets_it(settings: dict[str, str], header: str) -> None:
    endpoint = build_endpoint("e", settings)
    assert reproduce_lines(endpoint)[-1].count(f' -H "Authorization: Bearer {header}" ') == 1


def test_the_curl_line_of_an_endpoint_without_a_credential_has_no_authorization() -> None:
    assert "Authorization" not in reproduce_lines(build_endpoint("e", {"base_url": "http://127.0.0.1:9/v1"}))[-1]


def reproduce_lines(endpoint: Endpoint) -> list[str]:
    from harness.models import Exchange, Result, SentRequest, Timings, Verdict
    from harness.report import RunInfo
    from harness.report.failure import reproduce

    sent = SentRequest(method="POST", url=endpoint.url, headers={}, body={"messages": []})
    result = Result(
        case_id="c",
        endpoint=endpoint.name,
        verdict=Verdict.FAIL,
        file="c.case.yaml",
        exchange=Exchange(request=sent, response=None, timings=Timings(started="2026-01-01T00:00:00Z")),
    )
    info = RunInfo(run_id="r", started="", finished="", duration_s=0, harness_version="0", endpoints=(endpoint,))
    return reproduce(result, info)


def test_a_failing_vertex_case_is_reproduced_with_gcloud(
    stand_in: Google, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = service_account_key(tmp_path / "key.json", stand_in.url + "/token")
    case = tmp_path / "goodbye.case.yaml"
    request = {"messages": [{"role": "user", "content": "Say goodbye."}]}
    case.write_text(json.dumps({"id": "goodbye", "request": request, "expect": {"content_matches": "^Goodbye"}}))
    assert run(tmp_path, str(case), *endpoint_flags(stand_in, key)) == 1
    out = capsys.readouterr().out
    url = f"{stand_in.url}/v1/projects/P/locations/L/endpoints/E/chat/completions"
    assert (
        f"curl -sS {url} -H 'content-type: application/json'"
        ' -H "Authorization: Bearer $(gcloud auth print-access-token)"' in out
    )
    assert f"--api-endpoint {stand_in.url}" in out, "the harness line moves the endpoint again"
    assert TOKEN_PREFIX not in out + all_written(tmp_path)


# Proxies: google-auth refreshes tokens through requests, which honours the proxy variables


def closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("bypassed", [False, True])
def test_the_token_refresh_honours_the_proxy_variables(
    stand_in: Google,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    bypassed: bool,
) -> None:
    """The key file's token endpoint does not exist; only the proxy (the stand-in) can answer for it."""
    token_uri = f"http://127.0.0.1:{closed_port()}/token"
    key = service_account_key(tmp_path / "key.json", token_uri)
    for name in ("http_proxy", "https_proxy", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", stand_in.url)
    if bypassed:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    code = run(tmp_path, str(write_case(tmp_path)), *endpoint_flags(stand_in, key))
    if bypassed:
        assert code == 2 and "cannot get an access token" in capsys.readouterr().err
        assert stand_in.requests == []
    else:
        assert code == 0
        assert stand_in.requests[0][0] == token_uri, "the token request went through the proxy"
        [(path, _, _)] = stand_in.chat()
        assert path.endswith("/v1/projects/P/locations/L/endpoints/E/chat/completions")
