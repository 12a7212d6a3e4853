"""What an endpoint sends, read within bounds: no answer may crash the run or hold its memory.

An answer is data from a server the harness is testing, so it may be anything: JSON nested a million levels deep
(Python's parser raises `RecursionError`, which is no `ValueError`, and every recursive reader after it, from
redaction to jsonschema to the report, would raise it too), or far more bytes than a case needs. JSON is read
here with its nesting bounded, so that a value too deep is "not JSON we judge", with the reason, like any other
unreadable answer; and an answer cut off at `--max-response-bytes` is kept as an excerpt with its counts, so
what the report holds of it is small whatever was sent.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .limits import MAX_DEPTH

__all__ = ["EXCERPT_BYTES", "MAX_NESTING", "TAIL_EVENTS", "TooDeep", "cut", "loads", "nesting"]

MAX_NESTING = MAX_DEPTH
"""How deeply arrays and objects may nest in JSON an endpoint sends (a body, a chunk, content, tool arguments).
A chat completion nests about 8 deep; the bound is the one case files have, for the same reason: every recursive
reader (redaction, checks, jsonschema, the report's encoder) stays far from Python's recursion limit."""

EXCERPT_BYTES = 64 * 1024
"""How much of an answer cut off at --max-response-bytes is kept: its first bytes (and, for a stream, the events
they hold), enough to see what the endpoint was sending."""

TAIL_EVENTS = 5
"""How many of the last events of a stream cut off at --max-response-bytes are kept besides its first bytes."""

_BOUNDARY = frozenset(" \t\r\n\"',;:{}[]()<>=&?/")
_SHARED = 64  # the longest string value `loads(shared=True)` shares: ids, models, tokens
_LONGEST_TOKEN = 8192  # longer than any key or access token (a Google one is about 2 KB)


class TooDeep(ValueError):
    """JSON nested deeper than `MAX_NESTING`: a `ValueError`, so every reader that refuses bad JSON refuses it."""

    def __init__(self) -> None:
        super().__init__(
            f"it nests arrays and objects more than {MAX_NESTING} levels deep, deeper than the harness reads an answer"
        )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _shared(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {sys.intern(k): sys.intern(v) if type(v) is str and len(v) <= _SHARED else v for k, v in pairs}


# Built once: `json.loads` given any option builds a decoder on every call, a third of the cost of a stream's chunk.
_DECODERS = {
    (constants, shared): json.JSONDecoder(
        object_pairs_hook=_shared if shared else None, parse_constant=None if constants else _reject_constant
    )
    for constants in (False, True)
    for shared in (False, True)
}


def loads(text: str | bytes, *, constants: bool = False, shared: bool = False) -> Any:
    """`json.loads` for what an endpoint sent: raises `ValueError` (`TooDeep` for nesting past `MAX_NESTING`) and
    nothing else. `constants` accepts NaN and Infinity, as clients' parsers do; JSON itself has neither.

    `shared` makes one string object of equal keys and short values across documents: a stream's tens of
    thousands of chunks repeat the same dozen keys, ids and tokens, which then take half the memory."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    if text.startswith("\ufeff"):  # as json.loads says it
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        value = _DECODERS[constants, shared].decode(text)
    except RecursionError:
        raise TooDeep from None
    # Nothing nests deeper than it has brackets: most answers need no walk to know they are within the bound.
    if text.count("[") + text.count("{") > MAX_NESTING and nesting(value, MAX_NESTING + 1) > MAX_NESTING:
        raise TooDeep
    return value


def nesting(value: Any, stop: int | None = None) -> int:
    """How many arrays and objects deep `value` goes (a scalar is 0), walked without recursion; the walk ends once
    it has seen `stop` levels, so measuring a huge value costs no more than proving it too deep."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if stop is not None and deepest >= stop:
                return deepest
        stack.extend((child, depth) for child in children if isinstance(child, dict | list))
    return deepest


def cut(text: str, limit: int, *, ended: bool = True) -> str:
    """At most `limit` characters of `text`, cut where no secret can be half shown: at the last line end before the
    limit, or else before the run of word characters the limit falls in (a key or token is one such run, and half
    of one would escape redaction, which looks for whole values). A run longer than any credential is cut as is.

    `ended=False` says that `text` is itself the start of something longer, so its end needs the same care."""
    if len(text) <= limit and ended:
        return text
    head = text[:limit]
    line = max(head.rfind("\n"), head.rfind("\r"))
    if line >= len(head) // 2:
        return head[: line + 1]
    floor = max(0, len(head) - _LONGEST_TOKEN)
    at = len(head)
    while at > floor and head[at - 1] not in _BOUNDARY:
        at -= 1
    return head[:at] if at > floor or floor == 0 else head
