"""Fuzzing an endpoint: Hypothesis generates request variants, the catalogue's checks judge every answer.

Two oracles: a valid variant must get a 200 whose answer passes every check; an invalid one must be refused
with a 4xx and a well-formed error body (never a 200, a 5xx, a hang or a dropped connection). Each distinct
failure (by check code) is shrunk to the smallest payload that still shows it and exported as a ready case.

Hypothesis is the search and shrink engine; the harness keeps its own record of the smallest payload seen
for each failure, so a run that a budget stops half-way through shrinking still reports what it found.

A search runs in rounds: Hypothesis stops generating soon after the last failure it found, so each round that
finds a new failure is followed by another, which passes the failures already known and looks for others. Each
round generates at most `max_examples` variants; shrinking and replaying failures send more. So `examples` can
exceed `max_examples`, and reports say by how much and why.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import textwrap
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from . import __version__
from . import strategies as cs
from .atomic import atomic_write
from .cases import Case, Expect
from .endpoints import Endpoint
from .models import Finding, Result, Severity, Verdict
from .planning import Planned
from .runner import Session
from .sending import Options
from .yamlfile import Source

__all__ = [
    "REPLAY_SETTINGS",
    "FuzzFailure",
    "FuzzOptions",
    "FuzzReport",
    "add_counts",
    "export_case",
    "fuzz",
    "replay_note",
    "settle",
]

STATE_DIR = Path(".harness")

# What a valid variant's exported case adds when the failing request did not set it: with sampling pinned down,
# a pass after a fix tells "fixed" from a lucky answer. Seed 1, not 0: code that tests `if seed:` takes 0 for none.
REPLAY_SETTINGS: Mapping[str, Any] = {"temperature": 0, "seed": 1}


@dataclass(frozen=True, slots=True)
class FuzzOptions:
    """What a user controls, because real endpoints cost money and have quotas."""

    max_examples: int = 100
    max_requests: int | None = None
    budget_s: float | None = None
    rate: float | None = None
    seed: int | None = None
    pin: Mapping[str, Any] = field(default_factory=dict)
    exclude: frozenset[str] = frozenset()
    invalid: bool = True
    database: Path | None = STATE_DIR / "hypothesis"


@dataclass(frozen=True, slots=True)
class FuzzFailure:
    """The smallest payload found for one check code, and what the endpoint did with it.

    `settings` are the REPLAY_SETTINGS added to a valid variant's request for its replay, and `reproduced` says
    whether that request failed the same way (None: the run stopped before it could be sent). When it did not,
    `payload` stays the request as it failed, since a case that passes while the bug is there is worse than none.
    """

    code: str
    kind: str  # valid, invalid or malformed
    payload: Any
    result: Result
    settings: Mapping[str, Any] = field(default_factory=dict)
    reproduced: bool | None = None

    @property
    def finding(self) -> Finding:
        return next(f for f in self.result.findings if f.code == self.code)


@dataclass(frozen=True, slots=True)
class FuzzReport:
    """What a fuzz run did. `examples` counts every variant sent (generated, shrunk or replayed), `passed`
    those the endpoint got right, and `requests` adds the failures re-sent with REPLAY_SETTINGS (`resent`)."""

    endpoint: str
    examples: int
    passed: int
    requests: int
    resent: int
    rounds: int
    max_examples: int
    elapsed_s: float
    stopped_by: str
    failures: tuple[FuzzFailure, ...]
    pinned: Mapping[str, Any]
    excluded: frozenset[str]
    seed: int | None

    def header(self, cases: int) -> str:
        """The banner of the run's reports (`cases`: regression cases written).

        A report counts the cases it lists, and a fuzz run's cases are only its regression cases, so the banner
        says what the run did. Its examples can outnumber --max-examples, which bounds each search round, not the
        run: a round that finds a new failure is followed by another, and shrinking a failure sends more.
        """
        rounds = f"{self.rounds} search round{'' if self.rounds == 1 else 's'}"
        if self.failures:
            found = (
                f"{self.passed} passed, {_plural(len(self.failures), 'failure')} found (written as the "
                f"{_plural(cases, 'regression case')} this report lists); at most {self.max_examples} examples "
                f"generated in each of {rounds} (--max-examples {self.max_examples}), the others replayed or shrank "
                f"a failure"
            )
        else:
            found = (
                f"{self.passed} passed, no failure found; {rounds} of at most {self.max_examples} examples "
                f"(--max-examples {self.max_examples})"
            )
        resent = f" ({self.resent} re-sent a failure with the settings of its replay)" if self.resent else ""
        pinned = ", ".join(f"{k}={json.dumps(v)}" for k, v in self.pinned.items()) or "nothing"
        return (
            f"FUZZ RUN against {self.endpoint}: {_plural(self.examples, 'example')}: {found}; "
            f"{_plural(self.requests, 'request')}{resent} in {self.elapsed_s:.1f} s (stopped by {self.stopped_by}), "
            f"seed {self.seed}; pinned: {pinned}; left out: {', '.join(sorted(self.excluded)) or 'nothing'}."
        )

    def tally(self, cases: int) -> str:
        """The closing line: variants that passed and distinct failures, not the regression cases' verdicts (which
        read `0 passed, 3 failed` after 57 variants passed)."""
        passed = f"{self.passed} {'variant' if self.passed == 1 else 'variants'} passed"
        if not self.failures:
            return f"{passed}, no failure found"
        return f"{passed}, {_plural(len(self.failures), 'failure')} found ({_plural(cases, 'regression case')} written)"

    def counts(self, cases: Sequence[Path]) -> dict[str, Any]:
        """The run's numbers for machines, beside results.json's counts of cases."""
        return {
            "examples": self.examples,
            "passed": self.passed,
            "failed": self.examples - self.passed,
            "failures": len(self.failures),
            "rounds": self.rounds,
            "max_examples": self.max_examples,
            "requests": self.requests,
            "resent": self.resent,
            "stopped_by": self.stopped_by,
            "seed": self.seed,
            "regression_cases": [str(p) for p in cases],
        }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


_MAX_PASSES = 8


class _Stop(BaseException):
    """A budget is spent: stop the search where it is (what was found is kept)."""


def _expected(exc: BaseException) -> bool:
    """What a search ends with when it found failures, or when a budget cut a replay short."""
    from hypothesis.errors import Flaky, Unsatisfiable

    if isinstance(exc, _Failed | Flaky | Unsatisfiable):
        return True
    if isinstance(exc, BaseExceptionGroup):
        return all(_expected(e) for e in exc.exceptions)
    return False


class _Failed(Exception):
    """Raised for a failing example; one subclass per check code, so Hypothesis shrinks each failure apart."""


_FAILURE_TYPES: dict[str, type[_Failed]] = {}


def _failure_type(code: str) -> type[_Failed]:
    if code not in _FAILURE_TYPES:
        _FAILURE_TYPES[code] = type(f"Failed_{re.sub(r'[^A-Za-z0-9]', '_', code)}", (_Failed,), {})
    return _FAILURE_TYPES[code]


def _size(payload: Any) -> tuple[int, str]:
    text = payload if isinstance(payload, str) else json.dumps(payload, sort_keys=True, ensure_ascii=False)
    return len(text), text


def _case(kind: str, payload: Any, number: int) -> Case:
    """A case for one generated payload; it bypasses placeholders, since generated text may contain `${`."""
    expect = Expect(status=("4xx",)) if kind != "valid" else Expect()
    source = Source("<fuzz>", None, {})
    if kind == "malformed":
        return Case(f"fuzz-{number}", source, "", raw_body=payload, expect=expect)
    return Case(f"fuzz-{number}", source, "", request=payload, expect=expect)


def _strategy(endpoint: Endpoint, options: FuzzOptions) -> Any:
    from hypothesis import strategies as st
    from hypothesis.errors import InvalidArgument

    unknown = sorted(set(options.exclude) - cs.PARTS)
    if unknown:
        raise InvalidArgument(
            f"exclude names parts the strategies do not know: {unknown}; expected some of {sorted(cs.PARTS)}"
        )

    valid = cs.chat_requests(endpoint.model, pin=options.pin, exclude=options.exclude).map(lambda r: ("valid", r))
    if not options.invalid:
        return valid
    invalid = cs.invalid_chat_requests(endpoint.model, pin=options.pin, exclude=options.exclude)
    malformed = cs.malformed_bodies().map(lambda r: ("malformed", r))
    kinds = [valid, valid, valid, invalid.map(lambda r: ("invalid", r)), malformed]
    # Three valid variants in five (one_of would merge identical branches), shrinking towards valid ones.
    return st.integers(0, len(kinds) - 1).flatmap(lambda i: kinds[i])


def fuzz(
    endpoint: Endpoint,
    options: FuzzOptions,
    run_options: Options | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    on_example: Callable[[int, int, int], None] = lambda examples, requests, failures: None,
) -> FuzzReport:
    """Fuzz one endpoint within the budgets; returns every distinct failure with its smallest payload."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as with_seed
    from hypothesis.database import DirectoryBasedExampleDatabase

    strategy = _strategy(endpoint, options)  # first: a bad pin or exclude is refused before anything opens
    loop = asyncio.new_event_loop()
    try:
        session = loop.run_until_complete(Session.open([endpoint], run_options or Options(), environ=environ))
    except BaseException:
        loop.close()
        raise
    found: dict[str, FuzzFailure] = {}
    counts = {"examples": 0, "passed": 0, "requests": 0, "resent": 0, "rounds": 0}
    started = time.monotonic()
    stopped_by = "max-examples"  # each pass generates at most max_examples variants
    last_send = 0.0

    def exhausted() -> str | None:
        if options.max_requests is not None and counts["requests"] >= options.max_requests:
            return "max-requests"
        if options.budget_s is not None and time.monotonic() - started >= options.budget_s:
            return "budget"
        return None

    def send(kind: str, payload: Any) -> Result:
        nonlocal last_send
        if options.rate:
            wait = last_send + 1 / options.rate - time.monotonic()
            if wait > 0:
                if options.budget_s is not None and time.monotonic() + wait - started >= options.budget_s:
                    raise _Stop  # waiting for the rate would send this request once the budget is over
                time.sleep(wait)
        last_send = time.monotonic()
        counts["requests"] += 1
        planned = Planned(_case(kind, payload, counts["requests"]), endpoint)
        return loop.run_until_complete(session.result(planned))

    database = DirectoryBasedExampleDatabase(str(options.database)) if options.database else None

    def search(known: frozenset[str], first: bool) -> None:
        """One Hypothesis pass. Failures found in earlier passes pass here, so this one looks for new ones:
        Hypothesis stops generating soon after the last failure it found, so one bug would hide the next."""

        @settings(
            max_examples=options.max_examples,
            deadline=None,
            database=database,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
            # Only the first round replays the database: a later one would pass the failures it already
            # knows, and Hypothesis would drop them from the database as fixed.
            phases=[Phase.reuse, Phase.generate, Phase.shrink] if first else [Phase.generate, Phase.shrink],
            report_multiple_bugs=True,
            print_blob=False,
        )
        @given(strategy)
        def example(item: tuple[str, Any]) -> None:
            if exhausted():
                raise _Stop  # a BaseException: Hypothesis stops at once instead of shrinking it
            kind, payload = item
            result = send(kind, payload)
            counts["examples"] += 1
            errors = [f for f in result.findings if f.severity is Severity.ERROR]
            passed = result.verdict not in (Verdict.FAIL, Verdict.ERROR) or not errors
            counts["passed"] += int(passed)
            on_example(counts["examples"], counts["requests"], len(found))
            if passed:
                return
            code = errors[0].code
            key = f"{code} ({kind})"  # a 500 on a valid request and a 200 on an invalid one are different bugs
            if key in known:
                return
            if key not in found or _size(payload) < _size(found[key].payload):
                found[key] = FuzzFailure(code=code, kind=kind, payload=payload, result=result)
            raise _failure_type(key)(f"{code}: {errors[0].message}")

        if options.seed is not None:
            example = with_seed(options.seed)(example)
        try:
            example()
        except Exception as exc:
            if not _expected(exc):
                raise

    def resend(kind: str, payload: Any) -> Result:
        counts["resent"] += 1
        return send(kind, payload)

    settled: dict[str, FuzzFailure] = {}
    try:
        try:
            for round_number in range(_MAX_PASSES):
                before = frozenset(found)
                counts["rounds"] += 1
                search(before, round_number == 0)
                if frozenset(found) == before:
                    break
        except _Stop:
            stopped_by = exhausted() or "budget"
        for key in sorted(found):  # within the budgets: a spent one leaves the rest unchecked
            settled[key] = settle(found[key], options.exclude, None if exhausted() else resend)
    except _Stop:
        pass
    except KeyboardInterrupt:
        stopped_by = "interrupted"
    finally:
        loop.run_until_complete(session.aclose())
        loop.close()
    return FuzzReport(
        endpoint=endpoint.name,
        examples=counts["examples"],
        passed=counts["passed"],
        requests=counts["requests"],
        resent=counts["resent"],
        rounds=counts["rounds"],
        max_examples=options.max_examples,
        elapsed_s=round(time.monotonic() - started, 3),
        stopped_by=stopped_by,
        failures=tuple(settled.get(k) or settle(found[k], options.exclude, None) for k in sorted(found)),
        pinned=dict(options.pin),
        excluded=options.exclude,
        seed=options.seed,
    )


