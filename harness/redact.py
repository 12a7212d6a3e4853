"""Keeping secrets out of everything the harness writes: exchanges, reports, recordings, the console.

Redaction happens once, when an exchange is built, so no check, report or recording ever holds a secret.

A secret is looked for in every form a reader could turn back into it, not only as written: JSON's `\\u`
escapes (and `\\/`, `\\"`, any number of backslashes, for JSON inside JSON), percent-encoding (and its
double form `%2541`), any mix of these within one value. A hostile or careless endpoint that echoes the key
escaped would otherwise put text in a report that any JSON parser or URL decoder turns back into the key.

Values shorter than `ANYWHERE` characters are redacted only where they stand as a whole word: a four-letter
project id must not blank every word that happens to contain it. Values shorter than `SHORTEST` are never
redacted, since they would match ordinary text (and a real credential is never that short).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

__all__ = ["ANYWHERE", "REDACTED", "SENSITIVE_HEADERS", "SHORTEST", "Redactor", "sensitive_header"]

REDACTED = "[redacted]"
SHORTEST = 4
ANYWHERE = 8
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key", "cookie", "set-cookie"}
)
# Header names that say they carry a credential, whatever the vendor prefix: `x-auth-token`, `x-amz-security-token`,
# `x-my-service-key`. The words must end the name, so `x-ratelimit-remaining-tokens` (a count) is left alone, and
# CORS headers (`access-control-allow-headers: authorization`, `...-allow-credentials: true`) only name them.
_CREDENTIAL_NAME = re.compile(
    r"^(?!access-control-).*(?:(?:^|[-_.])(?:api[-_]?key|apikey|key|token|secret|password|passwd|credentials?|"
    r"signature|auth)|authorization|cookie)$",
    re.IGNORECASE,
)
# Query parameters that carry a credential by name (`key=`, `api_key=`, `access_token=`, `X-Goog-Signature=`).
_KEY_PARAM = re.compile(
    r"([?&;](?:[\w.-]*[-_.])?(?:key|api[-_]?key|apikey|token|secret|password|passwd|sig|signature|auth|"
    r"credentials?)=)([^&#\s\"'<>]*)",
    re.IGNORECASE,
)
# `scheme://user:password@host`: the whole userinfo, since a token is often passed as the user name.
_USERINFO = re.compile(r"(?<=://)([^/?#@\s\"'<>]+)@")
_SHORT_ESCAPES = {'"': '"', "\\": "\\\\", "/": "/", "\b": "b", "\f": "f", "\n": "n", "\r": "r", "\t": "t"}


@lru_cache(maxsize=4096)  # asked of every header of every request and answer, whose names mostly repeat
def sensitive_header(name: str) -> bool:
    """Whether a header's name says its value is a credential, so the value is never shown at all."""
    lowered = name.lower()
    return lowered in SENSITIVE_HEADERS or bool(_CREDENTIAL_NAME.search(lowered))


def _hex(text: str) -> str:
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in text)


