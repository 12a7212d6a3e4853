"""Validation gives jsonschema's errors, found at jsonschema-rs's speed: the two never disagree.

`harness.schemas.validate` asks jsonschema-rs whether an instance is valid and, when it is not, asks jsonschema
only about the keywords at the places jsonschema-rs names. Every test here compares that with jsonschema walking
the whole instance alone (what `validate` does when jsonschema-rs cannot apply a schema exactly): the same errors,
pointers, keywords, schema paths and messages, for the bundled schemas and for any schema a request may carry,
including where the two libraries' rules differ (regular expressions, float `multipleOf`, formats, draft 4's
integers, NaN and the infinities).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import schemas
from harness.resources import bundled
from harness.schemas import SchemaError, Validator, compile_schema, schema, validate

AGREE = settings(
    max_examples=300,
    deadline=None,  # the bound is on the input's size, not on one machine's speed
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow],
)


def alone(validator: Validator) -> Validator:
    """The same schema validated by jsonschema alone, walking the whole instance."""
    return dataclasses.replace(validator, fast=None, routes={})


def assert_agree(validator: Validator, instance: Any) -> list[SchemaError]:
    fast = validate(validator, instance, "/response/body")
    assert fast == validate(alone(validator), instance, "/response/body")
    # `iter_errors` (what lint and the config loader read) gives jsonschema's own errors, or none when valid.
    assert messages(validator, instance) == messages(validator.python, instance)
    return fast


def messages(validator: Any, instance: Any) -> list[str]:
    """The errors' messages, or what was raised (jsonschema's multipleOf raises on NaN and the infinities)."""
    try:
        return sorted(e.message for e in validator.iter_errors(instance))
    except Exception as exc:
        return [type(exc).__name__]


# --- the bundled schemas ---------------------------------------------------------------------------------------------

# A real server's answer (the bundled recording of the catalogue's text-basic case).
RECORDED = bundled("recordings") / "llama.cpp-smollm2" / "text-basic.yaml"
RESPONSE = json.loads(yaml.safe_load(RECORDED.read_text(encoding="utf-8"))["response"]["body"]["text"])
CHUNK = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"}, "logprobs": None, "finish_reason": None}],
}
ERROR = {"error": {"message": "no", "type": "invalid_request_error", "param": None, "code": None}}
VALID = {"chat-completion": RESPONSE, "chat-completion-chunk": CHUNK, "error-openai": ERROR}

JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=2**63, max_value=2**80),
        st.floats(),  # NaN and the infinities too: clients' parsers accept them
        st.text(max_size=6),
        st.sampled_from(["", "0", "now", "stop", "assistant", "chat.completion", "a\n", "\ud800"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.sampled_from(["id", "index", "role", "content", "type", "x", "a", "b", "c"]), inner, max_size=3
        ),
    ),
    max_leaves=8,
)


def places(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            out += places(value, (*path, key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            out += places(value, (*path, i))
    return out


@st.composite
def broken(draw: st.DrawFn, valid: Any) -> Any:
    """A valid document with a few members replaced, removed or added."""
    document = copy.deepcopy(valid)
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(places(document)))
        if not path:
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "remove", "add"]))
        if action == "remove" and isinstance(parent, dict):
            del parent[path[-1]]
        elif action == "add" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(["extra", "id", "index"]))] = draw(JSON_VALUES)
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return document


@AGREE
@given(data=st.data(), name=st.sampled_from(sorted(VALID)))
def test_bundled_schemas_agree_on_broken_answers(data: st.DataObject, name: str) -> None:
    assert schema(name).fast is not None
    assert_agree(schema(name), data.draw(broken(VALID[name])))


@AGREE
@given(name=st.sampled_from(["request", "case", "config", "error-google", "error-vllm"]), instance=JSON_VALUES)
def test_the_other_bundled_schemas_agree_on_anything(name: str, instance: Any) -> None:
    assert schema(name).fast is not None
    assert_agree(schema(name), instance)


def test_a_conformant_answer_has_no_errors_and_a_broken_one_keeps_its_messages() -> None:
    assert assert_agree(schema("chat-completion"), RESPONSE) == []
    body = copy.deepcopy(RESPONSE)
    body["created"], body["choices"][0]["index"] = "now", "0"
    del body["model"]
    # Found where jsonschema-rs points, without jsonschema walking the whole answer.
    assert schemas._located_errors(schema("chat-completion"), body, "/response/body") == validate(
        schema("chat-completion"), body, "/response/body"
    )
    assert assert_agree(schema("chat-completion"), body) == [
        SchemaError(
            pointer="/response/body",
            message="missing required member 'model'",
            keyword="required",
            schema_path="/required",
        ),
        SchemaError(
            pointer="/response/body/choices/0/index",
            message='must be of type integer; got a string "0"',
            keyword="type",
            schema_path="/properties/choices/items/properties/index/type",
        ),
        SchemaError(
            pointer="/response/body/created",
            message='must be of type integer; got a string "now"',
            keyword="type",
            schema_path="/properties/created/type",
        ),
    ]


# --- schemas a request carries ---------------------------------------------------------------------------------------

DRAFTS = [
    None,
    "https://json-schema.org/draft/2020-12/schema",
    "https://json-schema.org/draft/2019-09/schema",
    "http://json-schema.org/draft-07/schema#",
    "http://json-schema.org/draft-06/schema#",
    "http://json-schema.org/draft-04/schema#",
]

# (schema, instances): where the two libraries' rules differ, or where an error is reported in a way of its own.
TABLE: list[tuple[Any, list[Any]]] = [
    # Python's `$` matches before a final newline, Rust's does not; `\w` and `\d` differ beyond ASCII.
    ({"pattern": "^[a-z]+$"}, ["abc", "abc\n", "ABC", 1]),
    ({"pattern": r"^\w+$"}, ["a\u203f", "a_1", "é", "a-b"]),
    ({"pattern": r"^\d+$"}, ["12", "١٢", "1\n"]),
    ({"propertyNames": {"pattern": "^x"}}, [{"xa": 1}, {"y": 1, "xz\n": 2}]),
    # Python divides floats; jsonschema-rs does not.
    ({"multipleOf": 0.1}, [0.3, 0.2, 1, 0.35, math.nan, math.inf]),
    ({"multipleOf": 2}, [2**80, 2**80 + 1, 4.0, 3]),
    # Formats: jsonschema checks those it has a library for, jsonschema-rs all it knows.
    ({"format": "date-time"}, ["now", "2024-01-01T00:00:00Z", 3]),
    ({"format": "email"}, ["a@b", "nope", ""]),
    ({"format": "ipv4"}, ["127.0.0.1", "256.1.1.1", "1.2.3"]),
    ({"format": "regex"}, ["(", "a+", "(?<=a)b"]),
    ({"format": "uuid"}, ["not", "123e4567-e89b-12d3-a456-426614174000"]),
    ({"format": "no-such-format"}, ["x"]),
    # NaN and the infinities, and integers past 64 bits.
    ({"maximum": 5, "minimum": 0}, [math.inf, -math.inf, math.nan, 3, 2**70]),
    ({"type": "number", "exclusiveMaximum": 0}, [math.inf, [math.nan], -1]),
    ({"const": 2**64}, [2**64, 2**64 + 1, float(2**64)]),
    ({"type": "integer"}, [1.0, 1.5, True, 2**90]),
    ({"enum": [1, "a", None, [1]]}, [True, 1.0, [1.0], [True], "b"]),
    ({"uniqueItems": True}, [[1, True], [1, 1.0], [{"a": 1}, {"a": 1.0}], [math.nan, math.nan]]),
    ({"type": "string", "maxLength": 1}, ["\U0001f600", "ab", "\ud800"]),
    # Keywords whose errors jsonschema reports its own way.
    (
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b", "c"]},
        [{}, {"a": 1}, {"a": "x", "b": 1, "c": 2}, []],
    ),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": False}, [{"a": "x", "z": 1, "y": 2}, {"z": 1}]),
    ({"additionalProperties": {"type": "integer"}}, [{"a": "x", "b": 1}]),
    ({"anyOf": [{"type": "string", "minLength": 3}, {"type": "integer", "minimum": 10}]}, ["ab", 3, None, "abc"]),
    ({"oneOf": [{"type": "string"}, {"maxLength": 2}]}, ["ab", "abc", 5]),
    ({"not": {"type": "string"}}, ["x", 1]),
    ({"if": {"required": ["a"]}, "then": {"required": ["b"]}, "else": {"required": ["c"]}}, [{"a": 1}, {}, {"c": 1}]),
    ({"allOf": [{"minimum": 1}, {"maximum": 3}]}, [0, 4, 2]),
    ({"dependentRequired": {"a": ["b"]}, "dependentSchemas": {"c": {"required": ["d"]}}}, [{"a": 1, "c": 1}]),
    ({"prefixItems": [{"type": "string"}], "items": False}, [["a", 2, 3], ["a"], [1]]),
    ({"prefixItems": [{"type": "string"}], "items": {"type": "integer"}}, [[1, "x", 2]]),
    ({"contains": {"type": "string"}, "minContains": 2}, [[1, "a"], ["a", "b"]]),
    ({"properties": {"a": {"type": "string"}}, "unevaluatedProperties": False}, [{"a": "x", "b": 1}, {"a": 1}]),
    ({"properties": {"x": False}, "items": False}, [{"x": 1}, [1]]),
    ({"type": "object", "minProperties": 2, "maxProperties": 2}, [{"a": 1}, {"a": 1, "b": 2, "c": 3}]),
    # References: to $defs, through an $id, recursive types.
    (
        {
            "$ref": "#/$defs/a",
            "$defs": {"a": {"$id": "http://x.test/a", "$ref": "#/$defs/b", "$defs": {"b": {"type": "string"}}}},
        },
        [1, "x"],
    ),
    (
        {
            "$defs": {
                "node": {
                    "type": "object",
                    "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                    "required": ["v"],
                }
            },
            "$ref": "#/$defs/node",
        },
        [{"v": 1, "kids": [{"v": 2, "kids": [{"kids": []}, {"v": 3, "kids": "no"}]}]}],
    ),
    (
        {
            "$dynamicAnchor": "t",
            "type": "object",
            "properties": {"kids": {"type": "array", "items": {"$dynamicRef": "#t"}}},
            "required": ["v"],
        },
        [{"v": 1, "kids": [{"kids": []}]}],
    ),
    # A keyword jsonschema-rs asks jsonschema about, behind a $ref (its path then starts at the schema's root).
    (
        {"$defs": {"d": {"type": "string", "multipleOf": 0.1}}, "$ref": "#/$defs/d"},
        [1.7976931348623163e307, 0.3, "x"],
    ),
    ({"$defs": {"p": {"pattern": "^a", "maxLength": 2}}, "properties": {"a": {"$ref": "#/$defs/p"}}}, [{"a": "bcd"}]),
    # Before 2019-09 a $ref's siblings are ignored; draft 7's items may be a list, with additionalItems.
    (
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "definitions": {"s": {"type": "string"}},
            "properties": {"a": {"$ref": "#/definitions/s", "minLength": 9}},
        },
        [{"a": "x"}, {"a": 1}],
    ),
    (
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "items": [{"type": "string"}, False],
            "additionalItems": False,
        },
        [["a"], [1], ["a", 2], ["a", 2, 3]],
    ),
    (
        {"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": {"a": ["b"], "c": {"required": ["d"]}}},
        [{"a": 1, "c": 1}],
    ),
    # Draft 4: 1.0 is no integer to jsonschema (jsonschema-rs says it is), so jsonschema alone applies it.
    (
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "integer",
            "maximum": 3,
            "exclusiveMaximum": True,
        },
        [1.0, 3, 2],
    ),
    # patternProperties is matched by jsonschema-rs's own regex engine: jsonschema alone applies it.
    ({"patternProperties": {r"^\w$": {"type": "integer"}}}, [{"a\u203f": "x", "‿": "y", "b": "z"}]),
]
SLOW_ONLY = [
    {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "maximum": 3, "exclusiveMaximum": True},
    {"patternProperties": {r"^\w$": {"type": "integer"}}},
]


@pytest.mark.parametrize(("document", "instances"), TABLE, ids=[json.dumps(d)[:50] for d, _ in TABLE])
def test_request_schemas_agree_where_the_libraries_differ(document: Any, instances: list[Any]) -> None:
    validator = compile_schema(document)
    assert (validator.fast is None) == (document in SLOW_ONLY)
    for instance in instances:
        assert_agree(validator, instance)


def test_where_they_differ_the_errors_are_jsonschemas() -> None:
    """Both ways for each difference: what jsonschema accepts passes, what it rejects fails with its message."""
    assert validate(compile_schema({"pattern": "^[a-z]+$"}), "abc\n") == []  # Python's `$`
    assert validate(compile_schema({"multipleOf": 0.1}), 0.3)[0].message == "0.3 is not a multiple of 0.1"
    assert validate(compile_schema({"multipleOf": 0.1}), 0.2) == []
    assert validate(compile_schema({"maximum": 5}), math.inf)[0].message == "must be <= 5; got Infinity"
    assert validate(compile_schema({"const": 2**64}), 2**64 + 1)[0].message == (
        "must be 18446744073709551616; got 18446744073709551617"
    )
    ipv4 = compile_schema({"format": "ipv4"})
    assert validate(ipv4, "127.0.0.1") == []
    assert validate(ipv4, "256.1.1.1")[0].message == "'256.1.1.1' is not a 'ipv4'"


@AGREE
@given(
    dialect=st.sampled_from(DRAFTS),
    document=st.sampled_from([d for d, _ in TABLE]),
    instance=JSON_VALUES,
)
def test_request_schemas_agree_on_anything_in_any_draft(dialect: str | None, document: Any, instance: Any) -> None:
    if dialect is not None:
        document = {"$schema": dialect, **document}
    assert_agree(compile_schema(document), instance)


SCHEMA_KEYWORDS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["string", "integer", "number", "object", "array", "null", ["string", "null"]]),
        "minimum": st.integers(-2, 2),
        "exclusiveMaximum": st.floats(-2, 2),
        "multipleOf": st.sampled_from([0.1, 0.5, 2, 3]),
        "maxLength": st.integers(0, 3),
        "pattern": st.sampled_from(["^a", "b$", r"^\w*$", r"\d"]),
        "format": st.sampled_from(["ipv4", "email", "date-time", "regex", "uuid"]),
        "enum": st.lists(JSON_VALUES, min_size=1, max_size=3),
        "const": JSON_VALUES,
        "required": st.lists(st.sampled_from(["id", "index", "x"]), unique=True, max_size=2),
        "minItems": st.integers(0, 2),
        "uniqueItems": st.booleans(),
    },
)
REQUEST_SCHEMAS = st.recursive(
    SCHEMA_KEYWORDS,
    lambda inner: st.one_of(
        st.builds(
            lambda s, p: {**s, "properties": p},
            SCHEMA_KEYWORDS,
            st.dictionaries(st.sampled_from(["id", "index", "x"]), inner, max_size=2),
        ),
        st.builds(lambda s, i: {**s, "items": i}, SCHEMA_KEYWORDS, inner),
        st.builds(lambda s, a: {**s, "additionalProperties": a}, SCHEMA_KEYWORDS, st.one_of(st.booleans(), inner)),
        st.builds(lambda s, b: {**s, "anyOf": b}, SCHEMA_KEYWORDS, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda s, b: {**s, "oneOf": b}, SCHEMA_KEYWORDS, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda s, b: {**s, "allOf": b}, SCHEMA_KEYWORDS, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda s, n: {**s, "not": n}, SCHEMA_KEYWORDS, inner),
        st.builds(lambda s, d: {"$defs": {"d": d}, "$ref": "#/$defs/d", **s}, SCHEMA_KEYWORDS, inner),
        st.builds(lambda s, i, t: {**s, "if": i, "then": t}, SCHEMA_KEYWORDS, inner, inner),
        st.builds(lambda s, i, e: {**s, "if": i, "else": e}, SCHEMA_KEYWORDS, inner, inner),
        st.builds(lambda s, p: {**s, "prefixItems": p}, SCHEMA_KEYWORDS, st.lists(inner, min_size=1, max_size=2)),
        st.builds(lambda s, c: {**s, "contains": c}, SCHEMA_KEYWORDS, inner),
        st.builds(lambda s, n: {**s, "propertyNames": n}, SCHEMA_KEYWORDS, inner),
        st.builds(lambda s, d: {**s, "dependentSchemas": {"x": d}}, SCHEMA_KEYWORDS, inner),
        st.builds(lambda s, u: {**s, "unevaluatedProperties": u}, SCHEMA_KEYWORDS, st.one_of(st.booleans(), inner)),
    ),
    max_leaves=6,
)


@AGREE
@given(document=REQUEST_SCHEMAS, instance=JSON_VALUES)
def test_random_request_schemas_agree_on_anything(document: dict[str, Any], instance: Any) -> None:
    assert_agree(compile_schema(document), instance)


# --- what cannot be applied ------------------------------------------------------------------------------------------


def test_a_schema_jsonschema_rs_cannot_compile_is_applied_by_jsonschema() -> None:
    """An infinite bound (YAML's `.inf` in a case) is a valid schema to jsonschema, and none to jsonschema-rs."""
    validator = compile_schema({"type": "number", "maximum": math.inf, "minimum": 0})
    assert validator.fast is None
    assert validate(validator, 5) == []
    assert [e.message for e in validate(validator, -1)] == ["must be >= 0; got -1"]


def test_a_broken_schema_is_still_reported_as_one_error() -> None:
    validator = compile_schema({"$ref": "#/$defs/nowhere"})
    assert validator.fast is None
    [error] = validate(validator, 1, "/x")
    assert error.pointer == "/x"
    assert error.message.startswith("the schema cannot be applied, so this cannot be judged: it is broken at /$ref")


def test_a_schema_is_compiled_once_per_distinct_schema() -> None:
    document = {"type": "object", "properties": {"a": {"const": {"x": 1, "y": 2}}}}
    assert compile_schema(document) is compile_schema(copy.deepcopy(document))
    reordered = {"properties": {"a": {"const": {"y": 2, "x": 1}}}, "type": "object"}
    assert compile_schema(reordered) is not compile_schema(document)  # the order shows in its messages
    [error] = validate(compile_schema(reordered), {"a": 1})
    assert error.message == 'must be {"y": 2, "x": 1}; got 1'


def test_the_compiled_schemas_kept_are_bounded() -> None:
    """Fuzzing sends a new schema with every request: the process keeps a bounded number of them compiled."""
    for n in range(300):
        compile_schema({"type": "object", "required": [f"m{n}"]})
    assert 0 < len(schemas._COMPILED) <= schemas._COMPILED_KEPT
    assert validate(compile_schema({"type": "object", "required": ["m299"]}), {})[0].message == (
        "missing required member 'm299'"
    )
