"""JSON pointers: joining parts escapes `~` and `/` (RFC 6901) and keeps a leading pointer as it is."""

from __future__ import annotations

import enum

import pytest

from harness.pointer import join, resolve, split


class _Kind(enum.StrEnum):
    ROOTED = "/x"
    SLASHED = "b/c"


@pytest.mark.parametrize(
    ("parts", "pointer"),
    [
        (("/response/body", "choices", 0), "/response/body/choices/0"),
        (("", "id"), "/id"),
        (("/a", ""), "/a"),  # an empty part adds nothing
        (("/a", "/b/c"), "/a/b/c"),  # a part that is already a pointer is kept as it is
        (("/r", "a~b/c"), "/r/a~0b~1c"),
        (("/a", ["b", 1, "c/d"]), "/a/b/1/c~1d"),
        (("/a", ("x", "~")), "/a/x/~0"),
        (("/a", True), "/a/True"),
        (("/a", _Kind.ROOTED), "/a/x"),
        (("/a", _Kind.SLASHED), "/a/b~1c"),
        ((), ""),
    ],
)
def test_join(parts: tuple[object, ...], pointer: str) -> None:
    assert join(*parts) == pointer  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["plain", "a/b", "~", "~1", "a~/b"])
def test_a_joined_key_splits_back_and_resolves(key: str) -> None:
    pointer = join("/top", key)
    assert split(pointer) == ["top", key]
    assert resolve({"top": {key: 1}}, pointer) == 1
