#!/usr/bin/env python
"""Make the ``fx`` encoder hear through lossy codecs: codec-invariance by self-distillation.

Why: measured on the dev corpus (docs/guide/encoders.md), MP3 at 64 kbps moves the v1 encoder's
embedding of a reference by 30-70 degrees, as far as a different preset does, so ITO chases the
codec. Cutting both sides at the codec's cut-off removed only a third of that: the damage is in the
band the codec keeps (quantisation holes, joint stereo, pre-echo), not only above it.

What: the v1 network is the *teacher* (frozen) and a copy of it the *student*. For each training
pair, a dry chunk is rendered with a random effect (a prior sample, a perturbed training preset of
the internal collection, or a random pedalboard board, as ``build_training_set.py`` draws them),
and the render goes through MP3 at a random bit rate (LAME via pedalboard, re-aligned). The student
learns to give, from the *lossy* render, what the teacher gives from the *lossless* one (both
embeddings and the preset head's whitened coordinates), and from the lossless render what the
teacher gives (so nothing is lost on lossless references). Only the trained layers change; the
front end (log-mel, level-free features) is the same. Effects come from the prior and the
internal collection's ``train_index`` rows only; the MedleyDB collection and the dev-corpus
vocals are never read (the dry chunks are ``build_training_set.py``'s, pool A and TTS voices).

Two resumable stages, seeded (``--seed``) and logged (``OUT/log.txt``):

``pairs``  ``OUT/pairs/NNNN.pt`` shards of 50 pairs: level-free features (float16) of the lossless
    and the lossy render, their levels, the dry chunk the head sees (another chunk of the same
    source, or none with p = 0.3), the effect and the bit rate. Sources marked ``val`` by the
    builder give the validation pairs (every 10th shard).
``train``  AdamW on the student, cosine schedule, checkpoint every 100 steps (``OUT/state.pt``),
    validation every 100 steps; the step with the best validation score is exported
    (``--export``) in the weights format of ``vocalfx.encoders.trained`` with its provenance.

    python scripts/build_training_set.py --stage sources ... && ... --stage chunks   (the dry chunks)
    python scripts/tune_fx_codec.py --data build/fx-train --out build/fx-codec --pairs 2000 \\
        --steps 1500 --seed 0 --export vocalfx/encoders/weights/fx-v2.pt
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]

SHARD = 50
KBPS = (64, 64, 80, 96, 128, 160)  # 64 kbps twice: the hardest case is the one references come in


def log(out: Path, msg: str) -> None:
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(out / "log.txt", "a") as f:
        f.write(line + "\n")


def atomic_save(obj, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------- pairs
def stage_pairs(a, out: Path) -> None:
    import build_training_set as B

    from vocalfx import VocalChain
    from vocalfx.encoders.trained import FxEncoder
    from vocalfx.params import from_diffvox
    from vocalfx.prior import GaussianPrior

    table = json.loads((a.data / "chunks.json").read_text())
    chunks = np.load(a.data / "chunks.npy", mmap_mode="r")
    prior = GaussianPrior.default()
    mean, L = prior.mean, torch.linalg.cholesky(prior.cov)
    internal_dir = a.shared / "diffvox-presets" / "internal"
    raw_all = np.load(internal_dir / "raw_params.npy")
    train_rows = np.load(internal_dir / "train_index.npy")
    internal_z = torch.linalg.solve_triangular(
        L, (torch.from_numpy(from_diffvox(raw_all[train_rows])) - mean).T, upper=False
    ).T
    by_split = {"train": {}, "val": {}}
    for i, c in enumerate(table):
        by_split[c["split"]].setdefault(c["source"], []).append(i)
    chain = VocalChain(B.SR)
    front = FxEncoder(weights=None)  # the front end only (features are not learned)
    pdir = out / "pairs"
    pdir.mkdir(parents=True, exist_ok=True)
    n_shards = math.ceil(a.pairs / SHARD)
    worker, n_workers = (int(v) for v in a.worker.split("/"))
    for s in range(n_shards):
        path = pdir / f"{s:04d}.pt"
        if path.exists() or s % n_workers != worker:
            continue
        t0 = time.time()
        split = "val" if s % 10 == 0 else "train"
        sources = sorted(by_split[split])
        rng = np.random.default_rng([a.seed, 3000, s])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        recs = {k: [] for k in ("fl", "fc", "ll", "lc", "dry", "kbps", "effect")}
        for _ in range(SHARD):
            src = sources[int(rng.integers(len(sources)))]
            ids = by_split[split][src]
            ci = int(rng.choice(ids))
            others = [j for j in ids if j != ci]
            dry_id = int(rng.choice(others)) if others and rng.random() > 0.3 else -1
            x = torch.from_numpy(np.asarray(chunks[ci], dtype=np.float32))[None, None]
            r = rng.random()
            if r < 0.75:
                if r < 0.4:
                    z = torch.randn(130, generator=gen, dtype=torch.float64) * float(rng.uniform(0.6, 1.2))
                    eff = "prior"
                else:
                    row = int(rng.integers(len(internal_z)))
                    z = internal_z[row] + 0.3 * torch.randn(130, generator=gen, dtype=torch.float64)
                    eff = f"internal:{int(train_rows[row])}"
                with torch.no_grad():
                    y = chain(x, (mean + L @ z).float()[None])[0].double().numpy()
            else:
                apply, _ = B.random_board(rng)
                y = apply(x[0, 0].numpy()).astype(np.float64)
                eff = "pedalboard"
            if not np.all(np.isfinite(y)) or not np.max(np.abs(y)) > 0:
                continue
            kbps = int(rng.choice(KBPS))
            yc = B.mp3_roundtrip(y, kbps)
            both = torch.from_numpy(np.stack([y, yc]).astype(np.float32))
            with torch.no_grad():
                f, lv = front.features(both)
            recs["fl"].append(f[0].half())
            recs["fc"].append(f[1].half())
            recs["ll"].append(float(lv[0]))
            recs["lc"].append(float(lv[1]))
            recs["dry"].append(dry_id)
            recs["kbps"].append(kbps)
            recs["effect"].append(eff)
        rec = {
            k: (torch.stack(v) if k in ("fl", "fc") else torch.tensor(v) if k in ("ll", "lc", "dry", "kbps") else v)
            for k, v in recs.items()
        }
        rec["split"] = split
        atomic_save(rec, path)
        log(out, f"pairs: shard {s + 1}/{n_shards} ({split}, {len(recs['dry'])} pairs, {time.time() - t0:.1f} s)")


# ------------------------------------------------------------------------------------- train
def outputs(net, feats, level_db, dry_stats, dry_db):
    pooled = net.pool(feats)
    mid, side = net.embed(pooled)
    z = net.head_z(pooled, feats[:, 0].mean(-1), level_db, dry_stats, dry_db)
    return F.normalize(mid, dim=-1), F.normalize(side, dim=-1), z


def load_pairs(out: Path, data: Path):
    shards = sorted((out / "pairs").glob("*.pt"))
    if not shards:
        raise SystemExit(f"no pairs in {out / 'pairs'}: run --stage pairs first")
    recs = [torch.load(p, weights_only=False) for p in shards]
    dry = torch.load(data / "dry_feats.pt", weights_only=True)
    d_feats = dry["feats"].float()  # (chunks, 64, frames): the mid of the mono dry
    d_stats = torch.cat([d_feats.mean(-1), torch.sqrt(d_feats.var(-1, unbiased=False) + 1e-5)], -1)
    sets = {}
    for split in ("train", "val"):
        rs = [r for r in recs if r["split"] == split]
        sets[split] = dict(
            fl=torch.cat([r["fl"] for r in rs]),
            fc=torch.cat([r["fc"] for r in rs]),
            ll=torch.cat([r["ll"] for r in rs]).float(),
            lc=torch.cat([r["lc"] for r in rs]).float(),
            dry=torch.cat([r["dry"] for r in rs]),
            kbps=torch.cat([r["kbps"] for r in rs]),
        )
    return sets, d_stats, dry["level_db"].float()


def dry_inputs(idx, d_stats, d_level):
    has = idx >= 0
    st = d_stats[idx.clamp_min(0)] * has[:, None]
    lv = d_level[idx.clamp_min(0)] * has
    return st, lv, has


def head_z(net, feats, level_db, dry_stats, dry_db, has):
    """``head_z`` for a batch where some rows have no dry (those rows take the no-dry path)."""
    z_with = outputs(net, feats, level_db, dry_stats, dry_db)
    if has.all():
        return z_with
    mid, side, z = z_with
    z_none = net.head_z(net.pool(feats), feats[:, 0].mean(-1), level_db, None, None)
    return mid, side, torch.where(has[:, None], z, z_none)


def angle_deg(a, b):
    return torch.rad2deg(torch.arccos((a * b).sum(-1).clamp(-1, 1)))


def teacher_targets(teacher, s, d_stats, d_level, batch=64):
    out = {"mid": [], "side": [], "z": []}
    with torch.no_grad():
        for i in range(0, len(s["ll"]), batch):
            sl = slice(i, i + batch)
            st, lv, has = dry_inputs(s["dry"][sl], d_stats, d_level)
            m, sd, z = head_z(teacher, s["fl"][sl].float(), s["ll"][sl], st, lv, has)
            out["mid"].append(m)
            out["side"].append(sd)
            out["z"].append(z)
    return {k: torch.cat(v) for k, v in out.items()}


def evaluate(net, s, tgt, d_stats, d_level, batch=64):
    res = {"codec_deg": [], "lossless_deg": [], "codec_z": [], "lossless_z": [], "codec64_deg": []}
    with torch.no_grad():
        for i in range(0, len(s["ll"]), batch):
            sl = slice(i, i + batch)
            st, lv, has = dry_inputs(s["dry"][sl], d_stats, d_level)
            for key, f, level in (("codec", s["fc"], s["lc"]), ("lossless", s["fl"], s["ll"])):
                m, sd, z = head_z(net, f[sl].float(), level[sl], st, lv, has)
                ang = (angle_deg(m, tgt["mid"][sl]) + angle_deg(sd, tgt["side"][sl])) / 2
                res[f"{key}_deg"].append(ang)
                res[f"{key}_z"].append(((z - tgt["z"][sl]) ** 2).mean(-1))
                if key == "codec":
                    res["codec64_deg"].append(ang[s["kbps"][sl] == 64])
    return {k: float(torch.cat(v).mean()) for k, v in res.items()}


def stage_train(a, out: Path) -> None:
    from vocalfx.encoders.trained import WEIGHTS_FORMAT, WEIGHTS_FORMAT_VERSION, FxEncoder, load_fx_weights

    torch.manual_seed(a.seed)  # a script, not the library: the seed is this run's
    sets, d_stats, d_level = load_pairs(out, a.data)
    teacher_file = load_fx_weights(a.weights)
    teacher = FxEncoder(weights=a.weights).net.eval()
    student = copy.deepcopy(teacher).train().requires_grad_(True)
    tr, va = sets["train"], sets["val"]
    log(out, f"train: {len(tr['ll'])} train pairs, {len(va['ll'])} val pairs; teacher {a.weights}")
    tgt_tr = teacher_targets(teacher, tr, d_stats, d_level)
    tgt_va = teacher_targets(teacher, va, d_stats, d_level)
    opt = torch.optim.AdamW(student.parameters(), lr=a.lr, weight_decay=1e-4)
    state_path = out / "state.pt"
    step, best, history = 0, None, []
    if state_path.exists():
        st = torch.load(state_path, weights_only=False)
        student.load_state_dict(st["student"])
        opt.load_state_dict(st["opt"])
        step, best, history = st["step"], st["best"], st["history"]
        log(out, f"train: resumed at step {step}")
    else:
        v0 = evaluate(teacher, va, tgt_va, d_stats, d_level)
        history.append({"step": 0, **v0})
        log(out, f"val step 0 (teacher): {json.dumps({k: round(v, 4) for k, v in v0.items()})}")
    gen = torch.Generator().manual_seed(a.seed + step)
    t_start = time.time()
    n = len(tr["ll"])
    while step < a.steps and (time.time() - t_start) / 60 < a.max_minutes:
        lr = a.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / a.steps))) * min(1.0, (step + 1) / 50)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.randint(n, (a.batch,), generator=gen)
        st, lv, has = dry_inputs(tr["dry"][idx], d_stats, d_level)
        loss = 0.0
        for f, level, w in ((tr["fc"], tr["lc"], 1.0), (tr["fl"], tr["ll"], a.lossless_weight)):
            m, sd, z = head_z(student, f[idx].float(), level[idx], st, lv, has)
            emb = (2 - (m * tgt_tr["mid"][idx]).sum(-1) - (sd * tgt_tr["side"][idx]).sum(-1)).mean()
            zl = ((z - tgt_tr["z"][idx]) ** 2).mean()
            loss = loss + w * (emb + a.z_weight * zl)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        step += 1
        if step % 100 == 0 or step == a.steps:
            student.eval()
            v = evaluate(student, va, tgt_va, d_stats, d_level)
            student.train()
            score = v["codec_deg"] + v["lossless_deg"]
            history.append({"step": step, "loss": float(loss.detach()), **v})
            if best is None or score < best["score"]:
                best = {"step": step, "score": score, "state": copy.deepcopy(student.state_dict()), **v}
            log(
                out,
                f"step {step} lr {lr:.2e} loss {float(loss.detach()):.4f} "
                f"val {json.dumps({k: round(x, 4) for k, x in v.items()})}",
            )
            atomic_save(
                {
                    "student": student.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "best": best,
                    "history": history,
                },
                state_path,
            )
    if a.export and best is not None:
        prov = {
            "made_by": "scripts/tune_fx_codec.py (self-distillation for codec invariance)",
            "teacher": str(Path(a.weights).name),
            "teacher_sha256": hashlib.sha256(Path(a.weights).read_bytes()).hexdigest(),
            "teacher_provenance": teacher_file.get("provenance", {}),
            "command": " ".join(sys.argv),
            "seed": a.seed,
            "steps_run": step,
            "best_step": best["step"],
            "pairs": {"train": int(len(tr["ll"])), "val": int(len(va["ll"])), "kbps": list(KBPS)},
            "val_at_export": {
                k: best[k] for k in ("codec_deg", "lossless_deg", "codec_z", "lossless_z", "codec64_deg")
            },
            "val_teacher": history[0],
        }
        data = {
            "format": WEIGHTS_FORMAT,
            "format_version": WEIGHTS_FORMAT_VERSION,
            "config": teacher_file["config"],
            "state_dict": {k: v.detach().clone().float() for k, v in best["state"].items()},
            "prior_mean": teacher_file["prior_mean"],
            "prior_chol": teacher_file["prior_chol"],
            "provenance": prov,
        }
        Path(a.export).parent.mkdir(parents=True, exist_ok=True)
        atomic_save(data, Path(a.export))
        log(out, f"exported step {best['step']} to {a.export} ({Path(a.export).stat().st_size / 1e6:.2f} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data", type=Path, default=ROOT / "build" / "fx-train", help="build_training_set.py's output (chunks)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "fx-codec")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--stage", choices=("all", "pairs", "train"), default="all")
    ap.add_argument("--pairs", type=int, default=2000, help="pairs to render (default 2000)")
    ap.add_argument(
        "--weights", type=Path, default=ROOT / "vocalfx" / "encoders" / "weights" / "fx-v1.pt", help="the teacher"
    )
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--max-minutes", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--z-weight", type=float, default=1.0, help="weight of the head's whitened-coordinate error")
    ap.add_argument("--lossless-weight", type=float, default=1.0, help="weight of the lossless (keep) term")
    ap.add_argument(
        "--worker", default="0/1", help="I/N: render only the shards s with s %% N == I (parallel processes)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--export", default=None, help="write the best student here (weights format of vocalfx.encoders.trained)"
    )
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.stage in ("all", "pairs"):
        stage_pairs(a, a.out)
    if a.stage in ("all", "train"):
        stage_train(a, a.out)


if __name__ == "__main__":
    main()
