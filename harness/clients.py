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

import atexit
import contextlib
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
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
    "read_node",
    "read_python",
    "replay_of",
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

    def to_json(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "status": self.status,
            "headers": self.headers,
            "body": self.body.decode("utf-8", errors="replace"),
            "stream": self.stream,
            "parse": self.parse,
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
    if response is None or exchange.transport_error is not None or not isinstance(exchange.request.body, dict):
        return None
    request = exchange.request.body
    response_format = request.get("response_format")
    return Replay(
        request=request,
        status=response.status,
        headers={k: v for k, v in response.headers.items() if k.lower() not in _DROPPED_HEADERS},
        body=response.text.encode("utf-8"),
        stream=request.get("stream") is True,
        parse=isinstance(response_format, dict) and response_format.get("type") == "json_schema",
    )


def statuses() -> tuple[str, ...]:
    """Each client the client.* checks run, with its version, or why it is not checked: what a run's header shows."""
    return (python_status(), node_status())


def warm() -> None:
    """Load openai-python and start the Node.js process now, once: a run's first answer, a fuzz run's budget and
    its rate then pay for a read, not for importing an SDK. A client that cannot load is left unchecked."""
    with contextlib.suppress(Exception):
        from openai.lib.streaming.chat import ChatCompletionStreamState  # noqa: F401

        _python_client()
    with contextlib.suppress(Exception):
        _node()


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
        history = _python_history(client, seam, replay, message)
    return ClientRead("openai-python", version, value=value, history=history)


_PYTHON_LOCK = threading.Lock()  # one client, one answer at a time (a pytest-xdist worker may judge from threads)


class _Seam:
    """The transport the one openai-python client of a run reads through: it answers with whatever `answer` is set
    to for the replay at hand, one replay at a time."""

    def __init__(self) -> None:
        self.answer: Callable[[Any], Any] = lambda request: None


@cache
def _python_client() -> tuple[Any, _Seam]:
    """One client for the run: building one costs more than a read."""
    import httpx
    import openai

    seam = _Seam()
    transport = httpx.MockTransport(lambda request: seam.answer(request))
    # An httpx client, not the httpx2 one openai 3 builds on: every openai release since 1.0 takes it, so a user's
    # own older version is read the same way.
    settings: dict[str, Any] = {"http_client": httpx.Client(transport=transport)}
    return openai.OpenAI(api_key="replay", base_url=_BASE_URL, max_retries=0, **settings), seam


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
    """The assistant message as openai-python sends it back: the SDK's own message object in the next request."""
    if message is None:
        return MISSING
    import httpx

    captured: list[bytes] = []

    def capture(request: httpx.Request) -> httpx.Response:
        captured.append(request.read())
        return httpx.Response(400, json={"error": {"message": "captured", "type": "replay", "code": None}})

    seam.answer = capture
    with contextlib.suppress(Exception):  # the capture answers 400 on purpose; a failure to send shows as none
        client.chat.completions.create(**_arguments(replay, [message]))
    if not captured:
        return MISSING
    messages = json.loads(captured[0]).get("messages")
    return messages[-1] if isinstance(messages, list) and messages else MISSING


# openai-node


def _node_binary() -> str | None:
    return shutil.which(os.environ.get(NODE_BINARY_VARIABLE, "node"))


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

    Its lines are read by a thread into a queue, so a read that never answers (a hung process) gives up after
    `NODE_TIMEOUT` seconds instead of holding the run: the client is then not checked, which the header says.
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
        self._lines: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        threading.Thread(target=self._pump, name="openai-node", daemon=True).start()
        header = self._next()
        self.version = str(json.loads(header).get("version", "?")) if header and header.startswith("{") else "?"

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put("")  # the process ended

    def _next(self) -> str | None:
        try:
            return self._lines.get(timeout=NODE_TIMEOUT)
        except queue.Empty:
            self._process.kill()
            return None

    def read(self, replay: Replay) -> dict[str, Any] | None:
        process = self._process
        if process.stdin is None or process.poll() is not None:
            return None
        with self._lock:
            try:
                process.stdin.write(json.dumps(replay.to_json()) + "\n")
                process.stdin.flush()
            except (OSError, ValueError):
                return None
            line = self._next()
        try:
            out = json.loads(line or "")
        except ValueError:
            return None
        return out if isinstance(out, dict) else None

    def close(self) -> None:
        if self._process.poll() is None:
            if self._process.stdin is not None:
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


_NODE: dict[tuple[str, str], _NodeProcess] = {}


def _node() -> _NodeProcess | None:
    binary, folder = _node_binary(), _node_dir()
    if binary is None or folder is None:
        return None
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
    out = process.read(replay)
    if out is None:  # Node itself failed: the client was not checked, which the run's header says
        return None
    error = out.get("error")
    return ClientRead(
        "openai-node",
        process.version,
        value=out.get("value", MISSING),
        error=error if isinstance(error, dict) else None,
        by_design=isinstance(error, dict) and error.get("name") in _BY_DESIGN,
        history=out.get("history", MISSING),
    )
