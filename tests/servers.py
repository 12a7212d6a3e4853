"""A hand-written test double of an OpenAI-compatible Chat Completions endpoint, for the harness's own tests.

This is test code, not a server and not a model: it answers on 127.0.0.1 with fixed, deterministic text,
so the harness's checks can be exercised both ways without a network or an LLM. Never present it as a real
server or as a reference implementation.

Each request path names a scenario, ``/{scenario}/v1/chat/completions``:

- ``ok`` is a conformant endpoint. It validates the request the way OpenAI does (400 with an OpenAI error
  body) and answers with exactly the members OpenAI documents. It serves any model but one named
  ``no-such-model…`` (404 ``model_not_found``), refuses a prompt and completion limit beyond ``CONTEXT_TOKENS``
  words (400 ``context_length_exceeded``), and cuts a forced tool call at ``max_tokens`` with ``length``.
- Any other scenario is a ``+``-joined list of defect names (see ``DEFECTS``). Each defect starts from the
  conformant answer and changes one thing; an unknown name gets a 404 naming it.
- ``vertex`` and ``gemini`` (``SURFACES``) answer as Google's documentation says Google's OpenAI-compatible
  surfaces do, instead of as OpenAI does; a scenario names at most one, and may add defects
  (``vertex+google-thought-leak``). See "Google's surfaces" below.

``vertex`` is Gemini on Vertex AI: a Gemini-style ``id`` (no ``chatcmpl-``), the model echoed as sent,
``system_fingerprint: ""``, ``logprobs: null``, no ``refusal``, ``usage.extra_properties.google.traffic_type:
"ON_DEMAND"``. It accepts Google's request shapes (a bare-string ``image_url``, ``input_audio`` with a MIME
``format`` and ``gs://`` data) and ignores unknown members, a top-level ``google`` key among them. It honours the
literal ``extra_body.google``: with ``thinking_config.include_thoughts`` the content starts with the thoughts
(``THOUGHTS``), wrapped in ``<M>…</M>`` when ``thought_tag_marker`` is M and untagged otherwise, and usage reports
``reasoning_tokens`` outside ``completion_tokens`` (total = prompt + completion + reasoning). Tool calls have
``function-call-<uuid>`` ids, the first with ``extra_content.google.thought_signature``. Its streams repeat
``role`` on every delta, leave out ``finish_reason`` until the last chunk, which also carries the usage (with or
without ``stream_options``), and cut the thought tags in two across chunks (``<th``, ``ink>…``).

``gemini`` is the Gemini API: unknown top-level members (``google``, ``store``, ``parallel_tool_calls``…) get a
400 with Google's one-element array error body, as do all its 4xx. ``extra_body.google.thinking_config.
include_thoughts`` puts ``<thought>…</thought>`` before the answer (a ``thought_tag_marker`` is ignored); streamed
thought deltas carry ``extra_content.google.thought: true``, and the closing tag comes on the first answer delta,
unflagged. No ``system_fingerprint``, no ``logprobs``, the model echoed without a prefix, ``role`` on every delta,
no ``finish_reason`` key before the last chunk, and with ``include_usage`` the usage on every chunk.

The ``google-*`` defects (``GOOGLE_DEFECTS``) need one of the two surfaces and change one thing in its answer.

The conformant answer also honours what OpenAI documents of ``service_tier`` (echoed), ``reasoning_effort``
(reasoning tokens), ``prediction`` (accepted prediction tokens), ``modalities`` with audio (``message.audio``) and
``web_search_options`` (``url_citation`` annotations), and the Google surfaces count reasoning for a thinking budget
or level. For the support matrix, ``params-ignored`` takes every parameter but model, messages and stream and
ignores it (the answer counts to 20, past any probe's limit and through its stop strings; with
``parallel_tool_calls: false`` it calls every tool), and ``params-refused`` refuses them with a 400 naming them.

Example::

    with serve() as server:
        httpx.post(server.url("usage-negative") + "/chat/completions", json={"messages": [...]})
        server.requests[-1].body

``stream: true`` gets OpenAI's stream of the same answer: ``text/event-stream``, chunked transfer, one
``data: <json>\n\n`` event per ``chat.completion.chunk`` (each flushed on its own, ~1 ms apart), then
``data: [DONE]\n\n``. Each choice starts with ``{"role": "assistant", "content": ""}`` (``content: null`` and the
first tool call's id, type and name for a tool answer), then a word per content delta or 3+ argument fragments,
then ``delta: {}`` with the finish_reason; ``n`` choices interleave. With ``stream_options.include_usage`` every
chunk has ``"usage": null`` and a last ``"choices": []`` chunk carries the usage; without it there is no usage.

A scenario may also name stream-only parts, which do nothing to non-streaming answers:

- ``FRAMINGS`` (``sse-*``): legal ways to write the same events (CRLF or CR line ends, comments, multi-line
  data, a BOM, event/id/retry fields, no space after the colon, byte-by-byte or UTF-8-splitting writes, no
  blank line after the final ``[DONE]``). ``sse-split-utf8`` also makes the answer text non-ASCII
  (``UTF8_ANSWER``, same word count), in streamed and non-streamed answers alike; ``sse-cr`` wins over
  ``sse-crlf``.
- ``stream-*`` defects: framing, chunk and Google-shaped deviations, each changing one thing in the
  conformant stream (see ``CHUNK_DEFECTS``, ``EVENT_DEFECTS`` and ``STREAM_WRITES``). The Google shapes that
  move or drop the usage (``stream-usage-on-final``, ``-every``, ``-missing``) do nothing without
  ``include_usage``. ``stream-stall`` and ``stream-endless`` stop as soon as the client hangs up.

The answer defects in ``STREAMED_ANSWER_DEFECTS`` reach streams too: the stream is built from the defective
answer (``usage-*`` on the usage chunk, so only with ``include_usage``). The others cannot be said in a
``chat.completion.chunk`` stream, or have a ``stream-*`` counterpart, and are ignored when streaming:
``content-array``, ``choices-empty``, ``choices-missing``, ``created-string``, ``fuzz-created-string-n2``,
``object-wrong``, ``no-nullable``, ``role-wrong``, ``index-wrong``, ``usage-missing``, ``tool-args-object`` and
``huge``.
The wire defects apply to streams as well (``truncated`` ends the chunked body cleanly half-way, and does not
combine with ``stream-endless``); the error and behaviour defects act before any answer.

Two defects are planted for ``harness fuzz`` to find; each hides behind one input and leaves everything else
conformant, so a test can check that the fuzzer finds it and shrinks it to that input:

- ``fuzz-500-on-emoji``: a 500 (OpenAI's error body, type ``server_error``) for any request whose message text
  (string content, or the text of text parts, in any message) holds a character outside the Basic Multilingual
  Plane, such as an emoji. It acts before validation, like the behaviour defects; other requests are untouched.
- ``fuzz-created-string-n2``: the answer's ``created`` is a string (``created-string``), but only when ``n`` is 2
  or more and the answer is not streamed (a schema-invalid member for one parameter combination).

Run ``python -m tests.servers --port 8123`` to try it by hand.

Only the standard library is imported here.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import difflib
import hashlib
import http.server
import itertools
import json
import math
import re
import secrets
import select
import socket
import string
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "DEFECTS",
    "FRAMINGS",
    "GOOGLE_DEFECTS",
    "SURFACES",
    "THOUGHTS",
    "UTF8_ANSWER",
    "Received",
    "Server",
    "minimal_instance",
    "serve",
    "violating_instance",
]

Json = Any
Completion = dict[str, Any]

ANSWER = "This is a conformant answer from the test server."
UTF8_ANSWER = "héllo wörld 日本 🎒 is a conformant ünicode answer."  # as many words as ANSWER
DEFAULT_MODEL = "test-model"
FINGERPRINT = "fp_test"
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PART_TYPES = {
    "system": {"text"},
    "developer": {"text"},
    "user": {"text", "image_url", "input_audio", "file"},
    "assistant": {"text", "refusal"},
    "tool": {"text"},
    "function": {"text"},
}
JSON_MODES = ("json_object", "json_schema")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ROUTE = re.compile(r"/(?P<scenario>[^/]+)/v1/chat/completions")
SLOW_SECONDS = 3.0
QUEUED_SECONDS = 1.5  # how long ``queued`` and ``stream-late-start`` keep a request waiting for a busy slot
HUGE_BYTES = 8 * 1024 * 1024
STREAM_PAUSE = 0.001  # between two events, so they arrive at different times
STALL_SECONDS = 5.0
CONTEXT_TOKENS = 128_000  # the prompt's words and the completion's limit together, as a model's context
MISSING_MODEL_PREFIX = "no-such-model"  # every other model name is served
_ALNUM = string.ascii_letters + string.digits
_MISSING = object()


def _alnum(length: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


# ------------------------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server read it: the raw path, lower-cased header names, the body bytes, and when it
    arrived (``time.monotonic()`` once its headers were read, for tests of request rates)."""

    path: str
    headers: dict[str, str]
    body: bytes
    arrived: float = 0.0


@dataclass(slots=True)
class Reply:
    """What the handler writes back. ``reset`` closes the socket without writing anything.

    With ``stream``, the body is sent chunked instead: each ``bytes`` item is one HTTP chunk, flushed at once,
    and each ``float`` a pause in seconds (cut short when the client hangs up). ``terminated=False`` closes the
    connection at the end without the chunked-encoding terminator.
    """

    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False
    stream: Iterable[bytes | float] | None = None
    terminated: bool = True


@dataclass(frozen=True, slots=True)
class ApiError:
    """An error in OpenAI's terms; an ``error-*`` defect decides how it is written."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None


class InvalidRequest(Exception):
    """The request breaks one of OpenAI's documented rules: answered with 400 (or `status`)."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.status = status
        self.code = code


def _json_reply(status: int, payload: Json, content_type: str = "application/json") -> Reply:
    return Reply(status, json.dumps(payload).encode(), content_type)


# ------------------------------------------------------------------------------------ validation


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wrong_type(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.", param
    )


def _missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required parameter: '{param}'.", param)


def _unsupported(param: str, value: Any, allowed: tuple[str, ...]) -> InvalidRequest:
    supported = ", ".join(f"'{a}'" for a in allowed)
    return InvalidRequest(f"Invalid value: {value!r}. Supported values are: {supported}.", param)


def _ranged(kind: str, low: float | None, high: float | None) -> Callable[[str, Any], None]:
    """A check for an integer or a number (never a boolean) within [low, high]."""
    is_kind = _is_int if kind == "integer" else _is_number
    noun = "integer" if kind == "integer" else "decimal"

    def check(param: str, value: Any) -> None:
        if not is_kind(value):
            raise _wrong_type(param, "an integer" if kind == "integer" else "a number", value)
        if low is not None and value < low:
            raise InvalidRequest(
                f"Invalid '{param}': {noun} below minimum value. Expected a value >= {low}, but got {value} instead.",
                param,
            )
        if high is not None and value > high:
            raise InvalidRequest(
                f"Invalid '{param}': {noun} above maximum value. Expected a value <= {high}, but got {value} instead.",
                param,
            )

    return check


