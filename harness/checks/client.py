"""The official OpenAI SDKs as a second oracle: would the clients people use accept this answer?

Each check feeds the exchange's answer, as received, to one SDK (`harness.clients`) and compares what the SDK
made of it with the answer itself: the JSON document, or for a stream the message the harness rebuilt from its
chunks. Only what the endpoint causes is reported: an exception the SDK raises for any conformant answer of the
kind (its parse helpers refuse an answer cut off at `length`) is no finding. Every finding names the client and
its version. A client that is not installed is not checked, and says so in the run's header, never as a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

from ..bounded import TooDeep, loads
from ..clients import ClientRead, Replay, read_node, read_python, replay_of, replayable
from ..models import Exchange, Finding
from ..pointer import MISSING, join
from ..schemas import schema
from . import CheckContext, check, choices, short
from .structured import cut_short

CODES = {
    "raised": "The SDK raised an exception reading an answer the endpoint sent as a success.",
    "dropped": "A member of OpenAI's reference that the answer carries is missing from what the SDK exposes.",
    "changed": "A member the SDK exposes differs from the answer (or from the message a stream's chunks spell).",
    "extension_lost": "A member outside OpenAI's reference (reasoning_content, extra_content) that the SDK drops "
    "or changes.",
    "signature_lost": "A thought signature (extra_content.google.thought_signature) that the SDK drops or changes, "
    "reading the answer or sending the message back.",
    "error_unread": "The endpoint's error message does not reach the SDK's user (not an {\"error\": {...}} object, "
    "or an error line in a stream the SDK skips).",
    "error_changed": "The SDK hands on the error's code, type or param with another value or type.",
    "round_trip": "The assistant message as the SDK sends it back as history loses or changes its role or tool calls.",
}


def _replayable(exchange: Exchange, context: CheckContext) -> bool:
    return context.clients != {} and replayable(exchange)  # {}: the run left the SDKs out (--no-clients)


@check(applies=_replayable, codes=CODES)
def openai_python(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """openai-python reads the answer as the endpoint sent it, and sends its message back unchanged."""
    yield from _judge(exchange, "client.openai_python", _read(exchange, context, "openai-python", read_python))


@check(applies=_replayable, codes=CODES)
def openai_node(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """openai-node reads the answer as the endpoint sent it, and sends its message back unchanged."""
    yield from _judge(exchange, "client.openai_node", _read(exchange, context, "openai-node", read_node))


def _read(
    exchange: Exchange, context: CheckContext, client: str, read_now: Callable[[Replay], ClientRead | None]
) -> ClientRead | None:
    """The read made before judging (`context.clients`), or, for a judge given none, the SDK's read made now."""
    if context.clients is not None:
        return context.clients.get(client)
    replay = replay_of(exchange)
    return None if replay is None else read_now(replay)


def _judge(exchange: Exchange, family: str, read: ClientRead | None) -> Iterator[Finding]:
    if read is None or exchange.response is None:  # not installed (the run's header says so), or nothing read
        return
    if not 200 <= exchange.response.status < 300:
        yield from _error_read(exchange, family, read)
        return
    if exchange.stream is not None:
        errors = list(_stream_errors(exchange))
        if errors:
            yield from _stream_error_read(family, read, errors)
            return
    if read.error is not None:
        # A parse helper refuses JSON that the request's own token limit or stop sequence cut short, whoever sent it.
        replay = replay_of(exchange)  # what the SDK was fed: whether it ran a parse helper
        cut = replay is not None and replay.parse and any(cut_short(exchange, c) for _, c in choices(exchange))
        if not read.by_design and not cut:
            where = "/stream/events" if exchange.stream is not None else "/response/body"
            yield Finding(
                f"{family}.raised",
                where,
                f"{read.label} raised {read.error.get('name')} reading this answer: {short(read.error.get('message'))}",
                "the answer read",
                read.error.get("name"),
            )
        return
    expected = exchange.answer()
    base = "/stream/assembled" if exchange.stream is not None else "/response/body"
    if exchange.stream is not None and isinstance(expected, dict):
        # Chunks that disagree on an envelope member (created moving on by a second) spell no one value: whichever
        # the SDK keeps is the endpoint's inconsistency, reported by stream.consistent_* and not again here.
        varying = _varying(exchange)
        expected = {k: v for k, v in expected.items() if k not in varying}
    yield from _compared(family, read, expected, read.value, base)
    yield from _round_trip(family, read, base)


