"""Streamed answers: from raw chunks to events, and from chunk deltas back to the message they spell.

Rebuilding the message lets the same checks judge a stream and a plain answer (JSON content against
`response_format`, tool arguments against their parameters). Tool-call fragments are joined by `id` when
one is given and by `index` otherwise, because some servers change the index between the fragments of one
call (Vertex's documented example); what had to be guessed is returned as notes.

An endpoint that echoes a secret may cut it across two deltas, so that no one event holds it but the rebuilt
message does. `redact_deltas` finds such secrets in what the deltas join to and removes them from the deltas
themselves, so neither the events nor the message (nor a recording replayed later) holds the secret.

Each event's JSON is read within the nesting bound (`bounded`); a stream cut off at --max-response-bytes is read
by `read_excerpt`, which keeps its first events and its last ones and counts the rest, parsing only what it keeps.
"""

from __future__ import annotations

import copy
import json
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .bounded import loads
from .limits import size
from .models import Stream, StreamEvent
from .pointer import MISSING
from .redact import REDACTED, Redactor
from .sse import Event, SSEDecoder

__all__ = ["DONE", "REASONING_MEMBERS", "assemble", "compact", "read_excerpt", "read_stream", "redact_deltas"]

DONE = "[DONE]"


def _json(text: str) -> Any:
    try:
        return loads(text, shared=True)
    except ValueError:
        return MISSING


