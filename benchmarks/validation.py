"""P4: the cost of validating one object against a bundled schema, every error kept with its JSON pointer.

The harness's validation as its checks call it (`harness.schemas.validate` with the compiled bundled schema, for a
response body and for a stream chunk, conformant and with three errors), against jsonschema-rs (`jsonschema_rs`, which
the harness itself decides validity with) alone doing the same: every error collected with its instance pointer,
message and schema path.
Measured in this process, compiled once, per object (the harness follows each schema path jsonschema-rs reports
once per schema, as it does in a run). Target: within 2x jsonschema-rs.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from typing import Any

from .common import Comparison, Row, Settings, available, median_of
from .endpoint import answers

__all__ = ["run"]

NAME = "P4"
TITLE = "schema validation per object"
TARGET = 2.0


def _objects() -> dict[str, tuple[str, Any]]:
    """name: (bundled schema, object): the local endpoint's own answers, and each broken in three places."""
    plain, streamed = answers(created=1)
    body = json.loads(plain.partition(b"\r\n\r\n")[2])
    chunk = json.loads(streamed.split(b"data: ", 2)[1].split(b"\n", 1)[0])
    broken_body = copy.deepcopy(body)
    broken_body["created"], broken_body["choices"][0]["index"] = "now", "0"
    del broken_body["model"]
    broken_chunk = copy.deepcopy(chunk)
    broken_chunk["created"], broken_chunk["choices"][0]["index"] = "now", "0"
    del broken_chunk["id"]
    return {
        "response": ("chat-completion", body),
        "response, 3 errors": ("chat-completion", broken_body),
        "chunk": ("chat-completion-chunk", chunk),
        "chunk, 3 errors": ("chat-completion-chunk", broken_chunk),
    }


def _harness(schema_name: str) -> Callable[[Any], int]:
    from harness import schemas

    validator = schemas.schema(schema_name)
    return lambda instance: len(schemas.validate(validator, instance, "/response/body"))


def _jsonschema_rs(schema_name: str) -> Callable[[Any], int]:
    import jsonschema_rs

    from harness.resources import bundled

    document = json.loads((bundled("schemas") / f"{schema_name}.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema_rs.validator_for(document, validate_formats=True)

    def validate(instance: Any) -> int:
        errors = sorted(
            (
                "/response/body" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in e.instance_path),
                e.message,
                "/" + "/".join(map(str, e.schema_path)),
            )
            for e in validator.iter_errors(instance)
        )
        return len(errors)

    return validate


def _per_object(validate: Callable[[Any], int], instance: Any, repeat: int) -> dict[str, float]:
    started = time.perf_counter()
    for _ in range(repeat):
        validate(instance)
    return {"us": (time.perf_counter() - started) / repeat * 1e6}


def run(settings: Settings) -> list[Row]:
    rounds = settings.rounds_for(full=5, quick=2)
    repeat = 100 if settings.quick else 1000
    rows = []
    for name, (schema_name, instance) in _objects().items():
        mine = _harness(schema_name)
        steps = [("harness", lambda v=mine, i=instance: _per_object(v, i, repeat))]
        errors = {"harness": mine(instance)}
        if available("jsonschema_rs"):
            rs = _jsonschema_rs(schema_name)
            errors["jsonschema-rs"] = rs(instance)
            steps.append(("jsonschema-rs", lambda v=rs, i=instance: _per_object(v, i, repeat * 10)))
        median = median_of(rounds, steps)
        us = median["harness"]["us"]
        comparisons: tuple[Comparison, ...] = ()
        if "jsonschema-rs" in median:
            baseline = median["jsonschema-rs"]["us"]
            comparisons = (
                Comparison(
                    baseline="jsonschema-rs, all errors",
                    shown=f"{baseline:.2f} µs",
                    ratio=us / baseline,
                    target=("<=", TARGET),
                ),
            )
        note = ""
        if "jsonschema-rs" not in errors:
            note = "no baseline: jsonschema_rs, a dependency, cannot be imported"
        elif errors["harness"] != errors["jsonschema-rs"]:
            note = f"errors found: harness {errors['harness']}, jsonschema-rs {errors['jsonschema-rs']}"
        rows.append(
            Row(
                bench=NAME,
                measure=f"validate a {name} ({schema_name} schema)",
                figure=f"{us:.1f} µs",
                comparisons=comparisons,
                note=note,
                rounds=rounds,
            )
        )
    return rows
