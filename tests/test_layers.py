"""Data flows one way (case → request → exchange → findings → verdict → report): no module reaches back up."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "harness"

# Each module and the modules downstream of it, which it must never import.
LATER = {"engine", "events"}  # the run as a whole: nothing that builds or judges one exchange reaches them
EVERYTHING = {
    "yamlfile", "cases", "sse", "streams", "checks", "profiles", "transport", "recordings", "runner",
    "planning", "sending", "exchanges", "judging",
    "report", "strategies", "fuzz", "cli", "compare", "endpoints", "auth", "schemas", "models", "support",
    "parameters", "clients", "network", *LATER,
}  # fmt: skip
FORBIDDEN = {
    "options": EVERYTHING,
    "bounded": EVERYTHING,  # reading JSON an endpoint sent, within bounds: below every module that reads answers
    "decoding": EVERYTHING,
    "network": EVERYTHING,  # live sending on aiohttp: a transport below everything that sends
    "resources": EVERYTHING,
    "scheduling": EVERYTHING,  # imported by the pytest plugin under pytest-xdist: it needs nothing of a run
    "yamlfile": {"cases", "checks", "runner", "report", "cli", "fuzz", "profiles", *LATER},
    "cases": {"checks", "runner", "report", "cli", "fuzz", "profiles", "transport", "recordings", *LATER},
    "sse": {"checks", "runner", "report", "cli", "fuzz", "profiles", "streams", *LATER},
    "streams": {"checks", "runner", "report", "cli", "fuzz", "profiles", *LATER},
    # The SDKs fed an answer: below the checks that judge what they make of it.
    "clients": {"checks", "judging", "runner", "report", "cli", "fuzz", "profiles", "transport", "sending", *LATER},
    "checks": {"runner", "report", "cli", "fuzz", "profiles", "transport", "recordings", "auth", "support", *LATER},
    "profiles": {"runner", "report", "cli", "fuzz", "support", *LATER},
    "parameters": EVERYTHING,  # the catalogue of parameters: data that profiles, checks' users and reports all read
    # Downstream of judging: it reads judged results, so nothing that makes or judges one may import it.
    "support": {"runner", "engine", "report", "cli", "fuzz", "checks", "transport", "sending", "planning", "judging"},
    "transport": {"runner", "checks", "report", "cli", "fuzz", "profiles", *LATER},
    "recordings": {"runner", "checks", "report", "cli", "fuzz", "profiles", "transport", *LATER},
    "planning": {"sending", "exchanges", "checks", "judging", "runner", "report", "cli", "fuzz", *LATER},
    "sending": {"checks", "judging", "runner", "report", "cli", "fuzz", "strategies", *LATER},
    "exchanges": {"sending", "checks", "judging", "runner", "report", "cli", "fuzz", "transport", *LATER},
    "judging": {"sending", "runner", "report", "cli", "fuzz", "transport", "support", *LATER},
    "runner": {"report", "cli", "fuzz", "strategies", *LATER},
    "events": {"runner", "engine", "report", "cli", "fuzz", "checks", "transport"},
    "engine": {"report", "cli", "fuzz", "strategies"},
    "report": {"runner", "engine", "cli", "fuzz", "checks", "transport", "compare"},
    "compare": {"cli", "fuzz", "strategies"},  # runs and recordings read back: above the engine, below the CLI
    "strategies": {"runner", "report", "cli", "fuzz", "checks", *LATER},
    "fuzz": {"cli"},
    "setup": {"runner", "engine", "report", "cli", "fuzz", "strategies", "checks"},
}


def _imports(path: Path) -> set[str]:
    """The harness modules a file imports, by their first name under the package."""
    names: set[str] = set()
    package = path.relative_to(PACKAGE.parent).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = (
                list(package[: len(package) - node.level])
                if path.name != "__init__.py"
                else list(package[: len(package) - node.level + 1])
            )
            parts = base + (node.module.split(".") if node.module else [])
            if len(parts) > 1:
                names.add(parts[1])
            else:
                names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            for name in [module] if module else [a.name for a in node.names]:  # type: ignore[union-attr]
                if name and name.startswith("harness."):
                    names.add(name.split(".")[1])
    return names


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_no_module_imports_what_comes_after_it(module: str) -> None:
    files = (
        [PACKAGE / f"{module}.py"] if (PACKAGE / f"{module}.py").exists() else sorted((PACKAGE / module).glob("*.py"))
    )
    assert files
    for path in files:
        reached = _imports(path) & FORBIDDEN[module]
        assert not reached, f"{path.relative_to(PACKAGE.parent)} imports {sorted(reached)}, which come after it"


def test_only_the_entry_points_import_the_cli() -> None:
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("cli.py", "__main__.py"):
            assert "cli" not in _imports(path), path
