"""The pytest plugin: case files as pytest items, judged by the same engine and shown by the same failure block.

It is registered through the `pytest11` entry point, so pytest loads it in every run of an environment where
chat-conformance is installed, including runs that have nothing to do with it. Two rules follow. Importing it
loads only pytest, the stdlib and the option table (never httpx, Hypothesis or google-auth: the package's
`__init__` imports lazily, and what a run needs is imported inside the hooks). And it stays off, collecting
nothing, unless a `--harness-*` flag, a `harness_*` ini key or a conftest's `pytest_harness_options` asks for it.

Options come from `harness.options.OPTIONS`, as `--harness-<name>` flags and `harness_<name>` ini keys, and as
the keys of what `pytest_harness_options` returns, resolved flag > ini > conftest > default into the namespace
`harness run` parses, then handed to `harness.setup`, which the CLI uses too: the same flags reach the same
endpoints and replay the same recordings. The items that remain once pytest has selected them (`-k`, `-m`,
`--deselect`, `--lf`) are run through the engine together, at the first one's setup, so requests go out
concurrently as in `harness run`.

Under pytest-xdist each worker process holds its own plan, collected and resolved alike, and shares nothing
mutable with the others: it sends its items' cases one at a time (the workers side by side are the
concurrency), both runs of a both-ways case in one worker (`scheduling`), each recording under its own name.
The report folder is written by the controller alone, from what each item's report carries back (`KEPT`).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .options import OPTIONS, Option

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, TracebackStyle

    from .cases import Case
    from .endpoints import Endpoint
    from .events import ResultReady, RunFinished, RunStarted
    from .models import Result
    from .recordings import Recording
    from .report.digest import Digest
    from .report.files import ReportFile
    from .report.info import RunInfo
    from .sending import Options

__all__ = ["CaseFile", "CaseFileProblem", "CaseItem", "harness_endpoint", "harness_run_case"]

# What the command line prints and how (pytest has its own flags for that), and its dry run, which sends nothing
# and so has no verdict to give an item; an item is one answer, so it is not repeated.
LEFT_OUT = frozenset({"dry_run", "quiet", "verbose", "color", "repeat"})
PATTERN_KEY = "harness_case_pattern"
# The same as `harness.cases.CASE_FILE_PATTERNS` (a test holds them equal): that module imports jsonschema.
DEFAULT_PATTERNS = ("*.case.yaml", "*.case.yml")
# A tag named like one of pytest's own markers would change how pytest runs the item, not just select it.
PYTEST_MARKERS = frozenset({"skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings"})


class Hooks:
    """The hook the plugin adds to pytest, for a project's conftest.py."""

    @pytest.hookspec(firstresult=True)
    def pytest_harness_options(self, config: pytest.Config) -> Mapping[str, Any] | None:
        """Turn chat-conformance on from a conftest.py, with defaults for its options; None leaves it alone.

        The keys are the options' names (`base_url`, `model`, `replay`, `case_pattern`, ...), the values what
        the `harness_*` ini keys take; `{}` turns the plugin on with every option at its default. The ini file
        and the command line override them. Only a conftest.py pytest loads before the session starts (in the
        rootdir, or in a folder given on the command line) is asked.
        """


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(Hooks)


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


def conftest_options(config: pytest.Config) -> Mapping[str, Any] | None:
    """What a conftest's `pytest_harness_options` returns, its keys checked; None when no conftest asks."""
    import difflib

    values = config.hook.pytest_harness_options(config=config)
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise pytest.UsageError(f"pytest_harness_options must return a dict or None, got {type(values).__name__}")
    known = [o.name for o in plugin_options()] + [PATTERN_KEY.removeprefix("harness_")]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise pytest.UsageError(f"pytest_harness_options: unknown option {key!r}{hint}; expected one of {known}")
    return values


def given(config: pytest.Config, option: Option, conftest: Mapping[str, Any]) -> Any:
    """The option's value from the command line, else the ini file, else a conftest, else None (not given)."""
    value = config.getoption(f"harness_{option.name}")
    if value is not None:
        return value
    raw = config.getini(f"harness_{option.name}")
    where = f"ini key harness_{option.name}"
    if raw is None:
        raw = conftest.get(option.name)
        where = f"pytest_harness_options()[{option.name!r}]"
    if raw is None:
        return None
    if option.repeat:
        return [str(v) for v in raw] if isinstance(raw, list | tuple) else [str(raw)]
    if option.switch:
        return bool(raw)
    text = raw if isinstance(raw, str) else str(raw)  # a conftest may give a number or a Path
    try:
        value = option.type(text) if option.type else text
    except (ValueError, argparse.ArgumentTypeError) as exc:
        raise pytest.UsageError(f"{where}: {exc} (got {raw!r})") from None
    if option.choices and value not in option.choices:
        raise pytest.UsageError(f"{where}: expected one of {', '.join(option.choices)}, got {value!r}")
    return value


