"""Keeping secrets out of everything the harness writes: exchanges, reports, recordings, the console.

Redaction happens once, when an exchange is built, so no check, report or recording ever holds a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "Redactor"]

REDACTED = "[redacted]"
SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "x-goog-api-key", "cookie", "set-cookie"}
)
_KEY_PARAM = re.compile(r"([?&](?:key|api_key|api-key|access_token)=)[^&#]*", re.IGNORECASE)


class Redactor:
    """Replaces known secret values (API keys, tokens) wherever they appear."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Short values would redact ordinary text; a real credential is longer than this.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def add(self, secret: str) -> None:
        if secret and len(secret) >= 4 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def text(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def url(self, url: str) -> str:
        return self.text(_KEY_PARAM.sub(lambda m: m.group(1) + REDACTED, url))

    def headers(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        return {k.lower(): (REDACTED if k.lower() in SENSITIVE_HEADERS else self.text(v)) for k, v in headers}

    def value(self, value: Any) -> Any:
        """A JSON value with every secret replaced, at any depth."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value
