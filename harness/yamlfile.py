"""YAML as plain data plus a side map from JSON pointer to source position, read within `harness.limits`.

Loaded values stay plain dicts and lists (no position-carrying subclasses), so everything downstream treats
them as JSON; error messages look positions up by pointer. Duplicate keys, which PyYAML silently overwrites,
are reported: in a case file they are always a mistake. Every file is read within bounds on its size, on how
many values it holds once aliases are expanded and on how deeply they nest, so that a hostile file (an alias
bomb, a 50 MB case) is refused at once, at its place, instead of taking minutes and gigabytes.

Files are parsed by libyaml where PyYAML has it (several times faster: a catalogue or a recording set loads at
start-up), by PyYAML's own parser otherwise; both give the same data, positions and problems, the pure-Python one
reading again whatever the two might read differently (see `_PARTED` and `unsure`).
"""

from __future__ import annotations

import datetime
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from .errors import HarnessError, Problem
from .limits import DEFAULT_LIMITS, Limits, size
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
_STR = "tag:yaml.org,2002:str"


class _Bounded(Composer, SafeConstructor):
    """PyYAML's composer, composing within `Limits`; the parser beneath it is libyaml's or PyYAML's own.

    PyYAML composes an alias as the very node its anchor names, so a file of a few lines can describe a tree of
    billions of values that only expands when it is walked. Here every node counts as it is composed, an alias
    counts as all the values it stands for and as deep as it reaches, and an alias to a node still being composed
    (a value inside itself) is refused: nothing past a bound is ever built, let alone expanded. The composer stays
    in Python on both parsers so that these bounds hold, event by event, whichever parser reads the text.
    """

    peek_event: Callable[[], yaml.Event]
    dispose: Callable[[], None]

    def bound(self, path: str, limits: Limits) -> None:
        self.path = path
        self.limits = limits
        self.values = 0
        self.depth = 0
        self.measured: dict[int, tuple[int, int]] = {}

    exact = True
    """Whether this loader reads every file as PyYAML's own does, refusals and their places included."""

    def compose(self) -> yaml.Node | None:
        """The document's node tree, composed event by event within the bounds."""
        return self.get_single_node()

    def unsure(self, node: yaml.Node, *, flow: bool) -> bool:
        """Whether PyYAML's own parser may read or place this value (of a flow collection, `{…}` or `[…]`, when
        `flow`) otherwise: then the file is read again by it."""
        return False

    def refuse(self, mark: Any, message: str) -> NoReturn:
        if not self.exact:  # a refusal is worded and placed as PyYAML's own loader does it, whatever the cost
            raise _Unsure
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        raise HarnessError(Problem(path=self.path, message=message, line=line, column=column))

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is PyYAML's to report
                self.count_alias(event, target)
            return super().compose_node(parent, index)
        self.values += 1
        if self.values > self.limits.values:
            self.refuse(
                event.start_mark,
                f"more than {self.limits.values} values in one file (aliases expanded); split it into several files",
            )
        if self.depth >= self.limits.depth:
            self.refuse(
                event.start_mark,
                f"values nested more than {self.limits.depth} deep; a JSON Schema this deep can name its parts "
                "in $defs and $ref them",
            )
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def count_alias(self, event: yaml.Event, target: yaml.Node) -> None:
        alias = f"alias *{getattr(event, 'anchor', '')}"
        if target.end_mark is None:  # a collection gets its end mark once composed: this one is still open
            self.refuse(event.start_mark, f"{alias} refers to a value that contains it; JSON cannot hold that")
        values, height = self.measure(target)
        if self.values + values > self.limits.values:
            self.refuse(
                event.start_mark,
                f"{alias} stands for {values} values, which takes the file past {self.limits.values} values "
                "(aliases expanded): refused unexpanded, as an alias bomb must be; write the values out, or "
                "split the file",
            )
        if self.depth + height > self.limits.depth:
            self.refuse(
                event.start_mark,
                f"{alias} nests values {self.depth + height} deep here, more than {self.limits.depth}",
            )
        self.values += values

    def measure(self, node: yaml.Node) -> tuple[int, int]:
        """How many values a composed node stands for with its aliases expanded, and how deep it reaches.

        Each node is measured once, so an alias bomb costs as little to measure as to read; the recursion is as
        deep as the node, which composing has already kept within the depth bound."""
        if isinstance(node, yaml.ScalarNode):  # most nodes: nothing to remember
            return 1, 1
        known = self.measured.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = list(node.value)
        values, height = 1, 1
        for child in children:
            child_values, child_height = self.measure(child)
            values += child_values
            height = max(height, child_height + 1)
        self.measured[id(node)] = (values, height)
        return values, height