def _varying(exchange: Exchange) -> set[str]:
    assert exchange.stream is not None
    seen: dict[str, set[str]] = {}
    for event in exchange.stream.events:
        if isinstance(event.json, dict):
            for key in ("id", "created", "model", "system_fingerprint", "service_tier"):
                if key in event.json:
                    seen.setdefault(key, set()).add(repr(event.json[key]))
    return {key for key, values in seen.items() if len(values) > 1}


def _compared(family: str, read: ClientRead, expected: Any, actual: Any, base: str) -> Iterator[Finding]:
    for path, want, got in _differences(expected, actual, []):
        yield _difference(family, read, path, want, got, base, "exposes")


def _difference(
    family: str, read: ClientRead, path: list[str | int], want: Any, got: Any, base: str, doing: str
) -> Finding:
    pointer = join(base, path)
    if _signature(path, want):
        what = "signature_lost"
    elif not _in_reference(tuple(path)):
        what = "extension_lost"
    elif doing == "sends back":
        what = "round_trip"
    else:
        what = "dropped" if got is MISSING else "changed"
    seen = "drops it" if got is MISSING else f"has {short(got)}"
    source = "the answer has" if doing == "exposes" else "the message it exposes has"
    if isinstance(want, list) and isinstance(got, list):
        source, seen = f"{source} {len(want)} items:", f"has {len(got)}: {short(got)}"
    return Finding(
        f"{family}.{what}",
        pointer,
        f"{source} {short(want)} here; what {read.label} {doing} {seen}",
        want,
        None if got is MISSING else got,
    )


def _round_trip(family: str, read: ClientRead, base: str) -> Iterator[Finding]:
    """The first choice's message as the SDK sends it back must keep its role, tool calls and extra_content."""
    value = read.value
    chosen = value.get("choices") if isinstance(value, dict) else None
    exposed = chosen[0].get("message") if isinstance(chosen, list) and chosen and isinstance(chosen[0], dict) else None
    if not isinstance(exposed, dict) or read.history is MISSING:
        return
    kept = _kept(exposed)
    for path, want, got in _differences(kept, read.history, []):
        yield _difference(family, read, ["choices", 0, "message", *path], want, got, base, "sends back")


def _kept(message: dict[str, Any]) -> dict[str, Any]:
    """What a provider needs back of an assistant message: its role, tool calls and any extra_content."""
    kept: dict[str, Any] = {k: message[k] for k in ("role", "extra_content") if k in message}
    calls = message.get("tool_calls")
    if isinstance(calls, list) and calls:
        kept["tool_calls"] = [
            {k: call[k] for k in ("id", "type", "function", "extra_content") if k in call}
            if isinstance(call, dict)
            else call
            for call in calls
        ]
        for call in kept["tool_calls"]:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                call["function"] = {k: v for k, v in call["function"].items() if k in ("name", "arguments")}
    return kept


def _differences(want: Any, got: Any, path: list[str | int]) -> Iterator[tuple[list[str | int], Any, Any]]:
    """(path, expected, actual) for each member of `want` that `got` lacks or holds with another value."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            yield path, want, got
            return
        for key, value in want.items():
            if key not in got:
                if value is not None:  # a null left out reads the same in every SDK
                    yield [*path, key], value, MISSING
            else:
                yield from _differences(value, got[key], [*path, key])
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            yield path, want, got
            return
        for i, (a, b) in enumerate(zip(want, got, strict=True)):
            yield from _differences(a, b, [*path, i])
    elif want != got or _kind(want) != _kind(got):
        yield path, want, got


def _kind(value: Any) -> str:
    """JSON's kind of a value: 1 and 1.0 are one number, 1 and True and "1" are not."""
    if isinstance(value, bool):
        return "boolean"
    return "number" if isinstance(value, int | float) else type(value).__name__


def _signature(path: list[str | int], want: Any) -> bool:
    return "thought_signature" in path or ("extra_content" in path and "thought_signature" in str(want))


