"""Errors in what the user gave us: case files, config, flags, credentials.

Endpoint deviations are never errors: they become findings. A `HarnessError` carries every problem found,
not only the first, so that one `harness lint` shows everything to fix; the CLI turns it into exit 2.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CaseFileError", "ConfigError", "HarnessError", "Problem"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong in an input, located as precisely as we can."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None
    pointer: str = ""

    def __str__(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        pointer = f" {self.pointer}:" if self.pointer else ""
        return f"{where}:{pointer} {self.message}"


class HarnessError(Exception):
    """A problem with the harness's input; nothing has been sent when it is raised."""

    def __init__(self, problems: list[Problem] | Problem | str) -> None:
        if isinstance(problems, str):
            problems = [Problem("harness", problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CaseFileError(HarnessError):
    """A case file that cannot be read, does not follow `schemas/case.schema.json`, or clashes with another."""


class ConfigError(HarnessError):
    """An endpoint config file, a flag or a credential that cannot be used."""
