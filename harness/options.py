"""Every run option, declared once: its flag, type, default, help and the commands that take it.

The CLI builds its flags from `OPTIONS`; the pytest plugin and a config file can read the same table, as Tavern
declares each option once for its command line and its ini file. This module imports nothing of the harness,
so `harness --help` lists every option without loading what a run needs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_CASES",
    "DEFAULT_CONFIG",
    "DEFAULT_EXPORT",
    "DEFAULT_RECORDINGS",
    "FUZZ_PARTS",
    "GROUPS",
    "KINDS",
    "OPTIONS",
    "Option",
    "positive_float",
    "positive_int",
]

DEFAULT_CASES = "cases"
DEFAULT_CONFIG = "harness.yaml"
DEFAULT_RECORDINGS = "recordings"
DEFAULT_EXPORT = "regressions"  # beside ./cases, not in it: a plain `harness run` must not pick them up

# How an endpoint's URL and credentials are built: any base URL, or one of Google's documented surfaces.
KINDS = ("openai", "vertex", "vertex-endpoint", "gemini-api")

# The parts a fuzz run may leave out: content part types, request features, and sampling parameters.
FUZZ_PARTS = frozenset(
    {
        "image_url",
        "input_audio",
        "tools",
        "response_format",
        "stream",
        "google",
        "system",
        "multi_turn",
        "temperature",
        "top_p",
        "n",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
    }
)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """One option. `name` is its key (`base_url`), in flags `--base-url`; `repeat` collects every use into a list,
    `switch` is a flag with no value; `exclusive` names options that cannot be given together. `{profiles}` in a
    help text is filled with the built-in profiles' names."""

    name: str
    help: str
    group: str
    commands: frozenset[str] = frozenset({"run", "fuzz"})
    type: Callable[[str], Any] | None = None
    default: Any = None
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    repeat: bool = False
    switch: bool = False
    short: str | None = None
    exclusive: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


GROUPS = {
    "endpoint": "endpoint",
    "recordings": "recordings",
    "selection": "which cases",
    "budget": "budget (real endpoints cost money and have quotas)",
    "vary": "what to vary",
    "sending": "sending",
    "output": "output",
}

_RUN = frozenset({"run"})
_FUZZ = frozenset({"fuzz"})
_READ = frozenset({"compare", "diff"})  # commands that read earlier runs and recording sets back

