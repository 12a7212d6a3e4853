"""Hypothesis strategies for Chat Completions requests: public API, for `harness fuzz` and for your own tests.

Each function returns a strategy of plain JSON-able dicts, composed from small parts, so a test can take
exactly the piece it needs:

    from hypothesis import given
    from harness import strategies as cs

    @given(cs.chat_requests(model="my-model", exclude={"input_audio"}))
    def test_endpoint_accepts(request): ...

`chat_requests` yields requests a conformant endpoint must answer with a 200; `invalid_chat_requests` yields
requests it must refuse with a 4xx and a well-formed error body; `malformed_bodies` yields request bodies that
are not JSON at all. `pin` fixes a parameter and `exclude` leaves a part out, so that a limit an endpoint is
known to have (n = 1 only, no audio) does not drown new findings.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Collection, Mapping
from typing import Any

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from .options import FUZZ_PARTS

__all__ = [
    "PARTS",
    "chat_requests",
    "content_parts",
    "conversations",
    "google_extensions",
    "invalid_chat_requests",
    "json_schemas",
    "malformed_bodies",
    "messages",
    "response_formats",
    "sampling_params",
    "texts",
    "tool_choices",
    "tools",
]

# The parts `exclude` may name: content part types, request features, and sampling parameters.
PARTS = FUZZ_PARTS
_SPECIAL_TEXT = (
    "",
    " ",
    "🎒✨",
    "مرحبا بالعالم",
    "שלום",
    "e\u0301\u0301",
    "日本語のテキスト",
    "a\u200db",
    "\t\n",
    "x" * 2000,
)
_PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def _check_names(exclude: Collection[str], pin: Mapping[str, Any]) -> None:
    unknown = sorted(set(exclude) - PARTS)
    if unknown:
        raise InvalidArgument(
            f"exclude names parts this module does not know: {unknown}; expected some of {sorted(PARTS)}"
        )
    if not isinstance(pin, Mapping):
        raise InvalidArgument(
            f"pin must be a mapping of request member to value; got pin={pin!r} (type={type(pin).__name__})"
        )


def texts(min_size: int = 1, max_size: int = 40) -> st.SearchStrategy[str]:
    """Unicode text: letters from every script, emoji, right-to-left, combining marks, and some edge strings."""
    if min_size < 0 or max_size < min_size:
        raise InvalidArgument(f"expected 0 <= min_size <= max_size; got min_size={min_size}, max_size={max_size}")
    generated = st.text(
        st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), min_size=min_size, max_size=max_size
    )
    fitting = [t for t in _SPECIAL_TEXT if min_size <= len(t) <= max_size]
    return st.one_of(generated, st.sampled_from(fitting)) if fitting else generated


def _wav() -> str:
    samples = b"\x00\x00" * 16
    header = (
        b"RIFF"
        + struct.pack("<I", 36 + len(samples))
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16)
    )
    return base64.b64encode(header + b"data" + struct.pack("<I", len(samples)) + samples).decode()


def content_parts(exclude: Collection[str] = ()) -> st.SearchStrategy[dict[str, Any]]:
    """One part of a user message's content: text, an image (as OpenAI documents it) or audio."""
    choices = [st.builds(lambda text: {"type": "text", "text": text}, texts())]
    if "image_url" not in exclude:
        url = st.sampled_from(
            [
                f"data:image/png;base64,{_PIXEL}",
                "https://storage.googleapis.com/cloud-samples-data/generative-ai/image/scones.jpg",
            ]
        )
        detail = st.sampled_from([None, "auto", "low", "high"])
        choices.append(
            st.builds(
                lambda u, d: {"type": "image_url", "image_url": {"url": u} if d is None else {"url": u, "detail": d}},
                url,
                detail,
            )
        )
    if "input_audio" not in exclude:
        choices.append(st.just({"type": "input_audio", "input_audio": {"data": _wav(), "format": "wav"}}))
    return st.one_of(choices)


def messages(role: str = "user", exclude: Collection[str] = ()) -> st.SearchStrategy[dict[str, Any]]:
    """A message of one role: text content, or (for user messages) a list of content parts."""
    if role not in ("system", "developer", "user", "assistant"):
        raise InvalidArgument(f"expected role system, developer, user or assistant; got role={role!r}")
    content: st.SearchStrategy[Any] = texts()
    if role == "user":
        content = st.one_of(texts(), st.lists(content_parts(exclude), min_size=1, max_size=3))
    return st.builds(lambda c: {"role": role, "content": c}, content)


_NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)


