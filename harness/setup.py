"""How a run's flags become endpoints, recordings and sending options: shared by `harness run` and the pytest plugin.

Both read the same option table (`harness.options`) into an `argparse.Namespace`, so both resolve it here, once,
and a pytest run points at the same endpoints and replays the same recordings as the command line does. Like
the CLI, this module imports what a run needs only inside the functions that need it.
"""

from __future__ import annotations

import argparse
import os
import shlex
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError, Problem
from .options import DEFAULT_CASES, DEFAULT_CONFIG, DEFAULT_RECORDINGS
from .resources import bundled

if TYPE_CHECKING:
    from .endpoints import Endpoint
    from .recordings import Recording
    from .sending import Options

__all__ = [
    "ENDPOINT_FLAGS",
    "catalogue",
    "configured",
    "default_recordings",
    "flag_endpoints",
    "load_replay",
    "names_endpoint",
    "replay_banner",
    "replay_endpoints",
    "replay_folders",
    "sending_options",
    "shown_endpoints",
    "shown_path",
    "targets",
]


ENDPOINT_FLAGS = (
    "kind",
    "base_url",
    "model",
    "project",
    "location",
    "endpoint_id",
    "api_version",
    "api_endpoint",
    "api_key_env",
    "access_token_env",
    "credentials",
    "profile",
)
REQUIRED = {
    "vertex": ("project", "location", "model"),
    "vertex-endpoint": ("project", "location", "endpoint_id"),
    "gemini-api": ("model",),
    "openai": ("base_url",),
}


def flag_endpoints(args: argparse.Namespace) -> list[Endpoint]:
    from .endpoints import FLAGS, build_endpoint, load_config, parse_header, select_endpoints

    variables = {}
    for item in args.var:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(Problem("--var", f"expected NAME=VALUE, got {item!r}"))
        variables[name] = value
    headers = dict(parse_header(h) for h in args.header)
    if args.base_url or args.kind:
        flag = "--base-url" if args.base_url else "--kind"
        if args.config or args.endpoint:
            raise ConfigError(Problem(flag, f"give either {flag} or --config/--endpoint, not both"))
        if args.base_url and not args.base_url.startswith(("http://", "https://")):
            raise ConfigError(Problem("--base-url", f"expected an http:// or https:// URL, got {args.base_url!r}"))
        spec = {key: value for key, value in vars(args).items() if key in ENDPOINT_FLAGS and value is not None}
        spec |= {"headers": headers, "variables": variables}
        missing = [f"--{k.replace('_', '-')}" for k in REQUIRED.get(args.kind or "openai", ()) if not spec.get(k)]
        if missing:
            raise ConfigError(Problem(flag, f"--kind {args.kind} needs {', '.join(missing)}"))
        return [build_endpoint(args.name, spec, settings=FLAGS)]
    if args.api_endpoint:
        raise ConfigError(
            Problem("--api-endpoint", "goes with a Google --kind; in a config file, give the entry api_endpoint:")
        )
    config = args.config or (DEFAULT_CONFIG if Path(DEFAULT_CONFIG).is_file() else None)
    if config is None:
        raise ConfigError(
            Problem(
                "harness run",
                "no endpoint to run against: give --base-url URL (with --model NAME), "
                "or --config FILE with --endpoint NAME",
            )
        )
    defined = load_config(config)
    if not defined:
        raise ConfigError(Problem(config, "names no endpoint yet: add one under 'endpoints:' (see the comments there)"))
    chosen = select_endpoints(defined, args.endpoint, config)
    return [
        replace(
            e,
            headers={**e.headers, **headers},
            variables={**e.variables, **variables},
            profile=args.profile or e.profile,
            model=args.model or e.model,
        )
        for e in chosen
    ]


def configured() -> bool:
    """Whether ./harness.yaml names an endpoint; a starter file that names none leaves the run to replay."""
    from .endpoints import load_config

    return Path(DEFAULT_CONFIG).is_file() and bool(load_config(DEFAULT_CONFIG))


