"""P7: what the optional parts of a run cost, as a share of the run: `report.html`, which every run writes, and the
client-compatibility checks (`client.*`: what openai-python and openai-node make of each answer).

`harness run` over the plain cases of P1 (2,000; 100 with --quick) against the local endpoint, timed inside the
process (see probe.py): at concurrency 8, every call into the HTML report's handler (`HtmlFile`); at concurrency 64,
the CPU the client checks take (the judging thread's, in the checks and handing each answer to the SDKs' reading
processes, and those processes' own: openai-python's and Node.js's) against the run's CPU, and beside it the wall
time they hold the judging thread (on a busy machine that figure counts the time other processes take the core
too). Target: each at most 10 % of the run. openai-node is measured where HARNESS_OPENAI_NODE_DIR names an npm
install of it; the row says which clients were checked.
"""

from __future__ import annotations

from .common import Comparison, Row, Settings, harness_run, median_of, plain_cases

__all__ = ["run"]

NAME = "P7"
TITLE = "report.html's and the client checks' share of a run"
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

    def clients() -> dict[str, float]:
        figures = harness_run([str(cases), "--base-url", url, "--concurrency", "64"], settings.scratch)
        if figures.get("clients") is None:
            return {}
        readers = figures.get("readers_cpu") or 0.0
        spent = figures["clients_cpu"] + readers
        return {
            "spent": spent,
            "cpu": figures["cpu"] + readers,
            "share": spent / (figures["cpu"] + readers),
            "wall": figures["clients"],
            "run": figures["seconds"],
            "wall_share": figures["clients"] / figures["seconds"],
            "readers": readers,
        }

    medians = median_of(rounds, [("run", share), ("clients", clients)])
    return [_html_row(medians.get("run"), count, rounds), _clients_row(medians.get("clients"), count, rounds)]


def _share(baseline: str, seconds: float, share: float, target: bool = True) -> Comparison:
    """A figure as a share of the run's `seconds`, judged against TARGET unless `target` is False."""
    return Comparison(
        baseline=baseline,
        shown=f"{seconds:.2f} s",
        ratio=share,
        percent=True,
        target=("<=", TARGET) if target else None,
    )


def _html_row(median: dict[str, float] | None, count: int, rounds: int) -> Row:
    if not median:
        return Row(bench=NAME, measure="report.html", figure="not measured", note="no HtmlFile handler to time")
    return Row(
        bench=NAME,
        measure=f"report.html, in a run of {count:,} plain cases, concurrency 8",
        figure=f"{median['html']:.2f} s",
        comparisons=(_share("the whole run", median["run"], median["share"]),),
        rounds=rounds,
    )


def _clients_row(median: dict[str, float] | None, count: int, rounds: int) -> Row:
    from harness.clients import statuses

    if not median:
        return Row(bench=NAME, measure="client.* checks", figure="not measured", note="no client checks to time")
    held = f"the whole run, against the {median['wall']:.2f} s they held the judging thread"
    return Row(
        bench=NAME,
        measure=f"client.* checks' CPU (judging thread and SDK processes), {count:,} plain cases, concurrency 64",
        figure=f"{median['spent']:.2f} s",
        comparisons=(
            _share("the run's CPU, the SDK processes' included", median["cpu"], median["share"]),
            _share(held, median["run"], median["wall_share"], target=False),
        ),
        note=f"{'; '.join(statuses())}; of the CPU, the SDK processes' own {median['readers']:.2f} s",
        rounds=rounds,
    )
