"""The engine driven directly, as the pytest plugin and comparison reports will drive it: cases in, events out."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.cases import Case, parse_case
from harness.endpoints import Endpoint
from harness.engine import Source, Stop, execute
from harness.errors import CaseFileError
from harness.events import Event, ResultReady, RunFinished, RunStarted
from harness.models import Verdict
from harness.resources import bundled
from harness.sending import Options

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def case(case_id: str, text: str = "hello") -> Case:
    return parse_case(
        {"id": case_id, "request": {"model": "${model}", "messages": [{"role": "user", "content": text}]}}
    )


@dataclass
class Recorder:
    """A handler that keeps every event in the order it came."""

    events: list[Event] = field(default_factory=list)

    def start(self, event: RunStarted) -> None:
        self.events.append(event)

    def result(self, event: ResultReady) -> None:
        self.events.append(event)

    def finish(self, event: RunFinished) -> None:
        self.events.append(event)


def answering(handler: object = None) -> httpx.MockTransport:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=ANSWER)

    return httpx.MockTransport(respond)


ENDPOINT = Endpoint(name="mock", base_url="http://mock.invalid/v1", model="m")


def test_events_tell_the_run_in_order() -> None:
    cases = [case("a"), case("b"), case("c")]
    recorder = Recorder()
    closing = asyncio.run(
        execute(
            cases,
            [ENDPOINT],
            [recorder],
            options=Options(concurrency=2),
            source=Source(run_id="r1", origin="live", sources="cases: here"),
            transport=answering(),
        )
    )
    first, *middle, last = recorder.events
    assert isinstance(first, RunStarted) and first.total == 3 and first.run_id == "r1"
    assert first.profiles == {"mock": "generic"} and first.sources == "cases: here"
    assert all(isinstance(e, ResultReady) for e in middle)
    ready = [e for e in middle if isinstance(e, ResultReady)]
    assert sorted(e.index for e in ready) == [0, 1, 2]
    assert {e.index: e.result.case_id for e in ready} == {0: "a", 1: "b", 2: "c"}
    assert all(e.result.verdict is Verdict.PASS for e in ready)
    assert last is closing and isinstance(last, RunFinished)
    assert closing.completed == 3 and not closing.interrupted and closing.reason == ""


def test_a_both_ways_case_gives_two_results_and_the_comparison() -> None:
    both = parse_case(
        {"id": "both", "both_ways": True, "request": {"model": "m", "messages": [{"role": "user", "content": "x"}]}}
    )

    def respond(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content).get("stream"):
            chunk = {**ANSWER, "object": "chat.completion.chunk", "choices": []}
            events = [
                {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}]},
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
            ]
            body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json=ANSWER)

    recorder = Recorder()
    asyncio.run(execute([both], [ENDPOINT], [recorder], transport=httpx.MockTransport(respond)))
    ready = [e.result for e in recorder.events if isinstance(e, ResultReady)]
    assert [r.name for r in ready] == ["both[mock]", "both[mock][stream]"]
    # The plain answer stopped; the stream ran out of tokens: the comparison is judged once, on the stream.
    assert "stream.matches_plain" in {f.code for f in ready[1].findings}
    assert "stream.matches_plain" not in {f.code for f in ready[0].findings}


def test_results_are_handed_on_as_they_finish_not_at_the_end() -> None:
    released = asyncio.Event()

    async def respond(request: httpx.Request) -> httpx.Response:
        if b"slow" in request.content:
            await asyncio.wait_for(released.wait(), timeout=30)  # only the fast case's event lets this answer
        return httpx.Response(200, json=ANSWER)

    class Releaser(Recorder):
        def result(self, event: ResultReady) -> None:
            super().result(event)
            released.set()

    recorder = Releaser()
    asyncio.run(
        execute(
            [case("slow", "slow"), case("fast")],
            [ENDPOINT],
            [recorder],
            options=Options(concurrency=2, timeout=60, deadline=60),
            transport=httpx.MockTransport(respond),
        )
    )
    ready = [e.result.case_id for e in recorder.events if isinstance(e, ResultReady)]
    assert ready == ["fast", "slow"]
    assert all(e.result.verdict is Verdict.PASS for e in recorder.events if isinstance(e, ResultReady))


def test_a_stop_ends_the_run_keeping_what_finished() -> None:
    async def scenario() -> tuple[Recorder, RunFinished]:
        stop = Stop()
        hang = asyncio.Event()

        async def respond(request: httpx.Request) -> httpx.Response:
            if b"hang" in request.content:
                await hang.wait()  # never set: only the stop ends this request
            return httpx.Response(200, json=ANSWER)

        class Stopper(Recorder):
            def result(self, event: ResultReady) -> None:
                super().result(event)
                stop.request("SIGTERM")

        recorder = Stopper()
        closing = await execute(
            [case("first"), case("hang", "hang"), case("never")],
            [ENDPOINT],
            [recorder],
            options=Options(concurrency=2, timeout=600, deadline=600),
            transport=httpx.MockTransport(respond),
            stop=stop,
        )
        return recorder, closing

    recorder, closing = asyncio.run(scenario())
    ready = [e.result.case_id for e in recorder.events if isinstance(e, ResultReady)]
    assert ready == ["first"]
    assert closing.interrupted and closing.reason == "SIGTERM" and closing.completed == 1
    assert recorder.events[-1] is closing


def test_input_problems_are_raised_before_any_event() -> None:
    broken = parse_case({"id": "x", "request": {"model": "${modle}", "messages": []}})
    recorder = Recorder()
    with pytest.raises(CaseFileError, match="modle"):
        asyncio.run(execute([broken], [ENDPOINT], [recorder], transport=answering()))
    assert recorder.events == []


class Reread:
    """Cases that say when each is read: a source the engine may read more than once, as it reads `CaseFiles`."""

    def __init__(self, cases: list[Any], log: list[tuple[str, str]]) -> None:
        self.cases = cases
        self.log = log

    def __iter__(self) -> Iterator[Case]:
        for item in self.cases:
            self.log.append(("read", item.id))
            yield item


def test_cases_are_read_as_they_are_sent_not_all_held_up_front() -> None:
    log: list[tuple[str, str]] = []

    class Logger(Recorder):
        def result(self, event: ResultReady) -> None:
            log.append(("result", event.result.case_id))

    source = Reread([case("a"), case("b"), case("c")], log)
    asyncio.run(execute(source, [ENDPOINT], [Logger()], options=Options(concurrency=1), transport=answering()))
    checked, sent = log[:3], log[3:]
    assert checked == [("read", "a"), ("read", "b"), ("read", "c")]  # every placeholder checked before any is sent
    assert sent == [("read", "a"), ("result", "a"), ("read", "b"), ("result", "b"), ("read", "c"), ("result", "c")]


def test_each_case_is_filled_once_when_it_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.cases import fill

    filled: list[str] = []

    def counting(item: Case, variables: Any, environ: Any) -> Case:
        filled.append(item.id)
        return fill(item, variables, environ)

    monkeypatch.setattr("harness.planning.fill", counting)
    other = Endpoint(name="other", base_url="http://other.invalid/v1", model="m")
    asyncio.run(execute([case("a"), case("b")], [ENDPOINT, other], [Recorder()], transport=answering()))
    assert sorted(filled) == ["a", "a", "b", "b"]  # once per case and endpoint


def test_case_files_are_read_back_as_loaded_and_selected(tmp_path: Path) -> None:
    from harness.cases import CaseFiles, load_cases, select

    catalogue = bundled("cases")
    with CaseFiles([catalogue]) as files:
        assert list(files) == load_cases([catalogue]) and list(files) == list(files)  # read again, the same
    with CaseFiles([catalogue], ["text-*"]) as chosen:
        assert list(chosen) == select(load_cases([catalogue]), ["text-*"]) and len(chosen) == len(list(chosen))
    (tmp_path / "dup.case.yaml").write_text(
        "- id: x\n  request: {model: m, messages: []}\n- id: x\n  request: {model: m, messages: []}\n"
    )
    with pytest.raises(
        CaseFileError, match=r"dup\.case\.yaml:3.*duplicate id 'x' \(first defined at .*dup\.case\.yaml:1\)"
    ):
        CaseFiles([tmp_path])
