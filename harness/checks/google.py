"""Google's extensions: thought tags, `extra_content` in answers, and whether an extension was honoured.

A request carries Google's settings in one of two wire shapes, a literal `extra_body` key (documented) or a
top-level `google` key (what the OpenAI SDK sends for `extra_body={'google': ...}`); each finding names the
shape, so a report shows which one an endpoint honours.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from ..models import Exchange, Finding
from ..pointer import join
from . import CheckContext, answered_ok, body, check, choices, message, request, root, short

# Where Google documents extra_content in answers, and the types of its members.
_PLACES = (
    re.compile(r"^/choices/\d+/message$"),
    re.compile(r"^/choices/\d+/message/tool_calls/\d+$"),
    re.compile(r"^/choices/\d+/message/audio$"),
)


def settings(exchange: Exchange) -> tuple[str, dict[str, Any]] | None:
    """(wire shape, Google settings) of the request, or None when it carries none."""
    sent = request(exchange)
    extra = sent.get("extra_body")
    if isinstance(extra, dict) and isinstance(extra.get("google"), dict):
        return "extra_body.google", extra["google"]
    if isinstance(sent.get("google"), dict):
        return "top-level google", sent["google"]
    return None


def _marker(exchange: Exchange) -> tuple[str, str | None, bool] | None:
    """(wire shape, thought tag marker, include_thoughts) when the request asks for anything about thoughts."""
    found = settings(exchange)
    if found is None:
        return None
    shape, google = found
    config = google.get("thinking_config")
    include = isinstance(config, dict) and config.get("include_thoughts") is True
    marker = google.get("thought_tag_marker")
    return shape, marker if isinstance(marker, str) and marker else None, include


def _contents(exchange: Exchange) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for pointer, choice in choices(exchange):
        content = message(choice).get("content")
        if isinstance(content, str):
            yield join(pointer, "message", "content"), content, choice


def _tag_problem(content: str, marker: str, finish_reason: Any) -> str | None:
    """What is wrong with the thought tags in `content`, or None when they are well formed."""
    opening, closing = f"<{marker}>", f"</{marker}>"
    tags = re.findall(re.escape(opening) + "|" + re.escape(closing), content)
    if not tags:
        return None
    expected = [opening, closing] * (len(tags) // 2 + 1)
    cut_short = finish_reason == "length" and tags[-1] == opening  # the token limit came while thinking
    if tags != expected[: len(tags)] or (len(tags) % 2 and not cut_short):
        return f"the {opening} and {closing} tags do not pair up (in order: {' '.join(tags)})"
    before = content[: content.index(opening)]
    if before.strip():
        return f"text comes before the first {opening}: {short(before, 60)}"
    if cut_short:
        return None
    answer = content[content.rindex(closing) + len(closing) :]
    if not answer.strip() and finish_reason != "length":
        return f"nothing follows the last {closing}: the answer is empty, only thoughts came back"
    return None


def _thoughts(exchange: Exchange, context: CheckContext) -> bool:
    return answered_ok(exchange, context) and _marker(exchange) is not None


@check(applies=_thoughts)
def thought_tags(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Thought tags are balanced `<m>…</m>` before a non-empty answer (in a stream: across chunk boundaries)."""
    found = _marker(exchange)
    assert found is not None
    shape, marker, include = found
    names = [marker] if marker else (["thought"] if include else [])
    for pointer, content, choice in _contents(exchange):
        for name in names:
            problem = _tag_problem(content, name, choice.get("finish_reason"))
            if problem:
                yield Finding(
                    "google.thought_tags",
                    pointer,
                    f"{problem} ({shape}.thought_tag_marker {name!r})",
                    f"<{name}>…</{name}> then the answer",
                    short(content, 200),
                )


def _honoured(exchange: Exchange, wanted: str, code: str) -> Iterator[Finding]:
    found = _marker(exchange)
    assert found is not None
    shape, marker, include = found
    if shape != wanted or not (marker and include):
        return
    for pointer, content, _ in _contents(exchange):
        if f"<{marker}>" not in content:
            yield Finding(
                code,
                pointer,
                f"the request set {shape}.thinking_config.include_thoughts and thought_tag_marker {marker!r}, "
                f"but the content has no <{marker}> tag: the {shape} settings were ignored",
                f"<{marker}>",
                short(content, 120),
            )


