"""Credentials, as httpx auth flows: the secret is added at send time and never stored in a request we keep.

Google credentials come from google-auth (Application Default Credentials or a key file) and are refreshed
before they expire, in a worker thread since google-auth is synchronous. Each token is handed to the
redactor as it is minted, so not even a refreshed token can reach a report.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from pathlib import Path
from typing import Any

import httpx

from .endpoints import Endpoint
from .errors import ConfigError, Problem

__all__ = ["SCOPES", "BearerAuth", "GoogleAuth", "auth_for"]

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
REFRESH_MARGIN = datetime.timedelta(minutes=5)


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>`, as OpenAI, the Gemini API and most servers take an API key."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth([secure])"


class GoogleAuth(httpx.Auth):
    """A bearer token from google-auth credentials, refreshed when it is missing or within 5 minutes of expiry."""

    def __init__(self, credentials: Any, source: str, on_token: Callable[[str], None] = lambda token: None) -> None:
        self._credentials = credentials
        self.source = source
        self._on_token = on_token
        self._lock = asyncio.Lock()

    def _stale(self) -> bool:
        credentials = self._credentials
        if not credentials.token:
            return True
        if credentials.expiry is None:
            return not credentials.valid
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # google-auth keeps naive UTC times
        return bool(credentials.expiry - now < REFRESH_MARGIN)

    def _refresh(self) -> None:
        from google.auth.transport.requests import Request

        self._credentials.refresh(Request())
        self._on_token(self._credentials.token)

    async def token(self) -> str:
        """A valid token, refreshing first when needed; raises `ConfigError` naming the source when that fails."""
        async with self._lock:
            if self._stale():
                try:
                    await asyncio.to_thread(self._refresh)
                except Exception as exc:  # google-auth raises RefreshError, TransportError, ValueError...
                    raise ConfigError(Problem(self.source, f"cannot get an access token: {_reason(exc)}")) from None
            return str(self._credentials.token)

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.token()}"
        yield request

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("GoogleAuth is for httpx.AsyncClient")

    def __repr__(self) -> str:
        return f"GoogleAuth({self.source}, [secure])"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _from_file(path: Path) -> Any:
    """Credentials of the two kinds a user hands over as a file; other kinds are refused, not guessed."""
    from google.auth.exceptions import GoogleAuthError
    from google.oauth2 import credentials as user
    from google.oauth2 import service_account

    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("type")
        if kind == "service_account":
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                str(path), scopes=list(SCOPES)
            )
        if kind == "authorized_user":
            return user.Credentials.from_authorized_user_file(  # type: ignore[no-untyped-call]
                str(path), scopes=list(SCOPES)
            )
    except (GoogleAuthError, ValueError, KeyError, AttributeError, OSError) as exc:
        raise ConfigError(Problem(str(path), f"not a usable Google credentials file: {_reason(exc)}")) from None
    raise ConfigError(
        Problem(
            str(path),
            f"not a usable Google credentials file: type {kind!r}; expected a "
            "service_account or authorized_user key file (or credentials: adc)",
        )
    )


def _google(endpoint: Endpoint, environ: Mapping[str, str], on_token: Callable[[str], None]) -> GoogleAuth:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    where = f"endpoint {endpoint.name}"
    if endpoint.credentials and endpoint.credentials != "adc":
        path = Path(endpoint.credentials)
        if not path.is_file():
            raise ConfigError(Problem(where, f"credentials file {path} does not exist"))
        credentials = _from_file(path)
        return GoogleAuth(credentials, f"{where}: credentials file {path}", on_token)
    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError as exc:
        adc_file = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        tried = [
            f"GOOGLE_APPLICATION_CREDENTIALS ({adc_file if adc_file else 'not set'})",
            "the gcloud application-default file (gcloud auth application-default login)",
            "the Compute Engine metadata server",
        ]
        raise ConfigError(
            Problem(where, f"no Application Default Credentials found; tried {', '.join(tried)}: {_reason(exc)}")
        ) from None
    return GoogleAuth(credentials, f"{where}: Application Default Credentials", on_token)


def auth_for(
    endpoint: Endpoint, environ: Mapping[str, str] | None = None, on_token: Callable[[str], None] = lambda token: None
) -> tuple[httpx.Auth | None, list[str]]:
    """The auth flow for an endpoint and the secret values it uses; a missing credential is a `ConfigError`."""
    environ = os.environ if environ is None else environ
    for variable in (endpoint.api_key_env, endpoint.access_token_env):
        if not variable:
            continue
        token = environ.get(variable)
        if not token:
            state = "is empty" if variable in environ else "is not set"
            kind = "API key" if variable == endpoint.api_key_env else "access token"
            raise ConfigError(
                Problem(
                    f"endpoint {endpoint.name}",
                    f"the {kind} variable {variable} {state}; "
                    f"tried: {'api_key_env' if kind == 'API key' else 'access_token_env'}={variable}",
                )
            )
        return BearerAuth(token), [token]
    if endpoint.credentials:
        return _google(endpoint, environ, on_token), []
    return None, []
