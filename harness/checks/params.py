"""The effect of a request parameter, where one can be seen in a single answer.

Each check applies only when the request sends its parameter, and says either that the effect is missing (the
endpoint took the parameter and ignored it) or that it came malformed. `harness.parameters` names, for each
parameter, which of these codes mean which, so the support matrix can tell `honoured` from `ignored`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from ..models import Exchange, Finding
from ..pointer import join
from . import CheckContext, answered_json, answered_ok, body, check, choices, message, request, root, short, tool_calls


def _sends(name: str, wanted: Any = None) -> Any:
    """A precondition: a successful answer to a request that sends `name` (with a value `wanted` accepts)."""

    def applies(exchange: Exchange, context: CheckContext) -> bool:
        value = request(exchange).get(name)
        return answered_ok(exchange, context) and value is not None and (wanted is None or wanted(value))

    return applies


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _entries(choice: dict[str, Any]) -> list[Any] | None:
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    return content if isinstance(content, list) else None


def _logprobs_asked(exchange: Exchange, context: CheckContext) -> bool:
    return answered_json(exchange, context) and request(exchange).get("logprobs") is True


@check(applies=_logprobs_asked)
def logprobs_returned(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`logprobs: true` gives each choice `logprobs.content`, a list of per-token entries."""
    for pointer, choice in choices(exchange):
        if not _entries(choice):
            yield Finding(
                "params.logprobs_returned",
                join(pointer, "logprobs"),
                f"logprobs: true asks for logprobs.content per token; got {short(choice.get('logprobs'))}",
                "a list of token entries",
                choice.get("logprobs"),
            )


