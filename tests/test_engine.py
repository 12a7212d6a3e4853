"""The engine driven directly, as the pytest plugin and comparison reports will drive it: cases in, events out."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import httpx
import pytest

from harness.cases import parse_case
from harness.endpoints import Endpoint
from harness.engine import Source, Stop, execute
from harness.errors import CaseFileError
from harness.events import Event, ResultReady, RunFinished, RunStarted
from harness.models import Verdict
from harness.sending import Options

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def case(case_id: str, text: str = "hello") -> object:
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
            transport=httpx.MockTransport(respond),  # type: ignore[arg-type]
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
            transport=httpx.MockTransport(respond),  # type: ignore[arg-type]
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
