"""Endpoints under test: from command-line flags or named in a config file (`harness.yaml`)."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, Problem
from .options import KINDS
from .pointer import join
from .yamlfile import Source, load_yaml

__all__ = ["KINDS", "Endpoint", "build_endpoint", "load_config", "parse_header", "select_endpoints", "vertex_base_url"]

_SENSITIVE = ("authorization", "api-key", "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie")


GEMINI_API_BASE = "https://generativelanguage.googleapis.com/v1beta/openai"
_DEFAULT_PROFILE = {
    "openai": "generic",
    "vertex": "vertex",
    "vertex-endpoint": "self-deployed",
    "gemini-api": "gemini-api",
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A Chat Completions endpoint: where it is, how to authenticate, and the values its cases are filled with.

    Credentials: `api_key_env` or `access_token_env` name a variable whose value goes as a bearer token;
    `credentials` is `adc` (Application Default Credentials) or a Google key file, refreshed as needed.
    """

    name: str
    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    profile: str = "generic"
    timeout: float | None = None
    kind: str = "openai"
    access_token_env: str | None = None
    credentials: str | None = None

    @property
    def url(self) -> str:
        """The chat completions URL; a query on the base URL (Vertex's `?key=`) stays at the end."""
        base, sep, query = self.base_url.partition("?")
        return base.rstrip("/") + "/chat/completions" + sep + query

    def placeholders(self) -> dict[str, str | None]:
        """Values for `${name}` in cases; `model` is None (and drops the member) when the endpoint takes none."""
        return {**self.variables, "model": self.model}

    def secret_headers(self) -> list[str]:
        """Values of headers that carry credentials, which must never be written anywhere."""
        return [v for k, v in self.headers.items() if k.lower() in _SENSITIVE]


def vertex_base_url(
    project: str, location: str, api_version: str = "v1", *, endpoint_id: str | None = None, host: str | None = None
) -> str:
    """The base URL Vertex AI documents: the regional host `{location}-aiplatform.googleapis.com`, or
    `aiplatform.googleapis.com` for `global`; `endpoints/openapi` for Gemini, `endpoints/{id}` for your own."""
    origin = host or ("aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com")
    if not origin.startswith(("http://", "https://")):
        origin = f"https://{origin}"
    target = endpoint_id if endpoint_id is not None else "openapi"
    return f"{origin.rstrip('/')}/{api_version}/projects/{project}/locations/{location}/endpoints/{target}"


def build_endpoint(name: str, spec: Mapping[str, Any]) -> Endpoint:
    """An endpoint from its settings (a config entry or flags), with the URL, model and defaults its kind implies."""
    kind = str(spec.get("kind") or "openai")
    model = spec.get("model")
    variables = dict(spec.get("variables") or {})
    credentials = spec.get("credentials")
    api_key_env = spec.get("api_key_env")
    if kind in ("vertex", "vertex-endpoint"):
        project, location = str(spec["project"]), str(spec["location"])
        variables = {"project": project, "location": location, **variables}
        base_url = spec.get("base_url") or vertex_base_url(
            project,
            location,
            str(spec.get("api_version") or "v1"),
            endpoint_id=str(spec["endpoint_id"]) if kind == "vertex-endpoint" else None,
            host=spec.get("host"),
        )
        if kind == "vertex" and model and "/" not in model:
            model = f"google/{model}"  # Vertex names Gemini models google/{MODEL_ID}
        if not (api_key_env or spec.get("access_token_env") or credentials):
            credentials = "adc"
    elif kind == "gemini-api":
        base_url = (
            spec.get("base_url")
            or (spec.get("host") and f"{spec['host'].rstrip('/')}/v1beta/openai")
            or GEMINI_API_BASE
        )
        if not (api_key_env or spec.get("access_token_env") or credentials):
            api_key_env = "GEMINI_API_KEY"
    else:
        base_url = spec["base_url"]
    return Endpoint(
        name=name,
        base_url=str(base_url),
        model=model,
        api_key_env=api_key_env,
        headers=dict(spec.get("headers") or {}),
        variables=variables,
        profile=str(spec.get("profile") or _DEFAULT_PROFILE[kind]),
        timeout=spec.get("timeout"),
        kind=kind,
        access_token_env=spec.get("access_token_env"),
        credentials=credentials,
    )


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' from --header."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ConfigError(Problem("--header", f"expected 'Name: value', got {text!r}"))
    return name.strip(), value.strip()


def load_config(path: str | Path) -> dict[str, Endpoint]:
    """Every endpoint named in a config file, validated against the bundled `config.schema.json`."""
    from . import schemas  # jsonschema costs `harness --help` a tenth of a second; only a run needs it

    source = load_yaml(path)
    if source.data is None:
        raise ConfigError(Problem(str(path), "empty config file: expected 'endpoints:' with at least one endpoint"))
    problems = []
    for error in sorted(
        schemas.schema("config").iter_errors(source.data), key=lambda e: list(map(str, e.absolute_path))
    ):
        pointer = join("", list(error.absolute_path))
        message = error.message
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            extra = [k for k in error.instance if k not in allowed]
            hint = difflib.get_close_matches(extra[0], allowed, n=1) if extra else []
            message = (
                f"unknown key {extra[0]!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; expected one of {', '.join(allowed)}"
            )
            pointer = join(pointer, extra[0]) if extra else pointer
        problems.append(source.problem(pointer, message, at_key=error.validator == "additionalProperties"))
    if problems:
        raise ConfigError(problems)
    base = Path(path).parent
    endpoints = {}
    for name, raw in source.data["endpoints"].items():
        spec = {key: _env(value, source, join("/endpoints", name, key), problems) for key, value in raw.items()}
        profile = spec.get("profile")
        if profile and profile.endswith((".yaml", ".yml")) and not Path(profile).is_absolute():
            spec["profile"] = str(base / profile)
        credentials = spec.get("credentials")
        if credentials and credentials != "adc" and not Path(credentials).is_absolute():
            spec["credentials"] = str(base / credentials)
        endpoints[name] = build_endpoint(name, spec)
    if problems:
        raise ConfigError(problems)
    return endpoints


_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


def _env(value: Any, source: Source, pointer: str, problems: list[Problem]) -> Any:
    """Config strings may take `${env:NAME}` (a project or location kept out of the file)."""
    if isinstance(value, dict):
        return {k: _env(v, source, join(pointer, k), problems) for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            problems.append(
                source.problem(pointer, f"environment variable {name} is not set (used as {match.group(0)})")
            )
            return ""
        return os.environ[name]

    return _ENV.sub(replace, value)


def select_endpoints(endpoints: Mapping[str, Endpoint], names: list[str], origin: str) -> list[Endpoint]:
    """The endpoints named with --endpoint (all of them when none is named)."""
    if not names:
        return list(endpoints.values())
    missing = [n for n in names if n not in endpoints]
    if missing:
        hint = difflib.get_close_matches(missing[0], list(endpoints), n=1)
        raise ConfigError(
            Problem(
                origin,
                f"no endpoint named {missing[0]!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; it defines {', '.join(endpoints)}",
            )
        )
    return [endpoints[n] for n in names]
