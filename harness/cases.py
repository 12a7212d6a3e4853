"""Case files: finding, loading, linting, and filling in placeholders.

A case file (`*.case.yaml`) holds one case or a list of them, in the format of `schemas/case.schema.json`.
Loading collects every problem in every file before it raises, each with its file, line and column, so a
broken catalogue is fixed in one pass and nothing is ever sent from it.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from . import schemas
from .errors import CaseFileError, HarnessError, Problem
from .pointer import join
from .yamlfile import Source, load_yaml

__all__ = [
    "CASE_FILE_PATTERNS",
    "Case",
    "Expect",
    "fill",
    "find_case_files",
    "lint",
    "load_cases",
    "parse_case",
    "select",
]

CASE_FILE_PATTERNS = ("*.case.yaml", "*.case.yml")
_PLACEHOLDER = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_VARIABLE_NAME = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|[A-Za-z_][A-Za-z0-9_.-]*)$")


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
        return all(s.startswith("4") for s in self.status)

    def accepts(self, status: int) -> bool:
        code = str(status)
        return any(code == s or (s.endswith("xx") and code[0] == s[0]) for s in self.status)


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
    """Files named on the command line are taken whatever their name; folders are searched for case files."""
    found: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            matches = {p for pattern in CASE_FILE_PATTERNS for p in path.rglob(pattern) if p.is_file()}
            found.extend(sorted(matches))
        elif path.is_file():
            found.append(path)
        else:
            problems.append(Problem(str(path), "no such file or folder"))
    if problems:
        raise CaseFileError(problems)
    return list(dict.fromkeys(found))


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
        message = "a case needs exactly one of 'request' (a JSON body) or 'raw_body' (a string sent as is)"
    elif error.context:
        message = jsonschema.exceptions.best_match(error.context).message
    return source.problem(pointer, message)


def _placeholder_problems(source: Source, value: Any, pointer: str) -> Iterable[Problem]:
    if isinstance(value, str):
        for match in _PLACEHOLDER.finditer(value):
            text = match.group(0)
            if text == "$$":
                continue
            if match.group(1) is None:
                yield source.problem(pointer, "unterminated placeholder '${' (write '$${' for a literal '${')")
            elif not _VARIABLE_NAME.match(match.group(1)):
                yield source.problem(pointer, f"invalid placeholder {text!r}: expected ${{name}} or ${{env:NAME}}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _placeholder_problems(source, item, join(pointer, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _placeholder_problems(source, item, join(pointer, i))


def _embedded_schema_problems(source: Source, request: dict[str, Any], base: str) -> Iterable[Problem]:
    """Schemas a case sends (tool parameters, response formats) are later used to judge answers: check them now."""
    places: list[tuple[str, Any]] = []
    for i, tool in enumerate(request.get("tools") or []):
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict) and "parameters" in tool["function"]:
            places.append((join(base, "request", "tools", i, "function", "parameters"), tool["function"]["parameters"]))
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict) and "schema" in fmt["json_schema"]:
        places.append((join(base, "request", "response_format", "json_schema", "schema"), fmt["json_schema"]["schema"]))
    for pointer, document in places:
        if not isinstance(document, dict | bool):
            continue  # a negative case may send a malformed schema on purpose
        try:
            jsonschema.Draft202012Validator.check_schema(document)
        except jsonschema.SchemaError as exc:
            yield source.problem(join(pointer, list(exc.absolute_path)), f"not a valid JSON Schema: {exc.message}")


def _build(source: Source, data: dict[str, Any], base: str) -> Case:
    expect_data = data.get("expect") or {}
    status = expect_data.get("status", 200)
    statuses = tuple(str(s) for s in (status if isinstance(status, list) else [status]))
    finish = expect_data.get("finish_reason", [])
    return Case(
        id=data["id"],
        source=source,
        base=base,
        request=data.get("request"),
        raw_body=data.get("raw_body"),
        headers=dict(data.get("headers") or {}),
        expect=Expect(
            status=statuses,
            finish_reason=tuple(finish if isinstance(finish, list) else [finish]),
            content_matches=expect_data.get("content_matches"),
            tool_names=tuple(expect_data.get("tool_names", [])),
            pointers=tuple(expect_data.get("pointers", [])),
        ),
        title=data.get("title", ""),
        description=data.get("description", ""),
        tags=tuple(data.get("tags", [])),
        both_ways=bool(data.get("both_ways", False)),
    )


def _load_file(path: Path) -> tuple[list[Case], list[Problem]]:
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
    validator = schemas.schema("case")
    cases: list[Case] = []
    problems: list[Problem] = []
    for base, item in zip(bases, items, strict=True):
        if not isinstance(item, dict):
            problems.append(
                source.problem(base, f"expected a case (a mapping with 'id' and 'request'), got {type(item).__name__}")
            )
            continue
        errors = sorted(validator.iter_errors(item), key=lambda e: list(map(str, e.absolute_path)))
        item_problems = [_schema_problem(source, e, base) for e in errors]
        item_problems += _placeholder_problems(source, item.get("request"), join(base, "request"))
        item_problems += _placeholder_problems(source, item.get("raw_body"), join(base, "raw_body"))
        item_problems += _placeholder_problems(source, item.get("headers"), join(base, "headers"))
        if isinstance(item.get("request"), dict):
            item_problems += _embedded_schema_problems(source, item["request"], base)
        if item_problems:
            problems += item_problems
        else:
            cases.append(_build(source, item, base))
    return cases, problems


def parse_case(data: dict[str, Any], path: str = "<inline>") -> Case:
    """A case from a dict (as a test or a fuzzer builds it), validated like a case file."""
    source = Source(path, data, {})
    errors = list(schemas.schema("case").iter_errors(data))
    problems = [_schema_problem(source, e, "") for e in errors]
    problems += _placeholder_problems(source, data.get("request"), "/request")
    if isinstance(data.get("request"), dict):
        problems += _embedded_schema_problems(source, data["request"], "")
    if problems:
        raise CaseFileError(problems)
    return _build(source, data, "")


def lint(paths: Iterable[str | Path]) -> tuple[list[Case], list[Problem]]:
    """Every case that loads cleanly and every problem found, across all files (duplicate ids included)."""
    try:
        files = find_case_files(paths)
    except CaseFileError as exc:
        return [], exc.problems
    cases: list[Case] = []
    problems: list[Problem] = []
    for path in files:
        file_cases, file_problems = _load_file(path)
        cases += file_cases
        problems += file_problems
    first: dict[str, Case] = {}
    for case in cases:
        if case.id in first:
            other = first[case.id]
            problems.append(
                case.source.problem(
                    join(case.base, "id"), f"duplicate id {case.id!r} (first defined at {other.file}:{other.line})"
                )
            )
        else:
            first[case.id] = case
    return cases, problems


def load_cases(paths: Iterable[str | Path]) -> list[Case]:
    """All cases under `paths`; raises `CaseFileError` listing every problem when any file is broken."""
    cases, problems = lint(paths)
    if problems:
        raise CaseFileError(problems)
    return cases


def select(cases: Iterable[Case], patterns: Iterable[str]) -> list[Case]:
    """Cases whose id or one of whose tags matches any pattern (shell-style wildcards); all when none given."""
    wanted = [p.strip() for pattern in patterns for p in pattern.split(",") if p.strip()]
    if not wanted:
        return list(cases)
    return [
        c
        for c in cases
        if any(fnmatch.fnmatchcase(c.id, w) or any(fnmatch.fnmatchcase(t, w) for t in c.tags) for w in wanted)
    ]


_DROP: Any = object()


def _fill_string(
    text: str,
    variables: Mapping[str, str | None],
    environ: Mapping[str, str],
    case: Case,
    pointer: str,
    problems: list[Problem],
) -> Any:
    whole = re.fullmatch(r"\$\{([^}]*)\}", text)
    if whole and whole.group(1) in variables and variables[whole.group(1)] is None:
        return _DROP  # e.g. `model: ${model}` against a self-deployed endpoint that takes no model

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
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
            problems.append(
                case.source.problem(
                    pointer,
                    f"unknown placeholder {match.group(0)}{hint}; "
                    f"this endpoint defines: {', '.join(known) or 'nothing'}",
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
) -> Any:
    if isinstance(value, str):
        return _fill_string(value, variables, environ, case, pointer, problems)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            filled = _fill(item, variables, environ, case, join(pointer, key), problems)
            if filled is not _DROP:
                out[key] = filled
        return out
    if isinstance(value, list):
        items = [_fill(item, variables, environ, case, join(pointer, i), problems) for i, item in enumerate(value)]
        return [None if item is _DROP else item for item in items]
    return value


def fill(case: Case, variables: Mapping[str, str | None], environ: Mapping[str, str]) -> Case:
    """The case with every placeholder replaced; raises `CaseFileError` naming each unknown one.

    A variable whose value is None (an endpoint with no model) removes a member whose whole value is that
    placeholder, so one catalogue serves endpoints that take a model and those that take none.
    """
    problems: list[Problem] = []
    request = _fill(case.request, variables, environ, case, join(case.base, "request"), problems)
    raw = _fill(case.raw_body, variables, environ, case, join(case.base, "raw_body"), problems)
    headers = _fill(case.headers, variables, environ, case, join(case.base, "headers"), problems)
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
    )
