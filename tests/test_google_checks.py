"""Google's checks both ways, offline, against the `vertex` and `gemini` scenarios of the test double.

Each google.* code fails with its code and pointer on its planted defect, under a profile where it is an error,
and the conformant twin passes. The shapes Google documents pass under the provider's profile with warnings that
name their source, and fail under `openai` with every deviation listed. The requests are built like the seed
cases (cases/google.case.yaml): thinking asked for in a literal `extra_body.google` (the documented wire shape),
or the same under a top-level `google` key (what the OpenAI SDK's plain `extra_body` sends).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from harness.cases import load_cases
from harness.endpoints import Endpoint
from harness.engine import run
from harness.models import Result, Severity, Verdict
from harness.resources import bundled
from harness.sending import Options
from tests.conftest import run_case, without_clients
from tests.servers import ANSWER, THOUGHTS, Server

VERTEX_MODEL = "google/gemini-2.5-flash"
GEMINI_MODEL = "gemini-2.5-flash"

BASE: dict[str, Any] = {
    "model": "${model}",
    "messages": [{"role": "user", "content": "Are there any primes number of the form n*ceil(log(n))"}],
}
# The seed's thinking settings (shape 7).
THINKING = {"thinking_config": {"include_thoughts": True, "thinking_budget": 10000}, "thought_tag_marker": "think"}
THINK = {**BASE, "extra_body": {"google": THINKING}}
THINK_TOP = {**BASE, "google": THINKING}
MARKER_ONLY = {**BASE, "extra_body": {"google": {"thought_tag_marker": "think"}}}
G_THINK = {**BASE, "extra_body": {"google": {"thinking_config": {"include_thoughts": True}}}}
G_QUIET = {**BASE, "extra_body": {"google": {"thinking_config": {"include_thoughts": False}}}}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TOOLS = {**BASE, "tools": [WEATHER], "tool_choice": "required"}
GCS_IMAGE = {
    **BASE,
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this image"},
                {"type": "image_url", "image_url": "gs://cloud-samples-data/generative-ai/image/scones.jpg"},
            ],
        }
    ],
}
GCS_AUDIO = {
    **BASE,
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this: "},
                {
                    "type": "input_audio",
                    "input_audio": {
                        "format": "audio/mp3",
                        "data": "gs://cloud-samples-data/generative-ai/audio/pixel.mp3",
                    },
                },
            ],
        }
    ],
}
STREAM = {"stream": True}
USAGE = {"stream": True, "stream_options": {"include_usage": True}}
REFUSE = {"status": "4xx"}

BODY = "/response/body/choices/0"
ASSEMBLED = "/stream/assembled/choices/0"
STRICT = "strict-google"  # vertex, and the SDK's top-level google key must be honoured too (a file, see below)


@pytest.fixture(scope="module")
def profiles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Profile names to pass to run_case: the built-in ones, and STRICT as a profile file."""
    path = tmp_path_factory.mktemp("profiles") / "strict-google.yaml"
    path.write_text(
        "name: strict-google\n"
        "description: Vertex, for a client that sends Google's settings with the SDK's plain extra_body\n"
        "extends: vertex\n"
        "checks:\n"
        "  google.google_key_honoured: error\n"
    )
    return {STRICT: str(path)}


def _model(scenario: str) -> str:
    return GEMINI_MODEL if scenario.split("+")[0] == "gemini" else VERTEX_MODEL


def _run(
    server: Server,
    scenario: str,
    request: dict[str, Any],
    profile: str,
    profiles: dict[str, str],
    expect: dict[str, Any] | None = None,
) -> Result:
    return without_clients(
        run_case(
            server.url(scenario), request, expect=expect, profile=profiles.get(profile, profile), model=_model(scenario)
        )
    )


@dataclass(frozen=True)
class Row:
    """A Google defect, the errors it must cause under `profile`, and the conformant twin that must pass."""

    scenario: str
    request: dict[str, Any]
    profile: str
    wanted: set[tuple[str, str]]
    twin: str = ""  # default: the surface the scenario starts from
    twin_request: dict[str, Any] | None = None  # default: the same request
    twin_profile: str = ""  # default: the same profile

    @property
    def id(self) -> str:
        codes = "+".join(sorted({c.removeprefix("google.") for c, _ in self.wanted}))
        stream = "-stream" if self.request.get("stream") else ""
        return f"{self.scenario}{stream}-{self.profile}-{codes}"


