"""Fuzzing an endpoint: Hypothesis generates request variants, the catalogue's checks judge every answer.

Two oracles: a valid variant must get a 200 whose answer passes every check; an invalid one must be refused
with a 4xx and a well-formed error body (never a 200, a 5xx, a hang or a dropped connection). Each distinct
failure (by check code) is shrunk to the smallest payload that still shows it and exported as a ready case.

Hypothesis is the search and shrink engine; the harness keeps its own record of the smallest payload seen
for each failure, so a run that a budget stops half-way through shrinking still reports what it found.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
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
from .runner import Options, Planned, Session
from .yamlfile import Source

__all__ = ["FuzzFailure", "FuzzOptions", "FuzzReport", "export_case", "fuzz"]

STATE_DIR = Path(".harness")


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
    """The smallest payload found for one check code, and what the endpoint did with it."""

    code: str
    kind: str  # valid, invalid or malformed
    payload: Any
    result: Result

    @property
    def finding(self) -> Finding:
        return next(f for f in self.result.findings if f.code == self.code)


@dataclass(frozen=True, slots=True)
class FuzzReport:
    endpoint: str
    examples: int
    requests: int
    elapsed_s: float
    stopped_by: str
    failures: tuple[FuzzFailure, ...]
    pinned: Mapping[str, Any]
    excluded: frozenset[str]
    seed: int | None


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
    counts = {"examples": 0, "requests": 0}
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
            counts["examples"] += 1
            result = send(kind, payload)
            errors = [f for f in result.findings if f.severity is Severity.ERROR]
            on_example(counts["examples"], counts["requests"], len(found))
            if result.verdict not in (Verdict.FAIL, Verdict.ERROR) or not errors:
                return
            code = errors[0].code
            key = f"{code} ({kind})"  # a 500 on a valid request and a 200 on an invalid one are different bugs
            if key in known:
                return
            if key not in found or _size(payload) < _size(found[key].payload):
                found[key] = FuzzFailure(code, kind, payload, result)
            raise _failure_type(key)(f"{code}: {errors[0].message}")

        if options.seed is not None:
            example = with_seed(options.seed)(example)
        try:
            example()
        except Exception as exc:
            if not _expected(exc):
                raise

    try:
        for round_number in range(_MAX_PASSES):
            before = frozenset(found)
            search(before, round_number == 0)
            if frozenset(found) == before:
                break
    except _Stop:
        stopped_by = exhausted() or "budget"
    except KeyboardInterrupt:
        stopped_by = "interrupted"
    finally:
        loop.run_until_complete(session.aclose())
        loop.close()
    return FuzzReport(
        endpoint.name,
        counts["examples"],
        counts["requests"],
        round(time.monotonic() - started, 3),
        stopped_by,
        tuple(found[c] for c in sorted(found)),
        dict(options.pin),
        options.exclude,
        options.seed,
    )


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


def export_case(failure: FuzzFailure, endpoint: Endpoint, directory: Path) -> Path:
    """Write the failure as a ready case file that `harness run` replays; returns its path."""
    digest = hashlib.sha256(_size(failure.payload)[1].encode()).hexdigest()[:8]
    slug = failure.code.replace(".", "-").replace("_", "-")
    case_id = f"regression-{slug}-{digest}"
    finding = failure.finding
    case: dict[str, Any] = {
        "id": case_id,
        "title": f"Fuzzing found {failure.code} on {endpoint.name}",
        "description": f"Found by harness fuzz on {datetime.now(UTC).date().isoformat()} against {endpoint.name} "
        f"(chat-conformance {__version__}), shrunk to this payload: {finding.message}",
        "tags": ["regression", "fuzz", slug.split("-")[0]],
    }
    if failure.kind == "malformed":
        case["raw_body"] = failure.payload.replace("$", "$$")
    else:
        case["request"] = _escape(failure.payload, endpoint.model)
    if failure.kind != "valid":
        case["expect"] = {"status": "4xx"}
    path = directory / f"{case_id}.case.yaml"
    atomic_write(path, yaml.dump(case, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=110))
    return path


def with_case_file(failure: FuzzFailure, path: Path, case_id: str) -> FuzzFailure:
    """The failure's result as it reads in a report: named after its exported case."""
    return replace(
        failure, result=replace(failure.result, case_id=case_id, file=str(path), title=f"fuzz: {failure.code}")
    )
