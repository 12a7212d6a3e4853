"""The `harness` command: run, fuzz, lint, init, checks, compare, diff. The only place that turns errors into exit
codes.

Exit codes: 0 every case passed (warnings allowed), 1 a case failed or errored, 2 a usage, config or
case-file error (nothing was sent), 3 an internal error (a bug: please report it), 4 the run was interrupted
(the reports hold the cases that finished). `harness compare` exits 0 once its report is written; `harness diff`
exits 0 when nothing changed in shape and 1 when something did.
"""

from __future__ import annotations

import argparse
import difflib
import enum
import json
import signal
import sys
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import __version__, setup
from .errors import ConfigError, HarnessError, Problem
from .options import DEFAULT_CASES, DEFAULT_CONFIG, FUZZ_PARTS, GROUPS, OPTIONS
from .resources import bundled, profile_names

if TYPE_CHECKING:
    from .engine import Stop
    from .report.console import Console

_T = TypeVar("_T")

__all__ = ["ExitCode", "main"]


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    INTERNAL = 3
    INTERRUPTED = 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise HarnessError(Problem(self.prog, message))


def _add_options(command: argparse.ArgumentParser, name: str) -> None:
    """The flags of one command, from the option table, in its groups."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    for option in OPTIONS:
        if name not in option.commands:
            continue
        group = groups.get(option.group) or groups.setdefault(
            option.group, command.add_argument_group(GROUPS[option.group])
        )
        target: argparse._ActionsContainer = group
        if option.exclusive:
            target = exclusive.get(option.exclusive) or exclusive.setdefault(
                option.exclusive, group.add_mutually_exclusive_group()
            )
        flags = [option.short, option.flag] if option.short else [option.flag]
        text = option.help
        if "{profiles}" in text:  # a glob of the profiles folder: once per command, not once per flag
            text = text.replace("{profiles}", ", ".join(profile_names()))
        if option.switch:
            target.add_argument(*flags, dest=option.name, action="store_true", help=text)
            continue
        more: dict[str, Any] = {"type": option.type} if option.type else {}
        target.add_argument(
            *flags,
            dest=option.name,
            action="append" if option.repeat else "store",
            default=[] if option.repeat else option.default,
            metavar=option.metavar,
            choices=option.choices,
            help=text,
            **more,
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description="Conformance tests for OpenAI-compatible Chat Completions endpoints.")
    parser.add_argument("--version", action="version", version=f"chat-conformance {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run_p = commands.add_parser("run", help="send cases to endpoints, check the answers, write a report")
    run_p.add_argument(
        "paths",
        nargs="*",
        metavar="CASES",
        help=f"case files or folders (default: ./{DEFAULT_CASES}/, else the bundled catalogue)",
    )
    _add_options(run_p, "run")

    fuzz_p = commands.add_parser("fuzz", help="send generated request variants to one endpoint and check every answer")
    _add_options(fuzz_p, "fuzz")

    lint_p = commands.add_parser("lint", help="check case files and print file:line:column for each problem")
    lint_p.add_argument(
        "paths",
        nargs="*",
        metavar="PATHS",
        help=f"case files or folders (default: ./{DEFAULT_CASES}/, else the bundled catalogue)",
    )

    init_p = commands.add_parser(
        "init", help="write a starter suite: a copy of the catalogue in DIR/cases and a commented DIR/harness.yaml"
    )
    init_p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="where to write it (default: here)")

    compare_p = commands.add_parser(
        "compare", help="line up earlier runs and recording sets: each case against each endpoint, with figures"
    )
    compare_p.add_argument(
        "sources",
        nargs="+",
        metavar="RUN_OR_RECORDINGS",
        help="report folders (or their results.json / results.jsonl) and recordings folders",
    )
    _add_options(compare_p, "compare")

    diff_p = commands.add_parser(
        "diff", help="what changed in shape between two runs or recording sets (exit 1 when something did)"
    )
    diff_p.add_argument("old", metavar="OLD", help="a report folder, results file or recordings folder")
    diff_p.add_argument("new", metavar="NEW", help="the same, later")
    _add_options(diff_p, "diff")

    checks_p = commands.add_parser("checks", help="list every check code and its weight under a profile")
    checks_p.add_argument("--profile", default="generic", help="profile to show severities for (default generic)")
    return parser


def _check_writable(directory: Path, flag: str) -> None:
    """Find out before anything is sent that results can be written, so a run's answers are never lost."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(Problem(flag, f"cannot write into {directory}: {exc.strerror or exc}")) from None


