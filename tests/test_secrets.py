"""Secrets in every form never reach a file or the console, and redaction leaves ordinary text alone.

The secret-scan tests run `harness run --record` against a hostile local endpoint that echoes the key in every
way it can (plain, split across deltas and across writes, `\\u`-escaped, percent-encoded, in headers, in an
error, in a redirect), then scan every byte written and printed for each secret in every form a reader could
decode it from; then replay the recordings and scan again. The scan decodes on its own (it does not use the
harness's redactor), so a form the redactor misses is a failing test, not a blind spot shared by both.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import http.server
import itertools
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
import yaml

from harness.cases import parse_case
from harness.dryrun import dry_run
from harness.endpoints import Endpoint
from harness.recordings import Chunk, Recording, load_recordings, redact_chunks
from harness.redact import REDACTED, Redactor, sensitive_header
from harness.streams import read_excerpt, read_stream
from harness.transport import EXTENSION, RecordingTransport, ReplayTransport, StaleRecording
from tests.conftest import Outcome

KEY = "sk-scan-7Hq2Lx9Vb4Nw6Tz1"  # the API key (--api-key-env SCAN_KEY)
OTHER = "tok-extra-5Rk8Pm3Jd0Wq"  # a token the case itself sends (--redact-env OTHER_TOKEN)
PROJECT = "acme-prod-4471"  # not a secret, but not to be published (--redact)
QUERY_KEY = "qk-9Zt4Vm2Lp8Xc"  # a key in the base URL's query: found by its place, not configured
SECRETS = (KEY, OTHER, PROJECT, QUERY_KEY)


# --- what a reader could decode a secret from ------------------------------------------------------------------


def _json_unescaped(text: str) -> str:
    """`\\uXXXX` (surrogate pairs joined), `\\/` and `\\"` decoded, however many backslashes precede them."""

    def pair(match: re.Match[str]) -> str:
        high, low = int(match.group(1), 16), int(match.group(2), 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))

    text = re.sub(r"\\+u(d[89ab][0-9a-f]{2})\\+u(d[c-f][0-9a-f]{2})", pair, text, flags=re.IGNORECASE)
    text = re.sub(r"\\+u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return re.sub(r"\\+([/\"\\])", r"\1", text)


def _views(text: str) -> list[str]:
    """The text (also with its whitespace taken out, as a console wraps long lines), and what JSON and URL
    decoding (once, twice, in either order) make of it."""
    views = [text, re.sub(r"\s+", "", text)]
    for _ in range(2):
        views += [_json_unescaped(v) for v in views] + [unquote(v) for v in views]
    return views


def leaks(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    """The secrets `text` holds in any form it may be decoded from."""
    return sorted({s for view in _views(text) for s in secrets if s in view})


def _stored_bytes(path: Path) -> list[str]:
    """A file's text, and for a recording also the bytes it stores as base64 (chunks that are not UTF-8)."""
    raw = path.read_bytes()
    texts = [raw.decode("utf-8", errors="replace")]
    if path.suffix == ".yaml":

        def walk(value: Any) -> Iterator[str]:
            if isinstance(value, dict):
                for key, item in value.items():
                    if key == "base64" and isinstance(item, str):
                        yield base64.b64decode(item).decode("utf-8", errors="replace")
                    else:
                        yield from walk(item)
            elif isinstance(value, list):
                for item in value:
                    yield from walk(item)

        document = yaml.safe_load(texts[0])
        texts += list(walk(document))
        texts.append("".join(walk(document)))  # chunks joined, as replay joins them
    return texts


def scan(*places: Path | str) -> dict[str, list[str]]:
    """{file or output: the secrets it leaks}, for every file under the folders and every string given."""
    found: dict[str, list[str]] = {}
    for place in places:
        if isinstance(place, Path):
            for path in sorted(p for p in place.rglob("*") if p.is_file()):
                if leaked := sorted({s for text in _stored_bytes(path) for s in leaks(text)}):
                    found[str(path)] = leaked
        elif leaked := leaks(place):
            found[f"output: {place[:80]!r}..."] = leaked
    return found


def test_the_scan_itself_finds_every_form() -> None:
    """The scan must see what the redactor must hide, or a passing scan proves nothing."""
    escaped = "".join(f"\\u{ord(c):04X}" for c in KEY)
    for form in (
        KEY,
        json.dumps({"k": KEY}, ensure_ascii=True),
        escaped,
        escaped.replace("\\", "\\\\"),  # JSON inside JSON
        quote(KEY, safe=""),
        "".join(f"%{b:02x}" for b in KEY.encode()),
        quote(quote(KEY, safe=""), safe=""),
    ):
        assert leaks(f"x {form} y") == [KEY], form
    assert leaks(f"{KEY[:9]} and {KEY[9:]}") == []
    assert leaks(REDACTED) == []


