"""report.html: what the page holds, that nothing an endpoint sent can run in it, and how it reads in Chromium.

The page is built from result records (results.jsonl's lines). The tests here read its markup with the
standard library's HTML parser; the browser tests open it in the system's Chromium (Debian's `chromium`, driven by
Playwright with that executable: nothing is downloaded) and skip, saying so, only where it is not installed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.endpoints import Endpoint
from harness.models import Exchange, Finding, HttpResponse, Result, SentRequest, StepResult, Timings, Verdict
from harness.redact import Redactor
from harness.report import write_reports
from harness.report.html import PIECE_LIMIT, SCRIPT, html_report, render_html
from harness.report.records import RecordLog
from harness.resources import bundled
from harness.streams import read_stream
from tests.conftest import Harness
from tests.servers import Server
from tests.test_report import INFO as REPORT_INFO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = '</pre></td><script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">"\'&<!--'

INFO = replace(
    REPORT_INFO,
    origin="live",
    endpoints=(
        Endpoint(name="fast", base_url="http://127.0.0.1:9/v1", model="m"),
        Endpoint(name="slow", base_url="http://127.0.0.1:9/v1", model="m"),
    ),
)


class _Page(HTMLParser):
    """Every element with its attributes, and the text of every script."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def _result(case_id: str, endpoint: str, verdict: Verdict, *findings: Finding, **more: Any) -> Result:
    text = more.pop("text", '{"object": "chat.completion", "choices": [{"finish_reason": "stop"}]}')
    exchange = Exchange(
        request=SentRequest(
            method="POST",
            url="http://127.0.0.1:9/v1/chat/completions",
            headers={"authorization": "[redacted]"},
            body={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
        ),
        response=HttpResponse(
            status=200, headers={"content-type": "application/json"}, text=text, body=json.loads(text), size=len(text)
        ),
        timings=Timings(started="2026-01-01T00:00:00Z", total_ms=more.pop("ms", 12.0), ttft_ms=more.pop("ttft", None)),
    )
    fields: dict[str, Any] = {"file": "cases/text.case.yaml", "line": 2, "tags": ("text",), "exchange": exchange}
    return Result(case_id=case_id, endpoint=endpoint, verdict=verdict, findings=findings, **(fields | more))


FINISH = Finding(
    code="response.finish_reason_valid",
    pointer="/response/body/choices/0/finish_reason",
    message="finish_reason must be one of stop, length, tool_calls, content_filter; got 'STOP'",
)
RESULTS = [
    _result("text-basic", "fast", Verdict.PASS, ms=100.0),
    _result("text-basic", "slow", Verdict.FAIL, FINISH, ms=2000.0),
    _result("stream-basic", "fast", Verdict.PASS, ms=150.0, ttft=20.0, tags=("stream", "text")),
    _result("stream-basic", "slow", Verdict.PASS, ms=2500.0, ttft=1600.0, tags=("stream", "text")),
]


@pytest.fixture
def page(tmp_path: Path) -> str:
    write_reports(tmp_path, INFO, RESULTS)
    return (tmp_path / "report.html").read_text(encoding="utf-8")


def test_every_run_writes_report_html_beside_results_json(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert "<b>3 passed, 1 failed, 0 errors, 0 skipped, 0 warnings</b> out of 4." in page


def test_the_matrix_has_a_row_per_case_and_a_cell_per_endpoint(page: str) -> None:
    cells = [a for tag, a in _Page(page).elements if tag == "td" and a.get("class") == "cell"]
    assert [(c["data-endpoint"], c["data-verdict"]) for c in cells] == [
        ("fast", "pass"),
        ("slow", "fail"),
        ("fast", "pass"),
        ("slow", "pass"),
    ]
    assert re.search(r'data-verdict="fail">.*?2000 ms.*?response\.finish_reason_valid', page)
    assert "2500 ms · TTFT 1600 ms" in page


def test_a_finding_shows_its_pointer_and_the_exchange_it_came_from(page: str) -> None:
    section = page[page.index('<section class="result" id="r1"') :]
    section = section[: section.index("</section>")]
    assert "<code>/response/body/choices/0/finish_reason</code>" in section
    assert "got &#x27;STOP&#x27;" in section
    assert "&quot;finish_reason&quot;: &quot;stop&quot;" in section, "the answer, pretty-printed"
    assert "&quot;content&quot;: &quot;hi&quot;" in section, "the request"


def test_the_plots_are_inline_svg_per_endpoint(page: str) -> None:
    for plot in ("plot-latency", "plot-ttft"):
        figure = page[page.index(f'<figure id="{plot}">') :]
        figure = figure[: figure.index("</figure>")]
        assert "<svg" in figure and "fast" in figure and "slow" in figure
    assert "Q2: 1600" in page and "Q2: 20" in page


def test_the_page_fetches_nothing_and_runs_only_its_own_script(page: str) -> None:
    parsed = _Page(page)
    assert parsed.scripts == [SCRIPT]
    [policy] = [a["content"] for tag, a in parsed.elements if a.get("http-equiv") == "Content-Security-Policy"]
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()
    assert policy is not None and "default-src 'none'" in policy and f"'sha256-{digest}'" in policy
    for tag, attrs in parsed.elements:
        assert "src" not in attrs and tag not in ("link", "iframe", "object", "embed"), (tag, attrs)
        assert all((attrs.get(a) or "#").startswith("#") for a in ("href", "xlink:href")), (tag, attrs)


def test_nothing_an_endpoint_sends_can_inject_markup(tmp_path: Path) -> None:
    hostile = Finding(code="response.schema", pointer=f"/response/body/{HOSTILE}", message=HOSTILE, actual=HOSTILE)
    result = _result(
        f"case{HOSTILE}",
        f"ep{HOSTILE}",
        Verdict.FAIL,
        hostile,
        title=HOSTILE,
        tags=(HOSTILE,),
        reason=HOSTILE,
        text=json.dumps({"choices": [{"message": {"content": HOSTILE}}]}),
    )
    info = replace(INFO, endpoints=(Endpoint(name=f"ep{HOSTILE}", base_url=f"http://h/{HOSTILE}"),), banner=HOSTILE)
    write_reports(tmp_path, info, [result])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    parsed = _Page(page)
    assert parsed.scripts == [SCRIPT]
    assert not [(tag, a) for tag, a in parsed.elements if tag == "img" or any(k.startswith("on") for k in a)]
    assert "window.pwned" in page, "shown, as text"


def test_rendering_leaves_no_finder_of_pygal_behind(page: str) -> None:
    """pygal's legacy import hook would make every later failed import warn (an error under -W error)."""
    import sys

    assert not [f for f in sys.meta_path if type(f).__module__.startswith("pygal")]


def test_a_long_piece_is_cut_and_says_where_it_is_whole(tmp_path: Path) -> None:
    long = json.dumps({"choices": [{"message": {"content": "x" * (PIECE_LIMIT * 2)}}]})
    write_reports(tmp_path, INFO, [_result("text-basic", "fast", Verdict.PASS, text=long)])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"cut at {PIECE_LIMIT // 1024} KiB" in page and "results.json has it whole" in page
    assert len(page) < 4 * PIECE_LIMIT


def test_a_streams_events_are_shown_one_a_line_as_they_arrived(tmp_path: Path) -> None:
    chunks = [
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
        for choice in (
            {"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None},
            {"index": 0, "delta": {"content": "lo <b>"}, "finish_reason": None},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        )
    ]
    data = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    streamed = _result("stream-basic", "fast", Verdict.PASS, tags=("stream",))
    assert streamed.exchange is not None
    stream = read_stream([(5.0, data.encode())], Redactor())
    write_reports(tmp_path, INFO, [replace(streamed, exchange=replace(streamed.exchange, stream=stream))])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    shown = re.search(r"<summary>stream events \((\d+)\)</summary><pre>(.*?)</pre>", page, re.DOTALL)
    assert shown is not None and shown.group(1) == "4"
    events = [json.loads(line) for line in html.unescape(shown.group(2)).splitlines()]
    assert [e["line"] for e in events] == [1, 3, 5, 7]
    assert [e["data"] for e in events[:3]] == chunks


def test_a_multi_step_case_shows_every_step_s_exchange(tmp_path: Path) -> None:
    """Each step's request and answer under its name and verdict, not only the last step's."""
    base = _result("tools-roundtrip", "fast", Verdict.FAIL, FINISH)
    assert base.exchange is not None

    def asking(content: str) -> Exchange:
        assert base.exchange is not None
        request = replace(
            base.exchange.request, body={"model": "m", "messages": [{"role": "user", "content": content}]}
        )
        return replace(base.exchange, request=request)

    steps = (
        StepResult(step="call", verdict=Verdict.PASS, exchange=asking("first question")),
        StepResult(step="answer", verdict=Verdict.FAIL, exchange=asking("second question")),
    )
    write_reports(tmp_path, INFO, [replace(base, steps=steps, exchange=steps[-1].exchange)])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = page[page.index('id="r0"') :]
    headings = re.findall(r'<h4>step <code>(\w+)</code> <span class="v v-(\w+)">', section)
    assert headings == [("call", "pass"), ("answer", "fail")]
    assert section.index("first question") < section.index("<code>answer</code>") < section.index("second question")


def test_a_lone_surrogate_is_shown_as_its_escape(tmp_path: Path) -> None:
    odd = replace(FINISH, actual={"content": "\ud800", "text": "café 🎒"})
    write_reports(tmp_path, INFO, [_result("text-basic", "fast", Verdict.FAIL, odd)])
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "\\ud800" in page and "café 🎒" in page


def test_the_records_are_read_back_from_results_jsonl_in_planned_order(tmp_path: Path) -> None:
    write_reports(tmp_path, INFO, RESULTS)
    lines = (tmp_path / "results.jsonl").read_bytes().splitlines(keepends=True)
    places = [sum(len(line) for line in lines[:i]) for i in (3, 0)]
    log = RecordLog(tmp_path / "results.jsonl", places)
    assert [r["name"] for r in log] == ["stream-basic[slow]", "text-basic[fast]"]
    assert [r["name"] for r in log] == ["stream-basic[slow]", "text-basic[fast]"], "read again, from disk"
    assert len(list(RecordLog(tmp_path / "results.jsonl"))) == 4


def test_records_of_several_runs_render_into_one_page(tmp_path: Path) -> None:
    """What a comparison does: records read back from results.json files, each run's header beside them."""
    runs, records = [], []
    for name, results in (("a", RESULTS[:2]), ("b", RESULTS[2:])):
        write_reports(tmp_path / name, replace(INFO, run_id=name), results)
        document = json.loads((tmp_path / name / "results.json").read_text(encoding="utf-8"))
        runs.append(document["run"])
        records += document["results"]
    page = html_report(records=records, runs=runs)
    assert "<h1>Conformance comparison of 2 runs</h1>" in page
    assert page.count('<tr class="case"') == 2 and page.count('<section class="result"') == 4


# --- the support matrix -----------------------------------------------------------------------------------------


def _support_cells(page: str) -> dict[str, list[tuple[str, str, list[str]]]]:
    """parameter -> per endpoint (data-verdict, the verdict's text, the result anchors its cell links to)."""
    table = page[page.index('<table id="support">') :]
    table = table[: table.index("</table>")]
    rows: dict[str, list[tuple[str, str, list[str]]]] = {}
    for row in re.findall(r"<tr><th><code>(.*?)</code></th>(.*?)</tr>", table):
        name, cells = row
        rows[name] = [
            (verdict, text, re.findall(r'href="#(r\d+)"', body))
            for verdict, text, body in re.findall(
                r'<td class="support[^"]*" data-verdict="([^"]*)"><(?:a|span) class="s [^"]*"(?: href="#r\d+")?>'
                r"([^<]*)</(?:a|span)>(.*?)</td>",
                cells,
            )
        ]
    return rows


def test_the_bundled_probes_show_their_support_matrix_linked_to_the_results(harness: Harness, tmp_path: Path) -> None:
    outcome = harness(
        "run", "--replay", bundled("recordings"), "--select", "param:stop,param:n", "--report-dir", tmp_path
    )
    assert outcome.code == 1, "n is refused (a failure of its probes' cases), stop honoured"
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<h2>Parameter support</h2>" in page and "<th>llama.cpp-smollm2</th>" in page
    cells = _support_cells(page)
    [(verdict, text, stop)] = cells["stop"]
    assert (verdict, text) == ("honoured", "honoured") and len(stop) == 3
    [(verdict, text, n)] = cells["n"]
    assert (verdict, text, len(n)) == ("rejected", "rejected", 2)  # a link per result
    assert cells["logprobs"] == [("not probed", "not probed", [])]
    anchors = {a["id"] for tag, a in _Page(page).elements if tag == "section"}
    assert set(stop + n) <= anchors
    results = {f"r{i}": r for i, r in enumerate(json.loads((tmp_path / "results.json").read_text())["results"])}
    assert {results[a]["id"] for a in n} == {"params-n-2", "params-n-sampled"}
    assert {results[a]["id"] for a in stop} == {"params-stop-string", "params-stop-list", "params-stop-stream"}
    assert "ignored: a 200 without the effect" in page, "the legend under the table"
    assert page.index('<table id="support">') < page.index("<h2>Results</h2>")


def test_a_contradiction_is_marked_and_names_its_documentation(harness: Harness, tmp_path: Path) -> None:
    harness(
        "run", "--replay", bundled("recordings"), "--select", "param:n", "--profile", "vertex", "--report-dir", tmp_path
    )
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    [(verdict, text, _)] = _support_cells(page)["n"]
    assert (verdict, text) == ("rejected", "rejected !")
    assert '<td class="support contradicts"' in page
    assert "documented as supported (https://cloud.google.com/" in page, "shown as text: the page links only to itself"


def test_compare_puts_each_source_s_support_matrix_side_by_side(harness: Harness, tmp_path: Path) -> None:
    """A run judged against the generic profile and one against Vertex's documentation, compared: each column keeps
    its verdicts, the links reach its own results, and only the second marks n against its documentation."""
    probes = ("run", "--replay", bundled("recordings"), "--select", "param:stop,param:n", "-q", "--report-dir")
    harness(*probes, tmp_path / "generic")
    harness(*probes, tmp_path / "vertex", "--profile", "vertex")
    plain = harness(
        "run", "--replay", bundled("recordings"), "--select", "text-*", "-q", "--report-dir", tmp_path / "p"
    )
    outcome = harness(
        "compare", tmp_path / "generic", tmp_path / "vertex", tmp_path / "p", "--report-dir", tmp_path / "c"
    )
    assert plain.code == 0 and outcome.code == 0, outcome
    columns = ["generic/llama.cpp-smollm2", "vertex/llama.cpp-smollm2"]  # no column for a run without probes
    data = json.loads((tmp_path / "c" / "compare.json").read_text(encoding="utf-8"))
    assert list(data["support"]) == columns
    assert [data["support"][c]["n"]["verdict"] for c in columns] == ["rejected", "rejected"]
    assert "finding" not in data["support"][columns[0]]["n"] and "finding" in data["support"][columns[1]]["n"]
    page = (tmp_path / "c" / "report.html").read_text(encoding="utf-8")
    cells = _support_cells(page)
    assert [(verdict, text) for verdict, text, _ in cells["n"]] == [
        ("rejected", "rejected"),
        ("rejected", "rejected !"),
    ]
    assert [(verdict, len(links)) for verdict, _, links in cells["stop"]] == [("honoured", 3), ("honoured", 3)]
    links = [set(links) for _, _, links in cells["stop"]]
    assert not links[0] & links[1], "each column links to its own run's results"
    markdown = (tmp_path / "c" / "compare.md").read_text(encoding="utf-8")
    assert "| `n` | rejected (params-n-2, params-n-sampled) | rejected ! (params-n-2, params-n-sampled) |" in markdown
    assert "- error n[vertex/llama.cpp-smollm2]: documented as supported" in markdown


def test_a_bad_support_member_is_refused_saying_where(tmp_path: Path) -> None:
    from harness.compare import load_runs
    from harness.errors import HarnessError

    path = tmp_path / "results.json"
    data = {"format": "chat-conformance/results@1", "run": {}, "results": [], "support": {"e": {"stop": "honoured"}}}
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(HarnessError) as caught:
        load_runs([str(path)])
    assert str(caught.value) == f'{path}: /support/e/stop: expected {{"verdict": ..., "cases": [...]}}'


def test_no_probe_no_support_section(page: str) -> None:
    assert "Parameter support" not in page and 'id="support"' not in page


def test_a_hostile_support_matrix_cannot_inject_markup() -> None:
    records = [{"id": f"case{HOSTILE}", "endpoint": f"ep{HOSTILE}", "name": HOSTILE, "verdict": "pass"}]
    cell = {
        "verdict": HOSTILE,
        "cases": [f"case{HOSTILE}"],
        "why": HOSTILE,
        "documented": {"status": HOSTILE, "url": f"https://x/{HOSTILE}"},
        "finding": {"severity": HOSTILE, "message": HOSTILE},
    }
    support = {f"ep{HOSTILE}": {f"p{HOSTILE}": cell, "stop": {**cell, "finding": None}}}
    out = io.StringIO()
    render_html(out, records=records, support=support)
    page = out.getvalue()
    parsed = _Page(page)
    assert parsed.scripts == [SCRIPT]
    assert not [(tag, a) for tag, a in parsed.elements if tag == "img" or any(k.startswith("on") for k in a)]
    assert all((a.get("href") or "#").startswith("#") for _, a in parsed.elements)
    assert 'href="#r0"' in page, "the hostile case still links to its result"
    assert page.count("window.pwned") >= 8, "shown, as text"


# --- in Chromium -------------------------------------------------------------------------------------------------


class _Opened:
    """A page opened from a file, with every console message, page error and request it made."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.console: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")

    def visible(self, selector: str) -> int:
        return int(self.page.locator(selector).filter(visible=True).count())

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).first.inner_text())


class _Chromium:
    """The system's Chromium, started at the first page opened: Playwright's sync API keeps an event loop running
    while it is started, and a harness run (asyncio.run) cannot start inside one, so runs go first."""

    def __init__(self) -> None:
        self._playwright: Any = None
        self._browser: Any = None

    def open(self, path: Path) -> _Opened:
        if self._browser is None:
            from playwright.sync_api import sync_playwright

            self._playwright = sync_playwright().start()
            self._browser = self._playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        return _Opened(self._browser, path)

    def close(self) -> None:
        if self._browser is not None:
            self._browser.close()
            self._playwright.stop()


@pytest.fixture
def chromium() -> Iterator[_Chromium]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's package (apt-get install -y chromium)")
    browser = _Chromium()
    try:
        yield browser
    finally:
        browser.close()


@pytest.mark.browser
def test_two_endpoints_in_one_run_read_side_by_side_in_chromium(
    chromium: _Chromium, server: Server, harness: Harness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conformant endpoint and a queued one that upper-cases finish_reason, in one run, as the page shows them."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "harness.yaml").write_text(
        f"endpoints:\n  good: {{base_url: '{server.url('ok')}', model: m}}\n"
        f"  bad: {{base_url: '{server.url('queued+finish-invalid')}', model: m}}\n",
        encoding="utf-8",
    )
    cases = bundled("cases")
    selected = ("--select", "text-basic", "--select", "text-system-user", "--select", "stream-text-basic")
    outcome = harness(
        "run", cases / "text.case.yaml", cases / "stream.case.yaml", *selected, "--report-dir", "out", "-q"
    )
    assert outcome.code == 1, outcome.out + outcome.err
    assert "report: out/report.html" in outcome.out

    opened = chromium.open(tmp_path / "out" / "report.html")
    page = opened.page
    page.screenshot(path=str(tmp_path / "report.png"))  # the summary, the plots and the matrix, as first seen
    page.screenshot(path=str(tmp_path / "report-full.png"), full_page=True)
    assert opened.console == [], "the page opens with no console message"
    assert opened.requests == [(tmp_path / "out" / "report.html").as_uri()], "it fetches nothing"

    # The matrix: every case passes on one endpoint and fails on the other, with the finding's code.
    assert opened.visible("tr.case") == 3
    assert opened.visible('td.cell[data-endpoint="good"][data-verdict="pass"]') == 3
    assert opened.visible('td.cell[data-endpoint="bad"][data-verdict="fail"]') == 3
    assert "response.finish_reason" in opened.text('td.cell[data-endpoint="bad"]')

    # The filters change what is shown.
    page.uncheck('input[name="verdict"][value="fail"]')
    assert opened.visible("tr.case") == 3 and opened.visible("section.result") == 3  # the good endpoint's passes
    page.uncheck('input[name="endpoint"][value="good"]')
    assert opened.visible("tr.case") == 0 and opened.text("#shown-rows") == "0"
    assert opened.visible('th[data-column="good"]') == 0
    for plot in ("#plot-latency", "#plot-ttft"):  # the plots follow the endpoint filter: its box and its legend
        assert page.locator(f'{plot} g[data-column="good"]').count() >= 2
        assert opened.visible(f'{plot} g[data-column="good"]') == 0, plot
        assert opened.visible(f'{plot} g.legend[data-column="bad"]') == 1, plot
    page.check('input[name="verdict"][value="fail"]')
    assert opened.visible("tr.case") == 3 and opened.visible("section.result") == 3
    page.select_option("#filter-tag", "stream")
    assert opened.visible("tr.case") == 1 and "stream-text-basic" in opened.text("tr.case:visible")
    page.select_option("#filter-tag", "")
    page.check('input[name="endpoint"][value="good"]')
    assert opened.visible("section.result") == 6
    assert opened.visible('#plot-ttft g.legend[data-column="good"]') == 1

    # A finding, with its pointer and the exchange it came from.
    page.locator('td.cell[data-endpoint="bad"] .codes a').first.click()
    failed = page.locator('section.result[data-endpoint="bad"]').first
    assert "/response/body/choices/0/finish_reason" in failed.inner_text()
    assert '"finish_reason": "STOP"' in failed.locator("details", has_text="response").first.inner_text()

    # The plots: the queued endpoint's median is above the 1.5 s it waits, the other's well below it.
    medians = {}
    for plot in ("#plot-latency", "#plot-ttft"):
        assert page.locator(f"{plot} svg").is_visible()
        legend = page.locator(f"{plot} .legends").text_content() or ""
        assert "good" in legend and "bad" in legend
        for series, name in ((0, "good"), (1, "bad")):
            tip = page.locator(f"{plot} .serie-{series} desc.value").first.text_content() or ""
            medians[plot, name] = float(re.search(r"Q2: ([\d.]+)", tip)[1])  # type: ignore[index]
    for plot in ("#plot-latency", "#plot-ttft"):
        assert medians[plot, "bad"] >= 1500 > medians[plot, "good"], medians
    assert opened.console == []


@pytest.mark.browser
def test_a_hostile_answer_runs_nothing_in_chromium(chromium: _Chromium, tmp_path: Path) -> None:
    text = json.dumps({"choices": [{"message": {"content": HOSTILE}}]})
    hostile = replace(FINISH, message=HOSTILE)
    endpoint = f"ep{HOSTILE}"
    result = _result(f"case{HOSTILE}", endpoint, Verdict.FAIL, hostile, text=text, title=HOSTILE, tags=(HOSTILE,))
    info = replace(INFO, banner=HOSTILE, endpoints=(Endpoint(name=endpoint, base_url="http://127.0.0.1:9/v1"),))
    write_reports(tmp_path, info, [result])
    opened = chromium.open(tmp_path / "report.html")
    page = opened.page
    assert page.evaluate("typeof window.pwned") == "undefined"
    assert page.locator("img").count() == 0
    assert HOSTILE in opened.text("section.result")
    # What the filters match on survives the round trip through the page's attributes, whatever it holds.
    page.select_option("#filter-tag", HOSTILE)
    assert opened.visible("tr.case") == 1
    page.locator('input[name="endpoint"]').uncheck()
    assert opened.visible("tr.case") == 0 and opened.visible("section.result") == 0
    page.locator('input[name="endpoint"]').check()
    assert opened.visible("tr.case") == 1 and opened.visible("section.result") == 1
    assert opened.console == []
