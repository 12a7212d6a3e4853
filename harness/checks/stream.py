"""Streams: the event-stream framing, each chunk, the stream as a whole, and usage.

The message a stream spells is rebuilt (`/stream/assembled`) and judged by the same checks as a plain
answer; the checks here are about what only a stream has. Pointers name the event: `/stream/events/7/data/...`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import schemas
from ..bounded import TooDeep, loads
from ..models import Exchange, Finding, Stream
from ..pointer import MISSING, join
from ..streams import REASONING_MEMBERS
from . import CheckContext, check, request, short


def _streamed(exchange: Exchange, context: CheckContext) -> bool:
    return exchange.stream is not None and not context.expect.negative


def _stream(exchange: Exchange) -> Stream:
    assert exchange.stream is not None
    return exchange.stream


def _chunks(exchange: Exchange) -> Iterator[tuple[int, dict[str, Any]]]:
    """(event index, chunk) for each JSON chunk before [DONE] that is not an error object."""
    stream = _stream(exchange)
    end = len(stream.events) if stream.done_index is None else stream.done_index
    for i, event in enumerate(stream.events[:end]):
        if isinstance(event.json, dict) and "error" not in event.json:
            yield i, event.json


def _at(i: int, *path: str | int) -> str:
    return join("/stream/events", i, "data", list(path))


def _choices(chunk: dict[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    for j, choice in enumerate(chunk.get("choices") or []):
        if isinstance(choice, dict):
            yield j, choice


@check(applies=_streamed)
def content_type(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A stream is labelled text/event-stream, which SSE clients require before they read a byte."""
    assert exchange.response is not None
    value = exchange.response.headers.get("content-type", "")
    if value.split(";", 1)[0].strip().lower() != "text/event-stream":
        yield Finding(
            "stream.content_type",
            "/response/headers/content-type",
            f"a stream must have content-type text/event-stream; got {value or 'none'!r}",
            "text/event-stream",
            value or None,
        )


