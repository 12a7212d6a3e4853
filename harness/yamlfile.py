"""YAML as plain data plus a side map from JSON pointer to source position.

Loaded values stay plain dicts and lists (no position-carrying subclasses), so everything downstream treats
them as JSON; error messages look positions up by pointer. Duplicate keys, which PyYAML silently overwrites,
are reported: in a case file they are always a mistake.
"""

from __future__ import annotations

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


class _Loader(yaml.SafeLoader):
    pass


def _walk(
    loader: _Loader,
    node: yaml.Node,
    pointer: str,
    positions: dict[str, tuple[int, int]],
    problems: list[Problem],
    path: str,
    keys: dict[str, tuple[int, int]],
) -> Any:
    positions[pointer] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            try:
                key = loader.construct_object(key_node, deep=True)
            except (ValueError, TypeError, AttributeError, OverflowError, yaml.constructor.ConstructorError):
                key = None
            if not isinstance(key, str | int | float | bool) or key is None:
                problems.append(
                    Problem(
                        path,
                        f"mapping keys must be strings, got {key!r}",
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        pointer,
                    )
                )
                continue
            key = str(key) if not isinstance(key, str) else key
            child = join(pointer, key)
            keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key in result:
                problems.append(
                    Problem(
                        path,
                        f"duplicate key {key!r} (the earlier value would be lost)",
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        child,
                    )
                )
            result[key] = _walk(loader, value_node, child, positions, problems, path, keys)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, item, join(pointer, i), positions, problems, path, keys) for i, item in enumerate(node.value)]
    try:
        value = loader.construct_object(node, deep=True)
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:  # e.g. `!!int abc`
        problems.append(Problem(path, f"invalid value {node.value!r} for tag {node.tag}: {exc}",
                                node.start_mark.line + 1, node.start_mark.column + 1, pointer))
        return None
    if hasattr(value, "isoformat"):
        # YAML turns 2024-01-01 into a date; requests are JSON, so keep what the user wrote.
        value = node.value
    return value


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
    loader = _Loader(text)
    problems: list[Problem] = []
    try:
        node = loader.get_single_node()
        if node is None:
            return Source(path_str, None, {})
        positions: dict[str, tuple[int, int]] = {}
        keys: dict[str, tuple[int, int]] = {}
        data = _walk(loader, node, "", positions, problems, path_str, keys)
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
    if problems:
        raise HarnessError(problems)
    return Source(path_str, data, positions, keys)
