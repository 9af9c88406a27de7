#!/usr/bin/env python
"""Time the AFx-Rep encoder as inference-time optimisation uses it: forward + backward to the audio.

One step is: ``--chunks`` stereo chunks of ``--seconds`` at 44.1 kHz (requires_grad) -> resample
to 48 kHz -> AFx-Rep -> L2-normalised mid/side embeddings -> a scalar -> backward to the audio.
Weights do not change the cost, so without ``--checkpoint`` a randomly initialised network is
written (as a bare encoder state dict) to a temporary directory and loaded through the same path
as the published file. Printed: wall-clock and CPU time per step (median of ``--repeats``) and
of its parts. Run it with ``nice`` on a shared machine; wall time depends on load, CPU time
(one thread) much less.

Usage:
    nice -n 10 .venv/bin/python scripts/measure_afx_rep.py [--threads 1] [--chunks 4]
        [--seconds 11] [--repeats 3] [--checkpoint afx-rep.ckpt]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torchaudio.functional as AF

from vocalfx.embed.afx_rep import AFxRepEncoder, AFxRepNet, _windowed_dft, slaney_mel_basis


def random_checkpoint(directory: Path) -> Path:
    net = AFxRepNet()
    real, imag = _windowed_dft(net.n_fft)
    state = dict(net.state_dict())
    state["spectrogram_extractor.stft.conv_real.weight"] = real.float()
    state["spectrogram_extractor.stft.conv_imag.weight"] = imag.float()
    state["logmel_extractor.melW"] = slaney_mel_basis(48000, net.n_fft, net.n_mels, 20.0, 20000.0).float()
    path = directory / "afx-rep-random.pt"
    torch.save(state, path)
    return path


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    ap.add_argument("--chunks", type=int, default=4, help="batch of stereo chunks (default 4)")
    ap.add_argument("--seconds", type=float, default=11.0, help="chunk length in s (default 11)")
    ap.add_argument("--repeats", type=int, default=3, help="timed steps after one warm-up (default 3)")
    ap.add_argument("--checkpoint", type=Path, help="AFx-Rep checkpoint (default: random weights)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        enc = AFxRepEncoder(44100, checkpoint=args.checkpoint or random_checkpoint(Path(tmp)))
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(args.chunks, 2, int(args.seconds * 44100), generator=g)
    w = torch.randn(2, 512, generator=g)

    rows = {"resample": [], "forward (net)": [], "backward": [], "step (total)": []}
    for i in range(args.repeats + 1):
        xr = x.clone().requires_grad_(True)
        x48, tw1, tc1 = timed(lambda: AF.resample(xr, 44100, 48000))
        (mid, side), tw2, tc2 = timed(lambda: enc.net(x48))
        loss = (torch.nn.functional.normalize(mid, dim=-1) @ w[0]).sum() + (
            torch.nn.functional.normalize(side, dim=-1) @ w[1]
        ).sum()
        _, tw3, tc3 = timed(loss.backward)
        if i == 0:
            continue  # warm-up
        rows["resample"].append((tw1, tc1))
        rows["forward (net)"].append((tw2, tc2))
        rows["backward"].append((tw3, tc3))
        rows["step (total)"].append((tw1 + tw2 + tw3, tc1 + tc2 + tc3))
        assert xr.grad is not None and bool(torch.isfinite(xr.grad).all())

    print(
        f"AFx-Rep forward+backward: {args.chunks} x {args.seconds:g} s stereo at 44.1 kHz, "
        f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, median of {args.repeats}"
    )
    for name, vals in rows.items():
        wall = statistics.median(v[0] for v in vals)
        cpu = statistics.median(v[1] for v in vals)
        print(f"  {name:15s} wall {wall:7.2f} s   cpu {cpu:7.2f} s")


if __name__ == "__main__":
    main()