GOOGLE_FAILING: list[Row] = [
    # google.thought_tags: balanced <m>…</m> before a non-empty answer, across chunk boundaries too
    Row("vertex+google-tags-unbalanced", THINK, "vertex", {("google.thought_tags", f"{BODY}/message/content")}),
    Row(
        "vertex+google-tags-unbalanced",
        {**THINK, **STREAM},
        "vertex",
        {("google.thought_tags", f"{ASSEMBLED}/message/content")},
    ),
    Row("vertex+google-text-before-thoughts", THINK, "vertex", {("google.thought_tags", f"{BODY}/message/content")}),
    Row("vertex+google-empty-answer", THINK, "vertex", {("google.thought_tags", f"{BODY}/message/content")}),
    Row(
        "vertex+google-empty-answer",
        {**THINK, **STREAM},
        "vertex",
        {("google.thought_tags", f"{ASSEMBLED}/message/content")},
    ),
    Row("gemini+google-tags-unbalanced", G_THINK, "gemini-api", {("google.thought_tags", f"{BODY}/message/content")}),
    Row(
        "gemini+google-tags-unbalanced",
        {**G_THINK, **USAGE},
        "gemini-api",
        {("google.thought_tags", f"{ASSEMBLED}/message/content")},
    ),
    # google.extra_body_honoured: an error only under vertex, which documents the literal extra_body key
    Row(
        "vertex+google-ignore-extensions",
        THINK,
        "vertex",
        {("google.extra_body_honoured", f"{BODY}/message/content")},
    ),
    Row(
        "vertex+google-ignore-extensions",
        {**THINK, **STREAM},
        "vertex",
        {("google.extra_body_honoured", f"{ASSEMBLED}/message/content")},
    ),
    # google.google_key_honoured: a warning in every built-in profile (Vertex's handling is unknown), so an error
    # only in a profile that asks for it; vertex ignores the top-level key, and honours the same settings in
    # extra_body.
    Row(
        "vertex",
        THINK_TOP,
        STRICT,
        {("google.google_key_honoured", f"{BODY}/message/content")},
        twin_request=THINK,
    ),
    # google.thought_leak
    Row("vertex+google-thought-leak", MARKER_ONLY, "vertex", {("google.thought_leak", f"{BODY}/message/content")}),
    Row("gemini+google-thought-leak", G_QUIET, "gemini-api", {("google.thought_leak", f"{BODY}/message/content")}),
    Row(
        "gemini+google-thought-leak",
        {**G_QUIET, **STREAM},
        "gemini-api",
        {("google.thought_leak", f"{ASSEMBLED}/message/content")},
    ),
    # google.extra_content
    Row(
        "vertex+google-signature-not-base64",
        TOOLS,
        "vertex",
        {("google.extra_content", f"{BODY}/message/tool_calls/0/extra_content/google/thought_signature")},
    ),
    Row(
        "gemini+google-signature-not-base64",
        {**TOOLS, **STREAM},
        "gemini-api",
        # In a stream, the finding names the event that carried the bad value.
        {
            (
                "google.extra_content",
                "/stream/events/0/data/choices/0/delta/tool_calls/0/extra_content/google/thought_signature",
            )
        },
    ),
    Row(
        "vertex+google-thought-not-bool",
        THINK,
        "vertex",
        {("google.extra_content", f"{BODY}/message/extra_content/google/thought")},
    ),
    Row(
        "gemini+google-thought-not-bool",
        {**G_THINK, **STREAM},
        "gemini-api",
        {("google.extra_content", "/stream/events/0/data/choices/0/delta/extra_content/google/thought")},
    ),
    Row(
        "vertex+google-extra-content-misplaced",
        TOOLS,
        "vertex",
        {("google.extra_content", f"{BODY}/extra_content")},
    ),
    # google.usage_extra_properties
    Row(
        "vertex+google-traffic-type-wrong",
        BASE,
        "vertex",
        {("google.usage_extra_properties", "/response/body/usage/extra_properties")},
    ),
    Row(
        "vertex+google-traffic-type-wrong",
        {**THINK, **STREAM},
        "vertex",
        {("google.usage_extra_properties", "/stream/assembled/usage/extra_properties")},
    ),
    # google.extensions_present: Vertex's own members are an error only under openai; vertex allows them
    Row(
        "vertex",
        TOOLS,
        "openai",
        {
            ("google.extensions_present", f"{BODY}/message/tool_calls/0/extra_content"),
            ("response.id_prefix", "/response/body/id"),
            ("response.nullable_members", f"{BODY}/message/refusal"),
        },
        twin_profile="vertex",
    ),
    Row(
        "gemini",
        {**G_THINK, **STREAM},
        "openai",
        {
            ("google.extensions_present", f"{ASSEMBLED}/message/extra_content"),
            ("response.id_prefix", "/stream/assembled/id"),
            ("stream.finish_reason_key", "/stream/events/0/data/choices/0/finish_reason"),
            ("stream.role_first_only", "/stream/events/1/data/choices/0/delta/role"),
        },
        twin_profile="gemini-api",
    ),
]