def names_endpoint(args: argparse.Namespace) -> bool:
    """Whether the command line says which endpoint to run (rather than leaving it to recordings)."""
    return bool(args.base_url or args.kind or args.config)


def replay_endpoints(
    recordings: dict[tuple[str, str], Recording], args: argparse.Namespace, origin: str
) -> list[Endpoint]:
    """The endpoints a replay answers for.

    A command line that names its endpoint (`--base-url`, `--kind`, `--config`) replays as it recorded: the
    same flags, with `--replay` in place of `--record`. Otherwise each recording says which endpoint (URL,
    model, profile) it came from, and `--endpoint` picks among them.
    """
    from .endpoints import Endpoint, select_endpoints

    recorded = sorted({name for name, _ in recordings})
    if not recorded:
        raise ConfigError(Problem(origin, "no recordings in this folder (make some with --record)"))
    if names_endpoint(args):
        endpoints = flag_endpoints(args)
        for e in endpoints:
            if e.name not in recorded:
                raise ConfigError(
                    Problem(
                        "--replay",
                        f"{origin} holds no recordings of endpoint {e.name!r}; it has {', '.join(recorded)}"
                        + (" (name the endpoint with --name)" if args.base_url or args.kind else ""),
                    )
                )
        return endpoints
    found: dict[str, Endpoint] = {}
    for (name, _), recording in sorted(recordings.items()):
        if name not in found:
            seen = recording.endpoint
            found[name] = Endpoint(
                name=name,
                base_url=str(seen.get("base_url") or "http://recorded.invalid/v1"),
                model=args.model or seen.get("model"),
                profile=args.profile or str(seen.get("profile") or "generic"),
            )
    return select_endpoints(found, args.endpoint, origin)


def load_replay(folders: list[str]) -> dict[tuple[str, str], Recording]:
    """The recordings of every `--replay` folder together; the same case of the same endpoint in two is refused."""
    from .recordings import load_recordings

    merged: dict[tuple[str, str], Recording] = {}
    for folder in folders:
        for key, recording in load_recordings(Path(folder), answers=False).items():
            if key in merged:
                raise ConfigError(
                    Problem(
                        "--replay",
                        f"case {key[1]!r} of endpoint {key[0]!r} is recorded in both {merged[key].path} and "
                        f"{recording.path}; replay one folder, or rename the endpoint in one of them",
                    )
                )
            merged[key] = recording
    return merged


