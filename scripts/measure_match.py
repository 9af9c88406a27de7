"""Convergence of `vocalfx.match`: loss and evaluation metrics against optimiser steps.

On tracks of the dev corpus (../shared/corpus/dev, DiffVox's protocol: the wet track is the
-18 LUFS dry rendered through its MedleyDB preset; the reference is the wet's even 11 s chunks,
the input the dry's odd ones), run `vocalfx.match` for each learning rate and record, every
`--every` steps, the MAP loss and the MSS (L/R) / MLDR (L/R) / PMSE of the whole dry rendered with
the current parameters against the whole wet. Prints one table per learning rate (mean over
tracks) and writes every measurement as JSON lines.

    python scripts/measure_match.py --tracks 0 4 8 12 --lrs 0.02 0.05 0.1 --steps 200 \
        --out docs/data/match_convergence.jsonl

The schedule of each run is the one `match` uses for `--steps` steps (cosine decay to a tenth, or
constant with `--constant-lr`), so a curve's point at step k is not the result of a k-step run;
it shows how far the optimiser has got by then.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import vocalfx  # noqa: E402
from vocalfx import Preset, VocalChain  # noqa: E402
from vocalfx.io import load_audio, loudness_normalize  # noqa: E402
from vocalfx.metrics import mldr, mss, pmse  # noqa: E402
from vocalfx.prior import GaussianPrior  # noqa: E402


def protocol_track(shared: Path, index: int, chain: VocalChain):
    prot = json.loads((shared / "corpus/dev/protocol.json").read_text())
    t = prot["tracks"][index]
    coll = shared / "diffvox-presets/medleydb"
    row = np.load(coll / "raw_params.npy")[t["medleydb_preset"]]
    truth = Preset.from_diffvox(row)
    dry, _ = loudness_normalize(load_audio(shared / "corpus/dev" / t["vocal"]), 44100, -18.0)
    with torch.no_grad():
        wet = chain(dry.unsqueeze(0), params=torch.as_tensor(truth.vector, dtype=torch.float32).unsqueeze(0))[0]
    C = int(prot["chunk_seconds"] * 44100)
    n = dry.shape[-1] // C
    ref = torch.cat([wet[:, i * C : (i + 1) * C] for i in range(0, n, 2)], -1)
    inp = torch.cat([dry[:, i * C : (i + 1) * C] for i in range(1, n, 2)], -1)
    return t["track"], dry, wet, truth, ref, inp


def scores(chain, dry, wet, truth, v) -> dict:
    with torch.no_grad():
        y = chain(dry.unsqueeze(0), params=torch.as_tensor(v, dtype=torch.float32).unsqueeze(0))
        return {
            "mss": float(mss(y, wet.unsqueeze(0))),
            "mldr": float(mldr(y, wet.unsqueeze(0))),
            "pmse": float(pmse(torch.as_tensor(v, dtype=torch.float64)[None], torch.as_tensor(truth.vector)[None])),
        }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    ap.add_argument("--tracks", type=int, nargs="+", default=[0, 4, 8, 12])
    ap.add_argument("--lrs", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--every", type=int, default=20)
    ap.add_argument("--encoder", default="mfcc")
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--constant-lr", action="store_true")
    ap.add_argument(
        "--space", default="raw", choices=("raw", "whitened"), help="where Adam steps (vocalfx.match's space)"
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="JSON lines output (appended)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    shared = Path(a.shared)
    chain = VocalChain(44100)
    prior_mean = GaussianPrior.default().mean.numpy()
    print(
        f"# measure_match: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{a.threads} threads; encoder {a.encoder}, alpha {a.alpha}, {a.steps} steps, "
        f"{'constant' if a.constant_lr else 'cosine'} lr, {a.space} space, tracks {a.tracks}"
    )
    rows = []
    out = open(a.out, "a") if a.out else None
    for ti in a.tracks:
        name, dry, wet, truth, ref, inp = protocol_track(shared, ti, chain)
        base = scores(chain, dry, wet, truth, prior_mean)
        print(f"{name}: prior mean MSS {base['mss']:.4f} MLDR {base['mldr']:.4f} PMSE {base['pmse']:.3f}", flush=True)
        for lr in a.lrs:
            curve = [{"step": 0, **base}]

            def cb(step, v):
                if (step + 1) % a.every == 0:
                    curve.append({"step": step + 1, **scores(chain, dry, wet, truth, v.double().numpy())})

            t0 = time.perf_counter()
            res = vocalfx.match(
                inp,
                ref,
                44100,
                encoder=a.encoder,
                alpha=a.alpha,
                steps=a.steps,
                lr=lr,
                lr_final_ratio=1.0 if a.constant_lr else 0.1,
                space=a.space,
                normalize_reference=False,
                progress=False,
                callback=cb,
            )
            seconds = time.perf_counter() - t0
            final = scores(chain, dry, wet, truth, res.preset.vector)
            losses = {h["step"] + 1: h["loss"] for h in res.history}
            for c in curve:
                c["loss"] = losses.get(c["step"], res.report.initial_loss if c["step"] == 0 else float("nan"))
            rec = {
                "track": name,
                "lr": lr,
                "steps": a.steps,
                "encoder": a.encoder,
                "alpha": a.alpha,
                "constant_lr": a.constant_lr,
                "space": a.space,
                "seconds": seconds,
                "best_step": res.report.best_step,
                "final": final,
                "curve": curve,
            }
            rows.append(rec)
            if out:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            print(
                f"  lr {lr:g}: {seconds:.0f} s (incl. scoring), best step {res.report.best_step}, "
                f"final MSS {final['mss']:.4f} MLDR {final['mldr']:.4f} PMSE {final['pmse']:.3f}",
                flush=True,
            )
    for lr in a.lrs:
        rs = [r for r in rows if r["lr"] == lr]
        print(f"\nlr {lr:g}: mean over {len(rs)} tracks")
        print("step     loss      MSS     MLDR     PMSE")
        for k in range(len(rs[0]["curve"])):
            pts = [r["curve"][k] for r in rs]
            m = {q: float(np.mean([p[q] for p in pts])) for q in ("loss", "mss", "mldr", "pmse")}
            print(f"{pts[0]['step']:4d} {m['loss']:8.3f} {m['mss']:8.4f} {m['mldr']:8.4f} {m['pmse']:8.3f}")
        m = {q: float(np.mean([r["final"][q] for r in rs])) for q in ("mss", "mldr", "pmse")}
        print(f"best {'':8} {m['mss']:8.4f} {m['mldr']:8.4f} {m['pmse']:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
