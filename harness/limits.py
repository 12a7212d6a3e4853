"""How much the harness reads from one input: every bound in one place, with why it is where it is.

Case files, `harness.yaml`, profiles and recordings are data that anyone can hand the harness (a case in a pull
request, a recording someone downloaded). Unbounded, a kilobyte of YAML aliases expands to gigabytes and a 50 MB
file takes minutes; bounded, such input is refused at once, with its file, line and column and the bound it
broke, and memory stays small. Each bound is far above what the bundled catalogue and recordings need.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "DEFAULT_LIMITS",
    "MAX_CASES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_VALUES",
    "RECORDING_LIMITS",
    "Limits",
    "size",
]

MAX_FILE_BYTES = 8 * 1024 * 1024
"""Bytes in one YAML file. The largest bundled file (a recorded stream) is 72 KB; parsing 8 MiB already takes
seconds, and refusing a larger file costs nothing, since it is refused before it is read."""

MAX_VALUES = 100_000
"""Values in one YAML file (scalars, lists and mappings, keys included) with every alias expanded. Counted while
the file is composed, so an alias bomb is refused before it expands; the largest bundled file holds 1,405."""

MAX_DEPTH = 64
"""How deeply values nest in one YAML file, aliases expanded. The bundled files nest at most 11 deep; the bound
keeps every recursive reader (the loader, jsonschema, json) far from Python's recursion limit."""

MAX_CASES = 10_000
"""Cases in one run, and so case files too (each holds at least one): a run is read whole before anything is
sent, so a folder of a million files must be refused, not read."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds one read applies. A reader whose files are legitimately larger (a recording of a long answer)
    passes its own, so that raising one bound never loosens the others."""

    file_bytes: int = MAX_FILE_BYTES
    values: int = MAX_VALUES
    depth: int = MAX_DEPTH


DEFAULT_LIMITS = Limits()
"""What every YAML input is read with unless its reader says otherwise."""

RECORDING_LIMITS = Limits(file_bytes=256 * 1024 * 1024, values=4_000_000)
"""What a recording is read with: it holds an answer of up to --max-response-bytes (16 MiB by default, raised by
some users to 64 MiB), written as text chunks with their arrival times, so a recording that the harness itself
wrote must never be refused when it is replayed. Nesting stays bounded: bodies are stored as text, not as YAML."""


def size(count: int) -> str:
    """A byte count as a person reads it in an error message (8 MiB, 52.4 MiB, 900 bytes)."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            value = count / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{count} bytes"
