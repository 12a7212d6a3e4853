"""Multi-step cases: loading, lint's located references, a run against the local test server, recording and replay."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cases import follow, lint, load_cases, parse_case
from harness.endpoints import Endpoint
from harness.engine import run
from harness.errors import CaseFileError
from harness.models import Result, Verdict
from harness.recordings import load_recordings
from harness.resources import bundled
from harness.sending import Options
from tests.conftest import Harness
from tests.servers import Server

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]
QUESTION = {"role": "user", "content": "What is the weather in Paris?"}

ROUND_TRIP = """\
- id: round-trip
  title: A tool call answered with its result
  steps:
    - id: call
      request:
        model: ${model}
        messages: [{role: user, content: "What is the weather in Paris?"}]
        tools: &tools
          - type: function
            function:
              name: get_weather
              parameters: {type: object, properties: {city: {type: string}}, required: [city]}
        tool_choice: required
      expect: {finish_reason: tool_calls}
      save:
        message: /choices/0/message
        id: /choices/0/message/tool_calls/0/id
    - id: answer
      request:
        model: ${model}
        messages:
          - {role: user, content: "What is the weather in Paris?"}
          - {from: call.message}
          - {role: tool, tool_call_id: "${steps.call.id}", content: '{"temperature": 21}'}
        tools: *tools
"""


def _run(cases: list[Any], endpoint: Endpoint, **kwargs: Any) -> list[Result]:
    return asyncio.run(run(cases, [endpoint], Options(timeout=10, deadline=20), environ={}, **kwargs))


def _write(tmp_path: Path, text: str, name: str = "steps.case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_multi_step_case_loads_with_its_steps(tmp_path: Path) -> None:
    [case] = load_cases([_write(tmp_path, ROUND_TRIP)])
    assert [step.id for step in case.steps] == ["call", "answer"]
    assert case.steps[0].save == {"message": "/choices/0/message", "id": "/choices/0/message/tool_calls/0/id"}
    assert case.steps[0].expect.finish_reason == ("tool_calls",)
    assert case.request is None and case.steps[1].base == "/0/steps/1"


def test_lint_locates_each_reference_to_a_step_or_value_that_does_not_exist(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
id: broken
steps:
  - id: call
    request:
      model: m
      messages: [{role: user, content: "ask ${steps.answer.id}"}]
    save: {message: /choices/0/message}
  - id: answer
    request:
      model: m
      messages:
        - {from: call.mesage}
        - {role: tool, tool_call_id: "${steps.cal.id}", content: x}
        - {from: nothing}
""",
    )
    _, problems = lint([path])
    assert [str(p) for p in problems] == [
        f"{path}:6:40: /steps/0/request/messages/0/content: step 'answer' is a later step: a step may use only the "
        "steps before it",
        f"{path}:12:18: /steps/1/request/messages/0/from: step 'call' saves no value 'mesage' (did you mean "
        "'message'?); it saves: message",
        f"{path}:13:38: /steps/1/request/messages/1/tool_call_id: no step 'cal' before this one (did you mean "
        "'call'?); the steps before it: call",
        f"{path}:14:18: /steps/1/request/messages/2/from: a value of a step is written ${{steps.STEP.NAME}}, or "
        "{from: STEP.NAME} as a mapping",
    ]
    with pytest.raises(CaseFileError):
        load_cases([path])


