"""P1: plain (non-streaming) cases with every check on, at concurrency 1, 8 and 64.

`harness run` over a generated case file of one-request cases (2,000; 100 with --quick) against the local
endpoint, timed inside its process (loading the cases, sending, checking, the console and every report file),
against the same requests in bare loops: httpx on the `httpx-aiohttp` transport, and aiohttp alone.
Targets at 64 in flight: at least 0.9x the httpx+aiohttp loop's rate and 0.5x bare aiohttp's.
"""

from __future__ import annotations

from collections.abc import Mapping

from .common import Comparison, Row, Settings, available, harness_run, loop, median_of, plain_cases, rate
from .endpoint import EVENTS

__all__ = ["against_loops", "run"]

NAME = "P1"
TITLE = "plain cases, every check on"
Targets = Mapping[str, tuple[str, float] | None]


def run(settings: Settings) -> list[Row]:
    count = 100 if settings.quick else 2000
    at_64: Targets = {"httpx-aiohttp": (">=", 0.9), "aiohttp": (">=", 0.5)}
    return [
        against_loops(settings, bench=NAME, count=count, concurrency=c, stream=False, targets=at_64 if c == 64 else {})
        for c in (1, 8, 64)
    ]


def against_loops(
    settings: Settings, *, bench: str, count: int, concurrency: int, stream: bool, targets: Targets
) -> Row:
    """One row: `harness run` over `count` one-request cases against the bare loops of the same requests, medians of
    interleaved rounds. A stream counts its events; a plain answer counts as one."""
    assert settings.base_url is not None
    url = settings.base_url
    rounds = settings.rounds_for(full=3)
    cases = plain_cases(settings.scratch / f"{bench}.case.yaml", count, stream=stream)
    baselines = [client for client in ("httpx-aiohttp", "aiohttp") if available(client.split("-")[-1])]
    per = EVENTS if stream else 1
    unit, each = ("events/s", "stream") if stream else ("req/s", "request")

    def harness() -> dict[str, float]:
        figures = harness_run([str(cases), "--base-url", url, "--concurrency", str(concurrency)], settings.scratch)
        return {"rate": count * per / figures["seconds"], "cpu": figures["cpu"] / count}

    def bare(client: str) -> dict[str, float]:
        figures = loop(client, url, count, concurrency, stream=stream)
        if figures["events"] != (count * per if stream else 0):
            raise RuntimeError(f"the {client} loop read {figures['events']} events, not {count * per}")
        return {"rate": count * per / figures["seconds"], "cpu": figures["cpu"] / count}

    median = median_of(rounds, [("harness", harness), *((b, lambda b=b: bare(b)) for b in baselines)])
    mine = median["harness"]
    comparisons = tuple(
        Comparison(
            baseline=f"{client} loop",
            shown=f"{rate(median[client]['rate'], unit)}, {median[client]['cpu'] * 1000:.2f} ms CPU/{each}",
            ratio=mine["rate"] / median[client]["rate"],
            target=targets.get(client),
        )
        for client in baselines
    )
    what = f"{count:,} streams of {EVENTS} events" if stream else f"{count:,} cases"
    return Row(
        bench=bench,
        measure=f"harness run, {what}, concurrency {concurrency}",
        figure=f"{rate(mine['rate'], unit)}, {mine['cpu'] * 1000:.2f} ms CPU/{each}",
        comparisons=comparisons,
        note="" if len(baselines) == 2 else "no baseline without the bench extra: pip install -e '.[bench]'",
        rounds=rounds,
    )
