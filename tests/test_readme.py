"""The README's printed output is what the bundled recordings really give, so a newcomer sees what they read.

Each printed block in README.md is preceded by `<!-- output of: harness ARGS -->`. The test runs that command
from an empty folder (so the bundled catalogue and recordings are used) and requires every line of the block,
other than `...`, to appear in the output in the same order; a line that ends in `...` was cut there, and
matches a printed line that starts with what comes before. Paths into the installed package are written
`.../harness/...` in the README; run ids and durations are masked on both sides.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from harness.cli import main
from harness.resources import bundled

README = Path(__file__).resolve().parent.parent / "README.md"
MARKER = re.compile(r"<!-- output of: harness (?P<args>[^>]*?) -->\n```text\n(?P<block>.*?)\n```", re.S)
PACKAGE_ROOT = str(bundled("cases").parent.parent.parent)


def _blocks() -> list[tuple[str, list[str]]]:
    return [(m["args"], m["block"].splitlines()) for m in MARKER.finditer(README.read_text(encoding="utf-8"))]


def _normal(line: str) -> str:
    line = line.replace(PACKAGE_ROOT, "...").rstrip()
    line = re.sub(r"\d{8}-\d{6}", "<run-id>", line)
    line = re.sub(r" in \d+\.\ds\b", " in <t>s", line)
    rule = re.fullmatch(r"[─=]+ (.*?) [─=]+", line)
    return rule[1] if rule else line


def test_the_readme_marks_its_printed_blocks() -> None:
    assert len(_blocks()) >= 3


@pytest.mark.parametrize(("args", "block"), _blocks(), ids=[args for args, _ in _blocks()])
def test_a_printed_block_is_what_the_command_prints(
    args: str, block: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    main(shlex.split(args))
    printed = [_normal(line) for line in capsys.readouterr().out.splitlines()]
    position = 0
    for wanted in (_normal(line) for line in block if line.strip() != "..."):
        cut = wanted.endswith("...")
        found = [
            i
            for i in range(position, len(printed))
            if (printed[i].startswith(wanted[:-3]) if cut else printed[i] == wanted)
        ]
        if not found:
            shown = "\n".join(printed)
            pytest.fail(f"README line not printed (in this order) by `harness {args}`:\n{wanted}\n\nprinted:\n{shown}")
        position = found[0] + 1
