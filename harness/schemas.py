"""JSON Schemas: the ones shipped in the package (`harness/data/schemas/`), and the ones requests carry.

The bundled request schema is the one definition of a valid request: `request_problems` is what `harness lint`
holds a case's request to and what the fuzzing strategies' valid requests satisfy. A schema a request carries
(a tool's parameters, a response format) is data from a case file, so `schema_problems` says what makes one
unusable (invalid, circular, or pointing where nothing is) and `compile_schema` never fails: a schema that cannot
be applied is compiled into one that says so, and `validate` reports that instead of raising.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .pointer import join
from .resources import bundled

__all__ = ["SchemaError", "compile_schema", "request_problems", "schema", "schema_problems", "validate"]


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
    # Built directly, not through compile_schema: a broken bundled schema is a bug to raise, not a finding.
    cls = _validator_class(document)
    validator: jsonschema.Draft202012Validator = cls(document, format_checker=cls.FORMAT_CHECKER, registry=_NO_REMOTE)
    return validator


def request_problems(body: Any) -> list[SchemaError]:
    """Every way a request body breaks the bundled request schema (OpenAI's documented shapes and bounds), and the
    documented rules between members that a schema cannot state (a named `tool_choice` must be a declared tool).

    One definition of a valid request, so that lint, the fuzzing strategies and the tests agree on it."""
    problems = validate(schema("request"), body)
    if isinstance(body, dict):
        problems += _relation_problems(body)
    return sorted(problems, key=lambda e: (e.pointer, e.message))


def _relation_problems(body: dict[str, Any]) -> list[SchemaError]:
    """OpenAI's rules between members, each of which it answers with a 400 naming the member."""
    out: list[SchemaError] = []
    tools = body.get("tools")
    declared = [
        t["function"].get("name")
        for t in (tools if isinstance(tools, list) else [])
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    ]
    choice = body.get("tool_choice")
    if choice in ("auto", "required") and not declared:
        out.append(
            SchemaError(
                pointer="/tool_choice",
                message=f"tool_choice {choice!r} needs tools to choose from",
                keyword="tools",
                schema_path="",
            )
        )
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        if isinstance(name, str) and name not in declared:
            out.append(
                SchemaError(
                    pointer="/tool_choice/function/name",
                    message=f"must name a declared tool ({', '.join(map(str, declared)) or 'none declared'}); "
                    f"got {name!r}",
                    keyword="tools",
                    schema_path="",
                )
            )
    if body.get("top_logprobs") is not None and body.get("logprobs") is not True:
        out.append(
            SchemaError(
                pointer="/top_logprobs", message="top_logprobs needs logprobs: true", keyword="logprobs", schema_path=""
            )
        )
    if body.get("stream_options") is not None and body.get("stream") is not True:
        out.append(
            SchemaError(
                pointer="/stream_options", message="stream_options needs stream: true", keyword="stream", schema_path=""
            )
        )
    return out


# A schema from a case is never allowed to fetch anything: jsonschema's default registry would retrieve a remote
# `$ref` over the network. The dialects' own meta-schemas are still known (jsonschema adds them to any registry).
_NO_REMOTE: referencing.Registry[Any] = referencing.Registry()
_UNUSABLE = "x-harness-unusable"
_LEGACY = frozenset(
    {
        jsonschema.Draft3Validator,
        jsonschema.Draft4Validator,
        jsonschema.Draft6Validator,
        jsonschema.Draft7Validator,
    }
)


def _refuse(validator: Any, problem: SchemaError, instance: Any, schema: Any) -> Iterator[ValidationError]:
    yield ValidationError(_unusable_message(problem))


# What `compile_schema` gives for a schema that cannot be applied: it fails every instance, saying why.
_Unusable = jsonschema.validators.create(meta_schema={}, validators={_UNUSABLE: _refuse})


def _unusable_message(problem: SchemaError) -> str:
    where = f"at {problem.pointer} " if problem.pointer else ""
    return f"the schema cannot be applied, so this cannot be judged: it is broken {where}({problem.message})"


def _validator_class(document: Any) -> Any:
    """The validator class for a schema's `$schema` (draft 2020-12 when it names none, or one jsonschema does not
    know), without the errors `validator_for` raises on a `$schema` that is not a string."""
    dialect = document.get("$schema") if isinstance(document, dict) else None
    if not isinstance(dialect, str):
        return jsonschema.Draft202012Validator
    try:
        return jsonschema.validators.validator_for({"$schema": dialect}, default=jsonschema.Draft202012Validator)
    except ValueError:  # a $schema that is not even a URI, e.g. "http://["
        return jsonschema.Draft202012Validator


def compile_schema(document: dict[str, Any] | bool) -> jsonschema.Draft202012Validator:
    """A validator for a schema that came with a request (a tool's parameters, a response_format).

    Never raises: a schema with a problem (see `schema_problems`) compiles into a validator that fails every
    instance with that problem, so a check reports the broken schema instead of crashing on it."""
    problems = schema_problems(document)
    cls = _validator_class(document)
    try:
        if problems:
            raise _Broken(problems[0])
        validator: jsonschema.Draft202012Validator = cls(
            document, format_checker=cls.FORMAT_CHECKER, registry=_NO_REMOTE
        )
    except _Broken as exc:
        return _Unusable({_UNUSABLE: exc.problem})  # type: ignore[return-value]
    except Exception as exc:  # e.g. an `$id` that referencing cannot read; schema_problems should have said
        return _Unusable({_UNUSABLE: _crash("", exc)})  # type: ignore[return-value]
    return validator


class _Broken(Exception):
    def __init__(self, problem: SchemaError) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _crash(pointer: str, exc: BaseException, doing: str = "applying it failed") -> SchemaError:
    """A problem for a schema that made jsonschema or referencing raise, which `schema_problems` did not foresee."""
    message = f"{doing}: it nests so deeply or circularly that it recursed without end"
    if not isinstance(exc, RecursionError):
        message = f"{doing}: {type(exc).__name__}: {_short(str(exc))}"
    return SchemaError(pointer=pointer, message=message, keyword="$schema", schema_path=pointer)


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
    """Every validation error, sorted by pointer, with pointers prefixed by `root`.

    A schema that cannot be applied (compiled by `compile_schema` from a broken one, or failing while it is
    applied) gives one error at `root` saying why, never an exception: the schema is the request's fault, and
    the answer cannot be judged against it."""
    document = validator.schema
    if isinstance(document, dict) and isinstance(document.get(_UNUSABLE), SchemaError):
        problem = document[_UNUSABLE]
        return [
            SchemaError(
                pointer=root, message=_unusable_message(problem), keyword="schema", schema_path=problem.pointer or "/"
            )
        ]
    out = []
    try:
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
    except Exception as exc:  # a schema jsonschema cannot apply (a validator built elsewhere than compile_schema)
        problem = (schema_problems(document) or [_crash("", exc)])[0]
        return [
            SchemaError(
                pointer=root, message=_unusable_message(problem), keyword="schema", schema_path=problem.pointer or "/"
            )
        ]
    return sorted(out, key=lambda e: (e.pointer, e.message))


# Keywords whose value is one subschema, a list of them, or a mapping of them; "in place" ones apply to the same
# instance (so a `$ref` cycle through them never ends), the others to a part of it (so a cycle is a recursive type).
_IN_PLACE = {"not": "one", "if": "one", "then": "one", "else": "one", "allOf": "list", "anyOf": "list"}
_IN_PLACE |= {"oneOf": "list", "dependentSchemas": "map", "dependencies": "map"}
_DESCENDING = {
    "additionalProperties": "one",
    "propertyNames": "one",
    "additionalItems": "one",
    "contains": "one",
    "unevaluatedItems": "one",
    "unevaluatedProperties": "one",
    "items": "one or list",
    "prefixItems": "list",
    "properties": "map",
    "patternProperties": "map",
    "$defs": "map",
    "definitions": "map",
}
_REFERENCES = ("$ref", "$dynamicRef", "$recursiveRef")
_BUNDLED_DIALECTS = ("https://json-schema.org/", "http://json-schema.org/")


def _children(node: dict[str, Any]) -> Iterator[tuple[list[str], Any, bool]]:
    """(path below the node, subschema, applies in place) for each subschema a schema holds."""
    for keyword, shape in (*_IN_PLACE.items(), *_DESCENDING.items()):
        value = node.get(keyword)
        in_place = keyword in _IN_PLACE
        if isinstance(value, dict) and shape in ("map",):
            for name, child in value.items():
                if isinstance(child, dict | bool):
                    yield [keyword, name], child, in_place
        elif isinstance(value, dict | bool) and shape in ("one", "one or list"):
            yield [keyword], value, in_place
        elif isinstance(value, list) and shape in ("list", "one or list"):
            for i, child in enumerate(value):
                if isinstance(child, dict | bool):
                    yield [keyword, str(i)], child, in_place


def schema_problems(document: Any) -> list[SchemaError]:
    """What makes a schema unusable, each at its pointer inside the schema: not a valid schema of its dialect, a
    `$ref` that resolves to nothing (or to another document: schemas are never fetched), or a `$ref` cycle that
    never goes into the instance, on which validation would recurse forever (a recursive type, whose cycle goes
    through `properties` or `items`, is fine)."""
    if not isinstance(document, dict | bool):
        return [
            SchemaError(
                pointer="",
                message=f"a JSON Schema is an object or a boolean, not {_kind(document)}",
                keyword="type",
                schema_path="",
            )
        ]
    cls = _validator_class(document)
    try:
        cls.check_schema(document)
    except jsonschema.SchemaError as exc:
        pointer = join("", list(exc.absolute_path))
        return [
            SchemaError(
                pointer=pointer,
                message=f"not a valid JSON Schema: {_short(exc.message)}",
                keyword=str(exc.validator),
                schema_path=pointer,
            )
        ]
    except Exception as exc:  # the meta-schema itself could not be applied (deep nesting, say)
        return [_crash("", exc, "checking it against its dialect's meta-schema failed")]
    if isinstance(document, bool):
        return []
    try:
        return _reference_problems(document, cls)
    except Exception as exc:  # an `$id` or `$ref` that referencing cannot even parse
        return [_crash("", exc, "an $id or $ref in it cannot be read")]


def _reference_problems(document: dict[str, Any], cls: Any) -> list[SchemaError]:
    dialect = cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id") or "urn:unknown-dialect"
    specification = referencing.jsonschema.specification_with(dialect, default=referencing.Specification.OPAQUE)
    root = _NO_REMOTE.resolver_with_root(specification.create_resource(document))
    # Every subschema with its pointer and the resolver of its scope (an `$id` starts a new one).
    nodes: dict[int, tuple[str, dict[str, Any], Any]] = {}
    stack: list[tuple[str, dict[str, Any], Any]] = [("", document, root)]
    while stack:
        pointer, node, resolver = stack.pop()
        resolver = resolver.in_subresource(specification.create_resource(node))
        nodes[id(node)] = (pointer, node, resolver)
        below = [
            (join(pointer, path), child, resolver) for path, child, _ in _children(node) if isinstance(child, dict)
        ]
        stack += reversed(below)  # in document order, so that a loop is reported at the $ref that closes it
    problems: list[SchemaError] = []
    edges: dict[int, list[tuple[int, str]]] = {}  # in-place edges: to a node, through the `$ref` at a pointer or ""
    for key, (pointer, node, resolver) in nodes.items():
        legacy_ref = cls in _LEGACY and "$ref" in node  # before 2019-09, a $ref's siblings are ignored
        edges[key] = [(id(child), "") for path, child, in_place in _children(node) if in_place and not legacy_ref]
        for keyword in _REFERENCES:
            ref = node.get(keyword)
            if not isinstance(ref, str):
                continue
            at = join(pointer, keyword)
            try:
                target = resolver.lookup(ref).contents
            except referencing.exceptions.Unresolvable as exc:
                if not str(exc.ref if hasattr(exc, "ref") else ref).startswith(_BUNDLED_DIALECTS):
                    problems.append(
                        SchemaError(
                            pointer=at, message=_unresolvable(keyword, ref, exc), keyword=keyword, schema_path=at
                        )
                    )
                continue
            if id(target) in nodes:
                edges[key].append((id(target), at))
    problems += _cycles(nodes, edges)
    return sorted(problems, key=lambda p: p.pointer)


def _unresolvable(keyword: str, ref: str, exc: referencing.exceptions.Unresolvable) -> str:
    if isinstance(exc, referencing.exceptions.PointerToNowhere):
        why = "nothing in the schema is at that pointer"
    elif isinstance(exc, referencing.exceptions.NoSuchAnchor):
        why = "no subschema declares that anchor"
    else:
        why = "it names another document, and schemas are never fetched: put what it names under $defs"
    return f"{keyword} {ref!r} cannot be resolved: {why}"


def _cycles(
    nodes: dict[int, tuple[str, dict[str, Any], Any]], edges: dict[int, list[tuple[int, str]]]
) -> list[SchemaError]:
    """A `$ref` that closes a loop of in-place edges, found by an iterative depth-first search."""
    problems: list[SchemaError] = []
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in nodes:
        if start in state:
            continue
        path: list[int] = [start]
        state[start] = 1
        pending: list[Iterator[tuple[int, str]]] = [iter(edges[start])]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                state[path.pop()] = 2
                pending.pop()
                continue
            target, at = step
            if state.get(target) == 1:
                loop = [nodes[k][0] or "#" for k in path[path.index(target) :]]
                ref = nodes[path[-1]][1].get(at.rsplit("/", 1)[-1]) if at else None
                problems.append(
                    SchemaError(
                        pointer=at or nodes[path[-1]][0],
                        message=f"{at.rsplit('/', 1)[-1] if at else '$ref'} {ref!r} is circular: "
                        f"{' -> '.join([*loop, nodes[target][0] or '#'])} applies to the same value without end, "
                        "so validating anything against this schema would never finish",
                        keyword="$ref",
                        schema_path=at,
                    )
                )
            elif target not in state:
                state[target] = 1
                path.append(target)
                pending.append(iter(edges[target]))
    return problems
