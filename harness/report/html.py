"""`report.html`: one self-contained page for reading a run, or several runs side by side, in a browser.

Its input is a list of result records, the objects `results.jsonl` holds a line each, so a run renders it from
the records it has already written to disk and a comparison can render records read back from several runs. The
records are read twice, once for the matrix and the figures (a few numbers each) and once for the exchanges,
written out one at a time: the page of a long run is never held in memory, nor are its exchanges.

Everything in the page that came from an endpoint or a file (answers, names, messages, pointers) is escaped
as text. The page's one script is fixed text, allowed by its hash in the page's Content-Security-Policy, which
also forbids loading anything at all: the page opens offline, fetches nothing, and markup smuggled into an
answer could not run even if it were not escaped. The plots are SVG drawn by pygal, imported only when a page
is rendered.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import re
import statistics
import sys
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .support import LEGEND

__all__ = ["PIECE_LIMIT", "html_report", "render_html"]

PIECE_LIMIT = 64 * 1024  # each pretty-printed piece of an exchange; results.json keeps it whole
VERDICTS = ("pass", "fail", "error", "skip")
Record = Mapping[str, Any]


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


@dataclass(slots=True)
class _Cell:
    """What the matrix keeps of one record: a few strings and two numbers, never its exchange."""

    index: int
    verdict: str
    codes: tuple[str, ...]
    total_ms: float | None
    ttft_ms: float | None
    status: Any
    warnings: tuple[str, ...]  # of its codes, those that are warnings (mostly none: the one empty tuple)
    reason: str


@dataclass(slots=True)
class _Matrix:
    """Rows (case, mode) by columns (endpoint), in the order they first appear in the records."""

    endpoints: list[str] = field(default_factory=list)
    rows: dict[tuple[str, str], dict[str, _Cell]] = field(default_factory=dict)
    row_tags: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    titles: dict[tuple[str, str], str] = field(default_factory=dict)
    tags: set[str] = field(default_factory=set)
    verdicts: Counter[str] = field(default_factory=Counter)
    by_endpoint: dict[str, Counter[str]] = field(default_factory=dict)
    total_ms: dict[str, list[float]] = field(default_factory=dict)
    ttft_ms: dict[str, list[float]] = field(default_factory=dict)

    def add(self, index: int, record: Record) -> None:
        endpoint = str(record.get("endpoint", ""))
        if endpoint not in self.by_endpoint:
            self.endpoints.append(endpoint)
            self.by_endpoint[endpoint] = Counter()
            self.total_ms[endpoint], self.ttft_ms[endpoint] = [], []
        key = (str(record.get("id", "")), sys.intern(str(record.get("mode") or "plain")))
        findings = [f for f in record.get("findings") or [] if isinstance(f, Mapping)]
        timings = record.get("timings")
        timings = timings if isinstance(timings, Mapping) else {}
        # Each record is parsed on its own, so its words (verdicts, codes, tags) are new strings each time: a cell
        # is kept for every result of the run, and holds the one copy of each word instead.
        verdict = sys.intern(str(record.get("verdict", "")))
        total_ms = _number(timings.get("total_ms"))
        cell = _Cell(
            index=index,
            verdict=verdict,
            codes=tuple(sorted({sys.intern(str(f.get("code", ""))) for f in findings})),
            total_ms=total_ms,
            ttft_ms=_number(timings.get("ttft_ms")),
            status=record.get("status"),
            warnings=tuple(
                sorted({sys.intern(str(f.get("code", ""))) for f in findings if f.get("severity") == "warning"})
            ),
            reason=str(record.get("reason") or "") if total_ms is None else "",  # shown only without a time
        )
        self.rows.setdefault(key, {})[endpoint] = cell
        tags = [sys.intern(str(t)) for t in record.get("tags") or []]
        self.row_tags.setdefault(key, [])
        self.row_tags[key] += [t for t in tags if t not in self.row_tags[key]]
        self.titles.setdefault(key, str(record.get("title") or ""))
        self.tags.update(tags)
        self.verdicts[verdict] += 1
        self.verdicts["warnings"] += len(cell.warnings)
        self.by_endpoint[endpoint][verdict] += 1
        self.by_endpoint[endpoint]["warnings"] += len(cell.warnings)
        if cell.total_ms is not None:
            self.total_ms[endpoint].append(cell.total_ms)
        if cell.ttft_ms is not None:
            self.ttft_ms[endpoint].append(cell.ttft_ms)


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# pygal's group of one series' shapes (`class="series serie-1 ..."`) and of its legend (`id="activate-serie-1"`).
_SERIE = re.compile(r"(?:^|[\s-])serie-(\d+)(?:\s|$)")


def _serie(element: Any) -> int | None:
    """The number of the series an SVG group of pygal's draws or names, or None."""
    found = _SERIE.search(f"{element.get('class', '')} {element.get('id', '')}")
    return int(found[1]) if found else None