@pytest.mark.parametrize(
    ("data", "wanted"),
    [
        (
            {"id": "x", "request": {"model": "m", "messages": [{"role": "user", "content": "${steps.a.b}"}]}},
            "only a step of a multi-step case ('steps:') may use a value of a step",
        ),
        (
            {"id": "x", "both_ways": True, "steps": [{"id": "a", "request": {"model": "m", "messages": []}}]},
            "'steps' (a conversation; its steps have their own expect, and it is not run both ways)",
        ),
        (
            {"id": "x", "steps": [{"id": "a", "request": {}}, {"id": "a", "request": {}}]},
            "duplicate step id 'a' in this case",
        ),
        (
            {"id": "x", "steps": [{"id": "a", "request": {}, "save": {"v": "choices/0"}}]},
            "does not match",
        ),
        (
            {
                "id": "x",
                "steps": [
                    {"id": "a", "request": {}, "save": {"m": "/choices/0/message"}},
                    {"id": "b", "request": {"messages": [{"from": "a.m", "drop": ["tool_calls"]}]}},
                ],
            },
            "'drop' lists JSON pointers into the value",
        ),
    ],
)
def test_misused_steps_are_refused_with_a_reason(data: dict[str, Any], wanted: str) -> None:
    with pytest.raises(CaseFileError) as caught:
        parse_case(data)
    assert any(wanted in problem.message for problem in caught.value.problems), caught.value.problems


def test_follow_puts_saved_values_in_place() -> None:
    saved = {"call": {"message": {"role": "assistant", "tool_calls": [{"id": "c1", "extra_content": {"s": 1}}]}}}
    saved["call"]["id"] = "c1"
    request = {
        "messages": [
            {"from": "call.message"},
            {"from": "call.message", "drop": ["/tool_calls/0/extra_content", "/absent/x"]},
            {"role": "tool", "tool_call_id": "${steps.call.id}", "content": "id ${steps.call.id}, cost $$5"},
        ],
        "whole": "${steps.call.message}",
    }
    out = follow(request, saved)
    assert out["messages"][0] == saved["call"]["message"]
    assert out["messages"][1] == {"role": "assistant", "tool_calls": [{"id": "c1"}]}
    assert out["messages"][2] == {"role": "tool", "tool_call_id": "c1", "content": "id c1, cost $5"}
    assert out["whole"] == saved["call"]["message"] and out["whole"] is not saved["call"]["message"]
    assert saved["call"]["message"]["tool_calls"][0]["extra_content"] == {"s": 1}, "the saved value is not changed"


def test_a_round_trip_sends_back_the_real_call_and_passes(server: Server, tmp_path: Path) -> None:
    cases = load_cases([_write(tmp_path, ROUND_TRIP)])
    [result] = _run(cases, Endpoint("local", server.url("ok"), model="m"))
    assert result.verdict is Verdict.PASS, result.findings
    assert [(s.step, s.verdict) for s in result.steps] == [("call", Verdict.PASS), ("answer", Verdict.PASS)]
    first, second = (s.exchange for s in result.steps)
    assert first is not None and second is not None
    message = first.answer()["choices"][0]["message"]
    sent = second.request.body["messages"]
    assert sent[1] == message, "the assistant message goes back exactly as the endpoint returned it"
    assert sent[2]["tool_call_id"] == message["tool_calls"][0]["id"]
    assert result.exchange is second


def test_a_missing_value_fails_the_case_at_its_step_and_sends_nothing_more(server: Server, tmp_path: Path) -> None:
    cases = load_cases([_write(tmp_path, ROUND_TRIP.replace("tool_choice: required", "tool_choice: none"))])
    sent = len(server.requests)
    [result] = _run(cases, Endpoint("local", server.url("ok"), model="m"))
    assert result.verdict is Verdict.FAIL
    assert len(server.requests) == sent + 1
    codes = {(f.code, f.pointer) for f in result.findings}
    assert ("steps.value_missing", "/steps/call/response/body/choices/0/message/tool_calls/0/id") in codes
    assert ("expect.finish_reason", "/steps/call/response/body/choices/0/finish_reason") in codes
    assert [s.step for s in result.steps] == ["call"]


def test_a_step_that_fails_its_checks_fails_the_case_and_says_which_step(server: Server, tmp_path: Path) -> None:
    cases = load_cases([_write(tmp_path, ROUND_TRIP)])
    [result] = _run(cases, Endpoint("local", server.url("usage-total-wrong"), model="m"))
    assert result.verdict is Verdict.FAIL
    steps = {f.pointer.split("/")[2] for f in result.findings if f.code == "response.usage_total"}
    assert steps == {"call", "answer"}