@pytest.mark.parametrize("row", GOOGLE_FAILING, ids=[r.id for r in GOOGLE_FAILING])
def test_google_defect_fails_with_its_code_and_its_twin_passes(
    server: Server, profiles: dict[str, str], row: Row
) -> None:
    result = _run(server, row.scenario, row.request, row.profile, profiles)
    assert result.verdict is Verdict.FAIL, result.findings
    assert {(f.code, f.pointer) for f in result.errors} == row.wanted, [(f.code, f.pointer) for f in result.errors]
    for finding in result.errors:
        assert finding.message and not finding.message.startswith(("[", "{")), finding.message
    twin = _run(
        server,
        row.twin or row.scenario.split("+")[0],
        row.twin_request or row.request,
        row.twin_profile or row.profile,
        profiles,
    )
    assert twin.verdict is Verdict.PASS and not twin.errors, [(f.code, f.message) for f in twin.findings]
    assert all(f.note and "http" in f.note for f in twin.warnings), "a provider's allowance names its source"


def test_every_google_code_fails_somewhere() -> None:
    from harness.checks import all_codes

    google = {code for code in all_codes() if code.startswith("google.")}
    assert google == {code for row in GOOGLE_FAILING for code, _ in row.wanted if code.startswith("google.")}


# Documented shapes: (scenario, request, provider profile, its warnings, the errors under openai)
DOCUMENTED: list[tuple[str, dict[str, Any], str, set[str], set[str]]] = [
    (
        "vertex",
        BASE,
        "vertex",
        set(),
        {"response.id_prefix", "response.nullable_members", "google.extensions_present"},
    ),
    (
        "vertex",
        THINK,
        "vertex",
        {"response.usage_total_includes_reasoning"},
        {
            "response.id_prefix",
            "response.nullable_members",
            "response.usage_total_includes_reasoning",
            "google.extensions_present",
        },
    ),
    (
        "vertex",
        {**THINK, **STREAM},
        "vertex",
        {"response.usage_total_includes_reasoning", "stream.usage_unrequested"},
        {
            "response.id_prefix",
            "response.usage_total_includes_reasoning",
            "google.extensions_present",
            "stream.finish_reason_key",
            "stream.role_first_only",
            "stream.usage_unrequested",
        },
    ),
    (
        "vertex",
        {**THINK, **USAGE},
        "vertex",
        {"response.usage_total_includes_reasoning", "stream.usage_chunk"},
        {
            "response.id_prefix",
            "response.usage_total_includes_reasoning",
            "google.extensions_present",
            "stream.finish_reason_key",
            "stream.role_first_only",
            "stream.usage_chunk",
        },
    ),
    (
        "vertex",
        TOOLS,
        "vertex",
        set(),
        {"response.id_prefix", "response.nullable_members", "google.extensions_present"},
    ),
    (
        "vertex",
        {**TOOLS, **STREAM},
        "vertex",
        {"stream.usage_unrequested"},
        {"response.id_prefix", "google.extensions_present", "stream.usage_unrequested"},
    ),
    (
        "vertex",
        GCS_IMAGE,
        "vertex",
        set(),
        {"response.id_prefix", "response.nullable_members", "google.extensions_present"},
    ),
    (
        "vertex",
        GCS_AUDIO,
        "vertex",
        set(),
        {"response.id_prefix", "response.nullable_members", "google.extensions_present"},
    ),
    (
        "gemini",
        G_THINK,
        "gemini-api",
        {"response.usage_total_includes_reasoning"},
        {"response.id_prefix", "response.nullable_members", "response.usage_total_includes_reasoning"},
    ),
    (
        "gemini",
        {**G_THINK, **USAGE},
        "gemini-api",
        {"response.usage_total_includes_reasoning", "stream.usage_chunk"},
        {
            "response.id_prefix",
            "response.usage_total_includes_reasoning",
            "google.extensions_present",
            "stream.finish_reason_key",
            "stream.role_first_only",
            "stream.usage_chunk",
        },
    ),
]


