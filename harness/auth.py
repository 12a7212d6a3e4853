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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .endpoints import Endpoint
from .errors import ConfigError, Problem

__all__ = ["SCOPES", "BearerAuth", "GoogleAuth", "TokenSource", "auth_for", "shown_authorization", "token_source"]

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


def _key_file(endpoint: Endpoint, path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(Problem(f"endpoint {endpoint.name}", f"credentials file {path} does not exist"))
    return path


def _google(endpoint: Endpoint, environ: Mapping[str, str], on_token: Callable[[str], None]) -> GoogleAuth:
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    where = f"endpoint {endpoint.name}"
    if endpoint.credentials and endpoint.credentials != "adc":
        path = _key_file(endpoint, Path(endpoint.credentials))
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


# How a shell gets the token Google's examples send: `gcloud auth print-access-token`, whichever credential minted ours.
GCLOUD_TOKEN = "$(gcloud auth print-access-token)"


@dataclass(frozen=True, slots=True)
class TokenSource:
    """Where an endpoint's bearer token comes from, said without touching it.

    `--dry-run` and the "reproduce with" curl line need to name the credential, never to hold it: `shown`
    says which one a run would use, `shell` is what a shell types to get an equivalent token.
    """

    shown: str
    shell: str
    variable: str | None = None
    setting: str = ""
    key_file: Path | None = None


def token_source(endpoint: Endpoint) -> TokenSource | None:
    """The credential an endpoint's requests carry, in the order of precedence the README gives; None for none."""
    for variable, setting in ((endpoint.api_key_env, "api_key_env"), (endpoint.access_token_env, "access_token_env")):
        if variable:
            return TokenSource(shown=f"${variable}", shell=f"${variable}", variable=variable, setting=setting)
    if endpoint.credentials == "adc":
        return TokenSource(shown="token from Application Default Credentials", shell=GCLOUD_TOKEN)
    if endpoint.credentials:
        path = Path(endpoint.credentials)
        return TokenSource(shown=f"token from key file {path}", shell=GCLOUD_TOKEN, key_file=path)
    return None


def _variable(endpoint: Endpoint, source: TokenSource, environ: Mapping[str, str]) -> str:
    """The value of the variable a token comes from; unset or empty is a `ConfigError` saying which it was."""
    assert source.variable is not None
    token = environ.get(source.variable)
    if not token:
        state = "is empty" if source.variable in environ else "is not set"
        kind = "API key" if source.setting == "api_key_env" else "access token"
        raise ConfigError(
            Problem(
                f"endpoint {endpoint.name}",
                f"the {kind} variable {source.variable} {state}; tried: {source.setting}={source.variable}",
            )
        )
    return token


def shown_authorization(endpoint: Endpoint, environ: Mapping[str, str] | None = None) -> tuple[str | None, list[str]]:
    """The Authorization header a run would send, with the token described instead of fetched, and the secrets
    to redact: what `--dry-run` prints. A missing variable or key file is the same usage error as in a run;
    nothing is read from Google (no refresh, not even a look for Application Default Credentials)."""
    environ = os.environ if environ is None else environ
    source = token_source(endpoint)
    if source is None:
        return None, []
    secrets = [_variable(endpoint, source, environ)] if source.variable else []
    if source.key_file is not None:
        _key_file(endpoint, source.key_file)
    return f"Bearer <redacted: {source.shown}>", secrets


def auth_for(
    endpoint: Endpoint, environ: Mapping[str, str] | None = None, on_token: Callable[[str], None] = lambda token: None
) -> tuple[httpx.Auth | None, list[str]]:
    """The auth flow for an endpoint and the secret values it uses; a missing credential is a `ConfigError`."""
    environ = os.environ if environ is None else environ
    source = token_source(endpoint)
    if source is None:
        return None, []
    if source.variable:
        token = _variable(endpoint, source, environ)
        return BearerAuth(token), [token]
    return _google(endpoint, environ, on_token), []
