"""The pytest plugin: case files as pytest items, judged by the same engine and shown by the same failure block.

It is registered through the `pytest11` entry point, so pytest loads it in every run of an environment where
chat-conformance is installed, including runs that have nothing to do with it. Two rules follow. Importing it
loads only pytest, the stdlib and the option table (never httpx, Hypothesis or google-auth: the package's
`__init__` imports lazily, and what a run needs is imported inside the hooks). And it stays off, collecting
nothing, unless a `--harness-*` flag or a `harness_*` ini key asks for it.

Options come from `harness.options.OPTIONS`, as `--harness-<name>` flags and `harness_<name>` ini keys, resolved
flag > ini > default into the namespace `harness run` parses, then handed to `harness.setup`, which the CLI
uses too: the same flags reach the same endpoints and replay the same recordings. The items that remain once
pytest has selected them (`-k`, `-m`, `--deselect`, `--lf`) are run through the engine together, at the first
one's setup, so requests go out concurrently as in `harness run`; a pytest-xdist worker runs its items one by one.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import OPTIONS, Option

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, TracebackStyle

    from .cases import Case
    from .endpoints import Endpoint
    from .events import Handler, ResultReady, RunFinished, RunStarted
    from .models import Result
    from .recordings import Recording
    from .report.info import RunInfo
    from .sending import Options

__all__ = ["CaseFile", "CaseFileProblem", "CaseItem", "harness_endpoint", "harness_run_case"]

# What the command line prints and how (pytest has its own flags for that), and its dry run, which sends nothing
# and so has no verdict to give an item.
LEFT_OUT = frozenset({"dry_run", "quiet", "verbose", "color"})
PATTERN_KEY = "harness_case_pattern"
# The same as `harness.cases.CASE_FILE_PATTERNS` (a test holds them equal): that module imports jsonschema.
DEFAULT_PATTERNS = ("*.case.yaml", "*.case.yml")
# A tag named like one of pytest's own markers would change how pytest runs the item, not just select it.
PYTEST_MARKERS = frozenset({"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings"})


def _markers(tags: tuple[str, ...]) -> list[str]:
    """The markers a case's tags become. pytest names a marker by what comes before a colon, so `param:stop` is the
    marker `param` (`-m param` selects every probe; `-k` picks one)."""
    names = dict.fromkeys(tag.split(":", 1)[0] for tag in tags)
    return [name for name in names if name and name not in PYTEST_MARKERS]


def plugin_options() -> tuple[Option, ...]:
    """The run options pytest takes, in the table's order."""
    return tuple(o for o in OPTIONS if "run" in o.commands and o.name not in LEFT_OUT)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "chat-conformance (case files as tests; off unless a --harness-* flag is given)")
    for option in plugin_options():
        text = option.help.replace("{profiles}", "a built-in profile")
        more: dict[str, Any] = {"type": option.type} if option.type else {}
        if option.switch:
            group.addoption(
                f"--harness-{option.flag[2:]}",
                dest=f"harness_{option.name}",
                action="store_const",
                const=True,
                default=None,
                help=text,
            )
        else:
            group.addoption(
                f"--harness-{option.flag[2:]}",
                dest=f"harness_{option.name}",
                action="append" if option.repeat else "store",
                default=None,
                metavar=option.metavar or option.name.upper(),
                choices=option.choices,
                help=text,
                **more,
            )
        ini = f"harness_{option.name}"
        if option.repeat:
            parser.addini(ini, f"as --harness-{option.flag[2:]}", type="args", default=None)
        elif option.switch:
            parser.addini(ini, f"as --harness-{option.flag[2:]}", type="bool", default=None)
        else:
            parser.addini(ini, f"as --harness-{option.flag[2:]}", type="string", default=None)
    parser.addini(
        PATTERN_KEY,
        f"file name patterns of case files to collect (default {' '.join(DEFAULT_PATTERNS)})",
        type="args",
        default=None,
    )


