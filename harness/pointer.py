"""JSON pointers (RFC 6901): the one way findings, positions and expectations name a place in a document."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["MISSING", "join", "resolve", "split"]


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def join(*parts: str | int | Iterable[str | int]) -> str:
    """`join("/response/body", "choices", 0)` -> `/response/body/choices/0`; a leading pointer is kept as is."""
    # Called for every value a YAML file holds and for every member a check looks at: the plain key, which needs no
    # escaping, takes the shortest path.
    out = ""
    for part in parts:
        if isinstance(part, str):
            if not part or part[0] == "/":
                out += part
            elif "~" in part or "/" in part:
                out += "/" + part.replace("~", "~0").replace("/", "~1")
            else:
                out += "/" + part
        elif isinstance(part, int):
            out += "/" + str(part)
        else:
            for item in part:
                out += "/" + str(item).replace("~", "~0").replace("/", "~1")
    return out


def split(pointer: str) -> list[str]:
    if not pointer:
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"a JSON pointer starts with '/', got {pointer!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def resolve(document: Any, pointer: str) -> Any:
    """The value at `pointer`, or `MISSING` when there is none (never raises for an absent member)."""
    node = document
    for token in split(pointer):
        if isinstance(node, dict):
            if token not in node:
                return MISSING
            node = node[token]
        elif isinstance(node, list):
            if not token.isdigit() or int(token) >= len(node):
                return MISSING
            node = node[int(token)]
        else:
            return MISSING
    return node
