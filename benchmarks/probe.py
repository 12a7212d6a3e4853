"""`harness ARGS` timed from inside its own process: the run itself, without the interpreter's start-up and imports
(P5 measures those), as the baseline loops are timed.

Prints the command's usual output, then one JSON line on stderr: wall and CPU seconds of `main(ARGS)`, the time
spent in the HTML report's handler (`report.html`'s share of the run), the time the event loop's thread spent on the
client-compatibility checks (wall and CPU seconds) and the CPU seconds of the SDKs' reading processes
(their share), the peak RSS and the exit code.

    python -m benchmarks.probe run CASES --base-url URL ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
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


def _watch_clients(spent: list[float]) -> bool:
    """Time what the client.* checks hold the judging thread for, in wall seconds (`spent[0]`) and in the thread's
    CPU seconds (`spent[1]`): the check functions (which read both SDKs themselves when no read was made before
    judging), handing replays to the SDKs' reading processes when they are read before judging, never counted twice.
    Waiting for the reads while the event loop serves other exchanges is not counted: the processes' own CPU is
    (`_readers_cpu`). False when the run has no client checks."""
    try:
        from harness import clients
        from harness.checks import _REGISTRY, registry
    except ImportError:
        return False
    inside = [False]

    def timed(method: Callable[..., Any], checks: bool) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if inside[0]:
                return method(*args, **kwargs)
            inside[0] = True
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                result = method(*args, **kwargs)
                return list(result) if checks else result  # a check yields its findings lazily
            finally:
                spent[0] += time.perf_counter() - started
                spent[1] += time.thread_time() - cpu
                inside[0] = False

        return wrapper

    codes = [code for code in registry() if code.startswith("client.")]
    for code in codes:
        _REGISTRY[code] = dataclasses.replace(_REGISTRY[code], function=timed(_REGISTRY[code].function, True))
    clients.read_python = timed(clients.read_python, False)
    for name in ("submit", "flush", "read"):
        setattr(clients._Reader, name, timed(getattr(clients._Reader, name), False))
    return bool(codes)


def _readers_cpu() -> float | None:
    """CPU seconds of the processes the SDKs read in (Node.js's, and openai-python's where it has one), while they
    still run (Linux only); None when there is none."""
    try:
        from harness import clients
    except ImportError:
        return None
    running = [*clients._NODE.values(), *clients._PYTHON.values()]
    total = None
    for reader in running:
        try:
            pid = reader._process.pid
            fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except (AttributeError, OSError):
            continue
        total = (total or 0.0) + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


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

    html, client_checks = [0.0], [0.0, 0.0]
    watched = _watch_html(html)
    checked = _watch_clients(client_checks)
    readers_before = _readers_cpu()
    started, cpu = time.perf_counter(), _cpu()
    code = harness(sys.argv[1:])
    seconds, cpu = time.perf_counter() - started, _cpu() - cpu
    readers_after = _readers_cpu()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {
        "seconds": seconds,
        "cpu": cpu,
        "html": html[0] if watched else None,
        "clients": client_checks[0] if checked else None,
        "clients_cpu": client_checks[1] if checked else None,
        "readers_cpu": readers_after - (readers_before or 0.0) if readers_after is not None else None,
        "code": code,
        "kib": peak_kib,
    }
    sys.stdout.flush()
    print(json.dumps(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
