#!/usr/bin/env python
"""Refit the ``fx`` preset head on presets drawn wider than the prior, with the trunk frozen.

    python scripts/tune_fx_head_wide.py data --data build/fx-train --run build/fx-head-wide --shard 0 --num-shards 2
    python scripts/tune_fx_head_wide.py fit  --run build/fx-head-wide --export build/fx-head-wide/fx-wide.pt

Why: the head was trained on prior samples with ``z ~ N(0, s^2 I)``, ``s`` in [0.6, 1.2], and on
``train_index`` presets moved by 0.3 in whitened coordinates. Presets it has not seen lie further
out: the internal collection's 20 rows outside ``train_index`` have a mean ``z^2`` of 1.37 under
the prior that was fitted without them (a Gaussian fitted to 365 presets in 130 dimensions is too
narrow for new ones), and ``scripts/measure_head_shift.py`` shows that the head's gain over the
prior mean vanishes on presets far from the prior, whatever the voice.

``data``: examples of (reference, dry) pairs, rendered by ``VocalChain`` from the training set's
*train* voices only (``build_training_set.py``'s chunks: pool-A singing with odd seeds and
registry voices; the validation voices are kept for validation). Each example: an 8 s crop of one
chunk rendered with a preset and brought to -18 LUFS, as ``vocalfx.match`` brings its reference,
and another whole chunk of the same voice as the dry. Presets: half prior samples with
``s ~ U(0.6, 2.0)``; half ``train_index`` rows pushed away from the prior mean by ``f ~ U(1, 1.8)``
in whitened coordinates and moved by ``N(0, 0.3^2)``. The MedleyDB collection is never read. The
head's inputs (frozen trunk) are cached in ``RUN/shard-K.pt``, appended every ``--save-every``
examples, so a re-run continues. Validation (``--shard val``): the validation voices with wide prior
samples and with the internal collection's non-train rows as they are.

``fit``: fine-tunes the shipped head (AdamW, ``--epochs``) on the whitened coordinates clipped to
the head's range, and keeps the epoch with the lowest raw-parameter PMSE on the validation
voices with the internal non-train rows (presets no training step saw). ``--export`` writes a
weights file: the shipped file's trunk and embeddings, the new head, and how it was made.
Seeded; ``torch.set_num_threads(--threads)``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 44100
CROP_S = 8.0
FIELDS = ("pooled", "rmm", "ref_db", "ds", "dl", "z", "raw")


def voices(data: Path, split: str):
    table = json.loads((data / "chunks.json").read_text())
    by_source = {}
    for i, c in enumerate(table):
        if c["split"] == split:
            by_source.setdefault(c["source"], []).append(i)
    return {k: v for k, v in sorted(by_source.items()) if len(v) >= 2}


def load_shard(path: Path) -> dict:
    if path.is_file():
        return torch.load(path, weights_only=True)
    return {k: [] for k in FIELDS} | {"n": 0}


def save_shard(path: Path, shard: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(shard, tmp)
    tmp.replace(path)


@torch.no_grad()
def head_inputs_for(enc, chain, ref_chunk: np.ndarray, dry_chunk: np.ndarray, raw: torch.Tensor):
    from vocalfx.embed.fx import _std
    from vocalfx.io import loudness_normalize

    ref = torch.from_numpy(ref_chunk.astype(np.float32))[None, None]
    wet = chain(ref, raw.float()[None])[0]
    if not bool(torch.isfinite(wet).all()):
        return None
    try:
        wet, _ = loudness_normalize(wet, SR, -18.0)
    except ValueError:
        return None
    feats, ref_db = enc.features(wet[None])
    pooled = enc.net.pool(feats)
    d = torch.from_numpy(dry_chunk.astype(np.float32))[None, None].expand(-1, 2, -1)
    dfeats, dl = enc.features(d)
    ds = torch.cat([dfeats[:, 0].mean(-1), _std(dfeats[:, 0])], dim=-1)
    return dict(pooled=pooled[0], rmm=feats[0, 0].mean(-1), ref_db=ref_db[0], ds=ds[0], dl=dl[0])


def make_data(args) -> None:
    from vocalfx.embed import get_encoder
    from vocalfx.fx import VocalChain
    from vocalfx.params import from_diffvox
    from vocalfx.prior import GaussianPrior

    torch.set_num_threads(args.threads)
    chunks = np.load(args.data / "chunks.npy", mmap_mode="r")
    prior = GaussianPrior.default()
    mean = prior.mean.double()
    L = torch.linalg.cholesky(prior.cov.double())
    coll = args.shared / "diffvox-presets" / "internal"
    raw_all = torch.from_numpy(from_diffvox(np.load(coll / "raw_params.npy")))
    train_rows = np.load(coll / "train_index.npy")
    other_rows = np.setdiff1d(np.arange(len(raw_all)), train_rows)
    z_train = torch.linalg.solve_triangular(L, (raw_all[train_rows] - mean).T, upper=False).T
    enc, chain = get_encoder("fx"), VocalChain(SR)
    val = args.shard == "val"
    split = "val" if val else "train"
    by_source = voices(args.data, split)
    names = list(by_source)
    args.run.mkdir(parents=True, exist_ok=True)
    path = args.run / f"shard-{args.shard}.pt"
    shard = load_shard(path)
    total = args.val_examples if val else args.examples
    t0, start = time.time(), shard["n"]
    crop = int(CROP_S * SR)
    for i in range(start, total):
        seed = [args.seed, 7, 99 if val else int(args.shard), i]
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        src = names[int(rng.integers(len(names)))]
        ref_id, dry_id = rng.choice(by_source[src], size=2, replace=False)
        if val and i % 2 == 1:
            raw = raw_all[other_rows[(i // 2) % len(other_rows)]]
            kind = "internal non-train"
        elif rng.random() < 0.5:
            s = float(rng.uniform(0.6, 2.0))
            raw = mean + L @ (s * torch.randn(130, generator=gen, dtype=torch.float64))
            kind = "prior"
        else:
            row = int(rng.integers(len(z_train)))
            f = float(rng.uniform(1.0, 1.8))
            raw = mean + L @ (f * z_train[row] + 0.3 * torch.randn(130, generator=gen, dtype=torch.float64))
            kind = "internal train, pushed"
        t = int(rng.integers(0, chunks.shape[-1] - crop + 1))
        inp = head_inputs_for(enc, chain, np.asarray(chunks[ref_id][t : t + crop]), np.asarray(chunks[dry_id]), raw)
        if inp is None:
            print(f"example {i}: non-finite or silent render, skipped", flush=True)
            shard["n"] = i + 1
            continue
        z = torch.linalg.solve_triangular(L, (raw - mean)[:, None], upper=False)[:, 0]
        for k, v in inp.items():
            shard[k].append(v.float())
        shard["z"].append(z.float())
        shard["raw"].append(raw.float())
        shard.setdefault("kind", []).append(kind)
        shard["n"] = i + 1
        if (i + 1) % args.save_every == 0 or i + 1 == total:
            save_shard(path, shard)
            rate = (i + 1 - start) / (time.time() - t0)
            print(f"shard {args.shard}: {i + 1}/{total} examples, {rate:.2f}/s", flush=True)


def stack(shard: dict) -> dict:
    out = {k: torch.stack(shard[k]) for k in FIELDS}
    out["kind"] = list(shard.get("kind", []))
    return out


def fit(args) -> None:
    from vocalfx.embed import get_encoder
    from vocalfx.embed.fx import DEFAULT_WEIGHTS, WEIGHTS_FORMAT, WEIGHTS_FORMAT_VERSION, load_fx_weights

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    parts = [stack(torch.load(p, weights_only=True)) for p in sorted(args.run.glob("shard-[0-9]*.pt"))]
    tr = {k: torch.cat([p[k] for p in parts]) for k in FIELDS}
    va = stack(torch.load(args.run / "shard-val.pt", weights_only=True))
    enc = get_encoder("fx")
    net = enc.net
    L = enc.prior_chol.double()
    other = torch.tensor([k == "internal non-train" for k in va["kind"]])

    def head_in(d):
        n = d["pooled"].shape[0]
        levels = torch.stack([(d["ref_db"] + 30.0) / 20.0, (d["dl"] + 30.0) / 20.0, torch.ones(n)], -1)
        return torch.cat([d["pooled"], d["ds"], d["rmm"] - d["ds"][:, :64], levels], -1)

    def predict(x):
        return 3.0 * torch.tanh(net.head(x) / 3.0)

    xt, xv = head_in(tr), head_in(va)
    zt = tr["z"].clamp(-3, 3)

    def scores():
        with torch.no_grad():
            zp = predict(xv).double()
            raw_err = (zp - va["z"].double()) @ L.T  # raw = mean + L z
            pm = raw_err.square().mean(1)
            base = (va["z"].double() @ L.T).square().mean(1)
        return dict(
            pmse_other=float(pm[other].mean()),
            pmse_other_mean=float(base[other].mean()),
            pmse_wide=float(pm[~other].mean()),
            pmse_wide_mean=float(base[~other].mean()),
            z_mse=float((zp - va["z"].double().clamp(-3, 3)).square().mean()),
        )

    log_path = args.run / "fit.log"

    def log(msg):
        print(msg, flush=True)
        with open(log_path, "a") as f:
            f.write(msg + "\n")

    log(
        f"fit: {len(zt)} train examples from {len(parts)} shard(s), {len(xv)} validation ({int(other.sum())} internal non-train)"
    )
    s0 = scores()
    log(f"epoch -1 (shipped head): {json.dumps({k: round(v, 4) for k, v in s0.items()})}")
    best, best_state, best_epoch = s0["pmse_other"], {k: v.clone() for k, v in net.head.state_dict().items()}, -1
    net.head.requires_grad_(True)
    opt = torch.optim.AdamW(net.head.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        perm = torch.randperm(len(zt), generator=gen)
        for i in range(0, len(zt), 128):
            idx = perm[i : i + 128]
            loss = (predict(xt[idx]) - zt[idx]).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        s = scores()
        log(f"epoch {epoch}: {json.dumps({k: round(v, 4) for k, v in s.items()})}")
        if s["pmse_other"] < best:
            best, best_epoch = s["pmse_other"], epoch
            best_state = {k: v.clone() for k, v in net.head.state_dict().items()}
    net.head.load_state_dict(best_state)
    log(
        f"kept epoch {best_epoch}: validation PMSE on internal non-train rows {best:.4f} (shipped head {s0['pmse_other']:.4f})"
    )
    if args.export:
        base = load_fx_weights(DEFAULT_WEIGHTS)
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        prov = dict(base.get("provenance", {}))
        prov["head_refit"] = dict(
            script="scripts/tune_fx_head_wide.py",
            command=" ".join(sys.argv),
            commit=commit,
            base_weights=Path(DEFAULT_WEIGHTS).name,
            train_examples=len(zt),
            kept_epoch=best_epoch,
            validation=scores(),
            shipped_head_validation=s0,
        )
        out = dict(
            format=WEIGHTS_FORMAT,
            format_version=WEIGHTS_FORMAT_VERSION,
            config=base["config"],
            state_dict={k: v.detach().clone() for k, v in net.state_dict().items()},
            prior_mean=base["prior_mean"],
            prior_chol=base["prior_chol"],
            provenance=prov,
        )
        args.export.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.export.with_suffix(".tmp")
        torch.save(out, tmp)
        tmp.replace(args.export)
        log(f"wrote {args.export}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data")
    d.add_argument("--data", type=Path, default=ROOT / "build" / "fx-train")
    d.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    d.add_argument("--run", type=Path, default=ROOT / "build" / "fx-head-wide")
    d.add_argument("--shard", default="0", help="a shard number, or 'val' for the validation set")
    d.add_argument("--examples", type=int, default=2000, help="examples per training shard")
    d.add_argument("--val-examples", type=int, default=240)
    d.add_argument("--save-every", type=int, default=50)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--threads", type=int, default=1)
    f = sub.add_parser("fit")
    f.add_argument("--run", type=Path, default=ROOT / "build" / "fx-head-wide")
    f.add_argument("--epochs", type=int, default=40)
    f.add_argument("--lr", type=float, default=3e-4)
    f.add_argument("--weight-decay", type=float, default=1e-2)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--threads", type=int, default=2)
    f.add_argument("--export", type=Path, default=None)
    args = ap.parse_args()
    make_data(args) if args.cmd == "data" else fit(args)


if __name__ == "__main__":
    main()
