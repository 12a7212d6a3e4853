"""The console: progress while a run goes, then failures and a summary, in the shape of pytest's output.

rich is used here only; with NO_COLOR set or output that is not a terminal, the text is plain unless
`--color always` asks for colour (a CI log viewer that renders ANSI codes). Inside GitHub Actions the console
also annotates each failing case's file and adds the summary to the job's page.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal, TextIO, get_args

from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..models import Result, Verdict
from .failure import failure_block, headline
from .figures import case_cell, figures
from .files import summarize, summary_md
from .github import annotation, append_step_summary, in_actions
from .info import RunInfo

__all__ = ["COLORS", "Color", "Console"]

Color = Literal["auto", "always", "never"]
COLORS: tuple[Color, ...] = get_args(Color)

_STYLE = {Verdict.PASS: "green", Verdict.FAIL: "red", Verdict.ERROR: "magenta", Verdict.SKIP: "yellow"}


class Console:
    """Reports a run as it happens: `start`, `add` for each result, `finish` with the summary."""

    def __init__(
        self,
        file: TextIO | None = None,
        *,
        verbose: bool = False,
        quiet: bool = False,
        color: Color = "auto",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`environ` stands for os.environ (NO_COLOR, GITHUB_*), so a test can pose as a CI runner."""
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
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def start(self, total: int, banner: str = "", sources: str = "") -> None:
        if banner:  # even with -q: replayed answers must never pass for a live run
            self.out.print(f"[bold yellow]{escape(banner)}[/]")
        if sources and not self.quiet:
            self.out.print(escape(sources))
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

    def add(self, result: Result) -> None:
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

    def finish(
        self,
        results: list[Result],
        info: RunInfo,
        duration_s: float,
        reports: list[Path] | None = None,
        banner: str = "",
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
        bad = [r for r in results if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
        if bad:
            self.out.rule("FAILURES")
            for result in bad:
                self.out.print(escape(failure_block(result, info)))
                self.out.print()
        warned = [r for r in results if r.warnings and r.verdict is Verdict.PASS]
        if warned and self.verbose and not self.quiet:
            self.out.rule("WARNINGS")
            for result in warned:
                self.out.print(escape(failure_block(result, info)))
                self.out.print()
        if not self.quiet:
            self.out.print(self._table(results))
        if bad:
            self.out.rule("short test summary info")
            for result in bad:
                self.out.print(escape(headline(result)))
        if self.annotate:
            for result in bad:
                self.out.out(annotation(result, self.workspace), highlight=False)
        counts = summarize(results)
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
        color = "red" if counts["fail"] or counts["error"] else "green"
        self.out.rule(f"[bold {color}]{', '.join(parts) or 'no cases ran'} in {duration_s:.1f}s[/]", style=color)
        if banner:
            self.out.print(f"[bold yellow]{escape(banner)}[/]")
        for path in reports or []:
            self.out.print(f"report: {escape(str(path))}")
        if self.step_summary:
            try:
                append_step_summary(Path(self.step_summary), summary_md(info, results, banner))
            except OSError as exc:  # the report folder holds the same summary; the run's verdict stands
                where = escape(self.step_summary)
                self.out.print(f"could not add the summary to GITHUB_STEP_SUMMARY ({where}): {escape(str(exc))}")

    def _table(self, results: list[Result]) -> Table:
        table = Table(title="Summary", show_lines=False)
        for column in ("case", "endpoint", "verdict", "status", "ms", "ttft", "tokens", "findings"):
            table.add_column(column, overflow="fold")
        for r in results:
            codes = ", ".join(sorted({f.code for f in r.findings}))
            table.add_row(
                escape(case_cell(r)),
                escape(r.endpoint),
                f"[{_STYLE[r.verdict]}]{r.verdict.value}[/]",
                *figures(r).cells(),
                escape(codes or (r.reason if r.verdict is Verdict.SKIP else "")),
            )
        return table
