#!/usr/bin/env python3
"""Time the A-weighting FIR of MSS three ways, and the whole MSS of a track.

MSS (vocalfx.metrics.mss) A-weights both signals with auraloss's 101-tap FIR. auraloss applies it
with conv1d; on CPU, PyTorch sends that conv1d to oneDNN unless torch.backends.mkldnn is off, and
oneDNN is slow for this (batch, 1, long time) shape. vocalfx applies the same taps by FFT
convolution instead (torchaudio.functional.fftconvolve), which needs no process-wide flag.

    python benchmarks/bench_metrics.py --seconds 44 --repeats 5 --threads 1

Prints the median time of each route and their largest difference (relative to the peak).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=44.0, help="signal length in s (default: 44, a dev track)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    import torch
    import torchaudio.functional as taF
    from auraloss.perceptual import FIRFilter

    from vocalfx.metrics import mss

    torch.set_num_threads(a.threads)
    sr = 44100
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, int(a.seconds * sr), generator=gen)
    taps = FIRFilter(filter_type="aw", fs=sr).fir.weight.data

    def onednn():
        return torch.nn.functional.conv1d(x, taps, padding=taps.shape[-1] // 2)

    def native():
        with torch.backends.mkldnn.flags(enabled=False):  # benchmark only: a process-wide switch
            return torch.nn.functional.conv1d(x, taps, padding=taps.shape[-1] // 2)

    def fft():
        return taF.fftconvolve(x, taps.flip(-1), mode="same")

    y = torch.randn(1, 2, x.shape[-1], generator=gen)
    z = torch.randn(1, 2, x.shape[-1], generator=gen)

    def whole_mss():
        return mss(y, z, sr)

    print(
        f"# bench_metrics: {platform.machine()}, {os.cpu_count()} cores, {a.threads} thread(s), "
        f"torch {torch.__version__}; {a.seconds:g} s stereo float32, median of {a.repeats}"
    )
    ref = onednn()
    for name, fn in (
        ("conv1d (oneDNN)", onednn),
        ("conv1d (native)", native),
        ("fftconvolve", fft),
        ("vocalfx.metrics.mss L/R", whole_mss),
    ):
        fn()  # warm-up
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        diff = ""
        if out.shape == ref.shape:
            diff = f"  max |diff| / peak vs oneDNN {float((out - ref).abs().max() / ref.abs().max()):.2e}"
        print(f"{name:<26} {statistics.median(times):7.3f} s{diff}")


if __name__ == "__main__":
    main()
