"""The exchange builder and the checks after it, fed whatever an endpoint could send: findings, never a crash."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cases import parse_case
from harness.exchanges import Received, build_exchange
from harness.judging import judge
from harness.models import SentRequest, Verdict
from harness.profiles import load_profile
from harness.redact import Redactor

REQUEST = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
PLAIN = parse_case({"id": "plain", "request": REQUEST})
STREAMED = parse_case({"id": "streamed", "request": {**REQUEST, "stream": True}})
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30,
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _judged(chunks: list[bytes], *, streaming: bool, content_type: str, status: int = 200) -> Verdict:
    reading = Received()
    reading.status = status
    reading.headers = [("content-type", content_type)]
    reading.chunks = [(float(i), chunk) for i, chunk in enumerate(chunks)]
    reading.size = sum(len(c) for c in chunks)
    reading.ttfb, reading.total = 1.0, float(len(chunks) + 1)
    sent = SentRequest(method="POST", url="http://127.0.0.1:9/v1/chat/completions", headers={}, body=REQUEST)
    exchange = build_exchange(sent, reading, "2026-01-01T00:00:00Z", 1, None, streaming, Redactor(["sk-secret-123456"]))
    verdict, findings = judge(exchange, STREAMED if streaming else PLAIN, load_profile("generic"))
    assert verdict is not Verdict.ERROR or all(f.code != "harness.check_crashed" for f in findings), findings
    return verdict


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=6), st.sampled_from(["application/json", "text/html", ""]))
def test_random_bytes_as_a_plain_answer(chunks: list[bytes], content_type: str) -> None:
    assert _judged(chunks, streaming=False, content_type=content_type) in (Verdict.PASS, Verdict.FAIL)


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_random_bytes_as_a_stream(chunks: list[bytes]) -> None:
    assert _judged(chunks, streaming=True, content_type="text/event-stream") in (Verdict.PASS, Verdict.FAIL)


@FUZZ
@given(JSON_VALUES)
def test_random_json_as_a_plain_answer(value: Any) -> None:
    body = json.dumps(value).encode()
    assert _judged([body], streaming=False, content_type="application/json") in (Verdict.PASS, Verdict.FAIL)


@FUZZ
@given(st.lists(JSON_VALUES, max_size=5), st.booleans())
def test_random_json_as_stream_events(events: list[Any], done: bool) -> None:
    frames = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + ([b"data: [DONE]\n\n"] if done else [])
    assert _judged(frames, streaming=True, content_type="text/event-stream") in (Verdict.PASS, Verdict.FAIL)


def test_a_conformant_answer_passes_through_the_same_path() -> None:
    """The harness above can fail a case: the same path passes a conformant answer, so the fuzz is no tautology."""
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
    assert _judged([json.dumps(answer).encode()], streaming=False, content_type="application/json") is Verdict.PASS
    assert _judged([b"{not json"], streaming=False, content_type="application/json") is Verdict.FAIL
