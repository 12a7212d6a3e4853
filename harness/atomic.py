"""Writing files so that a reader (or a crash) sees the old content or the new, never half of either."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

__all__ = ["atomic_stream", "atomic_write"]


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to a temp file beside `path`, flush it to disk, then rename it over `path`."""
    atomic_stream(path, lambda handle: handle.write(text))


def atomic_stream(path: Path, write: Callable[[TextIO], object]) -> None:
    """Let `write` fill a temp file beside `path` piece by piece, flush it to disk, then rename it over `path`.

    A file too large to build in memory (results.json of a long run) is written this way; a crash or a second
    Ctrl-C while it is written leaves the old file or none, never half of the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with mode 0o666 lets the umask decide, as for any file the user writes (mkstemp forces 0600).
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