def _doc_id(row: tuple[Any, ...]) -> str:
    request = row[1]
    shape = "+".join(k for k in ("extra_body", "tools", "stream", "stream_options") if k in request) or "text"
    if request is GCS_IMAGE or request is GCS_AUDIO:
        shape = "gcs-image" if request is GCS_IMAGE else "gcs-audio"
    return f"{row[0]}-{shape}"


@pytest.mark.parametrize(
    ("scenario", "request_body", "profile", "warned", "strict"), DOCUMENTED, ids=[_doc_id(r) for r in DOCUMENTED]
)
def test_documented_shape_passes_under_its_profile_and_fails_under_openai(
    server: Server,
    profiles: dict[str, str],
    scenario: str,
    request_body: dict[str, Any],
    profile: str,
    warned: set[str],
    strict: set[str],
) -> None:
    allowed = _run(server, scenario, request_body, profile, profiles)
    assert allowed.verdict is Verdict.PASS, [(f.code, f.message) for f in allowed.findings]
    assert {f.code for f in allowed.findings} == warned
    assert all(f.severity is Severity.WARNING and f.note and "http" in f.note for f in allowed.findings)
    openai = _run(server, scenario, request_body, "openai", profiles)
    assert openai.verdict is Verdict.FAIL
    assert {f.code for f in openai.errors} == strict, [(f.code, f.pointer) for f in openai.errors]


def test_the_gemini_error_array_passes_under_gemini_api_and_fails_under_openai(
    server: Server, profiles: dict[str, str]
) -> None:
    allowed = _run(server, "gemini", THINK_TOP, "gemini-api", profiles, expect=REFUSE)
    assert allowed.verdict is Verdict.PASS
    [warning] = allowed.findings
    assert (warning.code, warning.pointer, warning.severity) == (
        "errors.openai_shape",
        "/response/body",
        Severity.WARNING,
    )
    assert warning.note and "http" in warning.note
    assert allowed.exchange is not None and allowed.exchange.response is not None
    [error] = allowed.exchange.response.body
    assert error["error"]["status"] == "INVALID_ARGUMENT" and 'Unknown name "google"' in error["error"]["message"]
    strict = _run(server, "gemini", THINK_TOP, "openai", profiles, expect=REFUSE)
    assert strict.verdict is Verdict.FAIL
    assert [(f.code, f.pointer) for f in strict.errors] == [("errors.openai_shape", "/response/body")]


@pytest.mark.parametrize(
    ("scenario", "request_body", "profile"),
    [
        ("vertex", {**THINK, **STREAM}, "vertex"),
        ("vertex+sse-bytewise", {**THINK, **STREAM}, "vertex"),
        ("gemini", {**G_THINK, **STREAM}, "gemini-api"),
        ("vertex+google-tags-unbalanced", {**THINK, **STREAM}, "vertex"),
        ("gemini+google-tags-unbalanced", {**G_THINK, **STREAM}, "gemini-api"),
    ],
)
def test_thought_tags_split_across_chunks_are_judged_on_the_whole(
    server: Server, profiles: dict[str, str], scenario: str, request_body: dict[str, Any], profile: str
) -> None:
    result = _run(server, scenario, request_body, profile, profiles)
    assert result.exchange is not None and result.exchange.stream is not None
    deltas = [
        choice["delta"].get("content") or ""
        for event in result.exchange.stream.events
        if isinstance(event.json, dict)
        for choice in event.json.get("choices", [])
    ]
    tag = "thought" if scenario.startswith("gemini") else "think"
    if tag == "think":  # Vertex cuts every tag in two: no delta holds a whole one
        assert deltas[:2] == ["<th", "ink>Some "] and not any("<think>" in d or "</think>" in d for d in deltas)
    content = result.exchange.stream.assembled["choices"][0]["message"]["content"]
    if "unbalanced" in scenario:
        assert content == f"<{tag}>{THOUGHTS}{ANSWER}"
        assert [(f.code, f.pointer) for f in result.errors] == [("google.thought_tags", f"{ASSEMBLED}/message/content")]
        assert "do not pair up" in result.errors[0].message
    else:
        assert content == f"<{tag}>{THOUGHTS}</{tag}>{ANSWER}"
        assert result.verdict is Verdict.PASS and not result.errors, [(f.code, f.message) for f in result.errors]


