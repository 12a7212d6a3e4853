"""Case files: finding, loading, linting, and filling in placeholders.

A case file (`*.case.yaml`) holds one case or a list of them, in the format of `schemas/case.schema.json`.
Loading collects every problem in every file before it raises, each with its file, line and column, so a
broken catalogue is fixed in one pass and nothing is ever sent from it. `lint` also finds what only shows once
a case meets an endpoint (a placeholder no endpoint is said to give, a request an endpoint must refuse though
the case expects success), so that `harness lint` catches before a run what the run would.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import json
import pickle
import re
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import jsonschema

from . import schemas
from .errors import CaseFileError, HarnessError, Problem
from .limits import MAX_CASES
from .pointer import join, resolve
from .yamlfile import Source, load_yaml

__all__ = [
    "CASE_FILE_PATTERNS",
    "Case",
    "CaseFiles",
    "Expect",
    "Step",
    "fill",
    "find_case_files",
    "follow",
    "lint",
    "load_cases",
    "parse_case",
    "select",
    "unfilled",
]

CASE_FILE_PATTERNS = ("*.case.yaml", "*.case.yml")
_PLACEHOLDER = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_VARIABLE_NAME = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_.-]*)$")
# What lint accepts in any case: ${model} is every endpoint's, ${env:NAME} the environment's.
_ALWAYS_KNOWN = ("model",)
# Schema rules on a string's content (not its type): a string holding a placeholder is only known at run time.
_CONTENT_RULES = frozenset({"pattern", "enum", "const", "format", "minLength", "maxLength"})
# ${steps.STEP.NAME}: a value an earlier step of a multi-step case saved from its answer.
_STEP_REFERENCE = re.compile(r"^steps\.([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_-]*)$")


@dataclass(frozen=True, slots=True)
class Expect:
    """What the answer must satisfy beyond the checks that follow from the request itself."""

    status: tuple[str, ...] = ("200",)
    finish_reason: tuple[str, ...] = ()
    content_matches: str | None = None
    tool_names: tuple[str, ...] = ()
    pointers: tuple[dict[str, Any], ...] = ()

    @property
    def negative(self) -> bool:
        """A case that must be refused: every accepted status is a 4xx."""
        return _refusals_only(self.status)

    def accepts(self, status: int) -> bool:
        code = str(status)
        return any(code == s or (s.endswith("xx") and code[0] == s[0]) for s in self.status)


@cache
def _refusals_only(statuses: tuple[str, ...]) -> bool:
    """Once per set of statuses, not once per check asking of every exchange (dozens an answer)."""
    return all(s.startswith("4") for s in statuses)


@dataclass(frozen=True, slots=True)
class Step:
    """One request of a multi-step case: sent after the steps before it, with the values they saved filled in.

    `save` names JSON pointers into this step's answer; later steps use them as `${steps.ID.NAME}` in a string or
    as a mapping `{from: ID.NAME}` (optionally with `drop:`, pointers removed from the copy).
    """

    id: str
    base: str
    request: dict[str, Any]
    expect: Expect = Expect()
    save: dict[str, str] = field(default_factory=dict)
    title: str = ""


@dataclass(frozen=True, slots=True)
class Case:
    """One request and its expectations, as written in a case file (placeholders not yet filled)."""

    id: str
    source: Source
    base: str
    request: dict[str, Any] | None = None
    raw_body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    expect: Expect = Expect()
    title: str = ""
    description: str = ""
    tags: tuple[str, ...] = ()
    both_ways: bool = False
    variables: tuple[str, ...] = ()
    repeat: bool = False
    repeat_with: dict[str, Any] = field(default_factory=dict)
    """Members the second request of a repeated case changes (`repeat: {with: ...}`), merged into a copy of the
    first: how a probe shows an effect that moves with a value (reasoning tokens with a thinking budget)."""
    steps: tuple[Step, ...] = ()

    @property
    def modes(self) -> tuple[str, ...]:
        """The runs the case makes: once (""), plain then streamed (both_ways), or twice (repeat)."""
        if self.both_ways and isinstance(self.request, dict):
            return ("", "stream")
        if self.repeat and isinstance(self.request, dict):
            return ("", "repeat")
        return ("",)

    @property
    def file(self) -> str:
        return self.source.path

    @property
    def line(self) -> int | None:
        pos = self.source.locate(self.base)
        return pos[0] if pos else None

    @property
    def stream(self) -> bool:
        return bool(self.request and self.request.get("stream") is True)

    def __repr__(self) -> str:
        return f"<Case {self.id} {self.file}:{self.line}>"


def find_case_files(paths: Iterable[str | Path]) -> list[Path]:
    """Files named on the command line are taken whatever their name; folders are searched for case files.

    A run is read whole before anything is sent, so the search stops past `MAX_CASES` files (each holds at least
    one case) instead of reading a folder of a million of them."""
    found: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            matches: set[Path] = set()
            for pattern in CASE_FILE_PATTERNS:
                for match in path.rglob(pattern):
                    if match.is_file():
                        matches.add(match)
                    if len(found) + len(matches) > MAX_CASES:
                        raise CaseFileError(
                            Problem(path=str(path), message=_too_many(f"more than {MAX_CASES} case files"))
                        )
            found.extend(sorted(matches))
        elif path.is_file():
            found.append(path)
        else:
            problems.append(Problem(str(path), "no such file or folder"))
    if problems:
        raise CaseFileError(problems)
    return list(dict.fromkeys(found))


def _too_many(what: str) -> str:
    return (
        f"{what} in one run, past the limit of {MAX_CASES} cases a run reads before it sends anything; "
        "run the catalogue a folder at a time (harness run cases/a, then harness run cases/b)"
    )


def _schema_problem(source: Source, error: jsonschema.ValidationError, base: str) -> Problem:
    pointer = join(base, list(error.absolute_path))
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema: Any = error.schema
        allowed = list(schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        hints = []
        for key in extra:
            close = difflib.get_close_matches(key, allowed, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        message = f"unknown key {', '.join(hints)}; expected one of {', '.join(allowed)}"
        return source.problem(join(pointer, extra[0]) if extra else pointer, message, at_key=True)
    if error.validator == "required":
        message = f"missing required key: {message.split(' is a required')[0]}"
    elif error.validator == "oneOf" and list(error.schema_path)[:1] == ["oneOf"]:
        message = (
            "a case needs exactly one of 'request' (a JSON body), 'raw_body' (a string sent as is) or 'steps' "
            "(a conversation; its steps have their own expect, and it is not run both ways)"
        )
    elif error.context:
        message = jsonschema.exceptions.best_match(error.context).message
    return source.problem(pointer, message)


def _placeholder_problems(
    source: Source, value: Any, pointer: str, declared: Collection[str] | None = None
) -> Iterable[Problem]:
    """Placeholders that cannot be filled: malformed ones always, and with `declared` (what lint may assume an
    endpoint gives: `model`, and the case's own `variables`) any name outside it but `env:*`."""
    if isinstance(value, str):
        for match in _PLACEHOLDER.finditer(value):
            text = match.group(0)
            if text == "$$":
                continue
            name = match.group(1)
            if name is None:
                yield source.problem(pointer, "unterminated placeholder '${' (write '$${' for a literal '${')")
            elif not _VARIABLE_NAME.match(name):
                yield source.problem(pointer, f"invalid placeholder {text!r}: expected ${{name}} or ${{env:NAME}}")
            elif name.startswith("steps."):
                continue  # a value an earlier step saved: `_reference_problems` checks it
            elif declared is not None and not name.startswith("env:") and name not in declared:
                yield source.problem(pointer, _undeclared(text, name, declared))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _placeholder_problems(source, item, join(pointer, key), declared)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _placeholder_problems(source, item, join(pointer, i), declared)


def _undeclared(text: str, name: str, declared: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(declared), n=1)
    if close:
        return f"unknown placeholder {text} (did you mean ${{{close[0]}}}?)"
    return (
        f"unknown placeholder {text}: a case may use ${{model}}, ${{env:NAME}} and the placeholders it lists in "
        f"'variables:'; if an endpoint gives {name} (its variables: in harness.yaml, or --var {name}=VALUE), "
        f"add 'variables: [{name}]' to the case"
    )


def _embedded_schema_problems(source: Source, request: dict[str, Any], base: str) -> Iterable[Problem]:
    """Schemas a case sends (tool parameters, response formats) are later used to judge answers: check them now,
    for validity, for `$ref`s that resolve, and for `$ref` cycles on which validation would never end."""
    places: list[tuple[str, Any]] = []
    tools = request.get("tools")
    for i, tool in enumerate(tools if isinstance(tools, list) else []):
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and "parameters" in tool["function"]:
            places.append((join(base, "request", "tools", i, "function", "parameters"), tool["function"]["parameters"]))
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict) and "schema" in fmt["json_schema"]:
        places.append((join(base, "request", "response_format", "json_schema", "schema"), fmt["json_schema"]["schema"]))
    for pointer, document in places:
        if not isinstance(document, dict | bool):
            continue  # a negative case may send a malformed schema on purpose
        for problem in schemas.schema_problems(document):
            yield source.problem(join(pointer, problem.pointer), problem.message)


