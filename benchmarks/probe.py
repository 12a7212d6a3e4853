"""`harness ARGS` timed from inside its own process: the run itself, without the interpreter's start-up and imports
(P5 measures those), as the baseline loops are timed.

Prints the command's usual output, then one JSON line on stderr: wall and CPU seconds of `main(ARGS)`, the time
spent in the HTML report's handler (`report.html`'s share of the run), the peak RSS and the exit code.

    python -m benchmarks.probe run CASES --base-url URL ...
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = ["main"]


def _timed(method: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    return wrapper


def _watch_html(spent: list[float]) -> bool:
    """Time every call into the HTML report's handler; False when there is no such handler to time."""
    try:
        from harness.report.files import HtmlFile
    except ImportError:
        return False
    for name in ("start", "result", "finish"):
        if hasattr(HtmlFile, name):
            setattr(HtmlFile, name, _timed(getattr(HtmlFile, name), spent))
    return True


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# What a run imports when it starts (the CLI imports it lazily); a module that moved is simply not imported early.
RUN_IMPORTS = ("harness.engine", "harness.cases", "harness.profiles", "harness.checks", "harness.report.console")


def main() -> int:
    from harness.cli import main as harness

    for module in RUN_IMPORTS:
        with contextlib.suppress(ImportError):
            importlib.import_module(module)

    html = [0.0]
    watched = _watch_html(html)
    started, cpu = time.perf_counter(), _cpu()
    code = harness(sys.argv[1:])
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {"seconds": seconds, "cpu": cpu, "html": html[0] if watched else None, "code": code, "kib": peak_kib}
    sys.stdout.flush()
    print(json.dumps(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