def _plot(title: str, series: dict[str, list[float]]) -> str:
    """A box plot per endpoint as inline SVG, drawn by pygal, without the script pygal adds for its tooltips."""
    import pygal

    # Importing pygal appends a finder for its map plugins (pygal.maps.*, unused here) to sys.meta_path, with only
    # the legacy find_module: every later import that reaches it warns, an error under `-W error` (Kozea/pygal#532).
    sys.meta_path[:] = [finder for finder in sys.meta_path if type(finder).__module__ != "pygal"]

    endpoints = dict(enumerate(series))

    def offline(root: Any) -> Any:
        """No script (the page's policy would refuse it); each value's text as a native tooltip instead; each
        endpoint's box and legend marked with its column, so the page's endpoint filter hides them too."""
        for parent in list(root.iter()):
            for child in list(parent):
                name = child.tag.rsplit("}", 1)[-1] if isinstance(child.tag, str) else ""
                if name == "script":
                    parent.remove(child)
                elif name == "desc" and child.get("class") == "value":
                    tip = root.makeelement(child.tag.replace("desc", "title"), {})
                    tip.text = child.text
                    parent.insert(0, tip)
                elif name == "g" and (number := _serie(child)) in endpoints:
                    child.set("data-column", endpoints[number])
        return root

    chart = pygal.Box(
        title=title,
        js=[],
        box_mode="tukey",
        width=640,
        height=360,
        disable_xml_declaration=True,
        legend_at_bottom=True,
        y_title="ms",
    )
    chart.add_xml_filter(offline)
    for endpoint, values in series.items():
        chart.add(endpoint, values)
    return str(chart.render(is_unicode=True))


