"""Endpoints under test: from command-line flags or named in a config file (`harness.yaml`)."""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigError, Problem
from .options import KINDS
from .pointer import join
from .yamlfile import Source, load_yaml

__all__ = [
    "FLAGS",
    "GOOGLE_KINDS",
    "KINDS",
    "Endpoint",
    "Settings",
    "api_origin",
    "build_endpoint",
    "load_config",
    "parse_header",
    "select_endpoints",
    "vertex_base_url",
]

_SENSITIVE = ("authorization", "api-key", "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie")


GEMINI_API_BASE = "https://generativelanguage.googleapis.com/v1beta/openai"


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

    def shown(self, redact_url: Callable[[str], str]) -> Endpoint:
        """The endpoint as reports may show it: its URL redacted, no headers (they may carry credentials)."""
        return replace(self, base_url=redact_url(self.base_url), headers={})


def api_origin(value: str) -> str:
    """`scheme://host[:port]` from an `api_endpoint` as Google's client libraries take it: a bare host (https, as
    they assume) or a URL without a path. A path is refused rather than dropped, since the documented path (with
    project, location and endpoint id) is what a stand-in must receive; raises `ValueError` saying what is wrong."""
    text = value.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    try:
        _ = parts.port  # a port that is not a number raises here
    except ValueError:
        parts = parts._replace(netloc="")
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"expected a scheme and host only, such as us-central1-aiplatform.googleapis.com or "
            f"http://127.0.0.1:8080 (the documented path is kept), got {value!r}"
        )
    return f"{parts.scheme}://{parts.netloc}"


def vertex_base_url(
    project: str,
    location: str,
    api_version: str = "v1",
    *,
    endpoint_id: str | None = None,
    api_endpoint: str | None = None,
) -> str:
    """The base URL Vertex AI documents: the regional host `{location}-aiplatform.googleapis.com`, or
    `aiplatform.googleapis.com` for `global`; `endpoints/openapi` for Gemini, `endpoints/{id}` for your own.
    `api_endpoint` moves it to another host and keeps the path, as Google's client libraries do."""
    host = "aiplatform.googleapis.com" if location == "global" else f"{location}-aiplatform.googleapis.com"
    origin = api_origin(api_endpoint or host)
    target = endpoint_id if endpoint_id is not None else "openapi"
    return f"{origin}/{api_version}/projects/{project}/locations/{location}/endpoints/{target}"


def _on_origin(url: str, api_endpoint: str | None) -> str:
    """`url` with its scheme and host replaced by `api_endpoint`'s, path kept."""
    if not api_endpoint:
        return url
    parts = urlsplit(url)
    return api_origin(api_endpoint) + parts.path + (f"?{parts.query}" if parts.query else "")


def _vertex(spec: Mapping[str, Any], endpoint_id: str | None, api_endpoint: str | None) -> str:
    return vertex_base_url(
        str(spec["project"]),
        str(spec["location"]),
        str(spec.get("api_version") or "v1"),
        endpoint_id=endpoint_id,
        api_endpoint=api_endpoint,
    )


@dataclass(frozen=True, slots=True)
class _Kind:
    """What an endpoint's kind implies, so that building one never branches on the provider.

    `url` builds the base URL a provider documents (and takes `api_endpoint` to move it to another host);
    None means the user gives `base_url`. Defaults apply when the settings name no credential at all.
    """

    profile: str
    url: Callable[[Mapping[str, Any], str | None], str] | None = None
    placeholders: tuple[str, ...] = ()
    model_prefix: str = ""
    credentials: str | None = None
    api_key_env: str | None = None


