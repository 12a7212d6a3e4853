"""The official OpenAI SDKs fed an exchange's recorded answer, as a second oracle: what would a user's client make
of it?

A `Replay` is what an SDK is fed (the request's JSON, and the answer's status, headers and bytes); a `ClientRead`
is what it made of them: the completion as the SDK exposes it, the error it raised, and the assistant message as it
would send it back as history. The SDKs never reach a network: openai-python reads the bytes through an
`httpx.MockTransport`, openai-node through a `fetch` override in `data/clients/openai-node.mjs`. During a run each
SDK reads in a process of its own (`serve_python` here, the script for Node.js), fed one replay a line: the run's
event loop never waits on a read, and on a machine with a core to spare the reads cost the run no time. Judging
what they made of it is the `client.*` checks' business, not this module's.

The SDKs are imported or started on first use only: `harness --help` loads neither, and a run imports openai only
in its reading process.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.metadata
import importlib.util
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from .models import Exchange
from .pointer import MISSING
from .resources import bundled

__all__ = [
    "NODE_DIR_VARIABLE",
    "ClientRead",
    "Replay",
    "node_status",
    "python_status",
    "read_all",
    "read_node",
    "read_python",
    "replay_of",
    "replayable",
    "serve_python",
    "statuses",
    "warm",
]

NODE_DIR_VARIABLE = "HARNESS_OPENAI_NODE_DIR"
"""A folder whose node_modules holds the `openai` npm package to check (`npm install openai@VERSION` in it)."""
NODE_BINARY_VARIABLE = "HARNESS_NODE"
"""The Node.js binary to run (default: `node` on PATH)."""

READ_TIMEOUT = 60.0
"""Seconds an SDK's reading process may take over one answer (or to start) before it is given up for the run."""

_BASE_URL = "http://replay.invalid/v1"
_DROPPED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})
# Raised by the SDKs for any conformant answer that ends this way (their parse helpers refuse a cut-off answer).
_BY_DESIGN = frozenset({"LengthFinishReasonError", "ContentFilterFinishReasonError"})


@dataclass(frozen=True, slots=True)
class Replay:
    """What an SDK is fed: the request as sent, and the answer's status, headers and body bytes as received."""

    request: dict[str, Any]
    status: int
    headers: dict[str, str]
    body: bytes
    stream: bool
    parse: bool
    send_back: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "status": self.status,
            "headers": self.headers,
            "body": self.body.decode("utf-8", errors="replace"),
            "stream": self.stream,
            "parse": self.parse,
            "send_back": self.send_back,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Replay:
        """A replay as `to_json` wrote it (the body is text: `replay_of` makes it from the answer's text)."""
        return cls(
            request=data["request"],
            status=data["status"],
            headers=data["headers"],
            body=data["body"].encode("utf-8"),
            stream=data["stream"],
            parse=data["parse"],
            send_back=data.get("send_back", True),
        )


@dataclass(frozen=True, slots=True)
class ClientRead:
    """What one SDK made of one answer.

    `value` is the completion as the SDK exposes it, as JSON (for a stream, what its accumulation built);
    `error` is what it raised (name, message, and for an API error its status, code, type and param); `by_design`
    says the SDK raises that for any conformant answer of its kind (a parse helper given an answer cut off at
    `length`); `history` is the assistant message as the SDK sends it back in the next request's `messages`.
    """

    client: str
    version: str
    value: Any = MISSING
    error: dict[str, Any] | None = None
    by_design: bool = False
    history: Any = MISSING

    @property
    def label(self) -> str:
        return f"{self.client} {self.version}"

    def to_json(self) -> dict[str, Any]:
        """As a reading process writes it: what the SDK made of the answer, members it did not make left out."""
        out: dict[str, Any] = {"error": self.error} if self.error is not None else {}
        if self.value is not MISSING:
            out["value"] = self.value
        if self.history is not MISSING:
            out["history"] = self.history
        return out