@check(applies=_streamed)
def framing(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Every line is a field (data, event, id, retry) or a comment, in UTF-8: nothing outside the framing."""
    for kind, line, message in _stream(exchange).issues:
        if kind in ("field", "utf8"):
            yield Finding("stream.framing", "/stream/events", f"{message} (line {line} of the stream)", None, line)


@check(applies=_streamed)
def unterminated(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The last event ends with a blank line, as every event must."""
    for kind, line, message in _stream(exchange).issues:
        if kind == "unterminated":
            yield Finding("stream.unterminated", "/stream/events", f"{message} (line {line})", "a blank line", None)


@check(applies=_streamed)
def data_json(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Every event's data is a JSON chunk, or the `[DONE]` marker."""
    for i, event in enumerate(_stream(exchange).events):
        if event.json is MISSING and event.data.strip() != "[DONE]":
            yield Finding(
                "stream.data_json",
                join("/stream/events", i, "data"),
                f"event {i} holds data that is not JSON{_why_not(event.data)}: {short(event.data)}",
                "a JSON chunk",
                event.data if len(event.data) <= _SHOWN else short(event.data, _SHOWN),
            )


_SHOWN = 4096  # of an event's data, in a finding: an event may be as large as the whole answer


def _why_not(data: str) -> str:
    """Only the reason that is not plain to see in the data: JSON that parses but nests too deep."""
    try:
        loads(data)
    except TooDeep as exc:
        return f" the harness reads ({exc})"
    except ValueError:
        pass
    return ""


@check(applies=_streamed)
def error_event(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """No error object arrives inside the stream (after a 200, an error there means the answer broke off)."""
    for i, event in enumerate(_stream(exchange).events):
        if isinstance(event.json, dict) and "error" in event.json:
            error = event.json["error"]
            text = error.get("message") if isinstance(error, dict) else error
            yield Finding(
                "stream.error_event",
                join("/stream/events", i, "data", "error"),
                f"the endpoint reported an error inside the stream: {short(text, 200)}",
                None,
                event.json,
            )


@check(applies=_streamed)
def done_marker(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The stream ends with `data: [DONE]`, which is how OpenAI clients know it is complete."""
    stream = _stream(exchange)
    if stream.done_index is None:
        last = short(stream.events[-1].data) if stream.events else "no event at all"
        yield Finding(
            "stream.done_marker",
            "/stream/events",
            f"the stream ended without 'data: [DONE]'; its last event was {last}",
            "[DONE]",
            None,
        )


@check(applies=_streamed)
def after_done(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Nothing follows `[DONE]`."""
    stream = _stream(exchange)
    if stream.done_index is not None and stream.done_index + 1 < len(stream.events):
        i = stream.done_index + 1
        extra = len(stream.events) - i
        yield Finding(
            "stream.after_done",
            join("/stream/events", i),
            f"{extra} event(s) came after [DONE], starting with {short(stream.events[i].data)}",
            "nothing after [DONE]",
            stream.events[i].data,
        )


@check(applies=_streamed)
def chunk_schema(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Every chunk is a `chat.completion.chunk` with the members and types OpenAI clients rely on."""
    seen: dict[tuple[str, str], list[str]] = {}
    total = 0
    for i, chunk in _chunks(exchange):
        total += 1
        for error in schemas.validate(schemas.schema("chat-completion-chunk"), chunk):
            seen.setdefault((error.pointer, error.message), []).append(_at(i) + error.pointer)
    for (_, message), pointers in seen.items():
        where = f" (in {len(pointers)} of {total} chunks)" if len(pointers) > 1 else ""
        yield Finding("stream.chunk_schema", pointers[0], f"{message}{where}", None, None)


def _changes(exchange: Exchange, member: str) -> Iterator[Finding]:
    first: Any = MISSING
    for i, chunk in _chunks(exchange):
        if member not in chunk:
            continue
        if first is MISSING:
            first = chunk[member]
        elif chunk[member] != first:
            yield Finding(
                f"stream.consistent_{member}",
                _at(i, member),
                f"{member} changed within the stream from {short(first)} to {short(chunk[member])}",
                first,
                chunk[member],
            )
            first = chunk[member]


@check(applies=_streamed)
def consistent_id(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """One `id` for the whole stream: clients key the answer by it."""
    yield from _changes(exchange, "id")


@check(applies=_streamed)
def consistent_created(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """One `created` for the whole stream: OpenAI's reference says each chunk has the same timestamp."""
    yield from _changes(exchange, "created")


@check(applies=_streamed)
def choice_index(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Each chunk's `choices[].index` names one of the n choices asked for (0..n-1)."""
    n = request(exchange).get("n", 1)
    n = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
    for i, chunk in _chunks(exchange):
        for j, choice in _choices(chunk):
            index = choice.get("index")
            if isinstance(index, int) and not isinstance(index, bool) and not 0 <= index < n:
                yield Finding(
                    "stream.choice_index",
                    _at(i, "choices", j, "index"),
                    f"choices[].index must be in 0..{n - 1} (n={n}); got {index}",
                    list(range(n)),
                    index,
                )


@check(applies=_streamed)
def finish_reason(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Every choice gets a `finish_reason` by the end of the stream."""
    started: dict[int, int] = {}
    finished: set[int] = set()
    for i, chunk in _chunks(exchange):
        for _, choice in _choices(chunk):
            index = choice.get("index", 0)
            started.setdefault(index, i)
            if choice.get("finish_reason") is not None:
                finished.add(index)
    for index, i in sorted(started.items(), key=lambda item: str(item[0])):
        if index not in finished:
            yield Finding(
                "stream.finish_reason",
                "/stream/events",
                f"choice {index} never got a finish_reason (its first chunk was event {i})",
                "a finish_reason",
                None,
            )


@check(applies=_streamed)
def finish_reason_key(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Chunks before the last carry `finish_reason: null`, as OpenAI sends it, rather than leaving the key out."""
    missing = [
        (i, j) for i, chunk in _chunks(exchange) for j, choice in _choices(chunk) if "finish_reason" not in choice
    ]
    if missing:
        i, j = missing[0]
        yield Finding(
            "stream.finish_reason_key",
            _at(i, "choices", j, "finish_reason"),
            f"{len(missing)} chunk choice(s) leave out the finish_reason key instead of sending null",
            None,
            "<missing>",
        )


@check(applies=_streamed)
def role_assistant(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A delta's `role`, where present, is `assistant`."""
    for i, chunk in _chunks(exchange):
        for j, choice in _choices(chunk):
            delta = choice.get("delta")
            role = delta.get("role") if isinstance(delta, dict) else None
            if isinstance(role, str) and role != "assistant":
                yield Finding(
                    "stream.role_assistant",
                    _at(i, "choices", j, "delta", "role"),
                    f"delta.role must be 'assistant'; got {role!r}",
                    "assistant",
                    role,
                )


@check(applies=_streamed)
def role_first_only(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`role` comes on the first delta of each choice only, as OpenAI sends it."""
    seen: set[Any] = set()
    repeats: list[tuple[int, int]] = []
    for i, chunk in _chunks(exchange):
        for j, choice in _choices(chunk):
            delta = choice.get("delta")
            if isinstance(delta, dict) and "role" in delta:
                index = choice.get("index")
                if index in seen:
                    repeats.append((i, j))
                seen.add(index)
    if repeats:
        i, j = repeats[0]
        yield Finding(
            "stream.role_first_only",
            _at(i, "choices", j, "delta", "role"),
            f"role is repeated on {len(repeats)} later delta(s); OpenAI sends it on the first only",
            "role on the first delta only",
            len(repeats),
        )


def _fragments(exchange: Exchange) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, chunk in _chunks(exchange):
        for j, choice in _choices(chunk):
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            for k, fragment in enumerate(calls if isinstance(calls, list) else []):
                if isinstance(fragment, dict):
                    yield _at(i, "choices", j, "delta", "tool_calls", k), fragment


@check(applies=_streamed)
def tool_call_index(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Every tool-call delta carries an integer `index`: OpenAI's SDK joins fragments by it and fails without."""
    for pointer, fragment in _fragments(exchange):
        index = fragment.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            yield Finding(
                "stream.tool_call_index",
                join(pointer, "index"),
                f"a tool-call delta must carry an integer index; got {short(index) if 'index' in fragment else 'none'}",
                "an integer",
                index,
            )


@check(applies=_streamed)
def tool_call_fragments(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The fragments of one call keep one index (a client joining by index would split or merge calls)."""
    indexes: dict[str, tuple[Any, str]] = {}
    reported: set[str] = set()
    for pointer, fragment in _fragments(exchange):
        call_id, index = fragment.get("id"), fragment.get("index")
        if not isinstance(call_id, str) or not call_id or not isinstance(index, int):
            continue
        if call_id not in indexes:
            indexes[call_id] = (index, pointer)
        elif indexes[call_id][0] != index and call_id not in reported:
            reported.add(call_id)
            yield Finding(
                "stream.tool_call_fragments",
                join(pointer, "index"),
                f"fragments of tool call {call_id!r} changed index from {indexes[call_id][0]} to {index}; "
                "the harness joined them by id",
                indexes[call_id][0],
                index,
            )


@check(applies=_streamed)
def tool_call_index_once(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """One chunk never carries two entries with the same tool-call index: clients merge them into one call's
    arguments (openai-python#3201)."""
    for i, chunk in _chunks(exchange):
        for j, choice in _choices(chunk):
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            seen: set[int] = set()
            for k, fragment in enumerate(calls if isinstance(calls, list) else []):
                index = fragment.get("index") if isinstance(fragment, dict) else None
                if not isinstance(index, int) or isinstance(index, bool):
                    continue
                if index in seen:
                    yield Finding(
                        "stream.tool_call_index_once",
                        _at(i, "choices", j, "delta", "tool_calls", k, "index"),
                        f"two entries of one chunk carry tool-call index {index}: a client joining fragments by index "
                        "merges them into one call and corrupts its arguments",
                        "one entry per index in a chunk",
                        index,
                    )
                seen.add(index)


@check(applies=_streamed)
def tool_call_head_once(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """`id`, `type` and `function.name` come on a call's first fragment only: clients concatenate what repeats
    (the SDK turns a repeated name into `get_weatherget_weather`)."""
    started: set[tuple[Any, Any]] = set()
    for i, chunk in _chunks(exchange):
        for j, choice in _choices(chunk):
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            for k, fragment in enumerate(calls if isinstance(calls, list) else []):
                index = fragment.get("index") if isinstance(fragment, dict) else None
                if not isinstance(index, int) or isinstance(index, bool):
                    continue  # stream.tool_call_index says so
                key = (choice.get("index", 0), index)
                if key not in started:
                    started.add(key)
                    continue
                function = fragment.get("function") if isinstance(fragment.get("function"), dict) else {}
                repeated = [name for name in ("id", "type") if fragment.get(name)]
                repeated += ["function.name"] if function.get("name") else []
                if repeated:
                    yield Finding(
                        "stream.tool_call_head_once",
                        _at(i, "choices", j, "delta", "tool_calls", k),
                        f"a later fragment of tool call {index} repeats {', '.join(repeated)}: clients append each "
                        "fragment to the call, so a repeated name becomes the name twice over",
                        "id, type and name on the first fragment only",
                        repeated,
                    )


@check(applies=_streamed)
def tool_call_indexes_dense(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The tool calls of a choice are indexed 0..n-1 in a stream, each call its own index."""
    indexes: dict[Any, list[int]] = {}
    first: dict[Any, int] = {}
    for i, chunk in _chunks(exchange):
        for _, choice in _choices(chunk):
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            for fragment in calls if isinstance(calls, list) else []:
                index = fragment.get("index") if isinstance(fragment, dict) else None
                if isinstance(index, int) and not isinstance(index, bool):
                    seen = indexes.setdefault(choice.get("index", 0), [])
                    if index not in seen:
                        seen.append(index)
                        first.setdefault(choice.get("index", 0), i)
    for choice_index, seen in indexes.items():
        if sorted(seen) != list(range(len(seen))):
            yield Finding(
                "stream.tool_call_indexes_dense",
                _at(first[choice_index], "choices"),
                f"choice {choice_index}'s tool calls are indexed {sorted(seen)}; {len(seen)} calls are indexed "
                f"0..{len(seen) - 1}, which is where clients put them",
                list(range(len(seen))),
                sorted(seen),
            )


def _said(delta: Any) -> bool:
    """Whether a delta adds to the answer (text, a refusal, reasoning or a tool call), not only metadata."""
    if not isinstance(delta, dict):
        return False
    return any(isinstance(delta.get(k), str) and delta[k] for k in ("content", "refusal", *REASONING_MEMBERS)) or bool(
        delta.get("tool_calls")
    )


@check(applies=_streamed)
def finish_reason_once(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Each choice gets exactly one `finish_reason`, and nothing of its answer comes after it."""
    finished: dict[Any, int] = {}
    for i, chunk in _chunks(exchange):
        for j, choice in _choices(chunk):
            index = choice.get("index", 0)
            if index in finished and choice.get("finish_reason") is not None:
                yield Finding(
                    "stream.finish_reason_once",
                    _at(i, "choices", j, "finish_reason"),
                    f"choice {index} got a second finish_reason ({short(choice.get('finish_reason'))}) after the one "
                    f"on event {finished[index]}: a client stops reading the choice at the first",
                    "one finish_reason per choice",
                    choice.get("finish_reason"),
                )
            elif index in finished and _said(choice.get("delta")):
                yield Finding(
                    "stream.finish_reason_once",
                    _at(i, "choices", j, "delta"),
                    f"choice {index} goes on after its finish_reason (event {finished[index]}): a client that stops "
                    "there loses the rest",
                    "nothing after the finish_reason",
                    short(choice.get("delta")),
                )
            if choice.get("finish_reason") is not None:
                finished.setdefault(index, i)


def _wants_usage(exchange: Exchange, context: CheckContext) -> bool:
    options = request(exchange).get("stream_options")
    return _streamed(exchange, context) and isinstance(options, dict) and options.get("include_usage") is True


@check(applies=_wants_usage)
def usage_present(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A stream that asked for usage (`stream_options.include_usage`) carries it."""
    if not any(isinstance(chunk.get("usage"), dict) for _, chunk in _chunks(exchange)):
        yield Finding(
            "stream.usage_present",
            "/stream/events",
            "the request set stream_options.include_usage, but no chunk carries usage",
            "a usage object",
            None,
        )


@check(applies=_wants_usage)
def usage_chunk(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """Usage comes as OpenAI sends it: once, on a last chunk of its own with `choices: []`."""
    chunks = list(_chunks(exchange))
    carrying = [(i, c) for i, c in chunks if isinstance(c.get("usage"), dict)]
    if not carrying:
        return
    i, last = carrying[-1]
    if len(carrying) > 1:
        yield Finding(
            "stream.usage_chunk",
            _at(carrying[0][0], "usage"),
            f"usage came on {len(carrying)} chunks; OpenAI sends it once, on a last chunk with choices: []",
            "one usage chunk",
            len(carrying),
        )
    elif last.get("choices"):
        yield Finding(
            "stream.usage_chunk",
            _at(i, "usage"),
            "usage came on a chunk that also carries choices; OpenAI sends it on a chunk of its own with choices: []",
            "choices: []",
            short(last.get("choices")),
        )


def _kind(exchange: Exchange) -> list[tuple[Any, tuple[str, ...], bool | None]] | None:
    """Per choice: (finish_reason, names of the tools called, whether the content is JSON) — what 'in kind' means."""
    answer = exchange.answer()
    response = exchange.response
    if response is None or not 200 <= response.status < 300 or not isinstance(answer, dict):
        return None
    json_wanted = isinstance(request(exchange).get("response_format"), dict)
    out = []
    for choice in answer.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
        calls: list[Any] = message["tool_calls"] if isinstance(message.get("tool_calls"), list) else []
        names = tuple(sorted(str((c.get("function") or {}).get("name")) for c in calls if isinstance(c, dict)))
        content = message.get("content")
        is_json = None
        if json_wanted and isinstance(content, str):
            try:
                loads(content, constants=True)
                is_json = True
            except ValueError:
                is_json = False
        out.append((choice.get("finish_reason"), names, is_json))
    return out


def _beside_plain(exchange: Exchange, context: CheckContext) -> bool:
    return context.plain is not None and exchange.stream is not None


@check(applies=_beside_plain)
def matches_plain(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A case run both ways gets a streamed answer of the same kind as the plain one.

    Two samples may differ in wording; they should not differ in kind: one calling a tool and the other
    not, one ending with tool_calls and the other with stop, one JSON and the other not.
    """
    assert context.plain is not None
    before, after = _kind(context.plain), _kind(exchange)
    if before is None or after is None:
        return
    for i, (one, other) in enumerate(zip(before, after, strict=False)):
        if one == other:
            continue
        labels = ("finish_reason", "tool calls", "JSON content")
        differences = [
            f"{label} {a!r} plain, {b!r} streamed" for label, a, b in zip(labels, one, other, strict=True) if a != b
        ]
        yield Finding(
            "stream.matches_plain",
            join("/stream/assembled/choices", i),
            f"the streamed answer differs in kind from the plain answer to the same case: {'; '.join(differences)}",
            list(one),
            list(other),
        )


def _greedy(exchange: Exchange, context: CheckContext) -> bool:
    """A both-ways run at temperature 0 with a seed: where an endpoint is deterministic, the same answer twice."""
    sent = request(exchange)
    return _beside_plain(exchange, context) and sent.get("temperature") == 0 and sent.get("seed") is not None


def _contents(exchange: Exchange) -> list[Any] | None:
    answer = exchange.answer()
    response = exchange.response
    if response is None or not 200 <= response.status < 300 or not isinstance(answer, dict):
        return None
    return [
        (choice.get("message") or {}).get("content") if isinstance(choice.get("message"), dict) else None
        for choice in answer.get("choices") or []
        if isinstance(choice, dict)
    ]


@check(applies=_greedy)
def text_matches_plain(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """At temperature 0 with a seed, the streamed text is the plain text: streaming changes how an answer is
    delivered, not what it says (a warning by default: few endpoints promise determinism)."""
    assert context.plain is not None
    before, after = _contents(context.plain), _contents(exchange)
    if before is None or after is None:
        return
    for i, (one, other) in enumerate(zip(before, after, strict=False)):
        if isinstance(one, str) and isinstance(other, str) and one != other:
            at = next(
                (k for k, (a, b) in enumerate(zip(one, other, strict=False)) if a != b), min(len(one), len(other))
            )
            yield Finding(
                "stream.text_matches_plain",
                join("/stream/assembled/choices", i, "message", "content"),
                f"at temperature 0 with a seed the streamed text differs from the plain text from character {at}: "
                f"{short(one[at : at + 40])} plain, {short(other[at : at + 40])} streamed",
                one,
                other,
            )


def _usage_not_asked(exchange: Exchange, context: CheckContext) -> bool:
    return _streamed(exchange, context) and not _wants_usage(exchange, context)


@check(applies=_usage_not_asked)
def usage_unrequested(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """No usage in a stream that did not ask for it: OpenAI sends usage only with stream_options.include_usage."""
    carrying = [i for i, chunk in _chunks(exchange) if isinstance(chunk.get("usage"), dict)]
    if carrying:
        yield Finding(
            "stream.usage_unrequested",
            _at(carrying[0], "usage"),
            f"usage came on {len(carrying)} chunk(s) though the request did not set stream_options.include_usage",
            "no usage",
            len(carrying),
        )
