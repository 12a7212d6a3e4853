"""Recording and replaying: the same verdicts either way, stale and missing recordings, no secret on disk."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.cases import load_cases, parse_case
from harness.cli import main
from harness.endpoints import Endpoint
from harness.engine import run
from harness.errors import HarnessError
from harness.models import Result, Verdict
from harness.recordings import Chunk, Recording, load_recordings, save
from harness.redact import Redactor
from harness.resources import bundled
from harness.sending import Options
from harness.transport import ELAPSED, EXTENSION, RecordingTransport, ReplayTransport
from tests.servers import Server, serve

CASES = bundled("cases")
SENTINEL = "sk-sentinel-7f3a9c0d1e2b4a6f"


def _run(cases: list[Any], endpoints: list[Endpoint], **kwargs: Any) -> list[Result]:
    return asyncio.run(
        run(cases, endpoints, Options(timeout=10, deadline=20), environ=kwargs.pop("environ", {}), **kwargs)
    )


def _outcome(results: list[Result]) -> dict[tuple[str, str], tuple[str, list[tuple[str, str, str, str]]]]:
    return {
        (r.case_id, r.endpoint): (
            r.verdict.value,
            [(f.code, f.severity.value, f.pointer, f.message) for f in r.findings],
        )
        for r in results
    }


def test_replay_gives_the_same_verdicts_and_findings_as_the_recorded_run(server: Server, tmp_path: Path) -> None:
    cases = load_cases([CASES])
    endpoints = [
        Endpoint("good", server.url("ok"), model="m"),
        Endpoint("broken", server.url("usage-total-wrong+tool-args-schema+json-fenced+error-google"), model="m"),
    ]
    recorded = _run(cases, endpoints, record=tmp_path)
    assert {r.verdict for r in recorded if r.endpoint == "broken"} >= {Verdict.FAIL}
    replayed = _run(cases, endpoints, replay=load_recordings(tmp_path))
    assert _outcome(replayed) == _outcome(recorded)
    # A file per exchange: one per case, two for a both-ways case, one per step sent of a multi-step case.
    assert len(list(tmp_path.rglob("*.yaml"))) == sum(len(r.steps) or 1 for r in recorded)


def test_a_recording_is_readable_and_says_where_it_came_from(server: Server, tmp_path: Path) -> None:
    case = parse_case(
        {"id": "hello", "request": {"model": "${model}", "messages": [{"role": "user", "content": "Hi"}]}}
    )
    _run([case], [Endpoint("local", server.url("ok"), model="m")], record=tmp_path)
    document = yaml.safe_load((tmp_path / "local" / "hello.yaml").read_text())
    assert document["format"] == "chat-conformance/recording@1"
    assert document["endpoint"] == {"name": "local", "base_url": server.url("ok"), "model": "m", "profile": "generic"}
    provenance = document["provenance"]
    assert provenance["source"] == "live" and provenance["harness_version"] and provenance["recorded_at"].endswith("Z")
    assert document["request"]["body"] == {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    body = json.loads(document["response"]["body"]["text"])
    assert body["object"] == "chat.completion" and document["response"]["status"] == 200
    assert document["timings"]["total_ms"] >= document["timings"]["ttfb_ms"] >= 0


def test_no_secret_reaches_a_recording(tmp_path: Path) -> None:
    case = parse_case(
        {"id": "hello", "request": {"model": "${model}", "messages": [{"role": "user", "content": "Hi"}]}}
    )
    with serve(api_key=SENTINEL) as keyed:
        endpoint = Endpoint("keyed", keyed.url("ok") + "?key=" + SENTINEL, model="m", api_key_env="KEY")
        results = _run([case], [endpoint], record=tmp_path, environ={"KEY": SENTINEL})
        assert keyed.requests[-1].headers["authorization"] == f"Bearer {SENTINEL}"
    assert results[0].verdict is Verdict.PASS
    text = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert text and SENTINEL not in text
    document = yaml.safe_load(next(tmp_path.rglob("*.yaml")).read_text())
    assert document["request"]["headers"]["authorization"] == "[redacted]"
    assert "key=[redacted]" in document["request"]["url"]


def test_an_edited_case_is_reported_stale(server: Server, tmp_path: Path) -> None:
    endpoint = Endpoint("local", server.url("ok"), model="m")
    before = parse_case(
        {"id": "story", "request": {"model": "${model}", "messages": [{"role": "user", "content": "A story."}]}}
    )
    _run([before], [endpoint], record=tmp_path)
    after = parse_case(
        {"id": "story", "request": {"model": "${model}", "messages": [{"role": "user", "content": "A poem."}]}}
    )
    result = _run([after], [endpoint], replay=load_recordings(tmp_path))[0]
    assert result.verdict is Verdict.ERROR
    assert [f.code for f in result.findings] == ["replay.stale"]
    assert '/body/messages/0/content: recorded "A story.", now "A poem."' in result.findings[0].message


def _recorded_story(server: Server, tmp_path: Path) -> tuple[Any, Endpoint, Path]:
    endpoint = Endpoint("local", server.url("ok"), model="m")
    case = parse_case(
        {"id": "story", "request": {"model": "${model}", "messages": [{"role": "user", "content": "A story."}]}}
    )
    _run([case], [endpoint], record=tmp_path)
    return case, endpoint, next(tmp_path.rglob("story.yaml"))


def test_an_index_reads_the_head_and_a_broken_answer_is_the_cases_error(server: Server, tmp_path: Path) -> None:
    """Indexing a folder reads where each recording came from, not every answer; an answer that cannot be read
    is found when its case is replayed, as an error naming the file and the place, and the other cases run."""
    case, endpoint, path = _recorded_story(server, tmp_path)
    text = path.read_text()
    path.write_text(text[: text.index("\nresponse:")] + "\nresponse: 12\n")
    index = load_recordings(tmp_path, answers=False)
    assert [(r.case, r.complete) for r in index.values()] == [("story", False)]
    (result,) = _run([case], [endpoint], replay=index)
    assert result.verdict is Verdict.ERROR
    [finding] = result.findings
    assert finding.code == "replay.unreadable"
    assert f"{path}:1:1: malformed recording" in finding.message and "--record" in finding.message
    with pytest.raises(HarnessError, match="malformed recording"):
        load_recordings(tmp_path)  # read whole (a recording folder's other uses), it is refused up front


def test_a_recording_laid_out_otherwise_is_indexed_whole(server: Server, tmp_path: Path) -> None:
    """A recording edited by hand, its answer before its case: indexed from the whole file, replayed the same."""
    case, endpoint, path = _recorded_story(server, tmp_path)
    document = yaml.safe_load(path.read_text())
    path.write_text(
        yaml.safe_dump(
            {k: document[k] for k in ("response", "request", "timings", "format", "case")}
            | {"endpoint": document["endpoint"], "provenance": document["provenance"]}
        )
    )
    index = load_recordings(tmp_path, answers=False)
    assert [r.case for r in index.values()] == ["story"]
    (result,) = _run([case], [endpoint], replay=index)
    assert result.verdict is Verdict.PASS, [f.message for f in result.findings]
    path.write_text(path.read_text().replace(f"format: {document['format']}", "format: something-else@1"))
    with pytest.raises(HarnessError, match="not a recording"):
        load_recordings(tmp_path, answers=False)


def test_a_case_without_recording_is_skipped_with_the_reason(server: Server, tmp_path: Path) -> None:
    endpoint = Endpoint("local", server.url("ok"), model="m")
    known = parse_case({"id": "known", "request": {"messages": [{"role": "user", "content": "x"}]}})
    _run([known], [endpoint], record=tmp_path)
    new = parse_case({"id": "new", "request": {"messages": [{"role": "user", "content": "x"}]}})
    results = _run([known, new], [endpoint], replay=load_recordings(tmp_path))
    assert [r.verdict for r in results] == [Verdict.PASS, Verdict.SKIP]
    assert "no recording" in results[1].reason and "--record" in results[1].reason


def test_an_exchange_that_did_not_complete_is_not_recorded(server: Server, tmp_path: Path) -> None:
    case = parse_case({"id": "reset", "request": {"messages": [{"role": "user", "content": "x"}]}})
    result = _run([case], [Endpoint("local", server.url("reset"))], record=tmp_path)[0]
    assert result.verdict is Verdict.ERROR
    assert not list(tmp_path.rglob("*.yaml"))


def test_gzip_bodies_are_recorded_decoded_and_replay_the_same(tmp_path: Path) -> None:
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hi."}}],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
            content=gzip.compress(json.dumps(answer).encode()),
        )

    transport = RecordingTransport(httpx.MockTransport(handler), tmp_path, Redactor())

    async def send() -> bytes:
        async with httpx.AsyncClient(transport=transport) as client:
            meta = {"case": "gz", "endpoint": {"name": "mock", "base_url": "http://mock/v1"}}
            response = await client.post(
                "http://mock/v1/chat/completions", json={"messages": []}, extensions={EXTENSION: meta}
            )
            return response.content

    assert json.loads(asyncio.run(send())) == answer
    recording = load_recordings(tmp_path)[("mock", "gz")]
    assert json.loads(recording.body) == answer
    assert ("x-recorded-content-encoding", "gzip") in recording.headers
    assert not any(k == "content-encoding" for k, _ in recording.headers)


def test_streamed_chunks_keep_their_framing_and_times(tmp_path: Path) -> None:
    chunks = (Chunk(12.5, b'data: {"a": 1}\r\n\r\n'), Chunk(40.0, b"data: [DONE]\n\n"), Chunk(41.0, b"\xff\xfe"))
    recording = Recording(
        case="s",
        endpoint={"name": "e"},
        provenance={},
        request={"method": "POST", "body": {}},
        status=200,
        headers=[("content-type", "text/event-stream")],
        chunks=chunks,
    )
    path = save(recording, tmp_path)
    loaded = load_recordings(tmp_path)[("e", "s")]
    assert loaded.chunks == chunks
    assert "base64" in path.read_text()  # bytes that are not UTF-8 survive, as base64


def _streamed(chunks: tuple[Chunk, ...], timings: dict[str, float | None]) -> Recording:
    return Recording(
        case="s",
        endpoint={"name": "e", "base_url": "http://recorded.invalid/v1", "model": "m", "profile": "generic"},
        provenance={"source": "test"},
        request={"method": "POST", "body": {"model": "m", "messages": [], "stream": True}},
        status=200,
        headers=[("content-type", "text/event-stream")],
        chunks=chunks,
        timings=timings,
    )


def test_the_replay_transport_tells_the_recorded_times_as_the_answer_is_read() -> None:
    chunks = (Chunk(120.0, b"data: {}\n\n"), Chunk(340.5, b"data: [DONE]\n\n"))
    transport = ReplayTransport({("e", "s"): _streamed(chunks, {"ttfb_ms": 100.0, "total_ms": 400.0})})

    async def read() -> list[float]:
        async with httpx.AsyncClient(transport=transport) as client:
            request = client.build_request(
                "POST",
                "http://recorded.invalid/v1/chat/completions",
                json={"model": "m", "messages": [], "stream": True},
                extensions={EXTENSION: {"case": "s", "endpoint": {"name": "e"}}},
            )
            response = await client.send(request, stream=True)
            clock = response.extensions[ELAPSED]
            seen = [clock()]
            async for _ in response.aiter_raw():
                seen.append(clock())
            seen.append(clock())
            await response.aclose()
            return seen

    # The first byte, each chunk as it is read, then the end: the recording's clock, not the wall clock.
    assert asyncio.run(read()) == [100.0, 120.0, 340.5, 400.0]


def test_a_replayed_exchange_is_timed_by_the_replay_transport_clock(tmp_path: Path) -> None:
    """The sending loop times live and replayed answers alike, by the clock of the transport that answers."""
    events = [
        {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
        for choice in (
            {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None},
            {"index": 0, "delta": {}, "finish_reason": "stop"},
        )
    ]
    chunks = (
        Chunk(250.0, f"data: {json.dumps(events[0])}\n\n".encode()),
        Chunk(900.0, f"data: {json.dumps(events[1])}\n\ndata: [DONE]\n\n".encode()),
    )
    save(_streamed(chunks, {"ttfb_ms": 200.0, "total_ms": 950.0}), tmp_path)
    case = parse_case({"id": "s", "request": {"model": "${model}", "messages": [], "stream": True}})
    endpoint = Endpoint(name="e", base_url="http://recorded.invalid/v1", model="m")
    (result,) = _run([case], [endpoint], replay=load_recordings(tmp_path, answers=False))
    assert result.exchange is not None and result.exchange.stream is not None
    timings = result.exchange.timings
    assert (timings.ttfb_ms, timings.ttft_ms, timings.total_ms, timings.max_gap_ms) == (200.0, 250.0, 950.0, 650.0)
    assert [e.at_ms for e in result.exchange.stream.events] == [250.0, 900.0, 900.0]


def test_a_malformed_recording_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "x.yaml").write_text("format: chat-conformance/recording@1\ncase: x\n")
    with pytest.raises(HarnessError, match=r"x\.yaml.*malformed recording"):
        load_recordings(tmp_path)


def test_the_default_run_replays_the_bundled_recordings_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(CASES, tmp_path / "cases")
    shutil.copytree(bundled("recordings"), tmp_path / "recordings")
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--report-dir", "out"])
    out = capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert code == (1 if results["summary"]["fail"] or results["summary"]["error"] else 0)
    assert results["run"]["origin"] == "replay:recordings"
    last = [line for line in out.splitlines() if not line.startswith("report: ")][-1]
    assert out.startswith("REPLAYED FROM RECORDINGS") and "not a live run" in last
    assert (tmp_path / "out" / "summary.md").read_text().splitlines()[2].startswith("> REPLAYED FROM RECORDINGS")
    assert 'name="origin" value="replay:recordings"' in (tmp_path / "out" / "junit.xml").read_text()


def test_the_bundled_recordings_cover_the_catalogue_and_are_not_stale() -> None:
    """When a case changes, refresh the recordings (bash .ci/refresh-recordings.sh): this test says which."""
    recordings = load_recordings(bundled("recordings"))
    endpoints = sorted({name for name, _ in recordings})
    results = _run(
        load_cases([CASES]),
        [
            Endpoint(
                n,
                "http://recorded.invalid/v1",
                model=recordings[next(k for k in recordings if k[0] == n)].endpoint.get("model"),
            )
            for n in endpoints
        ],
        replay=recordings,
    )
    problems = [
        f"{r.name}: {r.reason or r.findings[0].message}"
        for r in results
        if r.verdict is Verdict.SKIP or any(f.code == "replay.stale" for f in r.findings)
    ]
    assert not problems, "\n".join(problems)
    assert all(
        r.provenance.get("source") == "live" and r.provenance.get("server") == "llama.cpp" for r in recordings.values()
    )


def test_a_recording_of_a_large_answer_replays(tmp_path: Path) -> None:
    """The harness must read back what it wrote: a 9 MiB answer is past the limits of a case file, not a recording."""
    text = "x" * (9 * 1024 * 1024)
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}).encode()
    recording = Recording(
        case="big",
        endpoint={"name": "e", "base_url": "http://127.0.0.1:9/v1", "model": "m", "profile": "generic"},
        provenance={"source": "test"},
        request={"method": "POST", "body": {"model": "m"}},
        status=200,
        headers=[("content-type", "application/json")],
        chunks=(Chunk(at_ms=1.0, data=body),),
    )
    save(recording, tmp_path)
    loaded = load_recordings(tmp_path)[("e", "big")]
    assert b"".join(c.data for c in loaded.chunks) == body


def test_an_index_of_recordings_holds_no_answer_and_replays_the_same(tmp_path: Path) -> None:
    shutil.copytree(bundled("recordings"), tmp_path / "recordings")
    full = load_recordings(tmp_path / "recordings")
    index = load_recordings(tmp_path / "recordings", answers=False)
    assert index.keys() == full.keys()
    assert all(not r.complete and r.chunks == () and r.request == {} for r in index.values())
    assert all(index[key].answer() == full[key] for key in full)
    cases = load_cases([CASES / "text.case.yaml"])
    endpoints = [
        Endpoint(name=name, base_url=str(r.endpoint["base_url"]), model=r.endpoint.get("model"))
        for (name, _), r in list(full.items())[:1]
    ]
    from_full = _run(cases, endpoints, replay=full)
    from_index = _run(cases, endpoints, replay=index)
    assert [(r.name, r.verdict, r.findings) for r in from_index] == [(r.name, r.verdict, r.findings) for r in from_full]
    assert all(r.exchange is not None and r.exchange.response is not None for r in from_index)


def test_replay_is_the_recording_command_line_with_replay_for_record(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = str(CASES / "text.case.yaml")
    flags = ["--base-url", server.url("ok"), "--model", "m", "--name", "local", text]
    assert main(["run", *flags, "--record", "recs", "--report-dir", "live"]) == 0
    capsys.readouterr()
    sent = len(server.requests)
    assert main(["run", *flags, "--replay", "recs", "--report-dir", "again"]) == 0
    out = capsys.readouterr().out
    assert len(server.requests) == sent  # nothing left the machine
    assert out.startswith("REPLAYED FROM RECORDINGS in recs")
    live, again = (json.loads((tmp_path / d / "results.json").read_text()) for d in ("live", "again"))
    assert [(r["name"], r["verdict"]) for r in again["results"]] == [(r["name"], r["verdict"]) for r in live["results"]]

    # The same flags with another endpoint name have no recordings: said, not silently skipped.
    other = ["--base-url", server.url("ok"), "--model", "m", "--name", "other", text]
    assert main(["run", *other, "--replay", "recs"]) == 2
    assert "holds no recordings of endpoint 'other'; it has local" in capsys.readouterr().err


def test_several_replay_folders_are_merged_or_refused(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    text = str(CASES / "text.case.yaml")
    for name in ("one", "two"):
        flags = ["--base-url", server.url("ok"), "--model", "m", "--name", name, text, "--report-dir", f"r-{name}"]
        assert main(["run", *flags, "--record", f"recs-{name}"]) == 0
    capsys.readouterr()
    assert main(["run", text, "--replay", "recs-one", "--replay", "recs-two", "--report-dir", "both"]) == 0
    ran = json.loads((tmp_path / "both" / "results.json").read_text())
    assert {r["endpoint"] for r in ran["results"]} == {"one", "two"}

    shutil.copytree(tmp_path / "recs-one", tmp_path / "recs-copy")
    capsys.readouterr()
    assert main(["run", text, "--replay", "recs-one", "--replay", "recs-copy"]) == 2
    err = capsys.readouterr().err
    assert "of endpoint 'one' is recorded in both recs-one/one/" in err and "recs-copy/one/" in err
