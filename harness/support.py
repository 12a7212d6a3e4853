"""Which request parameters an endpoint supports: a verdict per parameter, from the judged results of its probes.

A probe is a case tagged `param:<name>`. Its result, already judged, says what became of the parameter:
`honoured` (a 200 whose effect checks found the effect), `accepted` (a 200, and no observable effect is defined),
`ignored` (a 200 without the effect), `rejected` (a 4xx with a well-formed error naming the parameter), `broken`
(a 5xx, another 4xx, a malformed answer, a hang) or `not probed` (skipped, or no probe ran). Several probes of one
parameter fold into the worst of their verdicts. A verdict that contradicts what the endpoint's profile says its
provider documents is a finding. Pure: it reads results and writes nothing; reporters keep a `SupportMatrix`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .models import Result, Severity, Verdict
from .parameters import PARAMETERS, Documented, parameter
from .pointer import MISSING

__all__ = ["Cell", "Support", "SupportMatrix", "classify", "contradiction", "probed"]

TAG = "param:"


class Support(enum.StrEnum):
    HONOURED = "honoured"
    ACCEPTED = "accepted"
    IGNORED = "ignored"
    REJECTED = "rejected"
    BROKEN = "broken"
    NOT_PROBED = "not probed"


# When probes of one parameter disagree, the worst says the most: one form refused or ignored is worth knowing.
_RANK = [Support.NOT_PROBED, Support.ACCEPTED, Support.HONOURED, Support.IGNORED, Support.REJECTED, Support.BROKEN]
_KNOWN = frozenset(v.value for v in Support)
_NOT_ABOUT_THE_REQUEST = {401, 403, 404, 429}


def probed(tags: Iterable[str]) -> list[str]:
    """The parameters a case probes, from its `param:<name>` tags."""
    return [t[len(TAG) :] for t in tags if t.startswith(TAG) and len(t) > len(TAG)]


def _sent(body: Any, name: str) -> bool:
    value = body
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return value is not MISSING


def _error(body: Any) -> dict[str, Any]:
    """The error object of OpenAI's shape, Google's one-element array, or a vLLM-style container's."""
    if isinstance(body, list) and len(body) == 1:
        body = body[0]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return dict(body["error"])
    return body if isinstance(body, dict) else {}


def _names(error: dict[str, Any], name: str) -> bool:
    """The error names the parameter: in `param`, or any part of its dotted name as a word of the message."""
    parts = name.split(".")
    if error.get("param") in (name, parts[0], parts[-1]):
        return True
    message = error.get("message")
    if not isinstance(message, str):
        return False
    return any(re.search(rf"(?<![A-Za-z0-9_]){re.escape(p)}(?![A-Za-z0-9_])", message) for p in parts)


def classify(result: Result, name: str) -> tuple[Support, str]:
    """What this probe's result says of parameter `name`, and why, in a few words."""
    exchange = result.exchange
    if result.verdict is Verdict.SKIP or exchange is None:
        return Support.NOT_PROBED, result.reason or "no answer"
    if exchange.transport_error is not None:
        if exchange.transport_error.kind == "stale":
            return Support.NOT_PROBED, "the recording no longer matches the case"
        return Support.BROKEN, f"transport.{exchange.transport_error.kind}"
    if not _sent(exchange.request.body, name):
        return Support.NOT_PROBED, "the case does not send it"
    status = exchange.response.status if exchange.response is not None else 0
    codes = {f.code for f in result.findings}
    if 400 <= status < 500:
        if status in _NOT_ABOUT_THE_REQUEST:
            return Support.NOT_PROBED, f"refused with {status}, not for the parameter"
        error = _error(exchange.response.body if exchange.response is not None else None)
        if "errors.body_schema" not in codes and _names(error, name):
            return Support.REJECTED, f"{status}, naming it"
        return Support.BROKEN, f"{status}, an error that does not name it"
    if not 200 <= status < 300:
        return Support.BROKEN, f"status {status}"
    if not isinstance(exchange.answer(), dict):
        return Support.BROKEN, "a 200 that is not a JSON answer"
    row = parameter(name)
    if row.repeat and result.mode != "repeat":
        return Support.ACCEPTED, "a 200; the effect shows only on a repeat of the request (repeat: true)"
    wrong = sorted(codes & set(row.wrong))
    if wrong:
        return Support.BROKEN, ", ".join(wrong)
    absent = sorted(codes & set(row.absent))
    if absent:
        return Support.IGNORED, ", ".join(absent)
    if row.observable:
        return Support.HONOURED, row.effect
    return Support.ACCEPTED, row.note or "a 200; no effect is checked"


Probe = tuple[str, Support, str]
"""What a result says of one parameter it probes: the parameter, the verdict, and why."""


def probes(result: Result) -> tuple[Probe, ...]:
    """What a result says of each parameter its case probes (its `param:` tags); none for other cases."""
    return tuple((name, *classify(result, name)) for name in probed(result.tags))


