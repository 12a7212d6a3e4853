"""YAML loading: plain data, positions by JSON pointer, and every way a file can be broken named precisely.

Every file is read within `harness.limits`: past a bound (size, values with aliases expanded, nesting), the file
is refused at once, at its place, naming the bound; within them, files load as before.

Every test runs on both parsers: libyaml's (what PyYAML's wheels bring) and PyYAML's own (what is left without it),
and the two must give the same data, the same positions and the same problems for any text.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import pytest
from _pytest.monkeypatch import MonkeyPatch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness import yamlfile
from harness.errors import HarnessError
from harness.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_VALUES, RECORDING_LIMITS, Limits
from harness.resources import bundled
from harness.yamlfile import Source, load_yaml

FAST = yamlfile._fast_loader


@pytest.fixture(autouse=True, params=["libyaml", "pure"])
def parser(request: pytest.FixtureRequest, monkeypatch: MonkeyPatch) -> str:
    """Each test once on libyaml's parser and once on PyYAML's own, as where PyYAML was built without libyaml."""
    if request.param == "pure":
        monkeypatch.setattr(yamlfile, "_fast_loader", lambda: None)
    elif FAST() is None:
        pytest.skip("PyYAML was built without libyaml here")
    return str(request.param)


DOCUMENT = """\
id: text-basic
request:
  model: ${model}
  messages:
    - role: user
      content: "Say hello."
    - {role: assistant, content: hi}