def _boolean(param: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise _wrong_type(param, "a boolean", value)


def _stop(param: str, value: Any) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise _wrong_type(param, "a string or an array of strings", value)
    if len(value) > 4:
        raise InvalidRequest(
            f"Invalid '{param}': array too long. Expected an array with maximum length 4, "
            f"but got an array with length {len(value)} instead.",
            param,
        )
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _wrong_type(f"{param}[{i}]", "a string", item)


def _object(param: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong_type(param, "an object", value)
    return value


def _name(param: str, value: Any) -> None:
    if value is None:
        raise _missing(param)
    if not isinstance(value, str):
        raise _wrong_type(param, "a string", value)
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidRequest(
            f"Invalid '{param}': string does not match pattern. Expected a string that matches the pattern "
            f"'^[a-zA-Z0-9_-]{{1,64}}$'.",
            param,
        )


def _tools(param: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _wrong_type(param, "an array", value)
    if not value:
        raise InvalidRequest(
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param,
        )
    for i, tool in enumerate(value):
        where = f"{param}[{i}]"
        _object(where, tool)
        if tool.get("type") != "function":
            raise _unsupported(f"{where}.type", tool.get("type"), ("function",))
        if "function" not in tool:
            raise _missing(f"{where}.function")
        function = _object(f"{where}.function", tool["function"])
        _name(f"{where}.function.name", function.get("name"))
        if function.get("parameters") is not None:
            _object(f"{where}.function.parameters", function["parameters"])


def _response_format(param: str, value: Any) -> None:
    kinds = ("text", "json_object", "json_schema")
    _object(param, value)
    if value.get("type") not in kinds:
        raise _unsupported(f"{param}.type", value.get("type"), kinds)
    if value["type"] != "json_schema":
        return
    if "json_schema" not in value:
        raise _missing(f"{param}.json_schema")
    spec = _object(f"{param}.json_schema", value["json_schema"])
    _name(f"{param}.json_schema.name", spec.get("name"))
    if "schema" not in spec:
        raise _missing(f"{param}.json_schema.schema")
    _object(f"{param}.json_schema.schema", spec["schema"])
    if spec.get("strict") is not None:
        _boolean(f"{param}.json_schema.strict", spec["strict"])


# Optional top-level members: a JSON null counts as absent, as it does for OpenAI.
FIELD_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "temperature": _ranged("number", 0, 2),
    "top_p": _ranged("number", 0, 1),
    "n": _ranged("integer", 1, 128),
    "max_tokens": _ranged("integer", 1, None),
    "max_completion_tokens": _ranged("integer", 1, None),
    "presence_penalty": _ranged("number", -2, 2),
    "frequency_penalty": _ranged("number", -2, 2),
    "seed": _ranged("integer", -(2**63), 2**63 - 1),
    "stop": _stop,
    "stream": _boolean,
    "logprobs": _boolean,
    "top_logprobs": _ranged("integer", 0, 20),
    "tools": _tools,
    "response_format": _response_format,
}


def _content(param: str, role: str, message: dict[str, Any]) -> None:
    content = message.get("content")
    may_be_empty = role == "function" or (
        role == "assistant" and (message.get("tool_calls") or message.get("function_call"))
    )
    if content is None:
        if may_be_empty:
            return
        raise _missing(f"{param}.content")
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _wrong_type(f"{param}.content", "a string or an array of content parts", content)
    if not content:
        raise InvalidRequest(
            f"Invalid '{param}.content': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            f"{param}.content",
        )
    allowed = tuple(sorted(PART_TYPES[role]))
    for i, part in enumerate(content):
        where = f"{param}.content[{i}]"
        _object(where, part)
        kind = part.get("type")
        if kind not in allowed:
            raise _unsupported(f"{where}.type", kind, allowed)
        if kind in ("text", "refusal") and not isinstance(part.get(kind), str):
            raise _wrong_type(f"{where}.{kind}", "a string", part.get(kind))
        if kind == "image_url":
            image = _object(f"{where}.image_url", part.get("image_url"))
            if not isinstance(image.get("url"), str):
                raise _wrong_type(f"{where}.image_url.url", "a string", image.get("url"))


def _tool_calls(param: str, value: Any) -> None:
    if not isinstance(value, list):
        raise _wrong_type(param, "an array", value)
    for i, call in enumerate(value):
        where = f"{param}[{i}]"
        _object(where, call)
        if not isinstance(call.get("id"), str):
            raise _wrong_type(f"{where}.id", "a string", call.get("id"))
        if call.get("type") != "function":
            raise _unsupported(f"{where}.type", call.get("type"), ("function",))
        function = _object(f"{where}.function", call.get("function"))
        _name(f"{where}.function.name", function.get("name"))
        if not isinstance(function.get("arguments"), str):
            raise _wrong_type(f"{where}.function.arguments", "a string", function.get("arguments"))


def _messages(value: Any) -> None:
    if value is _MISSING:
        raise _missing("messages")
    if not isinstance(value, list):
        raise _wrong_type("messages", "an array", value)
    if not value:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
        )
    for i, message in enumerate(value):
        param = f"messages[{i}]"
        _object(param, message)
        if "role" not in message:
            raise _missing(f"{param}.role")
        role = message["role"]
        if role not in ROLES:
            raise _unsupported(f"{param}.role", role, ROLES)
        _content(param, role, message)
        if message.get("name") is not None and not isinstance(message["name"], str):
            raise _wrong_type(f"{param}.name", "a string", message["name"])
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise _missing(f"{param}.tool_call_id")
        if role == "assistant" and message.get("tool_calls") is not None:
            _tool_calls(f"{param}.tool_calls", message["tool_calls"])


def _tool_choice(data: dict[str, Any]) -> None:
    choice = data.get("tool_choice")
    if choice is None:
        return
    declared = [t["function"]["name"] for t in data.get("tools") or []]
    if isinstance(choice, str):
        modes = ("none", "auto", "required")
        if choice not in modes:
            raise _unsupported("tool_choice", choice, modes)
        if choice != "none" and not declared:
            raise InvalidRequest(
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
                "tool_choice",
            )
        return
    if not isinstance(choice, dict):
        raise _wrong_type("tool_choice", "a string or an object", choice)
    if choice.get("type") != "function":
        raise _unsupported("tool_choice.type", choice.get("type"), ("function",))
    function = _object("tool_choice.function", choice.get("function"))
    _name("tool_choice.function.name", function.get("name"))
    if function["name"] not in declared:
        raise InvalidRequest(
            f"Invalid value for 'tool_choice': function '{function['name']}' is not among the declared 'tools'.",
            "tool_choice.function.name",
        )


def parse_body(body: bytes) -> Json:
    """Decode a request body as JSON, or raise InvalidRequest as OpenAI answers a body it cannot parse."""

    def reject_constant(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(body, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        raise InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
            "valid JSON.)"
        ) from None


def validate(data: Json) -> None:
    """Raise InvalidRequest for the first rule the decoded body breaks, naming the field in ``param``."""
    if not isinstance(data, dict):
        raise InvalidRequest(f"Invalid type for request body: expected an object, but got {_json_type(data)} instead.")
    _messages(data.get("messages", _MISSING))
    if "model" in data and not isinstance(data["model"], str):
        raise _wrong_type("model", "a string", data["model"])
    for name, check in FIELD_CHECKS.items():
        if data.get(name) is not None:
            check(name, data[name])
    _tool_choice(data)
    if data.get("top_logprobs") is not None and data.get("logprobs") is not True:
        raise InvalidRequest(
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
            "top_logprobs",
        )
    if data.get("stream_options") is not None:
        if data.get("stream") is not True:
            raise InvalidRequest(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options"
            )
        options = _object("stream_options", data["stream_options"])
        if options.get("include_usage") is not None:
            _boolean("stream_options.include_usage", options["include_usage"])
    _served(data)


def _served(data: dict[str, Any]) -> None:
    """What only the model can refuse: one it does not serve (404), and more tokens than its context holds."""
    model = data.get("model")
    if isinstance(model, str) and model.startswith(MISSING_MODEL_PREFIX):
        raise InvalidRequest(
            f"The model `{model}` does not exist or you do not have access to it.", "model", 404, "model_not_found"
        )
    messages = data.get("messages") if isinstance(data.get("messages"), list) else []
    prompt = sum(_words(_message_text(m)) for m in messages)
    limits = [v for k in ("max_tokens", "max_completion_tokens") if _is_int(v := data.get(k)) and v >= 1]
    wanted = prompt + (min(limits) if limits else 0)
    if wanted > CONTEXT_TOKENS:
        raise InvalidRequest(
            f"This model's maximum context length is {CONTEXT_TOKENS} tokens. However, you requested {wanted} "
            f"tokens ({prompt} in the messages, {wanted - prompt} in the completion).",
            "messages",
            code="context_length_exceeded",
        )


# ------------------------------------------------------------------------------------ JSON Schema instances

FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "duration": "P1D",
    "email": "test@example.com",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-0000-0000-000000000000",
}
_PATTERN_CANDIDATES = ("x", "a", "A", "0", "1", "xx", "a1", "A1", "aa", "00", "x_1", "2024-01-01")
_FULL_DEPTH = 6  # deeper than this only required properties are filled, so recursive $refs end
_MAX_DEPTH = 64
_MAX_SIZE = 1000  # caps minLength and minItems, so an odd schema cannot make a huge answer


def _listed(schema: dict[str, Any], key: str) -> list[Any]:
    value = schema.get(key)
    return value if isinstance(value, list) else []


def _resolve(root: Json, ref: str) -> Json:
    """Follow a local $ref ("#", "#/$defs/x", "#/definitions/x", any JSON pointer); others accept anything."""
    if not ref.startswith("#"):
        return {}
    node = root
    for token in filter(None, ref[1:].split("/")):
        key = token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return {}
    return node


def _flatten(schema: Json, root: Json, depth: int) -> Json:
    """Resolve $ref, take the first anyOf/oneOf branch and merge allOf, until a plain schema is left."""
    while isinstance(schema, dict) and depth < _MAX_DEPTH:
        depth += 1
        if isinstance(schema.get("$ref"), str):
            schema = _resolve(root, schema["$ref"])
        elif any(isinstance(schema.get(k), list) and schema[k] for k in ("anyOf", "oneOf")):
            branches = schema.get("anyOf") or schema.get("oneOf")
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            schema = _merge([rest, _flatten(branches[0], root, depth)], root, depth)
        elif isinstance(schema.get("allOf"), list):
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            schema = _merge([rest, *schema["allOf"]], root, depth)
        else:
            break
    return schema if isinstance(schema, dict) else {}


def _merge(schemas: list[Json], root: Json, depth: int) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for part in schemas:
        part = _flatten(part, root, depth)
        for key, value in part.items():
            if key == "properties" and isinstance(value, dict):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged[key] = value
    return merged


def _types(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list) and kind:
        return [k for k in kind if isinstance(k, str)]
    if any(k in schema for k in ("properties", "required", "additionalProperties")):
        return ["object"]
    if any(k in schema for k in ("items", "prefixItems", "minItems")):
        return ["array"]
    if any(k in schema for k in ("minLength", "maxLength", "pattern", "format")):
        return ["string"]
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        return ["number"]
    return []


def _string_instance(schema: dict[str, Any], root: Json, depth: int) -> str:
    low = min(schema["minLength"], _MAX_SIZE) if _is_int(schema.get("minLength")) else 0
    high = schema.get("maxLength") if _is_int(schema.get("maxLength")) else None
    known = FORMATS.get(schema["format"]) if isinstance(schema.get("format"), str) else None
    value = known or "x" * max(low, 1)
    if high is not None:
        value = value[:high]
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        with contextlib.suppress(re.error):
            fits = [c for c in _PATTERN_CANDIDATES if re.search(pattern, c) and (high is None or len(c) <= high)]
            value = next((c for c in fits if len(c) >= low), value)
    return value


def _bounds(schema: dict[str, Any]) -> tuple[float | None, bool, float | None, bool]:
    """(low, low is exclusive, high, high is exclusive), for drafts 4 (boolean exclusive*) and 6+."""
    low = schema.get("minimum") if _is_number(schema.get("minimum")) else None
    high = schema.get("maximum") if _is_number(schema.get("maximum")) else None
    low_exclusive = schema.get("exclusiveMinimum") is True
    high_exclusive = schema.get("exclusiveMaximum") is True
    if _is_number(schema.get("exclusiveMinimum")) and (low is None or schema["exclusiveMinimum"] >= low):
        low, low_exclusive = schema["exclusiveMinimum"], True
    if _is_number(schema.get("exclusiveMaximum")) and (high is None or schema["exclusiveMaximum"] <= high):
        high, high_exclusive = schema["exclusiveMaximum"], True
    return low, low_exclusive, high, high_exclusive


def _integer_instance(schema: dict[str, Any], root: Json, depth: int) -> int:
    low, low_exclusive, high, high_exclusive = _bounds(schema)
    value = 0
    if low is not None:
        first = math.floor(low) + 1 if low_exclusive else math.ceil(low)
        value = max(value, first)
    if high is not None:
        last = math.ceil(high) - 1 if high_exclusive else math.floor(high)
        value = min(value, last)
    step = schema.get("multipleOf")
    if _is_int(step) and step > 0:
        value = math.ceil(value / step) * step
    return value


def _number_instance(schema: dict[str, Any], root: Json, depth: int) -> float:
    low, low_exclusive, high, high_exclusive = _bounds(schema)
    value: float = 0
    if low is not None and (value < low or (low_exclusive and value <= low)):
        value = low + 1 if low_exclusive else low
    if high is not None and (value > high or (high_exclusive and value >= high)):
        value = high - 1 if high_exclusive else high
    if low is not None and high is not None and (value < low or (low_exclusive and value <= low)):
        value = (low + high) / 2
    return int(value) if value == int(value) else value


def _array_instance(schema: dict[str, Any], root: Json, depth: int) -> list[Any]:
    count = min(schema["minItems"], _MAX_SIZE) if _is_int(schema.get("minItems")) else 0
    prefix = _listed(schema, "prefixItems")
    items = schema.get("items", {})
    if isinstance(items, list):  # draft 4 tuple form
        prefix, items = items, schema.get("additionalItems", {})
    values = [minimal_instance(prefix[i] if i < len(prefix) else items, root, depth + 1) for i in range(count)]
    if schema.get("uniqueItems") is True and count > 1:
        item = _flatten(items, root, depth)
        enum = item.get("enum")
        if isinstance(enum, list) and len(enum) >= count:
            values = enum[:count]
        elif all(_is_int(v) for v in values):
            values = [v + i for i, v in enumerate(values)]
        elif all(isinstance(v, str) for v in values):
            values = [f"{v}{i}" for i, v in enumerate(values)]
    return values


def _object_instance(schema: dict[str, Any], root: Json, depth: int) -> dict[str, Any]:
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    required = [r for r in _listed(schema, "required") if isinstance(r, str)]
    names = list(properties) if depth <= _FULL_DEPTH else [p for p in properties if p in required]
    value = {name: minimal_instance(properties[name], root, depth + 1) for name in names}
    extra = schema.get("additionalProperties")
    for name in required:
        if name not in value:
            value[name] = minimal_instance(extra if isinstance(extra, dict) else {}, root, depth + 1)
    return value


_INSTANCES: dict[str, Callable[[dict[str, Any], Json, int], Any]] = {
    "object": _object_instance,
    "array": _array_instance,
    "string": _string_instance,
    "integer": _integer_instance,
    "number": _number_instance,
    "boolean": lambda schema, root, depth: True,
    "null": lambda schema, root, depth: None,
}


def minimal_instance(schema: Json, root: Json = None, depth: int = 0) -> Any:
    """A small value valid against ``schema`` (every declared property filled, so ``strict`` schemas pass).

    Covers what tool parameters and response schemas use: types, required/properties, enum, const,
    min/max bounds, minLength/maxLength, a few formats and simple patterns, minItems/items, anyOf/oneOf
    (first branch), allOf, and local $ref into $defs or definitions.
    """
    root = schema if root is None else root
    if depth > _MAX_DEPTH:  # a schema that can only recurse; give up rather than overflow the stack
        return None
    schema = _flatten(schema, root, depth)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kinds = [k for k in _types(schema) if k != "null"] or _types(schema) or ["object"]
    make = _INSTANCES.get(kinds[0], _INSTANCES["object"])
    return make(schema, root, depth)


def violating_instance(schema: Json, root: Json = None) -> Any:
    """A value near ``minimal_instance(schema)``, made invalid: a required property dropped, or a bad type."""
    root = schema if root is None else root
    flat = _flatten(schema, root, 0)
    value = minimal_instance(schema, root)
    if isinstance(value, dict):
        required = [r for r in _listed(flat, "required") if isinstance(r, str) and r in value]
        if required:
            del value[required[0]]
            return value
        properties = flat.get("properties") if isinstance(flat.get("properties"), dict) else {}
        for name in properties:
            value[name] = _off_schema(properties[name], root)
            return value
    return _off_schema(schema, root)


def _admits(schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` passes the type, enum and const of ``schema`` (what _off_schema plays with)."""
    allowed = set(_types(schema))
    if "number" in allowed:
        allowed.add("integer")
    if allowed and _json_type(value) not in allowed:
        return False
    if isinstance(schema.get("enum"), list) and value not in schema["enum"]:
        return False
    return "const" not in schema or value == schema["const"]


def _branches(schema: Json, root: Json, depth: int = 0) -> list[dict[str, Any]]:
    """The alternatives a value may match: nested anyOf/oneOf (and one-element allOf) spread out."""
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and depth < _MAX_DEPTH:
        schema, depth = _resolve(root, schema["$ref"]), depth + 1
    if not isinstance(schema, dict) or depth >= _MAX_DEPTH:
        return [{}]
    alternatives = _listed(schema, "anyOf") or _listed(schema, "oneOf")
    if not alternatives and len(_listed(schema, "allOf")) == 1:
        alternatives = _listed(schema, "allOf")
    if alternatives:
        return [flat for branch in alternatives for flat in _branches(branch, root, depth + 1)]
    return [_flatten(schema, root, depth)]


def _off_schema(schema: Json, root: Json) -> Any:
    """A value no branch of ``schema`` admits by type, enum or const (``{}`` admits anything)."""
    branches = _branches(schema, root)
    for candidate in ("off-schema", 0, 0.5, True, None, [], {}):
        if not any(_admits(branch, candidate) for branch in branches):
            return candidate
    return "off-schema"


# ------------------------------------------------------------------------------------ the conformant answer


def _words(text: str) -> int:
    return len(text.split())


def _first_words(text: str, count: int) -> str:
    """The prefix of ``text`` that holds its first ``count`` whitespace-separated words, spacing untouched."""
    if count <= 0:
        return ""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    return text if count >= len(ends) else text[: ends[count - 1]]


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request asks for, read leniently so that ``accept-all`` can answer any body without crashing."""

    model: str = DEFAULT_MODEL
    n: int = 1
    limit: int | None = None
    stops: tuple[str, ...] = ()
    functions: tuple[dict[str, Any], ...] = ()
    call: dict[str, Any] | None = None
    response_format: str = "text"
    schema: Json = None
    prompt_tokens: int = 1
    stream: bool = False
    include_usage: bool = False
    logprobs: bool = False
    top_logprobs: int = 0
    answer: str = ANSWER
    sampled: bool = False  # n > 1 at a temperature of 1 or more: each choice a different sample


def _message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _function_to_call(data: dict[str, Any], functions: tuple[dict[str, Any], ...]) -> dict[str, Any] | None:
    if not functions:
        return None
    choice = data.get("tool_choice")
    if isinstance(choice, dict):
        wanted = choice.get("function", {}).get("name") if isinstance(choice.get("function"), dict) else None
        return next((f for f in functions if f["name"] == wanted), functions[0])
    if choice == "required":
        return functions[0]
    if choice == "none":
        return None
    messages = data.get("messages")
    last = messages[-1] if isinstance(messages, list) and messages else None
    return functions[0] if isinstance(last, dict) and last.get("role") == "user" else None


def read_ask(data: Json) -> Ask:
    """Interpret a (validated, or with ``accept-all`` arbitrary) decoded body."""
    if not isinstance(data, dict):
        return Ask()
    limits = [data.get(k) for k in ("max_tokens", "max_completion_tokens")]
    limits = [v for v in limits if _is_int(v) and v >= 1]
    stop = data.get("stop")
    stops = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    tools = data.get("tools") if isinstance(data.get("tools"), list) else []
    functions = tuple(
        t["function"]
        for t in tools
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and isinstance(t["function"].get("name"), str)
    )
    response_format = data.get("response_format") if isinstance(data.get("response_format"), dict) else {}
    mode = response_format.get("type") if response_format.get("type") in JSON_MODES else "text"
    spec = response_format.get("json_schema") if isinstance(response_format.get("json_schema"), dict) else {}
    messages = data.get("messages") if isinstance(data.get("messages"), list) else []
    options = data.get("stream_options") if isinstance(data.get("stream_options"), dict) else {}
    top = data.get("top_logprobs")
    return Ask(
        model=data["model"] if isinstance(data.get("model"), str) else DEFAULT_MODEL,
        n=min(max(data["n"], 1), 128) if _is_int(data.get("n")) else 1,
        limit=min(limits) if limits else None,
        stops=tuple(s for s in stops if isinstance(s, str) and s),
        functions=functions,
        call=_function_to_call(data, functions),
        response_format=mode,
        schema=spec.get("schema") if isinstance(spec.get("schema"), dict) else {},
        prompt_tokens=max(1, sum(_words(_message_text(m)) for m in messages)),
        stream=data.get("stream") is True,
        include_usage=options.get("include_usage") is True,
        logprobs=data.get("logprobs") is True,
        top_logprobs=min(max(top, 0), 20) if _is_int(top) else 0,
        sampled=_is_number(data.get("temperature")) and data["temperature"] >= 1,
    )


def _full_text(ask: Ask) -> str:
    if ask.response_format == "json_object":
        return json.dumps({"answer": ask.answer}, ensure_ascii=False)
    if ask.response_format == "json_schema":
        return json.dumps(minimal_instance(ask.schema))
    return ask.answer


def generate_text(ask: Ask) -> tuple[str, str]:
    """(content, finish_reason): the fixed text cut at the first stop string, then at ``limit`` words."""
    text = _full_text(ask)
    cuts = [text.find(s) for s in ask.stops if s in text]
    if cuts:
        text = text[: min(cuts)]
    if ask.limit is not None and _words(text) > ask.limit:
        return _first_words(text, ask.limit), "length"
    return text, "stop"


def _tool_call(function: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"call_{_alnum(24)}",
        "type": "function",
        "function": {
            "name": function["name"],
            "arguments": json.dumps(minimal_instance(function.get("parameters"))),
        },
    }


def _tokens(text: str) -> list[str]:
    """Words with their trailing whitespace: they concatenate back to ``text``."""
    return re.findall(r"\s*\S+\s*", text) if text.strip() else ([text] if text else [])


def _logprobs(text: str, top: int) -> dict[str, Any]:
    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    content = [
        {
            **entry(t, 0.0),
            "top_logprobs": [entry(t, 0.0)] + [entry(f"alt{j}", -10.0 - j) for j in range(1, top)],
        }
        if top
        else {**entry(t, 0.0), "top_logprobs": []}
        for t in _tokens(text)
    ]
    return {"content": content, "refusal": None}


def _honour_capabilities(completion: Completion, data: Json) -> None:
    """What the conformant double also honours when asked, as OpenAI documents each: the tier echoed, reasoning,
    predicted outputs, audio output and web-search citations counted or returned."""
    if not isinstance(data, dict):
        return
    usage = completion.get("usage")
    details = usage.get("completion_tokens_details") if isinstance(usage, dict) else None
    if isinstance(data.get("service_tier"), str):
        completion["service_tier"] = "default" if data["service_tier"] == "auto" else data["service_tier"]
    if data.get("reasoning_effort") in ("low", "medium", "high", "xhigh", "max") and isinstance(details, dict):
        details["reasoning_tokens"] = THOUGHT_TOKENS
        usage["completion_tokens"] += THOUGHT_TOKENS
        usage["total_tokens"] += THOUGHT_TOKENS
    prediction = data.get("prediction")
    if isinstance(prediction, dict) and isinstance(details, dict):
        details["accepted_prediction_tokens"] = max(1, _words(str(prediction.get("content", ""))))
    for choice in _choices(completion):
        message = choice["message"]
        if isinstance(data.get("modalities"), list) and "audio" in data["modalities"]:
            transcript = message.get("content") or ""
            message["audio"] = {"id": "audio_1", "data": SIGNATURE, "expires_at": 1, "transcript": transcript}
        if isinstance(data.get("web_search_options"), dict):
            url = {"start_index": 0, "end_index": 4, "url": "https://example.com/", "title": "Example"}
            message["annotations"] = [{"type": "url_citation", "url_citation": url}]


def _cache_prompt(server: Server, scenario: str, completion: Completion, data: Json) -> None:
    """A prompt sent again with the same ``prompt_cache_key`` is read from the cache: ``cached_tokens`` counts it."""
    if not isinstance(data, dict) or not isinstance(data.get("prompt_cache_key"), str):
        return
    key = json.dumps([scenario, data["prompt_cache_key"], data.get("messages")], sort_keys=True).encode()
    usage = completion.get("usage")
    if not server.first_time(b"prompt-cache\n" + key) and isinstance(usage, dict):
        usage["prompt_tokens_details"]["cached_tokens"] = usage["prompt_tokens"]


def _calls_every_tool(completion: Completion, data: dict[str, Any]) -> None:
    """``params-ignored`` with tools and ``parallel_tool_calls: false``: a call to each tool, as if allowed."""
    if data.get("parallel_tool_calls") is not False or not isinstance(data.get("tools"), list):
        return
    functions = [t["function"] for t in data["tools"] if isinstance(t, dict) and isinstance(t.get("function"), dict)]
    for choice in _choices(completion):
        calls = [_tool_call(f) for f in functions]
        calls += [{**calls[0], "id": f"call_{_alnum(24)}"}] if len(calls) == 1 else []
        choice["message"].update(content=None, tool_calls=calls)
        choice["finish_reason"] = "tool_calls"


def build_completion(ask: Ask) -> Completion:
    """The conformant ``chat.completion`` for ``ask``, with exactly the members OpenAI documents."""
    choices = []
    completion_tokens = 0
    for index in range(ask.n):
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        logprobs = None
        if ask.call is not None:
            call = _tool_call(ask.call)
            message["tool_calls"] = [call]
            finish = "tool_calls"
            arguments = call["function"]["arguments"]
            used = max(1, _words(call["function"]["name"]) + _words(arguments))
            if ask.limit is not None and used > ask.limit:
                # Cut where the limit falls, as a model is: the call is half written and the answer says length.
                call["function"]["arguments"] = arguments[: max(0, len(arguments) * (ask.limit - 1) // used)]
                finish = "length"
            completion_tokens += min(used, ask.limit) if ask.limit else used
        else:
            sample = replace(ask, answer=f"{ask.answer} ({index + 1})") if ask.sampled and index else ask
            message["content"], finish = generate_text(sample)
            completion_tokens += _words(message["content"])
            if ask.logprobs:
                logprobs = _logprobs(message["content"], ask.top_logprobs)
        choices.append({"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish})
    return {
        "id": f"chatcmpl-{_alnum(24)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ask.model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": {
            "prompt_tokens": ask.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": ask.prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    }


def _fragments(arguments: Any) -> list[str]:
    """The arguments string in 3 or 4 pieces (one per character when shorter than 3)."""
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    size = max(1, math.ceil(len(arguments) / 4))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def _deltas(choice: dict[str, Any], ask: Ask) -> list[dict[str, Any]]:
    """One choice's stream entries ({index, delta, logprobs, finish_reason}), in OpenAI's order."""
    index, message = choice.get("index"), choice.get("message") or {}
    content = message.get("content")
    calls = message.get("tool_calls") or []
    text = content if isinstance(content, str) else ""
    entries: list[dict[str, Any]] = []

    def add(delta: dict[str, Any], logprobs: Any = None, finish: Any = None) -> None:
        entries.append({"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish})

    add({"role": message.get("role", "assistant"), "content": "" if isinstance(content, str) else None})
    for token in _tokens(text):
        add({"content": token}, _logprobs(token, ask.top_logprobs) if ask.logprobs else None)
    for k, call in enumerate(calls):
        function = call.get("function") or {}
        head = {"index": k, "id": call.get("id"), "type": "function"}
        head["function"] = {"name": function.get("name"), "arguments": ""}
        if k == 0 and not text:
            entries[0]["delta"]["tool_calls"] = [head]
        else:
            add({"tool_calls": [head]})
        for piece in _fragments(function.get("arguments", "")):
            add({"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
    add({}, finish=choice.get("finish_reason"))
    return entries


def stream_chunks(completion: Completion, ask: Ask) -> list[dict[str, Any]]:
    """The answer as OpenAI's ``chat.completion.chunk`` list: choices interleaved, then the usage chunk."""
    head = {
        "id": completion.get("id"),
        "object": "chat.completion.chunk",
        "created": completion.get("created"),
        "model": completion.get("model"),
        "system_fingerprint": completion.get("system_fingerprint"),
    }
    per_choice = [_deltas(choice, ask) for choice in _choices(completion)]
    chunks = []
    for step in itertools.zip_longest(*per_choice):
        for entry in step:
            if entry is not None:
                chunks.append({**head, "choices": [entry]})
    if ask.include_usage:
        for chunk in chunks:
            chunk["usage"] = None
        chunks.append({**head, "choices": [], "usage": completion.get("usage")})
    return chunks


# ------------------------------------------------------------------------------------ defects
# Each answer defect mutates the conformant completion in place; it is a no-op where its subject is absent
# (a tool defect on a text answer, a JSON defect without response_format). They run in table order, whatever
# the order in the URL, so content changes happen before the choices or usage are broken.


def _choices(completion: Completion) -> list[dict[str, Any]]:
    choices = completion.get("choices")
    return choices if isinstance(choices, list) else []


def _calls(completion: Completion) -> Iterator[dict[str, Any]]:
    for choice in _choices(completion):
        yield from choice["message"].get("tool_calls") or []


def _json_contents(completion: Completion, ask: Ask) -> Iterator[dict[str, Any]]:
    """The messages whose content is the JSON a response_format asked for."""
    if ask.response_format in JSON_MODES:
        for choice in _choices(completion):
            if isinstance(choice["message"].get("content"), str):
                yield choice["message"]


def _parameters(ask: Ask, name: str) -> Json:
    return next((f.get("parameters") for f in ask.functions if f["name"] == name), None)


def _tool_choice_ignored(completion: Completion, ask: Ask) -> None:
    for choice in _choices(completion):
        if choice["message"].pop("tool_calls", None) is not None:
            choice["message"]["content"], choice["finish_reason"] = ANSWER, "stop"


def _tool_undeclared(completion: Completion, ask: Ask) -> None:
    declared = {f["name"] for f in ask.functions}
    name = next(n for n in (f"undeclared_function{i or ''}" for i in range(len(declared) + 1)) if n not in declared)
    for call in _calls(completion):
        call["function"]["name"] = name


def _tool_args_schema(completion: Completion, ask: Ask) -> None:
    for call in _calls(completion):
        parameters = _parameters(ask, call["function"]["name"])
        call["function"]["arguments"] = json.dumps(violating_instance(parameters if parameters else {}))


def _tool_ids_duplicate(completion: Completion, ask: Ask) -> None:
    calls = list(_calls(completion))
    for choice in _choices(completion):
        if choice["message"].get("tool_calls"):
            choice["message"]["tool_calls"].append(copy.deepcopy(choice["message"]["tool_calls"][0]))
    for call in _calls(completion):
        if calls:
            call["id"] = calls[0]["id"]


def _set_arguments(value: Any) -> Callable[[Completion, Ask], None]:
    def change(completion: Completion, ask: Ask) -> None:
        for call in _calls(completion):
            call["function"]["arguments"] = value

    return change


def _set_call_id(value: str) -> Callable[[Completion, Ask], None]:
    def change(completion: Completion, ask: Ask) -> None:
        for call in _calls(completion):
            call["id"] = value

    return change


def _tool_args_object(completion: Completion, ask: Ask) -> None:
    for call in _calls(completion):
        call["function"]["arguments"] = json.loads(call["function"]["arguments"])


def _reformat_json(template: str) -> Callable[[Completion, Ask], None]:
    def change(completion: Completion, ask: Ask) -> None:
        for message in _json_contents(completion, ask):
            message["content"] = template.format(message["content"])

    return change


def _json_schema_invalid(completion: Completion, ask: Ask) -> None:
    if ask.response_format == "json_schema":
        for message in _json_contents(completion, ask):
            message["content"] = json.dumps(violating_instance(ask.schema))


_huge_text: list[str] = []


def _huge(completion: Completion, ask: Ask) -> None:
    if not _huge_text:
        _huge_text.append(("lorem ipsum " * (HUGE_BYTES // 12 + 1))[:HUGE_BYTES])
    for choice in _choices(completion):
        choice["message"]["content"] = _huge_text[0]


def _content_array(completion: Completion, ask: Ask) -> None:
    for choice in _choices(completion):
        if isinstance(choice["message"].get("content"), str):
            choice["message"]["content"] = [{"type": "text", "text": choice["message"]["content"]}]


def _content_missing(completion: Completion, ask: Ask) -> None:
    for choice in _choices(completion):
        choice["message"]["content"] = None
        choice["message"].pop("tool_calls", None)
        choice["finish_reason"] = "stop"


def _each_choice(change: Callable[[int, dict[str, Any]], None]) -> Callable[[Completion, Ask], None]:
    def apply(completion: Completion, ask: Ask) -> None:
        for position, choice in enumerate(_choices(completion)):
            change(position, choice)

    return apply


def _finish_stop_with_tools(position: int, choice: dict[str, Any]) -> None:
    if choice["message"].get("tool_calls"):
        choice["finish_reason"] = "stop"


def _no_nullable(position: int, choice: dict[str, Any]) -> None:
    choice.pop("logprobs", None)
    choice["message"].pop("refusal", None)


def _set_top(key: str, value: Callable[[Completion], Any]) -> Callable[[Completion, Ask], None]:
    def change(completion: Completion, ask: Ask) -> None:
        completion[key] = value(completion)

    return change


def _drop_top(key: str) -> Callable[[Completion, Ask], None]:
    def change(completion: Completion, ask: Ask) -> None:
        completion.pop(key, None)

    return change


def _usage(change: Callable[[dict[str, Any]], None]) -> Callable[[Completion, Ask], None]:
    def apply(completion: Completion, ask: Ask) -> None:
        if isinstance(completion.get("usage"), dict):
            change(completion["usage"])

    return apply


def _created_string_from_n2(completion: Completion, ask: Ask) -> None:
    if ask.n >= 2:  # streams never get here: the defect is not in STREAMED_ANSWER_DEFECTS
        completion["created"] = str(completion["created"])


def _google_total(usage: dict[str, Any]) -> None:
    usage["completion_tokens_details"]["reasoning_tokens"] = 5
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"] + 5


ANSWER_DEFECTS: dict[str, Callable[[Completion, Ask], None]] = {
    # tools (no-ops on text answers)
    "tool-choice-ignored": _tool_choice_ignored,
    "tool-undeclared": _tool_undeclared,
    "tool-args-invalid-json": _set_arguments("{city: Paris"),
    "tool-args-object": _tool_args_object,
    "tool-args-schema": _tool_args_schema,
    "tool-args-array": _set_arguments("[]"),
    "tool-id-empty": _set_call_id(""),
    "tool-ids-duplicate": _tool_ids_duplicate,
    # structured output (no-ops without a JSON response_format)
    "json-fenced": _reformat_json("```json\n{}\n```"),
    "json-prose": _reformat_json("Here is the JSON: {}"),
    "json-schema-invalid": _json_schema_invalid,
    "json-not-object": _reformat_json("[1, 2]"),
    # message content
    "huge": _huge,
    "content-array": _content_array,
    "content-missing": _content_missing,
    "role-wrong": _each_choice(lambda i, choice: choice["message"].update(role="model")),
    "finish-invalid": _each_choice(lambda i, choice: choice.update(finish_reason=choice["finish_reason"].upper())),
    "finish-stop-with-tools": _each_choice(_finish_stop_with_tools),
    "index-wrong": _each_choice(lambda i, choice: choice.update(index=i + 1)),
    "no-nullable": _each_choice(_no_nullable),
    # choices
    "n-ignored": _set_top("choices", lambda completion: _choices(completion)[:1]),
    "choices-empty": _set_top("choices", lambda completion: []),
    "choices-missing": _drop_top("choices"),
    # top-level members
    "id-null": _set_top("id", lambda completion: None),
    "id-no-prefix": _set_top("id", lambda completion: f"resp-{_alnum(24)}"),
    "created-string": _set_top("created", lambda completion: str(completion["created"])),
    "fuzz-created-string-n2": _created_string_from_n2,
    "object-wrong": _set_top("object", lambda completion: "chat.completion.chunk"),
    # usage
    "usage-missing": _drop_top("usage"),
    "usage-negative": _usage(lambda usage: usage.update(completion_tokens=-1)),
    "usage-total-wrong": _usage(lambda usage: usage.update(total_tokens=usage["total_tokens"] + 7)),
    "usage-google-total": _usage(_google_total),
}


STREAMED_ANSWER_DEFECTS = frozenset(
    {
        "finish-stop-with-tools",
        "finish-invalid",
        "tool-undeclared",
        "tool-args-invalid-json",
        "tool-args-schema",
        "tool-args-array",
        "tool-id-empty",
        "tool-ids-duplicate",
        "tool-choice-ignored",
        "json-fenced",
        "json-prose",
        "json-schema-invalid",
        "json-not-object",
        "content-missing",
        "n-ignored",
        "id-null",
        "id-no-prefix",
        "usage-negative",
        "usage-total-wrong",
        "usage-google-total",
    }
)
"""The answer defects a stream is built with; the module docstring says why the others are left out."""


# ------------------------------------------------------------------------------------ streams
# A stream is made in four steps, each with its own defects: the chunk list (CHUNK_DEFECTS), the events as
# ("data", payload) or ("raw", line) blocks (EVENT_DEFECTS), their rendering (FRAMINGS) and the writes
# (STREAM_WRITES, read by _writes).

Chunks = list[dict[str, Any]]
Block = tuple[str, str]


def _entries(chunks: Chunks) -> Iterator[dict[str, Any]]:
    for chunk in chunks:
        yield from chunk["choices"]


def _tool_entries(chunks: Chunks) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(choice entry, tool-call delta) pairs, in stream order."""
    for entry in _entries(chunks):
        for call in entry["delta"].get("tool_calls") or []:
            yield entry, call


def _middle(items: list[Any]) -> int:
    return max(1, len(items) // 2)


def _chunk_schema(chunks: Chunks, ask: Ask) -> None:
    chunk = chunks[_middle(chunks) - 1]
    chunk["created"] = str(chunk["created"])


def _id_changes(chunks: Chunks, ask: Ask) -> None:
    other = f"chatcmpl-{_alnum(24)}"
    for chunk in chunks[_middle(chunks) :]:
        chunk["id"] = other


def _index_wrong(chunks: Chunks, ask: Ask) -> None:
    for entry in _entries(chunks):
        entry["index"] += 1


def _no_finish(chunks: Chunks, ask: Ask) -> None:
    for entry in _entries(chunks):
        entry["finish_reason"] = None


def _role_wrong(chunks: Chunks, ask: Ask) -> None:
    for entry in _entries(chunks):
        if "role" in entry["delta"]:
            entry["delta"]["role"] = "model"


def _finish_key_absent(chunks: Chunks, ask: Ask) -> None:
    for entry in _entries(chunks):
        if entry["finish_reason"] is None:
            del entry["finish_reason"]


def _role_every(chunks: Chunks, ask: Ask) -> None:
    for entry in _entries(chunks):
        entry["delta"] = {"role": "assistant", **entry["delta"]}


def _tool_no_index(chunks: Chunks, ask: Ask) -> None:
    for _, call in _tool_entries(chunks):
        call.pop("index", None)


def _tool_index_changes(chunks: Chunks, ask: Ask) -> None:
    """Vertex's documented shape: every fragment repeats id, type and name, and the index moves on."""
    heads: dict[tuple[Any, Any], dict[str, Any]] = {}
    counts: dict[tuple[Any, Any], int] = {}
    for entry, call in _tool_entries(chunks):
        key = (entry["index"], call.get("index"))
        if "id" in call:
            heads[key] = {"id": call["id"], "type": call.get("type"), "name": call["function"].get("name")}
        head = heads.get(key, {})
        arguments = call["function"].get("arguments", "")
        position = counts[key] = counts.get(key, -1) + 1
        call.clear()
        call.update(index=position, id=head.get("id"), type=head.get("type"))
        call["function"] = {"name": head.get("name"), "arguments": arguments}


def _take_usage(chunks: Chunks) -> Any:
    """Remove OpenAI's usage chunk and the null placeholders; the usage, or _MISSING when there was none."""
    if not chunks or chunks[-1]["choices"] or "usage" not in chunks[-1]:
        return _MISSING
    usage = chunks.pop()["usage"]
    for chunk in chunks:
        chunk.pop("usage", None)
    return usage


def _usage_on_final(chunks: Chunks, ask: Ask) -> None:
    usage = _take_usage(chunks)
    if usage is not _MISSING:
        last = next((c for c in reversed(chunks) if any(e.get("finish_reason") for e in c["choices"])), chunks[-1])
        last["usage"] = usage


def _usage_every(chunks: Chunks, ask: Ask) -> None:
    usage = _take_usage(chunks)
    if usage is not _MISSING:
        for chunk in chunks:
            chunk["usage"] = copy.deepcopy(usage)


def _usage_missing(chunks: Chunks, ask: Ask) -> None:
    _take_usage(chunks)


# Chunk defects change the chunk list, in table order.
CHUNK_DEFECTS: dict[str, Callable[[Chunks, Ask], None]] = {
    "stream-chunk-schema": _chunk_schema,
    "stream-id-changes": _id_changes,
    "stream-index-wrong": _index_wrong,
    "stream-no-finish": _no_finish,
    "stream-role-wrong": _role_wrong,
    # Google's documented or observed shapes
    "stream-finish-key-absent": _finish_key_absent,
    "stream-role-every": _role_every,
    "stream-tool-index-changes": _tool_index_changes,
    "stream-tool-no-index": _tool_no_index,
    "stream-usage-on-final": _usage_on_final,
    "stream-usage-every": _usage_every,
    "stream-usage-missing": _usage_missing,
}

RAW_ERROR = '{"error": {"message": "upstream cancelled", "code": 499}}'
ERROR_EVENT = '{"error": {"message": "quota exceeded", "type": "server_error"}}'
BAD_LINE = "oops this is not a field"


def _insert(block: Block) -> Callable[[list[Block]], list[Block]]:
    def change(blocks: list[Block]) -> list[Block]:
        at = _middle(blocks)
        return [*blocks[:at], block, *blocks[at:]]

    return change


def _after_done(blocks: list[Block]) -> list[Block]:
    last = next((b for b in reversed(blocks) if b[0] == "data" and b[1] != "[DONE]"), ("data", "{}"))
    return [*blocks, last]


# Event defects change the list of events, [DONE] included, in table order.
EVENT_DEFECTS: dict[str, Callable[[list[Block]], list[Block]]] = {
    "stream-not-json": _insert(("data", "{not json")),
    "stream-error-event": _insert(("data", ERROR_EVENT)),
    "stream-bad-line": _insert(("raw", BAD_LINE)),
    "stream-no-done": lambda blocks: [b for b in blocks if b != ("data", "[DONE]")],
    # after the answer's events, in place of [DONE]: so the finish_reason and usage still arrive
    "stream-raw-error": lambda blocks: [*(b for b in blocks if b != ("data", "[DONE]")), ("raw", RAW_ERROR)],
    "stream-after-done": _after_done,
}

FRAMINGS: frozenset[str] = frozenset(
    {
        "sse-crlf",
        "sse-cr",
        "sse-comments",
        "sse-multiline-data",
        "sse-bom",
        "sse-fields",
        "sse-no-space",
        "sse-bytewise",
        "sse-split-utf8",
        "sse-final-unterminated",
    }
)
"""Legal ways to frame the conformant stream; a scenario may combine them with each other and with defects."""

# Defects in how the stream is written; _writes and stream_reply read these names.
STREAM_WRITES = {
    "stream-content-type": "content-type text/plain",
    "stream-drop": "the connection closes in the middle of an event, without the chunked terminator",
    "stream-stall": f"the first two events, then {STALL_SECONDS:g} s of silence before the rest",
    "stream-endless": "content deltas without end, until the client hangs up",
    "stream-late-start": f"the headers at once, then {QUEUED_SECONDS:g} s of silence before the first event",
}


def _data_lines(payload: str, multiline: bool) -> list[str]:
    if multiline:
        with contextlib.suppress(ValueError):
            return json.dumps(json.loads(payload), indent=2, ensure_ascii=False).split("\n")
    return [payload]


def _with_last(items: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """Each item, and whether it is the last one (an endless iterable never has a last one)."""
    iterator = iter(items)
    current = next(iterator, _MISSING)
    while current is not _MISSING:
        following = next(iterator, _MISSING)
        yield current, following is _MISSING
        current = following


def _render(blocks: Iterable[Block], names: set[str]) -> Iterator[bytes]:
    """Each block as the bytes of one event, framed as the ``sse-*`` names in ``names`` say."""
    eol = "\r" if "sse-cr" in names else "\r\n" if "sse-crlf" in names else "\n"
    colon = "data:" if "sse-no-space" in names else "data: "
    fields, comments = "sse-fields" in names, "sse-comments" in names
    for number, ((kind, text), last) in enumerate(_with_last(blocks)):
        lines = [":"] if number == 0 and comments else []
        if kind == "raw":
            lines.append(text)
        else:
            if comments:
                lines.append(": keep-alive")
            if fields:
                lines += ["event: message", f"id: {number}"] + (["retry: 1000"] if number == 0 else [])
            lines += [colon + line for line in _data_lines(text, "sse-multiline-data" in names)]
        blank = "" if last and "sse-final-unterminated" in names else eol
        bom = "\ufeff" if number == 0 and "sse-bom" in names else ""
        yield (bom + "".join(line + eol for line in lines) + blank).encode()


def _split_utf8(event: bytes) -> Iterator[bytes]:
    """The event in pieces, each cut just after the first byte of a multi-byte character."""
    start = 0
    for at in range(1, len(event)):
        if event[at - 1] >= 0xC0 and 0x80 <= event[at] < 0xC0:
            yield event[start:at]
            start = at
    yield event[start:]


def _writes(events: Iterable[bytes], names: set[str]) -> Iterator[bytes | float]:
    for number, event in enumerate(events):
        if number and "stream-endless" not in names:
            yield STREAM_PAUSE
        if number == 0 and "stream-late-start" in names:
            yield QUEUED_SECONDS
        if number == 2 and "stream-stall" in names:
            yield STALL_SECONDS
        if "sse-bytewise" in names:
            yield from (event[i : i + 1] for i in range(len(event)))
        elif "sse-split-utf8" in names:
            yield from _split_utf8(event)
        else:
            yield event


def _endless(chunk: dict[str, Any], ask: Ask) -> Iterator[Block]:
    for token in itertools.cycle(_tokens(ask.answer) or ["more "]):
        entry = {"index": 0, "delta": {"content": token}, "logprobs": None, "finish_reason": None}
        yield "data", json.dumps({**chunk, "choices": [entry]}, ensure_ascii=False)


def stream_reply(
    completion: Completion,
    ask: Ask,
    names: set[str],
    google: Google | None = None,
    pieces: dict[int, list[tuple[str, bool]]] | None = None,
) -> Reply:
    """The (possibly defective) answer as an SSE stream, with the stream parts of the scenario applied.

    With ``google``, the chunks are that surface's (``google_chunks``, from the content ``pieces``), not OpenAI's.
    """
    chunks = stream_chunks(completion, ask) if google is None else google_chunks(completion, ask, google, pieces or {})
    for name, change in CHUNK_DEFECTS.items():
        if name in names:
            change(chunks, ask)
    blocks: list[Block] = [("data", json.dumps(c, ensure_ascii=False)) for c in chunks] + [("data", "[DONE]")]
    for name, rewrite in EVENT_DEFECTS.items():
        if name in names:
            blocks = rewrite(blocks)
    source: Iterable[Block] = blocks
    if "stream-endless" in names and chunks:
        source = itertools.chain(blocks[:1], _endless({k: v for k, v in chunks[0].items() if k != "choices"}, ask))
    events: Iterable[bytes] = _render(source, names)
    if "stream-drop" in names:
        written = list(events)
        cut = written[_middle(written)]
        events = [*written[: _middle(written)], cut[: len(cut) // 2]]
    return Reply(
        200,
        content_type="text/plain" if "stream-content-type" in names else "text/event-stream",
        headers={"Cache-Control": "no-cache"},
        stream=_writes(events, names),
        terminated="stream-drop" not in names,
    )


def _bytes_of(items: Iterable[bytes | float]) -> Iterator[bytes]:
    return (item for item in items if isinstance(item, bytes))


def _invalid_utf8_stream(items: Iterable[bytes | float]) -> Iterator[bytes | float]:
    """The writes, with b"\xff\xfe" written right after the first '": "', however the bytes were split."""
    tail, done = b"", False
    for item in items:
        if done or not isinstance(item, bytes):
            yield item
            continue
        seen = tail + item
        at = seen.find(b'": "')
        if at < 0:
            tail = seen[-3:]
            yield item
            continue
        cut = at + 4 - len(tail)
        yield from (item[:cut], b"\xff\xfe", item[cut:])
        done = True


def _invalid_utf8(reply: Reply) -> Reply:
    if reply.stream is not None:
        return replace(reply, stream=_invalid_utf8_stream(reply.stream))
    start = reply.body.find(b'": "')
    at = start + 4 if start >= 0 else 0
    return replace(reply, body=reply.body[:at] + b"\xff\xfe" + reply.body[at:])


def _truncated_stream(items: Iterable[bytes | float]) -> Iterator[bytes | float]:
    written = list(items)
    left = sum(len(b) for b in _bytes_of(written)) // 2
    for item in written:
        if isinstance(item, bytes):
            if left <= 0:
                return
            item, left = item[:left], left - len(item)
        yield item


def _truncated(reply: Reply) -> Reply:
    if reply.stream is not None:
        return replace(reply, stream=_truncated_stream(reply.stream))
    return replace(reply, body=reply.body[: len(reply.body) // 2])


# HTTP-level defects rewrite the successful reply (JSON or SSE), after the answer defects.
WIRE_DEFECTS: dict[str, Callable[[Reply], Reply]] = {
    "invalid-utf8": _invalid_utf8,
    "truncated": _truncated,
    "content-type-text": lambda reply: replace(reply, content_type="text/plain"),
    "html": lambda reply: Reply(200, b"<html><body>Bad gateway</body></html>", "text/html"),
}


def _openai_error(error: ApiError) -> Reply:
    body = {"message": error.message, "type": error.type, "param": error.param, "code": error.code}
    return _json_reply(error.status, {"error": body})


GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
}
VLLM_TYPE = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 429: "RateLimitError"}


def _html_page(status: int) -> bytes:
    title = f"{status} {HTTPStatus(status).phrase}"
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>".encode()


# Error defects change how a 4xx is written (at most one per scenario); 5xx stay in OpenAI's shape.
ERROR_STYLES: dict[str, Callable[[ApiError], Reply]] = {
    "error-google": lambda e: _json_reply(
        e.status,
        [
            {
                "error": {
                    "code": e.status,
                    "message": e.message,
                    "status": GOOGLE_STATUS.get(e.status, "INVALID_ARGUMENT"),
                }
            }
        ],
    ),
    "error-vllm": lambda e: _json_reply(
        e.status,
        {
            "object": "error",
            "message": e.message,
            "type": VLLM_TYPE.get(e.status, "BadRequestError"),
            "param": None,
            "code": e.status,
        },
    ),
    "error-llamacpp": lambda e: _json_reply(
        e.status, {"error": {"code": e.status, "message": e.message, "type": e.type}}
    ),
    "error-text": lambda e: Reply(e.status, HTTPStatus(e.status).phrase.encode(), "text/plain"),
    "error-html": lambda e: Reply(e.status, _html_page(e.status), "text/html"),
    "error-empty": lambda e: Reply(e.status, b"", None),
    "error-no-message": lambda e: _json_reply(e.status, {"error": {"type": e.type}}),
}


# ------------------------------------------------------------------------------------ Google's surfaces
# The answer of a Google surface is built by google_completion (and streamed by google_chunks) instead of
# build_completion; the OpenAI answer defects still apply to it afterwards, and the google-* defects change how
# it is built. Sources: /work/shared/notes/api-surface.md, sections 2.2, 6, 7, 8, 9 and 10.

SURFACES: dict[str, str] = {
    "vertex": "Gemini on Vertex AI's OpenAI-compatible endpoint, as Google's documentation shows it",
    "gemini": "the Gemini API's OpenAI compatibility layer, as Google documents it and users observed it",
}

GOOGLE_DEFECTS: dict[str, str] = {
    "google-ignore-extensions": "extra_body.google's thinking settings are ignored: no thoughts, no tags",
    "google-tags-unbalanced": "the thoughts open a tag that is never closed",
    "google-text-before-thoughts": "the answer text comes first, then the tagged thoughts",
    "google-empty-answer": "only the tagged thoughts come back, nothing after them, with finish_reason stop",
    "google-thought-leak": "thoughts in tags (the marker's, or <thought>) although include_thoughts was not set",
    "google-signature-not-base64": 'thought_signature is "not base64!!"',
    "google-thought-not-bool": 'extra_content.google.thought is "yes" (on the message; on thought deltas)',
    "google-extra-content-misplaced": "extra_content sits on the choice object instead of the message",
    "google-traffic-type-wrong": 'usage.extra_properties.google.traffic_type is "FREE"',
}
"""Defects that change one thing in a Google surface's answer; a scenario with one needs vertex or gemini."""

THOUGHTS = "Some thoughts."
THOUGHT_TOKENS = 12  # the reasoning tokens reported when thoughts were asked for
SIGNATURE = base64.b64encode(b"test-double thought signature").decode()
BAD_SIGNATURE = "not base64!!"
UNTAGGED_END = "\n\n"  # after untagged thoughts, before the answer
# What the Gemini API's compatibility layer accepts at the top level; anything else gets 400 "Unknown name".
GEMINI_FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "n",
        "stop",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
        "tools",
        "tool_choice",
        "reasoning_effort",
        "modalities",
        "extra_body",
    }
)


@dataclass(frozen=True, slots=True)
class Google:
    """How a Google surface answers one request: read from its ``extra_body.google``, then changed by defects."""

    surface: str
    defects: frozenset[str] = frozenset()
    shown: bool = False  # thoughts in the content
    tag: str | None = None  # the tag name around them; None: untagged
    reasoning: int = 0  # reasoning tokens reported in usage, per choice


def read_google(surface: str, data: Json, defects: Iterable[str]) -> Google:
    """The thinking settings a surface honours: the literal ``extra_body.google`` (a top-level ``google`` never)."""
    names = frozenset(n for n in defects if n in GOOGLE_DEFECTS)
    extra = data.get("extra_body") if isinstance(data, dict) else None
    settings = extra.get("google") if isinstance(extra, dict) else None
    settings = settings if isinstance(settings, dict) else {}
    config = settings.get("thinking_config")
    config = config if isinstance(config, dict) else {}
    include = config.get("include_thoughts") is True
    budget = config.get("thinking_budget")
    # A Gemini model thinks (and counts it) with a budget, a level or a reasoning effort, shown or not.
    thinks = (
        include
        or (_is_int(budget) and budget > 0)
        or isinstance(config.get("thinking_level"), str)
        or (isinstance(data, dict) and data.get("reasoning_effort") in ("low", "medium", "high"))
    )
    marker = settings.get("thought_tag_marker")
    tag = "thought" if surface == "gemini" else marker if isinstance(marker, str) and marker else None
    if "google-ignore-extensions" in names:
        include = thinks = False
    shown = include
    if "google-thought-leak" in names and not shown:
        shown, tag = True, tag or "thought"
    return Google(surface, names, shown, tag, _thought_tokens(config) if thinks else 0)


_LEVELS = {"minimal": 3, "low": 6, "medium": 9, "high": THOUGHT_TOKENS}


def _thought_tokens(config: dict[str, Any]) -> int:
    """Reasoning tokens that move with the thinking asked for, as a Gemini model's do: fewer under a small budget
    (a budget of 384 or more, or no budget, gives THOUGHT_TOKENS) and at a lower level."""
    budget, level = config.get("thinking_budget"), config.get("thinking_level")
    if _is_int(budget) and budget > 0:
        return max(1, min(THOUGHT_TOKENS, budget // 32))
    if isinstance(level, str):
        return _LEVELS.get(level.lower(), THOUGHT_TOKENS)
    return THOUGHT_TOKENS


def _gemini_unknown(data: Json) -> str | None:
    """The Gemini API's message for the first member it does not know, or None."""
    if not isinstance(data, dict):
        return None
    for key in data:
        if key not in GEMINI_FIELDS:
            return f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
    extra = data.get("extra_body")
    for key in extra if isinstance(extra, dict) else {}:
        if key != "google":
            return f"Invalid JSON payload received. Unknown name \"{key}\" at 'extra_body': Cannot find field."
    return None


def google_shapes(data: Json) -> Json:
    """A copy of the body with Google's documented request shapes in OpenAI's, for ``validate``.

    A bare-string ``image_url`` becomes ``{"url": ...}``, and ``tool_choice: "validated"`` (Vertex's mode) is
    checked like ``required``; ``input_audio`` formats and ``gs://`` data are not validated anyway.
    """
    if not isinstance(data, dict):
        return data
    data = copy.deepcopy(data)
    for message in data.get("messages") if isinstance(data.get("messages"), list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and isinstance(part.get("image_url"), str):
                part["image_url"] = {"url": part["image_url"]}
    if data.get("tool_choice") == "validated":
        data["tool_choice"] = "required"
    return data


def _google_id() -> str:
    """A Gemini-style response id, like "bA-NacCPKoae_9MPsNCn6Qc"."""
    return secrets.token_urlsafe(17)


def google_pieces(answer: str, google: Google, thoughts: str = THOUGHTS) -> list[tuple[str, bool]]:
    """The content as (piece, is thought) in stream order; the pieces join to the non-streamed content.

    Pieces are words, cut also where the thoughts start and end; on Vertex each tag is cut in two as well
    ("<th", "ink>…"), since Google does not promise where a stream splits. With include_thoughts the Gemini API's
    closing tag comes at the start of the first answer piece, which is not a thought. Thoughts cut short by the
    token limit (shorter than ``THOUGHTS``) are never closed.
    """
    if not google.shown:
        return [(piece, False) for piece in _tokens(answer)]
    opening, closing = (f"<{google.tag}>", f"</{google.tag}>") if google.tag else ("", UNTAGGED_END)
    if "google-tags-unbalanced" in google.defects or thoughts != THOUGHTS:
        closing = ""
    start = len(answer) if "google-text-before-thoughts" in google.defects else 0
    end = start + len(opening) + len(thoughts)
    thoughts = opening + thoughts + closing
    content = answer + thoughts if start else thoughts + answer
    cuts = {0, len(content), start, end, *itertools.accumulate(len(t) for t in _tokens(content))}
    if google.surface == "vertex" and google.tag:
        cuts |= {m.start() + 3 for m in re.finditer(f"</?{re.escape(google.tag)}>", content)}
    bounds = sorted(cuts)
    return [(content[a:b], start <= a and b <= end) for a, b in itertools.pairwise(bounds) if b > a]


def google_completion(ask: Ask, google: Google) -> tuple[Completion, dict[int, list[tuple[str, bool]]]]:
    """The surface's ``chat.completion`` for ``ask``, and each text choice's content as stream pieces."""
    vertex = google.surface == "vertex"
    names = google.defects
    choices, pieces, completion_tokens = [], {}, 0
    for index in range(ask.n):
        message: dict[str, Any] = {"role": "assistant", "content": None}
        if ask.call is not None:
            call = _tool_call(ask.call)
            if vertex:
                call["id"] = f"function-call-{uuid.uuid4()}"
            signature = BAD_SIGNATURE if "google-signature-not-base64" in names else SIGNATURE
            call["extra_content"] = {"google": {"thought_signature": signature}}
            message["tool_calls"] = [call]
            finish = "tool_calls"
            used = max(1, _words(call["function"]["name"]) + _words(call["function"]["arguments"]))
            completion_tokens += min(used, ask.limit) if ask.limit else used
        else:
            # Thoughts count against the token limit (api-surface.md 2.3, 9.5): a small one cuts them short.
            spent = _words(THOUGHTS) if google.shown and ask.limit is not None else 0
            thoughts = THOUGHTS if not ask.limit or ask.limit > spent else _first_words(THOUGHTS, ask.limit)
            answer, finish = generate_text(replace(ask, limit=ask.limit - spent)) if spent else generate_text(ask)
            if thoughts != THOUGHTS:
                answer, finish = "", "length"
            if "google-empty-answer" in names and google.shown:
                answer, finish = "", "stop"
            pieces[index] = google_pieces(answer, google, thoughts)
            message["content"] = "".join(piece for piece, _ in pieces[index])
            completion_tokens += _words(answer)
        if "google-thought-not-bool" in names:
            message["extra_content"] = {"google": {"thought": "yes"}}
        choice: dict[str, Any] = {"index": index, "message": message}
        if vertex:
            choice["logprobs"] = None
        choice["finish_reason"] = finish
        if "google-extra-content-misplaced" in names:
            choice["extra_content"] = message.pop("extra_content", None) or {"google": {"thought_signature": SIGNATURE}}
        choices.append(choice)
    reasoning = google.reasoning * ask.n
    usage: dict[str, Any] = {
        "prompt_tokens": ask.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": ask.prompt_tokens + completion_tokens + reasoning,
    }
    if reasoning:
        usage["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    if vertex or "google-traffic-type-wrong" in names:
        traffic = "FREE" if "google-traffic-type-wrong" in names else "ON_DEMAND"
        usage["extra_properties"] = {"google": {"traffic_type": traffic}}
    completion: Completion = {
        "id": _google_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ask.model if vertex else ask.model.rsplit("/", 1)[-1],
    }
    if vertex:
        completion["system_fingerprint"] = ""
    completion.update(choices=choices, usage=usage)
    return completion, pieces


def _merge_google(delta: dict[str, Any], extra: Any) -> None:
    if isinstance(extra, dict):
        into = delta.setdefault("extra_content", {})
        for key, value in extra.items():
            into[key] = {**into.get(key, {}), **value} if isinstance(value, dict) else value


def google_chunks(
    completion: Completion, ask: Ask, google: Google, pieces: dict[int, list[tuple[str, bool]]]
) -> list[dict[str, Any]]:
    """The answer as the surface streams it: a delta per piece or tool call, ``role`` on each, the finish_reason
    key on the last only; usage on the last chunk (Vertex, always) or on every chunk (Gemini, with include_usage).
    """
    vertex = google.surface == "vertex"
    head = {k: completion.get(k) for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    if vertex:
        head["system_fingerprint"] = ""
    flag: Any = "yes" if "google-thought-not-bool" in google.defects else True
    per_choice = []
    for choice in _choices(completion):
        index, message = choice.get("index"), choice.get("message") or {}
        content = message.get("content")
        own = pieces.get(index) if isinstance(index, int) else None
        if own is None or not isinstance(content, str) or "".join(p for p, _ in own) != content:
            own = [(piece, False) for piece in _tokens(content if isinstance(content, str) else "")]
        deltas: list[dict[str, Any]] = []
        for text, thought in own:
            deltas.append({"role": "assistant", "content": text})
            if thought and not vertex:
                deltas[-1]["extra_content"] = {"google": {"thought": flag}}
        for k, call in enumerate(message.get("tool_calls") or []):
            deltas.append({"role": "assistant", "tool_calls": [{"index": k, **call}]})
        if not deltas:
            deltas.append({"role": "assistant", "content": content})
        _merge_google(deltas[0], message.get("extra_content"))
        entries = [{"index": index, "delta": delta} | ({"logprobs": None} if vertex else {}) for delta in deltas]
        entries[-1]["finish_reason"] = choice.get("finish_reason")
        if "extra_content" in choice:
            entries[0]["extra_content"] = choice["extra_content"]
        per_choice.append(entries)
    chunks = [
        {**head, "choices": [entry]}
        for step in itertools.zip_longest(*per_choice)
        for entry in step
        if entry is not None
    ]
    usage = completion.get("usage")
    if chunks and isinstance(usage, dict):
        if vertex:
            chunks[-1]["usage"] = usage
        elif ask.include_usage:
            for chunk in chunks:
                chunk["usage"] = copy.deepcopy(usage)
    return chunks


Write = Callable[[ApiError], Reply]


def _server_error(server: Server, received: Received, write: Write) -> Reply | None:
    return write(
        ApiError(500, "The server had an error while processing your request. Sorry about that!", "server_error")
    )


def _retry(status: int) -> Callable[[Server, Received, Write], Reply | None]:
    def answer(server: Server, received: Received, write: Write) -> Reply | None:
        if not server.first_time(received.path.encode() + b"\n" + received.body):
            return None
        if status == 429:
            error = ApiError(
                429,
                "Rate limit reached for requests. Please try again in 0s.",
                "requests",
                code="rate_limit_exceeded",
            )
        else:
            error = ApiError(503, "The server is overloaded. Please try again later.", "server_error")
        reply = write(error)
        reply.headers["Retry-After"] = "0"
        return reply

    return answer


def _beyond_bmp(text: str) -> bool:
    return any(ord(c) > 0xFFFF for c in text)


def _500_on_emoji(server: Server, received: Received, write: Write) -> Reply | None:
    try:
        data = json.loads(received.body)
    except (ValueError, RecursionError):
        return None
    messages = data.get("messages") if isinstance(data, dict) else None
    if not isinstance(messages, list) or not any(_beyond_bmp(_message_text(m)) for m in messages):
        return None
    return _server_error(server, received, write)


def _slow(server: Server, received: Received, write: Write) -> Reply | None:
    # Waiting on the closing event lets serve() return at once; the client has usually timed out long before.
    return Reply(0, reset=True) if server.closing.wait(SLOW_SECONDS) else None


def _queued(server: Server, received: Received, write: Write) -> Reply | None:
    # A server whose slots are all busy: nothing at all until one frees up, then the answer as usual.
    return Reply(0, reset=True) if server.closing.wait(QUEUED_SECONDS) else None


# Behaviours act before validation, in table order; a reply ends the request, None lets it go on.
BEHAVIOURS: dict[str, Callable[[Server, Received, Write], Reply | None]] = {
    "reset": lambda server, received, write: Reply(0, reset=True),
    "server-error": _server_error,
    "retry-429": _retry(429),
    "retry-503": _retry(503),
    "slow": _slow,
    "queued": _queued,
    "fuzz-500-on-emoji": _500_on_emoji,
}

# Flags read by respond() itself.
FLAGS = {
    "accept-all": "no validation: any body gets a 200 answer",
    "reject-valid": "valid requests get 400 with a well-formed OpenAI error body",
    "params-ignored": "takes every parameter but model, messages and stream, and ignores it (see PARAMS_KEPT)",
    "params-refused": "refuses every parameter but model and messages with a 400 that names them all",
}
PARAMS_KEPT = ("model", "messages", "stream")
COUNTING = ", ".join(str(i) for i in range(1, 21))
"""The answer of ``params-ignored``: longer than any probe's token limit, and holding every probe's stop string."""

DEFECTS: frozenset[str] = frozenset(
    [
        *ANSWER_DEFECTS,
        *WIRE_DEFECTS,
        *ERROR_STYLES,
        *BEHAVIOURS,
        *FLAGS,
        *CHUNK_DEFECTS,
        *EVENT_DEFECTS,
        *STREAM_WRITES,
        *GOOGLE_DEFECTS,
    ]
)
"""Every defect name a scenario may combine with ``+`` (and with the ``FRAMINGS`` and ``SURFACES``, which are
not defects)."""


def parse_scenario(scenario: str) -> tuple[list[str], str | None]:
    """(defect names, None), or ([], the 404 message) when the scenario names something unknown."""
    names = [n for n in scenario.split("+") if n != "ok"]
    known = DEFECTS | FRAMINGS | set(SURFACES)
    unknown = [n for n in names if n not in known]
    if unknown:
        hints = [
            f"'{n}' (did you mean '{close[0]}'?)" if (close := difflib.get_close_matches(n, known, 1)) else f"'{n}'"
            for n in unknown
        ]
        return (
            [],
            f"Unknown test-server defect {', '.join(hints)} in scenario '{scenario}'; known: "
            + ", ".join(["ok", *sorted(known)]),
        )
    if {"truncated", "stream-endless"} <= set(names):
        return [], f"Scenario '{scenario}': 'truncated' cannot cut an endless stream in half."
    styles = [n for n in names if n in ERROR_STYLES]
    if len(styles) > 1:
        return (
            [],
            f"Scenario '{scenario}' combines several error styles ({', '.join(styles)}); use at most one.",
        )
    surfaces = [n for n in names if n in SURFACES]
    if len(surfaces) > 1:
        return [], f"Scenario '{scenario}' names several Google surfaces ({', '.join(surfaces)}); use at most one."
    google = [n for n in names if n in GOOGLE_DEFECTS]
    if google and not surfaces:
        return (
            [],
            f"Scenario '{scenario}': {', '.join(google)} change a Google surface's answer; "
            f"add vertex or gemini (e.g. 'vertex+{google[0]}').",
        )
    return names, None


# ------------------------------------------------------------------------------------ HTTP


def respond(server: Server, method: str, received: Received) -> Reply:
    """Decide the reply to one request; all the scenario logic lives here, the handler only does I/O."""
    path = urlsplit(received.path).path
    route = ROUTE.fullmatch(path)
    scenario = route["scenario"] if route else path.strip("/").split("/")[0]
    defects, unknown = parse_scenario(scenario)
    if unknown and route:
        return _openai_error(ApiError(404, unknown))
    surface = next((n for n in defects if n in SURFACES), None)
    default_style = ERROR_STYLES["error-google"] if surface == "gemini" else _openai_error
    style = next((ERROR_STYLES[n] for n in defects if n in ERROR_STYLES), default_style)

    def write(error: ApiError) -> Reply:
        return style(error) if 400 <= error.status < 500 else _openai_error(error)

    if not route or method != "POST":
        return write(ApiError(404, f"Invalid URL ({method} {path})"))
    if server.api_key is not None and received.headers.get("authorization") != f"Bearer {server.api_key}":
        return write(ApiError(401, "Invalid API key", "authentication_error", code="invalid_api_key"))
    for name, behaviour in BEHAVIOURS.items():
        if name in defects and (reply := behaviour(server, received, write)) is not None:
            return reply
    try:
        data = parse_body(received.body)
        if "accept-all" not in defects:
            if surface == "gemini" and (refused := _gemini_unknown(data)):
                raise InvalidRequest(refused)
            validate(google_shapes(data) if surface else data)
    except InvalidRequest as invalid:
        if "accept-all" not in defects:
            return write(ApiError(invalid.status, invalid.message, param=invalid.param, code=invalid.code))
        data = None
    if "reject-valid" in defects:
        return write(ApiError(400, "This request was rejected by the test server's reject-valid defect."))
    if (
        "params-refused" in defects
        and isinstance(data, dict)
        and (extra := [k for k in data if k not in PARAMS_KEPT[:2]])
    ):
        return write(ApiError(400, f"Unrecognized request arguments supplied: {', '.join(extra)}", param=extra[0]))
    ignoring = "params-ignored" in defects and isinstance(data, dict)
    if ignoring:
        sent, data = data, {k: v for k, v in data.items() if k in PARAMS_KEPT}
    ask = read_ask(data)
    if "sse-split-utf8" in defects:
        ask = replace(ask, answer=UTF8_ANSWER)
    if ignoring:  # a seed ignored: every answer a new sample
        fresh = f" (sample {len(server.requests)})" if "seed" in sent else ""
        ask = replace(ask, answer=COUNTING + fresh, call=None)
    google = read_google(surface, data, defects) if surface else None
    completion, pieces = google_completion(ask, google) if google else (build_completion(ask), {})
    if ignoring:
        _calls_every_tool(completion, sent)
    elif not google:
        _honour_capabilities(completion, data)
        _cache_prompt(server, route["scenario"], completion, data)
    for name, change in ANSWER_DEFECTS.items():
        if name in defects and (not ask.stream or name in STREAMED_ANSWER_DEFECTS):
            change(completion, ask)
    reply = stream_reply(completion, ask, set(defects), google, pieces) if ask.stream else _json_reply(200, completion)
    for name, rewrite in WIRE_DEFECTS.items():
        if name in defects:
            reply = rewrite(reply)
    return reply


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chat-conformance-test-double"
    server: _HTTPServer

    def do_POST(self) -> None:
        self._handle()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``Server.requests`` instead."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while (size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)) > 0:
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():  # trailers
                pass
            return b"".join(parts)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return b""
        return self.rfile.read(length)

    def _handle(self) -> None:
        owner = self.server.owner
        arrived = time.monotonic()
        received = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, self._read_body(), arrived)
        owner.record(received)
        self._send(respond(owner, self.command, received))

    def _pause(self, seconds: float) -> bool:
        """Wait ``seconds``; False as soon as the client hangs up or the server closes."""
        owner = self.server.owner
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if owner.closing.is_set():
                return False
            readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            if readable:
                try:
                    hung_up = not self.connection.recv(1, socket.MSG_PEEK)
                except OSError:
                    return False
                # Anything else readable is a pipelined request: it waits for its turn.
                return not hung_up and not owner.closing.wait(max(0.0, deadline - time.monotonic()))
        return not owner.closing.is_set()

    def _send_stream(self, reply: Reply) -> None:
        assert reply.stream is not None
        owner = self.server.owner
        owner.stream_opened()
        finished = False
        try:
            with contextlib.suppress(OSError):  # small events go out at once, not after the client's ACK
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.send_response(reply.status)
            if reply.content_type is not None:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for item in reply.stream:
                if isinstance(item, bytes):
                    if item:  # an empty chunk would end the body
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(item), item))
                    if owner.closing.is_set():
                        break
                elif not self._pause(item):
                    break
            else:
                if reply.terminated:
                    self.wfile.write(b"0\r\n\r\n")
                    finished = True
        except OSError:  # the client hung up: stop writing
            pass
        finally:
            if not finished:
                self.close_connection = True
            owner.stream_closed()

    def _send(self, reply: Reply) -> None:
        if reply.stream is not None:
            self._send_stream(reply)
            return
        if reply.reset:
            self.close_connection = True
            # SO_LINGER 0: closing sends RST instead of FIN, so the client sees a reset connection.
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        try:
            self.send_response(reply.status)
            if reply.content_type is not None:
                self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)
        except OSError:  # the client went away (a timeout in a test): nothing to do
            self.close_connection = True


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: Server) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # a vanished client is expected; anything else is a bug
            super().handle_error(request, client_address)


class Server:
    """The running test double: ``url(scenario)`` gives a base URL, ``requests`` what arrived."""

    def __init__(self, api_key: str | None = None, port: int = 0) -> None:
        self.api_key = api_key
        self.requests: list[Received] = []
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._seen: set[str] = set()
        self._streams = 0
        self._httpd = _HTTPServer(("127.0.0.1", port), self)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="test-server", daemon=True)

    def __repr__(self) -> str:
        return f"<Server {self.base} test double>"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, scenario: str = "ok") -> str:
        """Base URL for ``scenario`` ("ok", or defects joined by "+"); POST to ``{url}/chat/completions``."""
        return f"{self.base}/{scenario}/v1"

    def record(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)

    @property
    def streams_open(self) -> int:
        """How many streamed answers are being written right now (a stalled or endless one included)."""
        with self._lock:
            return self._streams

    def stream_opened(self) -> None:
        with self._lock:
            self._streams += 1

    def stream_closed(self) -> None:
        with self._lock:
            self._streams -= 1

    def first_time(self, key: bytes) -> bool:
        """True the first time ``key`` is seen by this server (for the retry defects)."""
        digest = hashlib.sha256(key).hexdigest()
        with self._lock:
            if digest in self._seen:
                return False
            self._seen.add(digest)
            return True

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@contextlib.contextmanager
def serve(api_key: str | None = None, port: int = 0) -> Iterator[Server]:
    """Run the test double on 127.0.0.1 (a free port by default) for the duration of the block."""
    server = Server(api_key, port)
    server.start()
    try:
        yield server
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.servers",
        description="Run the chat-conformance TEST DOUBLE (not a real model server) in the foreground.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    args = parser.parse_args(argv)
    with serve(args.api_key, args.port) as server:
        sys.stdout.write(f"{server.url('ok')}\n")
        sys.stdout.write(
            f"other scenarios: {server.base}/<defect>[+<defect>...]/v1; defects: {', '.join(sorted(DEFECTS))}; "
            f"stream framings: {', '.join(sorted(FRAMINGS))}; Google surfaces: {', '.join(SURFACES)}\n"
        )
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
