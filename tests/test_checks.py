"""Every check both ways: each planted defect fails with its own code, and the conformant twin passes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from harness.checks import all_codes
from harness.models import Severity, Verdict
from harness.sending import Options
from tests.conftest import run_case
from tests.servers import SLOW_SECONDS, Server

TEXT = {"model": "${model}", "messages": [{"role": "user", "content": "Say hello."}]}
N2 = {**TEXT, "n": 2}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
        },
    },
}
TOOLS = {**TEXT, "tools": [WEATHER], "tool_choice": "required"}
TOOLS_NAMED = {**TEXT, "tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}}
TOOLS_NONE = {**TEXT, "tools": [WEATHER], "tool_choice": "none"}
JSON_OBJECT = {**TEXT, "response_format": {"type": "json_object"}}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
JSON_SCHEMA = {
    **TEXT,
    "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}},
}
NO_MESSAGES = {"model": "${model}"}
REFUSE = {"status": "4xx"}

# (defect, request, expect, profile) -> the (code, pointer) pairs that must be reported as errors.
FAILING: list[tuple[str, dict[str, Any], dict[str, Any] | None, str, set[tuple[str, str]]]] = [
    ("choices-empty", TEXT, None, "generic", {("response.choices_present", "/response/body/choices")}),
    ("choices-missing", TEXT, None, "generic", {("response.schema", "/response/body")}),
    ("index-wrong", TEXT, None, "generic", {("response.choices_indexed", "/response/body/choices/0/index")}),
    ("role-wrong", TEXT, None, "generic", {("response.role_assistant", "/response/body/choices/0/message/role")}),
    ("content-array", TEXT, None, "generic", {("response.schema", "/response/body/choices/0/message/content")}),
    (
        "content-missing",
        TEXT,
        None,
        "generic",
        {("response.content_present", "/response/body/choices/0/message/content")},
    ),
    (
        "finish-invalid",
        TEXT,
        None,
        "generic",
        {("response.finish_reason_valid", "/response/body/choices/0/finish_reason")},
    ),
    (
        "finish-stop-with-tools",
        TOOLS,
        None,
        "generic",
        {("response.finish_reason_consistent", "/response/body/choices/0/finish_reason")},
    ),
    ("id-null", TEXT, None, "generic", {("response.schema", "/response/body/id")}),
    ("id-no-prefix", TEXT, None, "openai", {("response.id_prefix", "/response/body/id")}),
    ("created-string", TEXT, None, "generic", {("response.schema", "/response/body/created")}),
    ("object-wrong", TEXT, None, "generic", {("response.schema", "/response/body/object")}),
    (
        "no-nullable",
        TEXT,
        None,
        "openai",
        {
            ("response.nullable_members", "/response/body/choices/0/logprobs"),
            ("response.nullable_members", "/response/body/choices/0/message/refusal"),
        },
    ),
    ("usage-missing", TEXT, None, "openai", {("response.usage_present", "/response/body/usage")}),
    ("usage-negative", TEXT, None, "generic", {("response.schema", "/response/body/usage/completion_tokens")}),
    ("usage-total-wrong", TEXT, None, "generic", {("response.usage_total", "/response/body/usage/total_tokens")}),
    (
        "usage-google-total",
        TEXT,
        None,
        "openai",
        {("response.usage_total_includes_reasoning", "/response/body/usage/total_tokens")},
    ),
    ("n-ignored", N2, None, "generic", {("response.choice_count", "/response/body/choices")}),
    ("content-type-text", TEXT, None, "generic", {("http.content_type", "/response/headers/content-type")}),
    ("html", TEXT, None, "generic", {("http.body_json", "/response/body")}),
    ("truncated", TEXT, None, "generic", {("http.body_json", "/response/body")}),
    ("invalid-utf8", TEXT, None, "generic", {("http.body_json", "/response/body")}),
    (
        "tool-undeclared",
        TOOLS,
        None,
        "generic",
        {("tools.name_declared", "/response/body/choices/0/message/tool_calls/0/function/name")},
    ),
    (
        "tool-args-invalid-json",
        TOOLS,
        None,
        "generic",
        {("tools.arguments_json", "/response/body/choices/0/message/tool_calls/0/function/arguments")},
    ),
    (
        "tool-args-array",
        TOOLS,
        None,
        "generic",
        {("tools.arguments_json", "/response/body/choices/0/message/tool_calls/0/function/arguments")},
    ),
    (
        "tool-args-object",
        TOOLS,
        None,
        "generic",
        {("response.schema", "/response/body/choices/0/message/tool_calls/0/function/arguments")},
    ),
    (
        "tool-args-schema",
        TOOLS,
        None,
        "generic",
        {("tools.arguments_valid", "/response/body/choices/0/message/tool_calls/0/function/arguments")},
    ),
    ("tool-id-empty", TOOLS, None, "generic", {("tools.call_ids", "/response/body/choices/0/message/tool_calls/0/id")}),
    (
        "tool-ids-duplicate",
        TOOLS,
        None,
        "generic",
        {("tools.call_ids", "/response/body/choices/0/message/tool_calls/1/id")},
    ),
    ("tool-choice-ignored", TOOLS, None, "generic", {("tools.choice_honoured", "/response/body/choices/0/message")}),
    (
        "tool-choice-ignored",
        TOOLS_NAMED,
        None,
        "generic",
        {("tools.choice_honoured", "/response/body/choices/0/message")},
    ),
    (
        "json-fenced",
        JSON_SCHEMA,
        None,
        "generic",
        {("structured.content_json", "/response/body/choices/0/message/content")},
    ),
    (
        "json-prose",
        JSON_OBJECT,
        None,
        "generic",
        {("structured.content_json", "/response/body/choices/0/message/content")},
    ),
    (
        "json-not-object",
        JSON_OBJECT,
        None,
        "generic",
        {("structured.content_json", "/response/body/choices/0/message/content")},
    ),
    (
        "json-schema-invalid",
        JSON_SCHEMA,
        None,
        "generic",
        {("structured.schema_valid", "/response/body/choices/0/message/content")},
    ),
    ("server-error", TEXT, None, "generic", {("http.status", "/response/status")}),
    ("reject-valid", TEXT, None, "generic", {("http.status", "/response/status")}),
    ("accept-all", NO_MESSAGES, REFUSE, "generic", {("http.status", "/response/status")}),
    ("error-google", NO_MESSAGES, REFUSE, "openai", {("errors.openai_shape", "/response/body")}),
    ("error-vllm", NO_MESSAGES, REFUSE, "openai", {("errors.openai_shape", "/response/body")}),
    ("error-text", NO_MESSAGES, REFUSE, "generic", {("http.body_json", "/response/body")}),
    ("error-html", NO_MESSAGES, REFUSE, "generic", {("http.body_json", "/response/body")}),
    ("error-empty", NO_MESSAGES, REFUSE, "generic", {("http.body_json", "/response/body")}),
    ("error-no-message", NO_MESSAGES, REFUSE, "generic", {("errors.body_schema", "/response/body/error")}),
    (
        "ok",
        TEXT,
        {"finish_reason": "length"},
        "generic",
        {("expect.finish_reason", "/response/body/choices/0/finish_reason")},
    ),
    (
        "ok",
        TEXT,
        {"content_matches": "^Bonjour"},
        "generic",
        {("expect.content_matches", "/response/body/choices/0/message/content")},
    ),
    ("ok", TOOLS, {"tool_names": ["get_time"]}, "generic", {("expect.tool_names", "/response/body/choices")}),
    (
        "ok",
        TEXT,
        {"pointers": [{"pointer": "/choices/0/message/role", "equals": "user"}]},
        "generic",
        {("expect.pointer", "/response/body/choices/0/message/role")},
    ),
    (
        "ok",
        TEXT,
        {"pointers": [{"pointer": "/model", "matches": "^gpt-"}]},
        "generic",
        {("expect.pointer", "/response/body/model")},
    ),
    (
        "ok",
        TEXT,
        {"pointers": [{"pointer": "/choices/0/message/tool_calls", "present": True}]},
        "generic",
        {("expect.pointer", "/response/body/choices/0/message/tool_calls")},
    ),
]

# Deviations some profiles allow: the same exchange passes (with or without a warning) elsewhere.
ALLOWED: list[tuple[str, dict[str, Any], dict[str, Any] | None, str, set[str]]] = [
    ("id-no-prefix", TEXT, None, "generic", set()),
    ("no-nullable", TEXT, None, "generic", set()),
    ("no-nullable", TEXT, None, "vertex", set()),
    ("usage-missing", TEXT, None, "generic", {"response.usage_present"}),
    ("usage-google-total", TEXT, None, "generic", {"response.usage_total_includes_reasoning"}),
    ("usage-google-total", TEXT, None, "vertex", {"response.usage_total_includes_reasoning"}),
    ("error-google", NO_MESSAGES, REFUSE, "gemini-api", {"errors.openai_shape"}),
    ("error-google", NO_MESSAGES, REFUSE, "generic", {"errors.openai_shape"}),
    ("error-vllm", NO_MESSAGES, REFUSE, "self-deployed", {"errors.openai_shape"}),
    ("error-llamacpp", NO_MESSAGES, REFUSE, "openai", set()),
    ("ok", JSON_SCHEMA | {"max_tokens": 2}, None, "generic", {"structured.truncated"}),
]


def _row_id(row: tuple[Any, ...]) -> str:
    codes = {c if isinstance(c, str) else c[0] for c in row[4]}
    return f"{row[0]}-{row[3]}-{'+'.join(sorted(codes))}"


@pytest.mark.parametrize(
    ("defect", "request_body", "expect", "profile", "wanted"), FAILING, ids=[_row_id(r) for r in FAILING]
)
def test_defect_fails_with_its_code_and_its_twin_passes(
    server: Server,
    defect: str,
    request_body: dict[str, Any],
    expect: dict[str, Any] | None,
    profile: str,
    wanted: set[tuple[str, str]],
) -> None:
    result = run_case(server.url(defect), request_body, expect=expect, profile=profile)
    assert result.verdict is Verdict.FAIL, result.findings
    # What the SDKs make of a broken answer is tested in tests/test_client_checks.py; its twin passes them too.
    reported = {(f.code, f.pointer) for f in result.errors if not f.code.startswith("client.")}
    assert reported == wanted
    for finding in result.errors:
        assert finding.message and not finding.message.startswith(("[", "{")), finding.message
    if defect == "ok":
        return  # the expectation itself is the defect; its passing twins are in test_expectations_met
    # The conformant twin: the same request and expectations against the conformant server pass cleanly.
    twin = run_case(server.url("ok"), request_body, expect=expect, profile=profile)
    assert twin.verdict is Verdict.PASS, [repr(f) + f.message for f in twin.findings]
    assert twin.findings == ()


@pytest.mark.parametrize(
    ("defect", "request_body", "expect", "profile", "warned"), ALLOWED, ids=[_row_id(r) for r in ALLOWED]
)
def test_documented_deviation_passes_under_its_profile(
    server: Server,
    defect: str,
    request_body: dict[str, Any],
    expect: dict[str, Any] | None,
    profile: str,
    warned: set[str],
) -> None:
    result = run_case(server.url(defect), request_body, expect=expect, profile=profile)
    # What the official SDKs make of it is weighed apart (tests/test_client_checks.py): a documented deviation that
    # breaks them (Google's array-shaped error body) is still a break for their users.
    findings = [f for f in result.findings if not f.code.startswith("client.")]
    broken = any(f.severity is Severity.ERROR for f in result.findings if f.code.startswith("client."))
    assert result.verdict is (Verdict.FAIL if broken else Verdict.PASS), result.findings
    assert {f.code for f in findings} == warned
    assert all(f.severity is Severity.WARNING for f in findings)
    if profile in ("vertex", "gemini-api", "self-deployed"):
        assert all(f.note and "http" in f.note for f in findings), "a provider's allowance names its source"


@pytest.mark.parametrize(
    "expect",
    [
        {"finish_reason": ["stop", "length"]},
        {"content_matches": "conformant"},
        {
            "pointers": [
                {"pointer": "/choices/0/message/role", "equals": "assistant"},
                {"pointer": "/id", "matches": "^chatcmpl-"},
                {"pointer": "/choices/0/message/tool_calls", "present": False},
            ]
        },
    ],
)
def test_expectations_met(server: Server, expect: dict[str, Any]) -> None:
    assert run_case(server.url("ok"), TEXT, expect=expect).verdict is Verdict.PASS


def test_tool_names_met(server: Server) -> None:
    assert run_case(server.url("ok"), TOOLS, expect={"tool_names": ["get_weather"]}).verdict is Verdict.PASS


def test_tool_choice_none_honoured_both_ways(server: Server) -> None:
    assert run_case(server.url("ok"), TOOLS_NONE).verdict is Verdict.PASS


@pytest.mark.parametrize(
    "request_body", [TEXT, N2, TOOLS, TOOLS_NAMED, JSON_OBJECT, JSON_SCHEMA], ids=lambda r: ",".join(sorted(r))
)
@pytest.mark.parametrize("profile", ["generic", "openai", "vertex", "gemini-api", "self-deployed"])
def test_conformant_server_passes_under_every_profile(
    server: Server, request_body: dict[str, Any], profile: str
) -> None:
    result = run_case(server.url("ok"), request_body, profile=profile)
    assert result.verdict is Verdict.PASS and result.findings == (), result.findings


@pytest.mark.parametrize(
    "request_body",
    [NO_MESSAGES, {**TEXT, "temperature": "hot"}, {**TEXT, "messages": [{"role": "wizard", "content": "hi"}]}],
)
def test_conformant_refusal_passes(server: Server, request_body: dict[str, Any]) -> None:
    result = run_case(server.url("ok"), request_body, expect=REFUSE, profile="openai")
    assert result.verdict is Verdict.PASS and result.findings == ()


def test_raw_body_that_is_not_json_is_refused(server: Server) -> None:
    ok = run_case(server.url("ok"), raw_body='{"model": "x", "messages": [', expect=REFUSE)
    assert ok.verdict is Verdict.PASS
    assert ok.exchange is not None and ok.exchange.request.raw_body == '{"model": "x", "messages": ['
    broken = run_case(server.url("accept-all"), raw_body='{"model": "x", "messages": [', expect=REFUSE)
    assert [f.code for f in broken.errors] == ["http.status"]


# Transport failures: an `error` verdict with its own code, in bounded time.


def test_slow_answer_times_out(server: Server) -> None:
    result = run_case(server.url("slow"), TEXT, options=Options(timeout=0.3, deadline=10))
    assert result.verdict is Verdict.ERROR
    assert [f.code for f in result.findings] == ["transport.timeout"]


def test_deadline_bounds_a_case(server: Server) -> None:
    result = run_case(server.url("slow"), TEXT, options=Options(timeout=10, deadline=0.3))
    assert [f.code for f in result.findings] == ["transport.deadline"]
    assert "deadline of 0.3 s" in result.findings[0].message and "raise --deadline" in result.findings[0].message
    assert result.exchange is not None and result.exchange.timings.total_ms is not None
    assert result.exchange.timings.total_ms < SLOW_SECONDS * 1000  # ended by the deadline, not by the server


def test_reset_connection(server: Server) -> None:
    result = run_case(server.url("reset"), TEXT)
    assert result.verdict is Verdict.ERROR
    assert [f.code for f in result.findings] == ["transport.reset"]


def test_refused_connection() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_case(f"http://127.0.0.1:{port}/v1", TEXT)
    assert result.verdict is Verdict.ERROR
    assert [f.code for f in result.findings] == ["transport.connect"]


def test_response_size_is_capped(server: Server) -> None:
    result = run_case(server.url("huge"), TEXT, options=Options(max_response_bytes=1024 * 1024))
    assert [f.code for f in result.findings] == ["transport.too_large"]
    assert (
        run_case(server.url("huge"), TEXT, options=Options(max_response_bytes=64 * 1024 * 1024)).verdict is Verdict.PASS
    )


def test_protocol_error_is_reported() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.DecodingError("bad gzip", request=request)

    result = run_case("http://127.0.0.1:9/v1", TEXT, transport=httpx.MockTransport(broken))
    assert [f.code for f in result.findings] == ["transport.protocol"]


@pytest.mark.parametrize("defect", ["retry-429", "retry-503"])
def test_rate_limit_is_retried(server: Server, defect: str) -> None:
    body = {**TEXT, "messages": [{"role": "user", "content": f"retry me {defect}"}]}
    result = run_case(server.url(defect), body, options=Options(retries=2))
    assert result.verdict is Verdict.PASS
    assert result.exchange is not None and result.exchange.attempts == 2
    body = {**TEXT, "messages": [{"role": "user", "content": f"do not retry me {defect}"}]}
    result = run_case(server.url(defect), body, options=Options(retries=0))
    assert [f.code for f in result.errors] == ["http.status"]


def test_a_crashing_check_is_an_error_not_a_crash(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness import checks

    def explode(exchange: Any, context: Any) -> Any:
        raise ZeroDivisionError("planted")

    registry = checks.registry()
    planted = checks.Check("response.explode", explode, lambda e, c: True, "")
    monkeypatch.setattr(checks, "registry", lambda: {**registry, "response.explode": planted})
    result = run_case(server.url("ok"), TEXT)
    assert result.verdict is Verdict.ERROR
    assert [f.code for f in result.findings] == ["harness.check_crashed"]
    assert "response.explode" in result.findings[0].message and "ZeroDivisionError" in result.findings[0].message


TESTED_ELSEWHERE = {
    "transport.connect",
    "transport.timeout",
    "transport.reset",
    "transport.protocol",
    "transport.too_large",
    "transport.deadline",
    "harness.check_crashed",
    "structured.truncated",
    "replay.stale",
    "replay.unreadable",  # tests/test_recordings.py
    "steps.value_missing",  # tests/test_steps.py
    "stream.unterminated",
    "stream.consistent_created",
    "stream.matches_plain",
    "stream.text_matches_plain",  # tests/test_behaviours.py
    "stream.usage_unrequested",
}


def test_every_code_has_a_failing_row() -> None:
    """A check nobody has seen fail is a check nobody knows works."""
    from tests.test_behaviours import BEHAVIOUR_FAILING
    from tests.test_client_checks import CLIENT_FAILING
    from tests.test_google_checks import GOOGLE_FAILING
    from tests.test_params import MOVE_ROWS, PARAMS_FAILING, REPEAT_ROWS
    from tests.test_streams import STREAM_FAILING

    failing = {code for row in FAILING for code, _ in row[4]} | {code for row in STREAM_FAILING for code, _ in row[3]}
    failing |= {code for row in GOOGLE_FAILING for code, _ in row.wanted} | CLIENT_FAILING
    failing |= {code for row in PARAMS_FAILING for code, _ in row[3]}
    failing |= {code for row in REPEAT_ROWS for code, _ in row[4]} | {code for row in MOVE_ROWS for code, _ in row[3]}
    failing |= {code for row in BEHAVIOUR_FAILING for code, _ in row.wanted}
    assert set(all_codes()) == failing | TESTED_ELSEWHERE
