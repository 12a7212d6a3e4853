"""The public surface users' scripts depend on: the names `harness` exports and the check codes findings carry."""

from __future__ import annotations

import importlib
import re

import pytest

import harness
from harness.checks import all_codes, registry

PUBLIC_NAMES = [
    "Case",
    "CaseFileError",
    "CheckContext",
    "ConfigError",
    "Endpoint",
    "Exchange",
    "Expect",
    "Finding",
    "HarnessError",
    "Options",
    "Profile",
    "Result",
    "Severity",
    "Verdict",
    "__version__",
    "check",
    "load_cases",
    "load_profile",
    "run",
]

CHECK_CODES = [
    "client.openai_node.changed",
    "client.openai_node.dropped",
    "client.openai_node.error_changed",
    "client.openai_node.error_unread",
    "client.openai_node.extension_lost",
    "client.openai_node.raised",
    "client.openai_node.round_trip",
    "client.openai_node.signature_lost",
    "client.openai_python.changed",
    "client.openai_python.dropped",
    "client.openai_python.error_changed",
    "client.openai_python.error_unread",
    "client.openai_python.extension_lost",
    "client.openai_python.raised",
    "client.openai_python.round_trip",
    "client.openai_python.signature_lost",
    "errors.body_schema",
    "errors.openai_shape",
    "expect.content_matches",
    "expect.finish_reason",
    "expect.pointer",
    "expect.tool_names",
    "google.extensions_present",
    "google.extra_body_honoured",
    "google.extra_content",
    "google.google_key_honoured",
    "google.thought_leak",
    "google.thought_tags",
    "google.usage_extra_properties",
    "harness.check_crashed",
    "http.body_json",
    "http.content_type",
    "http.status",
    "params.audio_returned",
    "params.logprobs_returned",
    "params.logprobs_valid",
    "params.n_choices_differ",
    "params.prediction_counted",
    "params.prompt_cache_hit",
    "params.reasoning_moves",
    "params.reasoning_reported",
    "params.seed_repeatable",
    "params.service_tier_echoed",
    "params.single_tool_call",
    "params.stop_absent",
    "params.token_limit",
    "params.top_logprobs_count",
    "params.top_logprobs_returned",
    "params.url_citations",
    "replay.stale",
    "replay.unreadable",
    "response.choice_count",
    "response.choices_indexed",
    "response.choices_present",
    "response.content_present",
    "response.finish_reason_consistent",
    "response.finish_reason_valid",
    "response.id_prefix",
    "response.nullable_members",
    "response.reasoning_not_in_content",
    "response.reasoning_tokens_counted",
    "response.reasoning_well_formed",
    "response.role_assistant",
    "response.schema",
    "response.usage_present",
    "response.usage_total",
    "response.usage_total_includes_reasoning",
    "steps.value_missing",
    "stream.after_done",
    "stream.choice_index",
    "stream.chunk_schema",
    "stream.consistent_created",
    "stream.consistent_id",
    "stream.content_type",
    "stream.data_json",
    "stream.done_marker",
    "stream.error_event",
    "stream.finish_reason",
    "stream.finish_reason_key",
    "stream.finish_reason_once",
    "stream.framing",
    "stream.matches_plain",
    "stream.role_assistant",
    "stream.role_first_only",
    "stream.text_matches_plain",
    "stream.tool_call_fragments",
    "stream.tool_call_head_once",
    "stream.tool_call_index",
    "stream.tool_call_index_once",
    "stream.tool_call_indexes_dense",
    "stream.unterminated",
    "stream.usage_chunk",
    "stream.usage_present",
    "stream.usage_unrequested",
    "structured.content_json",
    "structured.schema_valid",
    "structured.truncated",
    "tools.arguments_json",
    "tools.arguments_valid",
    "tools.call_ids",
    "tools.choice_honoured",
    "tools.name_declared",
    "transport.connect",
    "transport.deadline",
    "transport.protocol",
    "transport.reset",
    "transport.timeout",
    "transport.too_large",
]


def test_public_names_are_pinned() -> None:
    """`from harness import *` gives exactly these names; adding one is a decision, removing one a breaking change."""
    assert harness.__all__ == PUBLIC_NAMES
    assert sorted(harness.__all__) == harness.__all__


@pytest.mark.parametrize("name", PUBLIC_NAMES)
def test_public_name_is_importable(name: str) -> None:
    module = importlib.import_module("harness")
    assert getattr(module, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from harness import {name}", namespace)
    assert namespace[name] is getattr(module, name)


def test_version_is_a_version() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", harness.__version__)


def test_check_codes_are_pinned() -> None:
    """Every code a finding can carry, pinned.

    Codes are public API: reports, JUnit failure types, profiles (`tools.call_ids: warning`) and users' scripts
    refer to them. Renaming or removing a code is a breaking change and needs a deprecation, not a quiet edit of
    this list; adding one is a decision to make on purpose (and a line here).
    """
    assert all_codes() == CHECK_CODES


def test_check_codes_are_family_dot_name() -> None:
    for code in all_codes():
        assert re.fullmatch(r"[a-z]+\.[a-z_]+(\.[a-z_]+)?", code), code
    for code, item in registry().items():
        assert set(item.codes or [code]) <= set(all_codes())
        assert all(sub.startswith(code + ".") for sub in item.codes)


def test_every_registered_check_has_a_description() -> None:
    for code, item in registry().items():
        assert item.code == code and item.description, code