def _is_logprob(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value <= 0


@check(applies=_logprobs_asked)
def logprobs_valid(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Every token entry has a string `token` and a `logprob` <= 0, and the tokens join to the content."""
    for pointer, choice in choices(exchange):
        entries = _entries(choice) or []
        tokens: list[str] = []
        for i, entry in enumerate(entries):
            where = join(pointer, "logprobs", "content", i)
            if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
                yield Finding("params.logprobs_valid", where, f"a token entry needs a string token; got {short(entry)}")
                return
            tokens.append(entry["token"])
            if not _is_logprob(entry.get("logprob")):
                yield Finding(
                    "params.logprobs_valid",
                    join(where, "logprob"),
                    f"a logprob is a log of a probability, a number <= 0; got {short(entry.get('logprob'))}",
                    "<= 0",
                    entry.get("logprob"),
                )
        content = message(choice).get("content")
        if entries and isinstance(content, str) and "".join(tokens) != content:
            yield Finding(
                "params.logprobs_valid",
                join(pointer, "logprobs", "content"),
                f"the tokens must join to the content {short(content, 60)}; they join to {short(''.join(tokens), 60)}",
                content,
                "".join(tokens),
            )


def _top_asked(exchange: Exchange, context: CheckContext) -> bool:
    return _logprobs_asked(exchange, context) and _positive_int(request(exchange).get("top_logprobs"))


@check(applies=_top_asked)
def top_logprobs_returned(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`top_logprobs: k` gives the token entries lists of alternatives."""
    for pointer, choice in choices(exchange):
        entries = [e for e in _entries(choice) or [] if isinstance(e, dict)]
        if not any(isinstance(e.get("top_logprobs"), list) and e["top_logprobs"] for e in entries):
            yield Finding(
                "params.top_logprobs_returned",
                join(pointer, "logprobs", "content"),
                f"top_logprobs: {request(exchange)['top_logprobs']} asks for alternatives on each token; none came",
                request(exchange)["top_logprobs"],
                0,
            )


@check(applies=_top_asked)
def top_logprobs_count(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Each token entry lists exactly k alternatives, each with a logprob <= 0."""
    k = request(exchange)["top_logprobs"]
    for pointer, choice in choices(exchange):
        for i, entry in enumerate(_entries(choice) or []):
            top = entry.get("top_logprobs") if isinstance(entry, dict) else None
            if not isinstance(top, list) or not top:
                continue  # none at all is top_logprobs_returned's finding
            where = join(pointer, "logprobs", "content", i, "top_logprobs")
            if len(top) != k:
                yield Finding(
                    "params.top_logprobs_count",
                    where,
                    f"top_logprobs: {k} asks for {k} alternatives per token; got {len(top)}",
                    k,
                    len(top),
                )
            bad = [t for t in top if not isinstance(t, dict) or not _is_logprob(t.get("logprob"))]
            if bad:
                yield Finding(
                    "params.top_logprobs_count",
                    where,
                    f"each alternative needs a logprob <= 0; got {short(bad[0])}",
                    "<= 0",
                    bad[0],
                )


def _limit(exchange: Exchange) -> tuple[str, int] | None:
    """The token limit sent, and what it allows the whole answer: `completion_tokens` counts every choice."""
    sent = request(exchange)
    n = sent.get("n", 1) if _positive_int(sent.get("n", 1)) else 1
    for name in ("max_completion_tokens", "max_tokens"):
        if _positive_int(sent.get(name)):
            return name, sent[name] * n
    return None


def _usage_completion(exchange: Exchange) -> int | None:
    usage = body(exchange).get("usage")
    value = usage.get("completion_tokens") if isinstance(usage, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@check(applies=lambda ex, ctx: answered_ok(ex, ctx) and _limit(ex) is not None)
def token_limit(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`completion_tokens` stays within `max_completion_tokens` (or `max_tokens`), for each of the `n` choices."""
    name, limit = _limit(exchange) or ("", 0)
    used = _usage_completion(exchange)
    if used is not None and used > limit:
        yield Finding(
            "params.token_limit",
            join(root(exchange), "usage", "completion_tokens"),
            f"{name} caps the answer at {limit} tokens in all; completion_tokens is {used}",
            f"<= {limit}",
            used,
        )


def _sampled_choices(exchange: Exchange, context: CheckContext) -> bool:
    sent = request(exchange)
    temperature = sent.get("temperature")
    hot = isinstance(temperature, int | float) and not isinstance(temperature, bool) and temperature >= 1
    return answered_ok(exchange, context) and hot and _positive_int(sent.get("n")) and sent["n"] >= 2


@check(applies=_sampled_choices)
def n_choices_differ(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`n` choices sampled at a temperature of 1 or more are n samples: they do not all say the same."""
    contents = [message(choice).get("content") for _, choice in choices(exchange)]
    texts = [c for c in contents if isinstance(c, str) and c]
    if len(texts) >= 2 and len(texts) == len(contents) and len(set(texts)) == 1:
        yield Finding(
            "params.n_choices_differ",
            join(root(exchange), "choices"),
            f"{len(texts)} choices sampled at temperature {request(exchange)['temperature']} are all the same "
            f"({short(texts[0], 60)}): one sample repeated, not n",
            "different samples",
            texts[0],
        )


def _repeated(name: str) -> Any:
    """A precondition: the second answer to a request sent twice (`repeat: true`) that sends `name`."""

    def applies(exchange: Exchange, context: CheckContext) -> bool:
        first = context.plain
        return (
            answered_json(exchange, context)
            and request(exchange).get(name) is not None
            and first is not None
            and first.stream is None
            and isinstance(first.answer(), dict)
        )

    return applies


def _usage_detail(exchange: Exchange, group: str, name: str) -> tuple[str, Any]:
    """Where `usage.<group>.<name>` is, and its value (None when absent)."""
    usage = body(exchange).get("usage")
    details = usage.get(group) if isinstance(usage, dict) else None
    return join(root(exchange), "usage", group, name), details.get(name) if isinstance(details, dict) else None


def _contents(answer: Any) -> list[Any]:
    items = answer.get("choices") if isinstance(answer, dict) else None
    return [message(c).get("content") for c in items if isinstance(c, dict)] if isinstance(items, list) else []


@check(applies=_repeated("seed"))
def seed_repeatable(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The same request at the same `seed`, sent again, gets the same answer: what a seed is for."""
    assert context.plain is not None
    before, after = _contents(context.plain.answer()), _contents(body(exchange))
    if before != after:
        yield Finding(
            "params.seed_repeatable",
            join(root(exchange), "choices"),
            f"seed {short(request(exchange)['seed'])} sent twice gave two answers: first {short(before, 60)}, "
            f"then {short(after, 60)}",
            before,
            after,
        )


@check(applies=_repeated("prompt_cache_key"))
def prompt_cache_hit(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The same prompt with the same `prompt_cache_key`, sent again, reads cached tokens (`cached_tokens` > 0)."""
    where, cached = _usage_detail(exchange, "prompt_tokens_details", "cached_tokens")
    if not _positive_int(cached):
        yield Finding(
            "params.prompt_cache_hit",
            where,
            f"the same prompt and prompt_cache_key sent again reads no cached tokens (cached_tokens: {short(cached)})",
            "> 0",
            cached,
        )


def _stops(exchange: Exchange) -> list[str]:
    value = request(exchange).get("stop")
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [s for s in items if isinstance(s, str) and s]


@check(applies=lambda ex, ctx: answered_ok(ex, ctx) and bool(_stops(ex)))
def stop_absent(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """No stop sequence appears in the content: generation ends before it, and it is not returned."""
    for pointer, choice in choices(exchange):
        content = message(choice).get("content")
        found = [s for s in _stops(exchange) if isinstance(content, str) and s in content]
        if found:
            yield Finding(
                "params.stop_absent",
                join(pointer, "message", "content"),
                f"the content must end before the stop sequence {found[0]!r}; it holds it: {short(content, 80)}",
                f"no {found[0]!r}",
                content,
            )


@check(applies=_sends("parallel_tool_calls", lambda v: v is False))
def single_tool_call(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`parallel_tool_calls: false` allows at most one tool call per answer."""
    for pointer, choice in choices(exchange):
        calls = tool_calls(choice)
        if len(calls) > 1:
            yield Finding(
                "params.single_tool_call",
                join(pointer, "message", "tool_calls"),
                f"parallel_tool_calls: false allows one call at most; got {len(calls)}",
                1,
                len(calls),
            )


@check(applies=_sends("service_tier", lambda v: isinstance(v, str)))
def service_tier_echoed(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The answer says which `service_tier` served it, as OpenAI's does when one is asked for."""
    value = body(exchange).get("service_tier")
    if not isinstance(value, str) or not value:
        yield Finding(
            "params.service_tier_echoed",
            join(root(exchange), "service_tier"),
            f"service_tier {request(exchange)['service_tier']!r} was asked for; the answer names no tier "
            f"(got {short(value) if value is not None else 'nothing'})",
            "a tier",
            value,
        )


def _thinking(exchange: Exchange) -> dict[str, Any]:
    extra = request(exchange).get("extra_body")
    google = extra.get("google") if isinstance(extra, dict) else None
    config = google.get("thinking_config") if isinstance(google, dict) else None
    return config if isinstance(config, dict) else {}


def _asks_reasoning(exchange: Exchange, context: CheckContext) -> bool:
    if not answered_ok(exchange, context):
        return False
    effort = request(exchange).get("reasoning_effort")
    config = _thinking(exchange)
    return (
        effort in ("low", "medium", "high", "xhigh", "max")
        or _positive_int(config.get("thinking_budget"))
        or isinstance(config.get("thinking_level"), str)
    )


def _said(count: Any) -> str:
    return "no" if count is None else short(count)


@check(applies=_asks_reasoning)
def reasoning_reported(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A request for reasoning (`reasoning_effort`, a thinking budget or level) reports reasoning tokens in usage."""
    where, tokens = _usage_detail(exchange, "completion_tokens_details", "reasoning_tokens")
    if not _positive_int(tokens):
        yield Finding(
            "params.reasoning_reported",
            where,
            f"reasoning was asked for; usage reports {_said(tokens)} reasoning tokens",
            "> 0",
            tokens,
        )


_LEVELS = ("minimal", "low", "medium", "high")


def _amount(exchange: Exchange) -> tuple[str, float] | None:
    """How much thinking a request asks for through Google's thinking_config: ("thinking_budget", tokens) or
    ("thinking_level", rank); None when it names neither (or a level Google does not document)."""
    config = _thinking(exchange)
    budget, level = config.get("thinking_budget"), config.get("thinking_level")
    if isinstance(budget, int) and not isinstance(budget, bool) and budget >= 0:
        return "thinking_budget", float(budget)
    if isinstance(level, str) and level.lower() in _LEVELS:
        return "thinking_level", float(_LEVELS.index(level.lower()))
    return None


def _thinks_differently(exchange: Exchange, context: CheckContext) -> bool:
    """A precondition: the second answer of a repeated case (`repeat: {with: ...}`) whose request asks for more or
    less thinking, in the same terms, than the first did."""
    first = context.plain
    if not answered_ok(exchange, context) or first is None or first.response is None:
        return False
    before, after = _amount(first), _amount(exchange)
    return (
        200 <= first.response.status < 300
        and isinstance(body(first), dict)
        and before is not None
        and after is not None
        and before[0] == after[0]
        and before[1] != after[1]
    )


@check(applies=_thinks_differently)
def reasoning_moves(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """More thinking asked for (a larger thinking_budget, a higher thinking_level) reports more reasoning tokens
    than the same request with less: what the knob is for, and what a server that ignores it cannot show."""
    assert context.plain is not None
    name, after = _amount(exchange) or ("", 0.0)
    _, before = _amount(context.plain) or ("", 0.0)
    where, tokens = _usage_detail(exchange, "completion_tokens_details", "reasoning_tokens")
    _, earlier = _usage_detail(context.plain, "completion_tokens_details", "reasoning_tokens")
    counts = [t if isinstance(t, int) and not isinstance(t, bool) else 0 for t in (earlier, tokens)]
    more, less = (counts[1], counts[0]) if after > before else (counts[0], counts[1])
    if more <= less:
        asked = [_thinking(context.plain).get(name), _thinking(exchange).get(name)]
        yield Finding(
            "params.reasoning_moves",
            where,
            f"{name} {short(asked[0])} then {short(asked[1])} reported {_said(earlier)} then {_said(tokens)} "
            "reasoning tokens: the count does not move with the thinking asked for",
            f"{'more' if after > before else 'fewer'} than {counts[0]}",
            tokens,
        )


@check(applies=_sends("prediction", lambda v: isinstance(v, dict)))
def prediction_counted(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A predicted output is accounted for: usage counts accepted or rejected prediction tokens."""
    usage = body(exchange).get("usage")
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    counts = [details.get(k) for k in ("accepted_prediction_tokens", "rejected_prediction_tokens")] if details else []
    if not any(_positive_int(c) for c in counts):
        yield Finding(
            "params.prediction_counted",
            join(root(exchange), "usage", "completion_tokens_details"),
            "a prediction was sent; usage counts no accepted or rejected prediction tokens",
            "accepted_prediction_tokens or rejected_prediction_tokens > 0",
            details,
        )


@check(applies=_sends("modalities", lambda v: isinstance(v, list) and "audio" in v))
def audio_returned(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`modalities` with audio gives `message.audio` with base64 `data` and a `transcript`."""
    for pointer, choice in choices(exchange):
        audio = message(choice).get("audio")
        if not isinstance(audio, dict) or not audio.get("data") or not isinstance(audio.get("transcript"), str):
            yield Finding(
                "params.audio_returned",
                join(pointer, "message", "audio"),
                f"audio output was asked for; message.audio must hold data and a transcript; got {short(audio)}",
                "{data, transcript}",
                audio,
            )


@check(applies=_sends("web_search_options", lambda v: isinstance(v, dict)))
def url_citations(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A web search cites what it found: `message.annotations` holds `url_citation` entries."""
    for pointer, choice in choices(exchange):
        notes = message(choice).get("annotations")
        cited = isinstance(notes, list) and any(isinstance(n, dict) and n.get("type") == "url_citation" for n in notes)
        if not cited:
            yield Finding(
                "params.url_citations",
                join(pointer, "message", "annotations"),
                f"web_search_options asks for a search; the answer cites no url (annotations: {short(notes)})",
                "url_citation annotations",
                notes,
            )
