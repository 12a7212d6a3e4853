"""Reports of a run: the console, `results.json`, `junit.xml`, `summary.md` and `report.html`, from the same results."""

from __future__ import annotations

from ..atomic import atomic_write
from .failure import failure_block, headline
from .files import report_files, summarize, tell, write_reports
from .info import RunInfo

__all__ = ["RunInfo", "atomic_write", "failure_block", "headline", "report_files", "summarize", "tell", "write_reports"]
