"""The one failure block that the console, JUnit and summary.md all show for a case that did not pass."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from ..auth import token_source
from ..models import Finding, Result, Severity, Verdict
from .info import RunInfo

__all__ = ["by_code", "failure_block", "headline", "worst"]

BODY_LIMIT = 600


def worst(result: Result) -> Finding | None:
    order = sorted(result.findings, key=lambda f: f.severity is not Severity.ERROR)
    return order[0] if order else None


def by_code(result: Result) -> list[tuple[Finding, int]]:
    """Each code once, errors first, with how many findings it had.

    A clock that ticks during a stream gives one `stream.consistent_created` per change; the reader needs the
    first of them and how many there were, not two dozen alike.
    """
    groups: dict[tuple[Severity, str], list[Finding]] = {}
    for finding in sorted(result.findings, key=lambda f: f.severity is not Severity.ERROR):
        groups.setdefault((finding.severity, finding.code), []).append(finding)
    return [(group[0], len(group)) for group in groups.values()]


def headline(result: Result) -> str:
    """One line: the verdict, the name and the worst finding, as pytest's short summary shows a failure."""
    finding = worst(result)
    if result.verdict is Verdict.SKIP:
        return f"SKIP {result.name} - {result.reason}"
    detail = f"{finding.code}: {finding.message}" if finding else "no findings"
    return f"{result.verdict.value.upper()} {result.name} - {detail}"


def _truncate(text: str, limit: int = BODY_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else repr(value)
    return _truncate(text, 200)


def reproduce(result: Result, info: RunInfo | None) -> list[str]:
    """Commands that send the same request again: the harness for the case, curl for the raw exchange."""
    target = info.targets.get(result.endpoint) if info else None
    target = target or f"--endpoint {shlex.quote(result.endpoint)}"
    lines = [f"harness run {shlex.quote(result.file)} --select {shlex.quote(result.case_id)} {target}"]
    exchange = result.exchange
    endpoint = info.endpoint(result.endpoint) if info else None
    if exchange is not None:
        request = exchange.request
        body = request.raw_body if request.raw_body is not None else json.dumps(request.body, ensure_ascii=False)
        # The credential as a shell gets it ($NAME, or gcloud as Google's examples do), never its value.
        source = token_source(endpoint) if endpoint else None
        auth = f' -H "Authorization: Bearer {source.shell}"' if source else ""
        quoted = shlex.quote(body)
        lines.append(f"curl -sS {shlex.quote(request.url)} -H 'content-type: application/json'{auth} -d {quoted}")
    return lines


def _events(result: Result) -> list[str]:
    """The stream events around the worst finding (or the last ones), one per line, as they arrived."""
    assert result.exchange is not None and result.exchange.stream is not None
    stream = result.exchange.stream
    finding = worst(result)
    match = re.match(r"/stream/events/(\d+)", finding.pointer) if finding else None
    focus = int(match.group(1)) if match else len(stream.events) - 1
    first = max(0, min(focus - 1, len(stream.events) - 3))
    shown = [
        f"    event {i} at {event.at_ms:.0f} ms: {_truncate(event.data.replace(chr(10), ' '), 200)}"
        for i, event in enumerate(stream.events[first : first + 3], start=first)
    ]
    more = len(stream.events) - 3
    return [f"  stream: {len(stream.events)} events" + (f", {more} not shown" if more > 0 else ""), *shown]


def failure_block(result: Result, info: RunInfo | None = None) -> str:
    """Everything needed to understand and reproduce one failing (or warned) case, as plain text."""
    lines = [headline(result)]
    lines.append(f"  {result.name}  {result.file}:{result.line}" + (f"  {result.title}" if result.title else ""))
    for finding, count in by_code(result):
        more = f" (first of {count})" if count > 1 else ""
        lines.append(f"  {finding.severity.value:<8}{finding.code}  at {finding.pointer or '/'}{more}")
        lines.append(f"          {finding.message}")
        if finding.expected is not None or finding.actual is not None:
            lines.append(f"          expected {_value(finding.expected)}; seen {_value(finding.actual)}")
        if finding.note:
            lines.append(f"          note: {finding.note}")
    for step in result.steps:
        status = step.exchange.response.status if step.exchange and step.exchange.response else "no answer"
        lines.append(f"  step {step.step}: {step.verdict.value} ({status})")
    exchange = result.exchange
    if exchange is not None and exchange.response is not None:
        response = exchange.response
        lines.append(
            f"  answer: {response.status} {response.headers.get('content-type', '')}, {response.size} bytes, "
            f"{exchange.timings.total_ms} ms" + (f", {exchange.attempts} attempts" if exchange.attempts > 1 else "")
        )
        if exchange.stream is not None and exchange.stream.events:
            lines += _events(result)
        else:
            lines.append("    " + _truncate(response.text.replace("\n", " ")))
    if result.variables:
        lines.append("  placeholders: " + ", ".join(f"{k}={v}" for k, v in result.variables.items()))
    lines.append("  reproduce with:")
    lines += [f"    {line}" for line in reproduce(result, info)]
    return "\n".join(lines)
