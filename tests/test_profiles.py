"""Profiles: the built-in ones weigh codes as documented, and a user's profile file can adjust them."""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path

import pytest
import yaml

from harness.checks import all_codes
from harness.errors import ConfigError
from harness.models import Finding, Severity
from harness.profiles import Profile, builtin_profiles, load_profile
from harness.resources import bundled

BUILTINS = ["gemini-api", "generic", "openai", "self-deployed", "vertex"]
PROVIDERS = ["gemini-api", "self-deployed", "vertex"]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def level(profile: Profile, code: str) -> str:
    severity = profile.rule(code).severity
    return severity.value if severity else "off"


def test_builtin_profiles_are_listed() -> None:
    assert builtin_profiles() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name and profile.description
    assert Path(profile.origin) == bundled("profiles") / f"{name}.yaml"
    for code in all_codes():
        assert level(profile, code) in ("error", "warning", "off")


@pytest.mark.parametrize(
    ("code", "generic", "openai"),
    [
        ("response.id_prefix", "off", "error"),
        ("response.nullable_members", "off", "error"),
        ("response.usage_present", "warning", "error"),
        ("response.usage_total_includes_reasoning", "warning", "error"),
        ("errors.openai_shape", "warning", "error"),
        ("structured.truncated", "warning", "warning"),
        ("response.schema", "error", "error"),
        ("tools.arguments_valid", "error", "error"),
        ("transport.connect", "error", "error"),
    ],
)
def test_generic_and_openai_severities(code: str, generic: str, openai: str) -> None:
    assert (level(load_profile("generic"), code), level(load_profile("openai"), code)) == (generic, openai)


@pytest.mark.parametrize("name", PROVIDERS)
def test_provider_allowances_name_a_url(name: str) -> None:
    """Every rule a provider profile sets itself names where the behaviour is documented: a deviation it allows
    (a warning), or a documented feature it holds the endpoint to (an error, e.g. Vertex's thought tags)."""
    own = yaml.safe_load((bundled("profiles") / f"{name}.yaml").read_text(encoding="utf-8"))["checks"]
    assert own
    profile = load_profile(name)
    for code in own:
        rule = profile.rule(code)
        assert rule.severity is not None, code
        assert rule.note and "https://" in rule.note, f"{name}: {code} does not name its source"
        if rule.severity is Severity.ERROR:
            assert rule.note.lstrip().startswith("documented"), f"{name}: {code} is held as documented"


@pytest.mark.parametrize("name", PROVIDERS)
def test_provider_profiles_are_generic_elsewhere(name: str) -> None:
    own = yaml.safe_load((bundled("profiles") / f"{name}.yaml").read_text(encoding="utf-8"))["checks"]
    generic, profile = load_profile("generic"), load_profile(name)
    for code in set(all_codes()):
        if not any(fnmatch.fnmatchcase(code, pattern) for pattern in own):
            assert profile.rule(code) == generic.rule(code), code


def test_judge_applies_severity_and_note_or_drops() -> None:
    finding = Finding("errors.openai_shape", "/response/body", "not OpenAI's shape")
    judged = load_profile("vertex").judge(finding)
    assert judged is not None and judged.severity is Severity.WARNING and judged.note and "https://" in judged.note
    assert judged.message == finding.message and judged.pointer == finding.pointer
    assert load_profile("generic").judge(Finding("response.id_prefix", "/response/body/id", "x")) is None
    kept = load_profile("openai").judge(Finding("response.id_prefix", "/response/body/id", "x"))
    assert kept is not None and kept.severity is Severity.ERROR


# --- user profiles ------------------------------------------------------------------------------------------------

USER = """\
name: mine
description: OpenAI, but relaxed about tools and ids.
extends: openai
checks:
  response.id_prefix: "off"
  response.usage_present: warning
  tools.*: warning
  tools.call_ids: error
  errors.openai_shape:
    severity: warning
    note: our gateway rewrites errors
"""


def test_user_profile_extends_openai(tmp_path: Path) -> None:
    profile = load_profile(str(write(tmp_path, "mine.yaml", USER)))
    assert profile.name == "mine" and profile.origin == str(tmp_path / "mine.yaml")
    assert level(profile, "response.id_prefix") == "off"
    assert level(profile, "response.usage_present") == "warning"
    assert level(profile, "response.nullable_members") == "error", "inherited from openai"
    assert level(profile, "tools.arguments_valid") == "warning", "from the wildcard"
    assert level(profile, "tools.name_declared") == "warning"
    assert level(profile, "tools.call_ids") == "error", "the exact code is more specific than tools.*"
    assert level(profile, "response.schema") == "error"
    assert profile.rule("errors.openai_shape").note == "our gateway rewrites errors"


def test_bare_off_in_yaml_means_off(tmp_path: Path) -> None:
    """YAML 1.1 reads an unquoted `off` as false; a profile still means "off" by it."""
    path = write(tmp_path, "p.yaml", "name: p\nchecks:\n  response.schema: off\n")
    assert level(load_profile(str(path)), "response.schema") == "off"


def test_empty_checks_section_is_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nextends: openai\nchecks:\n#  tools.*: warning\n")
    assert load_profile(str(path)).rules == load_profile("openai").rules


