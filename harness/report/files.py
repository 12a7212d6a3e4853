"""The files a run writes into its report folder, each written atomically (a temp file, then a rename)."""

from __future__ import annotations

import io
import itertools
import json
import re
import socket
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from ..atomic import atomic_stream
from ..endpoints import Endpoint
from ..events import Handler, ResultReady, RunFinished, RunStarted
from ..models import Result, Severity, Verdict
from ..support import Cell, SupportMatrix
from .digest import Digest, Digests, Places, Tally, digest, summarize
from .html import render_html
from .info import RunInfo
from .matrix import Column, Matrix, markdown, overview
from .records import RESULTS_FORMAT, RecordLog, json_document, json_text, result_json
from .support import matrix_markdown

__all__ = [
    "RESULTS_FORMAT",
    "HtmlFile",
    "JUnitFile",
    "ResultsFile",
    "SummaryFile",
    "junit_xml",
    "render_summary",
    "report_files",
    "result_json",
    "result_line",
    "results_json",
    "summarize",
    "summary_md",
    "tell",
    "write_reports",
]

Write = Callable[[str], object]


def _endpoint_json(endpoint: Endpoint, profile: str) -> dict[str, Any]:
    return {"name": endpoint.name, "base_url": endpoint.base_url, "model": endpoint.model, "profile": profile}


def result_line(result: Result) -> str:
    """A result as its line of results.jsonl (no newline): what the report folder keeps of its exchange."""
    return json_text(json.dumps(result_json(result), ensure_ascii=False))


def _run_json(info: RunInfo) -> dict[str, Any]:
    return {
        "id": info.run_id,
        "started": info.started,
        "finished": info.finished,
        "duration_s": info.duration_s,
        "harness_version": info.harness_version,
        "origin": info.origin,
        "clients": list(info.clients),
        "case_paths": list(info.case_paths),
        "selected": list(info.selected),
        "endpoints": [_endpoint_json(e, info.profiles.get(e.name, e.profile)) for e in info.endpoints],
        "interrupted": info.interrupted,
        "interrupted_by": info.interrupted_by or None,
        "concurrency": info.concurrency,
        "repeat": info.repeat,
    }


def _assemble(
    info: RunInfo, summary: dict[str, int], support: dict[str, Any], lines: Iterable[str], out: TextIO
) -> None:
    """results.json from the JSON Lines record, one result at a time: the header indented, a result a line."""
    header = {"format": RESULTS_FORMAT, "run": _run_json(info), "summary": summary, "support": support}
    json_document(out, header, "results", lines)


class ResultsFile:
    """`results.jsonl`, a line per result as it arrives, then `results.json` assembled from it at the end.

    The JSON Lines file is the run's append-only record: an interrupted or killed run keeps every result that
    finished, and memory holds none of them.
    """

    def __init__(self, directory: Path, targets: dict[str, str] | None = None) -> None:
        self.path = directory / "results.json"
        self.log = directory / "results.jsonl"
        self._targets = targets or {}
        self._info: RunInfo | None = None
        self._tally = Tally()
        self._matrix = SupportMatrix()
        self._handle: BinaryIO | None = None
        self._places = Places()  # the byte offset of each line, for results.json's order

    def start(self, event: RunStarted) -> None:
        self._info = RunInfo.opening(event, self._targets)
        self._matrix = self._info.matrix()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.log.open("wb")
        self._places = Places()

    def result(self, event: ResultReady) -> None:
        self.keep(event.index, result_line(event.result), event.result)

    def keep(self, index: int, line: str, result: Result | Digest) -> None:
        """Write one result's line, made here or in another process (a pytest-xdist worker's result)."""
        assert self._handle is not None
        self._places.add(index, self._handle.tell())
        self._handle.write((line + "\n").encode("utf-8"))
        self._handle.flush()
        self._tally.add(result)
        _fold(self._matrix, result)

    def finish(self, event: RunFinished) -> None:
        assert self._info is not None and self._handle is not None
        self._handle.close()
        info = self._info.closing(event)
        with self.log.open("rb") as log:

            def in_order() -> Iterator[str]:
                """The lines in planned order, read one at a time (results arrive in the order they finish)."""
                for offset in self._places.in_order():
                    log.seek(offset)
                    yield log.readline().decode("utf-8")

            support = self._matrix.to_json()
            atomic_stream(self.path, lambda out: _assemble(info, self._tally.counts(), support, in_order(), out))

    def support(self) -> dict[str, dict[str, Any]]:
        """The support matrix of the results kept so far, as results.json's `support` member holds it."""
        return self._matrix.to_json()

    def records(self) -> RecordLog:
        """The records written so far, read back from `results.jsonl` in planned order each time they are iterated."""
        return RecordLog(self.log, list(self._places.in_order()))


