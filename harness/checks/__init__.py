"""Checks: small named functions that read one exchange and yield findings.

A check never raises for a deviation, never prints and does no I/O. Its code is `<module>.<function>`
(`response.choices_indexed`), written once, and is public API: reports, profiles and users' scripts refer
to it. Severity is not the check's business: every finding starts as an error and the profile weighs it.
"""

from __future__ import annotations

import importlib
import json
import re
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from types import MappingProxyType
from typing import Any

from ..cases import Expect
from ..clients import ClientRead
from ..models import Exchange, Finding
from ..pointer import MISSING, join
from ..schemas import Validator, compile_schema

__all__ = [
    "RUNNER_CODES",
    "Check",
    "CheckContext",
    "all_codes",
    "check",
    "description",
    "registry",
    "run_checks",
]

# Raised by the runner, not by a check: the exchange could not be completed or judged.
RUNNER_CODES = {
    "harness.check_crashed": "A check raised an exception: a bug in the harness, reported, not hiding other findings.",
    "replay.stale": "The case no longer makes the request that was recorded: record it again.",
    "replay.unreadable": "The case's recording cannot be read (malformed, or changed during the run): record it again.",
    "steps.value_missing": "A step's answer lacks a value a later step uses: the later steps were not sent.",
    "transport.connect": "The connection could not be made (refused, unreachable, timed out connecting).",
    "transport.timeout": "No data arrived within --timeout.",
    "transport.reset": "The connection closed before the answer was complete.",
    "transport.protocol": "The answer was not HTTP, broke its framing, or did not decode as its Content-Encoding says.",
    "transport.too_large": "The answer was larger than --max-response-bytes, decoded (a compression bomb stops there).",
    "transport.deadline": "The case did not finish within --deadline, retries included (or Retry-After asked past it).",
}
INTERNAL_CODE = "harness.check_crashed"
MAX_FINDINGS = 100
"""Findings kept per check and exchange: a stream of a million bad chunks is reported with a count, not a million
findings (each of which the report would hold)."""

Applies = Callable[[Exchange, "CheckContext"], bool]


@dataclass(frozen=True, slots=True)
class Check:
    code: str
    function: Callable[[Exchange, CheckContext], Iterable[Finding]]
    applies: Applies
    description: str
    codes: dict[str, str] = field(default_factory=dict)
    """The codes its findings carry when they are not its own: one check that runs an SDK once reports each kind
    of failure under its own code (`client.openai_python.raised`), so a profile can weigh each."""


_REGISTRY: dict[str, Check] = {}
_FAMILIES = ("http", "response", "stream", "tools", "structured", "google", "params", "errors", "expect", "client")


@dataclass(frozen=True)
class CheckContext:
    """What a check may know besides the exchange: the case's expectations, the earlier answer to compare it
    with (`plain`): for the streamed run of a case run both ways, its plain answer; for the second run of a case
    sent twice (`repeat`), the first; and what the official SDKs made of the answer (`clients`). Read-only."""

    expect: Expect = field(default_factory=Expect)
    plain: Exchange | None = None
    clients: Mapping[str, ClientRead | None] | None = None
    """What each official SDK made of the answer, by client name, when it was read before judging
    (`harness.clients.read_all`, awaited so that the event loop never waits on an SDK); None: the client checks
    read it themselves."""

    def validator(self, document: Any) -> Validator:
        """A compiled validator for a schema carried by the request (compiled once per distinct schema)."""
        return compile_schema(document)


def check(
    applies: Applies,
    codes: dict[str, str] | None = None,
) -> Callable[
    [Callable[[Exchange, CheckContext], Iterable[Finding]]], Callable[[Exchange, CheckContext], Iterable[Finding]]
]:
    """Register a check; its code is `<family>.<function name>`, or with `codes` (suffix: description) its findings'
    codes are `<family>.<function name>.<suffix>`."""

    def register(
        function: Callable[[Exchange, CheckContext], Iterable[Finding]],
    ) -> Callable[[Exchange, CheckContext], Iterable[Finding]]:
        family = function.__module__.rsplit(".", 1)[-1]
        code = f"{family}.{function.__name__}"
        if code in _REGISTRY:
            raise RuntimeError(f"check {code} registered twice")
        own = {f"{code}.{suffix}": text for suffix, text in (codes or {}).items()}
        _REGISTRY[code] = Check(code, function, applies, (function.__doc__ or "").strip().split("\n")[0], own)
        _in_order()
        return function

    return register


@cache
def _load_families() -> None:
    for family in _FAMILIES:
        importlib.import_module(f"{__name__}.{family}")


def registry() -> Mapping[str, Check]:
    """Every registered check by code (importing the check families on first use, once), in the families' order
    whichever module was imported first: the first finding of an exchange heads its failure block."""
    _load_families()
    return _VIEW