def replay_of(exchange: Exchange) -> Replay | None:
    """The replay of an exchange whose answer came whole (a cut-off or failed answer has nothing an SDK could
    read past what the harness already reports)."""
    response = exchange.response
    if response is None or not replayable(exchange):
        return None
    request = exchange.request.body
    assert isinstance(request, dict)
    response_format = request.get("response_format")
    return Replay(
        request=request,
        status=response.status,
        headers={k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_HEADERS},
        body=response.text.encode("utf-8"),
        stream=request.get("stream") is True,
        parse=isinstance(response_format, dict) and response_format.get("type") == "json_schema",
        send_back=_worth_sending_back(exchange.answer()),
    )


def replayable(exchange: Exchange) -> bool:
    """Whether an SDK could read the exchange's answer (see `replay_of`), without building what it would read."""
    answered = exchange.response is not None and exchange.transport_error is None
    return answered and isinstance(exchange.request.body, dict)


def _worth_sending_back(answer: Any) -> bool:
    """Whether the SDKs' send-back of the first choice's message could lose anything the round_trip check looks
    for: tool calls, extra_content, or a role other than `assistant`. A plain assistant message (most answers) is
    not sent back: that is a second SDK call per answer, as costly as the read, for a check with nothing to find."""
    choices = answer.get("choices") if isinstance(answer, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    if not isinstance(message, dict):
        return first is not None  # a malformed message: the SDK may still expose one, so it is sent back
    return message.get("role") != "assistant" or bool(message.get("tool_calls")) or "extra_content" in message


def statuses() -> tuple[str, ...]:
    """Each client the client.* checks run, with its version, or why it is not checked: what a run's header shows."""
    return (python_status(), node_status())


def warm() -> None:
    """Start both reading processes now, once: they load their SDKs while the run starts, and a run's first answer,
    a fuzz run's budget and its rate then pay for a read, not for loading an SDK. A client that cannot load is
    left unchecked."""
    for start in (_python, _node):
        with contextlib.suppress(Exception):
            start()


# openai-python


def python_status() -> str:
    """`openai-python VERSION`, or why it is not checked: told from the installed package's metadata, since a run
    imports openai only in its reading process."""
    version = _python_version()
    if version is None:
        return "openai-python not checked: the openai package is not installed (install chat-conformance[clients])"
    if tuple(int(n) for n in re.findall(r"\d+", version)[:2]) < (1, 40):
        return f"openai-python not checked: openai {version} has no stream accumulation (1.40 or later)"
    if sys.executable in _PYTHON:  # asked for once openai is known to be there: None means it did not start
        running = _PYTHON[sys.executable]
        if running is None:
            return f"openai-python not checked: its reading process could not be started ({sys.executable})"
        if failure := running.failure():
            return f"openai-python not checked past the first answers: its reading process failed ({failure})"
    return f"openai-python {version}"


def _python_version() -> str | None:
    try:
        if importlib.util.find_spec("openai") is None:
            return None
        return importlib.metadata.version("openai")
    except (ImportError, ValueError):  # importlib.metadata.PackageNotFoundError is an ImportError
        return None


def read_python(replay: Replay) -> ClientRead | None:
    """What openai-python makes of the answer: `chat.completions.create`, plain or streamed with the SDK's own
    stream accumulation (`ChatCompletionStreamState`), or `chat.completions.parse` for a `json_schema` answer.
    None when the openai package is not installed."""
    try:
        import openai
        from openai.lib.streaming.chat import ChatCompletionStreamState  # noqa: F401 (openai 1.40 and later)
    except ImportError:  # not installed, or older than the stream accumulation the checks read with
        return None
    import httpx

    client, seam = _python_client()
    version = openai.__version__
    with (
        _PYTHON_LOCK,
        warnings.catch_warnings(),
    ):  # pydantic warns serialising `parsed`, typed None for a raw JSON Schema
        warnings.simplefilter("ignore")
        seam.answer = lambda request: httpx.Response(replay.status, headers=replay.headers, content=replay.body)
        try:
            value, message = _python_read(client, replay)
        except openai.APIStatusError as exc:
            return ClientRead("openai-python", version, error=_python_error(exc, exc.status_code))
        except openai.APIError as exc:  # an error the SDK found inside a stream
            return ClientRead("openai-python", version, error=_python_error(exc, None))
        except Exception as exc:
            error = {"name": type(exc).__name__, "message": str(exc)}
            return ClientRead("openai-python", version, error=error, by_design=error["name"] in _BY_DESIGN)
        history = _python_history(client, seam, replay, message) if replay.send_back else MISSING
    return ClientRead("openai-python", version, value=value, history=history)


def serve_python() -> None:
    """The openai-python reading process: one replay a line on stdin, its read a line on stdout, carrying the
    replay's id (as `data/clients/openai-node.mjs` does for openai-node). Its first line is `{"version": ...}`."""
    try:
        import openai
        from openai.lib.streaming.chat import ChatCompletionStreamState  # noqa: F401
    except ImportError as exc:
        _line({"version": None, "failed": str(exc)})
        return
    _line({"version": openai.__version__})
    for text in sys.stdin:
        data = json.loads(text)
        read = read_python(Replay.from_json(data))
        _line({**(read.to_json() if read is not None else {"failed": "openai cannot be imported"}), "id": data["id"]})


def _line(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
    sys.stdout.flush()


_PYTHON: dict[str, _Reader | None] = {}
"""openai-python's reading process for each interpreter, or None where openai is not installed (looked up once:
finding a package's metadata costs more than handing an answer over)."""


def _python() -> _Reader | None:
    """The openai-python reading process of this interpreter, started on first use; None without openai."""
    if sys.executable not in _PYTHON:
        reader = None
        if _python_version() is not None:
            with contextlib.suppress(OSError):  # an interpreter that cannot be started again: not checked
                reader = _python_reader()
        _PYTHON[sys.executable] = reader
    return _PYTHON[sys.executable]


def _python_reader() -> _Reader:
    # The harness this process runs, found by the reading process whatever its current folder.
    here = str(Path(__file__).resolve().parent.parent)
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
    code = "from harness.clients import serve_python; serve_python()"
    reader = _Reader([sys.executable, "-c", code], "openai-python", {**os.environ, "PYTHONPATH": path})
    atexit.register(reader.close)
    return reader


_PYTHON_LOCK = threading.Lock()  # one client, one answer at a time (a pytest-xdist worker may judge from threads)


class _Seam:
    """The transport the one openai-python client of a run reads through: it answers with whatever `answer` is set
    to for the replay at hand, one replay at a time. While `capturing`, the client stops each request once built."""

    def __init__(self) -> None:
        self.answer: Callable[[Any], Any] = lambda request: None
        self.capturing = False


class _Captured(Exception):
    """A request the SDK built, stopped before it is sent: its body is what the SDK would send."""

    def __init__(self, body: bytes) -> None:
        super().__init__("captured")
        self.body = body


@cache
def _python_client() -> tuple[Any, _Seam]:
    """One client for the run: building one costs more than a read."""
    import httpx
    import openai

    seam = _Seam()

    class Client(openai.OpenAI):
        def _prepare_request(self, request: Any) -> None:
            """The SDK's hook for a request it has built: sending a message back, the request stops here, built
            whole (body, headers and URL) as it would go out, without the cost of sending it and reading an answer."""
            super()._prepare_request(request)
            if seam.capturing:
                raise _Captured(request.read())

    transport = httpx.MockTransport(lambda request: seam.answer(request))
    # An httpx client, not the httpx2 one openai 3 builds on: every openai release since 1.0 takes it, so a user's
    # own older version is read the same way.
    settings: dict[str, Any] = {"http_client": httpx.Client(transport=transport)}
    return Client(api_key="replay", base_url=_BASE_URL, max_retries=0, **settings), seam


def _arguments(replay: Replay, messages: list[Any] | None = None) -> dict[str, Any]:
    """The request as keyword arguments: only what the SDK's reading depends on. The request's own messages are left
    out (the answer is replayed whatever was sent, and the SDK would transform each of them again); sending a
    message back, it is the only one."""
    model = replay.request.get("model")
    return {"model": model if isinstance(model, str) else "", "messages": messages or []}


def _python_read(client: Any, replay: Replay) -> tuple[Any, Any]:
    """(the completion as JSON, the SDK's message object to send back)."""
    from openai.lib.streaming.chat import ChatCompletionStreamState

    shape = _any_object() if replay.parse else None  # built once: a pydantic model costs more than a read
    if replay.stream:
        state: Any = ChatCompletionStreamState(**({"response_format": shape} if shape is not None else {}))
        with client.chat.completions.create(**_arguments(replay), stream=True) as chunks:
            for chunk in chunks:
                state.handle_chunk(chunk)
        completion = state.current_completion_snapshot
        if shape is not None:
            completion = state.get_final_completion()
    elif shape is not None:
        completions = client.chat.completions
        parse = getattr(completions, "parse", None) or client.beta.chat.completions.parse  # beta before openai 1.92
        completion = parse(**_arguments(replay), response_format=shape)
    else:
        completion = client.chat.completions.create(**_arguments(replay))
    value = completion.to_dict(mode="json")
    first = completion.choices[0].message if completion.choices else None
    return value, first


@cache
def _any_object() -> Any:
    """A model that takes any JSON object: what `parse` needs to run its own parse of a `json_schema` answer (the
    schema itself is judged by the structured.* checks)."""
    from pydantic import BaseModel, ConfigDict

    class AnyObject(BaseModel):
        model_config = ConfigDict(extra="allow")

    return AnyObject


def _python_error(exc: Any, status: int | None) -> dict[str, Any]:
    return {
        "name": type(exc).__name__,
        "message": exc.message,
        "status": status,
        "code": exc.code,
        "type": exc.type,
        "param": exc.param,
    }


def _python_history(client: Any, seam: _Seam, replay: Replay, message: Any) -> Any:
    """The assistant message as openai-python sends it back: the SDK's own message object in the next request.

    The request is built by the SDK as for any call and stopped once built (`_Captured`, raised by the client's
    request hook), so nothing is sent or answered; an SDK that does not call the hook reaches the transport, which
    keeps the body and answers 400."""
    if message is None:
        return MISSING
    import httpx

    captured: list[bytes] = []

    def capture(request: httpx.Request) -> httpx.Response:
        captured.append(request.read())
        return httpx.Response(400, json={"error": {"message": "captured", "type": "replay", "code": None}})

    seam.answer = capture
    seam.capturing = True
    try:
        client.chat.completions.create(**_arguments(replay, [message]))
    except _Captured as stopped:
        captured.append(stopped.body)
    except Exception:  # the transport answers 400 on purpose; a failure to send shows as none
        pass
    finally:
        seam.capturing = False
    if not captured:
        return MISSING
    messages = json.loads(captured[0]).get("messages")
    return messages[-1] if isinstance(messages, list) and messages else MISSING


# openai-node


def _node_binary() -> str | None:
    return _which(os.environ.get(NODE_BINARY_VARIABLE, "node"), os.environ.get("PATH"))


@cache
def _which(name: str, path: str | None) -> str | None:
    """Where a binary is on a PATH, looked up once: every answer asks which Node.js process reads it."""
    return shutil.which(name, path=path)


def _node_dir() -> Path | None:
    """The folder whose node_modules holds `openai`: the variable's, or none."""
    named = os.environ.get(NODE_DIR_VARIABLE)
    if named and (Path(named) / "node_modules" / "openai" / "package.json").is_file():
        return Path(named)
    return None


def node_status() -> str:
    """`openai-node VERSION`, or why it is not checked."""
    if _node_binary() is None:
        return "openai-node not checked: Node.js was not found (set HARNESS_NODE or put node on PATH)"
    folder = _node_dir()
    if folder is None:
        return (
            f"openai-node not checked: no openai npm package ({NODE_DIR_VARIABLE} names a folder where "
            "`npm install openai` was run)"
        )
    package = json.loads((folder / "node_modules" / "openai" / "package.json").read_text(encoding="utf-8"))
    running = _NODE.get((str(_node_binary()), str(folder)))
    failure = running.failure() if running is not None else None
    if failure:
        return f"openai-node not checked past the first answers: the Node.js process failed ({failure})"
    return f"openai-node {package.get('version', '?')} (from {folder})"


class _Reader:
    """One SDK's reading process for the whole run, fed one replay a line: starting it (loading the SDK) costs far
    more than a read.

    Replays are written without waiting for the reads before them, each with an id that its read echoes: a thread
    reads the process's lines and hands each read to the replay whose id it carries, so a line it prints that
    answers no replay (a warning, a stray line) is passed over instead of being taken for the next replay's read.
    The event loop that judges never waits on the process: it awaits the read (`awaited`) and serves other exchanges
    meanwhile. A read that never comes (a hung process) gives up after `READ_TIMEOUT` seconds instead of holding the
    run: the process is then stopped and the client not checked, which the header says.
    """

    def __init__(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> None:
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(), with the process)
        try:
            self._process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
                text=True,
                encoding="utf-8",
                env=env,
            )
        except OSError:
            self._errors.close()
            raise
        self._pending: dict[int, Future[dict[str, Any] | None]] = {}
        self._ids = itertools.count(1)
        self._asked = False  # whether it was ever given an answer to read
        self._ended = False
        self._lock = threading.Lock()  # the pending reads, shared with the thread that reads the process's lines
        self._writing = threading.Lock()  # one replay a line, whole, whichever thread judges
        self._unsent: list[tuple[int, str]] = []
        self._flush_on: asyncio.AbstractEventLoop | None = (
            None  # the loop that writes what is unsent, once its turn ends
        )
        self._header: Future[str | None] = Future()
        self._failed = ""
        threading.Thread(target=self._pump, name=name, daemon=True).start()

    @cached_property
    def version(self) -> str:
        """The package's version, as the process tells once it has loaded it: asked for only when needed, so that
        the process loads its SDK while the harness goes on."""
        try:
            header = self._header.result(timeout=READ_TIMEOUT)
        except TimeoutError:
            self.abandon()
            header = None
        return str(json.loads(header).get("version") or "?") if header and header.startswith("{") else "?"

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                out = json.loads(line)
            except ValueError:
                continue  # not a read: nothing waits for it
            if not self._header.done():
                if isinstance(out, dict) and "version" in out:
                    self._failed = str(out.get("failed") or "")  # it could not load its SDK: no read will come
                    self._header.set_result(line)
                continue
            number = out.get("id") if isinstance(out, dict) else None
            with self._lock:
                future = self._pending.pop(number, None) if isinstance(number, int) else None
            if future is not None:
                _settle(future, out)
        self._end()

    def _end(self) -> None:
        """No more reads will come: whatever waits for one gets none."""
        with self._lock:
            self._ended = True
            pending, self._pending = self._pending, {}
        _settle(self._header, None)
        for future in pending.values():
            _settle(future, None)

    def submit(self, replay: Replay) -> Future[dict[str, Any] | None]:
        """Send a replay to the process; the future holds its read (None when it failed), whenever it comes."""
        future: Future[dict[str, Any] | None] = Future()
        process = self._process
        with self._lock:
            if self._ended or process.stdin is None:
                future.set_result(None)
                return future
            number = next(self._ids)
            self._pending[number] = future
            self._asked = True
        line = json.dumps({**replay.to_json(), "id": number}) + "\n"
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._writing:
            self._unsent.append((number, line))
            if loop is not None and loop is self._flush_on:
                return future  # this loop writes it with the others at the end of its turn
            self._flush_on = loop
        if loop is None:
            self.flush()
        else:
            loop.call_soon(self.flush)  # the answers that come in the same turn of the loop go in one write
        return future

    def flush(self) -> None:
        """Write the replays handed over since the last write, in one write: one wake-up of the process for the lot."""
        with self._writing:
            unsent, self._unsent, self._flush_on = self._unsent, [], None
            if not unsent:
                return
            try:
                assert self._process.stdin is not None
                self._process.stdin.write("".join(line for _, line in unsent))
                self._process.stdin.flush()
                return
            except (OSError, ValueError):
                pass
        with self._lock:
            failed = [self._pending.pop(number, None) for number, _ in unsent]
        for future in failed:
            if future is not None:
                _settle(future, None)

    def read(self, replay: Replay) -> dict[str, Any] | None:
        """The read of one replay, waiting for it (for callers outside an event loop)."""
        try:
            return self.submit(replay).result(timeout=READ_TIMEOUT)
        except TimeoutError:
            self.abandon()
            return None

    async def awaited(self, future: Future[dict[str, Any] | None]) -> dict[str, Any] | None:
        """The read a submitted replay's future holds, awaited: the event loop serves other exchanges meanwhile."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), READ_TIMEOUT)
        except TimeoutError:
            self.abandon()
            return None

    def abandon(self) -> None:
        """Give the process up for the run: it took longer than `READ_TIMEOUT` over one answer."""
        with contextlib.suppress(OSError):
            self._process.kill()
        self._end()

    def close(self) -> None:
        """End the process once it has read what it was given. One never given an answer is stopped at once: a run
        that ended on a usage error, or sent nothing, does not wait while it loads its SDK."""
        if self._process.poll() is None and not self._asked:
            with contextlib.suppress(OSError):
                self._process.kill()
        if self._process.poll() is None:
            if self._process.stdin is not None:
                with contextlib.suppress(OSError):
                    self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._errors.close()

    def failure(self) -> str | None:
        """Why the process stopped answering (why it could not load its SDK, or the end of what it wrote to
        stderr), or None while it runs."""
        if self._failed:
            return self._failed
        if self._process.poll() is None:
            if not self._ended:
                return None
            with contextlib.suppress(subprocess.TimeoutExpired):  # its output has ended: it is on its way out
                self._process.wait(timeout=5)
        self._errors.seek(0)
        tail = self._errors.read().decode("utf-8", errors="replace").strip().splitlines()[-3:]
        code = self._process.returncode
        return " / ".join(tail) or (f"it exited with code {code}" if code is not None else "it stopped answering")


def _settle(future: Future[Any], value: Any) -> None:
    """Resolve a future that may already be resolved, or cancelled by a caller that stopped waiting."""
    with contextlib.suppress(InvalidStateError):
        future.set_result(value)


_NODE: dict[tuple[str, str], _Reader] = {}


_FOUND: dict[tuple[str | None, ...], tuple[str, Path]] = {}
"""The Node.js binary and package folder each setting of the variables (and PATH) named, once found."""


def _node() -> _Reader | None:
    setting = tuple(os.environ.get(name) for name in (NODE_BINARY_VARIABLE, NODE_DIR_VARIABLE, "PATH"))
    if setting not in _FOUND:  # looked up again while nothing is found: a package installed meanwhile is taken
        binary, folder = _node_binary(), _node_dir()
        if binary is None or folder is None:
            return None
        _FOUND[setting] = (binary, folder)
    binary, folder = _FOUND[setting]
    key = (binary, str(folder))
    if key not in _NODE:
        for old in _NODE.values():
            old.close()
        _NODE.clear()
        script = bundled("clients") / "openai-node.mjs"
        _NODE[key] = _Reader([binary, str(script), str(folder)], "openai-node")
        atexit.register(_NODE[key].close)
    return _NODE[key]


def read_node(replay: Replay) -> ClientRead | None:
    """What openai-node makes of the answer (create, plain or with its stream helper's accumulation, and
    `parse` for a `json_schema` answer). None when Node.js or the package is not there."""
    process = _node()
    if process is None:
        return None
    return _read_of("openai-node", process.version, process.read(replay))


def _read_of(client: str, version: str, out: dict[str, Any] | None) -> ClientRead | None:
    """A reading process's line as a `ClientRead`; None when the process failed (the run's header says so)."""
    if out is None or "failed" in out:
        return None
    error = out.get("error")
    return ClientRead(
        client,
        version,
        value=out.get("value", MISSING),
        error=error if isinstance(error, dict) else None,
        by_design=isinstance(error, dict) and error.get("name") in _BY_DESIGN,
        history=out.get("history", MISSING),
    )


# Both, before judging


async def read_all(exchange: Exchange) -> dict[str, ClientRead | None] | None:
    """What each SDK makes of an exchange's answer, by client name, read before the checks judge it (None when
    there is nothing an SDK could read). The replay goes to both reading processes at once; the event loop awaits
    their reads and serves other exchanges meanwhile."""
    replay = replay_of(exchange)
    if replay is None:
        return None
    readers = {"openai-python": _python(), "openai-node": _node()}
    pending = {name: (reader, reader.submit(replay)) for name, reader in readers.items() if reader is not None}
    reads: dict[str, ClientRead | None] = dict.fromkeys(readers)
    for name, (reader, future) in pending.items():
        out = await reader.awaited(future)  # the version line comes before any read: asking for it then never waits
        reads[name] = _read_of(name, reader.version, out)
    return reads