def test_every_step_is_recorded_and_replays_to_the_same_result(server: Server, tmp_path: Path) -> None:
    cases = load_cases([_write(tmp_path, ROUND_TRIP)])
    endpoint = Endpoint("local", server.url("ok"), model="m")
    [recorded] = _run(cases, endpoint, record=tmp_path / "rec")
    files = sorted(p.name for p in (tmp_path / "rec" / "local").iterdir())
    assert files == ["round-trip.answer.yaml", "round-trip.call.yaml"]
    document = yaml.safe_load((tmp_path / "rec" / "local" / "round-trip.answer.yaml").read_text())
    assert document["case"] == "round-trip.answer"
    sent = len(server.requests)
    [replayed] = _run(cases, endpoint, replay=load_recordings(tmp_path / "rec"))
    assert len(server.requests) == sent, "a replay sends nothing"
    assert replayed.verdict is recorded.verdict is Verdict.PASS
    assert [s.exchange.request.body for s in replayed.steps if s.exchange] == [
        s.exchange.request.body for s in recorded.steps if s.exchange
    ]
    (tmp_path / "rec" / "local" / "round-trip.answer.yaml").unlink()
    [partial] = _run(cases, endpoint, replay=load_recordings(tmp_path / "rec"))
    assert partial.verdict is Verdict.SKIP and partial.reason.startswith("step 'answer': no recording")


def test_reports_and_dry_run_show_the_steps(server: Server, tmp_path: Path, harness: Harness) -> None:
    path = _write(tmp_path, ROUND_TRIP.replace("tool_choice: required", "tool_choice: none"))
    outcome = harness("run", path, "--base-url", server.url("ok"), "--model", "m", "--report-dir", tmp_path / "r")
    assert outcome.code == 1
    assert "  step call: fail (200)" in outcome.out
    assert "steps.value_missing  at /steps/call/response/body/choices/0/message/tool_calls/0/id" in outcome.out
    result = json.loads((tmp_path / "r" / "results.json").read_text())["results"][0]
    assert [(s["id"], s["verdict"], s["status"]) for s in result["steps"]] == [("call", "fail", 200)]
    dry = harness("run", path, "--base-url", server.url("ok"), "--model", "m", "--dry-run")
    assert dry.code == 0
    assert "# round-trip[cli] step call" in dry.out and "# round-trip[cli] step answer" in dry.out
    assert '"from": "call.message"' in dry.out and "# 2 request(s) to 1 endpoint(s)" in dry.out


def test_the_google_round_trip_carries_the_real_signature_back(server: Server) -> None:
    """On the Vertex-shaped test double: the first call is signed, and the signature goes back as it came, or
    stripped in the case that strips it."""
    cases = {
        c.id: c
        for c in load_cases([bundled("cases") / "google.case.yaml"])
        if c.id in ("google-roundtrip-thought-signature", "google-roundtrip-signature-stripped")
    }
    endpoint = Endpoint("vertex", server.url("vertex"), model="google/gemini-3-flash", profile="vertex")
    results = {r.case_id: r for r in _run(list(cases.values()), endpoint)}
    carried = results["google-roundtrip-thought-signature"]
    call, reply = (s.exchange for s in carried.steps)
    assert call is not None and reply is not None
    returned = call.answer()["choices"][0]["message"]
    signature = returned["tool_calls"][0]["extra_content"]["google"]["thought_signature"]
    assert signature and reply.request.body["messages"][1] == returned
    # The test double answers with fixed text, not with the tool's result: only that is reported.
    assert {f.code for f in carried.errors} == {"expect.content_matches"}
    stripped = results["google-roundtrip-signature-stripped"]
    sent = stripped.steps[1].exchange
    assert sent is not None and "extra_content" not in sent.request.body["messages"][1]["tool_calls"][0]
    # The double does not enforce signatures: that is the finding the case exists to make.
    assert [(f.code, f.pointer) for f in stripped.errors] == [("http.status", "/steps/stripped/response/status")]