def json_schemas(max_depth: int = 2) -> st.SearchStrategy[dict[str, Any]]:
    """Non-recursive JSON Schemas of the subset providers accept: objects, arrays, enums and scalars."""
    if not 0 <= max_depth <= 4:
        raise InvalidArgument(f"expected 0 <= max_depth <= 4; got max_depth={max_depth}")
    scalar = st.one_of(
        st.sampled_from([{"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}]),
        st.lists(_NAMES, min_size=1, max_size=4, unique=True).map(lambda values: {"type": "string", "enum": values}),
    )

    def objects(props: dict[str, dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        return st.sets(st.sampled_from(sorted(props))).map(
            lambda required: {
                "type": "object",
                "properties": props,
                "required": sorted(required),
                "additionalProperties": False,
            }
        )

    def extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
        arrays = inner.map(lambda items: {"type": "array", "items": items})
        return st.one_of(arrays, st.dictionaries(_NAMES, inner, min_size=1, max_size=4).flatmap(objects))

    schema = st.recursive(scalar, extend, max_leaves=6) if max_depth else scalar
    wrap = {"type": "object", "required": ["value"], "additionalProperties": False}
    return schema.map(lambda s: s if s.get("type") == "object" else {**wrap, "properties": {"value": s}})


def tools(min_size: int = 1, max_size: int = 3) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Function tools with distinct names and generated `parameters` schemas."""
    if not 1 <= min_size <= max_size <= 128:
        raise InvalidArgument(f"expected 1 <= min_size <= max_size <= 128; got {min_size}, {max_size}")
    tool = st.builds(
        lambda name, description, params: {
            "type": "function",
            "function": {"name": name, "description": description, "parameters": params},
        },
        _NAMES,
        texts(max_size=60),
        json_schemas(1),
    )
    return st.lists(tool, min_size=min_size, max_size=max_size, unique_by=lambda t: t["function"]["name"])


def tool_choices(declared: list[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """A `tool_choice` valid for the declared tools: none, auto, required, or one of them by name."""
    names = [t["function"]["name"] for t in declared]
    if not names:
        raise InvalidArgument("tool_choices needs at least one declared tool")
    named = st.sampled_from(names).map(lambda n: {"type": "function", "function": {"name": n}})
    return st.one_of(st.sampled_from(["none", "auto", "required"]), named)


def response_formats() -> st.SearchStrategy[dict[str, Any]]:
    """`response_format`: text, json_object, or json_schema with a generated (non-recursive) schema."""
    schema = st.builds(
        lambda name, s, strict: {"type": "json_schema", "json_schema": {"name": name, "schema": s, "strict": strict}},
        _NAMES,
        json_schemas(),
        st.booleans(),
    )
    return st.one_of(st.just({"type": "text"}), st.just({"type": "json_object"}), schema)


def sampling_params(exclude: Collection[str] = ()) -> st.SearchStrategy[dict[str, Any]]:
    """Sampling parameters at and around their documented bounds (inside them: these are valid)."""
    bounded = {
        "temperature": st.one_of(st.sampled_from([0.0, 2.0, 1.0]), st.floats(0, 2)),
        "top_p": st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0, 1, exclude_min=True)),
        "n": st.integers(1, 3),
        "max_tokens": st.integers(1, 24),
        "max_completion_tokens": st.integers(1, 24),
        "stop": st.one_of(_NAMES, st.lists(_NAMES, min_size=1, max_size=4)),
        "seed": st.integers(-(2**31), 2**31 - 1),
        "presence_penalty": st.one_of(st.sampled_from([-2.0, 2.0]), st.floats(-2, 2)),
        "frequency_penalty": st.one_of(st.sampled_from([-2.0, 2.0]), st.floats(-2, 2)),
    }
    return st.fixed_dictionaries({}, optional={k: v for k, v in bounded.items() if k not in exclude})


def google_extensions() -> st.SearchStrategy[dict[str, Any]]:
    """Google's request extensions, in the documented wire shape (a literal top-level `extra_body` key)."""
    google = st.fixed_dictionaries(
        {},
        optional={
            "thinking_config": st.fixed_dictionaries(
                {}, optional={"include_thoughts": st.booleans(), "thinking_budget": st.integers(0, 1024)}
            ),
            "thought_tag_marker": st.sampled_from(["think", "thought", "reasoning"]),
        },
    )
    return google.map(lambda g: {"extra_body": {"google": g}})


@st.composite
def conversations(
    draw: st.DrawFn, exclude: Collection[str] = (), declared: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Messages in a legal order: an optional system turn, user and assistant turns, and (with tools) an
    assistant tool call answered by tool results that name its ids."""
    turns: list[dict[str, Any]] = []
    if "system" not in exclude and draw(st.booleans()):
        turns.append(draw(messages("system")))
    turns.append(draw(messages("user", exclude)))
    if "multi_turn" not in exclude and draw(st.booleans()):
        if declared and draw(st.booleans()):
            function = draw(st.sampled_from(declared))["function"]
            call_id = "call_" + draw(st.from_regex(r"[A-Za-z0-9]{8}", fullmatch=True))
            turns.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": call_id, "type": "function", "function": {"name": function["name"], "arguments": "{}"}}
                    ],
                }
            )
            turns.append({"role": "tool", "tool_call_id": call_id, "content": draw(texts())})
        else:
            turns.append(draw(messages("assistant")))
        turns.append(draw(messages("user", exclude)))
    return turns


@st.composite
def chat_requests(
    draw: st.DrawFn,
    model: str | None = None,
    pin: Mapping[str, Any] | None = None,
    exclude: Collection[str] = (),
    max_tokens: int | None = 24,
) -> dict[str, Any]:
    """A request every conformant Chat Completions endpoint must answer with a 200.

    Generation is capped (`max_tokens` is set to this when neither token limit was drawn) because every
    example is a request someone pays for; `max_tokens=None` leaves requests uncapped.
    """
    _check_names(exclude, pin or {})
    pin = dict(pin or {})
    request: dict[str, Any] = {} if model is None else {"model": model}
    declared = draw(tools()) if "tools" not in exclude and draw(st.booleans()) else None
    request["messages"] = draw(conversations(exclude, declared))
    request.update(draw(sampling_params(exclude)))
    if declared:
        request["tools"] = declared
        if draw(st.booleans()):
            request["tool_choice"] = draw(tool_choices(declared))
    if "response_format" not in exclude and not declared and draw(st.booleans()):
        request["response_format"] = draw(response_formats())
        if request["response_format"]["type"] == "json_object":
            # OpenAI requires the word JSON in the messages for json_object.
            request["messages"].append({"role": "user", "content": "Reply in JSON."})
    if "stream" not in exclude and draw(st.booleans()):
        request["stream"] = True
        if draw(st.booleans()):
            request["stream_options"] = {"include_usage": True}
    if "google" not in exclude and draw(st.booleans()):
        request.update(draw(google_extensions()))
    if max_tokens is not None and "max_tokens" not in request and "max_completion_tokens" not in request:
        request["max_tokens"] = max_tokens
    request.update(pin)
    return request


def _drop(request: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k != key}


def invalid_chat_requests(
    model: str | None = None, pin: Mapping[str, Any] | None = None, exclude: Collection[str] = ()
) -> st.SearchStrategy[dict[str, Any]]:
    """A request every conformant endpoint must refuse with a 4xx: each breaks one documented rule.

    `pin` and `exclude` shape the valid request that is then broken, as for `chat_requests`; the member a
    variant breaks is broken even when pinned, since breaking it is the point.
    """
    _check_names(exclude, pin or {})
    base = chat_requests(model, pin=pin, exclude={*exclude, "stream", "google", "tools", "response_format"})
    broken = [
        # wrong types
        ("temperature", "hot"),
        ("max_tokens", "ten"),
        ("n", 1.5),
        ("top_p", [1]),
        ("stream", "yes"),
        ("messages", "hello"),
        ("stop", 7),
        # out of the documented ranges
        ("temperature", 2.5),
        ("temperature", -0.5),
        ("top_p", 1.5),
        ("n", 0),
        ("presence_penalty", 3.0),
        ("frequency_penalty", -2.5),
        ("max_tokens", -5),
        ("stop", ["a", "b", "c", "d", "e"]),
    ]
    # A member left out (a known limit of the endpoint) is not broken either.
    kept = st.sampled_from([(k, v) for k, v in broken if k not in exclude])
    bad_role = st.sampled_from(["wizard", "bot", "", "USER"])
    return st.one_of(
        base.map(lambda r: _drop(r, "messages")),
        st.tuples(base, kept).map(lambda t: {**t[0], t[1][0]: t[1][1]}),
        st.tuples(base, bad_role).map(lambda t: {**t[0], "messages": [{"role": t[1], "content": "Hello."}]}),
        base.map(lambda r: {**r, "messages": []}),
    )


def malformed_bodies() -> st.SearchStrategy[str]:
    """Request bodies that are not JSON: cut short, trailing commas, single quotes, plain text."""
    return st.sampled_from(
        [
            '{"model": "x", "messages": [',
            '{"messages": [{"role": "user", "content": "hi"},]}',
            "{'messages': [{'role': 'user', 'content': 'hi'}]}",
            "messages=hello",
            "",
            '{"messages": [{"role": "user", "content": "hi"}]} trailing',
        ]
    )