class _Report:
    """A run's id, and the report folder it writes into, checked writable before anything is sent."""

    def __init__(self, args: argparse.Namespace, prefix: str = "") -> None:
        from .engine import run_id

        self.started = datetime.now(UTC)
        self.id = run_id(self.started, prefix)
        self.directory = Path(args.report_dir) if args.report_dir else Path("reports") / self.id
        _check_writable(self.directory, "--report-dir")


def _console(args: argparse.Namespace, **more: Any) -> Console:
    from .report.console import Console

    return Console(verbose=getattr(args, "verbose", False), quiet=args.quiet, color=args.color, **more)


async def _stoppable(work: Callable[[Stop], Awaitable[_T]]) -> _T:
    """`work`, stopped cleanly by a first SIGINT or SIGTERM (reports are written), at once by a second.

    The first signal asks the engine to stop sending; it cancels what is in flight and every reporter writes
    what finished. A second signal raises KeyboardInterrupt where the program is: files are written atomically,
    so it leaves each one whole or absent, never half-written.
    """
    import asyncio

    from .engine import Stop

    loop = asyncio.get_running_loop()
    stop = Stop()
    signals = (signal.SIGINT, signal.SIGTERM)
    before = {s: signal.getsignal(s) for s in signals}

    def at_once(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    def first(signum: signal.Signals) -> None:
        stop.request(signum.name)
        for s in signals:
            loop.remove_signal_handler(s)
            signal.signal(s, at_once)

    for s in signals:
        loop.add_signal_handler(s, first, s)
    try:
        return await work(stop)
    finally:
        for s in signals:
            loop.remove_signal_handler(s)
            signal.signal(s, before[s])


def _run(args: argparse.Namespace) -> int:
    if not args.dry_run and not args.no_clients:
        from .clients import warm

        warm()  # the SDKs' reading processes load them while this one loads the rest and reads the cases
    import asyncio

    from .cases import CaseFiles
    from .engine import Source, execute
    from .profiles import load_profile
    from .report import Digests, report_files

    replay_dirs, recordings_named = setup.replay_folders(args)  # with no endpoint: recordings of a real server
    if replay_dirs and args.record:
        raise ConfigError(Problem("--record", "--record and --replay cannot be used together"))
    if args.record and args.repeat > 1:
        raise ConfigError(Problem("--repeat", "--record keeps one answer per case: record without --repeat"))
    if args.dry_run and (replay_dirs or args.record):
        raise ConfigError(
            Problem(
                "--dry-run",
                "shows what would be sent to an endpoint, and records or replays nothing: name the endpoint "
                "with --base-url, --kind or --config, without --record or --replay",
            )
        )
    recordings = setup.load_replay(replay_dirs) if replay_dirs else None
    endpoints = (
        setup.replay_endpoints(recordings, args, recordings_named)
        if recordings is not None
        else setup.flag_endpoints(args)
    )
    banner = setup.replay_banner(recordings, recordings_named, endpoints) if recordings else ""
    paths, catalogue = setup.catalogue(args.paths)
    with CaseFiles(paths, args.select) as cases:  # read and checked now, held on disk while the run reads them
        if not cases:
            raise HarnessError(
                Problem("--select", f"no case matches {', '.join(args.select)}")
                if args.select
                else Problem(", ".join(map(str, paths)), "no case files found (they are named *.case.yaml)")
            )
        for e in endpoints:
            load_profile(e.profile)  # a bad profile is a usage error before anything is sent
        options = setup.sending_options(args, args.concurrency)
        if args.dry_run:  # before the report folder exists: a dry run writes nothing
            from .dryrun import dry_run

            print(dry_run(list(cases), endpoints, extra_secrets=options.extra_secrets), end="")
            return ExitCode.OK
        this = _Report(args)
        if args.record:
            _check_writable(Path(args.record), "--record")
        targets = setup.targets(setup.shown_endpoints(endpoints, options), args, replay_dirs, options)
        digests = Digests(this.directory)  # the report files and the console render the same digests, written once
        files = report_files(this.directory, targets, digests)
        console = _console(args, targets=targets, reports=[f.path for f in files], digests=digests)
        source = Source(
            run_id=this.id,
            origin=f"replay:{','.join(replay_dirs)}" if replay_dirs else "live",
            banner=banner,
            sources=f"cases: {catalogue}",
            case_paths=tuple(map(str, paths)),
            selected=tuple(args.select),
        )
        finished = asyncio.run(
            _stoppable(
                lambda stop: execute(
                    cases,
                    endpoints,
                    [*files, console],
                    options=options,
                    source=source,
                    record=Path(args.record) if args.record else None,
                    replay=recordings,
                    stop=stop,
                    repeat=args.repeat,
                )
            )
        )
        if args.record:
            console.out.print(f"recordings: {args.record}/")
        if finished.interrupted:
            return ExitCode.INTERRUPTED
        failed = console.counts["fail"] or console.counts["error"] or console.contradicted
        return ExitCode.FAILED if failed else ExitCode.OK


def _pins(items: list[str]) -> dict[str, Any]:
    pins: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(Problem("--pin", f"expected NAME=VALUE, got {item!r}"))
        try:
            pins[name] = json.loads(value)
        except ValueError:
            pins[name] = value
    return pins


def _fuzz(args: argparse.Namespace) -> int:
    from .engine import stamp
    from .fuzz import FuzzOptions, add_counts, export_case, fuzz, with_case_file
    from .report import RunInfo, report_files, tell

    endpoints = setup.flag_endpoints(args)
    if len(endpoints) != 1:
        raise ConfigError(Problem("harness fuzz", "fuzz one endpoint at a time; pick it with --endpoint NAME"))
    endpoint = endpoints[0]
    unknown = sorted(set(args.exclude) - FUZZ_PARTS)
    if unknown:
        hint = difflib.get_close_matches(unknown[0], sorted(FUZZ_PARTS), n=1)
        raise ConfigError(
            Problem(
                "--exclude",
                f"unknown part {unknown[0]!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; expected some of {', '.join(sorted(FUZZ_PARTS))}",
            )
        )
    options = FuzzOptions(
        max_examples=args.max_examples,
        max_requests=args.max_requests,
        budget_s=args.budget,
        rate=args.rate,
        seed=args.seed,
        pin=_pins(args.pin),
        exclude=frozenset(args.exclude),
        invalid=not args.no_invalid,
    )
    run_options = setup.sending_options(args, 1)
    this = _Report(args, "fuzz-")
    console = _console(args)
    with console.counter(f"fuzzing {endpoint.name}", args.max_examples) as tick:
        report = fuzz(endpoint, options, run_options, on_example=tick)
    export = Path(args.export)
    results, cases = [], []
    for failure in report.failures:
        path = export_case(failure, endpoint, export)
        cases.append(path)
        results.append(with_case_file(failure, path, path.name.removesuffix(".case.yaml")).result)
    shown = setup.shown_endpoints([endpoint], run_options)
    info = RunInfo(
        run_id=this.id,
        started=stamp(this.started),
        finished=stamp(datetime.now(UTC)),
        duration_s=round(report.elapsed_s, 3),
        harness_version=__version__,
        endpoints=shown,
        profiles={endpoint.name: endpoint.profile},
        targets=setup.targets(shown, args, (), run_options),
        origin="fuzz",
        banner=report.header(len(cases)),
    )
    files = report_files(this.directory, info.targets)
    # The closing line counts the run's variants, not the regression cases the table lists.
    console.reports, console.targets, console.closing = [f.path for f in files], info.targets, report.tally(len(cases))
    tell([*files, console], info, results)
    add_counts(this.directory / "results.json", report, cases)
    for path in cases:
        console.out.print(f"regression case: {path}")
    return ExitCode.FAILED if results else ExitCode.OK


def _lint(args: argparse.Namespace) -> int:
    from .cases import lint

    cases, problems = lint(setup.catalogue(args.paths)[0])
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in case files", file=sys.stderr)
        return ExitCode.USAGE
    print(f"{len(cases)} case(s), no problems")
    return ExitCode.OK


def _init(args: argparse.Namespace) -> int:
    """A starter suite a team can commit and grow: its own catalogue to edit, and a config to name endpoints in."""
    import shutil
    import tempfile

    from .atomic import atomic_write

    target = Path(args.dir)
    cases, config = target / DEFAULT_CASES, target / DEFAULT_CONFIG
    for path in (cases, config):
        if path.exists():
            raise ConfigError(Problem(str(path), "already exists; harness init never overwrites (pick another DIR)"))
    try:
        target.mkdir(parents=True, exist_ok=True)
        # Copied beside the destination and renamed into place, so an interrupted init leaves no half catalogue.
        staging = Path(tempfile.mkdtemp(prefix=".cases.", dir=target))
        try:
            shutil.copytree(bundled("cases"), staging / DEFAULT_CASES)
            (staging / DEFAULT_CASES).rename(cases)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        atomic_write(config, (bundled("starter") / DEFAULT_CONFIG).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(Problem(str(target), f"cannot write the starter suite: {exc.strerror or exc}")) from None
    count = len(list(cases.rglob("*.case.yaml")))
    print(f"wrote {setup.shown_path(cases)}/ ({count} case files) and {setup.shown_path(config)}")
    print(
        "next: harness lint, then harness run (it replays the bundled recordings until harness.yaml names an endpoint)"
    )
    return ExitCode.OK


def _compare(args: argparse.Namespace) -> int:
    from .compare import load_runs
    from .report.matrix import build, text, write_comparison

    this = _Report(args, "compare-")
    runs = load_runs(args.sources, args.cases, args.profile, spool=this.directory)
    matrix = build(runs)
    paths = write_comparison(this.directory, runs, matrix)
    if args.json:
        print(json.dumps(matrix.to_json(), indent=2, ensure_ascii=False))
        return ExitCode.OK
    print(text(matrix), end="")
    for path in paths:
        print(f"report: {path}")
    return ExitCode.OK


def _diff(args: argparse.Namespace) -> int:
    from .compare import load_runs
    from .report.drift import drift, drift_json, drift_text

    old, new = load_runs([args.old, args.new], args.cases, args.profile)
    changes = drift(old, new)
    if args.json:
        print(json.dumps(drift_json(old, new, changes), indent=2, ensure_ascii=False))
    else:
        print(drift_text(old, new, changes), end="")
    return ExitCode.FAILED if changes else ExitCode.OK


def _checks(args: argparse.Namespace) -> int:
    from .checks import all_codes, description
    from .profiles import load_profile

    profile = load_profile(args.profile)
    print(f"check codes, weighed by profile {profile.name}:")
    for code in all_codes():
        rule = profile.rule(code)
        level = rule.severity.value if rule.severity else "off"
        print(f"  {code:<42} {level:<8} {description(code)}")
    return ExitCode.OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `harness` command; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
        handler = {
            "run": _run,
            "fuzz": _fuzz,
            "lint": _lint,
            "init": _init,
            "checks": _checks,
            "compare": _compare,
            "diff": _diff,
        }[args.command]
        return int(handler(args))
    except HarnessError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:  # a second Ctrl-C, or one before a run started
        print("interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except BrokenPipeError:  # `harness checks | head`
        sys.stderr.close()
        return ExitCode.OK
    except Exception:
        print(
            "internal error: this is a bug in chat-conformance; please report it with this traceback:", file=sys.stderr
        )
        traceback.print_exc()
        return ExitCode.INTERNAL


if __name__ == "__main__":
    sys.exit(main())
