"""YAML as plain data plus a side map from JSON pointer to source position.

Loaded values stay plain dicts and lists (no position-carrying subclasses), so everything downstream treats
them as JSON; error messages look positions up by pointer. Duplicate keys, which PyYAML silently overwrites,
are reported: in a case file they are always a mistake.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import HarnessError, Problem
from .pointer import join

__all__ = ["Source", "load_yaml"]


@dataclass(frozen=True, slots=True)
class Source:
    """A loaded YAML document and where each of its values came from (1-based line and column)."""

    path: str
    data: Any
    positions: dict[str, tuple[int, int]] = field(default_factory=dict)
    key_positions: dict[str, tuple[int, int]] = field(default_factory=dict)

    def locate(self, pointer: str) -> tuple[int, int] | None:
        """Position of the value at `pointer`, or of its nearest parent that has one."""
        while True:
            if pointer in self.positions:
                return self.positions[pointer]
            if not pointer:
                return None
            pointer = pointer.rsplit("/", 1)[0]

    def problem(self, pointer: str, message: str, *, at_key: bool = False) -> Problem:
        """A problem located at the value at `pointer` (or at its key, for problems with the key itself)."""
        line_col = self.key_positions.get(pointer) if at_key else None
        line_col = line_col or self.locate(pointer)
        line, col = line_col if line_col else (None, None)
        return Problem(self.path, message, line, col, pointer)


_JSON_SCALARS = (str, int, float, bool, type(None), datetime.date)


class _Loader(yaml.SafeLoader):
    pass


class _Walker:
    """Builds plain data from PyYAML's node tree, noting where each value and key stands."""

    def __init__(self, loader: _Loader, path: str) -> None:
        self.loader = loader
        self.path = path
        self.positions: dict[str, tuple[int, int]] = {}
        self.keys: dict[str, tuple[int, int]] = {}
        self.problems: list[Problem] = []

    def problem(self, node: yaml.Node, pointer: str, message: str) -> None:
        mark = node.start_mark
        self.problems.append(Problem(self.path, message, mark.line + 1, mark.column + 1, pointer))

    def construct(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            return exc  # e.g. `!!int abc`

    def walk(self, node: yaml.Node, pointer: str) -> Any:
        self.positions[pointer] = (node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, pointer)
        if isinstance(node, yaml.SequenceNode):
            return [self.walk(item, join(pointer, i)) for i, item in enumerate(node.value)]
        value = self.construct(node)
        if isinstance(value, Exception):
            self.problem(node, pointer, f"invalid value {node.value!r} for tag {node.tag}: {value}")
            return None
        if (isinstance(value, float) and not math.isfinite(value)) or not isinstance(value, _JSON_SCALARS):
            kind = node.tag.rsplit(":", 1)[-1]
            self.problem(node, pointer, f"{node.value!r} ({kind}) is not a JSON value; quote it to send it as a string")
            return None
        if isinstance(value, datetime.date):
            # YAML turns 2024-01-01 into a date; requests are JSON, so keep what the user wrote.
            return node.value
        return value

    def mapping(self, node: yaml.MappingNode, pointer: str) -> dict[str, Any]:
        self.loader.flatten_mapping(node)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct(key_node)
            if not isinstance(key, str | int | float | bool) or key is None:
                self.problem(key_node, pointer, f"mapping keys must be strings, got {key_node.value!r}")
                continue
            key = key if isinstance(key, str) else str(key)
            child = join(pointer, key)
            self.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                self.problem(key_node, child, f"duplicate key {key!r} (the earlier value would be lost)")
            result[key] = self.walk(value_node, child)
        return result


def load_yaml(path: str | Path, text: str | None = None) -> Source:
    """Parse one YAML document; raises `HarnessError` naming the file, line and column of any syntax error."""
    path_str = str(path)
    if text is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            raise HarnessError(Problem(path_str, f"cannot read file: {exc.strerror or exc}")) from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HarnessError(
                Problem(path_str, f"not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})")
            ) from None
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:  # the reader rejects control characters up front
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        raise HarnessError(
            Problem(path_str, f"invalid YAML: character {exc.character!r} is not allowed", line, column)
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return Source(path_str, None, {})
        walker = _Walker(loader, path_str)
        data = walker.walk(node, "")
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = " ".join(str(m) for m in (exc.context, exc.problem) if m) or "invalid YAML"
        raise HarnessError(
            Problem(
                path_str, f"invalid YAML: {message}", mark.line + 1 if mark else None, mark.column + 1 if mark else None
            )
        ) from None
    except yaml.YAMLError as exc:
        raise HarnessError(Problem(path_str, f"invalid YAML: {exc}")) from None
    except RecursionError:
        raise HarnessError(Problem(path_str, "invalid YAML: nested too deeply")) from None
    finally:
        loader.dispose()
    if walker.problems:
        raise HarnessError(walker.problems)
    return Source(path_str, data, walker.positions, walker.keys)