_KINDS = {
    "openai": _Kind(profile="generic"),
    "vertex": _Kind(
        profile="vertex",
        url=lambda spec, api_endpoint: _vertex(spec, None, api_endpoint),
        placeholders=("project", "location"),
        model_prefix="google/",  # Vertex names Gemini models google/{MODEL_ID}
        credentials="adc",
    ),
    "vertex-endpoint": _Kind(
        profile="self-deployed",
        url=lambda spec, api_endpoint: _vertex(spec, str(spec["endpoint_id"]), api_endpoint),
        placeholders=("project", "location"),
        credentials="adc",
    ),
    "gemini-api": _Kind(
        profile="gemini-api",
        url=lambda spec, api_endpoint: _on_origin(GEMINI_API_BASE, api_endpoint),
        api_key_env="GEMINI_API_KEY",
    ),
}
GOOGLE_KINDS = tuple(name for name, kind in _KINDS.items() if kind.url is not None)


@dataclass(frozen=True, slots=True)
class Settings:
    """How the user wrote an endpoint's settings (flags, or an entry in a config file), so that a problem names
    a setting as they typed it (`--base-url` or `base_url`) and points where they typed it."""

    spell: Callable[[str], str] = str
    locate: Callable[[str, str], Problem] | None = None

    def problem(self, name: str, key: str, message: str) -> Problem:
        if self.locate is not None:
            return self.locate(key, message)
        return Problem(f"endpoint {name}", f"{self.spell(key)}: {message}")


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


FLAGS = Settings(spell=_flag, locate=lambda key, message: Problem(_flag(key), message))


def build_endpoint(name: str, spec: Mapping[str, Any], *, settings: Settings = Settings()) -> Endpoint:
    """An endpoint from its settings (a config entry or flags), with the URL, model and defaults its kind implies.

    A Google kind's URL is the documented one; `base_url` would silently replace all of it (project, location
    and endpoint id included), so it is refused, and `api_endpoint` moves the documented URL to another host.
    """
    kind_name = str(spec.get("kind") or "openai")
    kind = _KINDS[kind_name]
    spell = settings.spell
    api_endpoint = spec.get("api_endpoint")
    if kind.url is None:
        if api_endpoint:
            raise ConfigError(
                settings.problem(
                    name,
                    "api_endpoint",
                    f"only Google's kinds ({', '.join(GOOGLE_KINDS)}) build a URL to move to another host; "
                    f"for {spell('kind')} {kind_name}, give the whole URL as {spell('base_url')}",
                )
            )
        base_url = spec["base_url"]
    else:
        if spec.get("base_url"):
            raise ConfigError(
                settings.problem(
                    name,
                    "base_url",
                    f"{spell('kind')} {kind_name} builds the URL Google documents, and {spell('base_url')} would "
                    f"replace all of it; to send that URL to another server (a local stand-in such as "
                    f"http://127.0.0.1:8080), give {spell('api_endpoint')}, which replaces only the scheme and host",
                )
            )
        try:
            base_url = kind.url(spec, api_endpoint or None)
        except ValueError as exc:
            raise ConfigError(settings.problem(name, "api_endpoint", str(exc))) from None
    variables = {**{key: str(spec[key]) for key in kind.placeholders}, **(spec.get("variables") or {})}
    model = spec.get("model")
    if model and kind.model_prefix and "/" not in model:
        model = kind.model_prefix + model
    api_key_env, credentials = spec.get("api_key_env"), spec.get("credentials")
    if not (api_key_env or spec.get("access_token_env") or credentials):
        api_key_env, credentials = kind.api_key_env, kind.credentials
    return Endpoint(
        name=name,
        base_url=str(base_url),
        model=model,
        api_key_env=api_key_env,
        headers=dict(spec.get("headers") or {}),
        variables=variables,
        profile=str(spec.get("profile") or kind.profile),
        timeout=spec.get("timeout"),
        kind=kind_name,
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
        try:
            endpoints[name] = build_endpoint(name, spec, settings=_located(source, name))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return endpoints


def _located(source: Source, name: str) -> Settings:
    """Problems with an entry's settings, pointed at the line of the config file that holds them."""
    return Settings(locate=lambda key, message: source.problem(join("/endpoints", name, key), message))


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
