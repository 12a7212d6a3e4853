"""Google's endpoints: URLs built as the docs give them, and google-auth's real credential path, offline.

A local server stands in for both Google's OAuth token endpoint (a service-account key's `token_uri` points
at it) and the chat endpoint (the `host` override), so every request is checked as sent: path, headers, body.
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
from harness.endpoints import GEMINI_API_BASE, build_endpoint, vertex_base_url

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
        project: str, location: str, api_version: str = "v1", *, endpoint_id: str | None = None, host: str | None = None
    ) -> str:
        return original(project, location, api_version, endpoint_id=endpoint_id, host=host or google.url)

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
        f"    host: {google.url}\n"
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
