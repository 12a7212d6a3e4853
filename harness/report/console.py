"""The console: progress while a run goes, then failures and a summary, in the shape of pytest's output.

rich is used here only; with NO_COLOR set or output that is not a terminal, the text is plain unless
`--color always` asks for colour (a CI log viewer that renders ANSI codes). Inside GitHub Actions the console
also annotates each failing case's file and adds the summary to the job's page.
"""

from __future__ import annotations

import contextlib
import os
import sys
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

__all__ = ["COLORS", "Color", "Console"]

Color = Literal["auto", "always", "never"]
COLORS: tuple[Color, ...] = get_args(Color)

_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "red", Verdict.ERROR: "magenta", Verdict.SKIP: "yellow"}


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
        # "always" wins over NO_COLOR (an explicit flag beats an ambient variable); 16 colours read everywhere.
        self.out = RichConsole(
            file=file or sys.stdout,
            color_system={"auto": "auto", "always": "standard", "never": None}[color],
            no_color=color == "never" or (color == "auto" and bool(environ.get("NO_COLOR"))),
            highlight=False,
            soft_wrap=True,
        )
        if not self.out.is_terminal:
            self.out.width = 140  # CI logs and pipes: wide enough that the summary table does not wrap
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

    def start(self, event: RunStarted) -> None:
        self._info = RunInfo.opening(event, self.targets)
        self._digests.open()
        self._matrix = self._info.matrix()
        total = event.total
        if event.banner:  # even with -q: replayed answers must never pass for a live run
            self.out.print(f"[bold yellow]{escape(event.banner)}[/]")
        if event.sources and not self.quiet:
            self.out.print(escape(event.sources))
        if event.clients and not self.quiet:
            self.out.print(escape(f"clients: {'; '.join(event.clients)}"))
        if self.out.is_terminal:
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
        with Progress(*columns, console=self.out, transient=True, disable=not self.out.is_terminal) as progress:
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
        if self.annotate and result.verdict in (Verdict.FAIL, Verdict.ERROR):
            self._annotations.append(annotation(result, self.workspace))
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)
            if result.verdict in (Verdict.FAIL, Verdict.ERROR):
                self._progress.console.print(f"[{_STYLE[result.verdict]}]{escape(headline(result))}[/]")
            return
        if self.quiet:
            return  # the failures come in full at the end
        style = _STYLE[result.verdict]
        ms = (
            f" ({result.exchange.timings.total_ms:.0f} ms)"
            if result.exchange and result.exchange.timings.total_ms
            else ""
        )
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
            self.out.rule("FAILURES")
            for d in digests:
                if d.bad:
                    self.out.print(escape(d.block))
                    self.out.print()
        if self.verbose and not self.quiet and any(d.warnings and d.verdict is Verdict.PASS for d in digests):
            self.out.rule("WARNINGS")
            for d in digests:
                if d.warnings and d.verdict is Verdict.PASS:
                    self.out.print(escape(d.block))
                    self.out.print()
        if not self.quiet:
            self.out.print(self._table(digests))
            if self._matrix:
                self.out.print(self._support())
                self.out.print(escape(LEGEND))
        for line in contradiction_lines(self._matrix):
            self.out.print(escape(line))
        if bad:
            self.out.rule("short test summary info")
            for d in digests:
                if d.bad:
                    self.out.print(escape(d.headline))
        for line in self._annotations:
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
        self.out.rule(f"[bold {color}]{escape(line)} in {event.duration_s:.1f}s[/]", style=color)
        if info.banner:
            self.out.print(f"[bold yellow]{escape(info.banner)}[/]")
        for path in self.reports:
            self.out.print(f"report: {escape(str(path))}")
        if event.interrupted:
            self.out.print("interrupted: the report holds the cases that finished")
        if self.step_summary:
            try:
                append_step_summary(Path(self.step_summary), render_summary(info, digests, self._matrix))
            except OSError as exc:  # the report folder holds the same summary; the run's verdict stands
                where = escape(self.step_summary)
                self.out.print(f"could not add the summary to GITHUB_STEP_SUMMARY ({where}): {escape(str(exc))}")

    @property
    def counts(self) -> dict[str, int]:
        """Counts by verdict of what this console was told, for the exit code."""
        return self._digests.counts()

    @property
    def contradicted(self) -> int:
        """How many parameters' verdicts contradict their provider's documentation (errors), for the exit code."""
        return sum(1 for *_, cell in self._matrix.contradictions() if cell.severity is Severity.ERROR)

    def _support(self) -> Table:
        table = Table(title="Parameter support", show_lines=False)
        table.add_column("parameter", overflow="fold")
        for endpoint in self._matrix.endpoints:
            table.add_column(escape(endpoint), overflow="fold")
        for name, cells in self._matrix.rows():
            table.add_row(escape(name), *(escape(cell_text(c)) for c in cells))
        return table

    def _table(self, digests: Iterable[Digest]) -> Table:
        table = Table(title="Summary", show_lines=False)
        for column in ("case", "endpoint", "verdict", "status", "ms", "ttft", "tokens", "findings"):
            table.add_column(column, overflow="fold")
        for d in digests:
            codes = ", ".join(d.codes)
            table.add_row(
                escape(d.case),
                escape(d.endpoint),
                f"[{_STYLE[d.verdict]}]{d.verdict.value}[/]",
                *d.cells,
                escape(codes or (d.reason if d.verdict is Verdict.SKIP else "")),
            )
        return table