tags: [text, core]
"""


def write(tmp_path: Path, text: str | bytes, name: str = "doc.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def only_problem(exc: pytest.ExceptionInfo[HarnessError]) -> str:
    assert len(exc.value.problems) == 1, exc.value.problems
    return str(exc.value.problems[0])


@pytest.mark.parametrize(
    ("pointer", "position"),
    [
        ("", (1, 1)),
        ("/id", (1, 5)),
        ("/request", (3, 3)),
        ("/request/model", (3, 10)),
        ("/request/messages/0", (5, 7)),
        ("/request/messages/0/content", (6, 16)),
        ("/request/messages/1/role", (7, 14)),
        ("/tags/1", (8, 14)),
    ],
)
def test_positions_of_values_by_pointer(tmp_path: Path, pointer: str, position: tuple[int, int]) -> None:
    source = load_yaml(write(tmp_path, DOCUMENT))
    assert source.locate(pointer) == position


def test_locate_falls_back_to_the_nearest_parent(tmp_path: Path) -> None:
    source = load_yaml(write(tmp_path, DOCUMENT))
    assert source.locate("/request/messages/0/name") == (5, 7)
    assert source.locate("/nowhere/at/all") == (1, 1)


def test_data_is_plain_json(tmp_path: Path) -> None:
    source = load_yaml(write(tmp_path, DOCUMENT))
    assert type(source.data) is dict and type(source.data["request"]["messages"]) is list
    assert source.data["request"]["messages"][1] == {"role": "assistant", "content": "hi"}


def test_problem_carries_file_line_column_and_pointer(tmp_path: Path) -> None:
    path = write(tmp_path, DOCUMENT)
    problem = load_yaml(path).problem("/request/model", "bad model")
    assert str(problem) == f"{path}:3:10: /request/model: bad model"


def test_duplicate_key_is_reported_at_the_second_key(tmp_path: Path) -> None:
    path = write(tmp_path, "id: a\nrequest:\n  model: m\n  temperature: 0\n  model: n\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    problem = exc.value.problems[0]
    assert (problem.path, problem.line, problem.column, problem.pointer) == (str(path), 5, 3, "/request/model")
    assert "duplicate key 'model'" in problem.message


def test_every_duplicate_key_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "a: 1\na: 2\nb:\n  c: 1\n  c: 2\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    assert [(p.line, p.column) for p in exc.value.problems] == [(2, 1), (5, 3)]


def test_duplicate_key_through_a_merge_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "base: &b {x: 1}\nother:\n  <<: *b\n  x: 2\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    assert only_problem(exc).startswith(f"{path}:4:3: /other/x: duplicate key 'x'")


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("a: [1, 2\n", 2, 1),
        ("a: b\n  c: d\n", 2, 4),
        ("a: 'unterminated\n", 2, 1),
        ("a:\n\tb: 1\n", 2, 1),
        ("--- a\n--- b\n", 2, 1),
    ],
)
def test_syntax_error_gives_file_line_column(tmp_path: Path, text: str, line: int, column: int) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    message = only_problem(exc)
    assert message.startswith(f"{path}:{line}:{column}: invalid YAML: "), message
    assert "Traceback" not in message and "<unicode string>" not in message


def test_non_utf8_file(tmp_path: Path) -> None:
    path = write(tmp_path, "id: caf\xe9\n".encode("latin-1"))
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    assert only_problem(exc) == f"{path}: not UTF-8 text (byte 7: b'\\xe9')"


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert load_yaml(write(tmp_path, "\ufeffid: a\n")).data == {"id": "a"}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HarnessError) as exc:
        load_yaml(tmp_path / "absent.yaml")
    assert only_problem(exc).startswith(f"{tmp_path / 'absent.yaml'}: cannot read file")


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file_is_none(tmp_path: Path, text: str) -> None:
    assert load_yaml(write(tmp_path, text)).data is None


def test_dates_stay_strings(tmp_path: Path) -> None:
    text = "day: 2024-01-01\nwhen: 2024-01-01T10:00:00Z\nlist: [2001-12-14]\nquoted: '2024-01-01'\n"
    assert load_yaml(write(tmp_path, text)).data == {
        "day": "2024-01-01",
        "when": "2024-01-01T10:00:00Z",
        "list": ["2001-12-14"],
        "quoted": "2024-01-01",
    }


def test_keys_that_are_not_strings(tmp_path: Path) -> None:
    assert load_yaml(write(tmp_path, "1: one\n")).data == {"1": "one"}
    path = write(tmp_path, "? [a]\n: b\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    assert "mapping keys must be strings" in only_problem(exc)


def test_self_referencing_alias_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HarnessError):
        load_yaml(write(tmp_path, "a: &x [*x]\n"))


def test_unknown_tag_is_an_error_not_code(tmp_path: Path) -> None:
    path = write(tmp_path, "a: !!python/name:os.system x\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    assert only_problem(exc).startswith(f"{path}:1:4: invalid YAML")


@pytest.mark.parametrize(("value", "kind"), [("!!binary aGVsbG8=", "binary"), (".nan", "float"), ("-.inf", "float")])
def test_values_that_are_not_json_are_errors(tmp_path: Path, value: str, kind: str) -> None:
    """Requests are sent as JSON, so a YAML-only value (bytes, NaN, infinity) is a case-file problem, not a crash."""
    path = write(tmp_path, f"a: {value}\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    message = only_problem(exc)
    assert message.startswith(f"{path}:1:4: /a: "), message
    assert f"({kind}) is not a JSON value" in message


def test_a_set_loads_as_json(tmp_path: Path) -> None:
    data = load_yaml(write(tmp_path, "a: !!set {x, y}\nb: !!omap [k: 1]\n")).data
    assert json.loads(json.dumps(data)) == {"a": {"x": None, "y": None}, "b": [{"k": 1}]}


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [("id: a\x1f\n", 1, 6), ('id: a\nrequest: {model: "a\x1fb"}\n', 2, 20), ("\x00", 1, 1)],
)
def test_control_character_gives_file_line_column(tmp_path: Path, text: str, line: int, column: int) -> None:
    path = write(tmp_path, text)
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    assert only_problem(exc).startswith(f"{path}:{line}:{column}: invalid YAML: "), only_problem(exc)


@pytest.mark.parametrize("value", ["!!int abc", "!!float abc", "!!timestamp 2024-13-45", "!!timestamp x"])
def test_bad_explicit_tag_is_a_harness_error(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, f"a: {value}\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    message = only_problem(exc)
    assert message.startswith(f"{path}:1:4: /a: invalid value"), message


# --- bounded input: refused past a limit, at its place, quickly and in little memory -------------------------------


def billion_laughs(levels: int = 9) -> str:
    """The classic alias bomb: nine levels of nine aliases stand for 9**9 (387 million) strings in 500 bytes."""
    lines = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for level in range(1, levels):
        name, previous = chr(ord("a") + level), chr(ord("a") + level - 1)
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_unexpanded_at_the_alias(tmp_path: Path) -> None:
    path = write(tmp_path, billion_laughs())
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(HarnessError) as exc:
            load_yaml(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 20
    assert peak < 50 * 1024 * 1024, f"{peak} bytes: the bomb was expanded"
    message = only_problem(exc)
    assert message.startswith(f"{path}:6:8: alias *e stands for 66430 values"), message
    assert f"past {MAX_VALUES} values (aliases expanded)" in message and "alias bomb" in message


def test_aliases_within_the_limit_load_expanded(tmp_path: Path) -> None:
    text = "base: &hi {role: user, content: hi}\nmessages: [*hi, *hi]\nmerged: {<<: *hi, name: me}\n"
    data = load_yaml(write(tmp_path, text)).data
    assert data["messages"] == [{"role": "user", "content": "hi"}] * 2
    assert data["merged"] == {"role": "user", "content": "hi", "name": "me"}


def test_the_values_limit_counts_keys_and_alias_expansions(tmp_path: Path) -> None:
    limits = Limits(values=10)
    assert load_yaml(write(tmp_path, "a: [1, 2, 3, 4, 5, 6, 7]\n"), limits=limits).data  # 10 with the key and root
    with pytest.raises(HarnessError) as exc:
        load_yaml(write(tmp_path, "a: [1, 2, 3, 4, 5, 6, 7, 8]\n"), limits=limits)
    assert only_problem(exc).startswith(f"{tmp_path / 'doc.yaml'}:1:26: more than 10 values in one file")
    with pytest.raises(HarnessError) as exc:
        load_yaml(write(tmp_path, "a: &x [1, 2, 3]\nb: *x\n"), limits=limits)  # 7 values, and 4 more
    assert only_problem(exc).startswith(f"{tmp_path / 'doc.yaml'}:2:4: alias *x stands for 4 values")


def test_a_value_inside_itself_is_refused_at_the_alias(tmp_path: Path) -> None:
    path = write(tmp_path, "a: &x {b: [1, *x]}\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    assert only_problem(exc) == f"{path}:1:15: alias *x refers to a value that contains it; JSON cannot hold that"


def test_nesting_is_bounded_and_the_bound_itself_loads(tmp_path: Path) -> None:
    deepest = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    data = load_yaml(write(tmp_path, deepest)).data
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []
    path = write(tmp_path, "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    with pytest.raises(HarnessError) as exc:
        load_yaml(path)
    assert only_problem(exc).startswith(f"{path}:1:{MAX_DEPTH + 1}: values nested more than {MAX_DEPTH} deep")


def test_nesting_through_an_alias_counts_as_deep_as_it_reaches(tmp_path: Path) -> None:
    limits = Limits(depth=5)
    assert load_yaml(write(tmp_path, "a: &x [[1]]\nb: [*x]\n"), limits=limits).data["b"] == [[[1]]]
    path = write(tmp_path, "a: &x [[1]]\nb: [[*x]]\n")
    with pytest.raises(HarnessError) as exc:
        load_yaml(path, limits=limits)
    assert only_problem(exc) == f"{path}:2:6: alias *x nests values 6 deep here, more than 5"


def test_a_file_past_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.case.yaml"
    with path.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: 50 MiB that cost nothing to write
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(HarnessError) as exc:
            load_yaml(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 20 and peak < 2 * MAX_FILE_BYTES
    assert only_problem(exc) == (
        f"{path}: file is 50 MiB (52428800 bytes), more than the 8 MiB one YAML file may hold; split it into several "
        "files"
    )


def test_the_size_limit_is_exact(tmp_path: Path) -> None:
    limits = Limits(file_bytes=16)
    assert load_yaml(write(tmp_path, "a: 1234567890123"), limits=limits).data == {"a": 1234567890123}
    with pytest.raises(HarnessError) as exc:
        load_yaml(write(tmp_path, "a: 12345678901234"), limits=limits)
    assert "file is 17 bytes (17 bytes), more than the 16 bytes" in only_problem(exc)
    with pytest.raises(HarnessError):
        load_yaml("given.yaml", "a: 12345678901234", limits=limits)


# --- the loader never fails with anything but a HarnessError -------------------------------------------------

_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],  # one file, overwritten
)


def _load_never_crashes(path: Path) -> None:
    try:
        result = load_yaml(path)
    except HarnessError as exc:
        assert exc.problems and all(p.path == str(path) for p in exc.problems)
    else:
        assert isinstance(result, Source)
        json.dumps(result.data, allow_nan=False)  # what a case holds can be sent


@_SETTINGS
@given(text=st.text())
@example(text="id: a\x1f\n")
@example(text="a: !!binary aGVsbG8=\n")
def test_random_text_gives_a_source_or_a_harness_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "random.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    _load_never_crashes(path)


@_SETTINGS
@given(data=st.binary())
@example(data=b"\x00")
@example(data=b"\xef\xbb\xbf\x1f")
def test_random_bytes_give_a_source_or_a_harness_error(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.yaml"
    path.write_bytes(data)
    _load_never_crashes(path)


@_SETTINGS
@given(text=st.text(alphabet=st.sampled_from(list("ab1:-[]{}&*!?|>'\"#%@`,.\n \t~<=\\/")), max_size=40))
def test_random_yaml_punctuation_gives_a_source_or_a_harness_error(tmp_path: Path, text: str) -> None:
    """Text made of YAML's own punctuation reaches far more of the parser than arbitrary characters do."""
    path = tmp_path / "random.yaml"
    path.write_text(text, encoding="utf-8")
    _load_never_crashes(path)


