"""Peak memory of a replayed run as the catalogue grows: the engine must not hold every result to the end.

Target: replaying the bundled catalogue copied 100 times (thousands of cases) peaks at most 1.5x the memory of
replaying it once, both measured in this run, each in a fresh process (`ru_maxrss` of the process itself).

    python3 benchmarks/replay_memory.py [--copies 100]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.resources import bundled

TARGET = 1.5
PROBE = """
import resource, sys
from harness.cli import main
code = main(sys.argv[1:])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, code, file=sys.stderr)
"""
CASE_ID = re.compile(r"^(- )?id: (\S+)$", re.M)
RECORDED_CASE = re.compile(r"^case: (\S+)$", re.M)


def _catalogue(root: Path, copies: int) -> tuple[Path, Path]:
    """The bundled cases and recordings `copies` times over, each copy's ids suffixed so all of them run."""
    cases, recordings = root / "cases", root / "recordings"
    cases.mkdir()
    for source in bundled("recordings").iterdir():
        (recordings / source.name).mkdir(parents=True)
    for k in range(copies):
        for path in bundled("cases").glob("*.case.yaml"):
            text = CASE_ID.sub(lambda m, k=k: f"{m[1] or ''}id: {m[2]}-x{k}", path.read_text(encoding="utf-8"))
            (cases / f"{path.name.removesuffix('.case.yaml')}-x{k}.case.yaml").write_text(text, encoding="utf-8")
        for path in bundled("recordings").rglob("*.yaml"):
            text = path.read_text(encoding="utf-8")

            def renamed(m: re.Match[str], k: int = k) -> str:
                case, dot, mode = m[1].partition(".")
                return f"case: {case}-x{k}{dot}{mode}"

            target = recordings / path.parent.name / f"{path.stem}-x{k}.yaml"
            target.write_text(RECORDED_CASE.sub(renamed, text, count=1), encoding="utf-8")
    return cases, recordings


def _peak(cases: Path, recordings: Path, report: Path) -> tuple[int, float, int]:
    """(peak RSS in KiB, seconds, exit code) of one `harness run --replay` in a fresh process."""
    argv = ["run", str(cases), "--replay", str(recordings), "--report-dir", str(report), "-q", "--concurrency", "8"]
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    kib, code = done.stderr.split()[-2:]
    return int(kib), elapsed, int(code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100)
    copies = parser.parse_args().copies
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "one").mkdir()
        (root / "many").mkdir()
        one = _catalogue(root / "one", 1)
        many = _catalogue(root / "many", copies)
        count = len(list(many[1].rglob("*.yaml")))
        base_kib, base_s, base_code = _peak(*one, root / "r1")
        kib, seconds, code = _peak(*many, root / "rN")
        shutil.rmtree(root / "many")
    ratio = kib / base_kib
    print(f"replay of the bundled catalogue, peak RSS of the whole process ({sys.executable})")
    print(f"  x1:   {base_kib / 1024:7.1f} MiB in {base_s:6.1f} s (exit {base_code})")
    print(f"  x{copies}: {kib / 1024:7.1f} MiB in {seconds:6.1f} s (exit {code}), {count} recordings")
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"x{copies} peaks at {ratio:.2f}x the memory of x1; {verdict} the target of {TARGET}x")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
