"""Peak memory of `harness run` per hostile answer, against a conformant answer measured in the same run.

A hostile endpoint may send an answer without end, a compression bomb, or JSON nested past any parser's limit.
Each must end its case with a verdict while the run's memory stays within a small multiple of
--max-response-bytes: the bytes up to the cap are held while they arrive, then only an excerpt of them.

Target: no answer cut off at the cap (a body or a stream without end, one endless line, a gzip bomb) nor a deeply
nested one raises the peak RSS of the whole run (report files included) by more than 3x --max-response-bytes
above the baseline, a run of conformant answers. An answer that completes within the cap is judged whole, so it
costs what its parsed events do: the complete stream rows show that figure, which has no target here.

Each run is `harness run` in a fresh process (its own peak RSS, VmHWM) against a server in this one.

    python3 benchmarks/hostile_memory.py [--max-response-bytes 16777216]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

TARGET = 3.0
# VmHWM, not ru_maxrss: Linux carries a parent's peak into ru_maxrss across fork and exec, and this process holds
# the answers it serves.
PROBE = """
import resource, sys
from harness.cli import main
code = main(sys.argv[1:])
try:
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except OSError:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(peak, code, file=sys.stderr)
"""
CASES = """\
- id: plain
  request: {model: m, messages: [{role: user, content: Say hello.}]}
- id: stream
  request: {model: m, messages: [{role: user, content: Say hello.}], stream: true}