def _request_problems(source: Source, request: dict[str, Any], base: str) -> Iterable[Problem]:
    """Where a request breaks the request schema, each at its pointer; a rule on a string's content is left to the
    endpoint when the string holds a placeholder (its value is only known at run time)."""
    # What an earlier step gives is only known at run time: the schema judges the rest of a step's request.
    at = join(base, "request")
    given = [pointer.removeprefix(at).removesuffix("/from") for pointer, _, _ in _references(request, at)]
    for error in schemas.request_problems(request):
        value = resolve(request, error.pointer)
        if error.keyword in _CONTENT_RULES and isinstance(value, str) and _has_placeholder(value):
            continue
        if any(error.pointer == p or error.pointer.startswith(p + "/") for p in given):
            continue
        yield source.problem(
            join(base, "request", error.pointer),
            f"{error.message} (a case that accepts a 2xx must send a request valid against "
            "schemas/request.schema.json, or say in 'nonstandard:' why not)",
        )


def _has_placeholder(text: str) -> bool:
    return any(match.group(0) != "$$" for match in _PLACEHOLDER.finditer(text))


def _accepts_success(data: dict[str, Any]) -> bool:
    status = (data.get("expect") or {}).get("status", 200)
    return any(str(s).startswith("2") for s in (status if isinstance(status, list) else [status]))


