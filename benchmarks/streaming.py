"""P2: streamed cases, every chunk checked, at concurrency 1 and 8: events received and judged per second.

`harness run` over a generated case file of one-stream cases (500 streams of `EVENTS` events; 20 with --quick)
against the local endpoint, timed inside its process, against bare aiohttp reading the same streams' lines and
parsing each event's JSON (and, for reference, httpx on the `httpx-aiohttp` transport reading lines). Target: at
least 0.5x bare aiohttp's events per second.
"""

from __future__ import annotations

from .common import Row, Settings
from .plain import against_loops

__all__ = ["run"]

NAME = "P2"
TITLE = "streams, every chunk checked"


def run(settings: Settings) -> list[Row]:
    count = 20 if settings.quick else 500
    targets = {"aiohttp": (">=", 0.5)}
    return [
        against_loops(settings, bench=NAME, count=count, concurrency=c, stream=True, targets=targets) for c in (1, 8)
    ]