def results_json(info: RunInfo, results: list[Result]) -> str:
    """The whole results.json of `results`, as a string (the file reporter writes the same, in pieces)."""
    lines = [result_line(r) for r in results]
    out = io.StringIO()
    _assemble(info, summarize(results), _matrix_of(info, results).to_json(), lines, out)
    return out.getvalue()


def _fold(matrix: SupportMatrix, result: Result | Digest) -> None:
    """Fold one result into the support matrix, whether it was judged here or in a pytest-xdist worker."""
    if isinstance(result, Digest):
        matrix.fold(result.record.endpoint, result.record.case, result.support)
    else:
        matrix.add(result)


def _matrix_of(info: RunInfo, results: Iterable[Result]) -> SupportMatrix:
    matrix = info.matrix()
    for result in results:
        matrix.add(result)
    return matrix


# XML 1.0 cannot hold most control characters nor lone surrogates (a JSON string may decode to one); an answer
# that contains them must still give a junit.xml that parses.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def _junit(info: RunInfo, digests: Iterable[Digest], matrix: SupportMatrix, write: Write) -> None:
    """JUnit XML in the shape pytest's xunit2 family and Jenkins' junit-10.xsd describe (tests/data/junit.xsd).

    Written a testcase at a time, as `ET.indent` and `ET.tostring` would write the whole tree, so a long run's
    file is never held in memory; `digests` is read once for the totals, then once per endpoint. A parameter whose
    verdict contradicts its provider's documentation fails the run, so it is a testcase of its endpoint's suite too
    (`support` in its classname): a dashboard that reads junit.xml then shows why the exit code was 1.
    """
    tallies: dict[str, Tally] = {}
    seconds: dict[str, float] = {}
    total = Tally()
    time_all = 0.0
    for d in digests:
        total.add(d)
        tallies.setdefault(d.endpoint, Tally()).add(d)
        time_all += d.seconds
        seconds[d.endpoint] = seconds.get(d.endpoint, 0.0) + d.seconds
    departures: dict[str, list[ET.Element]] = {}
    for where, name, cell in matrix.contradictions():
        departures.setdefault(where, []).append(_departure(name, cell))
    failing = {e: sum(1 for c in cases if c.find("failure") is not None) for e, cases in departures.items()}
    counts = total.counts()
    root = ET.Element(
        "testsuites",
        name="chat-conformance",
        tests=str(counts["total"] + sum(map(len, departures.values()))),
        failures=str(counts["fail"] + sum(failing.values())),
        errors=str(counts["error"]),
        time=f"{time_all:.3f}",
    )
    write('<?xml version="1.0" encoding="utf-8"?>\n')
    hostname = socket.gethostname() or "localhost"
    suites = []
    for endpoint in info.endpoints:
        mine = (tallies.get(endpoint.name) or Tally()).counts()
        extra = departures.get(endpoint.name, [])
        suite = ET.Element(
            "testsuite",
            name=endpoint.name,
            tests=str(mine["total"] + len(extra)),
            failures=str(mine["fail"] + failing.get(endpoint.name, 0)),
            errors=str(mine["error"]),
            skipped=str(mine["skip"]),
            time=f"{seconds.get(endpoint.name, 0.0):.3f}",
            timestamp=info.started,
            hostname=hostname,
        )
        said = {"origin": info.origin} if info.origin != "live" else {}
        if info.interrupted:
            said["interrupted"] = info.interrupted_by or "yes"
        properties = None
        if said:
            properties = ET.Element("properties")
            for name, value in said.items():
                ET.SubElement(properties, "property", name=name, value=value)
        suites.append((suite, properties, mine["total"], extra))
    if not suites:
        write(_xml_safe(_tag(root, close=True)) + "\n")
        return
    write(_xml_safe(_tag(root)) + "\n  ")
    for number, (suite, properties, cases, extra) in enumerate(suites):
        tail = "\n  " if number < len(suites) - 1 else "\n"
        count = cases + len(extra)
        if not count and properties is None:
            write(_xml_safe(_tag(suite, close=True)) + tail)
            continue
        write(_xml_safe(_tag(suite)))
        if properties is not None:
            ET.indent(properties, level=2)
            properties.tail = "\n    " if count else "\n  "
            write("\n    " + _xml_safe(ET.tostring(properties, encoding="unicode")))
        else:
            write("\n    ")
        left = count
        mine_only = (d for d in digests if d.endpoint == suite.get("name")) if cases else ()
        for case in itertools.chain(map(_testcase, mine_only), extra):
            left -= 1
            ET.indent(case, level=2)
            case.tail = "\n    " if left else "\n  "
            write(_xml_safe(ET.tostring(case, encoding="unicode")))
        write(f"</testsuite>{tail}")
    write("</testsuites>\n")


