"""The JSON Schemas shipped in the package (`harness/data/schemas/`), each loaded once and compiled."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .pointer import join
from .resources import bundled

__all__ = ["SchemaError", "compile_schema", "schema", "validate"]


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One way an instance fails a schema: where (pointer into the instance), what, and which keyword."""

    pointer: str
    message: str
    keyword: str
    schema_path: str


@cache
def schema(name: str) -> jsonschema.Draft202012Validator:
    """The compiled validator for the bundled `<name>.schema.json`, built once per process."""
    path = bundled("schemas") / f"{name}.schema.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    return compile_schema(document)


def compile_schema(document: dict[str, Any] | bool) -> jsonschema.Draft202012Validator:
    """A validator for a schema that came with a request (a tool's parameters, a response_format)."""
    cls = jsonschema.validators.validator_for(document, default=jsonschema.Draft202012Validator)
    validator: jsonschema.Draft202012Validator = cls(document, format_checker=cls.FORMAT_CHECKER)  # type: ignore[assignment]
    return validator


def _describe(error: ValidationError) -> ValidationError:
    # For oneOf/anyOf the top error only says "not valid under any"; the closest branch says what to fix.
    if error.context:
        closest: ValidationError = best_match(error.context)
        return closest
    return error


_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _kind(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(error: ValidationError) -> str:
    """jsonschema's message, reworded as the rule and what was seen, without dumping the whole instance."""
    keyword, value = error.validator, error.instance
    expected: Any = error.validator_value
    if keyword == "type":
        names = expected if isinstance(expected, list) else [expected]
        return f"must be of type {' or '.join(map(str, names))}; got {_kind(value)} {_show(value)}"
    if keyword == "required":
        missing = [k for k in expected if isinstance(value, dict) and k not in value]
        return f"missing required member {', '.join(map(repr, missing or expected))}"
    if keyword == "const":
        return f"must be {_show(expected)}; got {_show(value)}"
    if keyword == "enum":
        return f"must be one of {', '.join(map(_show, expected))}; got {_show(value)}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[keyword]
        return f"must be {sign} {expected}; got {_show(value)}"
    if keyword == "additionalProperties" and isinstance(value, dict):
        return error.message.replace("Additional properties are not allowed", "members not allowed by the schema")
    return _short(error.message)


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
                message=_message(shown),
                keyword=str(shown.validator),
                schema_path="/" + "/".join(str(p) for p in shown.absolute_schema_path),
            )
        )
    return sorted(out, key=lambda e: (e.pointer, e.message))
