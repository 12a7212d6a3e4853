"""The official OpenAI SDKs fed an exchange's recorded answer, as a second oracle: what would a user's client make
of it?

A `Replay` is what an SDK is fed (the request's JSON, and the answer's status, headers and bytes); a `ClientRead`
is what it made of them: the completion as the SDK exposes it, the error it raised, and the assistant message as it
would send it back as history. The SDKs never reach a network: openai-python reads the bytes through an
`httpx.MockTransport`, openai-node through a `fetch` override in `data/clients/openai-node.mjs`, run by one Node.js
process for the whole run. Judging what they made of it is the `client.*` checks' business, not this module's.

The SDKs are imported or started on first use only: `harness --help` loads neither.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import itertools
import json
import os
import shutil
import subprocess
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
    "statuses",
    "warm",
]

NODE_DIR_VARIABLE = "HARNESS_OPENAI_NODE_DIR"
"""A folder whose node_modules holds the `openai` npm package to check (`npm install openai@VERSION` in it)."""
NODE_BINARY_VARIABLE = "HARNESS_NODE"
"""The Node.js binary to run (default: `node` on PATH)."""

NODE_TIMEOUT = 60.0
"""Seconds the Node.js process may take over one answer (or to start) before it is given up for the run."""

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
    """Load openai-python and start the Node.js process now, once: a run's first answer, a fuzz run's budget and
    its rate then pay for a read, not for importing an SDK. A client that cannot load is left unchecked."""
    node = None
    with contextlib.suppress(Exception):
        node = _node()  # started first: Node.js loads its SDK on another core while openai-python is imported
    with contextlib.suppress(Exception):
        from openai.lib.streaming.chat import ChatCompletionStreamState  # noqa: F401

        _python_client()
    if node is not None:
        _ = node.version


# openai-python


def python_status() -> str:
    """`openai-python VERSION`, or why it is not checked."""
    try:
        import openai
    except ImportError:
        return "openai-python not checked: the openai package is not installed (install chat-conformance[clients])"
    try:
        from openai.lib.streaming.chat import ChatCompletionStreamState  # noqa: F401
    except ImportError:
        return f"openai-python not checked: openai {openai.__version__} has no stream accumulation (1.40 or later)"
    return f"openai-python {openai.__version__}"


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


class _NodeProcess:
    """One Node.js process for the whole run, fed one replay a line: starting Node costs far more than a read.

    Replays are written without waiting for the reads before them, each with an id that its read echoes: a thread
    reads Node's lines and hands each read to the replay whose id it carries, so a line Node prints that answers no
    replay (a warning, a stray line) is passed over instead of being taken for the next replay's read. The event loop
    that judges never waits on Node: it awaits the read (`awaited`) and serves other exchanges meanwhile. A read that
    never comes (a hung process) gives up after `NODE_TIMEOUT` seconds instead of holding the run: the process is
    then stopped and the client not checked, which the header says.
    """

    def __init__(self, binary: str, folder: Path) -> None:
        script = bundled("clients") / "openai-node.mjs"
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close(), with the process)
        self._process = subprocess.Popen(
            [binary, str(script), str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._errors,
            text=True,
            encoding="utf-8",
        )
        self._pending: dict[int, Future[dict[str, Any] | None]] = {}
        self._ids = itertools.count(1)
        self._ended = False
        self._lock = threading.Lock()  # the pending reads, shared with the thread that reads Node's lines
        self._writing = threading.Lock()  # one replay a line, whole, whichever thread judges
        self._unsent: list[tuple[int, str]] = []
        self._flush_on: asyncio.AbstractEventLoop | None = (
            None  # the loop that writes what is unsent, once its turn ends
        )
        self._header: Future[str | None] = Future()
        threading.Thread(target=self._pump, name="openai-node", daemon=True).start()

    @cached_property
    def version(self) -> str:
        """The package's version, as the process tells once it has loaded it: asked for only when needed, so that
        Node.js starts while the harness goes on (importing openai-python takes as long)."""
        try:
            header = self._header.result(timeout=NODE_TIMEOUT)
        except TimeoutError:
            self.abandon()
            header = None
        return str(json.loads(header).get("version", "?")) if header and header.startswith("{") else "?"

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                out = json.loads(line)
            except ValueError:
                continue  # not a read: nothing waits for it
            if not self._header.done():
                if isinstance(out, dict) and "version" in out:
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
        """Send a replay to Node; the future holds its read (None when Node failed), whenever it comes."""
        future: Future[dict[str, Any] | None] = Future()
        process = self._process
        with self._lock:
            if self._ended or process.stdin is None:
                future.set_result(None)
                return future
            number = next(self._ids)
            self._pending[number] = future
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
        """Write the replays handed over since the last write, in one write: one wake-up of Node for the lot."""
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
            return self.submit(replay).result(timeout=NODE_TIMEOUT)
        except TimeoutError:
            self.abandon()
            return None

    async def awaited(self, future: Future[dict[str, Any] | None]) -> dict[str, Any] | None:
        """The read a submitted replay's future holds, awaited: the event loop serves other exchanges meanwhile."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), NODE_TIMEOUT)
        except TimeoutError:
            self.abandon()
            return None

    def abandon(self) -> None:
        """Give the process up for the run: it took longer than `NODE_TIMEOUT` over one answer."""
        with contextlib.suppress(OSError):
            self._process.kill()
        self._end()

    def close(self) -> None:
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
        """Why the process stopped answering (the end of what Node wrote to stderr), or None while it runs."""
        if self._process.poll() is None:
            return None
        self._errors.seek(0)
        tail = self._errors.read().decode("utf-8", errors="replace").strip().splitlines()[-3:]
        return " / ".join(tail) or f"it exited with code {self._process.returncode}"