def settle(failure: FuzzFailure, exclude: Collection[str], send: Callable[[str, Any], Result] | None) -> FuzzFailure:
    """A valid variant's failure with REPLAY_SETTINGS added to its request, so that its case tells a fix from luck.

    What the failing request set itself (drawn or pinned) is kept, and what the run left out (`exclude`, a
    member the endpoint is known to refuse) stays out. The request is sent once more (`send`; None when the run
    has stopped) to make sure it still fails the same way: settings that make the failure go away would give a
    case that passes while the bug is there, so then the case keeps the request as it failed.
    """
    if failure.kind != "valid" or not isinstance(failure.payload, dict):
        return failure
    added = {k: v for k, v in REPLAY_SETTINGS.items() if k not in failure.payload and k not in exclude}
    if not added:
        return failure
    payload = {**failure.payload, **added}
    if send is None:
        return replace(failure, payload=payload, settings=added, reproduced=None)
    result = send(failure.kind, payload)
    if failure.code in {f.code for f in result.errors} and result.verdict in (Verdict.FAIL, Verdict.ERROR):
        return replace(failure, payload=payload, result=result, settings=added, reproduced=True)
    return replace(failure, settings=added, reproduced=False)


class _Dumper(yaml.SafeDumper):
    pass


def _escape(value: Any, model: str | None) -> Any:
    """Payload values as case-file values, where `$` starts a placeholder: every `$` is written `$$`."""
    if isinstance(value, str):
        return value.replace("$", "$$")  # `$$` reads back as `$`, so no `${` can become a placeholder
    if isinstance(value, dict):
        return {
            k: ("${model}" if k == "model" and v == model and model else _escape(v, model)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_escape(v, model) for v in value]
    return value


def _settings(values: Mapping[str, Any]) -> str:
    return " and ".join(f"{k}: {json.dumps(v)}" for k, v in values.items())


def replay_note(failure: FuzzFailure) -> str:
    """How far a pass of the case can be trusted, said in the case file: a valid variant's answer may depend on
    sampling, and a case that passed by luck would announce a fix that is not there."""
    if failure.kind != "valid" or not isinstance(failure.payload, dict):
        return ""
    own = {k: failure.payload[k] for k in REPLAY_SETTINGS if k in failure.payload and k not in failure.settings}
    kept = f" ({_settings(own)} as the failing request had)" if own else ""
    added = _settings(failure.settings)
    if not failure.settings:
        missing = [k for k in REPLAY_SETTINGS if k not in failure.payload]
        if missing:
            return (
                f"Sent as it failed{kept}. The fuzz run left {' and '.join(missing)} out (--exclude), so none is "
                f"added: a pass may be a lucky answer, run it more than once."
            )
        return f"Sent as it failed{kept}: with sampling pinned down, a pass means the bug is fixed, not luck."
    if failure.reproduced is False:
        return (
            f"Sent as it failed: with {added} added the endpoint did not fail, so this failure depends on "
            f"sampling and a pass may be luck: run it more than once."
        )
    if failure.reproduced is None:
        return (
            f"Sent with {added} added to the request that failed{kept}, so that a pass means fixed, not lucky; "
            f"the fuzz run stopped before it could check that the request still fails with them."
        )
    return (
        f"Sent with {added} added to the request that failed{kept}, and it failed the same way with them: "
        f"with sampling pinned down, a pass means the bug is fixed, not luck."
    )


def export_case(failure: FuzzFailure, endpoint: Endpoint, directory: Path) -> Path:
    """Write the failure as a ready case file that `harness run` replays; returns its path."""
    digest = hashlib.sha256(_size(failure.payload)[1].encode()).hexdigest()[:8]
    slug = failure.code.replace(".", "-").replace("_", "-")
    case_id = f"regression-{slug}-{digest}"
    finding = failure.finding
    note = replay_note(failure)
    case: dict[str, Any] = {
        "id": case_id,
        "title": f"Fuzzing found {failure.code} on {endpoint.name}",
        "description": f"Found by harness fuzz on {datetime.now(UTC).date().isoformat()} against {endpoint.name} "
        f"(chat-conformance {__version__}), shrunk to this payload: {finding.message}" + (f" {note}" if note else ""),
        "tags": ["regression", "fuzz", slug.split("-")[0]],
    }
    if failure.kind == "malformed":
        case["raw_body"] = failure.payload.replace("$", "$$")
    else:
        case["request"] = _escape(failure.payload, endpoint.model)
    if failure.kind != "valid":
        case["expect"] = {"status": "4xx"}
    path = directory / f"{case_id}.case.yaml"
    comment = "".join(f"# {line}\n" for line in textwrap.wrap(note, 108)) if note else ""
    atomic_write(path, comment + yaml.dump(case, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110))
    return path


def add_counts(results_json: Path, report: FuzzReport, cases: Sequence[Path]) -> None:
    """Give results.json the run's own numbers under `fuzz`: its `summary` counts cases, and a fuzz run's cases
    are only its regression cases."""
    from .atomic import atomic_stream
    from .report.records import json_document, json_text

    if not results_json.is_file():
        return
    document = json.loads(results_json.read_text(encoding="utf-8"))
    results = document.pop("results", [])
    document["fuzz"] = report.counts(cases)
    # Laid out as `harness run` writes it: the header indented, a result a line.
    lines = (json_text(json.dumps(result, ensure_ascii=False)) for result in results)
    atomic_stream(results_json, lambda out: json_document(out, document, "results", lines))


def with_case_file(failure: FuzzFailure, path: Path, case_id: str) -> FuzzFailure:
    """The failure's result as it reads in a report: named after its exported case."""
    return replace(
        failure, result=replace(failure.result, case_id=case_id, file=str(path), title=f"fuzz: {failure.code}")
    )
