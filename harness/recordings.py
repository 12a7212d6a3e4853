"""Recordings: one reviewable YAML file per case per endpoint, holding what a real endpoint said.

A recording keeps the request as sent (secrets redacted), the response exactly as received (status,
headers, and the body as text, or as raw chunks with their arrival times for a stream), and where it came
from: the endpoint, the server, the harness version and the date. Replay answers from it, so a regression
suite runs the real runner, checks and reports with no network, and a request that no longer matches its
recording is reported as stale instead of being answered.

No secret is stored, in any form a reader could decode: `redact_chunks` rewrites the bytes of an answer
before they are saved (see there), since a recording is meant to be committed and shared.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import bounded
from .atomic import atomic_write
from .errors import HarnessError, Problem
from .limits import RECORDING_LIMITS
from .pointer import join
from .redact import REDACTED, Redactor
from .streams import compact, redact_deltas
from .yamlfile import load_yaml

__all__ = ["FORMAT", "Recording", "diff", "load_recordings", "recording_path", "redact_chunks", "save"]

FORMAT = "chat-conformance/recording@1"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes as they arrived, `at_ms` after the request was sent."""

    at_ms: float
    data: bytes


@dataclass(frozen=True, slots=True)
class Recording:
    """One exchange as a real endpoint answered it, with its provenance."""

    case: str
    endpoint: dict[str, Any]
    provenance: dict[str, Any]
    request: dict[str, Any]
    status: int
    headers: list[tuple[str, str]]
    chunks: tuple[Chunk, ...]
    http_version: str = "HTTP/1.1"
    timings: dict[str, float | None] = field(default_factory=dict)
    path: str = ""
    complete: bool = True

    def answer(self) -> Recording:
        """This recording with its answer: itself, or read again from its file when it was indexed without it."""
        return self if self.complete else _parse(Path(self.path))

    @property
    def body(self) -> bytes:
        return b"".join(c.data for c in self.chunks)


def redact_chunks(chunks: Sequence[Chunk], redactor: Redactor, *, stream: bool) -> tuple[Chunk, ...]:
    """The chunks of an answer as they may be stored: no secret in their bytes, in the bytes they join to, or in
    the JSON those decode to.

    Secrets are looked for in the joined bytes, since an endpoint may cut one across two writes (even inside a
    multi-byte character, where neither chunk is text on its own); each is replaced in the chunk where it starts
    and the chunks it runs on into lose their part of it, so every chunk keeps its arrival time. Then the JSON is
    decoded and checked again (each event of a stream, where a secret may also be cut across two deltas; a plain
    body as a whole), and what still decodes to a secret is written back, re-encoded without it.
    """
    if not redactor.active:
        return tuple(chunks)
    marker = REDACTED.encode("ascii")
    out = _splice(chunks, [(start, end, marker) for start, end in redactor.byte_spans(_joined(chunks))])
    joined = _joined(out)
    return _splice(out, _event_edits(joined, redactor) if stream else _body_edits(joined, redactor))


_Edit = tuple[int, int, bytes]
_NOT_JSON: Any = object()
_LINE = re.compile(rb"([^\r\n]*)(\r\n|\r|\n|\Z)")


def _joined(chunks: Sequence[Chunk]) -> bytes:
    return b"".join(c.data for c in chunks)


def _splice(chunks: Sequence[Chunk], edits: list[_Edit]) -> tuple[Chunk, ...]:
    """Apply (start, end, replacement) edits, given as offsets into the joined bytes, to the chunks themselves."""
    if not edits:
        return tuple(chunks)
    edits = sorted(edits)
    out: list[Chunk] = []
    first = 0  # the first edit that may still reach into this chunk
    start = 0
    for chunk in chunks:
        end = start + len(chunk.data)
        piece = bytearray()
        cursor = start
        number = first
        while number < len(edits) and edits[number][0] < end:
            low, high, replacement = edits[number]
            if high > start:
                piece += chunk.data[cursor - start : max(low, start) - start]
                if low >= start:
                    piece += replacement
                cursor = max(cursor, min(high, end))
            number += 1
        piece += chunk.data[cursor - start :]
        while first < len(edits) and edits[first][1] <= end:
            first += 1
        out.append(Chunk(chunk.at_ms, bytes(piece)))
        start = end
    return tuple(out)


def _decoded_json(data: bytes) -> Any:
    # Nesting is bounded as the harness reads answers: a redactor that walks a value must never recurse past it.
    try:
        return bounded.loads(data, constants=True)
    except ValueError:
        return _NOT_JSON


