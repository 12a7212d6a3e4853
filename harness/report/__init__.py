"""Reports of a run: the console, `results.json`, `junit.xml` and `summary.md`, all from the same results."""

from __future__ import annotations

from .failure import failure_block, headline
from .files import RunInfo, atomic_write, summarize, write_reports

__all__ = ["RunInfo", "atomic_write", "failure_block", "headline", "summarize", "write_reports"]