# --- the hostile endpoint --------------------------------------------------------------------------------------

UTF8_WORD = "clé"


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-scan",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-scan",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()


def _escaped(text: str, every: int = 1) -> str:
    """`text` with every `every`-th character written as a JSON `\\u` escape (the others as they are)."""
    return "".join(f"\\u{ord(c):04x}" if i % every == 0 else c for i, c in enumerate(text))


def _percent(text: str) -> str:
    return "".join(f"%{b:02X}" for b in text.encode())


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Hostile:
    url: str
    seen: list[Seen] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers by the first word of the last message: each word is one way of echoing what the request carried."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.hostile.seen.append(Seen(self.path, headers, body))
        key = headers.get("authorization", "").removeprefix("Bearer ")
        self.shown_as = f"hostile/{key}"  # the Server header, as `version_string` gives it
        mode = json.loads(body)["messages"][-1]["content"].split()[0]
        getattr(self, "_" + mode.replace("-", "_"))(key, body)

    def version_string(self) -> str:
        return getattr(self, "shown_as", "hostile")

    def _send(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in [*headers, ("content-length", str(len(body)))]:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, text: str, headers: list[tuple[str, str]] | None = None) -> None:
        self._send(status, text.encode(), [("content-type", "application/json"), *(headers or [])])

    def _stream(self, writes: list[bytes]) -> None:
        """Each write flushed on its own, with a pause, so the client reads them as separate chunks."""
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.wfile.flush()
        for data in writes:
            self.wfile.write(data)
            self.wfile.flush()
            time.sleep(0.03)
        self.close_connection = True

    def _plain(self, key: str, body: bytes) -> None:
        self._json(
            200,
            json.dumps(_completion(f"the key is {key}.")),
            [
                ("x-echo-key", key),  # a non-standard name that says it holds a key
                ("x-debug", f"seen bearer {key} from client"),  # a non-standard name that does not
                ("x-request-id", "req-plain-1"),
            ],
        )

    def _escaped(self, key: str, body: bytes) -> None:
        text = json.dumps(_completion("KEY1 and KEY2")).replace("KEY1", _escaped(key)).replace("KEY2", _escaped(key, 2))
        self._json(200, text, [("x-escaped", _escaped(key))])

    def _percent(self, key: str, body: bytes) -> None:
        content = f"see https://example.com/cb?state={quote(key, safe='')}&x=1 and {_percent(key)}"
        self._json(200, json.dumps(_completion(content)), [("link", f"<https://example.com/?k={_percent(key)}>")])

    def _error(self, key: str, body: bytes) -> None:
        message = f"Incorrect API key provided: {key}. Escaped: {_escaped(key)}."
        error = {"error": {"message": "MESSAGE", "type": "invalid_request_error", "code": "invalid_api_key"}}
        text = json.dumps(error).replace("MESSAGE", message.replace("\\", "\\\\"))
        self._json(401, text, [("www-authenticate", f'Bearer error="invalid_token", token="{key}"')])

    def _redirect(self, key: str, body: bytes) -> None:
        self._send(
            307,
            f"<a href='http://127.0.0.1:1/v1?api_key={key}'>moved</a>".encode(),
            [
                ("content-type", "text/html"),
                ("location", f"http://127.0.0.1:1/v1/chat/completions?api_key={key}"),
                ("content-location", f"http://scan:{key}@127.0.0.1:1/v1"),
            ],
        )

    def _stream_deltas(self, key: str, body: bytes) -> None:
        self._stream(
            [
                _event({"role": "assistant", "content": ""})
                + _event({"content": "the key is "})
                + _event({"content": key[:9]}),
                _event({"content": key[9:]}) + _event({"content": "."}),
                _event({}, "stop") + b"data: [DONE]\n\n",
            ]
        )

    def _stream_bytes(self, key: str, body: bytes) -> None:
        data = (
            _event({"role": "assistant", "content": ""})
            + f'data: {{"id":"chatcmpl-scan","object":"chat.completion.chunk","created":1,"model":"m","choices":'
            f'[{{"index":0,"delta":{{"content":"{UTF8_WORD} {key} {UTF8_WORD}"}},"finish_reason":null}}]}}\n\n'.encode()
            + _event({}, "stop")
            + b"data: [DONE]\n\n"
        )
        in_key = data.index(key.encode()) + 7
        in_char = data.rindex(UTF8_WORD.encode()) + 3  # between the two bytes of "é"
        self._stream([data[:in_key], data[in_key:in_char], data[in_char:]])

    def _stream_escaped(self, key: str, body: bytes) -> None:
        whole = _event({"content": "ESCAPED"}).replace(b"ESCAPED", _escaped(key).encode())
        halves = _event({"content": "HALF1"}).replace(b"HALF1", _escaped(key[:6]).encode()) + _event(
            {"content": "HALF2"}
        ).replace(b"HALF2", _escaped(key[6:], 3).encode())
        self._stream([_event({"role": "assistant", "content": ""}) + whole, halves, b"data: [DONE]\n\n"])

    def _echo_request(self, key: str, body: bytes) -> None:
        """The request as received (path, query, the case's own header and body), as an unwary proxy echoes it."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        content = f"{self.path} token={headers.get('x-custom-token')} trace={headers.get('x-trace')} {body.decode()}"
        self._json(200, json.dumps(_completion(content)), [("x-echo-custom", headers.get("x-custom-token", ""))])


class _Server(http.server.ThreadingHTTPServer):
    hostile: Hostile


@pytest.fixture(scope="module")
def hostile() -> Iterator[Hostile]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.hostile = Hostile(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.hostile
    finally:
        server.shutdown()
        server.server_close()


MODES = ("plain", "escaped", "percent", "error", "redirect", "stream-deltas", "stream-bytes", "stream-escaped")


def _cases(folder: Path) -> tuple[Path, Path]:
    """The hostile cases (one per way of echoing), and the case that carries secrets in its own request."""
    echoes = [
        {
            "id": mode,
            "request": {
                "model": "${model}",
                "messages": [{"role": "user", "content": f"{mode} please"}],
                **({"stream": True} if mode.startswith("stream") else {}),
            },
        }
        for mode in MODES
    ]
    own = {
        "id": "echo-request",
        "headers": {"X-Custom-Token": "${env:OTHER_TOKEN}", "X-Trace": "${env:OTHER_TOKEN}"},
        "request": {
            "model": "${model}",
            "messages": [
                {
                    "role": "user",
                    "content": f"echo-request key=${{env:SCAN_KEY}} other=${{env:OTHER_TOKEN}} in {PROJECT}",
                }
            ],
            "metadata": {"escaped": "${env:OTHER_TOKEN}"},
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "hostile.case.yaml").write_text(yaml.safe_dump(echoes), encoding="utf-8")
    (folder / "own.case.yaml").write_text(yaml.safe_dump(own), encoding="utf-8")
    return folder / "hostile.case.yaml", folder / "own.case.yaml"


@pytest.fixture
def secrets_in_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCAN_KEY", KEY)
    monkeypatch.setenv("OTHER_TOKEN", OTHER)


def _results(report: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((report / "results.json").read_text(encoding="utf-8"))
    return {r["id"]: r for r in document["results"]}


@pytest.mark.usefixtures("secrets_in_environment")
def test_a_hostile_endpoint_cannot_make_the_harness_publish_a_secret(
    hostile: Hostile, tmp_path: Path, harness: Callable[..., Outcome]
) -> None:
    echoes, own = _cases(tmp_path / "cases")
    flags = ("--base-url", f"{hostile.url}/v1", "--model", "m", "--api-key-env", "SCAN_KEY")
    secret_flags = ("--redact-env", "OTHER_TOKEN", "--redact", PROJECT)
    recordings, report = tmp_path / "recordings", tmp_path / "report"
    before = len(hostile.seen)

    live = harness("run", echoes, own, *flags, *secret_flags, "--record", recordings, "--report-dir", report, "-v")

    assert live.code == 1, live.out + live.err
    seen = hostile.seen[before:]
    assert len(seen) == len(MODES) + 1, "every case reached the endpoint"
    assert all(s.headers["authorization"] == f"Bearer {KEY}" for s in seen), "the real key was sent"
    own_request = next(s for s in seen if b"echo-request" in s.body)
    assert own_request.headers["x-custom-token"] == OTHER and KEY.encode() in own_request.body
    assert PROJECT.encode() in own_request.body
    assert scan(report, recordings, live.out, live.err) == {}

    # The secrets are gone, and what was around them is still there.
    results = _results(report)
    assert results["plain"]["exchange"]["response"]["body"]["choices"][0]["message"]["content"] == (
        f"the key is {REDACTED}."
    )
    headers = results["plain"]["exchange"]["response"]["headers"]
    assert headers["x-echo-key"] == REDACTED and headers["x-debug"] == f"seen bearer {REDACTED} from client"
    assert headers["x-request-id"] == "req-plain-1"
    escaped = results["escaped"]["exchange"]["response"]["body"]["choices"][0]["message"]["content"]
    assert escaped == f"{REDACTED} and {REDACTED}"
    location = results["redirect"]["exchange"]["response"]["headers"]["location"]
    assert location == f"http://127.0.0.1:1/v1/chat/completions?api_key={REDACTED}"
    assembled = results["stream-deltas"]["exchange"]["stream"]["assembled"]["choices"][0]["message"]["content"]
    assert assembled == f"the key is {REDACTED}."
    assembled = results["stream-bytes"]["exchange"]["stream"]["assembled"]["choices"][0]["message"]["content"]
    assert assembled == f"{UTF8_WORD} {REDACTED} {UTF8_WORD}"
    sent = results["echo-request"]["exchange"]["request"]
    assert sent["headers"]["x-custom-token"] == REDACTED and sent["headers"]["x-trace"] == REDACTED
    assert sent["body"]["messages"][0]["content"] == f"echo-request key={REDACTED} other={REDACTED} in {REDACTED}"

    # The recordings keep the chunks with their times (how the writes were cut depends on timing, so how many
    # chunks arrived is not asserted: the unit tests below cut them deterministically).
    stored = load_recordings(recordings)
    cut = stored[("cli", "stream-bytes")]
    assert f"{UTF8_WORD} {REDACTED} {UTF8_WORD}".encode() in cut.body
    assert [c.at_ms for c in cut.chunks] == sorted(c.at_ms for c in cut.chunks)
    assert stored[("cli", "plain")].provenance["server"] == f"hostile/{REDACTED}"

    # Replayed as recorded (the same flags), then with nothing configured at all: nothing comes back.
    replayed = tmp_path / "replayed"
    again = harness("run", echoes, own, *flags, *secret_flags, "--redact-env", "SCAN_KEY", "--replay", recordings,
                    "--report-dir", replayed, "-v")  # fmt: skip
    assert again.code == 1, again.out + again.err
    assert not any(f["code"] == "replay.stale" for r in _results(replayed).values() for f in r["findings"])
    bare = tmp_path / "bare"
    alone = harness("run", echoes, "--replay", recordings, "--report-dir", bare, "-v")
    assert alone.code == 1, alone.out + alone.err
    assert scan(replayed, bare, again.out, again.err, alone.out, alone.err) == {}
    assert _results(bare)["stream-deltas"]["exchange"]["stream"]["assembled"]["choices"][0]["message"]["content"] == (
        f"the key is {REDACTED}."
    )


@pytest.mark.usefixtures("secrets_in_environment")
def test_a_dry_run_prints_no_secret(tmp_path: Path, harness: Callable[..., Outcome]) -> None:
    _, own = _cases(tmp_path / "cases")
    base_url = f"http://scan:pass-{OTHER}@127.0.0.1:9/projects/{PROJECT}/v1?key={QUERY_KEY}"
    outcome = harness(
        "run",
        own,
        "--base-url",
        base_url,
        "--model",
        "m",
        "--api-key-env",
        "SCAN_KEY",
        "--redact-env",
        "OTHER_TOKEN",
        "--redact",
        PROJECT,
        "--header",
        "X-Service-Key: svc-7Yq3Kd8Nw2Pz",
        "--dry-run",
    )
    assert outcome.code == 0, outcome.err
    assert scan(outcome.out, outcome.err) == {} and "svc-7Yq3Kd8Nw2Pz" not in outcome.out
    assert "Authorization: Bearer <redacted: $SCAN_KEY>" in outcome.out
    assert f"x-service-key: {REDACTED}" in outcome.out and f"x-custom-token: {REDACTED}" in outcome.out
    assert f"POST http://{REDACTED}@127.0.0.1:9/projects/{REDACTED}/v1/chat/completions?key={REDACTED}" in outcome.out
    assert f'"content": "echo-request key={REDACTED} other={REDACTED} in {REDACTED}"' in outcome.out
    assert '"model": "m"' in outcome.out, "what is not secret is shown as it is"


def test_dry_run_redacts_a_key_written_with_escapes_in_a_raw_body() -> None:
    raw = '{"messages": [{"role": "user", "content": "' + _escaped(KEY, 2) + ' and plain text"}]}'
    case = parse_case({"id": "raw", "raw_body": raw})
    out = dry_run([case], [Endpoint("e", "http://127.0.0.1:9/v1")], extra_secrets=[KEY])
    assert leaks(out) == [] and f'"content": "{REDACTED} and plain text"' in out


def test_redact_refuses_a_value_too_short_to_redact_without_echoing_it(
    harness: Callable[..., Outcome], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = harness("run", "--base-url", "http://127.0.0.1:9/v1", "--redact", "xyz", "--dry-run")
    assert outcome.code == 2 and "--redact: a value of 3 characters is too short" in outcome.err
    assert "xyz" not in outcome.out + outcome.err
    assert "--redact VALUE" in harness("fuzz", "--help").out


# --- the redactor both ways --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        KEY,
        _escaped(KEY),
        _escaped(KEY).upper().replace("\\U", "\\u"),
        _escaped(KEY, 3),
        _escaped(KEY).replace("\\", "\\\\"),
        quote(KEY, safe=""),
        _percent(KEY),
        _percent(KEY).lower(),
        quote(_percent(KEY), safe=""),
        KEY[:5] + _escaped(KEY[5:9]) + _percent(KEY[9:]),
    ],
)
def test_a_secret_is_redacted_in_every_form_it_decodes_from(form: str) -> None:
    redactor = Redactor([KEY])
    assert redactor.text(f"before {form} after") == f"before {REDACTED} after"
    assert redactor.data(f"before {form} after".encode()) == f"before {REDACTED} after".encode()


def test_a_secret_outside_the_basic_plane_is_found_as_a_surrogate_pair() -> None:
    secret = "pass-🎒-日本-phrase"
    redactor = Redactor([secret])
    assert redactor.text(json.dumps({"k": secret}, ensure_ascii=True)) == json.dumps({"k": REDACTED})
    assert redactor.data(quote(secret).encode()) == REDACTED.encode()


def test_text_without_a_secret_is_left_exactly_as_it_was() -> None:
    redactor = Redactor([KEY, PROJECT])
    ordinary = 'sk-scan is a prefix; %73 and \\u0073 alone; acme-prod and 4471; {"a": "b"}\n'
    assert redactor.text(ordinary) == ordinary
    assert redactor.data(ordinary.encode()) == ordinary.encode()
    assert redactor.text(KEY[:-1]) == KEY[:-1], "a secret is redacted whole, not a prefix of it"


def test_a_short_value_is_redacted_only_as_a_whole_word() -> None:
    redactor = Redactor(["proj"])
    text = "proj, project myproj proj-1 (proj) xproj"
    assert redactor.text(text) == f"{REDACTED}, project myproj {REDACTED}-1 ({REDACTED}) xproj"
    assert redactor.text("%70roj and \\u0070roj") == f"{REDACTED} and {REDACTED}"
    # Where the raw text hides a word boundary behind an escape, it is redacted as its decoded form would be.
    assert redactor.text("x\\u0020proj") == f"x\\u0020{REDACTED}"


def test_a_value_too_short_to_be_a_secret_is_never_redacted() -> None:
    redactor = Redactor(["abc", "", REDACTED[1:-1]])
    assert redactor.text("abc abcd redacted") == "abc abcd redacted"
    assert not redactor.active


def test_urls_lose_their_credentials_and_keep_the_rest() -> None:
    redactor = Redactor()
    url = f"https://user:{OTHER}@host/v1/chat?api-version=2024-06-01&key={QUERY_KEY}&max_tokens=5&access_token=ab"
    assert redactor.url(url) == (
        f"https://{REDACTED}@host/v1/chat?api-version=2024-06-01&key={REDACTED}&max_tokens=5&access_token={REDACTED}"
    )
    # What the URL carried is a secret from then on (an error message may quote it), unless too short to be one.
    assert redactor.text(f"{OTHER} {QUERY_KEY} ab user") == f"{REDACTED} {REDACTED} ab user"
    plain = "https://api.example.com/v1/chat/completions?api-version=2024-06-01"
    assert Redactor().url(plain) == plain


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("X-Auth-Token", True),
        ("x-my-service-key", True),
        ("X-Amz-Security-Token", True),
        ("x-api-key", True),
        ("Set-Cookie", True),
        ("x-ratelimit-remaining-tokens", False),
        ("x-request-id", False),
        ("content-type", False),
        ("www-authenticate", False),
        ("x-goog-user-project", False),
        ("Proxy-Authorization", True),
        ("access-control-allow-headers", False),
        ("access-control-allow-credentials", False),
    ],
)
def test_a_header_is_a_credential_by_its_name(name: str, secret: bool) -> None:
    assert sensitive_header(name) is secret


def test_headers_hide_credentials_and_secrets_and_keep_everything_else() -> None:
    redactor = Redactor([KEY])
    shown = redactor.headers(
        [
            ("X-Session-Token", OTHER),
            ("X-Echo", f"Bearer {_escaped(KEY)}"),
            ("Location", f"https://h/cb?token={QUERY_KEY}&state=ok"),
            ("x-ratelimit-remaining-tokens", "29000"),
            ("Server", "uvicorn"),
        ]
    )
    assert shown == {
        "x-session-token": REDACTED,
        "x-echo": f"Bearer {REDACTED}",
        "location": f"https://h/cb?token={REDACTED}&state=ok",
        "x-ratelimit-remaining-tokens": "29000",
        "server": "uvicorn",
    }
    assert redactor.text(f"echoed {OTHER}") == f"echoed {REDACTED}", "a credential sent by name is a secret"
    redactor.headers([("Set-Cookie", "sid=9f8e7d6c5b4a; Path=/; HttpOnly"), ("Authorization", f"Bearer {QUERY_KEY}")])
    assert redactor.text(f"Path=/; HttpOnly {QUERY_KEY}") == f"Path=/; HttpOnly {REDACTED}"


# --- streams: across chunks and across deltas ------------------------------------------------------------------


def _delta_stream(*contents: str) -> bytes:
    return b"".join(_event({"content": c}) for c in contents) + _event({}, "stop") + b"data: [DONE]\n\n"


def test_a_secret_split_over_two_deltas_is_cut_from_both_and_from_the_message() -> None:
    data = _delta_stream("key: ", KEY[:10], KEY[10:] + " end", "!")
    stream = read_stream([(1.0, data)], Redactor([KEY]))
    contents = [e.json["choices"][0]["delta"].get("content") for e in stream.events if isinstance(e.json, dict)]
    assert contents == ["key: ", REDACTED, " end", "!", None]
    assert stream.assembled["choices"][0]["message"]["content"] == f"key: {REDACTED} end!"
    assert all(KEY[:10] not in e.data and KEY[10:] not in e.data for e in stream.events)
    assert stream.events[0].data == _event({"content": "key: "}).decode()[6:-2], "untouched events keep their text"


@pytest.mark.parametrize("keep_last", [0, 2], ids=["cut-in-the-head", "cut-in-the-tail"])
def test_an_excerpt_cut_off_after_the_first_half_of_a_secret_loses_that_half(keep_last: int) -> None:
    """The size cap stopped reading where the stream went on with the rest of the key: what was read of it goes."""
    data = _delta_stream("key: ", KEY[:10])[: -len(_event({}, "stop") + b"data: [DONE]\n\n")]
    stream, count, _ = read_excerpt([(1.0, data)], Redactor([KEY]), keep_bytes=1 << 16, keep_last=keep_last)
    assert count == 2
    contents = [e.json["choices"][0]["delta"]["content"] for e in stream.events]
    assert contents[0] == "key: " and set(contents[1:]) == {REDACTED}
    assert all(KEY[:4] not in e.data for e in stream.events)


def test_a_whole_stream_keeps_an_ending_that_only_begins_like_a_secret() -> None:
    """Nothing followed the last delta: its text is the answer, not half of a key (no false redaction)."""
    stream = read_stream([(1.0, _delta_stream("key: ", KEY[:10]))], Redactor([KEY]))
    assert stream.assembled["choices"][0]["message"]["content"] == f"key: {KEY[:10]}"
    stream, _, _ = read_excerpt(
        [(1.0, _delta_stream("key: ", "sk-s"[:3]))], Redactor([KEY]), keep_bytes=1 << 16, keep_last=0
    )
    assert stream.events[1].json["choices"][0]["delta"]["content"] == "sk-", "fewer than four characters stay"


def test_a_secret_split_over_tool_call_fragments_is_cut() -> None:
    def fragment(arguments: str) -> dict[str, Any]:
        return {"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}

    data = b"".join(_event(fragment(a)) for a in ['{"k": "', KEY[:4], KEY[4:], '"}']) + b"data: [DONE]\n\n"
    stream = read_stream([(1.0, data)], Redactor([KEY]))
    call = stream.assembled["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["arguments"] == f'{{"k": "{REDACTED}"}}'


def test_a_secret_split_across_chunks_inside_a_character_is_found() -> None:
    data = _delta_stream(f"é{KEY}é")
    cut = data.index(KEY.encode()) + 5
    inside = data.rindex("é".encode()) + 1
    stream = read_stream([(1.0, data[:cut]), (2.0, data[cut:inside]), (3.0, data[inside:])], Redactor([KEY]))
    assert stream.assembled["choices"][0]["message"]["content"] == f"é{REDACTED}é"
    assert not stream.issues


def test_a_stream_without_secrets_is_read_as_it_was() -> None:
    data = _delta_stream("sk-", "scan ", "nothing ", "secret")
    plain, redacted = read_stream([(1.0, data)], Redactor()), read_stream([(1.0, data)], Redactor([KEY]))
    assert redacted == plain
    assert redacted.assembled["choices"][0]["message"]["content"] == "sk-scan nothing secret"


def test_recorded_chunks_keep_their_times_and_count_and_lose_the_secret() -> None:
    data = _delta_stream("a ", KEY[:8], KEY[8:], " b")
    cuts = [0, data.index(KEY[:8].encode()) + 3, data.index(KEY[8:].encode()) + 2, len(data)]
    chunks = [Chunk(float(i), data[a:b]) for i, (a, b) in enumerate(itertools.pairwise(cuts))]
    stored = redact_chunks(chunks, Redactor([KEY]), stream=True)
    assert [c.at_ms for c in stored] == [c.at_ms for c in chunks]
    joined = b"".join(c.data for c in stored).decode()
    assert leaks(joined) == [] and KEY[:8] not in joined and KEY[8:] not in joined
    assert (
        read_stream([(c.at_ms, c.data) for c in stored], Redactor()).assembled["choices"][0]["message"]["content"]
        == f"a {REDACTED} b"
    )
    assert redact_chunks(chunks, Redactor([PROJECT]), stream=True) == tuple(chunks), "nothing to redact: as it was"


def test_multi_line_events_holding_a_secret_become_one_line_each() -> None:
    def event(content: str) -> str:
        return 'data: {"choices": [{"index": 0,\r\ndata: "delta": {"content": "' + content + '"}}]}\r\n\r\n'

    data = (event(KEY[:6]) + event(KEY[6:]) + "data: [DONE]\r\n\r\n").encode()
    [stored] = redact_chunks([Chunk(1.0, data)], Redactor([KEY]), stream=True)
    text = stored.data.decode()
    assert KEY[:6] not in text and KEY[6:] not in text
    assert text.count("data:") == 3 and text.endswith("\r\n\r\n"), "one line for each event, framing kept"
    assert read_stream([(1.0, stored.data)], Redactor()).assembled["choices"][0]["message"]["content"] == REDACTED


def test_a_body_whose_decoded_form_holds_a_short_secret_is_stored_without_it() -> None:
    redactor = Redactor(["proj"])
    body = b'{"a": "x\\u0020proj", "b": "project"}'
    [stored] = redact_chunks([Chunk(1.0, body)], redactor, stream=False)
    assert json.loads(stored.data) == {"a": f"x {REDACTED}", "b": "project"}
    assert redact_chunks([Chunk(1.0, b'{"b": "project"}')], redactor, stream=False) == (
        Chunk(1.0, b'{"b": "project"}'),
    )


# --- recording and replaying ------------------------------------------------------------------------------------


def _record(handler: Callable[[httpx.Request], httpx.Response], folder: Path, redactor: Redactor) -> None:
    transport = RecordingTransport(httpx.MockTransport(handler), folder, redactor)

    async def send() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            meta = {"case": "c", "endpoint": {"name": "mock", "base_url": "http://mock/v1", "model": "m"}}
            response = await client.post(
                "http://mock/v1/chat/completions", json={"messages": []}, extensions={EXTENSION: meta}
            )
            await response.aread()

    asyncio.run(send())


def test_a_recording_never_holds_text_that_decodes_to_the_secret(tmp_path: Path) -> None:
    body = json.dumps(_completion("KEY")).replace("KEY", _escaped(KEY)).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json", "x-token": KEY}, content=body)

    _record(handler, tmp_path, Redactor([KEY]))
    assert scan(tmp_path) == {}
    recording = load_recordings(tmp_path)[("mock", "c")]
    assert json.loads(recording.body)["choices"][0]["message"]["content"] == REDACTED
    assert dict(recording.headers)["x-token"] == REDACTED


def test_a_recording_without_secrets_keeps_the_bytes_as_they_came(tmp_path: Path) -> None:
    body = json.dumps(_completion("caf\\u00e9 is fine")).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, content=body)

    _record(handler, tmp_path, Redactor([KEY]))
    assert load_recordings(tmp_path)[("mock", "c")].body == body


def _replay(recording: Recording, body: dict[str, Any], redactor: Redactor) -> None:
    transport = ReplayTransport({("mock", "c"): recording}, redactor)

    async def send() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            meta = {"case": "c", "endpoint": {"name": "mock"}}
            await client.post("http://mock/v1/chat/completions", json=body, extensions={EXTENSION: meta})

    asyncio.run(send())


def test_replay_takes_a_redacted_value_as_recorded_and_never_shows_the_new_one() -> None:
    recording = Recording(
        case="c",
        endpoint={"name": "mock"},
        provenance={},
        request={"method": "POST", "body": {"messages": [{"content": f"key={REDACTED} ok"}]}},
        status=200,
        headers=[("content-type", "application/json")],
        chunks=(Chunk(1.0, json.dumps(_completion("hi")).encode()),),
        path="rec.yaml",
    )
    # Replay does not know the secret the recording run redacted: the request made now holds it in the clear.
    _replay(recording, {"messages": [{"content": f"key={KEY} ok"}]}, Redactor())
    with pytest.raises(StaleRecording) as stale:
        _replay(recording, {"messages": [{"content": f"key={KEY} changed"}]}, Redactor())
    assert KEY not in str(stale.value) and "not shown" in str(stale.value)
    plain = dataclasses.replace(recording, request={"method": "POST", "body": {"m": "hi"}})
    with pytest.raises(StaleRecording, match='recorded "hi", now "ho"'):
        _replay(plain, {"m": "ho"}, Redactor())


# --- what the engine, the CLI and the exchange builder must redact too ---------------------------------------------


@pytest.mark.usefixtures("secrets_in_environment")
def test_a_redacted_project_id_given_as_a_flag_is_not_in_the_reproduce_line(
    hostile: Hostile, tmp_path: Path, harness: Callable[..., Outcome]
) -> None:
    echoes, _ = _cases(tmp_path / "cases")
    google = ("--kind", "vertex", "--project", PROJECT, "--location", "us-central1", "--model", "gemini-2.5-flash")
    report = tmp_path / "report"
    outcome = harness(
        "run", echoes, "--select", "error", *google, "--api-endpoint", hostile.url,
        "--access-token-env", "SCAN_KEY", "--redact", PROJECT, "--report-dir", report,
    )  # fmt: skip
    assert outcome.code == 1, outcome.out + outcome.err
    assert f"/projects/{REDACTED}/" in (report / "summary.md").read_text(encoding="utf-8")
    assert scan(report, outcome.out, outcome.err) == {}


@pytest.mark.usefixtures("secrets_in_environment")
def test_a_live_streams_raw_text_holds_no_part_of_a_secret_cut_across_deltas(
    hostile: Hostile, tmp_path: Path, harness: Callable[..., Outcome]
) -> None:
    echoes, _ = _cases(tmp_path / "cases")
    report = tmp_path / "report"
    flags = ("--base-url", f"{hostile.url}/v1", "--model", "m", "--api-key-env", "SCAN_KEY")
    outcome = harness("run", echoes, "--select", "stream-deltas", *flags, "--report-dir", report)
    assert outcome.code == 0, outcome.out + outcome.err
    written = (report / "results.json").read_text(encoding="utf-8")
    assert f"the key is {REDACTED}." in written
    assert KEY[:9] not in written and KEY[9:] not in written


@pytest.mark.usefixtures("secrets_in_environment")
def test_credentials_and_ids_in_the_base_url_are_published_nowhere(
    hostile: Hostile, tmp_path: Path, harness: Callable[..., Outcome]
) -> None:
    _, own = _cases(tmp_path / "cases")
    base_url = f"{hostile.url}/projects/{PROJECT}/v1?key={QUERY_KEY}"
    recordings, report = tmp_path / "recordings", tmp_path / "report"
    outcome = harness(
        "run", own, "--base-url", base_url, "--model", "m", "--api-key-env", "SCAN_KEY", "--redact-env",
        "OTHER_TOKEN", "--redact", PROJECT, "--record", recordings, "--report-dir", report,
    )  # fmt: skip
    assert outcome.code == 0, outcome.out + outcome.err
    assert PROJECT in hostile.seen[-1].path and QUERY_KEY in hostile.seen[-1].path
    result = _results(report)["echo-request"]
    assert result["exchange"]["request"]["url"].endswith(f"/projects/{REDACTED}/v1/chat/completions?key={REDACTED}")
    echoed = result["exchange"]["response"]["body"]["choices"][0]["message"]["content"]
    assert echoed.startswith(f"/projects/{REDACTED}/v1/chat/completions?key={REDACTED} "), "the echoed path too"
    assert scan(report, recordings, outcome.out, outcome.err) == {}