def given(config: pytest.Config, option: Option) -> Any:
    """The option's value from the command line, else from the ini file, else None (not given)."""
    value = config.getoption(f"harness_{option.name}")
    if value is not None:
        return value
    raw = config.getini(f"harness_{option.name}")
    if raw is None:
        return None
    if option.repeat:
        return list(raw)
    if option.switch:
        return bool(raw)
    try:
        value = option.type(raw) if option.type else raw
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise pytest.UsageError(f"ini key harness_{option.name}: {exc} (got {raw!r})") from None
    if option.choices and value not in option.choices:
        raise pytest.UsageError(
            f"ini key harness_{option.name}: expected one of {', '.join(option.choices)}, got {value!r}"
        )
    return value


def resolve(config: pytest.Config) -> argparse.Namespace | None:
    """The flags as `harness run` would have parsed them, or None when nothing asks for the plugin."""
    values = {option.name: given(config, option) for option in plugin_options()}
    if all(value is None for value in values.values()) and config.getini(PATTERN_KEY) is None:
        return None
    args = argparse.Namespace(paths=[])
    for option in OPTIONS:
        if "run" not in option.commands:
            continue
        value = values.get(option.name)
        if value is None:
            value = [] if option.repeat else False if option.switch else option.default
        setattr(args, option.name, value)
    return args


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What an item shows of its result: kept instead of the result, so no exchange outlives its judgement."""

    verdict: str
    text: str = ""
    warned: bool = False


@dataclass(slots=True, kw_only=True)
class Plan:
    """A session's endpoints, recordings and sending options, resolved once; and the outcomes as they arrive."""

    args: argparse.Namespace
    patterns: tuple[str, ...]
    endpoints: list[Endpoint]
    options: Options
    recordings: dict[tuple[str, str], Recording] | None
    replay_dirs: list[str]
    banner: str
    targets: dict[str, str]
    outcomes: dict[tuple[str, str, str, str], Outcome] = field(default_factory=dict)
    sent: set[tuple[str, str, str, str]] = field(default_factory=set)  # items a batch took, judged or not
    markers: set[str] = field(default_factory=set)
    first: dict[str, Case] = field(default_factory=dict)  # where each case id was first collected
    report: SessionReport | None = None


class SessionReport:
    """The report folder of a pytest run (`--harness-report-dir`): the files `harness run` writes, fed by
    every batch of the session in turn and closed when the session ends, so it reads as one run."""

    def __init__(
        self, directory: Path, handlers: Sequence[Handler], endpoints: Sequence[Endpoint], paths: Sequence[Path]
    ) -> None:
        from datetime import UTC, datetime

        self.directory = directory
        self.paths = list(paths)
        self.handlers = list(handlers)
        self.endpoints = tuple(endpoints)
        self.run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        self.opened = False
        self.offset = 0
        self.completed = 0
        self.t0 = time.perf_counter()

    def open(self, event: RunStarted) -> None:
        """The first batch's opening, told as the session's: every endpoint the flags name, this run's id."""
        from .profiles import load_profile

        profiles = {e.name: load_profile(e.profile).name for e in self.endpoints}
        opening = replace(event, run_id=self.run_id, endpoints=self.endpoints, profiles=profiles)
        for handler in self.handlers:
            handler.start(opening)
        self.opened = True

    def close(self, interrupted: bool) -> None:
        from datetime import UTC, datetime

        from .engine import stamp
        from .events import RunFinished

        closing = RunFinished(
            finished=stamp(datetime.now(UTC)),
            duration_s=round(time.perf_counter() - self.t0, 3),
            completed=self.completed,
            interrupted=interrupted,
            reason="pytest session interrupted" if interrupted else "",
        )
        for handler in self.handlers:
            handler.finish(closing)


class Forward:
    """Hands one batch's results on to the session's report, numbered after those of earlier batches."""

    def __init__(self, report: SessionReport) -> None:
        self.report = report
        self.total = 0

    def start(self, event: RunStarted) -> None:
        self.total = event.total
        if not self.report.opened:
            self.report.open(event)

    def result(self, event: ResultReady) -> None:
        self.report.completed += 1
        moved = replace(event, index=self.report.offset + event.index)
        for handler in self.report.handlers:
            handler.result(moved)

    def finish(self, event: RunFinished) -> None:
        self.report.offset += self.total