OPTIONS: tuple[Option, ...] = (
    Option(name="base_url", group="endpoint", help="the endpoint's base URL, e.g. http://127.0.0.1:8080/v1"),
    Option(
        name="kind",
        group="endpoint",
        choices=KINDS,
        help="build the URL as Google documents it (vertex, vertex-endpoint, gemini-api)",
    ),
    Option(name="project", group="endpoint", help="Google Cloud project (--kind vertex, vertex-endpoint)"),
    Option(
        name="location", group="endpoint", help="region such as us-central1, or global (--kind vertex, vertex-endpoint)"
    ),
    Option(
        name="endpoint_id",
        group="endpoint",
        help="Vertex AI endpoint id of a model you deployed (--kind vertex-endpoint)",
    ),
    Option(name="api_version", group="endpoint", choices=("v1", "v1beta1"), help="Vertex AI API version (default v1)"),
    Option(
        name="api_endpoint",
        group="endpoint",
        metavar="URL",
        help="another scheme and host for a Google --kind's documented URL, path kept (e.g. http://127.0.0.1:8080)",
    ),
    Option(
        name="credentials",
        group="endpoint",
        metavar="adc|FILE",
        help="Google credentials: adc (default for vertex kinds) or a key file",
    ),
    Option(
        name="access_token_env",
        group="endpoint",
        metavar="NAME",
        help="environment variable holding an OAuth access token (not refreshed)",
    ),
    Option(name="model", group="endpoint", help="fills ${model} in cases (leave out for endpoints that take none)"),
    Option(
        name="api_key_env",
        group="endpoint",
        metavar="NAME",
        help="environment variable holding the API key (sent as a bearer token)",
    ),
    Option(name="header", group="endpoint", repeat=True, metavar="'K: V'", help="extra request header (repeatable)"),
    Option(
        name="var", group="endpoint", repeat=True, metavar="NAME=VALUE", help="a ${NAME} placeholder value (repeatable)"
    ),
    Option(
        name="profile",
        group="endpoint",
        commands=frozenset({"run", "fuzz", *_READ}),
        help="how to weigh findings: {profiles}, or a profile .yaml (compare, diff: for recordings replayed)",
    ),
    Option(
        name="cases",
        group="recordings",
        commands=_READ,
        repeat=True,
        metavar="PATH",
        help=f"case files or folders to replay recordings against (default: ./{DEFAULT_CASES}/, else the bundled "
        "catalogue)",
    ),
    Option(name="config", group="endpoint", help=f"endpoint config file (default: ./{DEFAULT_CONFIG} when it exists)"),
    Option(
        name="endpoint",
        group="endpoint",
        repeat=True,
        metavar="NAME",
        help="endpoint from the config or the recordings (repeatable; default all)",
    ),
    Option(
        name="name",
        group="endpoint",
        default="cli",
        help="name of the --base-url or --kind endpoint in reports and recordings",
    ),
    Option(
        name="record",
        group="recordings",
        commands=_RUN,
        metavar="DIR",
        help="write each exchange as a recording into DIR/<endpoint>/<case>.yaml",
    ),
    Option(
        name="replay",
        group="recordings",
        commands=_RUN,
        repeat=True,
        metavar="DIR",
        help="answer every request from the recordings in DIR (repeatable), with no network "
        f"(default with no endpoint: ./{DEFAULT_RECORDINGS}, else the bundled recordings)",
    ),
    Option(
        name="select",
        group="selection",
        commands=_RUN,
        repeat=True,
        metavar="ID|TAG",
        help="only cases whose id or tag matches (wildcards, commas; !PATTERN leaves out what matches)",
    ),
    Option(
        name="concurrency",
        group="sending",
        commands=_RUN,
        type=positive_int,
        default=4,
        help="requests in flight at once (default 4)",
    ),
    Option(
        name="repeat",
        group="sending",
        commands=_RUN,
        type=positive_int,
        default=1,
        metavar="N",
        help="send each case N times, for latency percentiles over several answers (default 1)",
    ),
    Option(
        name="no_clients",
        group="sending",
        switch=True,
        help="leave the official SDKs out: no client.* checks, no openai import, no Node.js process (about half "
        "a plain run's CPU)",
    ),
    Option(
        name="dry_run",
        group="sending",
        commands=_RUN,
        switch=True,
        help="print each request as it would be sent (credentials named, not fetched) and send nothing",
    ),
    Option(
        name="max_examples",
        group="budget",
        commands=_FUZZ,
        type=positive_int,
        default=100,
        help="variants to generate (default 100)",
    ),
    Option(
        name="max_requests",
        group="budget",
        commands=_FUZZ,
        type=positive_int,
        help="stop after this many requests, shrinking included",
    ),
    Option(
        name="budget",
        group="budget",
        commands=_FUZZ,
        type=positive_float,
        metavar="SECONDS",
        help="stop after this much wall-clock time",
    ),
    Option(
        name="rate",
        group="budget",
        commands=_FUZZ,
        type=positive_float,
        metavar="RPS",
        help="at most this many requests per second",
    ),
    Option(name="seed", group="budget", commands=_FUZZ, type=int, help="make the run reproducible"),
    Option(
        name="pin",
        group="vary",
        commands=_FUZZ,
        repeat=True,
        metavar="NAME=VALUE",
        help="fix a request member, e.g. n=1 (VALUE is JSON, or a string)",
    ),
    Option(
        name="exclude",
        group="vary",
        commands=_FUZZ,
        repeat=True,
        metavar="PART",
        help=f"leave a part out (repeatable): {', '.join(sorted(FUZZ_PARTS))}",
    ),
    Option(
        name="no_invalid",
        group="vary",
        commands=_FUZZ,
        switch=True,
        help="only valid variants (no requests that must be refused)",
    ),
    Option(
        name="export",
        group="vary",
        commands=_FUZZ,
        metavar="DIR",
        default=DEFAULT_EXPORT,
        help=f"where each failure is written as a case, for `harness run DIR` (default {DEFAULT_EXPORT}/)",
    ),
    Option(
        name="timeout",
        group="sending",
        type=positive_float,
        default=60.0,
        help="seconds to wait for an answer's first byte (a request may queue at a busy server), then between the "
        "bytes of a plain answer; connecting gets at most 10 (default 60)",
    ),
    Option(
        name="deadline",
        group="sending",
        type=positive_float,
        default=180.0,
        help="seconds one case may take, retries included (default 180)",
    ),
    Option(
        name="retries",
        group="sending",
        type=int,
        default=2,
        help="retries of a 429 or 503 answer, honouring Retry-After (default 2)",
    ),
    Option(
        name="stream_idle_timeout",
        group="sending",
        type=positive_float,
        default=30.0,
        help="seconds a stream may go without data once it has started, before the case ends as an error; "
        "until its first byte, --timeout applies (default 30)",
    ),
    Option(
        name="max_response_bytes",
        group="sending",
        type=positive_int,
        default=16 * 1024 * 1024,
        help="larger answers are an error (default 16 MiB)",
    ),
    Option(
        name="redact_env",
        group="output",
        repeat=True,
        metavar="NAME",
        help="also redact the value of this variable everywhere (repeatable)",
    ),
    Option(
        name="redact",
        group="output",
        repeat=True,
        metavar="VALUE",
        help="also redact this value everywhere, e.g. a project or endpoint id not to publish (repeatable)",
    ),
    Option(
        name="report_dir",
        group="output",
        commands=frozenset({"run", "fuzz", "compare"}),
        help="where to write the report (default: reports/<run-id>/)",
    ),
    Option(
        name="json",
        group="output",
        commands=_READ,
        switch=True,
        help="print JSON instead of text",
    ),
    Option(
        name="quiet",
        group="output",
        short="-q",
        switch=True,
        exclusive="chatter",
        help="print only failures, the closing count and the report paths",
    ),
    Option(
        name="verbose",
        group="output",
        commands=_RUN,
        short="-v",
        switch=True,
        exclusive="chatter",
        help="also show cases that passed with warnings",
    ),
    Option(
        name="color",
        group="output",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour: auto (a terminal, unless NO_COLOR is set), always (CI logs that render it), never",
    ),
)
