"""The support matrix as the reports show it: rows are parameters, columns endpoints, cells verdicts.

The matrix itself (`harness.support.SupportMatrix`) is folded as results arrive; this module only renders it, as
text cells for the console and as Markdown for `summary.md`.
"""

from __future__ import annotations

from ..models import Severity
from ..support import Cell, SupportMatrix

__all__ = ["LEGEND", "cell_text", "contradiction_lines", "matrix_markdown"]

LEGEND = (
    "honoured: the effect was seen; accepted: a 200, no effect is checked; ignored: a 200 without the effect; "
    "rejected: a 4xx naming the parameter; broken: a 5xx, another 4xx, a malformed answer or a hang; "
    "not probed: no probe ran. ! contradicts the provider's documentation (an error), ? departs from it (a warning)."
)
_MARK = {Severity.ERROR: " !", Severity.WARNING: " ?"}


def cell_text(cell: Cell) -> str:
    """The verdict, marked when it contradicts what the provider documents."""
    return cell.verdict.value + (_MARK[cell.severity] if cell.severity is not None else "")


def contradiction_lines(matrix: SupportMatrix) -> list[str]:
    """One line per verdict that departs from the documentation: severity, endpoint, parameter, why."""
    return [
        f"{cell.severity.value if cell.severity else ''} {name}[{endpoint}]: {cell.message()}"
        for endpoint, name, cell in matrix.contradictions()
    ]


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def matrix_markdown(matrix: SupportMatrix) -> list[str]:
    """The `## Parameter support` section of summary.md; no lines when no probe ran."""
    if not matrix:
        return []
    lines = [
        "## Parameter support",
        "",
        _md(LEGEND),
        "",
        "| parameter | " + " | ".join(_md(e) for e in matrix.endpoints) + " |",
        "|---|" + "---|" * len(matrix.endpoints),
    ]
    for name, cells in matrix.rows():
        shown = [cell_text(c) + (f" ({', '.join(c.cases)})" if c.cases else "") for c in cells]
        lines.append(f"| `{_md(name)}` | " + " | ".join(_md(s) for s in shown) + " |")
    contradicted = contradiction_lines(matrix)
    if contradicted:
        lines += ["", "Verdicts that depart from the provider's documentation:", ""]
        lines += [f"- {_md(line)}" for line in contradicted]
    return lines
