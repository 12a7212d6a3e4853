"""Credentials, as httpx auth flows: the secret is added at send time and never stored in a request we keep."""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping

import httpx

from .endpoints import Endpoint
from .errors import ConfigError, Problem

__all__ = ["BearerAuth", "auth_for"]


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <token>`, as OpenAI, the Gemini API and most servers take an API key."""

    def __init__(self, token: str) -> None:
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def __repr__(self) -> str:
        return "BearerAuth([secure])"


def auth_for(endpoint: Endpoint, environ: Mapping[str, str] | None = None) -> tuple[httpx.Auth | None, list[str]]:
    """The auth flow for an endpoint and the secret values it uses; a missing credential is a `ConfigError`."""
    environ = os.environ if environ is None else environ
    if not endpoint.api_key_env:
        return None, []
    token = environ.get(endpoint.api_key_env)
    if not token:
        state = "is empty" if endpoint.api_key_env in environ else "is not set"
        raise ConfigError(
            Problem(
                f"endpoint {endpoint.name}",
                f"the API key variable {endpoint.api_key_env} {state}; tried: api_key_env={endpoint.api_key_env}",
            )
        )
    return BearerAuth(token), [token]
