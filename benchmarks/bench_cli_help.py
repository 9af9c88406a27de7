"""How long ``vocalfx --help`` and a sub-command's ``--help`` take, as whole processes.

The target: at most 1 s on the project's 2-core machine (it was about 2.5 s while torch and
numba loaded before the parser ran). Each command runs ``--runs`` times after one warm-up; the
wall time of each run is measured around ``subprocess.run`` and its CPU time from the child's
``rusage``; the median is printed.

Usage: python benchmarks/bench_cli_help.py [--runs 10] [--exe .venv/bin/vocalfx]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Tuple

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["--help"], ["match", "--help"], ["eval", "--help"], ["prior", "fit", "--help"]]
TARGET_S = 1.0


def time_runs(argv: List[str], runs: int) -> Tuple[List[float], List[float]]:
    """Wall and CPU seconds (user + sys) of ``runs`` runs of ``argv``, after one warm-up."""
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10, help="counted runs per command (default: 10)")
    ap.add_argument("--exe", default=str(Path(sys.executable).parent / "vocalfx"), help="the vocalfx executable")
    a = ap.parse_args()
    print(
        f"# bench_cli_help: {os.cpu_count()} cores, {a.runs} runs each after a warm-up; "
        f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    worst = 0.0
    for cmd in COMMANDS:
        walls, cpus = time_runs([a.exe, *cmd], a.runs)
        med = statistics.median(walls)
        worst = max(worst, med)
        print(
            f"vocalfx {' '.join(cmd):<20} wall median {med:.3f} s (min {min(walls):.3f}, max {max(walls):.3f}), "
            f"cpu median {statistics.median(cpus):.3f} s"
        )
    print(f"slowest median {worst:.3f} s (target <= {TARGET_S:g} s: {'met' if worst <= TARGET_S else 'NOT met'})")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
