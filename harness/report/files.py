"""The files a run writes into its report folder, each written atomically (a temp file, then a rename)."""

from __future__ import annotations

import io
import json
import re
import socket
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from ..atomic import atomic_stream, atomic_write
from ..endpoints import Endpoint
from ..events import Handler, ResultReady, RunFinished, RunStarted
from ..models import Result, Verdict
from ..support import SupportMatrix
from .digest import Digest, Digests, Tally, digest, summarize
from .html import render_html
from .info import RunInfo
from .matrix import Matrix, build, markdown
from .records import RESULTS_FORMAT, RecordLog, Run, result_json
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


def _endpoint_json(endpoint: Endpoint, profile: str) -> dict[str, Any]:
    return {"name": endpoint.name, "base_url": endpoint.base_url, "model": endpoint.model, "profile": profile}


def result_line(result: Result) -> str:
    """A result as its line of results.jsonl (no newline): what the report folder keeps of its exchange."""
    return _json_text(json.dumps(result_json(result), ensure_ascii=False))


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


def _json_text(text: str) -> str:
    # A JSON answer may hold a lone surrogate ("\ud800" decodes to one), which UTF-8 cannot encode; written as that
    # same escape, results.json still reads back to the exact value, and the run keeps its report.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _assemble(
    info: RunInfo, summary: dict[str, int], support: dict[str, Any], lines: Iterable[str], out: TextIO
) -> None:
    """results.json from the JSON Lines record, one result at a time: the header indented, a result a line."""
    header = {"format": RESULTS_FORMAT, "run": _run_json(info), "summary": summary, "support": support}
    head = _json_text(json.dumps(header, indent=2, ensure_ascii=False))
    out.write(head[: head.rindex("}")].rstrip() + ',\n  "results": [')
    first = True
    for line in lines:
        if not line.strip():
            continue
        # Each result on a line of its own, as results.jsonl has it: re-indenting a 16 MiB answer would parse it again
        # and hold several copies of it; one line a result is as easy to read, grep and diff.
        out.write(("\n    " if first else ",\n    ") + line.rstrip("\n"))
        first = False
    out.write("\n  ]\n}\n" if not first else "]\n}\n")


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
        self._places: list[tuple[int, int]] = []  # (planned index, byte offset of its line): results.json's order

    def start(self, event: RunStarted) -> None:
        self._info = RunInfo.opening(event, self._targets)
        self._matrix = self._info.matrix()
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.log.open("wb")
        self._places = []

    def result(self, event: ResultReady) -> None:
        self.keep(event.index, result_line(event.result), event.result)

    def keep(self, index: int, line: str, result: Result | Digest) -> None:
        """Write one result's line, made here or in another process (a pytest-xdist worker's result)."""
        assert self._handle is not None
        self._places.append((index, self._handle.tell()))
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
                for _, offset in sorted(self._places):
                    log.seek(offset)
                    yield log.readline().decode("utf-8")

            support = self._matrix.to_json()
            atomic_stream(self.path, lambda out: _assemble(info, self._tally.counts(), support, in_order(), out))

    def records(self) -> RecordLog:
        """The records written so far, read back from `results.jsonl` in planned order each time they are iterated."""
        return RecordLog(self.log, [offset for _, offset in sorted(self._places)])


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