def _tag(element: ET.Element, *, close: bool = False) -> str:
    """The opening tag of an element without children (`<name a="1">`), or the whole of it, closed (`<name />`)."""
    text = ET.tostring(element, encoding="unicode")
    return text if close else text.removesuffix(" />") + ">"


def _testcase(d: Digest) -> ET.Element:
    case = ET.Element("testcase", classname=d.classname, name=d.name, time=f"{d.seconds:.3f}")
    if d.file:
        case.set("file", d.file)
    if d.line:  # a case built in code has no line; the schema wants a positive one or none
        case.set("line", str(d.line))
    if d.verdict is Verdict.FAIL:
        ET.SubElement(case, "failure", message=d.headline, type=d.kind).text = d.block
    elif d.verdict is Verdict.ERROR:
        ET.SubElement(case, "error", message=d.headline, type=d.kind).text = d.block
    elif d.verdict is Verdict.SKIP:
        ET.SubElement(case, "skipped", message=d.reason)
    elif d.warnings:
        ET.SubElement(case, "system-out").text = d.block
    return case


def _departure(name: str, cell: Cell) -> ET.Element:
    """A verdict against the documentation as a testcase: a failure when it is an error, else a note in its output."""
    case = ET.Element("testcase", classname="support", name=name, time="0.000")
    message = cell.message()
    if cell.severity is Severity.ERROR:
        ET.SubElement(case, "failure", message=message, type="support.contradicts_documentation").text = message
    else:
        ET.SubElement(case, "system-out").text = message
    return case


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _matrix(info: RunInfo, digests: Iterable[Digest]) -> Matrix:
    """summary.md's short matrix, folded from the digests as they are read back: none is held past its turn."""
    columns = [
        Column(
            key=e.name,
            run=info.run_id,
            endpoint=e.name,
            origin=info.origin,
            model=e.model,
            profile=info.profiles.get(e.name, e.profile),
            concurrency=info.concurrency,
            repeat=info.repeat,
        )
        for e in info.endpoints
    ]
    return overview(columns, (d.record for d in digests))


class _Lines:
    """Lines written as `"\\n".join(lines).rstrip() + "\\n"` would give them, without holding them: everything from
    the last line with text in it waits, since only that part can lose trailing blanks."""

    def __init__(self, write: Write) -> None:
        self._out = write
        self._started = False
        self._waiting: list[str] = []

    def add(self, *lines: str) -> None:
        for line in lines:
            if line.strip():
                self._write("\n".join(self._waiting))
                self._waiting = []
            self._waiting.append(line)

    def close(self) -> None:
        self._write("\n".join(self._waiting).rstrip())
        self._out("\n")

    def _write(self, text: str) -> None:
        if not self._waiting:
            return
        self._out(("\n" if self._started else "") + text)
        self._started = True


def render_summary(info: RunInfo, digests: Iterable[Digest], matrix: SupportMatrix | None = None) -> str:
    """summary.md as a string (for GitHub's step summary); `digests` is read several times."""
    out = io.StringIO()
    _summary(info, digests, matrix, out.write)
    return out.getvalue()