PLAN = pytest.StashKey[Plan]()


def _usage(problems: Sequence[object]) -> pytest.UsageError:
    lines = "\n".join(f"  {p}" for p in problems)
    return pytest.UsageError(f"chat-conformance (flags are --harness-<flag> under pytest):\n{lines}")


def pytest_sessionstart(session: pytest.Session) -> None:
    """Resolve endpoints and recordings before collection, so a wrong flag stops the run as `harness run` would."""
    args = resolve(session.config)
    if args is None:
        return
    from .errors import ConfigError, HarnessError, Problem
    from .profiles import load_profile
    from .setup import (
        flag_endpoints,
        load_replay,
        replay_banner,
        replay_endpoints,
        replay_folders,
        sending_options,
        shown_endpoints,
        targets,
    )

    try:
        replay_dirs, named = replay_folders(args)
        if replay_dirs and args.record:
            raise ConfigError(Problem("--record", "--record and --replay cannot be used together"))
        recordings = load_replay(replay_dirs) if replay_dirs else None
        endpoints = replay_endpoints(recordings, args, named) if recordings is not None else flag_endpoints(args)
        for endpoint in endpoints:
            load_profile(endpoint.profile)
        options = sending_options(args, args.concurrency)
    except HarnessError as exc:
        raise _usage(exc.problems) from None
    patterns = session.config.getini(PATTERN_KEY)
    plan = Plan(
        args=args,
        patterns=tuple(patterns) if patterns else DEFAULT_PATTERNS,
        endpoints=endpoints,
        options=options,
        recordings=recordings,
        replay_dirs=replay_dirs,
        banner=replay_banner(recordings, named, endpoints) if recordings else "",
        targets=targets(shown_endpoints(endpoints, options), args, replay_dirs, options),
    )
    if args.report_dir:
        plan.report = session_report(session.config, plan)
    session.config.stash[PLAN] = plan