def _char(c: str) -> str:
    """Every way one character of a secret may be written that JSON or URL decoding turns back into it.

    Each form starts with a plain character, so that the regular expression engine can skip ahead to where a
    match may start instead of trying every position: redaction runs over whole answers, up to 16 MiB.
    """
    forms = [re.escape(c)]
    code = ord(c)
    units = [code] if code <= 0xFFFF else [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
    forms.append("".join(r"\\\\*u" + _hex(f"{unit:04x}") for unit in units))
    if c in _SHORT_ESCAPES:
        forms.append(r"\\\\*" + re.escape(_SHORT_ESCAPES[c]))
    forms.append("".join("%(?:25)*" + _hex(f"{byte:02x}") for byte in c.encode("utf-8")))
    if c == " ":
        forms.append(r"\+")
    return "(?:" + "|".join(forms) + ")"


_WORD = re.compile("[A-Za-z0-9]")
_WORD_BYTE = re.compile(b"[A-Za-z0-9]")
_ESCAPED = (re.compile(r"\\u[0-9A-Fa-f]{4}|%[0-9A-Fa-f]{2}"), re.compile(rb"\\u[0-9A-Fa-f]{4}|%[0-9A-Fa-f]{2}"))


class _Secret:
    """One secret's pattern, for text and for bytes; a short one must stand as a whole word."""

    def __init__(self, secret: str) -> None:
        body = "".join(_char(c) for c in secret)
        self.short = len(secret) < ANYWHERE
        # The word boundary after a short secret is a lookahead; the one before it is checked in `_find`, since a
        # lookbehind at the start of the pattern would stop the engine from skipping ahead.
        source = body + "(?![A-Za-z0-9])" if self.short else body
        self.text = re.compile(source)
        self.bytes = re.compile(source.encode("utf-8"))


def _after_word(text: Any, start: int, word: re.Pattern[Any]) -> bool:
    """Whether a match at `start` follows a letter or digit. The end of an escape (`\\u0020`, `%20`) counts as
    none, whatever it decodes to: raw text is redacted at least wherever its decoded form would be."""
    if start == 0 or not word.match(text, start - 1):
        return False
    escaped = _ESCAPED[0] if isinstance(text, str) else _ESCAPED[1]
    return not (escaped.fullmatch(text, max(0, start - 6), start) or escaped.fullmatch(text, max(0, start - 3), start))


def _find(pattern: re.Pattern[Any], word: re.Pattern[Any], text: Any, short: bool) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    pos = 0
    while (match := pattern.search(text, pos)) is not None:
        start, end = match.span()
        if short and _after_word(text, start, word):
            pos = start + 1
            continue
        found.append((start, end))
        pos = max(end, start + 1)
    return found


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _replace(text: Any, spans: list[tuple[int, int]], by: Any) -> Any:
    pieces = []
    pos = 0
    for start, end in spans:
        pieces += [text[pos:start], by]
        pos = end
    pieces.append(text[pos:])
    return text[:0].join(pieces)


class Redactor:
    """Replaces known secret values (API keys, tokens, configured values) wherever and however they appear."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: dict[str, _Secret] = {}
        for secret in secrets:
            self.add(secret)

    @property
    def active(self) -> bool:
        """Whether there is anything to redact, so that work done only for redaction can be skipped."""
        return bool(self._secrets)

    def add(self, secret: str) -> None:
        """Redact `secret` from now on; too short a value is ignored (see the module docstring)."""
        if len(secret) < SHORTEST or secret in self._secrets or secret in REDACTED:
            return
        self._secrets[secret] = _Secret(secret)

    def _learn(self, found: str) -> None:
        """Add a credential found by its place (a URL's `key=`, a header's name) rather than configured: only a
        long one, since a short value there (`key=test`) is more likely a placeholder than a credential."""
        if len(found) >= ANYWHERE:
            self.add(found)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where secrets stand in `text`, in any form, as sorted, disjoint (start, end) offsets."""
        return _union([span for s in self._secrets.values() for span in _find(s.text, _WORD, text, s.short)])

    def dangling(self, text: str) -> int | None:
        """Where the end of `text` begins a secret that never ends in it (at least its first `SHORTEST`
        characters), or None: in an answer cut off at the size cap, the rest of it was on its way."""
        found = [
            len(text) - k
            for secret in self._secrets
            for k in range(min(len(secret) - 1, len(text)), SHORTEST - 1, -1)
            if text.endswith(secret[:k])
        ]
        return min(found, default=None)

    def byte_spans(self, data: bytes) -> list[tuple[int, int]]:
        """Where secrets stand in raw bytes, so a secret split across chunks is found in the bytes they join to."""
        return _union([span for s in self._secrets.values() for span in _find(s.bytes, _WORD_BYTE, data, s.short)])

    def text(self, text: str) -> str:
        spans = self.spans(text) if self._secrets else []
        return _replace(text, spans, REDACTED) if spans else text

    def data(self, data: bytes) -> bytes:
        spans = self.byte_spans(data) if self._secrets else []
        return _replace(data, spans, REDACTED.encode("ascii")) if spans else data

    def url(self, url: str) -> str:
        """The URL with its credentials redacted; those it carries (userinfo, `key=`) are secrets from now on.

        An endpoint's error message may quote the URL it was sent to, so a key given in `--base-url` must be
        redacted wherever else it shows up, not only in the URL.
        """
        for match in _USERINFO.finditer(url):
            user, colon, password = match.group(1).partition(":")
            self._learn(unquote(password if colon else user))  # a user name beside a password is no secret
        for match in _KEY_PARAM.finditer(url):
            self._learn(unquote(match.group(2)))
        return self.text(_url_credentials(url))

    def header(self, name: str, value: str) -> str:
        """One header's value as it may be shown: none at all for a credential, else with any secret redacted.

        A credential sent or received under its header's name (`X-Service-Token: ...`) is a secret from then on,
        so an endpoint that echoes it in its answer does not publish it.
        """
        if sensitive_header(name):
            self._learn(value.strip())
            words = value.split()
            if len(words) == 2:  # `Bearer <token>`: the token alone may be echoed
                self._learn(words[1])
            return REDACTED
        return self.text(_url_credentials(value))

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        return {k.lower(): self.header(k, v) for k, v in headers}

    def value(self, value: Any) -> Any:
        """A JSON value with every secret replaced, at any depth (keys included)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


def _url_credentials(text: str) -> str:
    """Credentials that a URL carries by its shape, whether or not they are configured secrets."""
    text = _USERINFO.sub(REDACTED + "@", text)
    return _KEY_PARAM.sub(lambda m: m.group(1) + REDACTED, text)