def _settle(future: Future[Any], value: Any) -> None:
    """Resolve a future that may already be resolved, or cancelled by a caller that stopped waiting."""
    with contextlib.suppress(InvalidStateError):
        future.set_result(value)


_NODE: dict[tuple[str, str], _NodeProcess] = {}


_FOUND: dict[tuple[str | None, ...], tuple[str, Path]] = {}
"""The Node.js binary and package folder each setting of the variables (and PATH) named, once found."""


def _node() -> _NodeProcess | None:
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
        _NODE[key] = _NodeProcess(binary, folder)
        atexit.register(_NODE[key].close)
    return _NODE[key]


def read_node(replay: Replay) -> ClientRead | None:
    """What openai-node makes of the answer (create, plain or with its stream helper's accumulation, and
    `parse` for a `json_schema` answer). None when Node.js or the package is not there."""
    process = _node()
    if process is None:
        return None
    return _node_read(process.version, process.read(replay))


def _node_read(version: str, out: dict[str, Any] | None) -> ClientRead | None:
    if out is None:  # Node itself failed: the client was not checked, which the run's header says
        return None
    error = out.get("error")
    return ClientRead(
        "openai-node",
        version,
        value=out.get("value", MISSING),
        error=error if isinstance(error, dict) else None,
        by_design=isinstance(error, dict) and error.get("name") in _BY_DESIGN,
        history=out.get("history", MISSING),
    )


# Both, before judging


async def read_all(exchange: Exchange) -> dict[str, ClientRead | None] | None:
    """What each SDK makes of an exchange's answer, by client name, read before the checks judge it (None when
    there is nothing an SDK could read). The replay goes to Node first, so that Node reads while openai-python
    does; the event loop then awaits Node's read instead of waiting on it."""
    replay = replay_of(exchange)
    if replay is None:
        return None
    process = _node()
    pending = process.submit(replay) if process is not None else None
    python = read_python(replay)
    if process is None or pending is None:
        return {"openai-python": python, "openai-node": None}
    return {"openai-python": python, "openai-node": _node_read(process.version, await process.awaited(pending))}
