"""Fixtures shared by the tests: the local test server and a way to run one case through the real runner."""

from __future__ import annotations

import os

# google-auth reads this once, at import: tests must never probe the Compute Engine metadata server.
os.environ["NO_GCE_CHECK"] = "true"

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from harness.cases import parse_case
from harness.cli import main
from harness.endpoints import Endpoint
from harness.engine import run
from harness.models import Result
from harness.sending import Options
from tests.servers import Server, serve

CREDENTIAL_VARIABLES = (
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "HARNESS_TEST_KEY",
    "GOOGLE_CLOUD_PROJECT",
)
# What a live run's httpx client reads from the environment (as httpx's own test suite strips them).
HTTPX_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may pick up a real credential from the machine it runs on."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # Nor a proxy: a test talks to its servers on 127.0.0.1 directly unless it sets a proxy itself.
    for name in [n for n in os.environ if n.upper() in HTTPX_VARIABLES]:
        monkeypatch.delenv(name)
    # No gcloud configuration of the machine's user either: Application Default Credentials come from the test.
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path_factory.mktemp("gcloud")))
    monkeypatch.setenv("NO_COLOR", "1")
    # Nor may a test run on GitHub's runners write annotations into the log or runs into the job's summary page.
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with serve() as running:
        yield running


def run_case(
    base_url: str,
    request: dict[str, Any] | None = None,
    *,
    raw_body: str | None = None,
    expect: dict[str, Any] | None = None,
    profile: str = "generic",
    model: str | None = "test-model",
    options: Options | None = None,
    api_key_env: str | None = None,
    environ: dict[str, str] | None = None,
    **kwargs: Any,
) -> Result:
    """One case through the real runner, checks and profile, against `base_url`."""
    data: dict[str, Any] = {"id": "under-test"}
    if raw_body is not None:
        data["raw_body"] = raw_body
    else:
        data["request"] = request
    if expect:
        data["expect"] = expect
    case = parse_case(data)
    endpoint = Endpoint("test", base_url, model=model, profile=profile, api_key_env=api_key_env)
    results = asyncio.run(
        run([case], [endpoint], options or Options(timeout=10, deadline=20), environ=environ or {}, **kwargs)
    )
    return results[0]


def without_clients(result: Result) -> Result:
    """The result as the harness's own checks weigh it, for the tables of other check families: what the official
    SDKs make of an answer (Vertex's role on every delta becomes `assistantassistant` in openai-python) is tested
    in tests/test_client_checks.py."""
    from harness.models import Severity, Verdict

    findings = tuple(f for f in result.findings if not f.code.startswith("client."))
    if result.verdict is Verdict.FAIL and not any(f.severity is Severity.ERROR for f in findings):
        return replace(result, findings=findings, verdict=Verdict.PASS)
    return replace(result, findings=findings)


@pytest.fixture(scope="module")
def real() -> tuple[str, str]:
    """(base URL, model) of the real llama.cpp server that .ci/run starts; skips, saying why, without one."""
    import httpx

    base_url = os.environ.get("HARNESS_REAL_BASE_URL")
    if not base_url:
        pytest.skip("no real server: start one with `bash .ci/real-server.sh start` and set HARNESS_REAL_BASE_URL")
    try:
        # Module-scoped, so it runs before clean_environ strips a proxy: the server is local, reached directly.
        httpx.get(base_url.removesuffix("/v1") + "/health", timeout=5, trust_env=False).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(f"the real server at {base_url} does not answer /health: {exc}")
    return base_url, os.environ.get("HARNESS_REAL_MODEL", "smollm2-135m")


@dataclass
class Outcome:
    """What `harness ARGV` did: its exit code and what it printed."""

    code: int
    out: str
    err: str


Harness = Callable[..., Outcome]


@pytest.fixture
def harness(capsys: pytest.CaptureFixture[str]) -> Harness:
    """`harness(*argv)` runs the command in-process and returns its exit code and output."""

    def call(*argv: str | Path) -> Outcome:
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return call