def shown_path(path: Path) -> str:
    """A path as a user can type it here: relative to the current folder when it lies below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def catalogue(paths: list[str]) -> tuple[list[str], str]:
    """The case files to run and what to call them: those given, else ./cases, else the bundled catalogue."""
    if paths:
        return paths, ", ".join(paths)
    if Path(DEFAULT_CASES).is_dir():
        return [DEFAULT_CASES], f"./{DEFAULT_CASES}"
    folder = shown_path(bundled("cases"))
    return [folder], f"{folder} (the catalogue bundled with chat-conformance)"


def default_recordings() -> tuple[str, str]:
    """The recordings a run with no endpoint replays: ./recordings, else those bundled with the package."""
    if Path(DEFAULT_RECORDINGS).is_dir():
        return DEFAULT_RECORDINGS, f"./{DEFAULT_RECORDINGS}"
    folder = shown_path(bundled("recordings"))
    return folder, f"{folder} (bundled with chat-conformance)"


def replay_banner(recordings: dict[tuple[str, str], Recording], directory: str, endpoints: list[Endpoint]) -> str:
    """Said on every page of a replayed run: these answers are recordings, and where they came from."""
    names = {e.name for e in endpoints}
    described = []
    dates: set[str] = set()
    for name in sorted(names):
        mine = [r for (endpoint, _), r in recordings.items() if endpoint == name]
        sources = sorted({str(r.provenance.get("source", "live")) for r in mine})
        servers = sorted({str(r.provenance.get("server")) for r in mine if r.provenance.get("server")})
        models = sorted({str(r.endpoint.get("model")) for r in mine if r.endpoint.get("model")})
        dates |= {str(r.provenance.get("recorded_at") or r.provenance.get("retrieved") or "?")[:10] for r in mine}
        origin = "documentation examples" if sources == ["documentation"] else f"{', '.join(sources)} answers"
        parts = [origin, *(f"server {s}" for s in servers), f"model {', '.join(models) or 'none'}"]
        described.append(f"{name} ({'; '.join(parts)})")
    span = " to ".join(sorted(dates)[:: max(1, len(dates) - 1)]) if dates else "?"
    return f"REPLAYED FROM RECORDINGS in {directory}, not a live run: {', '.join(described)}; made {span}."


def targets(
    endpoints: tuple[Endpoint, ...], args: argparse.Namespace, replay_dirs: Sequence[str], options: Options
) -> dict[str, str]:
    """For each endpoint, the flags that point `harness run` at it again (for "reproduce with").

    Values given on the command line are redacted as everything written is (a `--redact` project id, say).
    """
    from .redact import Redactor

    redactor = Redactor(options.extra_secrets)
    quote = shlex.quote
    out = {}
    for e in endpoints:
        if replay_dirs:
            flags = " ".join(f"--replay {quote(d)}" for d in replay_dirs) + f" --endpoint {quote(e.name)}"
        elif args.base_url or args.kind:
            given = {k: getattr(args, k) for k in ENDPOINT_FLAGS if k != "profile" and getattr(args, k) is not None}
            if "base_url" in given:
                given["base_url"] = e.base_url  # as shown: redacted
            flags = " ".join(f"--{k.replace('_', '-')} {quote(redactor.text(str(v)))}" for k, v in given.items())
            flags += f" --name {quote(e.name)}" if e.name != "cli" else ""
        else:
            flags = f"--config {quote(args.config or DEFAULT_CONFIG)} --endpoint {quote(e.name)}"
        if args.profile:
            flags += f" --profile {quote(args.profile)}"
        out[e.name] = flags
    return out


def sending_options(args: argparse.Namespace, concurrency: int) -> Options:
    """How to send, from the flags `run` and `fuzz` share."""
    from .redact import SHORTEST
    from .sending import Options

    secrets = [os.environ[n] for n in args.redact_env if os.environ.get(n)]
    for value in args.redact:
        if len(value) < SHORTEST:  # silently showing what was asked to be hidden would be worse than stopping
            raise ConfigError(
                Problem("--redact", f"a value of {len(value)} characters is too short to redact (at least {SHORTEST})")
            )
    secrets += args.redact
    return Options(
        concurrency=concurrency,
        timeout=args.timeout,
        deadline=args.deadline,
        retries=max(0, args.retries),
        max_response_bytes=args.max_response_bytes,
        stream_idle_timeout=args.stream_idle_timeout,
        extra_secrets=tuple(secrets),
        clients=not getattr(args, "no_clients", False),
    )


def shown_endpoints(endpoints: Sequence[Endpoint], options: Options) -> tuple[Endpoint, ...]:
    """The endpoints as reports may show them: URLs redacted, no headers (they may carry credentials)."""
    from .redact import Redactor

    redactor = Redactor(options.extra_secrets)
    return tuple(e.shown(redactor.url) for e in endpoints)


def replay_folders(args: argparse.Namespace) -> tuple[list[str], str]:
    """The recordings folders a run answers from, and how to name them: `--replay`, else none when an endpoint
    is named (or ./harness.yaml names one), else the default recordings (a run with no endpoint replays)."""
    folders: list[str] = list(args.replay or [])
    if folders or names_endpoint(args) or configured():
        return folders, ", ".join(folders)
    folder, named = default_recordings()
    return [folder], named
