"""Recordings: one reviewable YAML file per case per endpoint, holding what a real endpoint said.

A recording keeps the request as sent (secrets redacted), the response exactly as received (status,
headers, and the body as text, or as raw chunks with their arrival times for a stream), and where it came
from: the endpoint, the server, the harness version and the date. Replay answers from it, so a regression
suite runs the real runner, checks and reports with no network, and a request that no longer matches its
recording is reported as stale instead of being answered.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write
from .errors import HarnessError, Problem
from .pointer import join
from .yamlfile import load_yaml

__all__ = ["FORMAT", "Recording", "diff", "load_recordings", "recording_path", "save"]

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

    @property
    def body(self) -> bytes:
        return b"".join(c.data for c in self.chunks)


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
    source = load_yaml(path)
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


def load_recordings(directory: Path) -> dict[tuple[str, str], Recording]:
    """Every recording under `directory`, by (endpoint name, case id); problems in any file are all reported."""
    if not directory.is_dir():
        raise HarnessError(Problem(str(directory), "no such recordings folder"))
    found: dict[tuple[str, str], Recording] = {}
    problems: list[Problem] = []
    for path in sorted(directory.rglob("*.yaml")):
        try:
            recording = _parse(path)
        except HarnessError as exc:
            problems += exc.problems
            continue
        found[(str(recording.endpoint.get("name")), recording.case)] = recording
    if problems:
        raise HarnessError(problems)
    return found


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
