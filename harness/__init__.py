"""chat-conformance: does an OpenAI-compatible Chat Completions endpoint really behave as documented?

Cases (YAML) become requests; each exchange is checked against JSON Schemas and the case's expectations;
findings are weighed by a profile into a verdict; verdicts go to reports. `harness run` does all of it.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .cases import Case, Expect, load_cases
from .checks import CheckContext, check
from .endpoints import Endpoint
from .errors import CaseFileError, ConfigError, HarnessError
from .models import Exchange, Finding, Result, Severity, Verdict
from .profiles import Profile, load_profile
from .runner import Options, run

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
