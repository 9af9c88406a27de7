#!/usr/bin/env python
"""Out-of-family check: references processed by effects that are not ``VocalChain``.

    pip install pedalboard matchering            # the 'compare' extra: pip install -e '.[compare]'
    python scripts/out_of_family.py --corpus ../shared/corpus/dev --out build/oof --jobs 2

What it does, per dev-corpus vocal (MedleyDB presets are never read: each track's truth here is
an effects chain drawn by this script):

1. **Wet**: the dry vocal (mono, 44.1 kHz, -18 LUFS, as in the evaluation protocol) through a
   held-out effects chain with settings drawn from ``--seed`` and the track's index: pedalboard's
   high-pass, two peak filters, high shelf and compressor; constant-power pan; a stereo
   feedback delay (pedalboard ``Delay``, different times left and right); and a convolution
   reverb (``scipy.signal.fftconvolve``) with a synthetic stereo impulse response (decaying
   noise, per-side T60 and damping, pre-delay). The convolution reverb, the delay routing and
   these ranges were never used to make training data (the training set's pedalboard effects use
   pedalboard's algorithmic ``Reverb``; ``docs/guide/encoders.md``).
2. **Protocol**: the corpus written to ``OUT/corpus`` (``protocol.json`` with a ``wet`` file per
   track) goes through ``vocalfx.evaluation.evaluate`` like any corpus: the reference is the wet
   chunks at even positions, the input the dry chunks at odd positions; ``OUT/eval`` holds the
   cells (resumable).
3. **Matchering 2** (``matchering.process``, default settings, limiter on: what a user gets), with
   target = the whole dry track at -18 LUFS and reference = the reference chunks laid end to end.
4. **Level**: each ITO row is also scored as ``vocalfx match`` writes it by default
   (``level="reference"``, row ``NAME+level``): one gain so that the output's integrated loudness
   equals the reference chunks' (the make-up gain ``match`` sets; a pure output gain).
5. **Scores**, against the whole wet track: MSS L/R and MLDR L/R of the raw output, and of the
   output after one gain that matches its integrated loudness to the wet's (pyloudnorm). Written
   to ``OUT/results.csv`` (per track and method) and ``OUT/summary.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from vocalfx.evaluation import MethodOptions, evaluate, load_corpus, parse_methods, prepare_track
from vocalfx.io import atomic_write_text, integrated_loudness, load_audio, loudness_normalize
from vocalfx.metrics import mldr, mss
from vocalfx.preset import Preset
from vocalfx.render import render

ROOT = Path(__file__).resolve().parents[1]

SR = 44100
DEFAULT_METHODS = "mean,ito:mfcc:0.1,pred,ito-pred:fx:0.1,match"


def draw_settings(rng: np.random.Generator) -> dict:
    """Random settings of the held-out chain (units in the names)."""
    return dict(
        highpass_hz=float(rng.uniform(60, 220)),
        peaks=[
            dict(
                freq_hz=float(np.exp(rng.uniform(np.log(180), np.log(7000)))),
                gain_db=float(rng.uniform(-9, 9)),
                q=float(rng.uniform(0.5, 2.5)),
            )
            for _ in range(2)
        ],
        high_shelf=dict(freq_hz=float(rng.uniform(2500, 10000)), gain_db=float(rng.uniform(-8, 9))),
        compressor=dict(
            threshold_db=float(rng.uniform(-32, -8)),
            ratio=float(rng.uniform(1.5, 8)),
            attack_ms=float(rng.uniform(1, 30)),
            release_ms=float(rng.uniform(40, 400)),
        ),
        pan=float(rng.uniform(-0.4, 0.4)),
        delay=dict(
            left_s=float(rng.uniform(0.08, 0.5)),
            right_s=float(rng.uniform(0.08, 0.5)),
            feedback=float(rng.uniform(0.0, 0.55)),
            send_db=float(rng.uniform(-30, -8)),
        ),
        reverb=dict(
            t60_s=float(rng.uniform(0.4, 3.0)),
            damping=float(rng.uniform(0.2, 0.9)),
            predelay_ms=float(rng.uniform(0, 40)),
            send_db=float(rng.uniform(-24, -4)),
            seed=int(rng.integers(2**31)),
        ),
        output_gain_db=float(rng.uniform(-6, 6)),
    )


def synthetic_ir(r: dict) -> np.ndarray:
    """A stereo impulse response ``(2, n)``: independent decaying noise per side, one-pole damped."""
    from scipy.signal import lfilter

    g = np.random.default_rng(r["seed"])
    n = int((r["t60_s"] * 1.2 + r["predelay_ms"] / 1000) * SR)
    t = np.arange(n) / SR
    pre = int(r["predelay_ms"] / 1000 * SR)
    env = np.where(np.arange(n) >= pre, 10 ** (-3 * np.clip(t - pre / SR, 0, None) / r["t60_s"]), 0.0)
    ir = g.standard_normal((2, n)) * env
    ir = lfilter([1 - r["damping"]], [1, -r["damping"]], ir, axis=-1)  # darker as it decays is not modelled
    return ir / np.sqrt((ir**2).sum(-1, keepdims=True))


def apply_chain(dry: np.ndarray, s: dict) -> np.ndarray:
    """``(time,)`` mono float -> ``(2, time)`` through the held-out chain."""
    import pedalboard as pb
    from scipy.signal import fftconvolve

    board = pb.Pedalboard(
        [
            pb.HighpassFilter(cutoff_frequency_hz=s["highpass_hz"]),
            *[pb.PeakFilter(cutoff_frequency_hz=p["freq_hz"], gain_db=p["gain_db"], q=p["q"]) for p in s["peaks"]],
            pb.HighShelfFilter(cutoff_frequency_hz=s["high_shelf"]["freq_hz"], gain_db=s["high_shelf"]["gain_db"]),
            pb.Compressor(
                threshold_db=s["compressor"]["threshold_db"],
                ratio=s["compressor"]["ratio"],
                attack_ms=s["compressor"]["attack_ms"],
                release_ms=s["compressor"]["release_ms"],
            ),
        ]
    )
    x = board(dry[None].astype(np.float32), SR)[0].astype(np.float64)
    theta = (s["pan"] + 1) * np.pi / 4
    direct = np.stack([x * np.cos(theta), x * np.sin(theta)])
    d = s["delay"]
    send = x * 10 ** (d["send_db"] / 20)
    delayed = np.stack(
        [
            pb.Delay(delay_seconds=d["left_s"], feedback=d["feedback"], mix=1.0)(send[None].astype(np.float32), SR)[0],
            pb.Delay(delay_seconds=d["right_s"], feedback=d["feedback"], mix=1.0)(send[None].astype(np.float32), SR)[0],
        ]
    ).astype(np.float64)
    r = s["reverb"]
    ir = synthetic_ir(r)
    wet_rev = np.stack([fftconvolve(x, ir[c])[: x.size] for c in range(2)]) * 10 ** (r["send_db"] / 20)
    y = (direct + delayed + wet_rev) * 10 ** (s["output_gain_db"] / 20)
    if not np.isfinite(y).all():
        raise RuntimeError("the held-out chain produced non-finite audio")
    return y


def build_corpus(src: Path, out: Path, seed: int, tracks) -> Path:
    corpus = load_corpus(src)
    cdir = out / "corpus"
    (cdir / "wet").mkdir(parents=True, exist_ok=True)
    entries = []
    for i, spec in enumerate(corpus.tracks):
        if tracks and spec.name not in tracks:
            continue
        wet_path, set_path = cdir / "wet" / f"{spec.name}.wav", cdir / "wet" / f"{spec.name}.json"
        if not wet_path.exists():
            dry = load_audio(spec.dry, sample_rate=SR, mono=True)
            dry, _ = loudness_normalize(dry, SR, -18.0)
            s = draw_settings(np.random.default_rng([seed, i]))
            y = apply_chain(dry[0].double().numpy(), s)
            tmp = wet_path.with_suffix(".tmp.wav")
            sf.write(tmp, y.T.astype(np.float32), SR, subtype="FLOAT")
            tmp.replace(wet_path)
            atomic_write_text(set_path, json.dumps(s, indent=1) + "\n")
        entries.append({"track": spec.name, "vocal": str(Path(spec.dry).resolve()), "wet": f"wet/{spec.name}.wav"})
    atomic_write_text(
        cdir / "protocol.json", json.dumps({"chunk_seconds": 11, "lufs": -18.0, "tracks": entries}, indent=1) + "\n"
    )
    return cdir


def matchering_output(track, workdir: Path) -> np.ndarray:
    import matchering as mg

    n_ref, _, length = track.reference.shape
    target, ref, res = workdir / "target.wav", workdir / "reference.wav", workdir / "result.wav"
    sf.write(target, track.dry[0].numpy(), SR, subtype="FLOAT")
    sf.write(ref, track.reference.permute(1, 0, 2).reshape(2, n_ref * length).T.numpy(), SR, subtype="FLOAT")
    mg.log(lambda *_: None)
    mg.process(target=str(target), reference=str(ref), results=[mg.Result(str(res), subtype="FLOAT")])
    y, rate = sf.read(res, dtype="float32", always_2d=True)
    if rate != SR:
        raise RuntimeError(f"matchering wrote {rate} Hz")
    return y.T


def scores(out: torch.Tensor, wet: torch.Tensor) -> dict:
    n = min(out.shape[-1], wet.shape[-1])
    out, wet = out[..., :n].float(), wet[..., :n].float()
    gain_db = integrated_loudness(wet, SR) - integrated_loudness(out, SR)
    matched = out * 10 ** (gain_db / 20)
    return {
        "mss_lr_raw": float(mss(out[None], wet[None])),
        "mldr_lr_raw": float(mldr(out[None], wet[None])),
        "mss_lr": float(mss(matched[None], wet[None])),
        "mldr_lr": float(mldr(matched[None], wet[None])),
        "loudness_gain_db": float(gain_db),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "dev")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "oof")
    ap.add_argument("--methods", default=DEFAULT_METHODS, help=f"vocalfx eval methods (default {DEFAULT_METHODS})")
    ap.add_argument("--tracks", default="", help="comma-separated track names (default: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--no-matchering", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    tracks = [t for t in args.tracks.split(",") if t]
    t0 = time.time()
    cdir = build_corpus(args.corpus, args.out, args.seed, tracks)
    corpus = load_corpus(cdir)
    opts = MethodOptions(encoders=("mfcc",))
    methods = parse_methods(args.methods.split(","), opts)
    res = evaluate(corpus, methods, args.out / "eval", options=opts, jobs=args.jobs, threads=1, progress=True)
    rows = []
    for spec in corpus.tracks:
        track = prepare_track(spec)
        ref_audio = track.reference.permute(1, 0, 2).reshape(2, -1)  # the reference chunks end to end
        for m in methods:
            cell = json.loads((args.out / "eval" / "cells" / spec.name / f"{m.name}.json").read_text())
            if cell.get("status") != "ok":
                rows.append({"track": spec.name, "method": m.name, "status": "error"})
                continue
            y = render(track.dry, Preset(np.asarray(cell["vector"])))
            rows.append({"track": spec.name, "method": m.name, "status": "ok", **scores(y, track.wet)})
            if m.name.startswith("ito"):
                # what `vocalfx match` writes by default (level="reference"): the eval scores the
                # preset's level, the product then sets comp.makeup_db so that the output's
                # loudness equals the reference's as given, a pure output gain (tests/test_steer.py)
                gain_db = integrated_loudness(ref_audio, SR) - integrated_loudness(y, SR)
                rows.append(
                    {
                        "track": spec.name,
                        "method": f"{m.name}+level",
                        "status": "ok",
                        **scores(y * 10 ** (gain_db / 20), track.wet),
                    }
                )
        if not args.no_matchering:
            with tempfile.TemporaryDirectory() as td:
                y = torch.from_numpy(matchering_output(track, Path(td)))
            rows.append({"track": spec.name, "method": "matchering", "status": "ok", **scores(y, track.wet)})
    keys = ["mss_lr", "mldr_lr", "mss_lr_raw", "mldr_lr_raw", "loudness_gain_db"]
    with open(args.out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["track", "method", "status", *keys])
        w.writeheader()
        w.writerows(rows)
    names = [m.name for m in methods] + [f"{m.name}+level" for m in methods if m.name.startswith("ito")]
    names += [] if args.no_matchering else ["matchering"]
    ok_tracks = [t.name for t in corpus.tracks if all(r["status"] == "ok" for r in rows if r["track"] == t.name)]
    lines = [
        f"Out-of-family check: {len(ok_tracks)} tracks, seed {args.seed}, {time.time() - t0:.0f} s "
        f"(including resumed cells); eval cells in {args.out / 'eval'}",
        "",
        "| method | MSS L/R (loudness-matched) | MLDR L/R (matched) | MSS L/R raw | MLDR L/R raw "
        "| wins vs mean (MSS matched) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    by = {(r["track"], r["method"]): r for r in rows}
    for name in names:
        vals = {k: np.mean([by[(t, name)][k] for t in ok_tracks]) for k in keys}
        wins = (
            sum(by[(t, name)]["mss_lr"] < by[(t, "mean")]["mss_lr"] for t in ok_tracks) if "mean" in names else math.nan
        )
        lines.append(
            f"| {name} | {vals['mss_lr']:.3f} | {vals['mldr_lr']:.3f} | {vals['mss_lr_raw']:.3f} | "
            f"{vals['mldr_lr_raw']:.3f} | {wins}/{len(ok_tracks)} |"
        )
    lines += [
        "",
        "Per track, MSS L/R loudness-matched:",
        "",
        "| track | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for t in ok_tracks:
        lines.append(f"| {t} | " + " | ".join(f"{by[(t, n)]['mss_lr']:.3f}" for n in names) + " |")
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "summary.md", text)
    print(text)
    if res.failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