def _summary(info: RunInfo, digests: Iterable[Digest], matrix: SupportMatrix | None, write: Write) -> None:
    """summary.md, a row or a failure at a time: `digests` is read once for each part."""
    lines = _Lines(write)
    # A run's store has counted its digests as they came: a pass fewer over a long run's, read back from disk.
    counts = digests.counts() if isinstance(digests, Digests) else summarize(digests)
    lines.add(f"# Conformance run {info.run_id}", "")
    if info.banner:
        lines.add(f"> {info.banner}", "")
    if info.interrupted:
        lines.add(f"> INTERRUPTED ({info.interrupted_by or 'stopped'}): this report holds the cases that finished.", "")
    lines.add(
        f"{info.started} · {info.duration_s:.1f} s · chat-conformance {info.harness_version}",
        "",
        *([f"Clients checked: {'; '.join(info.clients)}.", ""] if info.clients else []),
        f"**{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, {counts['skip']} skipped,"
        f" {counts['warnings']} warnings** out of {counts['total']}.",
        "",
        "| endpoint | base URL | model | profile |",
        "|---|---|---|---|",
    )
    for e in info.endpoints:
        lines.add(
            f"| {_cell(e.name)} | {_cell(e.base_url)} | {_cell(e.model or '(none)')} | "
            f"{_cell(info.profiles.get(e.name, e.profile))} |"
        )
    lines.add(*_clients(info, digests))
    if counts["total"]:
        lines.add("", "## Matrix", "", markdown(_matrix(info, digests), short=True).rstrip())
    lines.add(
        "",
        "## Results",
        "",
        "| case | endpoint | verdict | status | ms | ttft ms | tokens (prompt/completion) | findings |",
        "|---|---|---|---|---|---|---|---|",
    )
    warned: Counter[str] = Counter()
    notes: dict[str, str] = {}
    bad = 0
    for d in digests:
        codes = ", ".join(d.codes) or (d.reason if d.verdict is Verdict.SKIP else "")
        status, ms, ttft, tokens = d.cells
        lines.add(
            f"| {_cell(d.case)} | {_cell(d.endpoint)} | {d.verdict.value} | {status} | {ms} | {ttft} | {tokens} "
            f"| {_cell(codes)} |"
        )
        bad += d.bad
        warned.update(code for code, _ in d.warnings)
        notes.update(d.warnings)
    support = matrix_markdown(matrix) if matrix is not None else []
    if support:
        lines.add("", *support)
    if bad:
        lines.add("", "## Failures", "")
        for d in digests:
            if d.bad:
                lines.add(f"### {_cell(d.name)}", "", "```text", d.block, "```", "")
    if warned:
        lines.add("", "## Warnings", "", "| check | cases | why it is a warning |", "|---|---|---|")
        for code, count in sorted(warned.items()):
            lines.add(f"| {code} | {count} | {_cell(notes[code])} |")
    lines.close()


def _clients(info: RunInfo, digests: Iterable[Digest]) -> list[str]:
    """Per endpoint, whether each official SDK that was checked reads its answers, and on which cases it breaks.

    One pass over the digests, keeping only the names of the cases a client breaks on: the digests may be a
    long run's, read back from disk."""
    checked = [status for status in info.clients if "not checked" not in status]
    if not checked:
        return []
    families = {status: "client." + status.split()[0].replace("-", "_") + "." for status in checked}
    judged: Counter[str] = Counter()
    broken: dict[tuple[str, str], list[str]] = {}
    for d in digests:
        if d.verdict is Verdict.SKIP:
            continue
        judged[d.endpoint] += 1
        warned = dict(d.warnings)
        for status, family in families.items():
            codes = [c for c in d.codes if c.startswith(family) and c not in warned]
            if codes:
                broken.setdefault((d.endpoint, status), []).append(f"{d.name} ({', '.join(codes)})")
    lines = ["", "## Clients", "", "| endpoint | client | cases it breaks on |", "|---|---|---|"]
    for e in info.endpoints:
        for status in checked:
            names, total = broken.get((e.name, status), []), judged[e.name]
            verdict = f"{len(names)} of {total}: " + "; ".join(names) if names else f"none of {total}"
            lines.append(f"| {_cell(e.name)} | {_cell(status)} | {_cell(verdict)} |")
    return lines


class _DigestFile:
    """A report file rendered at the end from the digests of every result (see `Digests`), which the files of a
    report folder and its console share."""

    name = ""

    def __init__(self, directory: Path, targets: dict[str, str] | None = None, digests: Digests | None = None) -> None:
        self.path = directory / self.name
        self._targets = targets or {}
        self._info: RunInfo | None = None
        self.digests = digests or Digests(directory)
        self._matrix = SupportMatrix()

    def start(self, event: RunStarted) -> None:
        self._info = RunInfo.opening(event, self._targets)
        self.digests.open()
        self._matrix = self._info.matrix()

    def result(self, event: ResultReady) -> None:
        self.keep(event.index, "", event.result)

    def keep(self, index: int, line: str, result: Result | Digest) -> None:
        """Keep one result's digest, made here or in another process (a pytest-xdist worker's result)."""
        self.digests.add(index, result, self._info)
        _fold(self._matrix, result)

    def finish(self, event: RunFinished) -> None:
        assert self._info is not None
        info = self._info.closing(event)
        try:
            atomic_stream(
                self.path,
                lambda out: self.render(info, self.digests, self._matrix, lambda text: out.write(json_text(text))),
            )
        finally:
            self.digests.release()

    def render(self, info: RunInfo, digests: Iterable[Digest], matrix: SupportMatrix, write: Write) -> None:
        raise NotImplementedError


