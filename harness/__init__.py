"""chat-conformance: does an OpenAI-compatible Chat Completions endpoint really behave as documented?

Cases (YAML) become requests; each exchange is checked against JSON Schemas and the case's expectations;
findings are weighed by a profile into a verdict; verdicts go to reports. `harness run` does all of it.

The public names are imported on first use, so that `harness --help` and a pytest run that never touches
the harness do not pay for httpx, jsonschema and the rest.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .cases import Case, Expect, load_cases
    from .checks import CheckContext, check
    from .endpoints import Endpoint
    from .engine import run
    from .errors import CaseFileError, ConfigError, HarnessError
    from .models import Exchange, Finding, Result, Severity, Verdict
    from .profiles import Profile, load_profile
    from .sending import Options

_HOME = {
    "Case": "cases",
    "Expect": "cases",
    "load_cases": "cases",
    "CheckContext": "checks",
    "check": "checks",
    "Endpoint": "endpoints",
    "CaseFileError": "errors",
    "ConfigError": "errors",
    "HarnessError": "errors",
    "Exchange": "models",
    "Finding": "models",
    "Result": "models",
    "Severity": "models",
    "Verdict": "models",
    "Profile": "profiles",
    "load_profile": "profiles",
    "Options": "sending",
    "run": "engine",
}

__all__ = [
    "Case",
    "CaseFileError",
    "CheckContext",
    "ConfigError",
    "Endpoint",
    "Exchange",
    "Expect",
    "Finding",
    "HarnessError",
    "Options",
    "Profile",
    "Result",
    "Severity",
    "Verdict",
    "__version__",
    "check",
    "load_cases",
    "load_profile",
    "run",
]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        value = getattr(import_module(f".{_HOME[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