def test_checks_section_may_be_left_out(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nextends: openai\n")
    assert load_profile(str(path)).rules == load_profile("openai").rules


def test_most_specific_wildcard_wins(tmp_path: Path) -> None:
    text = "name: w\nchecks:\n  '*': warning\n  response.*: 'off'\n  response.usage_*: error\n"
    profile = load_profile(str(write(tmp_path, "w.yaml", text)))
    assert level(profile, "tools.call_ids") == "warning"
    assert level(profile, "response.schema") == "off"
    assert level(profile, "response.usage_total") == "error"


def test_user_profile_extends_a_file_beside_it(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "name: base\nextends: openai\nchecks:\n  tools.*: 'off'\n")
    child = write(tmp_path, "child.yaml", "name: child\nextends: base.yaml\nchecks:\n  tools.call_ids: warning\n")
    profile = load_profile(str(child))
    assert level(profile, "tools.name_declared") == "off"
    assert level(profile, "tools.call_ids") == "warning"
    assert level(profile, "response.id_prefix") == "error"


def test_unknown_code_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nextends: openai\nchecks:\n  response.id_prefx: 'off'\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(str(path))
    [problem] = exc.value.problems
    assert (problem.path, problem.line) == (str(path), 4)
    assert "unknown check code 'response.id_prefx' (did you mean 'response.id_prefix'?)" in problem.message


def test_wildcard_matching_no_code_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nchecks:\n  tool.*: warning\n")
    with pytest.raises(ConfigError, match=r"unknown check code 'tool\.\*'"):
        load_profile(str(path))


@pytest.mark.parametrize(
    "value", ["fatal", "1", "{severity: loud}", "{severity: warning, note: 3}", "[1]", "{severity: [error]}"]
)
def test_bad_severity_is_an_error(tmp_path: Path, value: str) -> None:
    path = write(tmp_path, "p.yaml", f"name: p\nchecks:\n  response.schema: {value}\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(str(path))
    assert str(exc.value).startswith(f"{path}:3:") and "expected error, warning or off" in str(exc.value)


def test_unknown_profile_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nextend: openai\nchecks: {}\n")
    with pytest.raises(ConfigError, match="unknown key 'extend'"):
        load_profile(str(path))


def test_broken_profile_yaml_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nchecks: [\n")
    with pytest.raises(ConfigError) as exc:
        load_profile(str(path))
    assert str(exc.value).startswith(f"{path}:3:")


def test_missing_profile_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such profile file"):
        load_profile(str(tmp_path / "absent.yaml"))


def test_unknown_profile_name_lists_the_builtins() -> None:
    with pytest.raises(ConfigError) as exc:
        load_profile("opnai")
    message = str(exc.value)
    assert "unknown profile 'opnai' (did you mean 'openai'?)" in message
    for name in BUILTINS:
        assert name in message


def test_unknown_parent_profile_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nextends: opnai\nchecks: {}\n")
    with pytest.raises(ConfigError, match="unknown profile 'opnai'"):
        load_profile(str(path))


LOOPS = {
    "two-files": {
        "a.yaml": "name: a\nextends: b.yaml\nchecks: {}\n",
        "b.yaml": "name: b\nextends: a.yaml\nchecks: {}\n",
    },
    "itself": {"a.yaml": "name: a\nextends: a.yaml\nchecks: {}\n"},
}


def _load_loop(tmp_path: Path, loop: str) -> ConfigError:
    for name, text in LOOPS[loop].items():
        write(tmp_path, name, text)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as exc:
        load_profile(str(tmp_path / "a.yaml"))
    assert time.perf_counter() - started < 5
    return exc.value


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_extends_loop_is_an_error_not_a_hang(tmp_path: Path, loop: str) -> None:
    messages = [p.message for p in _load_loop(tmp_path, loop).problems]
    assert any("loop" in m for m in messages), messages


def test_a_child_pattern_overrides_what_the_parent_said_of_each_code(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nextends: openai\nchecks:\n  errors.*: warning\n")
    assert level(load_profile(str(path)), "errors.openai_shape") == "warning"
    assert level(load_profile("openai"), "errors.openai_shape") == "error"


def test_a_profile_is_read_once_while_its_file_is_unchanged(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nextends: generic\nchecks:\n  response.schema: warning\n")
    first = load_profile(str(path))
    assert load_profile(str(path)) is first
    assert load_profile("generic") is load_profile("generic")
    write(tmp_path, "p.yaml", "name: p\nextends: generic\nchecks:\n  response.schema: off\n")
    changed = load_profile(str(path))
    assert changed is not first and changed.rule("response.schema").severity is None


def test_a_profile_documents_parameters_and_a_child_inherits_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yaml",
        "name: p\nextends: vertex\nparameters:\n  logprobs: {status: supported, url: 'https://docs.example'}\n"
        "  store: refused\n",
    )
    profile = load_profile(str(path))
    assert profile.parameters["logprobs"].status == "supported"
    assert profile.parameters["logprobs"].url == "https://docs.example"
    assert profile.parameters["store"].status == "refused"
    assert profile.parameters["stop"].status == "supported"  # from vertex
    assert profile.parameters["verbosity"].status == "ignored"


@pytest.mark.parametrize("name", ["vertex", "gemini-api", "openai"])
def test_documented_parameters_name_their_source(name: str) -> None:
    profile = load_profile(name)
    assert profile.parameters
    for documented in profile.parameters.values():
        assert documented.url.startswith("https://")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("  logprob: supported\n", 4, "unknown parameter 'logprob' (did you mean 'logprobs'?)"),
        ("  logprobs: maybe\n", 4, "expected supported, ignored, refused"),
        ("  logprobs: {status: supported, link: x}\n", 4, "expected supported, ignored, refused"),
    ],
)
def test_a_bad_documented_parameter_is_an_error(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, "p.yaml", "name: p\nchecks: {}\nparameters:\n" + text)
    with pytest.raises(ConfigError) as exc:
        load_profile(str(path))
    [problem] = exc.value.problems
    assert (problem.path, problem.line) == (str(path), line)
    assert message in problem.message