def _junit(info: RunInfo, digests: list[Digest]) -> str:
    """JUnit XML in the shape pytest's xunit2 family and Jenkins' junit-10.xsd describe (tests/data/junit.xsd)."""
    total = summarize(digests)
    root = ET.Element(
        "testsuites",
        name="chat-conformance",
        tests=str(total["total"]),
        failures=str(total["fail"]),
        errors=str(total["error"]),
        time=f"{sum(d.seconds for d in digests):.3f}",
    )
    hostname = socket.gethostname() or "localhost"
    for endpoint in info.endpoints:
        mine = [d for d in digests if d.endpoint == endpoint.name]
        counts = summarize(mine)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=endpoint.name,
            tests=str(len(mine)),
            failures=str(counts["fail"]),
            errors=str(counts["error"]),
            skipped=str(counts["skip"]),
            time=f"{sum(d.seconds for d in mine):.3f}",
            timestamp=info.started,
            hostname=hostname,
        )
        said = {"origin": info.origin} if info.origin != "live" else {}
        if info.interrupted:
            said["interrupted"] = info.interrupted_by or "yes"
        if said:
            properties = ET.SubElement(suite, "properties")
            for name, value in said.items():
                ET.SubElement(properties, "property", name=name, value=value)
        for d in mine:
            case = ET.SubElement(suite, "testcase", classname=d.classname, name=d.name, time=f"{d.seconds:.3f}")
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
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + _xml_safe(ET.tostring(root, encoding="unicode")) + "\n"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _matrix(info: RunInfo, digests: list[Digest]) -> Matrix:
    endpoints = {e.name: {"model": e.model, "profile": info.profiles.get(e.name, e.profile)} for e in info.endpoints}
    run = Run(
        label=info.run_id,
        path="",
        origin=info.origin,
        endpoints=endpoints,
        records=tuple(d.record for d in digests),
        concurrency=info.concurrency,
        repeat=info.repeat,
    )
    return build([run])


