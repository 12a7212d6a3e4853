"""Error answers: a refusal a client can read, in a shape it knows."""

from __future__ import annotations

from collections.abc import Iterator

from .. import schemas
from ..models import Exchange, Finding
from . import CheckContext, body, check

# Shapes real endpoints use, best known first: OpenAI's object, Google's one-element array, vLLM's object.
SHAPES = ("error-openai", "error-google", "error-vllm")


def _error_with_json(exchange: Exchange, context: CheckContext) -> bool:
    r = exchange.response
    return r is not None and r.status >= 400 and r.body_error is None


def _shape(exchange: Exchange) -> str | None:
    for name in SHAPES:
        if not schemas.validate(schemas.schema(name), body(exchange)):
            return name
    return None


@check(applies=_error_with_json)
def body_schema(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """An error status comes with an error body that says what went wrong (`error.message`)."""
    if _shape(exchange) is not None:
        return
    for error in schemas.validate(schemas.schema("error-openai"), body(exchange), "/response/body"):
        yield Finding(
            "errors.body_schema",
            error.pointer,
            f'the error body is not a well-formed error (expected OpenAI\'s {{"error": {{"message": …}}}}): '
            f"{error.message} (schema: {error.keyword} at {error.schema_path})",
        )


@check(applies=_error_with_json)
def openai_shape(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The error body is OpenAI's `{"error": {...}}` object, the one shape every OpenAI SDK can read."""
    shape = _shape(exchange)
    if shape == "error-google":
        yield Finding(
            "errors.openai_shape",
            "/response/body",
            "the error body is Google's one-element array [{\"error\": {code, message, status}}], not OpenAI's "
            "{\"error\": {…}} object: openai-node reports it as '(no body)'",
            "an object with 'error'",
            "array",
        )
    elif shape == "error-vllm":
        yield Finding(
            "errors.openai_shape",
            "/response/body",
            'the error body is the {"object": "error", "message": …} shape of vLLM-style servers, not '
            'OpenAI\'s {"error": {…}} object',
            "an object with 'error'",
            "object: error",
        )
