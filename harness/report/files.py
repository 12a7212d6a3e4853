"""The files a run writes into its report folder, each written atomically (a temp file, then a rename)."""

from __future__ import annotations

import json
import re
import socket
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path, PurePath
from typing import Any

from ..atomic import atomic_write
from ..endpoints import Endpoint
from ..models import Result, Verdict, to_json
from .failure import failure_block, headline
from .figures import case_cell, figures
from .info import RunInfo

__all__ = ["RESULTS_FORMAT", "RunInfo", "atomic_write", "summarize", "write_reports"]

RESULTS_FORMAT = "chat-conformance/results@1"
TEXT_LIMIT = 64 * 1024


def summarize(results: list[Result]) -> dict[str, int]:
    """Counts by verdict, and warnings as (case, code) pairs.

    A stream whose clock ticks 24 times has one `stream.consistent_created` problem, not 24: counting findings
    would let one chatty case outweigh every other warning of the run.
    """
    counts = Counter(r.verdict.value for r in results)
    return {
        "total": len(results),
        **{v.value: counts.get(v.value, 0) for v in Verdict},
        "warnings": sum(len({f.code for f in r.warnings}) for r in results),
    }


def _endpoint_json(endpoint: Endpoint, profile: str) -> dict[str, Any]:
    return {"name": endpoint.name, "base_url": endpoint.base_url, "model": endpoint.model, "profile": profile}


def _result_json(result: Result) -> dict[str, Any]:
    exchange = result.exchange
    out: dict[str, Any] = {
        "id": result.case_id,
        "name": result.name,
        "endpoint": result.endpoint,
        "mode": result.mode or "plain",
        "file": result.file,
        "line": result.line,
        "title": result.title,
        "tags": list(result.tags),
        "verdict": result.verdict.value,
        "reason": result.reason,
        "findings": to_json(list(result.findings)),
        "variables": result.variables,
    }
    if exchange is not None:
        out["timings"] = to_json(exchange.timings)
        out["attempts"] = exchange.attempts
        view = exchange.view()
        response = view.get("response")
        if response is not None:
            body = response["body"]
            if isinstance(body, str) and len(body) > TEXT_LIMIT:
                response["body"] = body[:TEXT_LIMIT]
                response["body_truncated_from"] = len(body)
            out["status"] = response["status"]
            answer = exchange.answer()
            usage = answer.get("usage") if isinstance(answer, dict) else None
            out["usage"] = usage if isinstance(usage, dict) else None
        if exchange.transport_error is not None:
            view["transport_error"] = to_json(exchange.transport_error)
        out["exchange"] = view
    return out


def results_json(info: RunInfo, results: list[Result]) -> str:
    document = {
        "format": RESULTS_FORMAT,
        "run": {
            "id": info.run_id,
            "started": info.started,
            "finished": info.finished,
            "duration_s": info.duration_s,
            "harness_version": info.harness_version,
            "origin": info.origin,
            "case_paths": list(info.case_paths),
            "selected": list(info.selected),
            "endpoints": [_endpoint_json(e, info.profiles.get(e.name, e.profile)) for e in info.endpoints],
        },
        "summary": summarize(results),
        "results": [_result_json(r) for r in results],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# XML 1.0 cannot hold most control characters nor lone surrogates (a JSON string may decode to one); an answer
# that contains them must still give a junit.xml that parses.
_NOT_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m[0]):02x}" if ord(m[0]) < 0x100 else f"\\u{ord(m[0]):04x}", text)


def _seconds(result: Result) -> float:
    return (result.exchange.timings.total_ms or 0) / 1000 if result.exchange else 0.0


