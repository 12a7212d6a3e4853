"""The HTTP layer: the status the case expects, and a body that says what it is."""

from __future__ import annotations

from collections.abc import Iterator

from ..models import Exchange, Finding
from . import CheckContext, check, short


def _answered(exchange: Exchange, context: CheckContext) -> bool:
    return exchange.response is not None


def _error_message(body: object) -> str | None:
    """The error text of any known error shape, to say why a request was refused."""
    if isinstance(body, list) and body:
        body = body[0]
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return None


@check(applies=_answered)
def status(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The status is the one the case expects: 200 by default, a 4xx for a negative case."""
    response = exchange.response
    assert response is not None
    if context.expect.accepts(response.status):
        return
    expected = " or ".join(context.expect.status)
    wanted = [int(s) if s.isdigit() else s for s in context.expect.status]
    reason = _error_message(response.body)
    if context.expect.negative and 200 <= response.status < 300:
        message = (
            f"the request is invalid and must be refused with {expected}; "
            f"the endpoint accepted it with {response.status}"
        )
    elif context.expect.negative:
        message = f"an invalid request must be refused with {expected}, not {response.status}"
    else:
        message = f"expected status {expected}, got {response.status}"
    if 300 <= response.status < 400:
        message += _redirect(response.headers.get("location"))
    elif exchange.attempts > 1 and response.status in (429, 503):
        message += f" (the last of {exchange.attempts} attempts: 429 and 503 are retried --retries times)"
    if reason:
        message += f": {short(reason, 200)}"
    yield Finding(
        "http.status", "/response/status", message, wanted[0] if len(wanted) == 1 else wanted, response.status
    )


def _redirect(location: str | None) -> str:
    """What a redirect asked for, and why it was not followed: the harness sends each request, and its credential,
    only to the URL it was given. The place is shown without what a URL may carry as a credential."""
    if not location:
        return " (a redirect with no Location; redirects are never followed)"
    # Taken apart by hand: a Location is whatever the endpoint wrote (its userinfo already redacted to
    # `[redacted]`, which a URL parser would take for an IPv6 address), and only its place is shown.
    scheme, separator, rest = location.partition("://")
    place = location
    if separator:
        authority, slash, path = rest.partition("/")
        place = f"{scheme}://{authority.rpartition('@')[2]}{slash}{path}"
    place = place.split("?", 1)[0].split("#", 1)[0]
    return (
        f" (a redirect to {short(place, 160)}, which is never followed, so that no request nor credential goes where "
        "the endpoint's URL does not say; point the URL at where the endpoint answers)"
    )


def _has_body(exchange: Exchange, context: CheckContext) -> bool:
    """A body meant to be one JSON document: not a 204, not a stream (the stream checks read those)."""
    return exchange.response is not None and exchange.response.status != 204 and exchange.stream is None


@check(applies=_has_body)
def body_json(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """The body is JSON: not an HTML page from a proxy, not truncated, not empty."""
    response = exchange.response
    assert response is not None
    if response.body_error is None:
        return
    yield Finding(
        "http.body_json",
        "/response/body",
        f"the body must be JSON; {response.body_error}",
        "a JSON document",
        short(response.text, 200),
    )


@check(applies=_has_body)
def content_type(exchange: Exchange, context: CheckContext) -> Iterator[Finding]:
    """A JSON body is labelled application/json, so clients that look at the header parse it."""
    response = exchange.response
    assert response is not None
    if response.body_error is not None:
        return  # not JSON at all: body_json says so
    value = response.headers.get("content-type", "")
    media = value.split(";", 1)[0].strip().lower()
    if media == "application/json" or (media.startswith("application/") and media.endswith("+json")):
        return
    yield Finding(
        "http.content_type",
        "/response/headers/content-type",
        f"a JSON body must have content-type application/json; got {value or 'no content-type'!r}",
        "application/json",
        value or None,
    )
