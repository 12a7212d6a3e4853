"""Reading JSON an endpoint sent within the nesting bound: what `json.loads` reads, read the same, only faster."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import bounded
from harness.bounded import MAX_NESTING, TooDeep, loads


def _deep(levels: int, filler: int = 0) -> str:
    """Arrays `levels` deep, beside `filler` empty objects at the top (brackets that add no depth)."""
    return "[" * levels + "]" * (levels - 1) + ",{}" * filler + "]"


@pytest.mark.parametrize(
    "text",
    [
        '{"id": "chatcmpl-1", "choices": [{"delta": {"content": "hi"}}]}',
        _deep(MAX_NESTING),
        _deep(2, filler=1000),  # more brackets than the bound, yet shallow: walked, and read
        "[1, 2.5, null, true]",
    ],
)
def test_what_is_within_the_bound_reads_as_json_loads_reads_it(text: str) -> None:
    assert loads(text) == json.loads(text)
    assert loads(text.encode()) == json.loads(text)


@pytest.mark.parametrize("text", [_deep(MAX_NESTING + 1), _deep(MAX_NESTING + 1, filler=10), _deep(100_000)])
def test_what_nests_past_the_bound_is_too_deep(text: str) -> None:
    with pytest.raises(TooDeep):
        loads(text)


def test_a_document_with_fewer_brackets_than_the_bound_is_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[Any] = []
    real = bounded.nesting
    monkeypatch.setattr(bounded, "nesting", lambda value, stop=None: walked.append(value) or real(value, stop))
    loads('{"a": [{"b": 1}]}')
    assert walked == []
    loads(_deep(3, filler=MAX_NESTING))
    assert len(walked) == 1


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('\ufeff{"a": 1}', "Unexpected UTF-8 BOM"),
        ('{"a": NaN}', "NaN is not JSON"),
        ('{"a": 1', "Expecting"),
        ("", "Expecting value"),
    ],
)
def test_what_is_not_json_raises_value_error_saying_why(text: str, said: str) -> None:
    with pytest.raises(ValueError, match=said):
        loads(text)


def test_constants_and_shared_strings_are_options() -> None:
    assert loads('{"a": Infinity}', constants=True) == {"a": float("inf")}
    first, second = (loads('{"model": "m-' + "x" * 8 + '"}', shared=True) for _ in range(2))
    assert first == second and first["model"] is second["model"]
    assert next(iter(first)) is next(iter(second))
