"""What a run shows inside GitHub Actions: an annotation on each failing case's file, and the job summary.

GitHub reads both from conventions rather than an API (a workflow command on stdout, a file named by
`GITHUB_STEP_SUMMARY`), so a run needs no token and no extra step in the workflow to show its results there.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..models import Result
from .failure import headline

__all__ = ["annotation", "append_step_summary", "in_actions"]


def in_actions(environ: Mapping[str, str]) -> bool:
    """GitHub sets GITHUB_ACTIONS=true on every runner; anywhere else the `::error` lines would be noise."""
    return environ.get("GITHUB_ACTIONS") == "true"


def _data(text: str) -> str:
    # The message ends at the end of the line: a newline in it must be escaped or the rest is lost.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    # Properties are `key=value` separated by commas, and `::` ends them.
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _workspace_path(file: str, workspace: str | None) -> str:
    """GitHub places an annotation by a path relative to the checkout; a path outside it is kept as it is."""
    if not workspace:
        return file
    try:
        return Path(file).resolve().relative_to(Path(workspace).resolve()).as_posix()
    except ValueError:
        return file


def annotation(result: Result, workspace: str | None = None) -> str:
    """The `::error` workflow command that shows a failing case on its case file's line in a pull request."""
    properties = [f"file={_property(_workspace_path(result.file, workspace))}"] if result.file else []
    if result.line:
        properties.append(f"line={result.line}")
    properties.append(f"title={_property(result.name)}")
    return f"::error {','.join(properties)}::{_data(headline(result))}"


def append_step_summary(path: Path, text: str) -> None:
    """Append, never overwrite: other commands of the same step (a second run, say) add their part to this file."""
    with path.open("a", encoding="utf-8", newline="\n") as handle:
        handle.write(text if text.endswith("\n") else text + "\n")
