"""P7: what the optional parts of a run cost, as a share of the run: today `report.html`, which every run writes.

`harness run` over the plain cases of P1 (2,000; 100 with --quick) at concurrency 8 against the local endpoint,
timing every call into the HTML report's handler (`HtmlFile`) inside the process. Target: at most 10 % of the run.
The client-compatibility checks the issue also names do not exist yet, so they have no row.
"""

from __future__ import annotations

from .common import Comparison, Row, Settings, harness_run, median_of, plain_cases

__all__ = ["run"]

NAME = "P7"
TITLE = "report.html's share of a run"
TARGET = 0.10


def run(settings: Settings) -> list[Row]:
    assert settings.base_url is not None
    url = settings.base_url
    count = 100 if settings.quick else 2000
    rounds = settings.rounds_for(full=3)
    cases = plain_cases(settings.scratch / "p7.case.yaml", count)

    def share() -> dict[str, float]:
        figures = harness_run([str(cases), "--base-url", url, "--concurrency", "8"], settings.scratch)
        if figures["html"] is None:
            return {}
        return {"html": figures["html"], "run": figures["seconds"], "share": figures["html"] / figures["seconds"]}

    median = median_of(rounds, [("run", share)]).get("run")
    if not median:
        return [Row(bench=NAME, measure="report.html", figure="not measured", note="no HtmlFile handler to time")]
    return [
        Row(
            bench=NAME,
            measure=f"report.html, in a run of {count:,} plain cases, concurrency 8",
            figure=f"{median['html']:.2f} s",
            comparisons=(
                Comparison(
                    baseline="the whole run",
                    shown=f"{median['run']:.2f} s",
                    ratio=median["share"],
                    percent=True,
                    target=("<=", TARGET),
                ),
            ),
            rounds=rounds,
        )
    ]