def _encoded(text: str) -> bytes:
    # A lone surrogate (JSON may escape one) is written back as the escape it came as: it can only be in a string.
    return text.encode("utf-8", errors="backslashreplace")


def _body_edits(joined: bytes, redactor: Redactor) -> list[_Edit]:
    parsed = _decoded_json(joined)
    if parsed is _NOT_JSON:
        return []
    clean = redactor.value(parsed)
    return [] if clean == parsed else [(0, len(joined), _encoded(json.dumps(clean, ensure_ascii=False)))]


def _event_edits(joined: bytes, redactor: Redactor) -> list[_Edit]:
    """Each event whose JSON holds a secret once decoded, or together with other events' deltas, written back as
    one compact `data:` line in place of its data lines (its other fields and the framing stay as they were)."""
    events: list[list[tuple[int, int, int, bytes]]] = []  # each event's data lines: start, end, next line, value
    pending: list[tuple[int, int, int, bytes]] = []
    for line in _LINE.finditer(joined, 3 if joined.startswith(b"\xef\xbb\xbf") else 0):
        content = line.group(1)
        if line.start() == line.end():
            break
        if not content:
            if pending:
                events.append(pending)
            pending = []
            continue
        name, _, value = content.partition(b":")
        if name == b"data":
            pending.append((line.start(), line.start() + len(content), line.end(), value.removeprefix(b" ")))
    if pending:
        events.append(pending)
    parsed = [_decoded_json(b"\n".join(value for *_, value in lines)) for lines in events]
    decoded = [p if p is _NOT_JSON else redactor.value(p) for p in parsed]
    edits: list[_Edit] = []
    for lines, before, after in zip(events, parsed, redact_deltas(decoded, redactor), strict=True):
        if after is _NOT_JSON or after == before:
            continue
        start, end, _, _ = lines[0]
        edits.append((start, end, b"data: " + _encoded(compact(after))))
        edits += [(begin, following, b"") for begin, _, following, _ in lines[1:]]
    return edits


def recording_path(directory: Path, endpoint: str, case: str) -> Path:
    return directory / _SAFE_NAME.sub("_", endpoint) / f"{_SAFE_NAME.sub('_', case)}.yaml"


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    # Multi-line text (bodies, SSE streams) as literal blocks, so a diff in review shows lines, not escapes.
    if "\n" in value and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]|[ \t]\n|\r", value):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_presenter)


def _text_or_base64(data: bytes) -> dict[str, str]:
    try:
        return {"text": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def save(recording: Recording, directory: Path) -> Path:
    """Write a recording atomically under `directory/<endpoint>/<case>.yaml`; returns its path."""
    streamed = len(recording.chunks) > 1 or any(
        k.lower() == "content-type" and "event-stream" in v for k, v in recording.headers
    )
    response: dict[str, Any] = {
        "status": recording.status,
        "http_version": recording.http_version,
        "headers": [[k, v] for k, v in recording.headers],
    }
    if streamed:
        response["chunks"] = [{"at_ms": round(c.at_ms, 2), **_text_or_base64(c.data)} for c in recording.chunks]
    else:
        response["body"] = _text_or_base64(recording.body)
    document = {
        "format": FORMAT,
        "case": recording.case,
        "endpoint": recording.endpoint,
        "provenance": recording.provenance,
        "request": recording.request,
        "response": response,
        "timings": recording.timings,
    }
    path = recording_path(directory, str(recording.endpoint.get("name", "endpoint")), recording.case)
    atomic_write(path, yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120))
    return path


def _chunk(item: dict[str, Any]) -> bytes:
    if "base64" in item:
        return base64.b64decode(item["base64"])
    return str(item.get("text", "")).encode("utf-8")