def junit_xml(info: RunInfo, results: list[Result]) -> str:
    """JUnit XML in the shape pytest's xunit2 family and Jenkins' junit-10.xsd describe (tests/data/junit.xsd)."""
    total = summarize(results)
    root = ET.Element(
        "testsuites",
        name="chat-conformance",
        tests=str(total["total"]),
        failures=str(total["fail"]),
        errors=str(total["error"]),
        time=f"{sum(_seconds(r) for r in results):.3f}",
    )
    hostname = socket.gethostname() or "localhost"
    for endpoint in info.endpoints:
        mine = [r for r in results if r.endpoint == endpoint.name]
        counts = summarize(mine)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=endpoint.name,
            tests=str(len(mine)),
            failures=str(counts["fail"]),
            errors=str(counts["error"]),
            skipped=str(counts["skip"]),
            time=f"{sum(_seconds(r) for r in mine):.3f}",
            timestamp=info.started,
            hostname=hostname,
        )
        if info.origin != "live":
            properties = ET.SubElement(suite, "properties")
            ET.SubElement(properties, "property", name="origin", value=info.origin)
        for result in mine:
            # Grouped by case file, named as dashboards show it: the file's name, not its absolute path.
            classname = PurePath(result.file).name.removesuffix(".yaml").removesuffix(".yml").removesuffix(".case")
            case = ET.SubElement(
                suite, "testcase", classname=classname, name=result.name, time=f"{_seconds(result):.3f}"
            )
            if result.file:
                case.set("file", result.file)
            if result.line:  # a case built in code has no line; the schema wants a positive one or none
                case.set("line", str(result.line))
            block = failure_block(result, info)
            if result.verdict is Verdict.FAIL:
                element = ET.SubElement(
                    case, "failure", message=headline(result), type=result.errors[0].code if result.errors else "fail"
                )
                element.text = block
            elif result.verdict is Verdict.ERROR:
                element = ET.SubElement(
                    case,
                    "error",
                    message=headline(result),
                    type=result.findings[0].code if result.findings else "error",
                )
                element.text = block
            elif result.verdict is Verdict.SKIP:
                ET.SubElement(case, "skipped", message=result.reason)
            elif result.warnings:
                ET.SubElement(case, "system-out").text = block
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + _xml_safe(ET.tostring(root, encoding="unicode")) + "\n"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def summary_md(info: RunInfo, results: list[Result], banner: str = "") -> str:
    counts = summarize(results)
    lines = [f"# Conformance run {info.run_id}", ""]
    if banner:
        lines += [f"> {banner}", ""]
    lines += [
        f"{info.started} · {info.duration_s:.1f} s · chat-conformance {info.harness_version}",
        "",
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
    lines += [
        "",
        "## Results",
        "",
        "| case | endpoint | verdict | status | ms | ttft ms | tokens (prompt/completion) | findings |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        codes = ", ".join(sorted({f.code for f in r.findings})) or (r.reason if r.verdict is Verdict.SKIP else "")
        status, ms, ttft, tokens = figures(r).cells()
        lines.append(
            f"| {_cell(case_cell(r))} | {_cell(r.endpoint)} | {r.verdict.value} | {status} | {ms} | {ttft} | {tokens} "
            f"| {_cell(codes)} |"
        )
    bad = [r for r in results if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
    if bad:
        lines += ["", "## Failures", ""]
        for r in bad:
            lines += [f"### {_cell(r.name)}", "", "```text", failure_block(r, info), "```", ""]
    warned = Counter(code for r in results for code in {f.code for f in r.warnings})
    if warned:
        lines += ["", "## Warnings", "", "| check | cases | why it is a warning |", "|---|---|---|"]
        notes = {f.code: f.note or "" for r in results for f in r.warnings}
        for code, count in sorted(warned.items()):
            lines.append(f"| {code} | {count} | {_cell(notes[code])} |")
    return "\n".join(lines).rstrip() + "\n"


def write_reports(directory: Path, info: RunInfo, results: list[Result], banner: str = "") -> list[Path]:
    """Write results.json, junit.xml and summary.md into `directory`; returns their paths."""
    files = {
        "results.json": results_json(info, results),
        "junit.xml": junit_xml(info, results),
        "summary.md": summary_md(info, results, banner),
    }
    paths = []
    for name, text in files.items():
        # A JSON answer may hold a lone surrogate ("\ud800" decodes to one), which UTF-8 cannot encode; written as
        # that same escape, results.json still reads back to the exact value, and the run keeps its report.
        atomic_write(directory / name, text.encode("utf-8", "backslashreplace").decode("utf-8"))
        paths.append(directory / name)
    return paths