def _pretty(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > PIECE_LIMIT:
        text = (
            text[:PIECE_LIMIT]
            + f"\n… cut at {PIECE_LIMIT // 1024} KiB of {len(text)} characters (results.json has it whole)"
        )
    return text


def _one_a_line(events: Any) -> Any:
    """A stream's events one a line, each as compact JSON: the stream reads as it arrived, thirty events in thirty
    lines rather than hundreds (and in a tenth of the time: `indent` takes json's pure-Python encoder)."""
    if not isinstance(events, list):
        return events
    return "\n".join(json.dumps(event, ensure_ascii=False) for event in events)


def _piece(label: str, value: Any, *, open_: bool = False) -> str:
    return f"<details{' open' if open_ else ''}><summary>{_e(label)}</summary><pre>{_e(_pretty(value))}</pre></details>"


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em;color:#1b1b1b;background:#fff}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ddd;padding:.25em .5em;vertical-align:top}
th{background:#f4f4f4;text-align:left}.num{text-align:right}
.v{display:inline-block;padding:0 .4em;border-radius:3px;font-weight:600;font-size:.85em;color:#fff}
.v-pass{background:#2e7d32}.v-fail{background:#c62828}.v-error{background:#6a1b9a}.v-skip{background:#757575}
.v-none{background:#bbb}.warn{color:#a15c00}.codes a{display:block;font-family:monospace;font-size:.85em}
.figs{color:#555;font-size:.85em;white-space:nowrap}.why{white-space:normal}
.note{background:#fff3cd;padding:.5em;border:1px solid #e0c36a}
.filters{display:flex;flex-wrap:wrap;gap:1.2em;align-items:center;background:#f7f7f7;padding:.5em}
.filters fieldset{border:0;margin:0;padding:0}.plots{display:flex;flex-wrap:wrap;gap:1em}
.plots figure{margin:0}.plots svg{width:600px;max-width:100%;height:auto;border:1px solid #eee}
section.result{border:1px solid #ddd;margin:.8em 0;padding:.3em .8em}
section.result h3{font-size:1em;margin:.4em 0}pre{background:#f8f8f8;padding:.5em;overflow:auto;max-height:30em;
white-space:pre-wrap;word-break:break-all}code{font-size:.9em}.muted{color:#777}
.s{display:inline-block;padding:0 .4em;border-radius:3px;font-weight:600;font-size:.85em}
.s-honoured{background:#2e7d32;color:#fff}.s-accepted{background:#c8e6c9}.s-ignored{background:#f9a825}
.s-rejected{background:#c62828;color:#fff}.s-broken{background:#6a1b9a;color:#fff}.s-not-probed{background:#e0e0e0}
.contradicts{outline:2px solid #c62828}.evidence a{font-family:monospace;font-size:.85em;margin-right:.4em}
.doc{font-size:.85em;overflow-wrap:anywhere}[hidden]{display:none}
"""

# Fixed text: nothing from a record is ever put into it. Rows, cells and results carry what it filters on as
# data attributes; tags are a JSON array there, so any tag survives the round trip.
SCRIPT = """
(function () {
  "use strict";
  var all = function (selector) { return Array.prototype.slice.call(document.querySelectorAll(selector)); };
  var checked = function (name) {
    return all("input[name=" + name + "]:checked").map(function (input) { return input.value; });
  };
  function apply() {
    var tag = document.getElementById("filter-tag").value;
    var verdicts = checked("verdict"), endpoints = checked("endpoint");
    var tagged = function (element) {
      return !tag || JSON.parse(element.getAttribute("data-tags") || "[]").indexOf(tag) >= 0;
    };
    all("[data-column]").forEach(function (element) {  // an attribute, which SVG's shapes also take
      element.toggleAttribute("hidden", endpoints.indexOf(element.getAttribute("data-column")) < 0);
    });
    var rows = 0;
    all("tr.case").forEach(function (row) {
      var cells = all("#" + row.id + " td.cell").filter(function (cell) { return !cell.hidden; });
      var shown = tagged(row) && cells.some(function (cell) {
        return verdicts.indexOf(cell.getAttribute("data-verdict")) >= 0;
      });
      row.hidden = !shown;
      rows += shown ? 1 : 0;
    });
    var results = 0;
    all("section.result").forEach(function (section) {
      var shown = tagged(section) && endpoints.indexOf(section.getAttribute("data-endpoint")) >= 0 &&
        verdicts.indexOf(section.getAttribute("data-verdict")) >= 0;
      section.hidden = !shown;
      results += shown ? 1 : 0;
    });
    document.getElementById("shown-rows").textContent = String(rows);
    document.getElementById("shown-results").textContent = String(results);
  }
  all(".filters select, .filters input").forEach(function (input) { input.addEventListener("change", apply); });
  apply();
})();
"""


def _policy() -> str:
    digest = base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode("ascii")
    return f"default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'sha256-{digest}'"


def _head(title: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_policy()}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n"
    )


def _runs(runs: Sequence[Record], notes: Sequence[str]) -> str:
    parts = [f'<p class="note">{_e(note)}</p>' for note in notes if note]
    for run in runs:
        if run.get("interrupted"):
            by = run.get("interrupted_by") or "stopped"
            parts.append(f'<p class="note">INTERRUPTED ({_e(by)}): this report holds the cases that finished.</p>')
    parts.append("<table><tr><th>run</th><th>started</th><th>duration</th><th>origin</th><th>harness</th></tr>")
    for run in runs:
        seconds = _number(run.get("duration_s"))
        parts.append(
            f"<tr><td>{_e(run.get('id', ''))}</td><td>{_e(run.get('started', ''))}</td>"
            f"<td class=num>{'-' if seconds is None else f'{seconds:.1f} s'}</td><td>{_e(run.get('origin', ''))}</td>"
            f"<td>chat-conformance {_e(run.get('harness_version', ''))}</td></tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def _summary(matrix: _Matrix, runs: Sequence[Record]) -> str:
    v = matrix.verdicts
    described = {str(e.get("name")): e for run in runs for e in run.get("endpoints") or [] if isinstance(e, Mapping)}
    lines = [
        "<h2>Summary</h2>",
        f'<p id="counts"><b>{v["pass"]} passed, {v["fail"]} failed, {v["error"]} errors, {v["skip"]} skipped, '
        f"{v['warnings']} warnings</b> out of {sum(v[k] for k in VERDICTS)}.</p>",
        "<table><tr><th>endpoint</th><th>base URL</th><th>model</th><th>profile</th>"
        + "".join(f"<th>{k}</th>" for k in VERDICTS)
        + "<th>warnings</th><th>median ms</th><th>median TTFT ms</th></tr>",
    ]
    for name in matrix.endpoints:
        about = described.get(name, {})
        counts = matrix.by_endpoint[name]
        lines.append(
            f'<tr data-column="{_e(name)}"><td>{_e(name)}</td><td>{_e(about.get("base_url") or "")}</td>'
            f"<td>{_e(about.get('model') or '')}</td><td>{_e(about.get('profile') or '')}</td>"
            + "".join(f"<td class=num>{counts[k]}</td>" for k in VERDICTS)
            + f"<td class=num>{counts['warnings']}</td><td class=num>{_ms(_median(matrix.total_ms[name]))}</td>"
            f"<td class=num>{_ms(_median(matrix.ttft_ms[name]))}</td></tr>"
        )
    lines.append("</table>")
    return "\n".join(lines)


def _plots(matrix: _Matrix) -> str:
    lines = ['<h2>Latency</h2><div class="plots">']
    for key, title, series in (
        ("latency", "Total time per endpoint (ms)", matrix.total_ms),
        ("ttft", "Time to first token per endpoint, streamed cases (ms)", matrix.ttft_ms),
    ):
        if any(series.values()):
            lines.append(f'<figure id="plot-{key}">{_plot(title, series)}</figure>')
        else:
            lines.append(f'<p id="plot-{key}" class="muted">{_e(title)}: no timings in these results.</p>')
    lines.append("</div>")
    return "\n".join(lines)


def _filters(matrix: _Matrix) -> str:
    tags = "".join(f'<option value="{_e(t)}">{_e(t)}</option>' for t in sorted(matrix.tags))
    verdicts = "".join(
        f'<label><input type="checkbox" name="verdict" value="{k}" checked> {k}</label> ' for k in VERDICTS
    )
    endpoints = "".join(
        f'<label><input type="checkbox" name="endpoint" value="{_e(n)}" checked> {_e(n)}</label> '
        for n in matrix.endpoints
    )
    return (
        '<div class="filters"><label>tag <select id="filter-tag"><option value="">(any)</option>'
        f"{tags}</select></label><fieldset>verdict {verdicts}</fieldset><fieldset>endpoint {endpoints}</fieldset>"
        '<span class="muted"><span id="shown-rows">-</span> rows, <span id="shown-results">-</span> results shown'
        "</span></div>"
    )


def _cell(cell: _Cell | None, endpoint: str) -> str:
    column = f'data-column="{_e(endpoint)}"'
    if cell is None:
        return f'<td class="cell" {column} data-verdict="none"><span class="v v-none">not run</span></td>'
    codes = "".join(
        f'<a href="#r{cell.index}"{" class=warn" if code in cell.warnings else ""}>{_e(code)}</a>'
        for code in cell.codes
    )
    ttft = f" · TTFT {_ms(cell.ttft_ms)} ms" if cell.ttft_ms is not None else ""
    status = f"{_e(cell.status)} · " if cell.status is not None else ""
    figures = (
        f"{status}{_ms(cell.total_ms)} ms{ttft}"
        if cell.total_ms is not None
        else f'<span class="why">{_e(cell.reason[:120])}</span>'
    )
    return (
        f'<td class="cell" {column} data-endpoint="{_e(endpoint)}" data-verdict="{_e(cell.verdict)}">'
        f'<a class="v v-{_e(cell.verdict)}" href="#r{cell.index}">{_e(cell.verdict)}</a>'
        f'<div class="figs">{figures}</div><div class="codes">{codes}</div></td>'
    )


def _label(row: tuple[str, str]) -> str:
    """A matrix row's name: the case, and `[stream]` for the streamed run of a case run both ways."""
    case, mode = row
    return case if mode == "plain" else f"{case} [{mode}]"


def _matrix(matrix: _Matrix) -> Iterator[str]:
    """The matrix a line at a time: a long run's has a row per case, too long to hold as one string twice over."""
    yield "<h2>Matrix</h2>"
    yield _filters(matrix)
    yield (
        '<table id="matrix"><thead><tr><th>case</th>'
        + "".join(f'<th data-column="{_e(n)}">{_e(n)}</th>' for n in matrix.endpoints)
        + "</tr></thead><tbody>"
    )
    for number, (key, cells) in enumerate(matrix.rows.items()):
        label = _label(key)
        title = matrix.titles.get(key, "")
        tags = json.dumps(matrix.row_tags.get(key, []))
        yield (
            f'<tr class="case" id="row{number}" data-tags="{_e(tags)}"><th><code>{_e(label)}</code>'
            + (f'<div class="muted">{_e(title)}</div>' if title else "")
            + "</th>"
            + "".join(_cell(cells.get(endpoint), endpoint) for endpoint in matrix.endpoints)
            + "</tr>"
        )
    yield "</tbody></table>"


# The verdicts harness.support names; anything else a file says is shown unstyled, never as a class of its own.
_SUPPORT_CLASSES = {
    v: "s-" + v.replace(" ", "-") for v in ("honoured", "accepted", "ignored", "rejected", "broken", "not probed")
}
_MARKS = {"error": "!", "warning": "?"}


def _anchors(matrix: _Matrix, cases: Container[str]) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """(case id, endpoint) -> the results of that case on that endpoint, one per mode, as (label, index), for the
    probes' `cases` only: the matrix may hold thousands of others."""
    found: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for (case, mode), cells in matrix.rows.items():
        if case not in cases:
            continue
        for endpoint, cell in cells.items():
            found.setdefault((case, endpoint), []).append((_label((case, mode)), cell.index))
    return found


def _support_cell(cell: Any, endpoint: str, anchors: Mapping[tuple[str, str], list[tuple[str, int]]]) -> str:
    """The verdict, marked and explained when it contradicts the documentation, linked to the results it came from.

    The documentation's URL is shown as text, not a link: the page links only within itself.
    """
    cell = cell if isinstance(cell, Mapping) else {}
    verdict = str(cell.get("verdict") or "not probed")
    finding = cell.get("finding") if isinstance(cell.get("finding"), Mapping) else None
    documented = cell.get("documented") if isinstance(cell.get("documented"), Mapping) else None
    results = [found for case in cell.get("cases") or [] for found in anchors.get((str(case), endpoint), [])]
    mark = f" {_MARKS.get(str(finding.get('severity')), '!')}" if finding is not None else ""
    style = f'class="s {_SUPPORT_CLASSES.get(verdict, "")}"'
    parts = [
        f'<a {style} href="#r{results[0][1]}">{_e(verdict + mark)}</a>'
        if results
        else f"<span {style}>{_e(verdict + mark)}</span>"
    ]
    if cell.get("why") and finding is None:  # a contradiction's message says why already
        parts.append(f'<div class="figs why">{_e(cell["why"])}</div>')
    if finding is not None:
        parts.append(f'<div class="doc warn">{_e(finding.get("message", ""))}</div>')
    elif documented is not None and documented.get("url"):
        parts.append(
            f'<div class="doc muted">documented as {_e(documented.get("status", ""))}: {_e(documented["url"])}</div>'
        )
    if results:
        parts.append(
            '<div class="evidence">' + "".join(f'<a href="#r{i}">{_e(label)}</a>' for label, i in results) + "</div>"
        )
    contradicts = " contradicts" if finding is not None else ""
    return f'<td class="support{contradicts}" data-verdict="{_e(verdict)}">{"".join(parts)}</td>'


def _support(support: Mapping[str, Any], matrix: _Matrix) -> Iterator[str]:
    """The support matrix: a row per parameter, a column per endpoint, each cell linked to its probes' results."""
    endpoints = [e for e, cells in support.items() if isinstance(cells, Mapping)]
    names: dict[str, None] = {}
    cases: set[str] = set()
    for endpoint in endpoints:
        for name, cell in support[endpoint].items():
            names[str(name)] = None
            if isinstance(cell, Mapping):
                cases.update(str(case) for case in cell.get("cases") or [])
    anchors = _anchors(matrix, cases)
    yield "<h2>Parameter support</h2>"
    yield (
        '<table id="support"><thead><tr><th>parameter</th>'
        + "".join(f"<th>{_e(e)}</th>" for e in endpoints)
        + "</tr></thead><tbody>"
    )
    for name in names:
        cells = "".join(_support_cell(support[e].get(name), e, anchors) for e in endpoints)
        yield f"<tr><th><code>{_e(name)}</code></th>{cells}</tr>"
    yield "</tbody></table>"
    yield f'<p class="muted">{_e(LEGEND)}</p>'


def _findings(findings: list[Record]) -> str:
    if not findings:
        return '<p class="muted">No findings.</p>'
    rows = [
        "<table class=findings><tr><th>severity</th><th>code</th><th>pointer</th><th>message</th>"
        "<th>expected</th><th>actual</th></tr>"
    ]
    for f in findings:
        severity = str(f.get("severity", ""))
        note = f.get("note")
        rows.append(
            f'<tr><td class="{"warn" if severity == "warning" else ""}">{_e(severity)}</td>'
            f"<td><code>{_e(f.get('code', ''))}</code></td><td><code>{_e(f.get('pointer') or '/')}</code></td>"
            f"<td>{_e(f.get('message', ''))}"
            + (f'<div class="muted">{_e(note)}</div>' if note else "")
            + f"</td><td><code>{_e(_short(f.get('expected')))}</code></td>"
            f"<td><code>{_e(_short(f.get('actual')))}</code></td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _short(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:200] + "…"


def _result(index: int, record: Record) -> str:
    verdict = str(record.get("verdict", ""))
    endpoint = str(record.get("endpoint", ""))
    where = f"{record.get('file') or ''}:{record.get('line') or ''}".strip(":")
    exchange = record.get("exchange") if isinstance(record.get("exchange"), Mapping) else None
    findings = [f for f in record.get("findings") or [] if isinstance(f, Mapping)]
    parts = [
        f'<section class="result" id="r{index}" data-endpoint="{_e(endpoint)}" data-verdict="{_e(verdict)}" '
        f'data-tags="{_e(json.dumps([str(t) for t in record.get("tags") or []]))}">',
        f'<h3><span class="v v-{_e(verdict)}">{_e(verdict)}</span> <code>{_e(record.get("name", ""))}</code>'
        + (f' <span class="muted">{_e(where)}</span>' if where else "")
        + "</h3>",
    ]
    if record.get("reason"):
        parts.append(f"<p>{_e(record['reason'])}</p>")
    parts.append(_findings(findings))
    steps = [s for s in record.get("steps") or [] if isinstance(s, Mapping)]
    if steps:  # a multi-step case: each step's exchange under its name (the record's own is the last step's)
        for step in steps:
            shown = str(step.get("verdict", ""))
            parts.append(
                f'<h4>step <code>{_e(step.get("id", ""))}</code> <span class="v v-{_e(shown)}">{_e(shown)}</span></h4>'
            )
            if step.get("reason"):
                parts.append(f"<p>{_e(step['reason'])}</p>")
            parts += _exchange_pieces(step.get("exchange"))
    else:
        parts += _exchange_pieces(exchange)
    parts.append("</section>")
    return "\n".join(parts)


def _exchange_pieces(exchange: Any) -> list[str]:
    """The request and the answer of one exchange, as folding blocks (the answer open)."""
    if not isinstance(exchange, Mapping):
        return []
    parts = [_piece("request", exchange.get("request"))]
    if "response" in exchange:
        response = dict(exchange["response"])
        cut = response.pop("body_truncated_from", None)
        label = "response" + (f" (body cut at {PIECE_LIMIT // 1024} KiB of {cut} characters)" if cut else "")
        parts.append(_piece(label, response, open_=not isinstance(exchange.get("stream"), Mapping)))
    stream = exchange.get("stream")
    if isinstance(stream, Mapping):
        events = stream.get("events") or []
        parts.append(_piece(f"stream events ({len(events)})", _one_a_line(events)))
        parts.append(_piece("assembled message", stream.get("assembled"), open_=True))
        if stream.get("notes"):
            parts.append(_piece("stream notes", stream.get("notes")))
    if exchange.get("transport_error") is not None:
        parts.append(_piece("transport error", exchange.get("transport_error"), open_=True))
    return parts


def _safe(text: str) -> str:
    # A record may hold a lone surrogate (results.jsonl writes it as an escape, which reads back as one); UTF-8
    # cannot encode it, so it is shown as that escape and the page is still written.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def render_html(
    out: TextIO,
    *,
    records: Iterable[Record],
    runs: Sequence[Record] = (),
    notes: Sequence[str] = (),
    title: str = "",
    support: Mapping[str, Any] | None = None,
) -> None:
    """Write the page for `records` (result objects as results.jsonl holds them) to `out`.

    `records` is iterated twice, so pass a list or a `records.RecordLog`, not a generator. `runs` are the `run`
    headers of the results.json files the records come from; `notes` are lines shown first (a replayed run's banner).
    `support` is a support matrix as results.json's `support` member holds it; the page shows it when a probe ran.
    """
    matrix = _Matrix()
    for index, record in enumerate(records):
        matrix.add(index, record)
    heading = title or "Conformance " + (
        f"run {runs[0].get('id', '')}" if len(runs) == 1 else f"comparison of {len(runs)} runs"
    )

    def write(text: str) -> None:
        out.write(_safe(text))

    write(_head(heading))
    write(f"<h1>{_e(heading)}</h1>\n{_runs(runs, notes)}\n")
    write(_summary(matrix, runs) + "\n")
    write(_plots(matrix) + "\n")
    for line in _matrix(matrix):
        write(line + "\n")
    if support:
        for line in _support(support, matrix):
            write(line + "\n")
    write(
        '<h2>Results</h2><p class="muted">Each result with its findings and the exchange they point into '
        "(secrets redacted, as in results.json).</p>\n"
    )
    for index, record in enumerate(records):
        write(_result(index, record) + "\n")
    write(f"<script>{SCRIPT}</script>\n</body></html>\n")


def html_report(*, records: Iterable[Record], runs: Sequence[Record] = (), notes: Sequence[str] = ()) -> str:
    """The page as a string, for records already in hand."""
    out = io.StringIO()
    render_html(out, records=list(records), runs=runs, notes=notes)
    return out.getvalue()