@cache
def _in_reference(path: tuple[str | int, ...]) -> bool:
    """Whether a member is one OpenAI's reference defines (per the bundled chat.completion schema): a member
    outside it is an extension, whose loss weighs less unless the provider needs it back."""
    document: Any = schema("chat-completion").schema
    node: Any = document
    for part in path:
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/$defs/"):
            node = document["$defs"][node["$ref"].removeprefix("#/$defs/")]
        if not isinstance(node, dict):
            return True
        if isinstance(part, int):
            node = node.get("items", {})
            continue
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return True  # a free-form object: whatever it holds is part of it
        if part not in properties:
            return False
        node = properties[part]
    return True


# Errors


def _error_object(body: Any) -> dict[str, Any] | None:
    """The error as the endpoint wrote it: `{"error": {...}}`, Google's `[{"error": {...}}]`, or a container's
    top-level `{"message": ...}`."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if not isinstance(body, dict):
        return None
    inner = body.get("error")
    if isinstance(inner, dict):
        return inner
    return body if isinstance(body.get("message"), str) else None


def _error_read(exchange: Exchange, family: str, read: ClientRead) -> Iterator[Finding]:
    assert exchange.response is not None
    raw = _error_object(exchange.response.body) if exchange.response.body is not MISSING else None
    if raw is None:
        return
    error = read.error or {}
    yield from _error_compared(family, read, raw, error, "/response/body")


def _error_compared(
    family: str, read: ClientRead, raw: dict[str, Any], error: dict[str, Any], pointer: str
) -> Iterator[Finding]:
    message = raw.get("message")
    unread = isinstance(message, str) and message and message not in str(error.get("message") or "")
    if unread or (raw.get("code") is not None and error.get("code") is None):
        yield Finding(
            f"{family}.error_unread",
            pointer,
            f"the endpoint's error says {short(message)}; {read.label} tells its user only "
            f"{short(error.get('message') or 'nothing')} with code {short(error.get('code'))}: it reads an error "
            'from an {"error": {...}} object',
            message,
            error.get("message"),
        )
        return
    for key in ("code", "type", "param"):
        if key in raw and raw[key] is not None and _unequal(raw[key], error.get(key)):
            yield Finding(
                f"{family}.error_changed",
                f"{pointer}/error/{key}" if pointer == "/response/body" else pointer,
                f"the error's {key} is {short(raw[key])}; {read.label} hands it on as {short(error.get(key))}",
                raw[key],
                error.get(key),
            )


def _unequal(a: Any, b: Any) -> bool:
    return a != b or type(a) is not type(b)


def _stream_errors(exchange: Exchange) -> Iterator[tuple[str, dict[str, Any]]]:
    """(pointer, error) for each error a stream carries: in an event's data, or on a line outside `data:`."""
    assert exchange.stream is not None and exchange.response is not None
    for i, event in enumerate(exchange.stream.events):
        raw = _wrapped_error(event.json)
        if raw is not None:
            yield join("/stream/events", i, "data"), raw
    for number, line in enumerate(exchange.response.text.splitlines(), start=1):
        text = line.strip()
        if text.startswith(("{", "[")) and '"error"' in text:
            try:
                raw = _wrapped_error(loads(text))
            except (ValueError, TooDeep):
                continue
            if raw is not None:
                yield f"/stream/events (line {number} of the stream)", raw


def _wrapped_error(value: Any) -> dict[str, Any] | None:
    """The inner error of `{"error": {...}}` or `[{"error": {...}}]`; None for anything else (a chunk)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    inner = value.get("error") if isinstance(value, dict) else None
    return inner if isinstance(inner, dict) else None


def _stream_error_read(family: str, read: ClientRead, errors: list[tuple[str, dict[str, Any]]]) -> Iterator[Finding]:
    pointer, raw = errors[0]
    if read.error is None or read.by_design:
        yield Finding(
            f"{family}.error_unread",
            pointer.split(" ", 1)[0],
            f"the stream carries an error ({pointer}: {short(raw.get('message'))}) that {read.label} never "
            "raises: its user sees the stream end as if it were complete",
            raw.get("message"),
            None,
        )
        return
    yield from _error_compared(family, read, raw, read.error, pointer.split(" ", 1)[0])