# --- libyaml's parser and PyYAML's own read every text alike --------------------------------------------------


SMALL = Limits(values=300, depth=8)  # so that random texts reach the bounds too


def _outcome(text: str, *, fast: bool, limits: Limits = SMALL) -> object:
    saved = yamlfile._fast_loader
    yamlfile._fast_loader = FAST if fast else (lambda: None)
    try:
        source = load_yaml("given.yaml", text, limits=limits)
    except HarnessError as exc:
        return [str(p) for p in exc.problems]
    finally:
        yamlfile._fast_loader = saved
    return (source.data, source.positions, source.key_positions)


@pytest.mark.parametrize(
    "text",
    [
        "a: {b: , c: 1}\n",  # an empty value in braces: libyaml would place it at the comma
        "a: [b: ]\n",
        "a: {? , b: c}\n",
        "a: [Why?]\n",  # libyaml takes a `?` in a plain value in brackets, PyYAML refuses it
        "a: {b: c?d}\n",
        "title: one\ttab\n",  # libyaml takes a tab inside a plain value, PyYAML refuses it
        "a: |#\n  x\n",  # libyaml takes a comment glued to a block scalar's header
        "a: 1\n\ufeff",  # and a byte-order mark past the start
        "? a",  # an empty value at the end of the text: placed differently too
        "!.!\n- a\n",  # libyaml takes tag handles PyYAML refuses
        "--- !:!map\na: 1\n",
        "? ? !\n",
        "%YAML 1.1#\n--- a\n",  # and directives
        "? [a, b]\n: c\n",  # a complex key
        "a: [1, , 2]\n",
        "a: *nowhere\n",
        "a: [" + "[" * 10 + "x?" + "]" * 11 + "\n",  # past the depth bound, with a `?` PyYAML stops at first
    ],
)
def test_where_the_parsers_part_the_file_reads_as_pyyaml_reads_it(parser: str, text: str) -> None:
    assert _outcome(text, fast=True) == _outcome(text, fast=False)


def test_every_bundled_file_reads_alike_on_both_parsers(parser: str) -> None:
    if parser == "pure":
        pytest.skip("compares the two parsers: once is enough")
    root = bundled("cases").parent
    paths = sorted(path for path in root.rglob("*.yaml") if path.is_file())
    assert len(paths) > 50
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert _outcome(text, fast=True, limits=RECORDING_LIMITS) == _outcome(
            text, fast=False, limits=RECORDING_LIMITS
        ), path


_PIECES = [*"ab1:-[]{}&*!?|>'\"#%@`,.\n \t~<=\\/\r\x85\u2028é𝄞", "- ", ": ", "\n  ", "? ", "!!str ", "&a ", "*a"]


@_SETTINGS
@given(text=st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_libyaml_and_pyyaml_give_the_same_source_or_the_same_problems(parser: str, text: str) -> None:
    if parser == "pure":
        pytest.skip("compares the two parsers: once is enough")
    assert _outcome(text, fast=True) == _outcome(text, fast=False)
