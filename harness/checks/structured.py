"""Structured output: with a JSON `response_format`, the content is JSON and nothing else."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .. import schemas
from ..bounded import TooDeep, loads
from ..models import Exchange, Finding
from ..pointer import join
from . import CheckContext, answered_ok, check, choices, message, request, short

_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _format(exchange: Exchange) -> dict[str, Any]:
    value = request(exchange).get("response_format")
    return value if isinstance(value, dict) else {}


def _applies(exchange: Exchange, context: CheckContext) -> bool:
    return answered_ok(exchange, context) and _format(exchange).get("type") in ("json_object", "json_schema")


def _diagnose(text: str, why: str | None = None) -> str:
    """Why content is not JSON, in the words a user would search for."""
    if why is not None:
        return why
    fenced = _FENCE.match(text)
    if fenced:
        try:
            loads(fenced.group(1), constants=True)
            return "it is JSON wrapped in a markdown code fence"
        except ValueError:
            pass
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start > 0 or (start == 0 and text.rstrip()[-1:] not in "}]"):
        decoder = json.JSONDecoder()
        try:
            decoder.raw_decode(text[start:])
            return "it has text around the JSON"
        except (ValueError, RecursionError):  # RecursionError: nested past what Python's parser can read
            pass
    if not text.strip():
        return "it is empty"
    return "it does not parse as JSON"


def _contents(exchange: Exchange) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for pointer, choice in choices(exchange):
        content = message(choice).get("content")
        if isinstance(content, str) and not message(choice).get("tool_calls"):
            yield join(pointer, "message", "content"), content, choice


def _parse(text: str) -> tuple[bool, Any]:
    try:
        return True, loads(text, constants=True)
    except ValueError:
        return False, None


def _too_deep(text: str) -> str | None:
    """Why JSON content that parses is still not judged: it nests past what the harness reads."""
    try:
        loads(text, constants=True)
    except TooDeep as exc:
        return str(exc)
    except ValueError:
        pass
    return None


@check(applies=_applies)
def content_json(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The content is a JSON document (an object for `json_object`): no code fence, no prose around it."""
    kind = _format(exchange)["type"]
    for pointer, text, choice in _contents(exchange):
        ok, value = _parse(text)
        if not ok:
            deep = _too_deep(text)
            if cut_short(exchange, choice) and deep is None:
                continue  # cut short by max_tokens or a stop sequence: structured.truncated reports it
            yield Finding(
                "structured.content_json",
                pointer,
                f"with response_format {kind}, the content must be only JSON; {_diagnose(text, deep)}: {short(text)}",
                "a JSON document",
                text,
            )
        elif kind == "json_object" and not isinstance(value, dict):
            yield Finding(
                "structured.content_json",
                pointer,
                f"with response_format json_object, the content must be a JSON object; got a {type(value).__name__}",
                "a JSON object",
                text,
            )


def cut_short(exchange: Exchange, choice: dict[str, Any]) -> str | None:
    """Why the answer may have stopped mid-JSON: the token limit, or one of the request's stop sequences."""
    reason = choice.get("finish_reason")
    if reason == "length":
        return "the token limit (finish_reason 'length'); raise max_tokens in the case"
    if reason == "stop" and request(exchange).get("stop"):
        return "one of the request's stop sequences (finish_reason 'stop')"
    return None


@check(applies=_applies)
def truncated(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """JSON content cut off by the token limit or a stop sequence: what the request asked for, not a fault."""
    for pointer, text, choice in _contents(exchange):
        why = cut_short(exchange, choice)
        if why and not _parse(text)[0] and _too_deep(text) is None:
            yield Finding(
                "structured.truncated",
                pointer,
                f"the JSON content was cut off by {why}, so it cannot be checked",
                "complete JSON",
                short(text),
            )


@check(applies=lambda ex, ctx: _applies(ex, ctx) and _format(ex).get("type") == "json_schema")
def schema_valid(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The JSON content satisfies the schema the request gave in `response_format.json_schema.schema`."""
    spec = _format(exchange).get("json_schema")
    document = spec.get("schema") if isinstance(spec, dict) else None
    if not isinstance(document, dict | bool):
        return
    name = spec.get("name", "the schema") if isinstance(spec, dict) else "the schema"
    for pointer, text, _ in _contents(exchange):
        ok, value = _parse(text)
        if not ok:
            continue
        for error in schemas.validate(context.validator(document), value):
            yield Finding(
                "structured.schema_valid",
                pointer,
                f"the content does not match {name!r} at {error.pointer or 'the top'}: {error.message} "
                f"(schema: {error.keyword} at {error.schema_path})",
                None,
                value,
            )
