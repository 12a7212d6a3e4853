"""Drift: what changed in shape between two runs or recording sets, per case: the question asked when a provider
updates a model under you.

Only what a client's code depends on is compared, never the words: the members of each answer and their JSON
types (a member that appeared, vanished or changed type), the finish reasons given, the status, the findings'
codes (new or gone) and the verdict. Timings, ids, text and stream event positions change on every call and
are not drift. A member that appears or vanishes with everything inside it is one change, not one per member.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..models import Verdict
from .records import Record, Run

__all__ = ["DIFF_FORMAT", "Change", "drift", "drift_json", "drift_text", "unpaired"]

DIFF_FORMAT = "chat-conformance/diff@1"
_WORST = (Verdict.ERROR, Verdict.FAIL, Verdict.PASS, Verdict.SKIP)


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One change of one case against one endpoint.

    `kind` is one of: `verdict`, `status`, `finding new`, `finding gone`,
    `finding severity`, `finish_reason new`, `finish_reason gone`, `member appeared`, `member vanished`,
    `member type`. `old` and `new` are short texts (a verdict, a status, a JSON type, a finding code).
    """

    row: str
    endpoint: str
    kind: str
    pointer: str = ""
    old: str = ""
    new: str = ""

    def __str__(self) -> str:
        at = f" {self.pointer}" if self.pointer else ""
        if self.old and self.new:
            return f"{self.kind}{at}: {self.old} -> {self.new}"
        return f"{self.kind}{at}: {self.old or self.new}" if self.old or self.new else f"{self.kind}{at}"


_Make = Callable[[str, str, str, str], "Change"]


@dataclass(frozen=True, slots=True)
class _Side:
    """The records of one case against one endpoint (its repetitions), taken together."""

    verdict: Verdict
    statuses: frozenset[int]
    findings: dict[str, str]  # code: the worst severity it had
    reasons: frozenset[str]
    types: dict[str, frozenset[str]]  # pointer: the JSON types seen there

    @classmethod
    def of(cls, records: Sequence[Record]) -> _Side:
        findings: dict[str, str] = {}
        for r in records:
            for code, severity, _ in r.findings:
                if findings.get(code) != "error":
                    findings[code] = severity
        types: dict[str, set[str]] = {}
        for r in records:
            for pointer, kind in r.shape:
                types.setdefault(pointer, set()).add(kind)
        return cls(
            verdict=next(v for v in _WORST if any(r.verdict is v for r in records)),
            statuses=frozenset(r.status for r in records if r.status is not None),
            findings=findings,
            reasons=frozenset(reason for r in records for reason in r.finish_reasons),
            types={pointer: frozenset(kinds) for pointer, kinds in types.items()},
        )


def _sides(run: Run) -> dict[tuple[str, str], _Side]:
    grouped: dict[tuple[str, str], list[Record]] = {}
    for r in run.records:
        grouped.setdefault((r.endpoint, r.row), []).append(r)
    return {key: _Side.of(records) for key, records in grouped.items()}


def _endpoints(old: Run, new: Run) -> dict[str, str]:
    """Which endpoint of NEW stands for each of OLD: the one of the same name; a lone endpoint on each side is the
    same endpoint renamed (recordings named `local`, a later run named `cli`)."""
    before = list(dict.fromkeys(r.endpoint for r in old.records))
    after = list(dict.fromkeys(r.endpoint for r in new.records))
    if len(before) == 1 and len(after) == 1:
        return {before[0]: after[0]}
    return {name: name for name in before if name in after}


def _types(kinds: Iterable[str]) -> str:
    return " or ".join(sorted(kinds))


def _under(pointer: str, tops: Iterable[str]) -> bool:
    return any(pointer.startswith(top + "/") for top in tops)


def _shape_changes(old: _Side, new: _Side, change: _Make) -> list[Change]:
    appeared = sorted(set(new.types) - set(old.types))
    vanished = sorted(set(old.types) - set(new.types))
    retyped = sorted(p for p in set(old.types) & set(new.types) if old.types[p] != new.types[p])
    # What sits inside a member that appeared, vanished or became something else is part of that one change.
    tops = [*appeared, *vanished, *retyped]
    changes = [
        change("member type", p, _types(old.types[p]), _types(new.types[p])) for p in retyped if not _under(p, tops)
    ]
    changes += [change("member appeared", p, "", _types(new.types[p])) for p in appeared if not _under(p, tops)]
    changes += [change("member vanished", p, _types(old.types[p]), "") for p in vanished if not _under(p, tops)]
    return sorted(changes, key=lambda c: (c.pointer, c.kind))


def _statuses(side: _Side) -> str:
    return ", ".join(map(str, sorted(side.statuses))) or "none"