class _Loader(_Bounded, yaml.SafeLoader):
    """The pure-Python loader: what every file is read with when libyaml is missing, and what reports a syntax
    error (its messages and positions are the ones users have always seen)."""

    def __init__(self, text: str, path: str, limits: Limits) -> None:
        yaml.SafeLoader.__init__(self, text)
        self.bound(path, limits)


@cache
def _fast_loader() -> Callable[[str, str, Limits], _Bounded] | None:
    """The loader on libyaml's parser, when PyYAML was built with it (its wheels are): it reads a file several
    times faster than the pure-Python one and gives the same events at the same marks. None without libyaml."""
    try:
        from yaml._yaml import CParser
    except ImportError:
        return None

    class _FastLoader(_Bounded, CParser, Resolver):
        def __init__(self, text: str, path: str, limits: Limits) -> None:
            CParser.__init__(self, text)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)
            self.bound(path, limits)
            self.small = len(text) <= _SMALL

        exact = False

        def compose(self) -> yaml.Node | None:
            if not self.small:
                return self.get_single_node()
            # libyaml's own composer, twice as fast as PyYAML's, builds the whole tree before the bounds can be
            # counted: only for a text too short to build much (aliases stay shared nodes, so a bomb stays small),
            # whose expanded size is then measured; a text past a bound is read again by the pure loader, which
            # refuses it at its place.
            node: yaml.Node | None = CParser.get_single_node(self)
            if node is not None:
                values, height = self.measure(node)  # a value inside itself recurses until RecursionError
                if values > self.limits.values or height > self.limits.depth:
                    raise _Unsure
            return node

        def unsure(self, node: yaml.Node, *, flow: bool) -> bool:
            # Where libyaml and PyYAML part, both for plain (unquoted) values only: they place an empty value
            # (`a:` at the end of the text, `{a: , b: 1}`) differently, and in a flow collection libyaml takes a
            # `?` inside a value (`[Why?]`) where PyYAML refuses it. libyaml says "" for plain, PyYAML None.
            return (
                isinstance(node, yaml.ScalarNode)
                and not node.style
                and (not node.value or (flow and "?" in node.value))
            )

    return _FastLoader


_SMALL = 256 * 1024
"""Characters up to which libyaml composes a whole file at once: every bundled case file and recording, and too few
to build more than a few hundred thousand nodes whatever they hold."""


class _Unsure(yaml.YAMLError):
    """libyaml may have placed a value elsewhere than PyYAML would: the file is read again by the pure loader."""


class _Walker:
    """Builds plain data from PyYAML's node tree, noting where each value and key stands."""

    def __init__(self, loader: _Bounded, path: str) -> None:
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
            if node.flow_style and any(self.loader.unsure(n, flow=True) for n in node.value):
                raise _Unsure
            return [self.walk(item, join(pointer, i)) for i, item in enumerate(node.value)]
        if node.value == "" and self.loader.unsure(node, flow=False):
            raise _Unsure
        # A string, most values, is its text: PyYAML's constructor would give the same after several calls.
        value = node.value if node.tag == _STR else self.construct(node)
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
        if node.flow_style and any(self.loader.unsure(n, flow=True) for pair in node.value for n in pair):
            raise _Unsure
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) and not self.loader.exact:
                raise _Unsure  # a complex key (`? [a, b]`) is refused, in words PyYAML's own nodes give
            if key_node.value == "" and self.loader.unsure(key_node, flow=False):
                raise _Unsure
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


_PIECE = 64 * 1024