def _catalogue(server: Server, scenario: str, model: str, profile: str) -> dict[str, Result]:
    # The round trips need a model (an answer that uses the tool's result, two calls for two cities, a signature
    # enforced): the test double has none; tests/test_steps.py runs their mechanics on it.
    cases = [c for c in load_cases([bundled("cases") / "google.case.yaml"]) if "roundtrip" not in c.tags]
    endpoint = Endpoint(scenario, server.url(scenario), model=model, profile=profile)
    results = asyncio.run(run(cases, [endpoint], Options(timeout=10, deadline=20), environ={}))
    assert len(results) == len(cases) > 10
    return {r.case_id: without_clients(r) for r in results}


def test_the_seed_catalogue_passes_on_vertex(server: Server) -> None:
    results = _catalogue(server, "vertex", VERTEX_MODEL, "vertex")
    failed = {
        name: [(f.code, f.message) for f in r.errors] for name, r in results.items() if r.verdict is not Verdict.PASS
    }
    assert not failed
    # Which wire shape Vertex honours shows in the report: the literal extra_body, not the top-level google key.
    top = results["google-thinking-wire-top-level-google"]
    assert [(f.code, f.severity) for f in top.findings] == [("google.google_key_honoured", Severity.WARNING)]
    assert "google.google_key_honoured" not in {f.code for f in results["google-thinking-wire-extra-body"].findings}
    others = [f for name, r in results.items() if name != top.case_id for f in r.findings]
    assert all(f.severity is Severity.WARNING and f.note and "http" in f.note for f in others)


def test_the_seed_catalogue_on_gemini_shows_the_top_level_google_key_refused(server: Server) -> None:
    results = _catalogue(server, "gemini", GEMINI_MODEL, "gemini-api")
    top = results.pop("google-thinking-wire-top-level-google")
    assert top.verdict is Verdict.FAIL
    assert top.exchange is not None and top.exchange.response is not None and top.exchange.response.status == 400
    [error] = top.errors
    assert (error.code, error.pointer) == ("http.status", "/response/status")
    assert 'Unknown name "google"' in error.message
    twin = results["google-thinking-wire-extra-body"]
    assert twin.exchange is not None and twin.exchange.response is not None and twin.exchange.response.status == 200
    assert {name: r.verdict for name, r in results.items()} == dict.fromkeys(results, Verdict.PASS)


# Harness bugs found with these doubles: each test says how the harness should behave.


def test_thoughts_cut_by_the_token_limit_are_not_a_tag_error(server: Server, profiles: dict[str, str]) -> None:
    result = _run(server, "vertex", {**THINK, "max_tokens": 1}, "vertex", profiles)
    assert result.exchange is not None and result.exchange.response is not None
    [choice] = result.exchange.response.body["choices"]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("<think>Some", "length")
    assert result.verdict is Verdict.PASS and not result.errors, [(f.code, f.message) for f in result.errors]


def test_extra_content_misplaced_in_a_stream_is_reported(server: Server, profiles: dict[str, str]) -> None:
    result = _run(server, "vertex+google-extra-content-misplaced", {**TOOLS, **STREAM}, "vertex", profiles)
    assert result.verdict is Verdict.FAIL
    assert [f.code for f in result.errors] == ["google.extra_content"]
    assert result.errors[0].pointer.startswith("/stream/")


@pytest.mark.parametrize("key", ["extra_content", "extra\\u005fcontent"], ids=["plain-key", "escaped-key"])
def test_extra_content_on_a_chunks_choice_is_found_however_its_key_is_spelled(key: str) -> None:
    """Chunks are looked into only when their text may hold the key: spelled with a JSON escape, it is still found."""
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    first = {"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}
    text = json.dumps({**chunk, "choices": [{**first, "extra_content": {"google": {"thought": True}}}]})
    events = [text.replace("extra_content", key)]
    events += [json.dumps({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}), "[DONE]"]
    body = "".join(f"data: {e}\n\n" for e in events).encode()
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)
    )
    result = without_clients(
        run_case("http://vertex.invalid/v1", {**BASE, **STREAM}, transport=transport, profile="vertex")
    )
    assert [(f.code, f.pointer) for f in result.errors] == [
        ("google.extra_content", "/stream/events/0/data/choices/0/extra_content")
    ]
    assert "not where Google documents it" in result.errors[0].message