@check(applies=_thoughts)
def extra_body_honoured(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Thoughts asked for in a literal `extra_body.google` (the documented wire shape) come back in tags."""
    yield from _honoured(exchange, "extra_body.google", "google.extra_body_honoured")


@check(applies=_thoughts)
def google_key_honoured(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Thoughts asked for in a top-level `google` key (what the SDK's plain extra_body sends) come back in tags."""
    yield from _honoured(exchange, "top-level google", "google.google_key_honoured")


@check(applies=_thoughts)
def thought_leak(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Without include_thoughts, no thought text comes back in the content or flagged as a thought."""
    found = _marker(exchange)
    assert found is not None
    shape, marker, include = found
    if include:
        return
    for pointer, content, choice in _contents(exchange):
        flagged = (message(choice).get("extra_content") or {}).get("google", {})
        leaked = [f"<{name}>" for name in {marker or "thought", "thought"} if f"<{name}>" in content]
        if leaked or (isinstance(flagged, dict) and flagged.get("thought") is True):
            what = f"the content holds {', '.join(leaked)}" if leaked else "the message is flagged thought: true"
            yield Finding(
                "google.thought_leak",
                pointer,
                f"{what}, though the request did not set {shape}.thinking_config.include_thoughts",
                "no thoughts",
                short(content, 120),
            )


def _extra_contents(value: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "extra_content":
                yield pointer, item
            else:
                yield from _extra_contents(item, join(pointer, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _extra_contents(item, join(pointer, i))


_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}|[A-Za-z0-9_-]+={0,2}")


def _base64(text: str) -> bool:
    """Standard or URL-safe base64, padded or not: what google-auth and the SDKs decode."""
    if not _BASE64.fullmatch(text) or len(text.rstrip("=")) % 4 == 1:
        return False
    try:
        base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return False
    return True


def _streamed_places(exchange: Exchange) -> Iterator[tuple[str, str, Any]]:
    """(place relative to the chunk, pointer, value) of each extra_content in a stream's chunks."""
    assert exchange.stream is not None
    for i, event in enumerate(exchange.stream.events):
        if "extra_content" not in event.data and "\\u" not in event.data:
            continue  # most chunks: no walk through every member (a key may also be spelled with escapes)
        for at, value in _extra_contents(event.json):
            yield at.replace("/delta", "/message", 1), join("/stream/events", i, "data", at, "extra_content"), value


def _placed(exchange: Exchange) -> Iterator[tuple[str, str, Any]]:
    """(place as in a plain answer, pointer, value) of each extra_content in the answer."""
    if exchange.stream is not None:
        yield from _streamed_places(exchange)
        return
    for at, value in _extra_contents(body(exchange)):
        yield at, join(root(exchange), at, "extra_content"), value


def _with_extensions(exchange: Exchange, context: CheckContext) -> bool:
    return answered_ok(exchange, context) and any(True for _ in _placed(exchange))


@check(applies=_with_extensions)
def extra_content(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`extra_content` sits where Google documents it, and `thought_signature` is base64, `thought` a boolean."""
    for at, where, value in _placed(exchange):
        if not any(place.match(at) for place in _PLACES):
            yield Finding(
                "google.extra_content",
                where,
                f"extra_content at {at or '/'} is not where Google documents it (on a message, a tool call, "
                "or image output in message.audio)",
                "message, tool call or audio",
                at,
            )
            continue
        google = value.get("google") if isinstance(value, dict) else None
        if not isinstance(google, dict):
            yield Finding(
                "google.extra_content",
                where,
                f"extra_content must hold a google object; got {short(value)}",
                {"google": {}},
                value,
            )
            continue
        signature = google.get("thought_signature")
        if signature is not None and not (isinstance(signature, str) and signature and _base64(signature)):
            yield Finding(
                "google.extra_content",
                join(where, "google", "thought_signature"),
                f"thought_signature must be a base64 string; got {short(signature)}",
                "base64",
                signature,
            )
        if "thought" in google and not isinstance(google["thought"], bool):
            yield Finding(
                "google.extra_content",
                join(where, "google", "thought"),
                f"thought must be a boolean; got {short(google['thought'])}",
                "a boolean",
                google["thought"],
            )


@check(applies=answered_ok)
def extensions_present(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The answer carries Google's own members (extra_content, usage.extra_properties), which OpenAI never sends."""
    answer = body(exchange)
    places = [join(root(exchange), at, "extra_content") for at, _ in _extra_contents(answer)]
    usage = answer.get("usage") if isinstance(answer, dict) else None
    if isinstance(usage, dict) and "extra_properties" in usage:
        places.append(join(root(exchange), "usage", "extra_properties"))
    if places:
        yield Finding(
            "google.extensions_present",
            places[0],
            f"the answer carries Google's extension members at {', '.join(places[:3])}"
            + (f" and {len(places) - 3} more" if len(places) > 3 else ""),
            None,
            places,
        )


@check(applies=answered_ok)
def usage_extra_properties(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Vertex's `usage.extra_properties.google.traffic_type` is ON_DEMAND or PROVISIONED_THROUGHPUT."""
    answer = body(exchange)
    usage = answer.get("usage") if isinstance(answer, dict) else None
    extra = usage.get("extra_properties") if isinstance(usage, dict) else None
    if extra is None:
        return
    at = join(root(exchange), "usage", "extra_properties")
    traffic = (
        extra.get("google", {}).get("traffic_type")
        if isinstance(extra, dict) and isinstance(extra.get("google"), dict)
        else None
    )
    if traffic not in ("ON_DEMAND", "PROVISIONED_THROUGHPUT"):
        yield Finding(
            "google.usage_extra_properties",
            at,
            f"usage.extra_properties must be {{google: {{traffic_type: ON_DEMAND|PROVISIONED_THROUGHPUT}}}} as "
            f"Vertex documents it; got {short(extra)}",
            "ON_DEMAND or PROVISIONED_THROUGHPUT",
            extra,
        )
