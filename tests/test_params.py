"""The effect checks of request parameters, both ways, on exchanges built in memory; and the support verdict each
kind of answer gives a parameter."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from harness.checks import CheckContext, registry, run_checks
from harness.models import (
    Exchange,
    Finding,
    HttpResponse,
    Result,
    SentRequest,
    Severity,
    Timings,
    TransportError,
    Verdict,
)
from harness.parameters import PARAMETERS, Documented, parameter
from harness.support import Support, SupportMatrix, classify, contradiction, probed

ASK = {"model": "m", "messages": [{"role": "user", "content": "Name one primary colour."}]}


def answer(content: Any = "Red.", *, finish: str = "stop", usage: Any = None, **extra: Any) -> dict[str, Any]:
    """A conformant chat.completion around one message, with `extra` members on the message, choice or body."""
    msg = {"role": "assistant", "content": content, **extra.pop("message", {})}
    choice = {"index": 0, "message": msg, "finish_reason": finish, **extra.pop("choice", {})}
    body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "m", "choices": [choice]}
    body["usage"] = usage or {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    return {**body, **extra}


def exchange(request: dict[str, Any], body: Any, status: int = 200) -> Exchange:
    return Exchange(
        request=SentRequest(method="POST", url="http://127.0.0.1:9/v1/chat/completions", headers={}, body=request),
        response=HttpResponse(
            status=status, headers={"content-type": "application/json"}, text=json.dumps(body), body=body
        ),
        timings=Timings(started="2026-01-01T00:00:00Z"),
    )


def logprobs(tokens: list[str], logprob: float = -0.5, top: int = 0) -> dict[str, Any]:
    return {
        "content": [
            {"token": t, "logprob": logprob, "top_logprobs": [{"token": t, "logprob": logprob}] * top} for t in tokens
        ]
    }


LOGPROBS = {**ASK, "logprobs": True}
TOP = {**ASK, "logprobs": True, "top_logprobs": 2}
LIMIT = {**ASK, "max_completion_tokens": 5}
STOP = {**ASK, "stop": ["7"]}
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
PARALLEL = {**ASK, "tools": [WEATHER], "tool_choice": "required", "parallel_tool_calls": False}
CALL = {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
TIER = {**ASK, "service_tier": "auto"}
EFFORT = {**ASK, "reasoning_effort": "low"}
BUDGET = {**ASK, "extra_body": {"google": {"thinking_config": {"thinking_budget": 128}}}}
LEVEL = {**ASK, "extra_body": {"google": {"thinking_config": {"thinking_level": "low"}}}}
PREDICTION = {**ASK, "prediction": {"type": "content", "content": "Red."}}
AUDIO = {**ASK, "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"}}
SEARCH = {**ASK, "web_search_options": {}}
REASONED = {
    "prompt_tokens": 5,
    "completion_tokens": 2,
    "total_tokens": 39,
    "completion_tokens_details": {"reasoning_tokens": 32},
}
SAMPLED = {**ASK, "n": 2, "temperature": 1.5}


def choice_of(content: str, index: int) -> dict[str, Any]:
    return {"index": index, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}


PREDICTED = {**REASONED, "completion_tokens_details": {"accepted_prediction_tokens": 2}}

# (name, request, body) -> the (code, pointer) pairs the params checks must report: none for a conformant answer.
PARAMS_PASSING: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("logprobs", LOGPROBS, answer("Red.", choice={"logprobs": logprobs(["Red", "."])})),
    ("top-logprobs", TOP, answer("Red.", choice={"logprobs": logprobs(["Red", "."], top=2)})),
    ("limit-reached", LIMIT, answer("1, 2", finish="length", usage={"prompt_tokens": 5, "completion_tokens": 5})),
    ("limit-not-reached", LIMIT, answer("Red.", usage={"prompt_tokens": 5, "completion_tokens": 2})),
    # An answer that ends on its own exactly at the limit: nothing says it was cut.
    ("limit-reached-on-its-own", LIMIT, answer("1, 2", usage={"prompt_tokens": 5, "completion_tokens": 5})),
    ("stop", STOP, answer("1, 2, 3, 4, 5, 6, ")),
    ("one-call", PARALLEL, answer(None, finish="tool_calls", message={"tool_calls": [CALL]})),
    ("tier", TIER, answer(service_tier="default")),
    ("effort", EFFORT, answer(usage=REASONED)),
    ("budget", BUDGET, answer(usage=REASONED)),
    ("level", LEVEL, answer(usage=REASONED)),
    ("prediction", PREDICTION, answer(usage=PREDICTED)),
    ("audio", AUDIO, answer(None, message={"audio": {"id": "a1", "data": "UklGRg==", "transcript": "Yes."}})),
    (
        "search",
        SEARCH,
        answer(message={"annotations": [{"type": "url_citation", "url_citation": {"url": "https://x"}}]}),
    ),
    ("no-parameter", ASK, answer()),
    ("n-sampled", SAMPLED, {**answer("Goldie"), "choices": [choice_of("Goldie", 0), choice_of("Bubbles", 1)]}),
    (
        "n-greedy",
        {**SAMPLED, "temperature": 0},
        {**answer("Goldie"), "choices": [choice_of("Goldie", 0), choice_of("Goldie", 1)]},
    ),
]

PARAMS_FAILING: list[tuple[str, dict[str, Any], dict[str, Any], set[tuple[str, str]]]] = [
    ("logprobs-missing", LOGPROBS, answer(), {("params.logprobs_returned", "/response/body/choices/0/logprobs")}),
    (
        "logprob-positive",
        LOGPROBS,
        answer("Red.", choice={"logprobs": logprobs(["Red", "."], logprob=0.3)}),
        {("params.logprobs_valid", "/response/body/choices/0/logprobs/content/0/logprob"),
         ("params.logprobs_valid", "/response/body/choices/0/logprobs/content/1/logprob")},
    ),
    (
        "tokens-do-not-join",
        LOGPROBS,
        answer("Red.", choice={"logprobs": logprobs(["Blue"])}),
        {("params.logprobs_valid", "/response/body/choices/0/logprobs/content")},
    ),
    (
        "top-logprobs-missing",
        TOP,
        answer("Red.", choice={"logprobs": logprobs(["Red", "."])}),
        {("params.top_logprobs_returned", "/response/body/choices/0/logprobs/content")},
    ),
    (
        "top-logprobs-count",
        TOP,
        answer("Red.", choice={"logprobs": logprobs(["Red."], top=1)}),
        {("params.top_logprobs_count", "/response/body/choices/0/logprobs/content/0/top_logprobs")},
    ),
    (
        "limit-exceeded",
        LIMIT,
        answer("1, 2, 3, 4, 5, 6", finish="length", usage={"prompt_tokens": 5, "completion_tokens": 12}),
        {("params.token_limit", "/response/body/usage/completion_tokens")},
    ),
    ("stop-ignored", STOP, answer("1, 2, 3, 4, 5, 6, 7, 8"),
     {("params.stop_absent", "/response/body/choices/0/message/content")}),
    (
        "two-calls",
        PARALLEL,
        answer(None, finish="tool_calls", message={"tool_calls": [CALL, {**CALL, "id": "c2"}]}),
        {("params.single_tool_call", "/response/body/choices/0/message/tool_calls")},
    ),
    ("tier-missing", TIER, answer(), {("params.service_tier_echoed", "/response/body/service_tier")}),
    (
        "effort-ignored",
        EFFORT,
        answer(),
        {("params.reasoning_reported", "/response/body/usage/completion_tokens_details/reasoning_tokens")},
    ),
    (
        "budget-ignored",
        BUDGET,
        answer(),
        {("params.reasoning_reported", "/response/body/usage/completion_tokens_details/reasoning_tokens")},
    ),
    (
        "prediction-ignored",
        PREDICTION,
        answer(usage=REASONED),
        {("params.prediction_counted", "/response/body/usage/completion_tokens_details")},
    ),
    ("audio-missing", AUDIO, answer(), {("params.audio_returned", "/response/body/choices/0/message/audio")}),
    ("search-uncited", SEARCH, answer(), {("params.url_citations", "/response/body/choices/0/message/annotations")}),
    (
        "n-copies",
        SAMPLED,
        {**answer("Goldie"), "choices": [choice_of("Goldie", 0), choice_of("Goldie", 1)]},
        {("params.n_choices_differ", "/response/body/choices")},
    ),
]  # fmt: skip


SEEDED = {**ASK, "seed": 42, "temperature": 1}
CACHED = {**ASK, "prompt_cache_key": "k"}
HIT = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "prompt_tokens_details": {"cached_tokens": 4}}

# (name, request, first body, second body, wanted): a request sent twice, the second judged against the first.
REPEAT_ROWS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any], set[tuple[str, str]]]] = [
    ("seed-same", SEEDED, answer("Goldie"), answer("Goldie"), set()),
    (
        "seed-differs",
        SEEDED,
        answer("Goldie"),
        answer("Bubbles"),
        {("params.seed_repeatable", "/response/body/choices")},
    ),
    ("cache-hit", CACHED, answer(), answer(usage=HIT), set()),
    (
        "cache-miss",
        CACHED,
        answer(usage=HIT),
        answer(),
        {("params.prompt_cache_hit", "/response/body/usage/prompt_tokens_details/cached_tokens")},
    ),
]


@pytest.mark.parametrize(
    ("name", "request_body", "first", "second", "wanted"), REPEAT_ROWS, ids=[r[0] for r in REPEAT_ROWS]
)
def test_a_repeated_request_is_judged_against_the_first(
    name: str, request_body: dict[str, Any], first: Any, second: Any, wanted: set[tuple[str, str]]
) -> None:
    context = CheckContext(plain=exchange(request_body, first))
    found = {
        (f.code, f.pointer) for f in run_checks(exchange(request_body, second), context) if f.code.startswith("params.")
    }
    assert found == wanted
    assert params_findings(exchange(request_body, second)) == set()  # sent once: nothing to compare


def thinking(**config: Any) -> dict[str, Any]:
    return {**ASK, "extra_body": {"google": {"thinking_config": config}}}


def budget(tokens: int) -> dict[str, Any]:
    return thinking(thinking_budget=tokens)


def level(name: str) -> dict[str, Any]:
    return thinking(thinking_level=name)


def reasoning(tokens: int | None) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 5, "completion_tokens": 40, "total_tokens": 45}
    if tokens is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": tokens}
    return answer(usage=usage)


MOVES = {("params.reasoning_moves", "/response/body/usage/completion_tokens_details/reasoning_tokens")}
# (name, first request and answer, second request and answer, wanted): `repeat: {with: ...}` changes the thinking.
MOVE_ROWS: list[tuple[str, tuple[dict[str, Any], Any], tuple[dict[str, Any], Any], set[tuple[str, str]]]] = [
    ("budget-up", (budget(128), reasoning(100)), (budget(512), reasoning(400)), set()),
    ("budget-down", (budget(512), reasoning(400)), (budget(0), reasoning(None)), set()),
    ("level-up", (level("low"), reasoning(90)), (level("HIGH"), reasoning(900)), set()),
    ("budget-same-count", (budget(128), reasoning(120)), (budget(512), reasoning(120)), MOVES),
    ("budget-none-reported", (budget(128), reasoning(None)), (budget(512), reasoning(None)), MOVES),
    ("level-down-but-more", (level("high"), reasoning(90)), (level("low"), reasoning(900)), MOVES),
    # not a comparison of like with like, or nothing changed: no finding either way
    ("budget-then-level", (budget(128), reasoning(9)), (level("high"), reasoning(9)), set()),
    ("same-budget", (budget(128), reasoning(9)), (budget(128), reasoning(9)), set()),
    ("first-refused", (budget(128), {"error": {"message": "no"}}), (budget(512), reasoning(9)), set()),
]  # fmt: skip


@pytest.mark.parametrize(("name", "first", "second", "wanted"), MOVE_ROWS, ids=[r[0] for r in MOVE_ROWS])
def test_reasoning_moves_with_the_thinking_asked_for(
    name: str, first: tuple[dict[str, Any], Any], second: tuple[dict[str, Any], Any], wanted: set[tuple[str, str]]
) -> None:
    status = 400 if "error" in first[1] else 200
    context = CheckContext(plain=exchange(first[0], first[1], status=status))
    found = {(f.code, f.pointer) for f in run_checks(exchange(*second), context) if f.code == "params.reasoning_moves"}
    assert found == wanted


def test_a_thinking_probe_that_does_not_move_is_ignored() -> None:
    tags = ("param:extra_body.google.thinking_config.thinking_budget",)
    moved = replace(result(thinking(thinking_budget=512), reasoning(400), tags=tags), mode="repeat")
    assert classify(moved, "extra_body.google.thinking_config.thinking_budget")[0] is Support.HONOURED
    stuck = replace(moved, findings=(Finding("params.reasoning_moves", "/response/body/usage", "same"),))
    assert classify(stuck, "extra_body.google.thinking_config.thinking_budget") == (
        Support.IGNORED,
        "params.reasoning_moves",
    )


def params_findings(ex: Exchange) -> set[tuple[str, str]]:
    return {(f.code, f.pointer) for f in run_checks(ex, CheckContext()) if f.code.startswith("params.")}


@pytest.mark.parametrize(("name", "request_body", "body"), PARAMS_PASSING, ids=[r[0] for r in PARAMS_PASSING])
def test_an_honoured_parameter_gives_no_params_finding(name: str, request_body: dict[str, Any], body: Any) -> None:
    assert params_findings(exchange(request_body, body)) == set()


@pytest.mark.parametrize(("name", "request_body", "body", "wanted"), PARAMS_FAILING, ids=[r[0] for r in PARAMS_FAILING])
def test_an_ignored_or_malformed_effect_is_found(
    name: str, request_body: dict[str, Any], body: Any, wanted: set[tuple[str, str]]
) -> None:
    assert params_findings(exchange(request_body, body)) == wanted


def test_the_catalogue_names_only_registered_codes() -> None:
    codes = set(registry())
    for row in PARAMETERS:
        assert set(row.absent) | set(row.wrong) <= codes, row.name
        assert row.origin in ("openai", "google")
    assert len({p.name for p in PARAMETERS}) == len(PARAMETERS)


def test_the_catalogue_has_every_parameter_of_openais_reference() -> None:
    """Every member of CreateChatCompletionRequest but model and messages, which every request carries."""
    openai = {p.name for p in PARAMETERS if p.origin == "openai"}
    assert len(openai) == 35
    assert {"logprobs", "prompt_cache_options", "moderation", "verbosity", "function_call"} <= openai
    assert parameter("my_own").origin == "" and not parameter("my_own").observable


# --- the support verdict ----------------------------------------------------------------------------------------


def result(
    request_body: dict[str, Any],
    body: Any,
    status: int = 200,
    *,
    tags: tuple[str, ...] = ("param:logprobs",),
    findings: tuple[Finding, ...] | None = None,
    verdict: Verdict = Verdict.PASS,
    case: str = "probe",
    endpoint: str = "e",
) -> Result:
    ex = exchange(request_body, body, status)
    found = tuple(run_checks(ex, CheckContext())) if findings is None else findings
    return Result(case_id=case, endpoint=endpoint, verdict=verdict, findings=found, tags=tags, exchange=ex)


GOOGLE_REFUSAL = [{"error": {"code": 400, "message": 'Unknown name "logprobs"', "status": "INVALID_ARGUMENT"}}]


def refusal(message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}}


@pytest.mark.parametrize(
    ("made", "wanted"),
    [
        (result(LOGPROBS, answer("Red.", choice={"logprobs": logprobs(["Red", "."])})), Support.HONOURED),
        (result(LOGPROBS, answer()), Support.IGNORED),
        (result(LOGPROBS, answer("Red.", choice={"logprobs": logprobs(["Red."], logprob=2)})), Support.BROKEN),
        (result(LOGPROBS, refusal("logprobs is not supported"), 400), Support.REJECTED),
        (result(LOGPROBS, refusal("unsupported", param="logprobs"), 400), Support.REJECTED),
        (result(LOGPROBS, GOOGLE_REFUSAL, 400), Support.REJECTED),
        (result(LOGPROBS, refusal("bad request"), 400), Support.BROKEN),
        (result(LOGPROBS, {"detail": "logprobs"}, 400), Support.BROKEN),
        (result(LOGPROBS, refusal("Invalid API key"), 401), Support.NOT_PROBED),
        (result(LOGPROBS, refusal("boom"), 500), Support.BROKEN),
        (result(LOGPROBS, "<html>", 200), Support.BROKEN),
        (result({**ASK, "store": False}, answer(), tags=("param:store",)), Support.ACCEPTED),
        (result(ASK, answer(), tags=("param:store",)), Support.NOT_PROBED),
        (result(BUDGET, answer(usage=REASONED), tags=("param:extra_body.google.thinking_config.thinking_budget",)),
         Support.HONOURED),
        (result(BUDGET, refusal('Unknown name "extra_body": Cannot find field.'), 400,
                tags=("param:extra_body.google.thinking_config.thinking_budget",)), Support.REJECTED),
        (result(LOGPROBS, answer(), verdict=Verdict.SKIP, findings=()), Support.NOT_PROBED),
    ],
)  # fmt: skip
def test_each_answer_gives_its_verdict(made: Result, wanted: Support) -> None:
    [name] = probed(made.tags)
    assert classify(made, name)[0] is wanted


def test_a_hang_is_broken_and_a_stale_recording_is_not_probed() -> None:

    made = result(LOGPROBS, answer())
    assert made.exchange is not None
    hang = replace(
        made, verdict=Verdict.ERROR, exchange=replace(made.exchange, transport_error=TransportError("timeout", ""))
    )
    stale = replace(
        made, verdict=Verdict.ERROR, exchange=replace(made.exchange, transport_error=TransportError("stale", ""))
    )
    assert classify(hang, "logprobs") == (Support.BROKEN, "transport.timeout")
    assert classify(stale, "logprobs")[0] is Support.NOT_PROBED


def test_the_verdict_does_not_depend_on_a_findings_severity() -> None:
    """A profile that makes ignoring a warning still shows the parameter as ignored."""
    found = tuple(
        Finding(f.code, f.pointer, f.message, severity=Severity.WARNING)
        for f in run_checks(exchange(LOGPROBS, answer()), CheckContext())
    )
    assert classify(result(LOGPROBS, answer(), findings=found), "logprobs")[0] is Support.IGNORED


SUPPORTED = Documented(status="supported", url="https://docs.example/params")
IGNORED = Documented(status="ignored", url="https://docs.example/params")
REFUSED = Documented(status="refused")


@pytest.mark.parametrize(
    ("verdict", "documented", "wanted"),
    [
        (Support.HONOURED, SUPPORTED, None),
        (Support.ACCEPTED, SUPPORTED, None),
        (Support.IGNORED, SUPPORTED, Severity.ERROR),
        (Support.REJECTED, SUPPORTED, Severity.ERROR),
        (Support.BROKEN, SUPPORTED, Severity.ERROR),
        (Support.IGNORED, IGNORED, None),
        (Support.ACCEPTED, IGNORED, None),
        (Support.HONOURED, IGNORED, None),
        (Support.REJECTED, IGNORED, Severity.ERROR),
        (Support.REJECTED, REFUSED, None),
        (Support.ACCEPTED, REFUSED, Severity.WARNING),
        (Support.NOT_PROBED, SUPPORTED, None),
        (Support.IGNORED, None, None),
    ],
)
def test_a_verdict_against_the_documentation(verdict: Support, documented: Documented | None, wanted: Any) -> None:
    assert contradiction(verdict, documented) is wanted


def test_the_matrix_folds_probes_into_the_worst_verdict_and_lists_every_parameter() -> None:
    matrix = SupportMatrix(["a", "b"], {"a": {"logprobs": SUPPORTED}})
    assert not matrix and matrix.to_json() == {}
    matrix.add(result(ASK, answer(), tags=("text",)))  # not a probe: no row
    assert not matrix
    matrix.add(result(LOGPROBS, answer("Red.", choice={"logprobs": logprobs(["Red", "."])}), case="p1", endpoint="a"))
    matrix.add(result(LOGPROBS, answer(), case="p2", endpoint="a"))
    matrix.add(result(LOGPROBS, refusal("no logprobs here"), 400, case="p1", endpoint="b"))
    table = matrix.to_json()
    assert list(table) == ["a", "b"]
    assert table["a"]["logprobs"]["verdict"] == "ignored" and table["a"]["logprobs"]["cases"] == ["p1", "p2"]
    assert table["a"]["logprobs"]["finding"]["severity"] == "error"
    assert "https://docs.example/params" in table["a"]["logprobs"]["finding"]["message"]
    assert table["b"]["logprobs"] == {"verdict": "rejected", "cases": ["p1"], "why": "400, naming it"}
    assert table["a"]["stop"] == {"verdict": "not probed", "cases": []}
    assert set(table["a"]) == {p.name for p in PARAMETERS}
    assert [(e, name) for e, name, _ in matrix.contradictions()] == [("a", "logprobs")]


def test_a_parameter_shown_by_a_repeat_is_only_accepted_by_a_single_request() -> None:

    once = result(SEEDED, answer(), tags=("param:seed",))
    assert classify(once, "seed")[0] is Support.ACCEPTED
    again = replace(once, mode="repeat")
    assert classify(again, "seed")[0] is Support.HONOURED
    differs = replace(again, findings=(Finding("params.seed_repeatable", "/response/body/choices", "differs"),))
    assert classify(differs, "seed")[0] is Support.IGNORED
