#!/usr/bin/env python
"""Benchmark the chain's hand-written pieces against the library code they replace.

Each row times forward + backward (or the transforms alone) on the shapes of one ITO step: 4
chunks of 11 s at 44.1 kHz sharing one preset. Prints the median of --repeats calls after one
warm-up, in ms, and the ratio.

  fft-length       8 rows of rFFT + irFFT at scipy's next_fast_len(2T - 1) (972000 points) against
                   the next power of two (1048576), the size vocalfx.functional.fft.fft_length picks
  gain-computer    the compressor/expander's gain computer: torchcomp's avg + static curve +
                   compressor_core (tensor operations, torchlpc) against the fused numba kernel
                   vocalfx.functional.dynamics.smoothed_gain
  reverb-post-eq   the chain after the compressor (responses, FFTs, transfer), forward + backward:
                   the FDN's 4-band post-EQ filtering its 2 x 2 truncated responses in time
                   (sosfilt) against its decayed impulse response's spectrum in the transfer
                   function, as VocalChain.render_post does

torchcomp's own kernel uses numba's parallel=True, whose OpenMP pool spins beside torch's; this
script runs numba with the 'workqueue' threading layer so that torchcomp is timed at its best.

Usage: python benchmarks/bench_kernels.py [--repeats 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")  # a script: see the docstring

import torch  # noqa: E402

T = 11 * 44100


def timed(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def fft_rows(n: int):
    x = torch.randn(8, n)
    X = torch.fft.rfft(x)

    def run():
        torch.fft.rfft(x)
        torch.fft.irfft(X, n=n)

    return run


def gain_computer(fused: bool):
    from vocalfx.functional.dynamics import _smoothed_gain_torchcomp, smoothed_gain

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, T, generator=g) * torch.linspace(0.001, 0.5, T)
    values = (-20.0, 4.0, -45.0, 0.5, 0.05, 0.002, 0.01)
    fn = smoothed_gain if fused else _smoothed_gain_torchcomp

    def run():
        xx = x.clone().requires_grad_(True)
        ps = [torch.full((4,), v, requires_grad=True) for v in values]
        fn(xx, *ps).sum().backward()

    return run


def reverb_post_eq(spectrum: bool):
    from vocalfx import VocalChain
    from vocalfx.params import raw_to_native
    from vocalfx.prior import GaussianPrior

    chain = VocalChain(44100)
    raw = GaussianPrior.default().mean.float()[None]
    u = torch.randn(4, 1, T, generator=torch.Generator().manual_seed(0)) * 0.1

    def run():
        p = raw.clone().requires_grad_(True)
        native = raw_to_native(p)
        uu = u.clone().requires_grad_(True)
        if spectrum:
            responses = None  # the chain's own: the EQ's impulse response as a spectrum
        else:  # the post-EQ filters the four truncated responses in time; a unit impulse in its place
            hd = chain.delay.ir(native)[..., :T]
            hf = chain.reverb.ir(native, length=T, post_eq=True)
            responses = (hd, hf, torch.ones(1, 1, 1))
        chain.render_post(uu, native, responses).square().mean().backward()

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{a.threads} threads, median of {a.repeats}"
    )
    rows = [
        ("fft-length", "972000 (5-smooth)", fft_rows(972000), "1048576 (2^20)", fft_rows(1048576)),
        ("gain-computer", "torchcomp", gain_computer(False), "fused kernel", gain_computer(True)),
        ("reverb-post-eq", "sosfilt in time", reverb_post_eq(False), "EQ spectrum", reverb_post_eq(True)),
    ]
    for name, label_a, run_a, label_b, run_b in rows:
        ta, tb = timed(run_a, a.repeats), timed(run_b, a.repeats)
        print(
            f"{name:15s} {label_a:>20s} {1000 * ta:8.1f} ms   "
            f"{label_b:>20s} {1000 * tb:8.1f} ms   ratio {ta / tb:5.2f}x"
        )


if __name__ == "__main__":
    main()
