"""The data that ships inside the package: JSON Schemas, profiles, the catalogue, recordings, a starter suite, and
the script that runs the Node.js client.

Everything a run needs is package data read through `importlib.resources`, so an installed wheel behaves the
same from any folder as a checkout does; this module is the only one that knows where that data lives. It
imports nothing heavy, since `harness --help` lists the built-in profiles.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["BUNDLED", "bundled", "profile_names"]

BUNDLED = ("schemas", "profiles", "cases", "recordings", "starter", "clients")


def bundled(name: str) -> Path:
    """The folder of bundled data called `name` (one of `BUNDLED`), as a real path on disk.

    The package is installed as files (a wheel, or a checkout), never imported from a zip, so the folder can
    be walked and shown to the user as a path they can open.
    """
    if name not in BUNDLED:
        raise ValueError(f"no bundled data called {name!r}; expected one of {', '.join(BUNDLED)}")
    folder = files("harness") / "data" / name
    path = Path(str(folder))
    if not path.is_dir():
        raise FileNotFoundError(f"the package's bundled {name}/ folder is missing ({path}): reinstall chat-conformance")
    return path


def profile_names() -> list[str]:
    """The built-in profiles, by name."""
    return sorted(p.stem for p in bundled("profiles").glob("*.yaml"))