def _case_changes(row: str, endpoint: str, old: _Side, new: _Side) -> list[Change]:
    def change(kind: str, pointer: str = "", before: str = "", after: str = "") -> Change:
        return Change(row=row, endpoint=endpoint, kind=kind, pointer=pointer, old=before, new=after)

    changes = []
    if old.verdict is not new.verdict:
        changes.append(change("verdict", "", old.verdict.value, new.verdict.value))
    if old.statuses != new.statuses:
        changes.append(change("status", "", _statuses(old), _statuses(new)))
    changes += [
        change("finding new", "", "", f"{c} ({new.findings[c]})")
        for c in sorted(new.findings.keys() - old.findings.keys())
    ]
    changes += [
        change("finding gone", "", f"{c} ({old.findings[c]})")
        for c in sorted(old.findings.keys() - new.findings.keys())
    ]
    changes += [
        change("finding severity", code, old.findings[code], new.findings[code])
        for code in sorted(old.findings.keys() & new.findings.keys())
        if old.findings[code] != new.findings[code]
    ]
    changes += [change("finish_reason new", "", "", reason) for reason in sorted(new.reasons - old.reasons)]
    changes += [change("finish_reason gone", "", reason) for reason in sorted(old.reasons - new.reasons)]
    return changes + _shape_changes(old, new, change)


def drift(old: Run, new: Run) -> list[Change]:
    """Every change from OLD to NEW of the cases both hold, in OLD's order; none means they answered alike in
    shape. A case or an endpoint only one of them holds is not compared (`unpaired` says which)."""
    pairs = _endpoints(old, new)
    after = _sides(new)
    changes: list[Change] = []
    for (endpoint, row), side in _sides(old).items():
        other = after.get((pairs.get(endpoint, ""), row))
        if other is not None:
            changes += _case_changes(row, endpoint, side, other)
    return changes


def _keys(run: Run, rename: dict[str, str] | None = None) -> dict[tuple[str, str], None]:
    rename = rename or {}
    return dict.fromkeys((rename.get(r.endpoint, r.endpoint), r.row) for r in run.records)


def _compared(old: Run, new: Run) -> int:
    return len(_keys(old, _endpoints(old, new)).keys() & _keys(new).keys())


def _shown(rows: Sequence[str]) -> str:
    return ", ".join(rows[:10]) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")


def unpaired(old: Run, new: Run) -> list[str]:
    """What only one side holds, and so was not compared: endpoints, then cases."""
    pairs = _endpoints(old, new)
    gone = sorted({r.endpoint for r in old.records} - set(pairs))
    added = sorted({r.endpoint for r in new.records} - set(pairs.values()))
    out = [f"endpoint {name!r} only in OLD: not compared" for name in gone]
    out += [f"endpoint {name!r} only in NEW: not compared" for name in added]
    before, after = _keys(old, pairs), _keys(new)
    for side, keys, others in (("OLD", before, after), ("NEW", after, before)):
        rows = [
            f"{row} [{endpoint}]"
            for endpoint, row in keys
            if (endpoint, row) not in others and endpoint in pairs.values()
        ]
        if rows:
            out.append(f"{len(rows)} case(s) only in {side}, not compared: {_shown(rows)}")
    return out


def drift_text(old: Run, new: Run, changes: Sequence[Change]) -> str:
    """The changes grouped by case, for the console."""
    pairs = _endpoints(old, new)
    renamed = [f"{a} (OLD) is compared with {b} (NEW)" for a, b in pairs.items() if a != b]
    lines = [f"OLD: {old.label} ({old.path})", f"NEW: {new.label} ({new.path})", *renamed, *unpaired(old, new)]
    grouped: dict[tuple[str, str], list[Change]] = {}
    for change in changes:
        grouped.setdefault((change.row, change.endpoint), []).append(change)
    for (row, endpoint), mine in grouped.items():
        lines += ["", f"{row} [{endpoint}]", *(f"  {change}" for change in mine)]
    compared = _compared(old, new)
    lines.append("")
    if changes:
        lines.append(f"{len(changes)} change(s) in {len(grouped)} case(s); {compared} case(s) compared")
    else:
        lines.append(f"no change in shape: {compared} case(s) compared")
    return "\n".join(lines) + "\n"


def drift_json(old: Run, new: Run, changes: Sequence[Change]) -> dict[str, Any]:
    def side(run: Run) -> dict[str, Any]:
        return {"label": run.label, "path": run.path, "origin": run.origin}

    return {
        "format": DIFF_FORMAT,
        "old": side(old),
        "new": side(new),
        "endpoints": _endpoints(old, new),
        "unpaired": unpaired(old, new),
        "compared": _compared(old, new),
        "changes": [
            {"case": c.row, "endpoint": c.endpoint, "kind": c.kind, "pointer": c.pointer, "old": c.old, "new": c.new}
            for c in changes
        ],
    }
