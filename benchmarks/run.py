#!/usr/bin/env python
"""Run the benchmarks quoted in the README and docs, and record them with the machine in one JSON.

    python benchmarks/run.py                                  # every benchmark -> build/benchmarks.json
    python benchmarks/run.py bench_cli_help bench_chain --out build/bench.json
    python benchmarks/run.py match --args match="--repeats 1"  # a name may drop the bench_ prefix

Each benchmark runs as its own process with this interpreter (``sys.executable``), one after the
other, from the repository root; its output (stdout and stderr together) is shown as it comes and
kept. The JSON holds the machine (platform, CPU model from /proc/cpuinfo, core count, torch
version, date, git commit and whether the tree differs from it) and, per benchmark, its command,
exit status, wall time and output.
What each benchmark measures, and where its numbers are quoted: benchmarks/README.md.

Exit status: 0 if every benchmark exited 0, 1 if one did not (bench_cli_help exits 1 when its
target is not met), 2 for an unknown name or a malformed ``--args``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = [
    "bench_cli_help",
    "bench_metrics",
    "bench_kernels",
    "bench_chain",
    "bench_match",
    "bench_engines",
    "bench_separate",
]


def cpu_model() -> Optional[str]:
    """The CPU's model name from /proc/cpuinfo (Linux), else ``platform.processor()`` or ``None``."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def package_version(name: str) -> Optional[str]:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def git(*args: str) -> Optional[str]:
    """The output of a read-only git command in the repository, or ``None`` (no git, not a checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": package_version("torch"),
        "vocalfx": package_version("vocalfx"),
        "commit": git("rev-parse", "HEAD"),
        "tree_modified": None if (status := git("status", "--porcelain")) is None else bool(status),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "load_average_before": list(os.getloadavg()),
    }


def resolve(name: str) -> str:
    """``bench_chain``, ``chain`` or ``benchmarks/bench_chain.py`` -> ``bench_chain``."""
    stem = Path(name).stem
    stem = stem if stem.startswith("bench_") else f"bench_{stem}"
    if stem not in BENCHMARKS:
        raise KeyError(name)
    return stem


def run_one(name: str, extra: List[str]) -> dict:
    """Run one benchmark, echoing its output, and return what it did."""
    cmd = [sys.executable, str(HERE / f"{name}.py"), *extra]
    print(f"## {name}: {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    lines = []
    with subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as proc:
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    seconds = time.perf_counter() - t0
    print(f"## {name}: exit {proc.returncode} after {seconds:.1f} s\n", flush=True)
    return {
        "name": name,
        "command": [os.path.relpath(c, ROOT) if c.startswith(str(ROOT)) else c for c in cmd],
        "returncode": proc.returncode,
        "seconds": seconds,
        "output": "".join(lines),
    }


def parse_extra(specs: List[str]) -> Dict[str, List[str]]:
    extra = {}
    for spec in specs:
        name, sep, args = spec.partition("=")
        if not sep:
            raise ValueError(f"--args {spec!r}: expected NAME=ARGS")
        extra[resolve(name)] = shlex.split(args)
    return extra


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all: {', '.join(BENCHMARKS)})"
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=ROOT / "build" / "benchmarks.json",
        help="the JSON to write (default: build/benchmarks.json)",
    )
    ap.add_argument(
        "--args",
        action="append",
        default=[],
        metavar='NAME="ARGS"',
        help='arguments for one benchmark (repeatable), e.g. --args chain="--repeats 7"',
    )
    a = ap.parse_args(argv)
    try:
        names = [resolve(n) for n in a.names] or list(BENCHMARKS)
        extra = parse_extra(a.args)
    except KeyError as e:
        print(f"unknown benchmark {e.args[0]!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(e, file=sys.stderr)
        return 2
    record = {"machine": machine(), "benchmarks": []}
    for name in names:
        record["benchmarks"].append(run_one(name, extra.get(name, [])))
    record["machine"]["load_average_after"] = list(os.getloadavg())
    failed = [b["name"] for b in record["benchmarks"] if b["returncode"] != 0]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {a.out}")
    print(
        f"{len(names) - len(failed)} of {len(names)} benchmarks exited 0"
        + (f"; not: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