def contradiction(verdict: Support, documented: Documented | None) -> Severity | None:
    """How much a verdict that departs from the provider's documentation weighs; None when it agrees.

    Documented support that is not honoured is an error, and so is a refusal (or a break) of what the documentation
    says is ignored or supported; a parameter documented as refused that works after all is only a warning.
    """
    if documented is None or verdict is Support.NOT_PROBED:
        return None
    if verdict is Support.BROKEN:
        return Severity.ERROR
    if documented.status == "supported" and verdict in (Support.IGNORED, Support.REJECTED):
        return Severity.ERROR
    if documented.status == "ignored" and verdict is Support.REJECTED:
        return Severity.ERROR
    if documented.status == "refused" and verdict is not Support.REJECTED:
        return Severity.WARNING
    return None


@dataclass(slots=True)
class Cell:
    """One parameter on one endpoint: the folded verdict, why, the probes it came from, what the provider says."""

    verdict: Support = Support.NOT_PROBED
    why: str = ""
    cases: list[str] = field(default_factory=list)
    documented: Documented | None = None

    @property
    def severity(self) -> Severity | None:
        return contradiction(self.verdict, self.documented)

    def fold(self, verdict: Support, why: str, case: str) -> None:
        if case not in self.cases:
            self.cases.append(case)
        if _RANK.index(verdict) > _RANK.index(self.verdict) or not self.why:
            self.verdict, self.why = verdict, why

    def message(self) -> str:
        """The finding a contradiction makes, in one sentence naming the documentation."""
        if self.documented is None or self.severity is None:
            return ""
        where = f" ({self.documented.url})" if self.documented.url else ""
        return f"documented as {self.documented.status}{where}, but {self.verdict.value}: {self.why}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": self.verdict.value, "cases": list(self.cases)}
        if self.why:
            out["why"] = self.why
        if self.documented is not None:
            out["documented"] = {"status": self.documented.status, "url": self.documented.url}
        if self.severity is not None:
            out["finding"] = {"severity": self.severity.value, "message": self.message()}
        return out


class SupportMatrix:
    """The support matrix of a run, folded result by result: a few words per parameter and endpoint, no exchange.

    Empty until a probe arrives; then every parameter of the catalogue gets a row, `not probed` where no probe of
    it ran (left out by `--select`, or skipped), so a matrix never passes a guess off as a verdict.
    """

    def __init__(self, endpoints: Iterable[str] = (), documented: Mapping[str, Mapping[str, Documented]] | None = None):
        self.endpoints = list(endpoints)
        self.documented = {k: dict(v) for k, v in (documented or {}).items()}
        self._cells: dict[str, dict[str, Cell]] = {}

    def add(self, result: Result) -> None:
        self.fold(result.endpoint, result.case_id, probes(result))

    def fold(self, endpoint: str, case: str, said: Sequence[Probe]) -> None:
        """Fold what one result said of the parameters it probes (made here, or in a pytest-xdist worker)."""
        if not said:
            return
        if endpoint not in self.endpoints:
            self.endpoints.append(endpoint)
        for name, verdict, why in said:
            self.cell(endpoint, name).fold(verdict, why, case)

    def cell(self, endpoint: str, name: str) -> Cell:
        cells = self._cells.setdefault(endpoint, {})
        if name not in cells:
            cells[name] = Cell(documented=self.documented.get(endpoint, {}).get(name))
        return cells[name]

    def __bool__(self) -> bool:
        return bool(self._cells)

    def parameters(self) -> list[str]:
        """The rows: the catalogue's parameters in order, then any other parameter a probe named."""
        known = [p.name for p in PARAMETERS]
        extra = sorted({n for cells in self._cells.values() for n in cells} - set(known))
        return known + extra

    def rows(self) -> list[tuple[str, list[Cell]]]:
        if not self:
            return []
        return [(name, [self.cell(e, name) for e in self.endpoints]) for name in self.parameters()]

    def contradictions(self) -> list[tuple[str, str, Cell]]:
        """(endpoint, parameter, cell) for each verdict that departs from the provider's documentation."""
        return [
            (e, name, c)
            for name, cells in self.rows()
            for e, c in zip(self.endpoints, cells, strict=True)
            if c.severity
        ]

    @classmethod
    def from_json(cls, data: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> SupportMatrix:
        """The matrix a results.json's `support` member holds (read back by `harness compare`), as `to_json` wrote
        it: a verdict this version does not know reads as `not probed`, never as a guess."""
        matrix = cls(endpoints=data)
        for endpoint, cells in data.items():
            for name, said in cells.items():
                documented = said.get("documented")
                matrix._cells.setdefault(endpoint, {})[name] = Cell(
                    verdict=Support(said["verdict"]) if said.get("verdict") in _KNOWN else Support.NOT_PROBED,
                    why=str(said.get("why") or ""),
                    cases=[str(c) for c in said.get("cases") or []],
                    documented=Documented(status=str(documented.get("status")), url=str(documented.get("url") or ""))
                    if isinstance(documented, Mapping)
                    else None,
                )
        return matrix

    def to_json(self) -> dict[str, dict[str, Any]]:
        """endpoint name -> parameter -> {"verdict", "cases", ...}, as results.json's `support` member holds it."""
        if not self:
            return {}
        return {e: {name: self.cell(e, name).to_json() for name in self.parameters()} for e in self.endpoints}
