"""Time `vocalfx.match` end to end: a 44 s dry vocal against a 44 s reference vocal.

The dry is a dev-corpus vocal (../shared/corpus/dev), the reference another dev vocal rendered
through a MedleyDB preset, both 44 s (4 chunks of 11 s each). Each repeat runs in a fresh
subprocess with `vocalfx.match`'s default settings (or another ``--encoder``) and reports wall time,
time per step and the peak resident memory of that process. The first repeat also pays for
loading modules (the numba kernels are cached on disk after the first run ever).

    python benchmarks/bench_match.py [--repeats 3] [--threads 2] [--encoder NAME] [--reference-kbps 64]

Targets for the default match: at most 30 s and 2 GB peak RSS on the project's 2-core machine.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(a) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    import vocalfx
    from vocalfx.alloc import apply_from_environment

    apply_from_environment()  # as the vocalfx command does; VOCALFX_KEEP_HEAP=0 to compare without
    from vocalfx import Preset
    from vocalfx.io import load_audio
    from vocalfx.render import render

    shared = Path(a.shared)
    n = 44 * 44100
    dry = load_audio(shared / "corpus/dev/vocals/sing_02.flac")[:, :n]
    src = load_audio(shared / "corpus/dev/vocals/sing_06.flac")[:, :n]
    row = np.load(shared / "diffvox-presets/medleydb/raw_params.npy")[8]
    ref = render(src, Preset.from_diffvox(row))
    if a.reference_kbps:  # an MP3 reference: libsndfile's LAME, as the codec simulation uses
        from vocalfx.codec import mp3_roundtrip

        ref = mp3_roundtrip(ref, 44100, a.reference_kbps)
    t0 = time.perf_counter()
    kw = {} if a.encoder == "default" else {"encoder": a.encoder}
    res = vocalfx.match(dry, ref, 44100, progress=False, **kw)
    seconds = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "steps": res.stats.steps,
                "rss_mb": rss,
                "dry_s": dry.shape[-1] / 44100,
                "ref_s": ref.shape[-1] / 44100,
                "n_dry_chunks": res.stats.n_dry_chunks,
                "n_ref_chunks": res.stats.n_ref_chunks,
                "loss": [res.stats.initial_loss, res.stats.loss],
                "fx_weights": res.stats.fx_weights,
                "simulated_codec": res.stats.simulated_codec,
            }
        )
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--encoder", default="default", help="encoder (default: vocalfx.match's default)")
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument(
        "--reference-kbps",
        type=int,
        default=0,
        help="put the reference through MP3 at this bit rate first (a lossy reference's match)",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a)
        return 0
    import torch

    print(
        f"# bench_match: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{a.threads} threads, encoder {a.encoder}, default settings"
        f"{f', reference as MP3 at {a.reference_kbps} kbps' if a.reference_kbps else ''}; load average before: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    runs = []
    for i in range(a.repeats):
        cmd = [
            sys.executable,
            __file__,
            "--child",
            "--threads",
            str(a.threads),
            "--encoder",
            a.encoder,
            "--shared",
            a.shared,
            "--reference-kbps",
            str(a.reference_kbps),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        r = json.loads(out)
        runs.append(r)
        print(
            f"run {i + 1}: {r['seconds']:.1f} s for {r['steps']} steps "
            f"({r['seconds'] / max(r['steps'], 1):.3f} s/step), "
            f"peak RSS {r['rss_mb']:.0f} MB; {r['dry_s']:.0f} s dry in {r['n_dry_chunks']} chunks, "
            f"{r['ref_s']:.0f} s reference in {r['n_ref_chunks']} chunks; "
            f"loss {r['loss'][0]:.3f} -> {r['loss'][1]:.3f}; "
            f"fx weights {r['fx_weights']}, simulated codec {r['simulated_codec']}",
            flush=True,
        )
    med = statistics.median(r["seconds"] for r in runs)
    rss = max(r["rss_mb"] for r in runs)
    print(
        f"median {med:.1f} s (target <= 30 s: {'met' if med <= 30 else 'NOT met'}), "
        f"peak RSS {rss:.0f} MB (target <= 2048 MB: {'met' if rss <= 2048 else 'NOT met'}); "
        f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
