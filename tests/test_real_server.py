"""The harness against a real llama.cpp server (started by .ci/real-server.sh; skipped when it is not running).

These assert protocol behaviour and the harness's verdicts on what llama.cpp really does, never the
model's wording. The deviations asserted here are the ones documented for this server build.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cases import load_cases, select
from harness.models import Verdict
from harness.resources import bundled
from harness.sending import Options
from tests.conftest import Harness, run_case

pytestmark = pytest.mark.real_server


# A real model on a busy machine can take many seconds for its first answer: bounds generous enough never to
# turn a slow answer into a false timeout (the timeouts themselves are tested against local servers).
REAL = Options(timeout=120, deadline=240)


def test_plain_text_passes_with_timings(real: tuple[str, str]) -> None:
    base_url, model = real
    result = run_case(
        base_url,
        {
            "model": "${model}",
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 16,
            "temperature": 0,
        },
        model=model,
        options=REAL,
    )
    assert result.verdict is Verdict.PASS, result.findings
    assert result.exchange is not None and result.exchange.response is not None
    assert result.exchange.response.status == 200
    assert result.exchange.timings.ttfb_ms is not None and result.exchange.timings.total_ms is not None
    assert result.exchange.response.headers.get("server") == "llama.cpp"


def test_missing_messages_is_refused_well(real: tuple[str, str]) -> None:
    base_url, model = real
    result = run_case(
        base_url, {"model": "${model}"}, expect={"status": "4xx"}, model=model, profile="openai", options=REAL
    )
    assert result.verdict is Verdict.PASS, result.findings
    assert result.exchange is not None and result.exchange.response is not None
    assert result.exchange.response.status == 400


def test_accepting_an_unknown_role_is_reported(real: tuple[str, str]) -> None:
    """llama.cpp renders any role through its template and answers 200: a real deviation the harness must flag."""
    base_url, model = real
    result = run_case(
        base_url,
        {"model": "${model}", "messages": [{"role": "wizard", "content": "hi"}], "max_tokens": 4},
        expect={"status": "4xx"},
        model=model,
        options=REAL,
    )
    assert result.verdict is Verdict.FAIL
    assert [(f.code, f.actual) for f in result.errors] == [("http.status", 200)]


def test_image_part_gets_a_server_error(real: tuple[str, str]) -> None:
    """A text-only llama.cpp answers an image part with a 500, where a 400 would be right: reported as such."""
    base_url, model = real
    pixel = (
        "data:image/png;base64,"
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    )
    request = {
        "model": "${model}",
        "max_tokens": 8,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": pixel}},
                ],
            }
        ],
    }
    result = run_case(base_url, request, model=model, options=REAL)
    assert result.verdict is Verdict.FAIL
    assert [f.code for f in result.errors] == ["http.status"]
    assert result.errors[0].actual == 500 and "image" in result.errors[0].message


def test_whole_catalogue_runs_without_transport_errors(real: tuple[str, str]) -> None:
    """Every non-streaming case gets an answer and a verdict; failures are deviations with findings."""
    import asyncio

    from harness.endpoints import Endpoint
    from harness.engine import run
    from harness.sending import Options

    base_url, model = real
    cases = select(load_cases([bundled("cases")]), ["core"])
    results = asyncio.run(
        run(cases, [Endpoint("llama.cpp", base_url, model=model)], Options(concurrency=2, timeout=60), environ={})
    )
    assert len(results) == len(cases) + sum(c.both_ways for c in cases)
    for result in results:
        assert result.verdict in (Verdict.PASS, Verdict.FAIL, Verdict.SKIP), (result.name, result.findings)
        if result.verdict is Verdict.FAIL:
            assert result.errors, result.name
    passed = {r.case_id for r in results if r.verdict is Verdict.PASS}
    assert {
        "text-basic",
        "params-max-tokens-length",
        "structured-json-schema-person",
        "negative-missing-messages",
    } <= passed


def test_a_real_stream_is_read_checked_and_timed(real: tuple[str, str]) -> None:
    """llama.cpp's streams follow OpenAI's framing; each of its chunks carries its own `created` (a warning)."""
    base_url, model = real
    request = {
        "model": "${model}",
        "messages": [{"role": "user", "content": "Say hello."}],
        "max_tokens": 16,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    result = run_case(base_url, request, model=model, options=REAL)
    assert result.verdict is Verdict.PASS, [f.message for f in result.errors]
    assert {f.code for f in result.warnings} <= {"stream.consistent_created"}
    exchange = result.exchange
    assert exchange is not None and exchange.stream is not None
    assert exchange.stream.done_index == len(exchange.stream.events) - 1
    assert exchange.timings.ttft_ms is not None and exchange.timings.events and exchange.timings.events >= 3
    usage = exchange.stream.assembled["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_two_runs_of_a_real_server_compare_and_show_no_false_drift(
    real: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, harness: Harness
) -> None:
    """A real model's words and timings change between runs; the shape of its answers does not."""
    base_url, model = real
    monkeypatch.chdir(tmp_path)
    flags = ["--base-url", base_url, "--model", model, "--name", "llama"]
    flags += ["--select", "text-system-user,stream-text-usage"]
    assert harness("run", *flags, "--repeat", "2", "--concurrency", "1", "--report-dir", "first", "-q").code == 0
    assert harness("run", *flags, "--report-dir", "second", "-q").code == 0
    outcome = harness("diff", "--json", "first", "second")
    # `created` moving within a stream depends on whether it crossed a second: a warning that comes and goes
    # with timing, which diff rightly lists; nothing else may change.
    changes = json.loads(outcome.out)["changes"]
    assert all(c["kind"].startswith("finding") and "stream.consistent_created" in str(c) for c in changes), changes
    outcome = harness("compare", "first", "second", "--json", "--report-dir", "cmp")
    data = json.loads(outcome.out)
    [stream] = [row["cells"]["first/llama"] for row in data["rows"] if row["row"] == "stream-text-usage"]
    assert stream["verdicts"] == ["pass", "pass"] and stream["ttft_ms"] and stream["completion_tokens"]
    assert stream["tokens_per_s"] and stream["size"]
    latency = data["endpoints"]["first/llama"]["latency"]
    assert latency["total_ms"]["n"] == 4 and latency["ttft_ms"]["n"] == 2
    assert latency["total_ms"]["p50"] <= latency["total_ms"]["p90"] <= latency["total_ms"]["p99"]
    assert [c["concurrency"] for c in data["columns"]] == [1, 4] and data["columns"][0]["repeat"] == 2


