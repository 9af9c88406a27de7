#!/usr/bin/env python
"""Benchmark the vocal chain: render time, forward+backward time and peak memory.

Cases (float32, one DiffVox-like preset, white noise at -20 dBFS RMS as input):
  render-10s     render 10 s of mono input (no gradients)
  render-60s     render 60 s of mono input (no gradients)
  fwdbwd-4x11s   forward + backward w.r.t. the 130 raw parameters for a batch of 4 chunks of
                 11 s sharing one preset: the cost of one inference-time optimisation step
  fwdbwd-4p-4x11s  the same with 4 different presets (one per chunk), for reference

Each case runs in its own process (so peak RSS is that case's), after one warm-up call (numba
kernels compile or load from cache then), and reports the median of --repeats timed calls and
the process's peak resident set size. Usage: python benchmarks/bench_chain.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

CASES = ["render-10s", "render-60s", "fwdbwd-4x11s", "fwdbwd-4p-4x11s"]
TARGETS = {"render-10s": 0.15, "fwdbwd-4x11s": 0.8}


def _preset_vectors(n: int):
    import torch

    from vocalfx.preset import Preset

    names = ["pop-lead", "wide-hall", "natural", "slapback"]
    return torch.stack([Preset.resolve(names[i % 4]).vector for i in range(n)]).float()


def run_case(case: str, repeats: int, threads: int) -> dict:
    import torch

    from vocalfx.alloc import apply_from_environment, is_applied

    apply_from_environment()  # as the vocalfx command does; VOCALFX_KEEP_HEAP=0 to compare without
    torch.set_num_threads(threads)
    from vocalfx import VocalChain

    sr = 44100
    chain = VocalChain(sr)
    g = torch.Generator().manual_seed(0)
    if case.startswith("render"):
        seconds = int(case.split("-")[1][:-1])
        x = torch.randn(1, 1, seconds * sr, generator=g) * 0.1
        v = _preset_vectors(1)

        def step():
            with torch.no_grad():
                return chain(x, params=v)
    else:
        x = torch.randn(4, 1, 11 * sr, generator=g) * 0.1
        v0 = _preset_vectors(4 if case.startswith("fwdbwd-4p") else 1)
        w = torch.randn(4, 2, 11 * sr, generator=g)

        def step():
            v = v0.clone().requires_grad_()
            y = chain(x, params=v)
            (y * w).sum().backward()
            assert torch.isfinite(v.grad).all()
            return y

    step()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    rss_mb = _peak_rss_mb()
    return {
        "case": case,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "peak_rss_mb": rss_mb,
        "repeats": repeats,
        "heap_kept": is_applied(),
    }


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (MiB): VmHWM where Linux has it.

    getrusage's ru_maxrss also counts the RSS of the parent copied at fork time, which includes
    torch when the parent imported it.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--case", choices=CASES, help="run one case in this process (internal)")
    a = ap.parse_args()
    if a.case:
        print(json.dumps(run_case(a.case, a.repeats, a.threads)))
        return
    import torch

    print(f"load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"vocalfx chain benchmark: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}, {a.threads} threads, float32, median of {a.repeats} after 1 warm-up"
    )
    print(f"{'case':<18} {'median s':>9} {'min s':>8} {'peak RSS MB':>12}  target")
    for case in CASES:
        out = subprocess.run(
            [sys.executable, __file__, "--case", case, "--repeats", str(a.repeats), "--threads", str(a.threads)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        tgt = TARGETS.get(case)
        tgt_s = f"<= {tgt} s: {'met' if r['median_s'] <= tgt else 'NOT met'}" if tgt else ""
        print(f"{case:<18} {r['median_s']:9.3f} {r['min_s']:8.3f} {r['peak_rss_mb']:12.0f}  {tgt_s}")
    alloc = (
        "freed memory kept in the heap (vocalfx/alloc.py); set VOCALFX_KEEP_HEAP=0 to compare"
        if r["heap_kept"]
        else "untouched (VOCALFX_KEEP_HEAP=0, or not glibc)"
    )
    print(f"allocator: {alloc}; load average after " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
