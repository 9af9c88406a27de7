#!/usr/bin/env python
"""Measure `vocalfx.matching.fit_pair` on a synthetic pair whose true preset is known.

The pair: ``--seconds`` of a dry vocal from the shared corpus, normalised to -18 LUFS, rendered
through row ``--index`` of the DiffVox MedleyDB collection. The truth's ``comp.makeup_db`` is
moved so that its render is at -18 LUFS too; the make-up gain scales the whole (linear) rest of
the chain, so this is the same sound at another level, and the -18 LUFS normalisation inside
``fit_pair`` leaves the target untouched: the truth is an exact solution of the fitted problem.

Printed (and with ``--json``, written): the MSS (L/R, vocalfx.metrics.mss) against the target of
the refit render, of the truth's render (0 by construction) and of the shipped prior's mean (the
optimiser's starting point); PMSE (mean squared
raw-parameter error) of the refit and of the prior mean against the truth; the fit's report;
wall-clock and CPU time. Run it with ``nice`` on a shared machine; wall time depends on load,
CPU time much less.

``--lag-study`` instead measures the alignment: for excerpts of the dry (2 s and 6 s from 0 s,
6 s from 10 s with the wet delayed by 441 samples, 30 s from 0 s with every other preset), each
MedleyDB preset's render is aligned with `find_lag` by plain cross-correlation and by GCC-PHAT,
and the errors against the true lag are counted.

Usage:
    nice -n 10 .venv/bin/python scripts/measure_fit_pair.py --seconds 30 --index 9 [--steps N]
        [--batch-size B] [--lr LR] [--lr-final-ratio R] [--json out.json]
    nice -n 10 .venv/bin/python scripts/measure_fit_pair.py --lag-study
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VOCALFX_SHARED", ROOT.parent / "shared"))


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def lag_study(dry_path: str, collection: str) -> None:
    from vocalfx.io import load_audio, loudness_normalize
    from vocalfx.matching import find_lag
    from vocalfx.preset import Preset
    from vocalfx.render import render

    sr = 44100
    rows = np.load(collection)
    x = load_audio(dry_path, sample_rate=sr)
    print(f"{'excerpt':<22} {'weighting':<9} {'exact':>6} {'within 2':>9} {'presets':>8} {'worst error':>12}")
    for seconds, offset, delay, step in ((2, 0, 0, 1), (6, 0, 0, 1), (6, 10, 441, 1), (30, 0, 0, 2)):
        d, _ = loudness_normalize(x[:, offset * sr : (offset + seconds) * sr], sr)
        errors = {"none": [], "phat": []}
        for i in range(0, rows.shape[0], step):
            y = torch.nn.functional.pad(render(d, Preset.from_diffvox(rows[i])), (delay, 0))
            for weighting in errors:
                errors[weighting].append(find_lag(d, y, weighting=weighting) - delay)
        for weighting, e in errors.items():
            e = np.array(e)
            label = f"{seconds} s @ {offset} s, lag {delay}"
            print(
                f"{label:<22} {weighting:<9} {int((e == 0).sum()):>6} {int((np.abs(e) <= 2).sum()):>9} {e.size:>8} "
                f"{int(e[np.argmax(np.abs(e))]):>12}"
            )


def main() -> int:
    from vocalfx import __version__
    from vocalfx import params as P
    from vocalfx.io import load_audio, loudness_normalize
    from vocalfx.matching.fit import DEFAULT_LR, DEFAULT_STEPS, fit_pair
    from vocalfx.metrics import mss, pmse
    from vocalfx.preset import Preset
    from vocalfx.prior import GaussianPrior
    from vocalfx.render import render

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry", default=str(SHARED / "corpus" / "dev" / "vocals" / "sing_01.flac"))
    ap.add_argument("--collection", default=str(SHARED / "diffvox-presets" / "medleydb" / "raw_params.npy"))
    ap.add_argument("--index", type=int, default=9, help="row of the collection used as the truth (default: 9)")
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the pair (s, default 30)")
    ap.add_argument("--offset", type=float, default=0.0, help="start of the excerpt in the dry file (s)")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--lr", type=float, default=DEFAULT_LR)
    ap.add_argument("--lr-final-ratio", type=float, default=None, help="default: fit_pair's")
    ap.add_argument("--batch-size", type=int, default=-1, help="chunks per step (default: fit_pair's; 0 = all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--lag-study", action="store_true", help="measure the alignment instead (see above)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.lag_study:
        lag_study(a.dry, a.collection)
        return 0
    sr = P.SAMPLE_RATE

    x = load_audio(a.dry, sample_rate=sr)
    i0 = int(round(a.offset * sr))
    clip = x[:, i0 : i0 + int(round(a.seconds * sr))]
    dry18, _ = loudness_normalize(clip, sr)
    truth = Preset.from_diffvox(np.load(a.collection)[a.index], name=f"medleydb_{a.index:03d}")
    _, gain_db = loudness_normalize(render(dry18, truth), sr)
    truth.raw[P.INDEX["comp.makeup_db"]] += gain_db
    target = render(dry18, truth)

    prior = GaussianPrior.default()
    prior_mean = Preset.from_vector(prior.mean, name="prior mean")

    def mss_to_target(preset: Preset) -> float:
        return float(mss(render(dry18, preset).unsqueeze(0), target.unsqueeze(0)))

    kwargs = dict(steps=a.steps, lr=a.lr, progress=True)
    if a.lr_final_ratio is not None:
        kwargs["lr_final_ratio"] = a.lr_final_ratio
    if a.batch_size >= 0:
        kwargs["batch_size"] = None if a.batch_size == 0 else a.batch_size
    c0, t0 = cpu_seconds(), time.perf_counter()
    res = fit_pair(dry18, target, sr, init=prior_mean, **kwargs)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0

    t_raw = torch.from_numpy(truth.raw)
    out = {
        "pair": {
            "dry": Path(a.dry).name,
            "offset_s": a.offset,
            "seconds": a.seconds,
            "truth": f"MedleyDB row {a.index}",
            "truth_makeup_shift_db": gain_db,
        },
        "settings": {k: v for k, v in kwargs.items() if k != "progress"} | {"threads": a.threads},
        "mss_refit": mss_to_target(res.preset),
        "mss_truth": mss_to_target(truth),
        "mss_prior_mean": mss_to_target(prior_mean),
        "pmse_refit": float(pmse(torch.from_numpy(res.preset.raw), t_raw)),
        "pmse_prior_mean": float(pmse(prior.mean, t_raw)),
        "wall_s": wall,
        "cpu_s": cpu,
        "load_average_after": os.getloadavg(),
        "report": res.report.to_dict(),
        "machine": {
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "vocalfx": __version__,
        },
    }
    print(res.report.summary())
    for k in ("mss_refit", "mss_truth", "mss_prior_mean", "pmse_refit", "pmse_prior_mean"):
        print(f"{k:<28} {out[k]:.4f}")
    print(f"{'wall / cpu time (s)':<28} {wall:.1f} / {cpu:.1f} (load average after: {os.getloadavg()[0]:.2f})")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
