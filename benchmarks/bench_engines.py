#!/usr/bin/env python
"""Local worker processes against Ray for the same batch: the per-task overhead of Ray.

    python benchmarks/bench_engines.py --items 8 --jobs 2 --out build/bench-engines

Writes a pairs list of ``--items`` default matches (the bundled 12 s example dry vocal to the
bundled reference, default settings: MFCC, alpha 0.1, 100 steps, 11 s chunks, one torch thread
per worker), then runs ``vocalfx match-batch`` on it with ``--engine local --jobs J`` and with
``--engine ray --jobs J`` (a local Ray instance started by the command) into fresh folders,
``--repeat`` times each, alternating. Each run is a separate process, timed from start to exit, so
the Ray figure includes starting and stopping the Ray instance. Prints the medians, the ratio and
the per-item seconds from the items' own records (time inside the task), and checks that both
engines produced the same presets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run(pairs: Path, out: Path, engine: str, jobs: int) -> float:
    if out.exists():
        shutil.rmtree(out)
    cmd = [
        sys.executable,
        "-m",
        "vocalfx.cli",
        "match-batch",
        str(pairs),
        "-o",
        str(out),
        "--engine",
        engine,
        "--jobs",
        str(jobs),
        "--threads",
        "1",
        "-q",
    ]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{r.stderr}")
    return dt


def item_seconds(out: Path) -> list:
    return [
        json.loads(p.read_text())["seconds"]
        for p in (out / "items").glob("*.json")
        if not p.name.endswith(".preset.json")
    ]


def presets(out: Path) -> dict:
    return {p.name: np.asarray(json.loads(p.read_text())["raw"]) for p in (out / "items").glob("*.preset.json")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench-engines")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    pairs = a.out / "pairs.csv"
    dry, ref = ROOT / "examples" / "dry_vocal.flac", ROOT / "examples" / "reference.flac"
    pairs.write_text("dry,reference,name\n" + "".join(f"{dry},{ref},item{i}\n" for i in range(a.items)))
    times = {"local": [], "ray": []}
    per_item = {"local": [], "ray": []}
    for r in range(a.repeat):
        for engine in ("local", "ray"):
            out = a.out / f"{engine}-{r}"
            times[engine].append(run(pairs, out, engine, a.jobs))
            per_item[engine] += item_seconds(out)
            print(f"run {r + 1}/{a.repeat} {engine}: {times[engine][-1]:.1f} s", flush=True)
    same = all(np.array_equal(presets(a.out / "local-0")[k], v) for k, v in presets(a.out / "ray-0").items())
    med = {e: statistics.median(t) for e, t in times.items()}
    cpu = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
        platform.processor(),
    )
    print(
        f"\n{a.items} default matches of the bundled example (12 s dry, 12 s reference), {a.jobs} workers x 1 thread, "
        f"{a.repeat} run(s) per engine; {os.cpu_count()} CPUs ({cpu}), load at end {os.getloadavg()[0]:.2f}"
    )
    for e in ("local", "ray"):
        print(
            f"  {e:5s}: median wall {med[e]:.1f} s (runs {', '.join(f'{t:.1f}' for t in times[e])}); "
            f"per item inside the task: median {statistics.median(per_item[e]):.1f} s"
        )
    print(
        f"  ray / local = {med['ray'] / med['local']:.3f} (overhead {100 * (med['ray'] / med['local'] - 1):+.1f} %); "
        f"presets identical on both engines: {same}"
    )


if __name__ == "__main__":
    main()
