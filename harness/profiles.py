"""Profiles: how much each check code weighs for a kind of endpoint.

A check reports what it sees; the profile decides whether that fails the case (`error`), is reported
without failing (`warning`), or is not reported (`off`), and says why, usually by naming the provider's
documentation. Profiles are YAML data (built-in ones in `harness/data/profiles/`, or a user's file) that can
`extend` one another, so a provider difference is a line of data, never an `if provider ==` branch.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .checks import all_codes
from .errors import ConfigError, HarnessError, Problem
from .models import Finding, Severity
from .parameters import DOCUMENTED, PARAMETERS, Documented
from .pointer import join
from .resources import bundled, profile_names
from .yamlfile import Source, load_yaml

__all__ = ["Profile", "Rule", "builtin_profiles", "load_profile"]

_LEVELS = {"error": Severity.ERROR, "warning": Severity.WARNING, "off": None}


@dataclass(frozen=True, slots=True)
class Rule:
    """The weight of one code (or wildcard pattern of codes) under a profile. `severity` None means off."""

    severity: Severity | None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    """A named table from check code to `Rule` (codes it does not name are errors), and what the provider documents
    of each request parameter (`parameters`), which the support matrix holds its verdicts against."""

    name: str
    description: str = ""
    rules: dict[str, Rule] = field(default_factory=dict)
    origin: str = ""
    parameters: dict[str, Documented] = field(default_factory=dict)

    def rule(self, code: str) -> Rule:
        if code in self.rules:
            return self.rules[code]
        matches = [p for p in self.rules if fnmatch.fnmatchcase(code, p)]
        if matches:
            return self.rules[max(matches, key=len)]  # the most specific pattern wins
        return Rule(Severity.ERROR)

    def judge(self, finding: Finding) -> Finding | None:
        """The finding with this profile's severity and note, or None when the profile turns it off."""
        rule = self.rule(finding.code)
        if rule.severity is None:
            return None
        return replace(finding, severity=rule.severity, note=rule.note or finding.note)


def builtin_profiles() -> list[str]:
    return profile_names()


def _parse_rules(source: Source, data: Any) -> tuple[dict[str, Rule], list[Problem]]:
    rules: dict[str, Rule] = {}
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return rules, [source.problem("/checks", "'checks' must map check codes to error, warning or off")]
    codes = all_codes()
    for code, value in data.items():
        pointer = join("/checks", code)
        if not any(fnmatch.fnmatchcase(c, code) for c in codes):
            close = difflib.get_close_matches(code, codes, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(source.problem(pointer, f"unknown check code {code!r}{hint}"))
            continue
        level, note = (value.get("severity"), value.get("note")) if isinstance(value, dict) else (value, None)
        if level is False:  # YAML 1.1 reads a bare `off` as false
            level = "off"
        if not isinstance(level, str) or level not in _LEVELS or (note is not None and not isinstance(note, str)):
            problems.append(
                source.problem(
                    pointer, f"expected error, warning or off (optionally as {{severity, note}}), got {value!r}"
                )
            )
            continue
        rules[code] = Rule(_LEVELS[level], note)
    return rules, problems


def _parse_parameters(source: Source, data: Any) -> tuple[dict[str, Documented], list[Problem]]:
    documented: dict[str, Documented] = {}
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return documented, [
            source.problem("/parameters", "'parameters' must map parameter names to what is documented")
        ]
    names = [p.name for p in PARAMETERS]
    for name, value in data.items():
        pointer = join("/parameters", str(name))
        if name not in names:
            close = difflib.get_close_matches(str(name), names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(source.problem(pointer, f"unknown parameter {name!r}{hint}", at_key=True))
            continue
        status, url, note = (
            (value.get("status"), value.get("url", ""), value.get("note", ""))
            if isinstance(value, dict)
            else (value, "", "")
        )
        extra = sorted(set(value) - {"status", "url", "note"}) if isinstance(value, dict) else []
        if status not in DOCUMENTED or not isinstance(url, str) or not isinstance(note, str) or extra:
            problems.append(
                source.problem(
                    pointer,
                    f"expected {', '.join(DOCUMENTED)} (optionally as {{status, url, note}}), got {value!r}",
                )
            )
            continue
        documented[str(name)] = Documented(status=status, url=url, note=note)
    return documented, problems


def _load(path: Path, seen: tuple[Path, ...]) -> Profile:
    if path.resolve() in seen:
        chain = " -> ".join(p.name for p in (*seen, path.resolve()))
        raise ConfigError(Problem(str(path), f"profiles extend each other in a loop: {chain}"))
    seen = (*seen, path.resolve())
    try:
        source = load_yaml(path)
    except HarnessError as exc:
        raise ConfigError(exc.problems) from None
    data = source.data
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ConfigError(source.problem("", "a profile is a mapping with at least 'name' and 'checks'"))
    unknown = sorted(set(data) - {"name", "description", "extends", "checks", "parameters"})
    if unknown:
        raise ConfigError(
            source.problem(
                join("", unknown[0]),
                f"unknown key {unknown[0]!r} in a profile; expected name, description, extends, checks, parameters",
                at_key=True,
            )
        )
    rules: dict[str, Rule] = {}
    parameters: dict[str, Documented] = {}
    if data.get("extends"):
        parent = _load(_locate(str(data["extends"]), path.parent), seen)
        rules.update(parent.rules)
        parameters.update(parent.parameters)
    own, problems = _parse_rules(source, data.get("checks") or {})
    documented, more = _parse_parameters(source, data.get("parameters") or {})
    if problems or more:
        raise ConfigError([*problems, *more])
    parameters.update(documented)
    for pattern in own:  # a child's `tools.*` overrides what its parent said of each tools code
        rules = {code: rule for code, rule in rules.items() if not fnmatch.fnmatchcase(code, pattern)}
    rules.update(own)
    return Profile(data["name"], str(data.get("description", "")), rules, str(path), parameters)


def _locate(name_or_path: str, base: Path | None) -> Path:
    """A profile file: a path (relative to the profile that extends it), or a built-in profile's name."""
    candidate = Path(name_or_path)
    if base is not None and not candidate.is_absolute() and (base / candidate).is_file():
        candidate = base / candidate
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        if not candidate.is_file():
            raise ConfigError(Problem(str(candidate), "no such profile file"))
        return candidate
    path = bundled("profiles") / f"{name_or_path}.yaml"
    if not path.is_file():
        names = builtin_profiles()
        close = difflib.get_close_matches(name_or_path, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            Problem(
                "--profile",
                f"unknown profile {name_or_path!r}{hint}; built-in profiles: "
                f"{', '.join(names)}, or a path to a profile .yaml",
            )
        )
    return path


_LOADED: dict[tuple[str, int, int], Profile] = {}


def load_profile(name_or_path: str) -> Profile:
    """A built-in profile by name (`generic`, `openai`, `vertex`, `gemini-api`, `self-deployed`) or a YAML file.

    Read once per process while its file is unchanged: the CLI checks a profile before anything is sent and the
    session weighs findings with it, and every endpoint of a run may name the same one.
    """
    path = _locate(name_or_path, None)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _LOADED:
        _LOADED[key] = _load(path, ())
    return _LOADED[key]
