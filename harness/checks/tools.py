"""Tool calls: each names a declared function, with JSON arguments that its parameters accept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import schemas
from ..bounded import TooDeep, loads
from ..models import Exchange, Finding
from ..pointer import join
from . import CheckContext, answered_ok, check, choices, request, short, tool_calls


def _declared(exchange: Exchange) -> dict[str, dict[str, Any]]:
    """Declared function name -> its `function` object."""
    out = {}
    for tool in request(exchange).get("tools") or []:
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            name = tool["function"].get("name")
            if isinstance(name, str):
                out[name] = tool["function"]
    return out


def _calls(exchange: Exchange, complete: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """(pointer, call) for each tool call; `complete` leaves out answers cut short by the token limit."""
    for pointer, choice in choices(exchange):
        if complete and choice.get("finish_reason") == "length":
            continue
        for j, call in enumerate(tool_calls(choice)):
            if isinstance(call, dict):
                yield join(pointer, "message", "tool_calls", j), call


def _function(call: dict[str, Any]) -> dict[str, Any]:
    value = call.get("function")
    return value if isinstance(value, dict) else {}


def _has_calls(exchange: Exchange, context: CheckContext) -> bool:
    return answered_ok(exchange, context) and any(True for _ in _calls(exchange))


@check(applies=_has_calls)
def name_declared(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Every call names a function the request declared."""
    declared = _declared(exchange)
    for pointer, call in _calls(exchange):
        name = _function(call).get("name")
        if isinstance(name, str) and name not in declared:
            known = ", ".join(declared) or "no tools at all"
            yield Finding(
                "tools.name_declared",
                join(pointer, "function", "name"),
                f"tool call names {name!r}, which the request did not declare (it declared {known})",
                sorted(declared),
                name,
            )


def _parsed_arguments(call: dict[str, Any]) -> tuple[bool, Any]:
    raw = _function(call).get("arguments")
    if not isinstance(raw, str):
        return False, None
    try:
        return True, loads(raw, constants=True)
    except ValueError:
        return False, None


def _unreadable(raw: str) -> str:
    """Why arguments do not parse, as the finding says it."""
    try:
        loads(raw, constants=True)
    except TooDeep as exc:
        return f"arguments must be a JSON object encoded as a string; {exc}"
    except ValueError:
        pass
    return f"arguments must be a JSON object encoded as a string; it does not parse: {short(raw)}"


@check(applies=_has_calls)
def arguments_json(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`arguments` is a string of JSON that parses to an object, as clients `json.loads` it."""
    for pointer, call in _calls(exchange, complete=True):
        raw = _function(call).get("arguments")
        if not isinstance(raw, str):
            continue  # a non-string is a schema finding
        ok, value = _parsed_arguments(call)
        if not ok:
            yield Finding(
                "tools.arguments_json",
                join(pointer, "function", "arguments"),
                _unreadable(raw),
                "a JSON object",
                raw,
            )
        elif not isinstance(value, dict):
            yield Finding(
                "tools.arguments_json",
                join(pointer, "function", "arguments"),
                f"arguments must encode a JSON object; got a {type(value).__name__}: {short(raw)}",
                "a JSON object",
                raw,
            )


@check(applies=_has_calls)
def arguments_valid(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The parsed arguments satisfy the declared function's `parameters` schema."""
    declared = _declared(exchange)
    for pointer, call in _calls(exchange, complete=True):
        function = declared.get(_function(call).get("name"))  # type: ignore[arg-type]
        ok, value = _parsed_arguments(call)
        if function is None or not ok or not isinstance(value, dict):
            continue
        parameters = function.get("parameters")
        if not isinstance(parameters, dict | bool):
            continue
        for error in schemas.validate(context.validator(parameters), value):
            where = error.pointer or "the arguments"
            yield Finding(
                "tools.arguments_valid",
                join(pointer, "function", "arguments"),
                f"arguments of {function['name']!r} do not match its parameters at {where}: {error.message} "
                f"(schema: {error.keyword} at {error.schema_path})",
                None,
                value,
            )


@check(applies=_has_calls)
def call_ids(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Each call has a non-empty id, unique in its message: the tool result must name it."""
    for pointer, choice in choices(exchange):
        seen: dict[str, int] = {}
        for j, call in enumerate(tool_calls(choice)):
            if not isinstance(call, dict):
                continue
            call_id = call.get("id")
            at = join(pointer, "message", "tool_calls", j, "id")
            if call_id == "":
                yield Finding(
                    "tools.call_ids",
                    at,
                    "a tool call id must not be empty: the tool result has to quote it",
                    "a non-empty id",
                    "",
                )
            elif isinstance(call_id, str) and call_id in seen:
                yield Finding(
                    "tools.call_ids",
                    at,
                    f"tool call id {call_id!r} repeats that of tool_calls[{seen[call_id]}]: "
                    "results could not be told apart",
                    "unique ids",
                    call_id,
                )
            elif isinstance(call_id, str):
                seen[call_id] = j


def _forced(exchange: Exchange, context: CheckContext) -> bool:
    choice = request(exchange).get("tool_choice")
    return (
        answered_ok(exchange, context)
        and bool(_declared(exchange))
        and (choice in ("required", "none") or isinstance(choice, dict))
    )


@check(applies=_forced)
def choice_honoured(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`tool_choice` is obeyed: `required` and a named function force a call, `none` forbids one."""
    tool_choice = request(exchange).get("tool_choice")
    named = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
    for pointer, choice in choices(exchange):
        if choice.get("finish_reason") in ("content_filter", "length"):
            continue  # filtered, or cut short by the token limit before a call could be made
        names = [_function(c).get("name") for c in tool_calls(choice) if isinstance(c, dict)]
        if tool_choice == "none" and names:
            yield Finding(
                "tools.choice_honoured",
                join(pointer, "message", "tool_calls"),
                f"tool_choice 'none' forbids tool calls; got {len(names)}",
                "no tool calls",
                names,
            )
        elif tool_choice == "required" and not names:
            yield Finding(
                "tools.choice_honoured",
                join(pointer, "message"),
                "tool_choice 'required' means the answer must call a tool; it made no call",
                "a tool call",
                None,
            )
        elif named and named not in names:
            yield Finding(
                "tools.choice_honoured",
                join(pointer, "message"),
                f"tool_choice names {named!r}, so the answer must call it; it called {names or 'nothing'}",
                named,
                names or None,
            )
