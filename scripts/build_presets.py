#!/usr/bin/env python
"""Build presets/vocalfx-starter.json: the hand-designed presets vocalfx ships.

Each preset is written down in physical units below (Hz, dB, ms, ratio, pan, T60 in seconds);
this script converts them to the 130-value vector and writes the collection. Run from the
repository root:  python scripts/build_presets.py
If a shipped default prior exists (priors/diffvox-internal.npz) its mean is added as the
preset "prior-mean" (the starting point of matching).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from vocalfx.params import FDN_DELAYS, FDN_NUM_DECAY_FREQS, SAMPLE_RATE
from vocalfx.preset import Preset, save_collection

ROOT = Path(__file__).resolve().parents[1]


def reverb(t60_low_s: float, t60_high_s: float, level: float, seed: int = 7) -> dict:
    """FDN settings: T60 gliding geometrically from DC to Nyquist, decorrelated L/R outputs."""
    n = len(FDN_DELAYS)
    out = {}
    for k in range(FDN_NUM_DECAY_FREQS):
        frac = k / (FDN_NUM_DECAY_FREQS - 1)
        out[f"reverb.decay_{k:02d}"] = t60_low_s * (t60_high_s / t60_low_s) ** frac
    signs_b = [[1, 1], [1, -1], [-1, 1], [1, 1], [-1, -1], [1, -1]]
    for i in range(n):
        for j in range(2):
            out[f"reverb.b_{i}_{j}"] = signs_b[i][j] / n
    signs_c = [[1, -1, 1, 1, -1, 1], [1, 1, -1, 1, 1, -1]]
    for i in range(2):
        for j in range(n):
            out[f"reverb.c_{i}_{j}"] = level * signs_c[i][j] / math.sqrt(n)
    gen = np.random.default_rng(seed).normal(0.0, 1.0, n * (n - 1) // 2)
    idx = 0
    for i in range(n):
        for j in range(i + 1, n):
            out[f"reverb.mixing_{i}_{j}"] = float(gen[idx])
            idx += 1
    return out


def design() -> list:
    presets = []

    def add(name, desc, values, rv):
        presets.append((name, desc, {**values, **rv}))

    base_comp = {"comp.lookahead_ms": 2.0, "comp.rms_ms": 0.15}
    add(
        "natural",
        "light EQ, gentle 3:1 compression, small room",
        {
            "peak1.gain_db": 1.5,
            "peak1.freq_hz": 200.0,
            "peak1.q": 1.0,
            "peak2.gain_db": 2.0,
            "peak2.freq_hz": 5000.0,
            "peak2.q": 0.8,
            "high_shelf.gain_db": 1.5,
            "high_shelf.freq_hz": 8000.0,
            "highpass.freq_hz": 80.0,
            "comp.comp_threshold_db": -20.0,
            "comp.comp_ratio": 3.0,
            "comp.exp_threshold_db": -55.0,
            "comp.makeup_db": 3.0,
            "comp.attack_ms": 5.0,
            "comp.release_ms": 80.0,
            **base_comp,
            "send.delay_to_reverb": 0.05,
            "delay.delay_ms": 120.0,
            "delay.gain": 0.02,
            "reverb_eq_low_shelf.gain_db": -6.0,
            "reverb_eq_low_shelf.freq_hz": 200.0,
        },
        reverb(0.7, 0.4, 0.15),
    )
    add(
        "pop-lead",
        "bright, 5:1 compression, 300 ms ping-pong, plate-like reverb",
        {
            "peak1.gain_db": -2.0,
            "peak1.freq_hz": 350.0,
            "peak1.q": 1.2,
            "peak2.gain_db": 4.0,
            "peak2.freq_hz": 3500.0,
            "peak2.q": 0.9,
            "high_shelf.gain_db": 4.0,
            "high_shelf.freq_hz": 7000.0,
            "low_shelf.gain_db": -2.0,
            "low_shelf.freq_hz": 120.0,
            "highpass.freq_hz": 110.0,
            "comp.comp_threshold_db": -24.0,
            "comp.comp_ratio": 5.0,
            "comp.exp_threshold_db": -50.0,
            "comp.makeup_db": 6.0,
            "comp.attack_ms": 3.0,
            "comp.release_ms": 60.0,
            **base_comp,
            "send.delay_to_reverb": 0.2,
            "delay.delay_ms": 300.0,
            "delay.feedback": 0.3,
            "delay.gain": 0.12,
            "delay.lowpass_freq_hz": 5000.0,
            "delay.odd_pan": -60.0,
            "delay.even_pan": 60.0,
            "reverb_eq_low_shelf.gain_db": -9.0,
            "reverb_eq_low_shelf.freq_hz": 300.0,
            "reverb_eq_high_shelf.gain_db": 2.0,
            "reverb_eq_high_shelf.freq_hz": 6000.0,
        },
        reverb(1.8, 1.1, 0.25, seed=11),
    )
    add(
        "slapback",
        "rockabilly slapback: one dark 110 ms echo, dry otherwise",
        {
            "peak2.gain_db": 2.0,
            "peak2.freq_hz": 2500.0,
            "peak2.q": 0.7,
            "highpass.freq_hz": 90.0,
            "comp.comp_threshold_db": -18.0,
            "comp.comp_ratio": 4.0,
            "comp.makeup_db": 4.0,
            "comp.attack_ms": 8.0,
            "comp.release_ms": 100.0,
            **base_comp,
            "send.delay_to_reverb": 0.02,
            "delay.delay_ms": 110.0,
            "delay.feedback": 0.05,
            "delay.gain": 0.4,
            "delay.lowpass_freq_hz": 3500.0,
            "delay.odd_pan": -15.0,
            "delay.even_pan": 15.0,
        },
        reverb(0.4, 0.25, 0.05, seed=3),
    )
    add(
        "wide-hall",
        "ballad: long dark hall, wide 450 ms ping-pong",
        {
            "peak1.gain_db": 2.0,
            "peak1.freq_hz": 180.0,
            "peak1.q": 0.8,
            "peak2.gain_db": 1.5,
            "peak2.freq_hz": 6000.0,
            "peak2.q": 0.7,
            "highpass.freq_hz": 70.0,
            "lowpass.freq_hz": 16000.0,
            "comp.comp_threshold_db": -22.0,
            "comp.comp_ratio": 2.5,
            "comp.makeup_db": 3.0,
            "comp.attack_ms": 10.0,
            "comp.release_ms": 150.0,
            **base_comp,
            "send.delay_to_reverb": 0.4,
            "delay.delay_ms": 450.0,
            "delay.feedback": 0.4,
            "delay.gain": 0.1,
            "delay.lowpass_freq_hz": 4000.0,
            "delay.odd_pan": -80.0,
            "delay.even_pan": 80.0,
            "reverb_eq_low_shelf.gain_db": -6.0,
            "reverb_eq_low_shelf.freq_hz": 250.0,
            "reverb_eq_high_shelf.gain_db": -4.0,
            "reverb_eq_high_shelf.freq_hz": 5000.0,
        },
        reverb(3.4, 1.6, 0.35, seed=5),
    )
    add(
        "telephone",
        "band-limited 500 Hz - 3 kHz, hard compression, no ambience",
        {
            "highpass.freq_hz": 500.0,
            "highpass.q": 0.9,
            "lowpass.freq_hz": 3000.0,
            "lowpass.q": 1.2,
            "peak1.gain_db": 6.0,
            "peak1.freq_hz": 1500.0,
            "peak1.q": 1.5,
            "comp.comp_threshold_db": -30.0,
            "comp.comp_ratio": 10.0,
            "comp.makeup_db": 10.0,
            "comp.attack_ms": 1.0,
            "comp.release_ms": 50.0,
            **base_comp,
            "send.delay_to_reverb": 0.01,
            "delay.gain": 0.001,
        },
        reverb(0.3, 0.2, 0.0),
    )
    return presets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-o", "--output", default=str(ROOT / "presets" / "vocalfx-starter.json"))
    ap.add_argument("--prior", default=str(ROOT / "priors" / "diffvox-internal.npz"))
    a = ap.parse_args()
    out = []
    for name, desc, vals in design():  # physical units; reverb decays are T60 seconds
        p = Preset.from_physical(vals, name=name)
        p.source = f"vocalfx starter preset: {desc}"
        out.append(p)
    prior_path = Path(a.prior)
    if prior_path.is_file():
        from vocalfx.prior import GaussianPrior

        prior = GaussianPrior.load(prior_path)
        p = Preset.from_vector(prior.mean, name="prior-mean")
        p.source = (
            f"mean of the shipped prior {prior_path.name} (fitted by vocalfx from the DiffVox internal collection)"
        )
        out.append(p)
    save_collection(
        out,
        a.output,
        name="vocalfx-starter",
        source="hand-designed by the vocalfx authors; see scripts/build_presets.py",
    )
    print(f"wrote {len(out)} presets to {a.output} at {SAMPLE_RATE} Hz: " + ", ".join(p.name for p in out))


if __name__ == "__main__":
    main()