def test_the_support_matrix_of_llama_cpp(real: tuple[str, str]) -> None:
    """Every cheap probe, live: what llama.cpp honours, refuses and ignores, as read by hand from its answers."""
    import asyncio

    from harness.endpoints import Endpoint
    from harness.engine import run
    from harness.sending import Options
    from harness.support import SupportMatrix

    base_url, model = real
    cases = select(load_cases([bundled("cases")]), ["param:*,!costly,!tools-*"])
    matrix = SupportMatrix(["real"])
    for result in asyncio.run(
        run(cases, [Endpoint("real", base_url, model=model)], Options(concurrency=1, timeout=120), environ={})
    ):
        matrix.add(result)
    support = {name: cells[0].verdict.value for name, cells in matrix.rows()}
    assert {k: support[k] for k in ("logprobs", "top_logprobs", "stop", "max_tokens", "max_completion_tokens")} == {
        "logprobs": "honoured",
        "top_logprobs": "honoured",
        "stop": "honoured",
        "max_tokens": "honoured",
        "max_completion_tokens": "honoured",
    }
    assert support["n"] == "rejected"
    assert {support[k] for k in ("service_tier", "reasoning_effort", "prediction")} == {"ignored"}
    assert {support[k] for k in ("user", "metadata", "store", "verbosity")} == {"accepted"}
    assert support["seed"] == "honoured"  # the same answer twice at seed 42, temperature 1
    assert support["audio"] == support["web_search_options"] == "not probed"  # costly, left out
