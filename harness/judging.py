"""Judging an exchange: the checks that apply, weighed by the endpoint's profile, into one verdict.

The only place a verdict is computed. A failure to complete the exchange is an `error`, a crashed check too;
an error finding fails the case; warnings leave it passing.
"""

from __future__ import annotations

from collections.abc import Mapping

from .cases import Case
from .checks import INTERNAL_CODE, CheckContext, run_checks
from .clients import ClientRead
from .models import Exchange, Finding, Severity, StepResult, Verdict
from .pointer import join
from .profiles import Profile

__all__ = ["judge", "judge_steps", "value_missing"]

_WORST = (Verdict.ERROR, Verdict.FAIL, Verdict.PASS)


def judge(
    exchange: Exchange,
    case: Case,
    profile: Profile,
    *,
    plain: Exchange | None = None,
    clients: Mapping[str, ClientRead | None] | None = None,
) -> tuple[Verdict, tuple[Finding, ...]]:
    """Run the checks and weigh the findings: transport failures and crashed checks are `error`, not `fail`.

    `plain` is the plain answer to the same case, for the streamed run of a both-ways case; `clients` what the
    official SDKs made of the answer, read before judging (without it the client checks read it themselves).
    """
    if exchange.transport_error is not None:
        error = exchange.transport_error
        code = _REPLAY_CODES.get(error.kind, f"transport.{error.kind}")
        return Verdict.ERROR, (
            Finding(code, "/request/body", error.message)
            if error.kind == "stale"
            else Finding(code, "/response", error.message),
        )
    raw = run_checks(exchange, CheckContext(expect=case.expect, plain=plain, clients=clients))
    findings = tuple(f for f in (profile.judge(f) for f in raw) if f is not None)
    if any(f.code == INTERNAL_CODE for f in findings):
        return Verdict.ERROR, findings
    if any(f.severity is Severity.ERROR for f in findings):
        return Verdict.FAIL, findings
    return Verdict.PASS, findings


_REPLAY_CODES = {"stale": "replay.stale", "unreadable": "replay.unreadable"}
"""Errors of a replay's recordings rather than of the endpoint's transport."""


def value_missing(step: str, name: str, pointer: str, answer_root: str) -> Finding:
    """A value a later step uses is not in this step's answer: the later steps cannot be sent."""
    return Finding(
        "steps.value_missing",
        join("/steps", step) + answer_root + pointer,
        f"step {step!r} saves {name!r} from {pointer or '/'} of its answer, but the answer has nothing there; "
        "the steps after it were not sent",
        expected=pointer,
    )


def judge_steps(steps: tuple[StepResult, ...], findings: tuple[Finding, ...]) -> Verdict:
    """A multi-step case's verdict: its worst step's, and a fail when a value a later step needed was missing."""
    verdicts = {step.verdict for step in steps}
    if any(f.code == "steps.value_missing" and f.severity is Severity.ERROR for f in findings):
        verdicts.add(Verdict.FAIL)
    return next((v for v in _WORST if v in verdicts), Verdict.PASS)
