"""P6: replaying the bundled catalogue x1, x10 and x100 (x1 and x2 with --quick), each in a fresh process.

The per-case cost must stay flat as the run grows: the largest run takes at most 1.2x what the middle one takes,
scaled to the same number of cases (x100 against ten x10 runs). Peak memory is `replay_memory.py`'s measure (the
process's own peak RSS), with its target: the largest run at most 1.5x the memory of x1.
"""

from __future__ import annotations

import functools

from .common import Comparison, Row, Settings, median_of
from .replay_memory import TARGET as MEMORY_TARGET
from .replay_memory import _catalogue, _peak

__all__ = ["run"]

NAME = "P6"
TITLE = "replay of the bundled catalogue"
FLAT = 1.2


def run(settings: Settings) -> list[Row]:
    copies = (1, 2) if settings.quick else (1, 10, 100)
    rounds = settings.rounds_for(full=1)
    catalogues = {}
    for k in copies:
        (settings.scratch / f"p6-x{k}").mkdir()
        catalogues[k] = _catalogue(settings.scratch / f"p6-x{k}", k)
    counts = {k: len(list(recordings.rglob("*.yaml"))) for k, (_, recordings) in catalogues.items()}

    def replay(k: int) -> dict[str, float]:
        report = settings.scratch / f"p6-report-x{k}-{len(list(settings.scratch.glob('p6-report-*')))}"
        kib, seconds, code = _peak(*catalogues[k], report)
        if code not in (0, 1):
            raise RuntimeError(f"the replay of the catalogue x{k} exited {code}")
        return {"seconds": seconds, "mib": kib / 1024}

    median = median_of(rounds, [(f"x{k}", functools.partial(replay, k)) for k in copies])
    small, middle, large = copies[0], copies[-2], copies[-1]
    rows = []
    for k in copies:
        seconds, mib = median[f"x{k}"]["seconds"], median[f"x{k}"]["mib"]
        comparisons: list[Comparison] = []
        if k == large:
            scale = large // middle
            comparisons.append(
                Comparison(
                    baseline=f"{scale} x{middle} runs",
                    shown=f"{scale * median[f'x{middle}']['seconds']:.1f} s",
                    ratio=seconds / (scale * median[f"x{middle}"]["seconds"]),
                    target=("<=", FLAT),
                )
            )
        if k != small:
            comparisons.append(
                Comparison(
                    baseline=f"peak RSS of x{small}",
                    shown=f"{median[f'x{small}']['mib']:.0f} MiB",
                    ratio=mib / median[f"x{small}"]["mib"],
                    target=("<=", MEMORY_TARGET) if k == large else None,
                )
            )
        rows.append(
            Row(
                bench=NAME,
                measure=f"replay x{k}: {counts[k]:,} recorded cases, concurrency 8, whole process",
                figure=f"{seconds:.1f} s, {seconds / counts[k] * 1000:.1f} ms/case, {mib:.0f} MiB peak",
                comparisons=tuple(comparisons),
                rounds=rounds,
            )
        )
    return rows
