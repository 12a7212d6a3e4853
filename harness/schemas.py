"""The JSON Schemas in `schemas/`, loaded once and compiled: the only module that knows where they live."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .pointer import join

__all__ = ["SchemaError", "compile_schema", "schema", "schema_dir", "validate"]


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One way an instance fails a schema: where (pointer into the instance), what, and which keyword."""

    pointer: str
    message: str
    keyword: str
    schema_path: str


def schema_dir() -> Path:
    """`schemas/` beside the package in a checkout; the installed copy otherwise."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schemas", here / "schemas"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the harness's schemas/ folder is missing from this installation")


@cache
def schema(name: str) -> jsonschema.Draft202012Validator:
    """The compiled validator for `schemas/<name>.schema.json`, built once per process."""
    path = schema_dir() / f"{name}.schema.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    return compile_schema(document)


def compile_schema(document: dict[str, Any] | bool) -> jsonschema.Draft202012Validator:
    """A validator for a schema that came with a request (a tool's parameters, a response_format)."""
    cls = jsonschema.validators.validator_for(document, default=jsonschema.Draft202012Validator)
    return cls(document, format_checker=cls.FORMAT_CHECKER)  # type: ignore[no-any-return]


def _describe(error: ValidationError) -> ValidationError:
    # For oneOf/anyOf the top error only says "not valid under any"; the closest branch says what to fix.
    if error.context:
        return best_match(error.context)
    return error


def _short(message: str) -> str:
    return re.sub(r"\s+", " ", message if len(message) <= 300 else message[:297] + "...")


def validate(validator: jsonschema.Draft202012Validator, instance: Any, root: str = "") -> list[SchemaError]:
    """Every validation error, sorted by pointer, with pointers prefixed by `root`."""
    out = []
    for error in validator.iter_errors(instance):
        shown = _describe(error)
        out.append(
            SchemaError(
                pointer=join(root, list(shown.absolute_path)),
                message=_short(shown.message),
                keyword=str(shown.validator),
                schema_path="/" + "/".join(str(p) for p in shown.absolute_schema_path),
            )
        )
    return sorted(out, key=lambda e: (e.pointer, e.message))
