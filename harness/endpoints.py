"""Endpoints under test: from command-line flags or named in a config file (`harness.yaml`)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import schemas
from .errors import ConfigError, Problem
from .pointer import join
from .yamlfile import load_yaml

__all__ = ["Endpoint", "load_config", "parse_header"]

_SENSITIVE = ("authorization", "api-key", "x-api-key", "x-goog-api-key", "proxy-authorization", "cookie")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A Chat Completions endpoint: where it is, how to authenticate, and the values its cases are filled with."""

    name: str
    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    profile: str = "generic"
    timeout: float | None = None

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


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' from --header."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ConfigError(Problem("--header", f"expected 'Name: value', got {text!r}"))
    return name.strip(), value.strip()


def load_config(path: str | Path) -> dict[str, Endpoint]:
    """Every endpoint named in a config file, validated against `schemas/config.schema.json`."""
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
    for name, spec in source.data["endpoints"].items():
        profile = spec.get("profile", "generic")
        if profile.endswith((".yaml", ".yml")) and not Path(profile).is_absolute():
            profile = str(base / profile)
        endpoints[name] = Endpoint(
            name=name,
            base_url=spec["base_url"],
            model=spec.get("model"),
            api_key_env=spec.get("api_key_env"),
            headers=dict(spec.get("headers", {})),
            variables=dict(spec.get("variables", {})),
            profile=profile,
            timeout=spec.get("timeout"),
        )
    return endpoints


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