def _in_order() -> None:
    """Keep the registry in the families' order as checks are added (at import, a hundred times), so that judging
    every exchange walks it as it is, never sorting it again."""
    order = {family: i for i, family in enumerate(_FAMILIES)}
    ordered = sorted(_REGISTRY.items(), key=lambda item: order.get(item[0].split(".", 1)[0], len(order)))
    _REGISTRY.clear()
    _REGISTRY.update(ordered)


_VIEW: Mapping[str, Check] = MappingProxyType(_REGISTRY)
"""The registry as callers read it: live (what replaces a check in place is seen), never changed through it."""


def all_codes() -> list[str]:
    """Every code a finding can carry."""
    codes = [code for item in registry().values() for code in (item.codes or [item.code])]
    return sorted([*codes, *RUNNER_CODES])


def description(code: str) -> str:
    """What a code means, in one line."""
    for item in registry().values():
        if code == item.code or code in item.codes:
            return item.codes.get(code, item.description)
    return RUNNER_CODES.get(code, "")


_EVENT = re.compile(r"^/stream/events/\d+")


def collapse(findings: list[Finding]) -> list[Finding]:
    """One finding, with a count, for the same problem repeated on many stream events (role wrong on every delta)."""
    groups: dict[tuple[str, str, str], list[Finding]] = {}
    for finding in findings:
        key = (finding.code, _EVENT.sub("/stream/events/*", finding.pointer), finding.message)
        groups.setdefault(key, []).append(finding)
    out = []
    for group in groups.values():
        first = group[0]
        events = len({f.pointer for f in group})  # the same finding twice at one place is only a duplicate
        out.append(first if events == 1 else replace(first, message=f"{first.message} (on {events} events)"))
    return out


def _bounded(found: Iterable[Finding]) -> list[Finding]:
    """The first `MAX_FINDINGS` findings, and one more that counts the rest (read and dropped, never held)."""
    kept: list[Finding] = []
    more = 0
    first_dropped: Finding | None = None
    for finding in found:
        if len(kept) < MAX_FINDINGS:
            kept.append(finding)
        else:
            more += 1
            first_dropped = first_dropped or finding
    if first_dropped is not None:
        kept.append(
            Finding(
                first_dropped.code,
                first_dropped.pointer,
                f"and {more} more findings of this check like the {MAX_FINDINGS} before (only those are listed)",
            )
        )
    return kept


def run_checks(exchange: Exchange, context: CheckContext) -> list[Finding]:
    """Every finding of every check that applies, in registration order; a crashing check is reported, not raised."""
    findings: list[Finding] = []
    for code, item in registry().items():
        try:
            if not item.applies(exchange, context):
                continue
            findings.extend(_bounded(item.function(exchange, context)))
        except Exception as exc:  # a bug in a check must not hide the other checks' findings
            where = traceback.extract_tb(exc.__traceback__)[-1]
            findings.append(
                Finding(
                    INTERNAL_CODE,
                    "",
                    f"check {code} crashed: {type(exc).__name__}: {exc} "
                    f"({where.filename.rsplit('/', 1)[-1]}:{where.lineno}); please report this",
                )
            )
    return collapse(findings)


# Helpers shared by the check families.


def root(exchange: Exchange) -> str:
    """Where the answer's body is: the response body, or for a stream the message rebuilt from its chunks."""
    return "/stream/assembled" if exchange.stream is not None else "/response/body"


def body(exchange: Exchange) -> Any:
    if exchange.stream is not None:
        return exchange.stream.assembled
    return exchange.response.body if exchange.response is not None else MISSING


def request(exchange: Exchange) -> dict[str, Any]:
    return exchange.request.body if isinstance(exchange.request.body, dict) else {}


def answered_ok(exchange: Exchange, context: CheckContext) -> bool:
    """A 2xx JSON object to a case that expected success: the answer the response checks judge."""
    r = exchange.response
    return r is not None and 200 <= r.status < 300 and isinstance(body(exchange), dict) and not context.expect.negative


def answered_json(exchange: Exchange, context: CheckContext) -> bool:
    """A successful answer sent as one JSON document (not a stream): what the whole-document checks judge."""
    return answered_ok(exchange, context) and exchange.stream is None


def choices(exchange: Exchange) -> Iterator[tuple[str, dict[str, Any]]]:
    """(pointer, choice) for each choice that is an object."""
    items = body(exchange).get("choices") if isinstance(body(exchange), dict) else None
    if isinstance(items, list):
        for i, choice in enumerate(items):
            if isinstance(choice, dict):
                yield join(root(exchange), "choices", i), choice


def message(choice: dict[str, Any]) -> dict[str, Any]:
    value = choice.get("message")
    return value if isinstance(value, dict) else {}


def tool_calls(choice: dict[str, Any]) -> list[Any]:
    value = message(choice).get("tool_calls")
    return value if isinstance(value, list) else []


def short(value: Any, limit: int = 120) -> str:
    """A value as a truncated repr, for messages."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=repr)
    text = repr(text) if isinstance(value, str) else text
    return text if len(text) <= limit else text[: limit - 3] + "..."