def compact(value: Any) -> str:
    """An event's JSON as it is written back when redaction had to change it (as servers write it: compact)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _event(event: Event, at: float, redactor: Redactor) -> StreamEvent:
    data = redactor.text(event.data)
    parsed = _json(data) if data != DONE else MISSING
    if redactor.active and parsed is not MISSING and (clean := redactor.value(parsed)) != parsed:
        data, parsed = compact(clean), clean  # what the JSON decodes to is what a reader sees
    name = redactor.text(event.event) if event.event is not None else None
    return StreamEvent(data, parsed, round(at, 2), event.line, name)


def _without_split_secrets(
    events: list[StreamEvent], redactor: Redactor, *, cut_off: bool = False
) -> list[StreamEvent]:
    cleaned = redact_deltas([e.json for e in events], redactor, cut_off=cut_off)
    return [
        e if new is e.json else StreamEvent(compact(new), new, e.at_ms, e.line, e.event)
        for e, new in zip(events, cleaned, strict=True)
    ]


def _issues(decoder: SSEDecoder, redactor: Redactor) -> tuple[tuple[str, int, str], ...]:
    issues = [(i.kind, i.line, redactor.text(i.message)) for i in decoder.issues]
    if decoder.more_issues:
        issues.append(
            (
                "field",
                decoder.issues[-1].line,
                f"and {decoder.more_issues} more framing problems after these (the first {len(decoder.issues)} are "
                "listed)",
            )
        )
    return tuple(issues)


def read_stream(chunks: Iterable[tuple[float, bytes]], redactor: Redactor) -> Stream:
    """Parse (arrival ms, bytes) pieces as an event stream and rebuild the message from its chunks."""
    decoder = SSEDecoder()
    events: list[StreamEvent] = []
    last_at = 0.0
    for at, data in chunks:
        last_at = at
        events += (_event(e, at, redactor) for e in decoder.feed(data))
    events += (_event(e, last_at, redactor) for e in decoder.close())
    events = _without_split_secrets(events, redactor)
    done = next((i for i, e in enumerate(events) if e.data.strip() == DONE), None)
    considered = events if done is None else events[:done]
    chunk_objects = [e.json for e in considered if isinstance(e.json, dict) and "error" not in e.json]
    assembled, notes = assemble(chunk_objects) if chunk_objects else (MISSING, [])
    # What the deltas spell is checked once more as a whole: fragments joined by id across a change of index
    # are not grouped together by `redact_deltas`.
    assembled = redactor.value(assembled) if redactor.active and assembled is not MISSING else assembled
    return Stream(tuple(events), _issues(decoder, redactor), done, assembled, tuple(redactor.text(n) for n in notes))


_CONTEXT = 8
"""Events read on each side of those an excerpt keeps, only so that a secret cut across their deltas is found."""


def read_excerpt(
    chunks: Iterable[tuple[float, bytes]], redactor: Redactor, *, keep_bytes: int, keep_last: int
) -> tuple[Stream, int, float | None]:
    """What is kept of a stream cut off at the size cap: the events its first `keep_bytes` of data hold and its last
    `keep_last` events, with how many events it had and the longest wait between two of them (None for fewer than
    two). Nothing is rebuilt from it (it is not judged).

    The events in between are counted and dropped as they are read, and only the kept ones (and a few beside them,
    so that a secret cut across deltas there is found whole) are parsed as JSON; no line or event is held past
    `keep_bytes`, so a cap-sized stream of one endless line costs what its bytes do.
    """
    decoder = SSEDecoder(limit=keep_bytes)
    head: list[tuple[Event, float]] = []
    after: list[tuple[Event, float]] = []
    tail: deque[tuple[Event, float]] = deque(maxlen=keep_last + _CONTEXT)
    count = 0
    held = 0
    gap: float | None = None
    last: float | None = None
    for at, data in chunks:
        for event in decoder.feed(data):  # the event the cut fell in never ended: it is not dispatched
            count += 1
            held += len(event.data)
            if held <= keep_bytes:
                head.append((event, at))
            else:
                tail.append((event, at))
                if len(after) < _CONTEXT:
                    after.append((event, at))
            if last is not None:
                gap = max(gap or 0.0, at - last)
            last = at
    # The stream went on past the last events read: their deltas may end in the first half of a secret.
    first = _without_split_secrets([_event(e, at, redactor) for e, at in (*head, *after)], redactor, cut_off=True)
    first = first[: len(head)]
    ending = _without_split_secrets([_event(e, at, redactor) for e, at in tail], redactor, cut_off=True)
    ending = ending[-keep_last:]
    ending = ending if keep_last else []
    events = [*first, *ending]
    done = next((i for i, e in enumerate(events) if e.data.strip() == DONE), None)
    shown = f"the {len(first)} in its first {size(keep_bytes)} of data"
    if ending:
        shown += f" and its last {len(ending)}"
    note = (
        f"the stream was cut off at --max-response-bytes: {count} events had arrived, of which the report keeps "
        f"{shown}; nothing was rebuilt from them"
    )
    return Stream(tuple(events), _issues(decoder, redactor)[:20], done, MISSING, (note,)), count, gap


def _leaves(value: Any, key: tuple[Any, ...] = (), path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """(group, path, text) for each string in a chunk. The group is the path with each list position replaced
    by the element's `index`, so the pieces of one choice's content (or one tool call's arguments) share it."""
    if isinstance(value, str):
        yield key, path, value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _leaves(item, (*key, name), (*path, name))
    elif isinstance(value, list):
        for position, item in enumerate(value):
            index = item.get("index") if isinstance(item, dict) else None
            yield from _leaves(item, (*key, index if isinstance(index, int) else position), (*path, position))


def redact_deltas(chunks: Sequence[Any], redactor: Redactor, *, cut_off: bool = False) -> list[Any]:
    """The chunks (parsed JSON, or anything else, left as is) with every secret that only their joined strings
    hold cut out: the piece where it starts gets `[redacted]`, the pieces it runs on into lose their part of it.
    `cut_off` says the stream went on past these chunks, so joined strings that end in a secret's first
    characters lose them too.

    A chunk left unchanged is returned as the same object, so a caller can tell which ones to write back."""
    if not redactor.active:
        return list(chunks)
    groups: dict[tuple[Any, ...], list[tuple[int, tuple[Any, ...], str]]] = {}
    for number, chunk in enumerate(chunks):
        if isinstance(chunk, dict | list):
            for group, path, text in _leaves(chunk):
                if text:
                    groups.setdefault(group, []).append((number, path, text))
    cuts: dict[tuple[int, tuple[Any, ...]], list[tuple[int, int, bool]]] = {}
    for pieces in groups.values():
        if len(pieces) < 2 and not cut_off:
            continue
        joined = "".join(text for _, _, text in pieces)
        spans = redactor.spans(joined)
        if cut_off and (dangling := redactor.dangling(joined)) is not None:
            # Disjoint still: a secret found whole that runs into the dangling start is cut from where it begins.
            start = min([dangling, *(low for low, high in spans if high > dangling)])
            spans = [*((low, high) for low, high in spans if high <= dangling), (start, len(joined))]
        if not spans:
            continue
        start = 0
        for number, path, text in pieces:
            end = start + len(text)
            for low, high in spans:
                if low < end and high > start:
                    cuts.setdefault((number, path), []).append(
                        (max(low, start) - start, min(high, end) - start, low >= start)
                    )
            start = end
    out = list(chunks)
    for (number, path), where in cuts.items():
        if out[number] is chunks[number]:
            out[number] = copy.deepcopy(chunks[number])
        holder = out[number]
        for step in path[:-1]:
            holder = holder[step]
        text = holder[path[-1]]
        for low, high, first in sorted(where, reverse=True):
            text = text[:low] + (REDACTED if first else "") + text[high:]
        holder[path[-1]] = text
    return out


REASONING_MEMBERS = ("reasoning_content", "reasoning")
"""Where servers put a reasoning model's thinking, beside `content`: vLLM and DeepSeek's `reasoning_content`,
and `reasoning`, the name vLLM moved to and OpenRouter uses."""


def _text(parts: list[str] | None) -> str | None:
    return None if parts is None else "".join(parts)


class _Choice:
    def __init__(self) -> None:
        self.role: Any = None
        self.content: list[str] | None = None
        self.refusal: list[str] | None = None
        self.reasoning: dict[str, list[str]] = {}  # reasoning_content (vLLM, DeepSeek) or reasoning, as sent
        self.finish_reason: Any = None
        self.calls: list[dict[str, Any]] = []
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_index: dict[int, dict[str, Any]] = {}
        self.extra: dict[str, Any] = {}

    def add(self, delta: dict[str, Any], notes: list[str]) -> None:
        if delta.get("role") is not None and self.role is None:
            self.role = delta["role"]
        for name in ("content", "refusal"):
            value = delta.get(name)
            if isinstance(value, str):
                parts = getattr(self, name) or []
                parts.append(value)
                setattr(self, name, parts)
            elif value is not None:
                notes.append(f"delta.{name} was a {type(value).__name__}, not a string; left out of the message")
        for name in REASONING_MEMBERS:
            value = delta.get(name)
            if isinstance(value, str):
                self.reasoning.setdefault(name, []).append(value)
            elif value is not None:
                notes.append(f"delta.{name} was a {type(value).__name__}, not a string; left out of the message")
        if isinstance(delta.get("extra_content"), dict):
            _merge(self.extra, delta["extra_content"])
        for fragment in delta.get("tool_calls") or []:
            if isinstance(fragment, dict):
                self.fragment(fragment, notes)

    def fragment(self, fragment: dict[str, Any], notes: list[str]) -> None:
        call_id, index = fragment.get("id"), fragment.get("index")
        call = None
        if isinstance(call_id, str) and call_id:
            call = self.by_id.get(call_id)
            if call is not None and isinstance(index, int) and self.by_index.get(index) is not call:
                notes.append(f"fragments of tool call {call_id!r} changed index to {index}; joined by id")
        if call is None and not (isinstance(call_id, str) and call_id) and isinstance(index, int):
            call = self.by_index.get(index)
        if call is None and call_id is None and index is None and self.calls:
            call = self.calls[-1]
            notes.append("a tool-call fragment had neither id nor index; joined to the call before it")
        if call is None:
            call = {"id": call_id, "type": fragment.get("type"), "function": {"name": None, "arguments": ""}}
            self.calls.append(call)
            if isinstance(call_id, str) and call_id:
                self.by_id[call_id] = call
        if isinstance(index, int):
            self.by_index[index] = call
        function: dict[str, Any] = fragment["function"] if isinstance(fragment.get("function"), dict) else {}
        if call["function"]["name"] is None and function.get("name") is not None:
            call["function"]["name"] = function["name"]
        if isinstance(function.get("arguments"), str):
            call["function"]["arguments"] += function["arguments"]
        if call.get("type") is None and fragment.get("type") is not None:
            call["type"] = fragment["type"]
        if isinstance(fragment.get("extra_content"), dict):
            _merge(call.setdefault("extra_content", {}), fragment["extra_content"])

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": self.role, "content": _text(self.content)}
        if self.refusal is not None:
            message["refusal"] = _text(self.refusal)
        for name, parts in self.reasoning.items():
            message[name] = "".join(parts)
        if self.calls:
            message["tool_calls"] = [{k: v for k, v in call.items() if v is not None} for call in self.calls]
        if self.extra:
            message["extra_content"] = self.extra
        return message


def _merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def assemble(chunks: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """The `chat.completion` that a stream of chunks spells, and notes on what had to be inferred."""
    notes: list[str] = []
    choices: dict[int, _Choice] = {}
    usage: Any = None
    for chunk in chunks:
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            index: int = choice["index"] if isinstance(choice.get("index"), int) else 0
            state = choices.setdefault(index, _Choice())
            if isinstance(choice.get("delta"), dict):
                state.add(choice["delta"], notes)
            if choice.get("finish_reason") is not None:
                state.finish_reason = choice["finish_reason"]
    first = chunks[0]
    completion: dict[str, Any] = {
        "id": first.get("id"),
        "object": "chat.completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": [
            {"index": i, "message": state.message(), "finish_reason": state.finish_reason}
            for i, state in sorted(choices.items())
        ],
    }
    if usage is not None:
        completion["usage"] = usage
    return completion, list(dict.fromkeys(notes))