class JUnitFile(_DigestFile):
    """`junit.xml`: one testcase per case and endpoint, for CI dashboards."""

    name = "junit.xml"

    def render(self, info: RunInfo, digests: Iterable[Digest], matrix: SupportMatrix, write: Write) -> None:
        _junit(info, digests, matrix, write)


class SummaryFile(_DigestFile):
    """`summary.md`: the run for a pull request or a wiki."""

    name = "summary.md"

    def render(self, info: RunInfo, digests: Iterable[Digest], matrix: SupportMatrix, write: Write) -> None:
        _summary(info, digests, matrix, write)


class HtmlFile:
    """`report.html`: the run as one page for a browser, rendered at the end from the records in `results.jsonl`.

    It keeps nothing of a result as it arrives: the records are already on disk, so the page of a long run costs
    no more memory than one exchange at a time.
    """

    def __init__(self, directory: Path, results: ResultsFile, targets: dict[str, str] | None = None) -> None:
        self.path = directory / "report.html"
        self._results = results
        self._targets = targets or {}
        self._info: RunInfo | None = None

    def start(self, event: RunStarted) -> None:
        self._info = RunInfo.opening(event, self._targets)

    def result(self, event: ResultReady) -> None:
        pass

    def keep(self, index: int, line: str, result: Result | Digest) -> None:
        """Nothing to keep: a result from another process reaches `results.jsonl`, which the page is read from."""

    def finish(self, event: RunFinished) -> None:
        assert self._info is not None
        info = self._info.closing(event)
        records = self._results.records()
        support = self._results.support()
        atomic_stream(
            self.path,
            lambda out: render_html(
                out,
                records=records,
                runs=[_run_json(info)],
                notes=[info.banner] if info.banner else [],
                support=support,
            ),
        )


ReportFile = ResultsFile | JUnitFile | SummaryFile | HtmlFile
"""One handler of a run's report folder; each can also `keep` a result made in another process."""


def junit_xml(info: RunInfo, results: list[Result]) -> str:
    out = io.StringIO()
    _junit(info, [digest(r, info) for r in results], _matrix_of(info, results), out.write)
    return out.getvalue()


def summary_md(info: RunInfo, results: list[Result], banner: str = "") -> str:
    shown = replace(info, banner=banner or info.banner)
    return render_summary(shown, [digest(r, info) for r in results], _matrix_of(info, results))


def report_files(
    directory: Path, targets: dict[str, str] | None = None, digests: Digests | None = None
) -> list[ReportFile]:
    """The handlers that write a run's report folder: results.jsonl and results.json, junit.xml, summary.md and
    report.html (which reads its records back from results.jsonl, so it comes after it).

    junit.xml and summary.md share `digests` (a console given the same store shares it too)."""
    digests = digests or Digests(directory)
    results = ResultsFile(directory, targets)
    return [
        results,
        JUnitFile(directory, targets, digests),
        SummaryFile(directory, targets, digests),
        HtmlFile(directory, results, targets),
    ]


def tell(handlers: Sequence[Handler], info: RunInfo, results: Sequence[Result]) -> None:
    """Hand results already in hand (a fuzz run's findings, a test's) to reporters, as a run would have."""
    opening = RunStarted(
        run_id=info.run_id,
        started=info.started,
        endpoints=info.endpoints,
        profiles=info.profiles,
        total=len(results),
        origin=info.origin,
        banner=info.banner,
        clients=info.clients,
        case_paths=info.case_paths,
        selected=info.selected,
        concurrency=info.concurrency,
        repeat=info.repeat,
        documented=info.documented,
    )
    closing = RunFinished(
        finished=info.finished,
        duration_s=info.duration_s,
        completed=len(results),
        interrupted=info.interrupted,
        reason=info.interrupted_by,
    )
    for handler in handlers:
        handler.start(opening)
    for index, result in enumerate(results):
        for handler in handlers:
            handler.result(ResultReady(result=result, index=index))
    for handler in handlers:
        handler.finish(closing)


def write_reports(directory: Path, info: RunInfo, results: list[Result], banner: str = "") -> list[Path]:
    """Write the report folder for results already in hand; returns the files' paths."""
    info = replace(info, banner=banner or info.banner)
    handlers = report_files(directory, info.targets)
    tell(handlers, info, results)
    return [h.path for h in handlers]