def session_report(config: pytest.Config, plan: Plan) -> SessionReport:
    """The report files, in a folder found writable before anything is sent, so no answer is lost."""
    from .report import report_files
    from .setup import shown_endpoints

    if hasattr(config, "workerinput"):
        raise pytest.UsageError("--harness-report-dir is not supported under pytest-xdist yet: run without -n")
    directory = Path(plan.args.report_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _usage([f"--report-dir: cannot write into {directory}: {exc.strerror or exc}"]) from None
    files = report_files(directory, plan.targets)
    return SessionReport(directory, files, shown_endpoints(plan.endpoints, plan.options), [f.path for f in files])


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    plan = session.config.stash.get(PLAN, None)
    if plan is not None and plan.report is not None and plan.report.opened:
        plan.report.close(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    plan = config.stash.get(PLAN, None)
    if plan is not None and plan.report is not None and plan.report.opened:
        for path in plan.report.paths:
            terminalreporter.write_line(f"harness report: {path}")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> CaseFile | None:
    plan = parent.config.stash.get(PLAN, None)
    if plan is None or not any(fnmatch.fnmatchcase(file_path.name, p) for p in plan.patterns):
        return None
    return CaseFile.from_parent(parent, path=file_path)


class CaseFile(pytest.File):
    """A case file: one item per case, endpoint and mode; a file that does not load is one failing item."""

    def collect(self) -> Iterator[pytest.Item]:
        from .cases import load_cases, select
        from .errors import HarnessError
        from .pointer import join
        from .setup import shown_path

        plan = self.config.stash[PLAN]
        try:
            cases = select(load_cases([shown_path(self.path)]), plan.args.select)
        except HarnessError as exc:
            yield CaseFileProblem.from_parent(self, name="load", text="\n".join(map(str, exc.problems)))
            return
        for case in cases:
            first = plan.first.setdefault(case.id, case)
            if first is not case:  # `harness run` refuses it too: the id names its recordings and its reports
                problem = case.source.problem(
                    join(case.base, "id"), f"duplicate id {case.id!r} (first defined at {first.file}:{first.line})"
                )
                yield CaseFileProblem.from_parent(self, name=case.id, text=str(problem))
                continue
            for tag in _markers(case.tags):
                if tag not in plan.markers:
                    plan.markers.add(tag)
                    self.config.addinivalue_line("markers", f"{tag}: cases tagged {tag} (chat-conformance)")
            modes = case.modes
            for endpoint in plan.endpoints:
                for mode in modes:
                    name = f"{case.id}[{endpoint.name}]" + (f"[{mode}]" if mode else "")
                    # Given whole, so pytest parses the brackets as a parametrized test's: `--lf` and `--deselect`
                    # match the id then, as they do a parametrized function's.
                    nodeid = f"{self.nodeid}::{name}"
                    item = CaseItem.from_parent(self, name=name, nodeid=nodeid, case=case, endpoint=endpoint, mode=mode)
                    for tag in _markers(case.tags):
                        item.add_marker(tag)
                    yield item


class CaseFileProblem(pytest.Item):
    """A case file that does not load: a failing item saying where and why, rather than a collection crash."""

    def __init__(self, *, text: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = text

    def runtest(self) -> None:
        pytest.fail(self.text, pytrace=False)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"case file {self.path.name}"


class CaseItem(pytest.Item):
    """One case against one endpoint in one mode; its verdict comes from the engine, as `harness run` gives it."""

    def __init__(self, *, case: Case, endpoint: Endpoint, mode: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.endpoint = endpoint
        self.mode = mode

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.case.file, self.case.id, self.endpoint.name, self.mode)

    def setup(self) -> None:
        plan = self.config.stash[PLAN]
        if self.key in plan.sent:  # an item a batch took and did not judge (an interrupted run) is not sent again
            return
        if hasattr(self.config, "workerinput"):  # an xdist worker runs only some items: never the whole session's
            batch = [self]
        else:
            batch = [i for i in self.session.items if isinstance(i, CaseItem) and i.key not in plan.sent]
        plan.sent.update(i.key for i in batch)
        run_batch(plan, batch)

    def runtest(self) -> None:
        outcome = self.config.stash[PLAN].outcomes.get(self.key)
        if outcome is None:
            pytest.fail("no result: the run ended before this case was judged", pytrace=False)
        if outcome.warned and outcome.verdict in ("pass", "skip"):
            self.add_report_section("call", "harness warnings", outcome.text)
        if outcome.verdict == "skip":
            pytest.skip(outcome.text)
        if outcome.verdict in ("fail", "error"):
            raise CaseFailed(outcome.text)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None
    ) -> str | TerminalRepr:
        """A failing case shows the failure block the console prints, never a traceback into the harness."""
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.case.line
        return self.path, None if line is None else line - 1, self.name


class CaseFailed(Exception):
    """A case that failed or errored; its text is the failure block."""


class Outcomes:
    """The handler that turns each result into the outcome its item shows, as soon as the result is judged."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.info: RunInfo | None = None

    def start(self, event: RunStarted) -> None:
        from .report.info import RunInfo

        self.info = RunInfo.opening(event, self.plan.targets)

    def result(self, event: ResultReady) -> None:
        from .report.failure import failure_block

        result = event.result
        verdict = result.verdict.value
        warned = bool(result.warnings)
        text = failure_block(result, self.info) if verdict in ("fail", "error") or warned else result.reason
        key = (result.file, result.case_id, result.endpoint, result.mode)
        self.plan.outcomes[key] = Outcome(verdict=verdict, text=text, warned=warned)

    def finish(self, event: RunFinished) -> None:
        pass


def run_batch(plan: Plan, items: Sequence[CaseItem]) -> None:
    """Run the cases of `items` through the engine, each against only the endpoints its items name.

    A case whose placeholders cannot be filled for an endpoint, and a run the engine refuses (a missing
    credential), fail their items with the located message, as `harness run` would stop with it.
    """
    import asyncio

    from .engine import Source, execute
    from .errors import HarnessError
    from .planning import plan as plan_cases

    environ = os.environ
    wanted: dict[tuple[str, str, str], tuple[Case, Endpoint]] = {}
    for item in items:
        wanted.setdefault((item.case.file, item.case.id, item.endpoint.name), (item.case, item.endpoint))
    by_endpoint: dict[str, tuple[Endpoint, list[Case]]] = {}
    for (file, case_id, name), (case, endpoint) in wanted.items():
        try:
            plan_cases([case], [endpoint], environ)
        except HarnessError as exc:
            text = "\n".join(map(str, exc.problems))
            for mode in case.modes:
                plan.outcomes[(file, case_id, name, mode)] = Outcome(verdict="error", text=text)
            continue
        by_endpoint.setdefault(name, (endpoint, []))[1].append(case)
    groups: dict[tuple[tuple[str, str], ...], tuple[list[Case], list[Endpoint]]] = {}
    for endpoint, cases in by_endpoint.values():
        groups.setdefault(tuple((c.file, c.id) for c in cases), (cases, []))[1].append(endpoint)
    origin = f"replay:{','.join(plan.replay_dirs)}" if plan.replay_dirs else "live"
    record = Path(plan.args.record) if plan.args.record else None
    for cases, endpoints in groups.values():
        source = Source(origin=origin, banner=plan.banner, sources="cases: pytest")
        try:
            asyncio.run(
                execute(
                    cases,
                    endpoints,
                    [Outcomes(plan), *([Forward(plan.report)] if plan.report else [])],
                    options=plan.options,
                    source=source,
                    record=record,
                    replay=plan.recordings,
                )
            )
        except HarnessError as exc:
            text = "\n".join(map(str, exc.problems))
            names = {e.name for e in endpoints}
            for item in items:
                if item.endpoint.name in names and item.key not in plan.outcomes:
                    plan.outcomes[item.key] = Outcome(verdict="error", text=text)


def _plan(config: pytest.Config) -> Plan:
    plan = config.stash.get(PLAN, None)
    if plan is None:
        pytest.skip("no endpoint for chat-conformance: give --harness-base-url, --harness-config or --harness-replay")
    return plan


@pytest.fixture
def harness_endpoint(request: pytest.FixtureRequest) -> Endpoint:
    """The endpoint the `--harness-*` flags name, for a team's own tests beside the case files.

    A test that needs one endpoint gets it here; with several (a config file's), pick one with
    `--harness-endpoint NAME`. Skipped when no `--harness-*` flag or ini key names one.
    """
    plan = _plan(request.config)
    if len(plan.endpoints) != 1:
        names = ", ".join(e.name for e in plan.endpoints)
        pytest.fail(f"harness_endpoint needs one endpoint; pick one of {names} with --harness-endpoint", pytrace=False)
    return plan.endpoints[0]


RunCase = Callable[..., "list[Result]"]


@pytest.fixture
def harness_run_case(request: pytest.FixtureRequest, harness_endpoint: Endpoint) -> RunCase:
    """Runs a case against `harness_endpoint` as `harness run` would (replayed or recorded by the same flags).

    `harness_run_case({"id": ..., "request": ...})` runs a case written as a dict; `harness_run_case(path,
    select="text-*")` the cases of a case file or folder. It returns the results in planned order, two for a
    both-ways case (plain, then streamed), each with its verdict, findings and exchange. A case that cannot
    run (an unknown placeholder, a missing credential) fails the test with the located message.
    """
    plan = _plan(request.config)

    def run_case(case: Mapping[str, Any] | str | Path, *, select: str | None = None) -> list[Result]:
        import asyncio

        from .cases import load_cases, parse_case
        from .cases import select as matching
        from .engine import run
        from .errors import HarnessError

        try:
            if isinstance(case, Mapping):
                cases = [parse_case(dict(case))]
            else:
                cases = matching(load_cases([case]), [select] if select else [])
            record = Path(plan.args.record) if plan.args.record else None
            return asyncio.run(run(cases, [harness_endpoint], plan.options, record=record, replay=plan.recordings))
        except HarnessError as exc:
            pytest.fail("\n".join(map(str, exc.problems)), pytrace=False)

    return run_case