def _parse(path: Path) -> Recording:
    source = load_yaml(path, limits=RECORDING_LIMITS)
    data = source.data
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise HarnessError(source.problem("/format", f"not a recording: expected format {FORMAT!r}"))
    try:
        response = data["response"]
        if "chunks" in response:
            chunks = tuple(Chunk(float(c.get("at_ms", 0)), _chunk(c)) for c in response["chunks"])
        else:
            chunks = (Chunk(float((data.get("timings") or {}).get("ttfb_ms") or 0), _chunk(response["body"])),)
        return Recording(
            case=str(data["case"]),
            endpoint=dict(data["endpoint"]),
            provenance=dict(data.get("provenance") or {}),
            request=dict(data["request"]),
            status=int(response["status"]),
            headers=[(str(k), str(v)) for k, v in response.get("headers", [])],
            chunks=chunks,
            http_version=str(response.get("http_version", "HTTP/1.1")),
            timings=dict(data.get("timings") or {}),
            path=str(path),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise HarnessError(source.problem("", f"malformed recording: {type(exc).__name__}: {exc}")) from None


def load_recordings(directory: Path, *, answers: bool = True) -> dict[tuple[str, str], Recording]:
    """Every recording under `directory`, by (endpoint name, case id); problems in any file are all reported.

    With `answers=False` each recording is read and checked but only what says where it came from is kept (the
    case, the endpoint, and of the provenance what a replay's banner tells: source, server, date): `complete` is
    False and `answer()` reads it again when it is replayed. A replay of thousands of recordings then holds one
    answer at a time, not all of them, and what the recordings of one endpoint share is held once.
    """
    if not directory.is_dir():
        raise HarnessError(Problem(str(directory), "no such recordings folder"))
    found: dict[tuple[str, str], Recording] = {}
    problems: list[Problem] = []
    shared: dict[str, Any] = {}  # equal values held once, by their JSON text
    for path in sorted(directory.rglob("*.yaml")):
        try:
            recording = (None if answers else _head(path)) or _parse(path)
        except HarnessError as exc:
            problems += exc.problems
            continue
        if not answers:  # what says where it came from stays; the exchange itself is read again when replayed
            told = {k: recording.provenance[k] for k in _TOLD if k in recording.provenance}
            recording = replace(
                recording,
                endpoint=_shared(shared, recording.endpoint),
                provenance=_shared(shared, told),
                request=_shared(shared, {}),
                headers=_shared(shared, []),
                chunks=(),
                timings=_shared(shared, {}),
                complete=False,
            )
        found[(str(recording.endpoint.get("name")), recording.case)] = recording
    if problems:
        raise HarnessError(problems)
    return found


_TOLD = ("source", "server", "recorded_at", "retrieved")

_HEAD_BYTES = 16 * 1024
_HEAD_END = re.compile(r"^(?:request|response|timings):", re.MULTILINE)


def _head(path: Path) -> Recording | None:
    """What says where a recording came from, read from the top of its file alone: every recording the harness
    writes puts its format, case, endpoint and provenance before the request and the answer, so indexing a folder
    reads a few lines of each file, not every answer (a replay of one case read all of them first). The answer is
    read, and checked, when the case is replayed. None for a file laid out otherwise, which is then read whole."""
    try:
        with path.open("rb") as handle:
            text = handle.read(_HEAD_BYTES).decode("utf-8")
    except (OSError, UnicodeDecodeError):  # reading it whole says what is wrong, where
        return None
    end = _HEAD_END.search(text)
    if end is None:
        return None
    try:
        data = load_yaml(path, text[: end.start()], limits=RECORDING_LIMITS).data
    except HarnessError:
        return None
    if not (
        isinstance(data, dict)
        and data.get("format") == FORMAT
        and isinstance(data.get("case"), str)
        and isinstance(data.get("endpoint"), dict)
        and isinstance(data.get("provenance", {}), dict)
    ):
        return None
    return Recording(
        case=data["case"],
        endpoint=data["endpoint"],
        provenance=data.get("provenance") or {},
        request={},
        status=0,
        headers=[],
        chunks=(),
        path=str(path),
        complete=False,
    )


def _shared(held: dict[str, Any], value: Any) -> Any:
    """`value`, or an equal one already held (never changed: an index's recordings are read, not written)."""
    return held.setdefault(json.dumps(value, sort_keys=True, default=str), value)


def diff(recorded: Any, current: Any, pointer: str = "", limit: int = 5) -> list[str]:
    """Where two JSON values differ, as 'pointer: recorded → now' lines (at most `limit`)."""
    out: list[str] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(dict.fromkeys([*a, *b])):
                if key not in b:
                    out.append(f"{join(at, key)}: removed (was {_show(a[key])})")
                elif key not in a:
                    out.append(f"{join(at, key)}: added {_show(b[key])}")
                else:
                    walk(a[key], b[key], join(at, key))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, join(at, i))
        elif a != b or type(a) is not type(b):
            out.append(f"{at or '/'}: recorded {_show(a)}, now {_show(b)}")

    walk(recorded, current, pointer)
    return out[:limit]


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."