def render_summary(info: RunInfo, digests: list[Digest], matrix: SupportMatrix | None = None) -> str:
    counts = summarize(digests)
    lines = [f"# Conformance run {info.run_id}", ""]
    if info.banner:
        lines += [f"> {info.banner}", ""]
    if info.interrupted:
        lines += [f"> INTERRUPTED ({info.interrupted_by or 'stopped'}): this report holds the cases that finished.", ""]
    lines += [
        f"{info.started} · {info.duration_s:.1f} s · chat-conformance {info.harness_version}",
        "",
        *([f"Clients checked: {'; '.join(info.clients)}.", ""] if info.clients else []),
        f"**{counts['pass']} passed, {counts['fail']} failed, {counts['error']} errors, {counts['skip']} skipped,"
        f" {counts['warnings']} warnings** out of {counts['total']}.",
        "",
        "| endpoint | base URL | model | profile |",
        "|---|---|---|---|",
    ]
    for e in info.endpoints:
        lines.append(
            f"| {_cell(e.name)} | {_cell(e.base_url)} | {_cell(e.model or '(none)')} | "
            f"{_cell(info.profiles.get(e.name, e.profile))} |"
        )
    lines += _clients(info, digests)
    if digests:
        lines += ["", "## Matrix", "", markdown(_matrix(info, digests), short=True).rstrip()]
    lines += [
        "",
        "## Results",
        "",
        "| case | endpoint | verdict | status | ms | ttft ms | tokens (prompt/completion) | findings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for d in digests:
        codes = ", ".join(d.codes) or (d.reason if d.verdict is Verdict.SKIP else "")
        status, ms, ttft, tokens = d.cells
        lines.append(
            f"| {_cell(d.case)} | {_cell(d.endpoint)} | {d.verdict.value} | {status} | {ms} | {ttft} | {tokens} "
            f"| {_cell(codes)} |"
        )
    support = matrix_markdown(matrix) if matrix is not None else []
    if support:
        lines += ["", *support]
    bad = [d for d in digests if d.bad]
    if bad:
        lines += ["", "## Failures", ""]
        for d in bad:
            lines += [f"### {_cell(d.name)}", "", "```text", d.block, "```", ""]
    warned = Counter(code for d in digests for code, _ in d.warnings)
    if warned:
        lines += ["", "## Warnings", "", "| check | cases | why it is a warning |", "|---|---|---|"]
        notes = {code: note for d in digests for code, note in d.warnings}
        for code, count in sorted(warned.items()):
            lines.append(f"| {code} | {count} | {_cell(notes[code])} |")
    return "\n".join(lines).rstrip() + "\n"


def _clients(info: RunInfo, digests: list[Digest]) -> list[str]:
    """Per endpoint, whether each official SDK that was checked reads its answers, and on which cases it breaks."""
    checked = [status for status in info.clients if "not checked" not in status]
    if not checked:
        return []
    lines = ["", "## Clients", "", "| endpoint | client | cases it breaks on |", "|---|---|---|"]
    for e in info.endpoints:
        mine = [d for d in digests if d.endpoint == e.name and d.verdict is not Verdict.SKIP]
        for status in checked:
            family = "client." + status.split()[0].replace("-", "_") + "."
            broken = [
                f"{d.name} ({', '.join(c for c in d.codes if c.startswith(family) and c not in dict(d.warnings))})"
                for d in mine
                if any(c.startswith(family) and c not in dict(d.warnings) for c in d.codes)
            ]
            verdict = f"{len(broken)} of {len(mine)}: " + "; ".join(broken) if broken else f"none of {len(mine)}"
            lines.append(f"| {_cell(e.name)} | {_cell(status)} | {_cell(verdict)} |")
    return lines


class _DigestFile:
    """A report file rendered at the end from the digests of every result (see `digest`)."""

    name = ""

    def __init__(self, directory: Path, targets: dict[str, str] | None = None) -> None:
        self.path = directory / self.name
        self._targets = targets or {}
        self._info: RunInfo | None = None
        self._digests = Digests()
        self._matrix = SupportMatrix()

    def start(self, event: RunStarted) -> None:
        self._info = RunInfo.opening(event, self._targets)
        self._digests = Digests()
        self._matrix = self._info.matrix()

    def result(self, event: ResultReady) -> None:
        self.keep(event.index, "", digest(event.result, self._info))

    def keep(self, index: int, line: str, result: Result | Digest) -> None:
        """Keep one result's digest, made here or in another process (a pytest-xdist worker's result)."""
        made = result if isinstance(result, Digest) else digest(result, self._info)
        self._digests.add(index, made)
        _fold(self._matrix, made)

    def finish(self, event: RunFinished) -> None:
        assert self._info is not None
        text = self.render(self._info.closing(event), self._digests.in_order(), self._matrix)
        atomic_write(self.path, _json_text(text))

    def render(self, info: RunInfo, digests: list[Digest], matrix: SupportMatrix) -> str:
        raise NotImplementedError


class JUnitFile(_DigestFile):
    """`junit.xml`: one testcase per case and endpoint, for CI dashboards."""

    name = "junit.xml"

    def render(self, info: RunInfo, digests: list[Digest], matrix: SupportMatrix) -> str:
        return _junit(info, digests)


class SummaryFile(_DigestFile):
    """`summary.md`: the run for a pull request or a wiki."""

    name = "summary.md"

    def render(self, info: RunInfo, digests: list[Digest], matrix: SupportMatrix) -> str:
        return render_summary(info, digests, matrix)


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
        atomic_stream(
            self.path,
            lambda out: render_html(
                out, records=records, runs=[_run_json(info)], notes=[info.banner] if info.banner else []
            ),
        )


ReportFile = ResultsFile | JUnitFile | SummaryFile | HtmlFile
"""One handler of a run's report folder; each can also `keep` a result made in another process."""


def junit_xml(info: RunInfo, results: list[Result]) -> str:
    return _junit(info, [digest(r, info) for r in results])


def summary_md(info: RunInfo, results: list[Result], banner: str = "") -> str:
    shown = replace(info, banner=banner or info.banner)
    return render_summary(shown, [digest(r, info) for r in results], _matrix_of(info, results))


def report_files(directory: Path, targets: dict[str, str] | None = None) -> list[ReportFile]:
    """The handlers that write a run's report folder: results.jsonl and results.json, junit.xml, summary.md and
    report.html (which reads its records back from results.jsonl, so it comes after it)."""
    results = ResultsFile(directory, targets)
    return [
        results,
        JUnitFile(directory, targets),
        SummaryFile(directory, targets),
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
