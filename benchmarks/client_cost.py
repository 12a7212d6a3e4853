"""What the client.* checks cost per answer, beside what every other check costs on the same answers.

The bundled catalogue is replayed once to get its exchanges; then each exchange is judged `--rounds` times by
every check but the client ones (the baseline), and fed as many times to openai-python and to openai-node (when
HARNESS_OPENAI_NODE_DIR names an npm install of it). Target: each SDK's pass costs at most 10x the rest of the
checks together, and a few milliseconds an answer, so the client checks stay on by default.

    python3 benchmarks/client_cost.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from harness.cases import load_cases
from harness.checks import CheckContext, registry
from harness.clients import node_status, read_node, read_python, replay_of, statuses
from harness.endpoints import Endpoint
from harness.engine import run
from harness.models import Exchange
from harness.recordings import load_recordings
from harness.resources import bundled

TARGET = 10.0


def _exchanges() -> list[Exchange]:
    recordings = load_recordings(bundled("recordings"))
    seen = {name: recording.endpoint for (name, _), recording in recordings.items()}
    endpoints = [
        Endpoint(name=name, base_url=str(e.get("base_url")), model=e.get("model"), profile="generic")
        for name, e in seen.items()
    ]
    results = asyncio.run(run(load_cases([bundled("cases")]), endpoints, replay=recordings))
    return [r.exchange for r in results if r.exchange is not None and replay_of(r.exchange) is not None]


def _per_answer(exchanges: list[Exchange], rounds: int, judge: Callable[[Exchange], Any]) -> float:
    """Milliseconds per answer, the best of `rounds` passes over all of them."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for exchange in exchanges:
            judge(exchange)
        best = min(best, time.perf_counter() - started)
    return best * 1000 / len(exchanges)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    exchanges = _exchanges()
    others = [c for code, c in registry().items() if not code.startswith("client.")]
    context = CheckContext()

    def baseline(exchange: Exchange) -> None:
        for item in others:
            if item.applies(exchange, context):
                list(item.function(exchange, context))

    def python(exchange: Exchange) -> None:
        replay = replay_of(exchange)
        assert replay is not None
        read_python(replay)

    def node(exchange: Exchange) -> None:
        replay = replay_of(exchange)
        assert replay is not None
        read_node(replay)

    print(f"{len(exchanges)} answers of the bundled catalogue; clients: {'; '.join(statuses())}")
    rest = _per_answer(exchanges, args.rounds, baseline)
    print(f"every other check:  {rest:6.2f} ms an answer")
    worst = 0.0
    node_present = "not checked" not in node_status()
    for name, judge, present in (("openai-python", python, True), ("openai-node", node, node_present)):
        if not present:
            print(f"{name}: not checked")
            continue
        judge(exchanges[0])  # start-up (imports, the Node.js process) is paid once per run, not per answer
        cost = _per_answer(exchanges, args.rounds, judge)
        worst = max(worst, cost / rest)
        print(f"{name + ':':<19} {cost:6.2f} ms an answer ({cost / rest:.1f}x every other check)")
    print(f"target: at most {TARGET:.0f}x; worst {worst:.1f}x: {'ok' if worst <= TARGET else 'OVER'}")
    return 0 if worst <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