def _read_at_most(handle: BinaryIO, count: int) -> bytes:
    """Up to `count` bytes, in one read sized by the file: `read(count)` would first take `count` bytes of memory
    (256 MiB for a recording) whatever the file holds, and a run reads thousands of files. A file whose size is not
    known (a device) or that grows is read on a piece at a time."""
    try:
        known = os.fstat(handle.fileno()).st_size
    except OSError:
        known = 0
    want = min(count, known + 1) if known > 0 else min(count, _PIECE)
    raw = handle.read(want)
    if len(raw) < want or len(raw) >= count:
        return raw
    pieces = [raw]
    left = count - len(raw)
    while left > 0 and (piece := handle.read(min(_PIECE, left))):
        pieces.append(piece)
        left -= len(piece)
    return b"".join(pieces)


def _read(path: Path, limit: int) -> bytes:
    """The file's bytes, never more than `limit` of them read: a file past it is refused by its size alone."""
    try:
        with path.open("rb") as handle:
            raw = _read_at_most(handle, limit + 1)
            if len(raw) <= limit:
                return raw
            try:
                total = path.stat().st_size
            except OSError:
                total = 0
            seen = f"is {size(total)} ({total} bytes), more than" if total > limit else "holds more than"  # a device
    except OSError as exc:
        raise HarnessError(Problem(path=str(path), message=f"cannot read file: {exc.strerror or exc}")) from None
    raise HarnessError(
        Problem(
            path=str(path), message=f"file {seen} the {size(limit)} one YAML file may hold; split it into several files"
        )
    )


def load_yaml(path: str | Path, text: str | None = None, *, limits: Limits = DEFAULT_LIMITS) -> Source:
    """Parse one YAML document within `limits`; raises `HarnessError` naming the file, line and column of any
    syntax error or broken bound."""
    path_str = str(path)
    if text is None:
        raw = _read(Path(path), limits.file_bytes)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise HarnessError(
                Problem(path_str, f"not UTF-8 text (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})")
            ) from None
    elif len(text) > limits.file_bytes // 4 and len(text.encode("utf-8", "surrogatepass")) > limits.file_bytes:
        raise HarnessError(
            Problem(path=path_str, message=f"text is more than the {size(limits.file_bytes)} one YAML file may hold")
        )
    fast = _fast_loader()
    if fast is not None and not _NOT_PRINTABLE.search(text) and not _PARTED.search(text):
        try:
            return _compose(fast(text, path_str, limits), path_str)
        except (yaml.YAMLError, RecursionError):
            pass  # libyaml words a syntax error its own way: the pure-Python loader reports it as it always has
    try:
        loader = _Loader(text, path_str, limits)
    except yaml.reader.ReaderError as exc:  # the reader rejects control characters up front
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        raise HarnessError(
            Problem(path_str, f"invalid YAML: character {exc.character!r} is not allowed", line, column)
        ) from None
    try:
        return _compose(loader, path_str)
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
    except RecursionError:  # not expected within the depth bound; kept so that no input can crash the reader
        raise HarnessError(Problem(path_str, "invalid YAML: nested too deeply")) from None


_NOT_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE
"""What PyYAML's reader refuses up front (control characters, lone surrogates), with the position it reports."""

_PARTED = re.compile(r"\t|\ufeff|[|>][-+0-9]*#|^%|(?:^|[\s\[{,?:-])!(?!!\w+(?:[\s,\]}]|$))", re.MULTILINE)
"""Text that libyaml reads where PyYAML refuses it, or reads otherwise: a tab (libyaml takes one inside a plain
value, as YAML allows), a byte-order mark past the start, a block scalar's `|` or `>` with a comment glued to it
(`|#`), a directive (`%YAML`), a tag other than the standard `!!str` kind (`!.!`, `!`). A file holding one is read
by the pure-Python loader alone, so that it is accepted or refused, and at the same place, whatever the parser;
such files are rare, and only slower to read."""


def _compose(loader: _Bounded, path: str) -> Source:
    """The document `loader` reads, walked into plain data and positions; YAML errors are left to the caller."""
    try:
        node = loader.compose()
        if node is None:
            return Source(path, None, {})
        walker = _Walker(loader, path)
        data = walker.walk(node, "")
    finally:
        loader.dispose()
    if walker.problems:
        raise HarnessError(walker.problems)
    return Source(path, data, walker.positions, walker.keys)
