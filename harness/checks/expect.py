"""What the case itself asks for in `expect`, beyond what follows from the request."""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..models import Exchange, Finding
from ..pointer import MISSING, join, resolve
from . import CheckContext, answered_ok, body, check, choices, message, root, short, tool_calls


@check(applies=lambda ex, ctx: answered_ok(ex, ctx) and bool(ctx.expect.finish_reason))
def finish_reason(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Each choice ends with a finish_reason the case accepts."""
    wanted = list(context.expect.finish_reason)
    for pointer, choice in choices(exchange):
        reason = choice.get("finish_reason")
        if reason not in wanted:
            yield Finding(
                "expect.finish_reason",
                join(pointer, "finish_reason"),
                f"the case expects finish_reason {' or '.join(map(repr, wanted))}; got {reason!r}",
                wanted,
                reason,
            )


@check(applies=lambda ex, ctx: answered_ok(ex, ctx) and ctx.expect.content_matches is not None)
def content_matches(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Each choice's content contains a match for the case's regular expression."""
    pattern = context.expect.content_matches
    assert pattern is not None
    for pointer, choice in choices(exchange):
        content = message(choice).get("content")
        if not isinstance(content, str) or not re.search(pattern, content):
            yield Finding(
                "expect.content_matches",
                join(pointer, "message", "content"),
                f"the content must match /{pattern}/; got {short(content)}",
                pattern,
                content,
            )


@check(applies=lambda ex, ctx: answered_ok(ex, ctx) and bool(ctx.expect.tool_names))
def tool_names(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The answer calls each function the case names."""
    called = {
        c.get("function", {}).get("name")
        for _, ch in choices(exchange)
        for c in tool_calls(ch)
        if isinstance(c, dict) and isinstance(c.get("function"), dict)
    }
    missing = [n for n in context.expect.tool_names if n not in called]
    if missing:
        yield Finding(
            "expect.tool_names",
            join(root(exchange), "choices"),
            f"the case expects a call to {', '.join(missing)}; "
            f"the answer called {', '.join(sorted(map(str, called))) or 'nothing'}",
            list(context.expect.tool_names),
            sorted(map(str, called)),
        )


@check(applies=lambda ex, ctx: answered_ok(ex, ctx) and bool(ctx.expect.pointers))
def pointer(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The response body holds what the case asserts at each JSON pointer."""
    document = body(exchange)
    for item in context.expect.pointers:
        at = item["pointer"]
        where = join(root(exchange), at)
        value = resolve(document, at)
        if "present" in item and (value is not MISSING) != item["present"]:
            state = "present" if item["present"] else "absent"
            yield Finding(
                "expect.pointer",
                where,
                f"{at or '/'} must be {state}; got {short(value) if value is not MISSING else 'nothing'}",
                state,
                None if value is MISSING else value,
            )
        if "equals" in item and (value is MISSING or value != item["equals"]):
            yield Finding(
                "expect.pointer",
                where,
                f"{at or '/'} must equal {short(item['equals'])}; got "
                f"{'nothing' if value is MISSING else short(value)}",
                item["equals"],
                None if value is MISSING else value,
            )
        if "matches" in item and not (isinstance(value, str) and re.search(item["matches"], value)):
            yield Finding(
                "expect.pointer",
                where,
                f"{at or '/'} must be a string matching /{item['matches']}/; got "
                f"{'nothing' if value is MISSING else short(value)}",
                item["matches"],
                None if value is MISSING else value,
            )