def _placeholder_texts(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """(pointer, text) of every string under `value` that may hold a placeholder."""
    if isinstance(value, str) and "$" in value:
        yield pointer, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _placeholder_texts(item, join(pointer, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _placeholder_texts(item, join(pointer, index))


def _kept(source: Source, data: dict[str, Any], base: str) -> Source:
    """What a case keeps of its file: where it starts, its id and its placeholders, which is all a run can still
    report a problem at. The file's every position would cost each case kilobytes, held for the whole run."""
    wanted = [base, join(base, "id"), *(pointer for pointer, _ in _placeholder_texts(data, base))]
    positions = {p: source.positions[p] for p in wanted if p in source.positions}
    return Source(path=source.path, data=None, positions=positions)


def _expect(expect_data: dict[str, Any]) -> Expect:
    status = expect_data.get("status", 200)
    statuses = tuple(str(s) for s in (status if isinstance(status, list) else [status]))
    finish = expect_data.get("finish_reason", [])
    return Expect(
        status=statuses,
        finish_reason=tuple(finish if isinstance(finish, list) else [finish]),
        content_matches=expect_data.get("content_matches"),
        tool_names=tuple(expect_data.get("tool_names", [])),
        pointers=tuple(expect_data.get("pointers", [])),
    )


def _build(source: Source, data: dict[str, Any], base: str) -> Case:
    steps = tuple(
        Step(
            id=step["id"],
            base=join(base, "steps", i),
            request=step["request"],
            expect=_expect(step.get("expect") or {}),
            save=dict(step.get("save") or {}),
            title=step.get("title", ""),
        )
        for i, step in enumerate(data.get("steps") or [])
    )
    return Case(
        id=data["id"],
        source=_kept(source, data, base),
        base=base,
        request=data.get("request"),
        raw_body=data.get("raw_body"),
        headers=dict(data.get("headers") or {}),
        expect=_expect(data.get("expect") or {}),
        title=data.get("title", ""),
        description=data.get("description", ""),
        tags=tuple(data.get("tags", [])),
        both_ways=bool(data.get("both_ways", False)),
        variables=tuple(data.get("variables", [])),
        repeat=data.get("repeat") not in (None, False),
        repeat_with=dict(data["repeat"].get("with") or {}) if isinstance(data.get("repeat"), dict) else {},
        steps=steps,
    )


def _references(value: Any, pointer: str) -> Iterator[tuple[str, str | None, str | None]]:
    """(pointer, step, name) for each value from an earlier step that `value` uses: `${steps.STEP.NAME}` in a
    string, or a mapping `{from: STEP.NAME}`; step and name are None where the reference is malformed, and both
    empty at a `drop:` that is not a list of JSON pointers."""
    if isinstance(value, str):
        for match in _PLACEHOLDER.finditer(value):
            name = match.group(1)
            if name is not None and name.startswith("steps."):
                found = _STEP_REFERENCE.match(name)
                yield (pointer, found.group(1), found.group(2)) if found else (pointer, None, None)
    elif isinstance(value, dict):
        if _is_from(value):
            found = _STEP_REFERENCE.match(f"steps.{value['from']}")
            at = join(pointer, "from")
            yield (at, found.group(1), found.group(2)) if found else (at, None, None)
            drop = value.get("drop", [])
            if not isinstance(drop, list) or not all(isinstance(d, str) and d.startswith("/") for d in drop):
                yield join(pointer, "drop"), "", ""  # not a list of JSON pointers
            return
        for key, item in value.items():
            yield from _references(item, join(pointer, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _references(item, join(pointer, i))


def _is_from(value: dict[str, Any]) -> bool:
    """A mapping that stands for a saved value: `from` (a string) and at most `drop` besides.

    A tool's parameters may have a property named `from`, but its value there is a schema (a mapping)."""
    return isinstance(value.get("from"), str) and set(value) <= {"from", "drop"}


def _reference_problems(source: Source, item: dict[str, Any], base: str) -> Iterable[Problem]:
    """References to steps that do not come earlier in the case, to values those steps do not save, and references
    in a case that has no steps at all, each at its pointer."""
    steps = item.get("steps")
    if not isinstance(steps, list):
        for key in ("request", "raw_body", "headers"):
            for pointer, _, _ in _references(item.get(key), join(base, key)):
                yield source.problem(pointer, "only a step of a multi-step case ('steps:') may use a value of a step")
        return
    for pointer, _, _ in _references(item.get("headers"), join(base, "headers")):
        yield source.problem(pointer, "headers are the same for every step: a value of a step goes in a request")
    saved: dict[str, list[str]] = {}
    later = {step.get("id") for step in steps if isinstance(step, dict)}
    for i, step in enumerate(steps):
        if not isinstance(step, dict) or not isinstance(step.get("id"), str):
            continue
        step_base = join(base, "steps", i)
        if step["id"] in saved:
            yield source.problem(join(step_base, "id"), f"duplicate step id {step['id']!r} in this case")
        for pointer, name, value in _references(step.get("request"), join(step_base, "request")):
            if name == "":
                yield source.problem(
                    pointer, "'drop' lists JSON pointers into the value, like /tool_calls/0/extra_content"
                )
            elif name is None or value is None:
                yield source.problem(
                    pointer, "a value of a step is written ${steps.STEP.NAME}, or {from: STEP.NAME} as a mapping"
                )
            elif name not in saved:
                if name == step["id"] or name in later:
                    where = "this step" if name == step["id"] else "a later step"
                    yield source.problem(pointer, f"step {name!r} is {where}: a step may use only the steps before it")
                    continue
                close = difflib.get_close_matches(name, list(saved), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(saved) or "none"
                yield source.problem(pointer, f"no step {name!r} before this one{hint}; the steps before it: {known}")
            elif value not in saved[name]:
                close = difflib.get_close_matches(value, saved[name], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                known = ", ".join(saved[name]) or "nothing (add 'save:' to it)"
                yield source.problem(pointer, f"step {name!r} saves no value {value!r}{hint}; it saves: {known}")
        save = step.get("save")
        saved.setdefault(step["id"], list(save) if isinstance(save, dict) else [])


def _item_problems(source: Source, item: dict[str, Any], base: str, *, strict: bool) -> list[Problem]:
    """Every problem with one case. `strict` (lint) adds what depends on an endpoint: placeholders beyond those
    the case declares, and a request that a case expecting success sends though it breaks the request schema."""
    errors = sorted(schemas.schema("case").iter_errors(item), key=lambda e: list(map(str, e.absolute_path)))
    problems = [_schema_problem(source, e, base) for e in errors]
    if item.get("both_ways") is True and item.get("repeat") not in (None, False):
        problems.append(
            source.problem(
                join(base, "repeat"),
                "a case runs plain then streamed (both_ways) or twice (repeat), not both; make two cases",
                at_key=True,
            )
        )
    declared: list[str] | None = None
    if strict and not errors:
        declared = [*_ALWAYS_KNOWN, *item.get("variables", [])]
    for key in ("request", "raw_body", "headers"):
        problems += _placeholder_problems(source, item.get(key), join(base, key), declared)
    problems += _reference_problems(source, item, base)
    requests = [(item, base)]
    if isinstance(item.get("steps"), list):
        requests = [(s, join(base, "steps", i)) for i, s in enumerate(item["steps"]) if isinstance(s, dict)]
    for holder, at in requests:
        request = holder.get("request")
        if holder is not item:
            problems += _placeholder_problems(source, request, join(at, "request"), declared)
        if isinstance(request, dict):
            problems += _embedded_schema_problems(source, request, at)
            if strict and not errors and _accepts_success(holder) and "nonstandard" not in item:
                problems += _request_problems(source, request, at)
    return problems


def _load_file(path: Path, *, strict: bool, room: int) -> tuple[list[Case], list[Problem]]:
    """The cases of one file and its problems; `room` is how many more cases the run may read."""
    try:
        source = load_yaml(path)
    except HarnessError as exc:
        return [], exc.problems
    if source.data is None:
        return [], [
            Problem(
                source.path, "empty case file: expected a case (a mapping with 'id' and 'request') or a list of cases"
            )
        ]
    items = source.data if isinstance(source.data, list) else [source.data]
    bases = [join("", i) for i in range(len(items))] if isinstance(source.data, list) else [""]
    if len(items) > room:
        return [], [source.problem(bases[room], _too_many(f"more than {MAX_CASES} cases"))]
    cases: list[Case] = []
    problems: list[Problem] = []
    for base, item in zip(bases, items, strict=True):
        if not isinstance(item, dict):
            problems.append(
                source.problem(base, f"expected a case (a mapping with 'id' and 'request'), got {type(item).__name__}")
            )
            continue
        item_problems = _item_problems(source, item, base, strict=strict)
        if item_problems:
            problems += item_problems
        else:
            cases.append(_build(source, item, base))
    return cases, problems


def parse_case(data: dict[str, Any], path: str = "<inline>") -> Case:
    """A case from a dict (as a test or a fuzzer builds it), validated as `load_cases` validates a case file."""
    source = Source(path, data, {})
    problems = _item_problems(source, data, "", strict=False)
    if problems:
        raise CaseFileError(problems)
    return _build(source, data, "")


def _read(paths: Iterable[str | Path], *, strict: bool) -> tuple[list[Case], list[Problem]]:
    cases: list[Case] = []
    return cases, _scan(paths, strict=strict, keep=cases.append)


def _scan(paths: Iterable[str | Path], *, strict: bool, keep: Callable[[Case], object]) -> list[Problem]:
    """Read every case file, handing each case that loads to `keep` as it is read; returns every problem found.

    Only each id's first place is held, to find duplicates: not the cases themselves."""
    try:
        files = find_case_files(paths)
    except CaseFileError as exc:
        return exc.problems
    count = 0
    problems: list[Problem] = []
    duplicates: list[Problem] = []
    first: dict[str, tuple[str, int | None]] = {}
    for path in files:
        if count >= MAX_CASES:
            problems.append(Problem(path=str(path), message=_too_many(f"{MAX_CASES} cases read before this file")))
            break
        file_cases, file_problems = _load_file(path, strict=strict, room=MAX_CASES - count)
        count += len(file_cases)
        problems += file_problems
        for case in file_cases:
            if case.id in first:
                file, line = first[case.id]
                duplicates.append(
                    case.source.problem(
                        join(case.base, "id"), f"duplicate id {case.id!r} (first defined at {file}:{line})"
                    )
                )
            else:
                first[case.id] = (case.file, case.line)
            keep(case)
    return problems + duplicates


class CaseFiles:
    """The cases of a run, read from their files and checked once, then held in an unnamed temp file, not in memory.

    Iterating reads them back one at a time, in the order `load_cases` gives them, as often as a run needs (the
    engine reads them once to check them against every endpoint, then as it sends them): a catalogue of thousands
    of cases costs a run only those in flight. `patterns` selects cases as `select` does. Use it as a context
    manager, or `close` it.
    """

    def __init__(self, paths: Iterable[str | Path], patterns: Iterable[str] = ()) -> None:
        wanted = _patterns(patterns)
        self._file: BinaryIO = tempfile.TemporaryFile(prefix="chat-conformance-cases.")  # noqa: SIM115
        self._count = 0

        def keep(case: Case) -> None:
            if _selected(case, wanted):
                pickle.dump(case, self._file, protocol=pickle.HIGHEST_PROTOCOL)
                self._count += 1

        problems = _scan(paths, strict=False, keep=keep)
        if problems:
            self.close()
            raise CaseFileError(problems)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Case]:
        place = 0
        for _ in range(self._count):
            self._file.seek(place)
            case = pickle.load(self._file)
            place = self._file.tell()
            yield case

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> CaseFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def lint(paths: Iterable[str | Path]) -> tuple[list[Case], list[Problem]]:
    """Every case that loads cleanly and every problem found, across all files (duplicate ids included).

    Stricter than `load_cases`, since it cannot know the endpoints a run will meet: a placeholder must be
    `${model}`, `${env:NAME}` or one the case lists in `variables:`, and a case that accepts a 2xx must send a
    request that satisfies the request schema unless it says why not in `nonstandard:`."""
    return _read(paths, strict=True)


def load_cases(paths: Iterable[str | Path]) -> list[Case]:
    """All cases under `paths`; raises `CaseFileError` listing every problem when any file is broken.

    What a run needs: placeholders are checked against the endpoint when the case is filled, and the endpoint
    judges the request."""
    cases, problems = _read(paths, strict=False)
    if problems:
        raise CaseFileError(problems)
    return cases


def select(cases: Iterable[Case], patterns: Iterable[str]) -> list[Case]:
    """Cases whose id or one of whose tags matches any pattern (shell-style wildcards); all when none given.

    A pattern that starts with `!` leaves out what it matches (`param:*,!costly`: every probe but the costly ones);
    with only such patterns, every other case is kept.
    """
    wanted = _patterns(patterns)
    return [c for c in cases if _selected(c, wanted)]


def _patterns(patterns: Iterable[str]) -> list[str]:
    return [p.strip() for pattern in patterns for p in pattern.split(",") if p.strip()]


def _selected(case: Case, patterns: list[str]) -> bool:
    wanted = [p for p in patterns if not p.startswith("!")]
    unwanted = [p[1:] for p in patterns if p.startswith("!") and len(p) > 1]
    return (not wanted or any(_matches(case, w) for w in wanted)) and not any(_matches(case, u) for u in unwanted)


def _matches(case: Case, pattern: str) -> bool:
    return fnmatch.fnmatchcase(case.id, pattern) or any(fnmatch.fnmatchcase(t, pattern) for t in case.tags)


_DROP: Any = object()


def _fill_string(
    text: str,
    variables: Mapping[str, str | None],
    environ: Mapping[str, str],
    case: Case,
    pointer: str,
    problems: list[Problem],
    later: bool = False,
) -> Any:
    whole = re.fullmatch(r"\$\{([^}]*)\}", text)
    if whole and whole.group(1) in variables and variables[whole.group(1)] is None:
        return _DROP  # e.g. `model: ${model}` against a self-deployed endpoint that takes no model

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$$" if later else "$"
        name = match.group(1)
        if later and name.startswith("steps."):
            return match.group(0)  # filled by `follow` once the step it names has answered
        if name.startswith("env:"):
            value = environ.get(name[4:])
            if value is None:
                problems.append(
                    case.source.problem(
                        pointer, f"placeholder {match.group(0)}: environment variable {name[4:]} is not set"
                    )
                )
                return ""
            return value
        if name not in variables:
            known = sorted(k for k in variables if variables[k] is not None)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean ${{{close[0]}}}?)" if close else ""
            give = "" if close else f"; give it with --var {name}=VALUE or in the endpoint's variables:"
            problems.append(
                case.source.problem(
                    pointer,
                    f"unknown placeholder {match.group(0)}{hint}; "
                    f"this endpoint defines: {', '.join(known) or 'nothing'}{give}",
                )
            )
            return ""
        value = variables[name]
        if value is None:
            problems.append(
                case.source.problem(pointer, f"placeholder {match.group(0)} has no value for this endpoint")
            )
            return ""
        return value

    return _PLACEHOLDER.sub(replace, text)


def _fill(
    value: Any,
    variables: Mapping[str, str | None],
    environ: Mapping[str, str],
    case: Case,
    pointer: str,
    problems: list[Problem],
    later: bool = False,
) -> Any:
    if isinstance(value, str):
        return _fill_string(value, variables, environ, case, pointer, problems, later)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            filled = _fill(item, variables, environ, case, join(pointer, key), problems, later)
            if filled is not _DROP:
                out[key] = filled
        return out
    if isinstance(value, list):
        items = [
            _fill(item, variables, environ, case, join(pointer, i), problems, later) for i, item in enumerate(value)
        ]
        return [None if item is _DROP else item for item in items]
    return value


def unfilled(case: Case, variables: Mapping[str, str | None], environ: Mapping[str, str]) -> list[Problem]:
    """What `fill` would raise for this case, found without building the filled case: a run checks every case
    against every endpoint before it sends anything, and fills each one only as it is sent."""
    problems: list[Problem] = []
    for where, value in (
        (join(case.base, "request"), case.request),
        (join(case.base, "raw_body"), case.raw_body),
        (join(case.base, "headers"), case.headers),
        (join(case.base, "repeat", "with"), case.repeat_with),
    ):
        for pointer, text in _placeholder_texts(value, where):
            _fill_string(text, variables, environ, case, pointer, problems)
    for step in case.steps:  # `${steps...}` are left for `follow`, once the step named has answered
        for pointer, text in _placeholder_texts(step.request, join(step.base, "request")):
            _fill_string(text, variables, environ, case, pointer, problems, True)
    return problems


def fill(case: Case, variables: Mapping[str, str | None], environ: Mapping[str, str]) -> Case:
    """The case with every placeholder replaced; raises `CaseFileError` naming each unknown one.

    A variable whose value is None (an endpoint with no model) removes a member whose whole value is that
    placeholder, so one catalogue serves endpoints that take a model and those that take none.
    """
    problems: list[Problem] = []
    request = _fill(case.request, variables, environ, case, join(case.base, "request"), problems)
    raw = _fill(case.raw_body, variables, environ, case, join(case.base, "raw_body"), problems)
    headers = _fill(case.headers, variables, environ, case, join(case.base, "headers"), problems)
    again = _fill(case.repeat_with, variables, environ, case, join(case.base, "repeat", "with"), problems)
    steps = tuple(
        replace(step, request=_fill(step.request, variables, environ, case, join(step.base, "request"), problems, True))
        for step in case.steps
    )
    if problems:
        raise CaseFileError(problems)
    return Case(
        id=case.id,
        source=case.source,
        base=case.base,
        request=request,
        raw_body=None if raw is _DROP else raw,
        headers=headers,
        expect=case.expect,
        title=case.title,
        description=case.description,
        tags=case.tags,
        both_ways=case.both_ways,
        variables=case.variables,
        repeat=case.repeat,
        repeat_with=again,
        steps=steps,
    )


def follow(request: Any, saved: Mapping[str, Mapping[str, Any]]) -> Any:
    """A step's request (filled for its endpoint) with the values earlier steps saved: `${steps.STEP.NAME}` as a whole
    string is that value as it is (an object stays an object), inside a longer string its text; a mapping
    `{from: STEP.NAME, drop: [POINTER, ...]}` is a copy of the value without what `drop` points at. Lint has made
    sure every reference names a value an earlier step saves; the runner sends a step only once all are there."""
    if isinstance(request, str):
        whole = re.fullmatch(r"\$\{steps\.([^}.]+)\.([^}]+)\}", request)
        if whole:
            return copy.deepcopy(saved[whole.group(1)][whole.group(2)])

        def replace_one(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            found = _STEP_REFERENCE.match(match.group(1) or "")
            if not found:
                return match.group(0)
            value = saved[found.group(1)][found.group(2)]
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

        return _PLACEHOLDER.sub(replace_one, request)
    if isinstance(request, dict):
        if _is_from(request):
            step, _, name = request["from"].partition(".")
            value = copy.deepcopy(saved[step][name])
            for pointer in request.get("drop") or []:
                value = _dropped(value, str(pointer))
            return value
        return {key: follow(item, saved) for key, item in request.items()}
    if isinstance(request, list):
        return [follow(item, saved) for item in request]
    return request


def _dropped(value: Any, pointer: str) -> Any:
    """`value` without the member `pointer` names (as it is when there is none): e.g. a thought signature stripped."""
    parent_pointer, _, last = pointer.rpartition("/")
    parent = resolve(value, parent_pointer) if parent_pointer else value
    key = last.replace("~1", "/").replace("~0", "~")
    if isinstance(parent, dict):
        parent.pop(key, None)
    elif isinstance(parent, list) and key.isdigit() and int(key) < len(parent):
        del parent[int(key)]
    return value
