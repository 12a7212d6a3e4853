"""JSON Schemas: the ones shipped in the package (`harness/data/schemas/`), and the ones requests carry.

The bundled request schema is the one definition of a valid request: `request_problems` is what `harness lint`
holds a case's request to and what the fuzzing strategies' valid requests satisfy. A schema a request carries
(a tool's parameters, a response format) is data from a case file, so `schema_problems` says what makes one
unusable (invalid, circular, or pointing where nothing is) and `compile_schema` never fails: a schema that cannot
be applied is compiled into one that says so, and `validate` reports that instead of raising.

Validation runs on every answer and every stream chunk, so it is done twice over, for speed: jsonschema-rs decides
whether an instance is valid (about a hundred times faster than jsonschema), and jsonschema alone says what is
wrong, at each place jsonschema-rs found something, so the errors and their wording are jsonschema's. Where the two
dialects of a keyword differ (Rust and Python regular expressions, float `multipleOf`, which formats are checked),
jsonschema-rs asks jsonschema for that keyword; a schema jsonschema-rs cannot apply exactly is validated by
jsonschema alone.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import jsonschema
import jsonschema_rs
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .pointer import join
from .resources import bundled

__all__ = ["SchemaError", "Validator", "compile_schema", "request_problems", "schema", "schema_problems", "validate"]


@dataclass(frozen=True, slots=True)
class SchemaError:
    """One way an instance fails a schema: where (pointer into the instance), what, and which keyword."""

    pointer: str
    message: str
    keyword: str
    schema_path: str


@dataclass(frozen=True, slots=True, eq=False)
class Validator:
    """A compiled schema: jsonschema (`python`), which says what is wrong, and jsonschema-rs (`fast`, None for a
    schema it cannot apply exactly as jsonschema does), which says quickly whether anything is."""

    python: jsonschema.protocols.Validator
    fast: jsonschema_rs.Validator | None = None
    routes: dict[tuple[str | int, ...], Route | None] = field(default_factory=dict, repr=False)
    """Where each of jsonschema-rs's schema paths leads in jsonschema's terms, followed once (see `_route`)."""

    @property
    def schema(self) -> Any:
        return self.python.schema

    def iter_errors(self, instance: Any) -> Iterator[Any]:
        """jsonschema's errors, as `jsonschema.Validator.iter_errors` gives them; none, at once, for a valid
        instance."""
        if _fast_verdict(self.fast, instance) is True:
            return iter(())
        return self.python.iter_errors(instance)


@cache
def schema(name: str) -> Validator:
    """The compiled validator for the bundled `<name>.schema.json`, built once per process."""
    path = bundled("schemas") / f"{name}.schema.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    # Built directly, not through compile_schema: a broken bundled schema is a bug to raise, not a finding.
    cls = _validator_class(document)
    validator = cls(document, format_checker=cls.FORMAT_CHECKER, registry=_NO_REMOTE)
    return Validator(python=validator, fast=_fast(cls, document))


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


def compile_schema(document: dict[str, Any] | bool) -> Validator:
    """A validator for a schema that came with a request (a tool's parameters, a response_format), compiled once
    per distinct schema in a process (a run sends the same few schemas many times).

    Never raises: a schema with a problem (see `schema_problems`) compiles into a validator that fails every
    instance with that problem, so a check reports the broken schema instead of crashing on it."""
    # The text in the document's own key order: the order shows in messages (an object `const`, say).
    key = json.dumps(document, ensure_ascii=False, default=repr)
    compiled = _COMPILED.get(key)
    if compiled is None:
        if len(_COMPILED) >= _COMPILED_KEPT:
            _COMPILED.clear()  # one step, safe when checks judge from several threads
        compiled = _COMPILED[key] = _compile(document)
    return compiled


# Distinct schemas kept compiled: fuzzing generates a new one per request, a catalogue run sends a few again and again.
_COMPILED: dict[str, Validator] = {}
_COMPILED_KEPT = 256


def _compile(document: dict[str, Any] | bool) -> Validator:
    problems = schema_problems(document)
    cls = _validator_class(document)
    try:
        if problems:
            raise _Broken(problems[0])
        validator = cls(document, format_checker=cls.FORMAT_CHECKER, registry=_NO_REMOTE)
    except _Broken as exc:
        return Validator(python=_Unusable({_UNUSABLE: exc.problem}))
    except Exception as exc:  # e.g. an `$id` that referencing cannot read; schema_problems should have said
        return Validator(python=_Unusable({_UNUSABLE: _crash("", exc)}))
    return Validator(python=validator, fast=_fast(cls, document))


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


# One encoder for every message: `json.dumps` with options builds a new one on each call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=repr)


def _show(value: Any) -> str:
    text = _ENCODER.encode(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _message(error: ValidationError) -> str:
    """jsonschema's message, reworded as the rule and what was seen, without dumping the whole instance."""
    return _reword(error.validator, error.instance, error.validator_value, error.message)


# The keywords whose every message is the harness's own wording, from the rule and the value alone.
_WORDED = frozenset({"type", "required", "const", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})


def _reword(keyword: Any, value: Any, expected: Any, message: str) -> str:
    """The message for a keyword's error: the rule and what was seen, or jsonschema's `message`, shortened."""
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
        return message.replace("Additional properties are not allowed", "members not allowed by the schema")
    return _short(message)


def _short(message: str) -> str:
    return re.sub(r"\s+", " ", message if len(message) <= 300 else message[:297] + "...")


def validate(validator: Validator, instance: Any, root: str = "") -> list[SchemaError]:
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
    verdict = _fast_verdict(validator.fast, instance)
    if verdict is True:
        return []
    out = _located_errors(validator, instance, root) if verdict is False else None
    if out is None:
        try:
            out = [_error(shown, root, [], []) for shown in map(_describe, validator.python.iter_errors(instance))]
        except Exception as exc:  # a schema jsonschema cannot apply (a validator built elsewhere than compile_schema)
            problem = (schema_problems(document) or [_crash("", exc)])[0]
            return [
                SchemaError(
                    pointer=root,
                    message=_unusable_message(problem),
                    keyword="schema",
                    schema_path=problem.pointer or "/",
                )
            ]
    # Ties broken by the schema path: jsonschema-rs and jsonschema find errors in different orders.
    return sorted(out, key=lambda e: (e.pointer, e.message, e.schema_path, e.keyword))


def _error(shown: ValidationError, root: str, path: list[str | int], schema_path: list[str | int]) -> SchemaError:
    """One reported error, from jsonschema's, found at `path` in the instance and `schema_path` in the schema."""
    return SchemaError(
        pointer=join(root, [*path, *shown.absolute_path]),
        message=_message(shown),
        keyword=str(shown.validator),
        schema_path="/" + "/".join(str(p) for p in [*schema_path, *shown.absolute_schema_path]),
    )


def _fast_verdict(fast: jsonschema_rs.Validator | None, instance: Any) -> bool | None:
    """Whether jsonschema-rs finds the instance valid, or None when only jsonschema can say: there is no fast
    validator, the instance holds NaN or an infinity (which jsonschema-rs reads as no JSON type at all, so it would
    compare them wrongly), or a string jsonschema-rs cannot read (a lone surrogate)."""
    if fast is None:
        return None
    try:
        return fast.is_valid(instance) if _FINITE.is_valid(instance) else None
    except Exception:
        return None


# Every value one of JSON's types: NaN and the infinities (which clients' parsers accept) are none of them to
# jsonschema-rs.
_FINITE = jsonschema_rs.Draft202012Validator(
    {
        "type": ["null", "boolean", "string", "number", "array", "object"],
        "items": {"$ref": "#"},
        "additionalProperties": {"$ref": "#"},
    }
)


# The jsonschema classes jsonschema-rs implements with the same rules. Draft 4's `integer` excludes 1.0 in jsonschema
# and not in jsonschema-rs; draft 3 it does not know.
_FAST_CLASSES: dict[Any, Any] = {
    jsonschema.Draft6Validator: jsonschema_rs.Draft6Validator,
    jsonschema.Draft7Validator: jsonschema_rs.Draft7Validator,
    jsonschema.Draft201909Validator: jsonschema_rs.Draft201909Validator,
    jsonschema.Draft202012Validator: jsonschema_rs.Draft202012Validator,
}
# Keywords whose outcome differs between the two (Rust and Python regular expressions, float division, formats
# checked or not, which depends on what is installed beside jsonschema): jsonschema-rs asks jsonschema for them.
_DELEGATED = ("pattern", "multipleOf", "format")
# Matched by jsonschema-rs's own regex engine, with nowhere to ask jsonschema: such a schema is not sped up.
_UNPORTABLE = "patternProperties"


def _fast(cls: Any, document: Any) -> jsonschema_rs.Validator | None:
    """jsonschema-rs compiled to decide validity exactly as `cls` does, or None when it cannot be."""
    fast_cls = _FAST_CLASSES.get(cls)
    if fast_cls is None or _mentions(document, _UNPORTABLE):
        return None
    try:
        validator: jsonschema_rs.Validator = fast_cls(
            document,
            keywords={keyword: _delegate(cls, keyword) for keyword in _DELEGATED},
            retriever=_no_retrieval,
        )
    except Exception:  # a schema jsonschema-rs cannot compile (jsonschema still applies it)
        return None
    return validator


def _mentions(document: Any, key: str) -> bool:
    """Whether any object in the document has `key`, looked for without recursion (a schema may nest deeply)."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if key in node:
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _no_retrieval(uri: str) -> Any:
    raise ValueError(f"schemas are never fetched: {uri}")


def _delegate(cls: Any, keyword: str) -> type:
    """A jsonschema-rs keyword that applies jsonschema's own rule for `keyword`."""

    class Delegated:
        def __init__(self, parent: Any, value: Any, schema_path: Any) -> None:
            self._valid = cls({keyword: value}, format_checker=cls.FORMAT_CHECKER).is_valid

        def validate(self, instance: Any) -> None:
            if not self._valid(instance):
                raise ValueError(f"not valid under {keyword!r}")

    return Delegated


# Keywords whose rule reads only its value and the instance (not the schema around it, nor `$ref`s): applied by the
# root validator, without building one for the subschema.
_LOCAL = frozenset(
    {
        "type",
        "required",
        "const",
        "enum",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "multipleOf",
        "pattern",
        "format",
        "uniqueItems",
        "dependentRequired",
    }
)
# Keywords jsonschema-rs goes through to report an error below them: what follows them in its path (a member's
# name, an index, or nothing), and whether the instance goes one level down with them.
_THROUGH = {
    "properties": ("name", True),
    "prefixItems": ("index", True),
    "allOf": ("index", False),
    "dependentSchemas": ("name", False),
    "then": ("", False),
    "else": ("", False),
    "additionalProperties": ("", True),
    "additionalItems": ("", True),
    "items": ("", True),
}
_DYNAMIC = frozenset({"$dynamicRef", "$recursiveRef"})


@dataclass(frozen=True, slots=True)
class Route:
    """Where an error jsonschema-rs found is, in jsonschema's terms: the keyword of a subschema, the subschema's path
    as jsonschema writes it (without `$ref`s), the resolver jsonschema has there, and the steps into the instance
    that lead there (None: any member or index)."""

    node: Any
    keyword: str
    schema_path: list[str | int]
    resolver: Any
    steps: list[str | int | None]
    shown: str = field(init=False)
    """The keyword's schema path as `SchemaError.schema_path` shows it."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "shown", "/" + "/".join(str(p) for p in [*self.schema_path, self.keyword]))


_ROUTES_KEPT = 1024  # a recursive schema gives paths as long as the instance is deep


def _located_errors(validator: Validator, instance: Any, root: str) -> list[SchemaError] | None:
    """jsonschema's errors for what jsonschema-rs found, each from the one keyword at the one place jsonschema-rs
    names, instead of jsonschema walking the whole instance. None when a place cannot be followed exactly (a
    `$dynamicRef`; a keyword jsonschema-rs asked jsonschema about, whose path it gives from the schema's root, not
    through the `$ref`s it went through) or jsonschema finds nothing where jsonschema-rs did: then jsonschema walks
    it all."""
    assert validator.fast is not None
    python: Any = validator.python
    routes = validator.routes
    out: list[SchemaError] = []
    done: set[tuple[int, str, tuple[str | int, ...]]] = set()
    try:
        for found in validator.fast.iter_errors(instance):
            evaluation = tuple(found.evaluation_path)
            if evaluation not in routes:
                if len(routes) >= _ROUTES_KEPT:
                    routes.clear()
                routes[evaluation] = _route(python, evaluation)
            route = routes[evaluation]
            at = list(found.instance_path)
            if route is None or len(at) != len(route.steps):
                return None
            value = instance
            for step, expected in zip(at, route.steps, strict=True):
                if expected is not None and step != expected:
                    return None
                value = value[step]
            if (id(route.node), route.keyword, tuple(at)) in done:
                continue
            done.add((id(route.node), route.keyword, tuple(at)))
            if route.keyword in _WORDED:
                confirmed = _worded(python, route, value, join(root, at))
            else:
                errors = _keyword_errors(python, route.node, route.keyword, value, route.resolver)
                confirmed = [_error(_describe(error), root, at, route.schema_path) for error in errors]
            if not confirmed:  # jsonschema sees nothing wrong there: it decides, and may see something elsewhere
                return None
            out += confirmed
    except Exception:  # anything unforeseen in following jsonschema-rs's paths: jsonschema walks it all
        return None
    return out or None  # found invalid, yet no error to show: jsonschema decides


def _route(python: Any, evaluation: tuple[str | int, ...]) -> Route | None:
    """Where jsonschema-rs's path through the schema (`evaluation`) leads, as jsonschema would have walked it; None
    when jsonschema would not have gone that way."""
    legacy = type(python) in _LEGACY
    specification = _specification(type(python))
    node: Any = python.schema
    resolver = python._resolver
    schema_path: list[str | int] = []
    steps: list[str | int | None] = []
    remaining = list(evaluation)
    while remaining:
        keyword = remaining.pop(0)
        if not isinstance(node, dict) or not isinstance(keyword, str) or keyword not in node or keyword in _DYNAMIC:
            return None
        if legacy and "$ref" in node and keyword != "$ref":  # before 2019-09, a $ref's siblings are ignored
            return None
        if keyword == "$ref":  # jsonschema leaves `$ref` out of its schema paths
            resolved = resolver.lookup(node["$ref"])
            node, resolver = resolved.contents, resolved.resolver
            continue
        follows, descends = _THROUGH.get(keyword, ("", False))
        indexed = keyword == "items" and isinstance(node[keyword], list)  # draft 7's items: a schema per index
        if keyword not in _THROUGH or not (remaining or follows or indexed):
            return Route(node=node, keyword=keyword, schema_path=schema_path, resolver=resolver, steps=steps)
        node = node[keyword]
        schema_path.append(keyword)
        step: str | int | None = None
        if follows or indexed:
            if not remaining:
                return None
            step = remaining.pop(0)
            node = node[step]
            schema_path.append(step)
        if descends:
            steps.append(step if keyword in ("properties", "prefixItems") or indexed else None)
        if isinstance(node, dict):
            resolver = resolver.in_subresource(specification.create_resource(node))
    return None  # a `false` subschema, which jsonschema reports where its parent keyword is: jsonschema walks it all


def _worded(python: Any, route: Route, value: Any, pointer: str) -> list[SchemaError]:
    """The errors jsonschema gives for a keyword in `_WORDED` (as many as its rule yields: one per missing member for
    `required`), without the work of completing each error only to reword it."""
    keyword, expected = route.keyword, route.node[route.keyword]
    # The two commonest rules as jsonschema states them (its type checker; a member `not in` an object), without
    # the message and error objects its rule functions build; the others by the rule itself.
    if keyword == "type":
        count = 0 if [name for name in _listed(expected) if python.is_type(value, name)] else 1
    elif keyword == "required":
        count = sum(1 for name in expected if name not in value) if python.is_type(value, "object") else 0
    else:
        count = sum(1 for _ in python.VALIDATORS[keyword](python, expected, value, route.node) or ())
    message = _reword(keyword, value, expected, "")
    return [SchemaError(pointer=pointer, message=message, keyword=keyword, schema_path=route.shown)] * count


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _keyword_errors(python: Any, node: Any, keyword: str, value: Any, resolver: Any) -> list[ValidationError]:
    """jsonschema's errors for one keyword of one subschema, as its own walk would have made them there."""
    rule = python.VALIDATORS.get(keyword)
    if rule is None:
        return []
    expected = node[keyword]
    applier = python
    if keyword not in _LOCAL and not (keyword == "additionalProperties" and expected is False):
        applier = python.evolve(schema=node, _resolver=resolver)
    errors = list(rule(applier, expected, value, node) or ())
    for error in errors:  # what jsonschema's iter_errors adds to each error a keyword gives
        error._set(
            validator=keyword, validator_value=expected, instance=value, schema=node, type_checker=python.TYPE_CHECKER
        )
        if keyword not in ("if", "$ref"):
            error.schema_path.appendleft(keyword)
    return errors


def _specification(cls: Any) -> Any:
    """The referencing specification jsonschema reads a dialect's `$id`s and `$ref`s with."""
    dialect = cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id") or "urn:unknown-dialect"
    return referencing.jsonschema.specification_with(dialect, default=referencing.Specification.OPAQUE)


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
    specification = _specification(cls)
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
