"""The console: progress while a run goes, then failures and a summary, in the shape of pytest's output.

On a terminal rich draws a progress bar, with each failure's first line above it, and the tables. Into a pipe or
a CI log the console writes plain lines straight to the file, a line per case as it finishes: rich's rendering
costs about a millisecond a line, which over thousands of cases was a good part of a replayed run. Colour there
is only what `--color always` asks for (a CI log viewer that renders ANSI codes), written as the few escape
codes it needs. Either way the summary table holds every case of a small run, and of a larger one only the
cases that did not pass, with a count of the rest: `summary.md` has every row. Inside GitHub Actions the
console also annotates each failing case's file and adds the summary to the job's page.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal, TextIO, get_args

from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..events import ResultReady, RunFinished, RunStarted
from ..models import Severity, Verdict
from ..support import SupportMatrix
from .digest import Digest, Digests
from .failure import headline
from .files import render_summary
from .github import annotation, append_step_summary, in_actions
from .info import RunInfo
from .support import LEGEND, cell_text, contradiction_lines

__all__ = ["COLORS", "TABLE_LIMIT", "Color", "Console"]

Color = Literal["auto", "always", "never"]
COLORS: tuple[Color, ...] = get_args(Color)
TABLE_LIMIT = 50  # rows of the summary table: a run with more shows only its cases that did not pass, this many

_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "red", Verdict.ERROR: "magenta", Verdict.SKIP: "yellow"}
# The ANSI codes of the styles above, as rich writes them in its 16 colours, for coloured plain output.
_ANSI = {"red": "31", "green": "32", "yellow": "33", "magenta": "35", "bold": "1"}
_HEAD = ("case", "endpoint", "verdict", "status", "ms", "ttft", "tokens", "findings")


class Console:
    """Reports a run as it happens, as a handler of the engine's events: progress, then failures and a summary.

    `targets` are the flags that point `harness run` at each endpoint again (for the reproduce lines);
    `reports` the files to name at the end; `closing`, when given, replaces the closing count line (a fuzz run
    counts variants, not the regression cases it reports).
    """

    def __init__(
        self,
        file: TextIO | None = None,
        *,
        verbose: bool = False,
        quiet: bool = False,
        color: Color = "auto",
        environ: Mapping[str, str] | None = None,
        targets: Mapping[str, str] | None = None,
        reports: Sequence[Path] = (),
        closing: str | None = None,
        digests: Digests | None = None,
    ) -> None:
        """`environ` stands for os.environ (NO_COLOR, GITHUB_*), so a test can pose as a CI runner; `digests` is
        the store the report files share (a console on its own keeps its digests in memory)."""
        if color not in COLORS:
            raise ValueError(f"color must be one of {', '.join(COLORS)}, got {color!r}")
        environ = os.environ if environ is None else environ
        self.file = file or sys.stdout
        # "always" wins over NO_COLOR (an explicit flag beats an ambient variable); 16 colours read everywhere.
        self.out = RichConsole(
            file=self.file,
            color_system={"auto": "auto", "always": "standard", "never": None}[color],
            no_color=color == "never" or (color == "auto" and bool(environ.get("NO_COLOR"))),
            highlight=False,
            soft_wrap=True,
        )
        # Not a terminal: plain lines, written as they are (rich is kept for a terminal's bar and tables).
        self.plain = not self.out.is_terminal
        self.colour = self.out.color_system is not None and not self.out.no_color
        if self.plain:
            self.out.width = 140  # CI logs and pipes: wide enough that the closing rule reads as one line
        self.verbose = verbose
        self.quiet = quiet
        self.annotate = in_actions(environ)
        self.workspace = environ.get("GITHUB_WORKSPACE")
        self.step_summary = environ.get("GITHUB_STEP_SUMMARY")
        self.targets = dict(targets or {})
        self.reports = list(reports)
        self.closing = closing
        self._info: RunInfo | None = None
        self._digests = digests or Digests()
        self._matrix = SupportMatrix()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._annotations: list[str] = []

    def say(self, text: str, style: str = "") -> None:
        """Print one line (or a block of lines) of text, in `style` (a colour, maybe after `bold `) when colour is
        on; nothing in `text` is read as markup."""
        if not self.plain:
            self.out.print(f"[{style}]{escape(text)}[/]" if style else escape(text))
            return
        self.file.write((self._paint(text, style) if style else text) + "\n")
        self.file.flush()  # a CI log shows each case as it ends, as rich's own printing did

    def _paint(self, text: str, style: str) -> str:
        if not self.colour:
            return text
        codes = ";".join(_ANSI[word] for word in style.split())
        return f"\x1b[{codes}m{text}\x1b[0m"

    def _rule(self, title: str, style: str = "") -> None:
        """A rule across the page with `title` in its middle, as pytest separates its sections."""
        if not self.plain:
            self.out.rule(
                f"[{style}]{escape(title)}[/]" if style else escape(title),
                style=style.removeprefix("bold ") or "rule.line",
            )
            return
        width = self.out.width
        left = max(3, (width - len(title)) // 2 - 1)
        right = max(3, width - left - len(title) - 2)
        self.say(f"{'─' * left} {title} {'─' * right}", style)

    def start(self, event: RunStarted) -> None:
        self._info = RunInfo.opening(event, self.targets)
        self._digests.open()
        self._matrix = self._info.matrix()
        total = event.total
        if event.banner:  # even with -q: replayed answers must never pass for a live run
            self.say(event.banner, "bold yellow")
        if event.sources and not self.quiet:
            self.say(event.sources)
        if event.clients and not self.quiet:
            self.say(f"clients: {'; '.join(event.clients)}")
        if not self.plain:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.out,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("running cases", total=total)

    @contextlib.contextmanager
    def counter(self, description: str, total: int) -> Iterator[Callable[[int, int, int], None]]:
        """A progress line for a fuzz run: examples out of the maximum, requests sent, failures found."""
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.out, transient=True, disable=self.plain) as progress:
            task = progress.add_task(description, total=total, info="")

            def tick(examples: int, requests: int, failures: int) -> None:
                progress.update(
                    task, completed=min(examples, total), info=f"{requests} requests, {failures} failure(s) so far"
                )

            yield tick

    def result(self, event: ResultReady) -> None:
        result = event.result
        self._digests.add(event.index, result, self._info)
        self._matrix.add(result)
        bad = result.verdict in (Verdict.FAIL, Verdict.ERROR)
        if self.annotate and bad:
            self._annotations.append(annotation(result, self.workspace))
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
            if bad:
                self.say(headline(result), _STYLE[result.verdict])
            return
        if self.quiet:
            return  # the failures come in full at the end
        ms = (
            f" ({result.exchange.timings.total_ms:.0f} ms)"
            if result.exchange and result.exchange.timings.total_ms
            else ""
        )
        style = _STYLE[result.verdict]
        if self.plain:
            self.file.write(f"{self._paint(f'{result.verdict.value.upper():5}', style)} {result.name}{ms}\n")
            self.file.flush()
        else:
            self.out.print(f"[{style}]{result.verdict.value.upper():5}[/] {escape(result.name)}{ms}")

    def finish(self, event: RunFinished) -> None:
        try:
            self._finish(event)
        finally:
            self._digests.release()

    def _finish(self, event: RunFinished) -> None:
        assert self._info is not None
        info = self._info.closing(event)
        digests = self._digests  # read from the report folder, a pass for each part: none is held
        if self._progress is not None:
            self._progress.stop()
        counts = digests.counts()
        bad = counts["fail"] + counts["error"]
        if bad:
            self._rule("FAILURES")
            for d in digests:
                if d.bad:
                    self.say(d.block + "\n")
        if self.verbose and not self.quiet and any(d.warnings and d.verdict is Verdict.PASS for d in digests):
            self._rule("WARNINGS")
            for d in digests:
                if d.warnings and d.verdict is Verdict.PASS:
                    self.say(d.block + "\n")
        if not self.quiet:
            self._summary(digests, counts["total"])
            if self._matrix:
                self._support()
                self.say(LEGEND)
        for line in contradiction_lines(self._matrix):
            self.say(line)
        if bad:
            self._rule("short test summary info")
            for d in digests:
                if d.bad:
                    self.say(d.headline)
        for line in self._annotations:
            if self.plain:
                self.say(line)
            else:
                self.out.out(line, highlight=False)
        parts = [
            f"{counts[k]} {label}"
            for k, label in (
                ("fail", "failed"),
                ("pass", "passed"),
                ("error", "errors"),
                ("skip", "skipped"),
                ("warnings", "warnings"),
            )
            if counts[k]
        ]
        if self.contradicted:
            parts.append(f"{self.contradicted} against the documentation")
        color = "red" if counts["fail"] or counts["error"] or self.contradicted or event.interrupted else "green"
        line = self.closing or ", ".join(parts) or "no cases ran"
        if event.interrupted:
            line = f"interrupted ({event.reason or 'stopped'}) after {line}"
        self._rule(f"{line} in {event.duration_s:.1f}s", f"bold {color}")
        if info.banner:
            self.say(info.banner, "bold yellow")
        for path in self.reports:
            self.say(f"report: {path}")
        if event.interrupted:
            self.say("interrupted: the report holds the cases that finished")
        if self.step_summary:
            try:
                append_step_summary(Path(self.step_summary), render_summary(info, digests, self._matrix))
            except OSError as exc:  # the report folder holds the same summary; the run's verdict stands
                self.say(f"could not add the summary to GITHUB_STEP_SUMMARY ({self.step_summary}): {exc}")

    @property
    def counts(self) -> dict[str, int]:
        """Counts by verdict of what this console was told, for the exit code."""
        return self._digests.counts()

    @property
    def contradicted(self) -> int:
        """How many parameters' verdicts contradict their provider's documentation (errors), for the exit code."""
        return sum(1 for *_, cell in self._matrix.contradictions() if cell.severity is Severity.ERROR)

    def _support(self) -> None:
        rows = [(name, *(cell_text(c) for c in cells)) for name, cells in self._matrix.rows()]
        self._table("Parameter support", ("parameter", *self._matrix.endpoints), [(row, "") for row in rows], None)

    def _summary(self, digests: Iterable[Digest], total: int) -> None:
        """The summary table: every case of a run of at most TABLE_LIMIT results, else at most that many of the
        cases that did not pass, then how many more there are (a table of thousands of passes is read by no one,
        and drawing it took seconds)."""
        shown: list[Digest] = []
        left: Counter[Verdict] = Counter()
        for d in digests:
            if total <= TABLE_LIMIT or (d.verdict is not Verdict.PASS and len(shown) < TABLE_LIMIT):
                shown.append(d)
            else:
                left[d.verdict] += 1
        rows = [
            (
                (
                    d.case,
                    d.endpoint,
                    d.verdict.value,
                    *d.cells,
                    ", ".join(d.codes) or (d.reason if d.verdict is Verdict.SKIP else ""),
                ),
                _STYLE[d.verdict],
            )
            for d in shown
        ]
        self._table("Summary", _HEAD, rows, 2)
        if left:
            said = ", ".join(
                f"{left[v]} {label}"
                for v, label in (
                    (Verdict.PASS, "passed"),
                    (Verdict.FAIL, "failed"),
                    (Verdict.ERROR, "errors"),
                    (Verdict.SKIP, "skipped"),
                )
                if left[v]
            )
            self.say(f"... and {left.total()} more ({said}): summary.md has a row for every case")

    def _table(
        self, title: str, head: Sequence[str], rows: Sequence[tuple[Sequence[str], str]], styled: int | None
    ) -> None:
        """A table with a heavy head, as rich draws one; column `styled` of each row in that row's style."""
        if not self.plain:
            table = Table(title=title, show_lines=False)
            for column in head:
                table.add_column(escape(column), overflow="fold")
            for cells, style in rows:
                table.add_row(
                    *(
                        f"[{style}]{escape(c)}[/]" if number == styled and style else escape(c)
                        for number, c in enumerate(cells)
                    )
                )
            self.out.print(table)
            return
        flat = [[" ".join(c.split("\n")) for c in cells] for cells, _ in rows]
        widths = [max(len(c) for c in column) for column in zip(head, *flat, strict=True)]

        def edge(left: str, line: str, middle: str, right: str) -> str:
            return left + middle.join(line * (w + 2) for w in widths) + right

        def row(cells: Sequence[str], bar: str, style: str = "") -> str:
            padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
            if styled is not None and style:
                padded[styled] = self._paint(cells[styled], style) + " " * (widths[styled] - len(cells[styled]))
            return bar + " " + f" {bar} ".join(padded) + " " + bar

        lines = [title, edge("┏", "━", "┳", "┓"), row(head, "┃"), edge("┡", "━", "╇", "┩")]
        lines += [row(cells, "│", style) for cells, (_, style) in zip(flat, rows, strict=True)]
        lines.append(edge("└", "─", "┴", "┘"))
        self.file.write("\n".join(lines) + "\n")
        self.file.flush()
