"""The support matrix end to end: the bundled probes against local doubles that honour, ignore, refuse and break
every parameter, through the engine and every report (console, summary.md, results.json)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any

import pytest

from harness.cases import load_cases, select
from harness.endpoints import Endpoint
from harness.engine import execute
from harness.parameters import PARAMETERS
from harness.report import report_files
from harness.report.console import Console
from harness.resources import bundled
from harness.sending import Options
from tests.servers import Server

OPENAI = [p.name for p in PARAMETERS if p.origin == "openai"]
GOOGLE = [p.name for p in PARAMETERS if p.origin == "google"]
OBSERVABLE = {p.name for p in PARAMETERS if p.observable}
# Not in the catalogue's probes: a cache must be made beforehand.
UNPROBED = {"extra_body.google.cached_content"}
# The doubles answer a Google surface or OpenAI, never both: each is probed where it means something.
ON_GOOGLE = set(GOOGLE) - UNPROBED


def probe(
    server: Server, endpoints: dict[str, str], tmp_path: Path, *, profile: str = "generic", select_: str = "param:*"
) -> tuple[dict[str, Any], str, str]:
    """(results.json's support member, summary.md, the console) of the bundled probes against these scenarios."""
    cases = select(load_cases([bundled("cases")]), [select_])
    targets = [Endpoint(name, server.url(scenario), model="m", profile=profile) for name, scenario in endpoints.items()]
    out = io.StringIO()
    console = Console(out, color="never")
    files = report_files(tmp_path)
    asyncio.run(execute(cases, targets, [*files, console], options=Options(timeout=10, deadline=30), environ={}))
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    return results["support"], (tmp_path / "summary.md").read_text(encoding="utf-8"), out.getvalue()


def verdicts(support: dict[str, Any], endpoint: str, names: Any) -> dict[str, str]:
    return {name: support[endpoint][name]["verdict"] for name in names}


@pytest.fixture(scope="module")
def openai_matrix(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, str]:
    scenarios = {"honours": "ok", "ignores": "params-ignored", "refuses": "params-refused", "breaks": "server-error"}
    return probe(server, scenarios, tmp_path_factory.mktemp("openai"))


def test_a_server_that_honours_each_parameter(openai_matrix: tuple[dict[str, Any], str, str]) -> None:
    support, _, _ = openai_matrix
    wanted = {n: "honoured" if n in OBSERVABLE else "accepted" for n in OPENAI}
    assert verdicts(support, "honours", OPENAI) == wanted


def test_a_server_that_silently_ignores_each_parameter(openai_matrix: tuple[dict[str, Any], str, str]) -> None:
    """stream is kept by the double (an SSE client could not read it otherwise): every other effect goes missing."""
    support, _, _ = openai_matrix
    wanted = {n: "ignored" if n in OBSERVABLE else "accepted" for n in OPENAI}
    wanted["stream"] = "honoured"
    assert verdicts(support, "ignores", OPENAI) == wanted


def test_a_server_that_refuses_each_parameter_naming_it(openai_matrix: tuple[dict[str, Any], str, str]) -> None:
    support, _, _ = openai_matrix
    assert verdicts(support, "refuses", OPENAI) == dict.fromkeys(OPENAI, "rejected")
    assert support["refuses"]["logprobs"]["why"] == "400, naming it"


def test_a_server_that_breaks_on_each_parameter(openai_matrix: tuple[dict[str, Any], str, str]) -> None:
    support, _, _ = openai_matrix
    assert verdicts(support, "breaks", OPENAI) == dict.fromkeys(OPENAI, "broken")


def test_every_parameter_has_a_row_and_its_probes(openai_matrix: tuple[dict[str, Any], str, str]) -> None:
    support, summary, console = openai_matrix
    assert list(support) == ["honours", "ignores", "refuses", "breaks"]
    for endpoint in support.values():
        assert list(endpoint) == [p.name for p in PARAMETERS]
        assert endpoint["extra_body.google.cached_content"] == {"verdict": "not probed", "cases": []}
    assert support["honours"]["logprobs"]["cases"] == ["params-logprobs"]
    assert support["honours"]["stop"]["cases"] == ["params-stop-string", "params-stop-list", "params-stop-stream"]
    assert "## Parameter support" in summary
    assert (
        "| `logprobs` | honoured (params-logprobs) | ignored (params-logprobs) | rejected (params-logprobs) |"
        in summary
    )
    assert "Parameter support" in console
    assert "│ logprobs" in console and "honoured" in console


def test_google_extensions_both_ways(server: Server, tmp_path: Path) -> None:
    scenarios = {"honours": "vertex", "ignores": "vertex+google-ignore-extensions"}
    support, _, _ = probe(server, scenarios, tmp_path, select_="param:extra_body.*")
    observable = {n: "honoured" if n in OBSERVABLE else "accepted" for n in ON_GOOGLE}
    assert verdicts(support, "honours", ON_GOOGLE) == observable
    ignored = {n: "ignored" if n in OBSERVABLE else "accepted" for n in ON_GOOGLE}
    assert verdicts(support, "ignores", ON_GOOGLE) == ignored
    assert verdicts(support, "honours", UNPROBED) == dict.fromkeys(UNPROBED, "not probed")


def test_google_surfaces_that_refuse_or_break(server: Server, tmp_path: Path) -> None:
    scenarios = {"refuses": "gemini+params-refused", "breaks": "vertex+server-error"}
    support, _, _ = probe(server, scenarios, tmp_path, select_="param:extra_body.*")
    assert verdicts(support, "refuses", ON_GOOGLE) == dict.fromkeys(ON_GOOGLE, "rejected")
    assert verdicts(support, "breaks", ON_GOOGLE) == dict.fromkeys(ON_GOOGLE, "broken")


def test_a_verdict_against_the_documentation_is_an_error(server: Server, tmp_path: Path) -> None:
    """Vertex documents stop as supported and logprobs as ignored: ignoring both contradicts only the first."""
    support, summary, console = probe(
        server, {"vertex-like": "params-ignored"}, tmp_path, profile="vertex", select_="param:stop,param:logprobs"
    )
    stop, logprobs = support["vertex-like"]["stop"], support["vertex-like"]["logprobs"]
    assert stop["verdict"] == "ignored" and stop["finding"]["severity"] == "error"
    assert stop["documented"] == {
        "status": "supported",
        "url": "https://cloud.google.com/vertex-ai/generative-ai/docs/migrate/openai/overview",
    }
    assert logprobs["verdict"] == "ignored" and "finding" not in logprobs
    assert logprobs["documented"]["status"] == "ignored"
    line = "error stop[vertex-like]: documented as supported (https://cloud.google.com/"
    assert line in console and "1 against the documentation" in console
    assert "- error stop\\[vertex-like\\]" in summary or "- error stop[vertex-like]" in summary


def test_a_run_without_probes_has_no_matrix(server: Server, tmp_path: Path) -> None:
    support, summary, console = probe(server, {"local": "ok"}, tmp_path, select_="text-basic")
    assert support == {}
    assert "Parameter support" not in summary and "Parameter support" not in console