"""
DEEP = 100_000


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


OPENING = _chunk({"role": "assistant", "content": ""})
WORD = _chunk({"content": "word "})
CLOSING = _chunk({}, "stop") + b"data: [DONE]\n\n"


def _completion(content: str) -> bytes:
    message = {"role": "assistant", "content": content, "refusal": None}
    return json.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    ).encode()


def _head(content_type: str, length: int | None = None, encoding: str | None = None) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Connection: close", f"Content-Type: {content_type}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if encoding:
        lines.append(f"Content-Encoding: {encoding}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _piece(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _bomb(decoded: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1 << 20)
    return b"".join([*(packer.compress(block) for _ in range(decoded >> 20)), packer.flush()])


Writer = Callable[[socket.socket, bool], None]


def _answers(cap: int) -> dict[str, Writer]:
    """What the server sends for each path: `write(connection, streamed)`."""
    bomb = _bomb(8 * cap)
    complete_stream = OPENING + WORD * ((cap - 4096) // len(WORD)) + CLOSING
    complete_body = _completion("x" * (cap - 4096))

    def ok(conn: socket.socket, streamed: bool) -> None:
        if streamed:
            conn.sendall(
                _head("text/event-stream") + b"".join(_piece(e) for e in (OPENING, WORD, CLOSING)) + b"0\r\n\r\n"
            )
        else:
            body = _completion("Hello.")
            conn.sendall(_head("application/json", len(body)) + body)

    def endless(head: bytes, block: bytes) -> Writer:
        def write(conn: socket.socket, streamed: bool) -> None:
            conn.sendall(head)
            while True:
                conn.sendall(block)

        return write

    def fixed(data: bytes) -> Writer:
        return lambda conn, streamed: conn.sendall(data)

    deep = ("[" * DEEP + "]" * DEEP).encode()
    return {
        "ok": ok,
        "huge-body": endless(_head("application/json", 1 << 40), b"x" * 65536),
        "huge-stream": endless(_head("text/event-stream") + _piece(OPENING), _piece(WORD * 256)),
        "huge-line": endless(_head("text/event-stream") + _piece(b"data: "), _piece(b"x" * 65536)),
        "gzip-bomb": fixed(_head("application/json", len(bomb), "gzip") + bomb),
        "gzip-bomb-stream": fixed(_head("text/event-stream", encoding="gzip") + _piece(bomb) + b"0\r\n\r\n"),
        "deep-body": fixed(_head("application/json", len(deep)) + deep),
        "deep-chunk": fixed(
            _head("text/event-stream")
            + b"".join(_piece(e) for e in (OPENING, b"data: " + deep + b"\n\n", WORD, CLOSING))
            + b"0\r\n\r\n"
        ),
        "complete-body": fixed(_head("application/json", len(complete_body)) + complete_body),
        "complete-stream": fixed(
            _head("text/event-stream")
            + _piece(complete_stream[: cap // 2])
            + _piece(complete_stream[cap // 2 :])
            + b"0\r\n\r\n"
        ),
    }


def _serve(answers: dict[str, Writer]) -> int:
    listener = socket.create_server(("127.0.0.1", 0))

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            path = head.split(b" ")[1].decode()
            with contextlib.suppress(OSError):  # the harness hung up: the cap, or a verdict reached
                answers[path.split("/")[1]](conn, b'"stream": true' in body)

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    port: int = listener.getsockname()[1]
    return port


def _peak(port: int, answer: str, select: str, cap: int, scratch: Path) -> tuple[int, int, int]:
    """(peak RSS in KiB, exit code, bytes of results.json, 0 if none) of one `harness run` in a fresh process."""
    report = scratch / f"report-{answer}-{select.replace(',', '-')}"
    argv = [
        "run",
        str(scratch / "hostile.case.yaml"),
        "--select",
        select,
        "--base-url",
        f"http://127.0.0.1:{port}/{answer}/v1",
    ]
    argv += ["--report-dir", str(report), "-q", "--max-response-bytes", str(cap), "--deadline", "120"]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=False, cwd=scratch
    )
    try:
        kib, code = (int(word) for word in done.stderr.split()[-2:])
    except ValueError:  # it crashed before printing its figures: the traceback's last words are no numbers
        return 0, 3, 0
    written = report / "results.json"
    return kib, code, written.stat().st_size if written.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-response-bytes", type=int, default=16 * 1024 * 1024)
    cap = parser.parse_args().max_response_bytes
    port = _serve(_answers(cap))
    runs = [
        ("huge body (endless, cut at the cap)", "huge-body", "plain", True),
        ("huge stream (endless, cut at the cap)", "huge-stream", "stream", True),
        ("one endless line in a stream", "huge-line", "stream", True),
        (f"gzip bomb ({8 * cap >> 20} MiB of zeros)", "gzip-bomb", "plain", True),
        ("gzip bomb in a stream", "gzip-bomb-stream", "stream", True),
        (f"JSON nested {DEEP:,} deep", "deep-body", "plain", True),
        (f"a stream chunk nested {DEEP:,} deep", "deep-chunk", "stream", True),
        ("a body just under the cap, complete", "complete-body", "plain", False),
        ("a stream just under the cap, complete", "complete-stream", "stream", False),
    ]
    mib = 1024.0
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        (scratch / "hostile.case.yaml").write_text(CASES, encoding="utf-8")
        started = time.perf_counter()
        base_kib, base_code, base_json = _peak(port, "ok", "plain,stream", cap, scratch)
        if base_code != 0:
            print(f"the baseline run exited {base_code}: the conformant answers did not pass")
            return 1
        print(f"harness run, peak RSS of the whole process, --max-response-bytes {cap:,} ({sys.executable})")
        print(
            f"{'answer':44} {'peak MiB':>9} {'x base':>7} {'+ MiB':>7} {'+ x cap':>8} {'exit':>5} {'results.json':>13}"
        )
        print(
            f"{'baseline: a conformant answer and stream':44} {base_kib / mib:9.1f} {1.0:7.2f} {0.0:7.1f} {0.0:8.2f} "
            f"{base_code:5d} {base_json:13,d}"
        )
        worst = 0.0
        for title, answer, select, bounded in runs:
            kib, code, written = _peak(port, answer, select, cap, scratch)
            extra = (kib - base_kib) * 1024 / cap
            if bounded:
                worst = max(worst, extra)
            mark = "" if bounded else "  (judged whole: no target)"
            print(
                f"{title:44} {kib / mib:9.1f} {kib / base_kib:7.2f} {(kib - base_kib) / mib:7.1f} {extra:8.2f} "
                f"{code:5d} {written:13,d}{mark}"
            )
            if code != 1 and bounded:
                print(f"  exit {code}: a hostile answer must end as a failed or errored case (exit 1)")
                return 1
        elapsed = time.perf_counter() - started
    ok = worst <= TARGET
    print(
        f"worst hostile answer: +{worst:.2f}x --max-response-bytes above the baseline (target <= {TARGET:g}x): "
        f"{'ok' if ok else 'MISSED'} ({elapsed:.0f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
