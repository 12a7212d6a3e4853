"""Results as comparisons read them: a `Record` per result, from a run in progress or read back from its files.

A comparison (`harness compare`, `harness diff`, the matrix in `summary.md`) needs a few figures and the shape
of each answer, never the answer itself: a `Record` is small enough to keep for every result of many runs.
Records are made the same way whether the result was just judged or is read back from `results.json` (or the
`results.jsonl` a killed run left), so a live run and one read back compare equal.

Imports nothing that sends or judges: reading a report needs neither.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ..errors import HarnessError, Problem
from ..models import Exchange, Result, Verdict, to_json
from ..pointer import join

__all__ = [
    "RESULTS_FORMAT",
    "SHAPE_LIMIT",
    "Record",
    "Run",
    "json_document",
    "json_text",
    "read_run",
    "record",
    "record_json",
    "result_json",
    "shape",
]

RESULTS_FORMAT = "chat-conformance/results@1"
TEXT_LIMIT = 64 * 1024
SHAPE_LIMIT = 500  # (pointer, type) pairs kept per answer: an answer with endless distinct keys stays small here


@dataclass(frozen=True, slots=True, kw_only=True)
class Record:
    """What is compared of one result: verdict, finding codes, figures, and the shape of the answer.

    `shape` holds (pointer, JSON type) pairs of the answer, array indexes written `*`, rooted where finding
    pointers are (`/response/body/choices/*/finish_reason`, `/stream/events/*/data/id`, `/stream/assembled/...`).
    `findings` are (code, severity, pointer) triples.
    """

    case: str
    endpoint: str
    mode: str = ""
    repetition: int = 1
    title: str = ""
    tags: tuple[str, ...] = ()
    verdict: Verdict = Verdict.SKIP
    reason: str = ""
    findings: tuple[tuple[str, str, str], ...] = ()
    status: int | None = None
    total_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    size: int | None = None
    shape: tuple[tuple[str, str], ...] = ()
    finish_reasons: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """A record sent as plain JSON by another process (within a pytest-xdist worker's digest)."""
        return cls(
            **{
                **data,
                "verdict": Verdict(data["verdict"]),
                "tags": tuple(data["tags"]),
                "findings": tuple((code, severity, pointer) for code, severity, pointer in data["findings"]),
                "shape": tuple((pointer, kind) for pointer, kind in data["shape"]),
                "finish_reasons": tuple(data["finish_reasons"]),
            }
        )

    @property
    def row(self) -> str:
        """The row a result has in a comparison: its case, and `[stream]` for the streamed run of a both-ways case."""
        return f"{self.case} [{self.mode}]" if self.mode else self.case

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(sorted({code for code, _, _ in self.findings}))

    @property
    def features(self) -> tuple[str, ...]:
        """The tags a result counts under: its case's, and `stream` for a streamed answer."""
        return tuple(dict.fromkeys([*self.tags, *(["stream"] if self.mode == "stream" else [])]))

    @property
    def tokens_per_s(self) -> float | None:
        """Output tokens per second of the whole answer (time to first token included), so plain answers and
        streams compare on the same footing."""
        if self.completion_tokens is None or not self.total_ms:
            return None
        return self.completion_tokens / (self.total_ms / 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """A run or a set of recordings, as records: where it came from and how it was sent.

    `concurrency` and `repeat` are None when the source does not say (a `results.jsonl` has no header).
    `results` gives the results whole, as `results.json` holds them, read from disk each time it is iterated
    (for `report.html`, which shows every exchange; the records keep only what is compared).
    """

    label: str
    path: str
    origin: str = "live"
    endpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    records: tuple[Record, ...] = ()
    concurrency: int | None = None
    repeat: int | None = None
    notes: tuple[str, ...] = ()
    results: Iterable[dict[str, Any]] = field(default=(), compare=False, repr=False)
    support: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Its support matrix as results.json's `support` member holds it (endpoint -> parameter -> cell); empty when no
    probe ran, or when the source does not say (a `results.jsonl`)."""


class RecordLog:
    """The results of a `results.jsonl`, read from disk each time they are iterated, in the order given.

    `places` are byte offsets of the lines to read, in the order wanted (a run's planned order); without them,
    every line in file order.
    """

    def __init__(self, path: Path, places: Sequence[int] | None = None) -> None:
        self.path = path
        self.places = places

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self.path.open("rb") as log:
            if self.places is None:
                for line in log:
                    if line.strip():
                        yield json.loads(line)
                return
            for offset in self.places:
                log.seek(offset)
                yield json.loads(log.readline())


class _Reread:
    """Results read from their file each time they are iterated, and let go after."""

    def __init__(self, read: Callable[[], Iterable[dict[str, Any]]]) -> None:
        self._read = read

    def __iter__(self) -> Iterator[dict[str, Any]]:
        yield from self._read()


# JSON Schema's names for the types a JSON value decodes to; bool before int, since a bool is an int in Python.
_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
)


def _type(value: Any) -> str:
    return "null" if value is None else next((name for kind, name in _TYPES if isinstance(value, kind)), "object")


def shape(value: Any, at: str = "", out: set[tuple[str, str]] | None = None) -> set[tuple[str, str]]:
    """The (pointer, type) pairs of a JSON value, array items under `*`: what stays when the words change."""
    out = set() if out is None else out
    pending = [(at, value)]
    while pending and len(out) < SHAPE_LIMIT:
        pointer, item = pending.pop()
        out.add((pointer or "/", _type(item)))
        if isinstance(item, dict):
            pending += [(join(pointer, key), member) for key, member in item.items()]
        elif isinstance(item, list):
            pending += [(join(pointer, "*"), member) for member in item]
    return out


def _answer_shape(exchange: Mapping[str, Any]) -> tuple[set[tuple[str, str]], list[str]]:
    """The shape of an exchange's answer, and the finish reasons it gave (a body's, or a stream's rebuilt message)."""
    pairs: set[tuple[str, str]] = set()
    answer: Any = None
    response = exchange.get("response")
    stream = exchange.get("stream")
    if isinstance(stream, dict):
        for event in stream.get("events") or []:
            if isinstance(event, dict):
                shape(event.get("data"), "/stream/events/*/data", pairs)
        answer = stream.get("assembled")
        shape(answer, "/stream/assembled", pairs)
    elif isinstance(response, dict):
        answer = response.get("body")
        shape(answer, "/response/body", pairs)
    reasons: list[str] = []
    choices = answer.get("choices") if isinstance(answer, dict) else None
    for choice in choices if isinstance(choices, list) else []:
        reason = choice.get("finish_reason") if isinstance(choice, dict) else None
        if isinstance(reason, str):
            reasons.append(reason)
    return pairs, reasons


def _object(data: Mapping[str, Any], member: str) -> dict[str, Any]:
    value = data.get(member)
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class _Entry:
    """One result's JSON, read with every problem located (`/results/3/verdict`), never a KeyError."""

    def __init__(self, data: Any, where: str, pointer: str, line: int | None) -> None:
        self.data = data
        self.where, self.pointer, self.line = where, pointer, line

    def problem(self, member: str, message: str) -> HarnessError:
        return HarnessError(Problem(self.where, message, line=self.line, pointer=join(self.pointer, member)))

    def text(self, member: str, *, required: bool = False) -> str:
        value = self.data.get(member)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise self.problem(member, f"expected a non-empty string, got {json.dumps(value)[:60]}")
        return value


def record_json(data: Any, where: str = "results.json", pointer: str = "", line: int | None = None) -> Record:
    """The record of one entry of `results.json` (or a line of `results.jsonl`); a malformed one raises a located
    `HarnessError`."""
    entry = _Entry(data, where, pointer, line)
    if not isinstance(data, dict):
        raise entry.problem("", "expected a result object")
    try:
        verdict = Verdict(str(data.get("verdict")))
    except ValueError:
        shown = json.dumps(data.get("verdict"))[:60]
        raise entry.problem("verdict", f"expected one of {', '.join(v.value for v in Verdict)}, got {shown}") from None
    findings = data.get("findings") or []
    if not isinstance(findings, list) or not all(isinstance(f, dict) for f in findings):
        raise entry.problem("findings", "expected a list of finding objects")
    tags = data.get("tags") or []
    if not isinstance(tags, list):
        raise entry.problem("tags", "expected a list of tags")
    timings = _object(data, "timings")
    usage = _object(data, "usage")
    exchange = _object(data, "exchange")
    pairs, reasons = _answer_shape(exchange)
    repetition = _count(data.get("repetition")) or 1
    return Record(
        case=entry.text("id", required=True),
        endpoint=entry.text("endpoint", required=True),
        mode="" if entry.text("mode") in ("", "plain") else entry.text("mode"),
        repetition=repetition,
        title=entry.text("title"),
        tags=tuple(str(t) for t in tags),
        verdict=verdict,
        reason=entry.text("reason"),
        findings=tuple(
            (str(f.get("code", "")), str(f.get("severity", "")), str(f.get("pointer", ""))) for f in findings
        ),
        status=_count(data.get("status")),
        total_ms=_number(timings.get("total_ms")),
        ttft_ms=_number(timings.get("ttft_ms")),
        prompt_tokens=_count(usage.get("prompt_tokens")),
        completion_tokens=_count(usage.get("completion_tokens")),
        size=_count(data.get("size")),
        shape=tuple(sorted(pairs)),
        finish_reasons=tuple(sorted(set(reasons))),
    )


def result_json(result: Result, *, exchange: bool = True) -> dict[str, Any]:
    """A result as `results.json` holds it: also what comparisons read (`records.record`). Without `exchange` the
    exchange itself (request, answer, stream events) is left out: the figures alone cost nothing to make."""
    out: dict[str, Any] = {
        "id": result.case_id,
        "name": result.name,
        "endpoint": result.endpoint,
        "mode": result.mode or "plain",
        "file": result.file,
        "line": result.line,
        "title": result.title,
        "tags": list(result.tags),
        "verdict": result.verdict.value,
        "reason": result.reason,
        "findings": to_json(list(result.findings)),
        "variables": result.variables,
    }
    if result.repetitions > 1:
        out["repetition"] = result.repetition
    out.update(_answer_json(result.exchange, exchange=exchange))
    if result.steps:  # a multi-step case: its last step above, every step here (findings point into /steps/ID)
        out["steps"] = [
            {"id": step.step, "verdict": step.verdict.value, **_answer_json(step.exchange, exchange=exchange)}
            for step in result.steps
        ]
    return out


def _answer_json(sent: Exchange | None, *, exchange: bool) -> dict[str, Any]:
    """What `results.json` keeps of one answer: figures, and with `exchange` the exchange itself."""
    out: dict[str, Any] = {}
    if sent is None:
        return out
    out["timings"] = to_json(sent.timings)
    out["attempts"] = sent.attempts
    if sent.response is not None:
        out["status"] = sent.response.status
        out["size"] = sent.response.size
        answer = sent.answer()
        usage = answer.get("usage") if isinstance(answer, dict) else None
        out["usage"] = usage if isinstance(usage, dict) else None
    if exchange:
        view = sent.view()
        body = view.get("response", {}).get("body")
        if isinstance(body, str) and len(body) > TEXT_LIMIT:
            view["response"]["body"] = body[:TEXT_LIMIT]
            view["response"]["body_truncated_from"] = len(body)
        if sent.transport_error is not None:
            view["transport_error"] = to_json(sent.transport_error)
        out["exchange"] = view
    return out


def record(result: Result, *, with_shape: bool = True) -> Record:
    """The record of a result just judged: made from the JSON `results.json` holds, so it equals one read back.
    Without `with_shape` neither the answer's shape nor its finish reasons are made (a matrix needs neither)."""
    return record_json(result_json(result, exchange=with_shape))


def json_text(text: str) -> str:
    """JSON text that UTF-8 can encode: a JSON answer may hold a lone surrogate ("\\ud800" decodes to one), written
    as that same escape, so the file still reads back to the exact value and the run keeps its report."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_document(out: TextIO, header: Mapping[str, Any], member: str, items: Iterable[str]) -> None:
    """A report's JSON file (results.json, compare.json): `header`'s members indented, then `member`, a list
    written one item a line from `items`, each already JSON text (a results.jsonl line, say).

    Only the header goes through the indenting encoder, which is pure Python (json's C encoder writes no
    indentation) and five times slower; the items, thousands of them, are each one line, as easy to read, grep
    and diff, and an item is never parsed again to be indented. `_results_lines` reads the lines back."""
    head = json_text(json.dumps(dict(header), indent=2, ensure_ascii=False))
    out.write(head[: head.rindex("}")].rstrip() + ("," if header else "") + f"\n  {json.dumps(member)}: [")
    first = True
    for line in items:
        if not line.strip():
            continue
        out.write(("\n    " if first else ",\n    ") + line.rstrip("\n"))
        first = False
    out.write("\n  ]\n}\n" if not first else "]\n}\n")


def _results_lines(text: str) -> list[int]:
    """The line of each result in a `results.json` as the harness writes it (one result a line), else nothing."""
    lines = text.splitlines()
    try:
        start = lines.index('  "results": [')
    except ValueError:
        return []
    return [number + 1 for number in range(start + 1, len(lines)) if lines[number].startswith("    {")]


def _json_file(path: Path) -> tuple[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise HarnessError(Problem(str(path), f"cannot read it: {exc.strerror or exc}")) from None
    except UnicodeDecodeError as exc:
        raise HarnessError(Problem(str(path), f"not UTF-8 text: {exc.reason} at byte {exc.start}")) from None
    try:
        return text, json.loads(text)
    except json.JSONDecodeError as exc:
        raise HarnessError(Problem(str(path), f"not JSON: {exc.msg}", line=exc.lineno, column=exc.colno)) from None
    except RecursionError:
        raise HarnessError(Problem(str(path), "not readable: nested too deeply")) from None


def _from_results_json(path: Path, label: str) -> Run:
    text, data = _json_file(path)
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        raise HarnessError(
            Problem(
                str(path),
                f"not a results file: expected format {RESULTS_FORMAT!r}, got {found!r}",
                pointer="/format",
            )
        )
    results = data.get("results")
    if not isinstance(results, list):
        raise HarnessError(Problem(str(path), "expected a list of results", pointer="/results"))
    run = _object(data, "run")
    lines = _results_lines(text)
    lines = lines if len(lines) == len(results) else []
    problems: list[Problem] = []
    records = []
    for index, item in enumerate(results):
        try:
            records.append(record_json(item, str(path), f"/results/{index}", lines[index] if lines else None))
        except HarnessError as exc:
            problems += exc.problems
    if problems:
        raise HarnessError(problems)
    endpoints = {
        str(e.get("name")): {k: e.get(k) for k in ("base_url", "model", "profile")}
        for e in run.get("endpoints") or []
        if isinstance(e, dict)
    }
    notes = (
        (f"interrupted ({run.get('interrupted_by') or 'stopped'}): only the cases that finished",)
        if run.get("interrupted")
        else ()
    )
    return Run(
        label=label,
        path=str(path),
        origin=str(run.get("origin") or "live"),
        endpoints=endpoints,
        results=_Reread(lambda: json.loads(path.read_text(encoding="utf-8"))["results"]),
        records=tuple(records),
        concurrency=_count(run.get("concurrency")),
        repeat=_count(run.get("repeat")),
        notes=notes,
        support=_support(data.get("support"), str(path)),
    )


def _support(value: Any, path: str) -> dict[str, dict[str, Any]]:
    """results.json's `support` member, each cell checked for what the reports read of it, located when it is not."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HarnessError(Problem(path, "expected an object (endpoint -> parameter -> verdict)", pointer="/support"))
    problems = []
    for endpoint, cells in value.items():
        where = join("/support", [endpoint])
        if not isinstance(cells, dict):
            problems.append(Problem(path, "expected an object (parameter -> verdict)", pointer=where))
            continue
        for name, cell in cells.items():
            if not isinstance(cell, dict) or not isinstance(cell.get("verdict"), str):
                problems.append(Problem(path, 'expected {"verdict": ..., "cases": [...]}', pointer=join(where, [name])))
            elif not isinstance(cell.get("cases", []), list):
                problems.append(Problem(path, "expected a list of case ids", pointer=join(where, [name, "cases"])))
    if problems:
        raise HarnessError(problems)
    return value


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Each line's JSON with its number; a last line cut short (a run killed while writing it) is left out."""
    try:
        with path.open("rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise HarnessError(Problem(str(path), f"cannot read it: {exc.strerror or exc}")) from None
    lines = raw.split(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            if number == len(lines):  # no newline after it: the write was cut off
                continue
            raise HarnessError(Problem(str(path), f"not a JSON line: {exc}", line=number)) from None


def _from_results_jsonl(path: Path, label: str) -> Run:
    problems: list[Problem] = []
    records = []
    for number, item in _jsonl(path):
        try:
            records.append(record_json(item, str(path), "", number))
        except HarnessError as exc:
            problems += exc.problems
    if problems:
        raise HarnessError(problems)
    return Run(
        label=label,
        path=str(path),
        origin="unknown (results.jsonl holds no header)",
        endpoints={r.endpoint: {} for r in records},
        records=tuple(records),
        results=_Reread(lambda: (item for _, item in _jsonl(path))),
        notes=("read from results.jsonl: a run that did not finish, or was killed; its header is not known",),
    )


def read_run(path: Path, label: str = "") -> Run | None:
    """A run read back from a report folder (its `results.json`, else the `results.jsonl` an interrupted run left)
    or from one of those files; None when `path` is a folder that holds neither (it may be recordings)."""
    label = label or (path.parent.name if path.is_file() else path.name) or str(path)
    if path.is_dir():
        for name, reader in (("results.json", _from_results_json), ("results.jsonl", _from_results_jsonl)):
            if (path / name).is_file():
                return reader(path / name, label)
        return None
    if not path.exists():
        raise HarnessError(Problem(str(path), "no such file or folder"))
    if path.name.endswith(".jsonl"):
        return _from_results_jsonl(path, label)
    return _from_results_json(path, label)
