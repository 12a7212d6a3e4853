"""The `chat.completion` answer itself: shape, choices, message, finish reasons and usage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import schemas
from ..models import Exchange, Finding
from ..pointer import join
from ..streams import REASONING_MEMBERS
from . import CheckContext, answered_json, answered_ok, body, check, choices, message, request, root, short, tool_calls

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")


@check(applies=answered_json)
def schema(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The body is a `chat.completion` with the members, types and constants OpenAI clients rely on."""
    for error in schemas.validate(schemas.schema("chat-completion"), body(exchange), "/response/body"):
        yield Finding(
            "response.schema", error.pointer, f"{error.message} (schema: {error.keyword} at {error.schema_path})"
        )


@check(applies=answered_ok)
def choices_present(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """There is at least one choice: a client indexes `choices[0]` without looking."""
    value = body(exchange).get("choices")
    if isinstance(value, list) and not value:
        yield Finding(
            "response.choices_present",
            join(root(exchange), "choices"),
            "choices must hold at least one choice; got an empty list",
            "1 or more choices",
            [],
        )


@check(applies=answered_ok)
def choices_indexed(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Choice `i` has `index: i`, so clients that match choices by index find each one."""
    for i, (pointer, choice) in enumerate(choices(exchange)):
        index = choice.get("index")
        if isinstance(index, int) and not isinstance(index, bool) and index != i:
            yield Finding(
                "response.choices_indexed",
                join(pointer, "index"),
                f"choices[{i}].index must be {i}; got {index}",
                i,
                index,
            )


@check(applies=answered_ok)
def choice_count(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Exactly `n` choices (1 when the request does not say)."""
    n = request(exchange).get("n", 1)
    items = body(exchange).get("choices")
    if not isinstance(n, int) or isinstance(n, bool) or not isinstance(items, list) or not items:
        return
    if len(items) != n:
        yield Finding(
            "response.choice_count",
            join(root(exchange), "choices"),
            f"the request asked for n={n} choices; got {len(items)}",
            n,
            len(items),
        )


@check(applies=answered_ok)
def role_assistant(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The answer's role is `assistant`."""
    for pointer, choice in choices(exchange):
        role = message(choice).get("role")
        if isinstance(role, str) and role != "assistant":
            yield Finding(
                "response.role_assistant",
                join(pointer, "message", "role"),
                f"message.role must be 'assistant'; got {role!r}",
                "assistant",
                role,
            )


@check(applies=answered_ok)
def finish_reason_valid(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`finish_reason` is one of the values OpenAI documents, which clients switch on."""
    for pointer, choice in choices(exchange):
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason not in FINISH_REASONS:
            yield Finding(
                "response.finish_reason_valid",
                join(pointer, "finish_reason"),
                f"finish_reason must be one of {', '.join(FINISH_REASONS)}; got {reason!r}",
                list(FINISH_REASONS),
                reason,
            )


@check(applies=answered_ok)
def finish_reason_consistent(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Tool calls end with `tool_calls` and `tool_calls` comes with calls: agents loop on this value."""
    for pointer, choice in choices(exchange):
        reason = choice.get("finish_reason")
        calls = tool_calls(choice)
        if calls and reason not in ("tool_calls", "length", "function_call", None) and isinstance(reason, str):
            yield Finding(
                "response.finish_reason_consistent",
                join(pointer, "finish_reason"),
                f"the message has {len(calls)} tool call(s), so finish_reason must be 'tool_calls'; got {reason!r}",
                "tool_calls",
                reason,
            )
        elif reason == "tool_calls" and not calls:
            yield Finding(
                "response.finish_reason_consistent",
                join(pointer, "finish_reason"),
                "finish_reason is 'tool_calls' but the message has no tool_calls",
                "tool_calls present",
                None,
            )


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


@check(applies=answered_ok)
def content_present(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A finished answer says something: content, tool calls, or a refusal, unless it was cut short or filtered."""
    stop = request(exchange).get("stop")
    for pointer, choice in choices(exchange):
        msg = message(choice)
        if choice.get("finish_reason") in ("length", "content_filter") or not msg:
            continue
        if stop and choice.get("finish_reason") == "stop":
            continue  # a stop sequence at the very start legitimately leaves the content empty
        if (
            _empty(msg.get("content"))
            and not tool_calls(choice)
            and _empty(msg.get("refusal"))
            and not msg.get("function_call")
            and not msg.get("audio")
        ):
            yield Finding(
                "response.content_present",
                join(pointer, "message", "content"),
                f"finish_reason {choice.get('finish_reason')!r} says the answer is complete, but it has "
                f"no content, tool call or refusal (content {short(msg.get('content'))})",
                "content or tool_calls",
                msg.get("content"),
            )


def _usage(exchange: Exchange) -> dict[str, Any] | None:
    value = body(exchange).get("usage")
    return value if isinstance(value, dict) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


@check(applies=answered_json)
def usage_present(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The answer reports token usage, which callers bill and budget by."""
    if body(exchange).get("usage") is None:
        yield Finding(
            "response.usage_present",
            join(root(exchange), "usage"),
            "the answer carries no usage (prompt_tokens, completion_tokens, total_tokens)",
            "a usage object",
            None,
        )


def _reasoning(usage: dict[str, Any]) -> int:
    details = usage.get("completion_tokens_details")
    return _count(details.get("reasoning_tokens")) or 0 if isinstance(details, dict) else 0


@check(applies=answered_ok)
def usage_total(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`total_tokens` adds up: prompt + completion (OpenAI), or with reasoning added (Google's documented rule)."""
    usage = _usage(exchange)
    if usage is None:
        return
    prompt, completion, total = (_count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    if prompt is None or completion is None or total is None:
        return  # missing or ill-typed counts are the schema's findings
    reasoning = _reasoning(usage)
    allowed = {prompt + completion, prompt + completion + reasoning}
    if total not in allowed:
        formula = f"{prompt} + {completion}" + (f" (+ {reasoning} reasoning)" if reasoning else "")
        yield Finding(
            "response.usage_total",
            join(root(exchange), "usage", "total_tokens"),
            f"total_tokens must be prompt_tokens + completion_tokens = {formula}; got {total}",
            sorted(allowed),
            total,
        )


@check(applies=answered_ok)
def usage_total_includes_reasoning(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`completion_tokens` excludes reasoning tokens (total = prompt + completion + reasoning), unlike OpenAI."""
    usage = _usage(exchange)
    if usage is None:
        return
    prompt, completion, total = (_count(usage.get(k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens"))
    reasoning = _reasoning(usage)
    if None in (prompt, completion, total) or not reasoning:
        return
    assert prompt is not None and completion is not None
    if total == prompt + completion + reasoning:
        yield Finding(
            "response.usage_total_includes_reasoning",
            join(root(exchange), "usage", "total_tokens"),
            f"total_tokens {total} = prompt {prompt} + completion {completion} + reasoning {reasoning}: "
            "completion_tokens leaves reasoning out, where OpenAI counts it in",
            prompt + completion,
            total,
        )


@check(applies=answered_ok)
def id_prefix(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """OpenAI's ids start with `chatcmpl-`."""
    value = body(exchange).get("id")
    if isinstance(value, str) and not value.startswith("chatcmpl-"):
        yield Finding(
            "response.id_prefix",
            join(root(exchange), "id"),
            f"OpenAI's completion ids start with 'chatcmpl-'; got {short(value)}",
            "chatcmpl-…",
            value,
        )


@check(applies=answered_json)
def nullable_members(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Members OpenAI always sends, null when empty (`message.refusal`, `choices[].logprobs`), are present."""
    for pointer, choice in choices(exchange):
        if "logprobs" not in choice:
            yield Finding(
                "response.nullable_members",
                join(pointer, "logprobs"),
                "OpenAI always sends choices[].logprobs (null when not requested); it is missing",
                None,
                "<missing>",
            )
        msg = message(choice)
        if msg and "refusal" not in msg:
            yield Finding(
                "response.nullable_members",
                join(pointer, "message", "refusal"),
                "OpenAI always sends message.refusal (null when there is none); it is missing",
                None,
                "<missing>",
            )


def _reasoning_members(exchange: Exchange) -> Iterator[tuple[str, str, Any]]:
    """(pointer, member, value) for each reasoning member a choice's message carries."""
    for pointer, choice in choices(exchange):
        msg = message(choice)
        for name in REASONING_MEMBERS:
            if name in msg:
                yield join(pointer, "message", name), name, msg[name]


@check(applies=answered_ok)
def reasoning_well_formed(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`reasoning_content` / `reasoning`, where a server sends them, are a string or null, as clients read them."""
    for pointer, name, value in _reasoning_members(exchange):
        if value is not None and not isinstance(value, str):
            yield Finding(
                "response.reasoning_well_formed",
                pointer,
                f"message.{name} must be a string (or null); got {type(value).__name__}: {short(value)}",
                "a string or null",
                value,
            )


_THINK_TAGS = ("<think>", "<thinking>", "<|thinking|>")


def _thoughts_in_content_asked(exchange: Exchange) -> bool:
    """Google's thought tags are asked for in `extra_body` (and judged by the google checks)."""
    sent = request(exchange)
    return "extra_body" in sent or "google" in sent


@check(applies=answered_ok)
def reasoning_not_in_content(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A reasoning model's thinking stays out of `content`: not repeated there, nor left in `<think>` tags."""
    if _thoughts_in_content_asked(exchange):
        return
    for pointer, choice in choices(exchange):
        msg = message(choice)
        content = msg.get("content")
        if not isinstance(content, str):
            continue
        for name in REASONING_MEMBERS:
            thought = msg.get(name)
            if isinstance(thought, str) and len(thought.strip()) >= 20 and thought.strip() in content:
                yield Finding(
                    "response.reasoning_not_in_content",
                    join(pointer, "message", "content"),
                    f"the content repeats message.{name} ({short(thought, 60)}): a client shows the thinking as the "
                    "answer",
                    f"the answer without its {name}",
                    short(content),
                )
                break
        else:
            opening = content.lstrip()[:16].lower()
            tag = next((t for t in _THINK_TAGS if opening.startswith(t)), None)
            if tag is not None:
                yield Finding(
                    "response.reasoning_not_in_content",
                    join(pointer, "message", "content"),
                    f"the content starts with the thinking in {tag} tags, unparsed: a client shows it as the answer "
                    "(a server with a reasoning parser returns it in reasoning_content)",
                    "the answer only",
                    short(content),
                )


@check(applies=answered_ok)
def reasoning_tokens_counted(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Where usage reports `reasoning_tokens`, an answer that carries reasoning text counts some."""
    usage = _usage(exchange)
    details = usage.get("completion_tokens_details") if usage else None
    if not isinstance(details, dict) or _count(details.get("reasoning_tokens")) != 0:
        return
    for _, name, value in _reasoning_members(exchange):
        if isinstance(value, str) and value.strip():
            yield Finding(
                "response.reasoning_tokens_counted",
                join(root(exchange), "usage", "completion_tokens_details", "reasoning_tokens"),
                f"usage reports 0 reasoning_tokens, but message.{name} holds {len(value)} characters "
                "of reasoning: the thinking is not counted where callers budget it",
                "more than 0",
                0,
            )
            return
