"""Start-up cost of `harness --help`, against importing every dependency, measured in one run.

Target: `harness --help` takes at most 0.6x the time of a bare interpreter importing httpx, jsonschema, yaml,
hypothesis, google.auth and rich together, i.e. the command loads only what it uses. Each figure is the median
of interleaved runs, so a machine that gets busier mid-way slows both sides alike.

    python3 benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

TARGET = 0.6
COMMANDS = {
    "harness --help": [sys.executable, "-m", "harness", "--help"],
    "harness lint --help": [sys.executable, "-m", "harness", "lint", "--help"],
    "baseline: import all dependencies": [
        sys.executable,
        "-c",
        "import httpx, jsonschema, yaml, hypothesis, google.auth, rich",
    ],
    "bare interpreter": [sys.executable, "-c", "pass"],
}


def _time(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    samples: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for argv in COMMANDS.values():  # warm the file cache first
        _time(argv)
    for _ in range(runs):
        for name, argv in COMMANDS.items():
            samples[name].append(_time(argv))
    median = {name: statistics.median(values) for name, values in samples.items()}
    baseline = median["baseline: import all dependencies"]
    print(f"start-up, median of {runs} interleaved runs ({sys.executable})")
    for name, value in median.items():
        print(f"  {name:<36} {value * 1000:7.1f} ms   {value / baseline:5.2f}x baseline")
    ratio = median["harness --help"] / baseline
    verdict = "meets" if ratio <= TARGET else "MISSES"
    print(f"harness --help: {ratio:.2f}x the import of all dependencies; {verdict} the target of {TARGET}x")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