def case_patterns(config: pytest.Config, conftest: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The case file patterns from the ini file, else a conftest; None when neither names any."""
    patterns = config.getini(PATTERN_KEY)
    if patterns is None and conftest is not None:
        patterns = conftest.get(PATTERN_KEY.removeprefix("harness_"))
        if isinstance(patterns, str):
            patterns = patterns.split()
    return tuple(str(p) for p in patterns) if patterns is not None else None


def resolve(config: pytest.Config) -> argparse.Namespace | None:
    """The flags as `harness run` would have parsed them, or None when nothing asks for the plugin."""
    conftest = conftest_options(config)
    values = {option.name: given(config, option, conftest or {}) for option in plugin_options()}
    if all(value is None for value in values.values()) and conftest is None and config.getini(PATTERN_KEY) is None:
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
    """What an item shows of its result: kept instead of the result, so no exchange outlives its judgement.

    On a pytest-xdist worker with `--harness-report-dir`, also what the report folder keeps of it (its
    results.jsonl line and its digest), until the item's report carries it to the controller.
    """

    verdict: str
    text: str = ""
    warned: bool = False
    line: str = ""
    digest: Digest | None = None


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
    order: dict[tuple[str, str, str, str], int] = field(default_factory=dict)  # each item's place in collection
    report: SessionReport | None = None

    @property
    def keep(self) -> bool:
        """Whether items hand on what the report folder keeps of their results (`--harness-report-dir`)."""
        return bool(self.args.report_dir)

    @property
    def origin(self) -> str:
        return f"replay:{','.join(self.replay_dirs)}" if self.replay_dirs else "live"


class SessionReport:
    """The report folder of a pytest run (`--harness-report-dir`): the files `harness run` writes, written once,
    by the process that reports the session (pytest-xdist's controller), from the results every item's report
    carries, wherever the item ran; registered as a plugin, as pytest's own `--junitxml` writer is."""

    def __init__(self, handlers: Sequence[ReportFile], opening: RunStarted) -> None:
        self.handlers = list(handlers)
        self.opening = opening
        self.opened = False
        self.seen: set[int] = set()
        self.t0 = time.perf_counter()

    def add(self, index: int, line: str, digest: Digest) -> None:
        """One item's result, `index` its place in collection order."""
        if index in self.seen:  # a rerun item reports its result again
            return
        if not self.opened:
            for handler in self.handlers:
                handler.start(self.opening)
            self.opened = True
        self.seen.add(index)
        for handler in self.handlers:
            handler.keep(index, line, digest)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        from .report.digest import Digest

        kept = getattr(report, KEPT, None)
        if isinstance(kept, dict):
            self.add(kept["index"], kept["line"], Digest.from_json(kept["digest"]))

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from datetime import UTC, datetime

        from .engine import stamp
        from .events import RunFinished

        if not self.opened:
            return
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        closing = RunFinished(
            finished=stamp(datetime.now(UTC)),
            duration_s=round(time.perf_counter() - self.t0, 3),
            completed=len(self.seen),
            interrupted=interrupted,
            reason="pytest session interrupted" if interrupted else "",
        )
        for handler in self.handlers:
            handler.finish(closing)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.opened:
            for handler in self.handlers:
                terminalreporter.write_line(f"harness report: {handler.path}")


PLAN = pytest.StashKey[Plan]()
# The attribute of an item's call report that carries its result to the report folder; reports are sent from
# pytest-xdist's workers to its controller with every attribute that holds plain data.
KEPT = "harness_result"


def _usage(problems: Sequence[object]) -> pytest.UsageError:
    lines = "\n".join(f"  {p}" for p in problems)
    return pytest.UsageError(f"chat-conformance (flags are --harness-<flag> under pytest):\n{lines}")


def misread_paths(config: pytest.Config) -> str | None:
    """Why pytest's rootdir or ini file came from a `--harness-*` value given after a space, or None if neither did.

    pytest chooses its rootdir and ini file from the paths on the command line before it loads entry-point
    plugins, so it takes `--harness-replay DIR` for an unknown flag followed by the test path DIR. Where DIR lies
    inside the project that changes nothing, and the value reaches the plugin intact; where it lies outside (the
    bundled recordings, a folder elsewhere) pytest roots the run there, names every item from there, and may
    read another project's ini file. That is found by choosing again, as pytest does, without those values.
    """
    import inspect
    import itertools
    import shlex

    if hasattr(config, "workerinput"):  # the controller has checked the command line the worker was given
        return None
    args = [*shlex.split(os.environ.get("PYTEST_ADDOPTS", "")), *map(str, config.invocation_params.args)]
    flags = {f"--harness-{o.flag[2:]}" for o in plugin_options() if not o.switch}
    spaced = [(flag, value) for flag, value in itertools.pairwise(args) if flag in flags]
    if not spaced:
        return None
    try:
        from _pytest.config.findpaths import determine_setup  # not public: if it has moved, the check is left out

        def chosen(extra: list[str]) -> tuple[Path, Path | None]:
            kwargs: dict[str, Any] = {
                "inifile": config.getoption("inifilename"),
                "args": [*map(str, config.getoption("file_or_dir") or []), *extra],
                "rootdir_cmd_arg": config.getoption("rootdir") or None,
                "invocation_dir": config.invocation_params.dir,
            }
            if "override_ini" in inspect.signature(determine_setup).parameters:
                kwargs["override_ini"] = config.getoption("override_ini")
            found = determine_setup(**kwargs)
            return found[0], found[1]

        if chosen([value for _, value in spaced]) == chosen([]):
            return None
    except (ImportError, TypeError):
        return None
    flag, value = next(((f, v) for f, v in spaced if Path(v).exists()), spaced[0])
    return (
        f"{flag} {value}: pytest took {value}, given after a space, for a test path before this plugin was loaded, "
        f"and chose its rootdir ({config.rootpath}) and ini file ({config.inipath or 'none'}) from it; "
        f"write {flag}={value}"
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Resolve endpoints and recordings before collection, so a wrong flag stops the run as `harness run` would."""
    args = resolve(session.config)
    if args is None:
        return
    misread = misread_paths(session.config)
    if misread:
        raise _usage([misread])
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
    patterns = case_patterns(session.config, conftest_options(session.config))
    plan = Plan(
        args=args,
        patterns=patterns or DEFAULT_PATTERNS,
        endpoints=endpoints,
        options=options,
        recordings=recordings,
        replay_dirs=replay_dirs,
        banner=replay_banner(recordings, named, endpoints) if recordings else "",
        targets=targets(shown_endpoints(endpoints, options), args, replay_dirs, options),
    )
    if args.report_dir and not hasattr(session.config, "workerinput"):  # a worker's results go to the controller
        plan.report = session_report(plan)
        session.config.pluginmanager.register(plan.report, REPORT_PLUGIN)
    session.config.stash[PLAN] = plan
    runs_items = hasattr(session.config, "workerinput") or getattr(session.config.option, "dist", "no") == "no"
    if options.clients and runs_items:  # pytest-xdist's controller hands the items to its workers: none here
        from .clients import warm

        warm()  # the SDKs load while pytest collects the cases, as they do while `harness run` reads them


REPORT_PLUGIN = "harness-report-dir"


def session_report(plan: Plan) -> SessionReport:
    """The report files, in a folder found writable before anything is sent, so no answer is lost."""
    from datetime import UTC, datetime

    from .engine import stamp
    from .events import RunStarted
    from .profiles import load_profile
    from .report.files import report_files
    from .setup import shown_endpoints

    directory = Path(plan.args.report_dir)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _usage([f"--report-dir: cannot write into {directory}: {exc.strerror or exc}"]) from None
    now = datetime.now(UTC)
    opening = RunStarted(
        run_id=now.strftime("%Y%m%d-%H%M%S"),
        started=stamp(now),
        endpoints=tuple(shown_endpoints(plan.endpoints, plan.options)),
        profiles={e.name: load_profile(e.profile).name for e in plan.endpoints},
        total=0,
        origin=plan.origin,
        banner=plan.banner,
        sources="cases: pytest",
    )
    return SessionReport(report_files(directory, plan.targets), opening)


def pytest_unconfigure(config: pytest.Config) -> None:
    report = config.pluginmanager.get_plugin(REPORT_PLUGIN)
    if report is not None:
        config.pluginmanager.unregister(report)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Number the items in collection order: the order the report folder lists their results in, whichever
    pytest-xdist worker ran them. An item pytest skips has no number: the report holds what ran, as `harness
    run`'s holds what was selected."""
    plan = session.config.stash.get(PLAN, None)
    if plan is not None:
        items = [item for item in session.items if isinstance(item, CaseItem) and not _skipped(item)]
        plan.order = {item.key: index for index, item in enumerate(items)}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The call report of a case item carries what the report folder keeps of its result (`KEPT`)."""
    report = yield
    if call.when == "call" and isinstance(item, CaseItem):
        plan = item.config.stash[PLAN]
        outcome = plan.outcomes.get(item.key)
        if outcome is not None and outcome.digest is not None:
            kept = {"index": plan.order[item.key], "line": outcome.line, "digest": outcome.digest.to_json()}
            setattr(report, KEPT, kept)
            plan.outcomes[item.key] = replace(outcome, line="", digest=None)  # handed on: not held to the end
    return report


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under xdist's default distribution, both runs of a both-ways case go to one worker (see `scheduling`)."""
    plan = config.stash.get(PLAN, None)
    if plan is None or config.getoption("dist") != "load":
        return None
    from .scheduling import CaseScheduling

    return CaseScheduling(config, log, plan.patterns)


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
                    item = CaseItem.from_parent(
                        self, name=name, nodeid=nodeid, case=case, endpoint=endpoint, mode=mode, modes=modes
                    )
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

    def __init__(self, *, case: Case, endpoint: Endpoint, mode: str, modes: tuple[str, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.endpoint = endpoint
        self.mode = mode
        self.modes = modes

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.case.file, self.case.id, self.endpoint.name, self.mode)

    @property
    def runs(self) -> list[tuple[str, str, str, str]]:
        """The keys of every run of this item's case at its endpoint: a both-ways case is sent both ways at once."""
        return [(self.case.file, self.case.id, self.endpoint.name, mode) for mode in self.modes]

    def setup(self) -> None:
        plan = self.config.stash[PLAN]
        if self.key in plan.sent:  # an item a batch took and did not judge (an interrupted run) is not sent again
            return
        if hasattr(self.config, "workerinput"):
            # A pytest-xdist worker is handed its items a few at a time and never runs the whole session's: it sends
            # one case at a time, and workers side by side are how the run goes concurrent.
            batch = [self]
        else:
            # Numbered at collection, so not one pytest skips (`plan.order`, see pytest_collection_finish).
            items = self.session.items
            batch = [i for i in items if isinstance(i, CaseItem) and i.key in plan.order and i.key not in plan.sent]
        plan.sent.update(key for item in batch for key in item.runs)
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


def _skipped(item: pytest.Item) -> bool:
    """Whether pytest skips the item before its setup (a `skip` mark, a `skipif` whose condition holds), so that
    a batch leaves its case unsent. A both-ways case is sent as a pair while either of its items runs."""
    try:
        from _pytest.skipping import evaluate_skip_marks  # not public: without it, only a plain `skip` mark counts
    except ImportError:
        return item.get_closest_marker("skip") is not None
    try:
        return evaluate_skip_marks(item) is not None
    except Exception:  # a condition that cannot be evaluated fails the item at its own setup: it does not run
        return True


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
        from .report.digest import digest
        from .report.files import result_line

        plan = self.plan
        result = event.result
        made = digest(result, self.info)  # its failure block: for a failing, erroring or warning case
        key = (result.file, result.case_id, result.endpoint, result.mode)
        index = plan.order.get(key)  # None for the other run of a both-ways case whose item was not selected
        line, kept = "", None
        if plan.keep and index is not None:
            if plan.report is not None:  # this process reports the session: written now, not held until the item
                plan.report.add(index, result_line(result), made)
            else:  # a pytest-xdist worker: the item's report carries it to the controller
                line, kept = result_line(result), made
        plan.outcomes[key] = Outcome(
            verdict=made.verdict.value,
            text=made.block or made.reason,
            warned=bool(made.warnings),
            line=line,
            digest=kept,
        )

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
    record = Path(plan.args.record) if plan.args.record else None
    for cases, endpoints in groups.values():
        source = Source(origin=plan.origin, banner=plan.banner, sources="cases: pytest")
        try:
            asyncio.run(
                execute(
                    cases,
                    endpoints,
                    [Outcomes(plan)],
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
