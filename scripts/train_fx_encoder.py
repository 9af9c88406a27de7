#!/usr/bin/env python
"""Train the ``fx`` encoder (``vocalfx/encoders/trained.py``) on the set built by build_training_set.py.

    python scripts/train_fx_encoder.py --data build/fx-train --run build/fx-train/run \
        --steps 5000 --export vocalfx/encoders/weights/fx-v1.pt

Objective, per step (``--blocks-per-step`` blocks of 4 effects x 4 contents = 16 wet examples each):

* **contrastive** (supervised InfoNCE, temperature ``--tau``), separately on the L2-normalised mid
  and side embeddings: the positives of an example are the other contents under the same effect;
  every other example of the batch is a negative, including the same content under the block's
  other effects (hard negatives);
* **preset regression**: for the examples rendered by ``VocalChain`` (prior and internal presets,
  with or without MP3), the squared error of the predicted whitened coordinates against the true
  ones clipped to [-3, 3] (the head's range), weighted by ``--lambda-z``. The head is given the dry
  features of *another* chunk of the same source (as the evaluation gives it other chunks of the
  voice), or nothing with probability ``--p-no-dry``.

Each example is a random crop of 128..472 frames (3..11 s; one length per step). Seeded
(``--seed``), resumable (``RUN/ckpt.pt`` every ``--ckpt-every`` steps; a re-run continues), logs to
``RUN/train.log`` and ``RUN/metrics.jsonl``; validation on the validation blocks (sources and
presets never trained on) every ``--val-every`` steps. New blocks written by a still-running build
are picked up at each checkpoint. ``torch.set_num_threads(--threads)``, 1 by default.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from vocalfx.encoders.trained import WEIGHTS_FORMAT, WEIGHTS_FORMAT_VERSION, FxEncoder

ROOT = Path(__file__).resolve().parents[1]

MAX_FRAMES = 472


class Data:
    """All blocks of one split in memory (features float16)."""

    def __init__(self, root: Path):
        self.root = root
        self.table = json.loads((root / "chunks.json").read_text())
        d = torch.load(root / "dry_feats.pt", weights_only=True)
        self.dry_feats, self.dry_level = d["feats"], d["level_db"]
        self.by_source = {}
        for i, c in enumerate(self.table):
            self.by_source.setdefault(c["source"], []).append(i)
        self.loaded = set()
        self.blocks = {"train": [], "val": []}

    def refresh(self) -> int:
        new = 0
        for p in sorted((self.root / "blocks").glob("*.pt")):
            if p.name in self.loaded:
                continue
            try:
                rec = torch.load(p, weights_only=True)
            except Exception:
                continue  # being written
            self.loaded.add(p.name)
            self.blocks[rec["split"]].append(
                dict(
                    feats=rec["feats"],
                    level_db=rec["level_db"],
                    z=rec["z"],
                    chunk_ids=rec["chunk_ids"],
                    types=[e["type"] for e in json.loads(rec["effects"])],
                )
            )
            new += 1
        return new

    def other_chunk(self, cid: int, rng: np.random.Generator) -> int:
        same = self.by_source[self.table[cid]["source"]]
        others = [c for c in same if c != cid]
        return int(rng.choice(others)) if others else cid


def dry_stats(data: Data, ids, t0s, length: int):
    feats = torch.stack([data.dry_feats[i, :, t : t + length] for i, t in zip(ids, t0s)]).float()  # (n, 64, L)
    st = torch.cat([feats.mean(-1), torch.sqrt(feats.var(-1, unbiased=False) + 1e-5)], dim=-1)
    return st, data.dry_level[ids].float()


def make_batch(data: Data, blocks, rng: np.random.Generator, length: int, p_no_dry: float):
    feats, levels, zs, labels, dry_ids = [], [], [], [], []
    for bi, blk in enumerate(blocks):
        E, C = blk["feats"].shape[:2]
        for e in range(E):
            for c in range(C):
                t0 = int(rng.integers(0, MAX_FRAMES - length + 1))
                feats.append(blk["feats"][e, c, :, :, t0 : t0 + length])
                levels.append(blk["level_db"][e, c])
                zs.append(blk["z"][e])
                labels.append(bi * E + e)
                dry_ids.append(data.other_chunk(int(blk["chunk_ids"][c]), rng))
    feats = torch.stack(feats).float()
    n = feats.shape[0]
    t_dry = [int(rng.integers(0, MAX_FRAMES - length + 1)) for _ in range(n)]
    ds, dl = dry_stats(data, dry_ids, t_dry, length)
    has_dry = torch.from_numpy(rng.random(n) >= p_no_dry)
    return feats, torch.stack(levels), torch.stack(zs), torch.tensor(labels), ds, dl, has_dry


def supcon(emb: torch.Tensor, labels: torch.Tensor, tau: float) -> torch.Tensor:
    sim = emb @ emb.T / tau
    n = emb.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    sim = sim.masked_fill(eye, -1e9)
    pos = (labels[:, None] == labels[None, :]) & ~eye
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    return -(logp * pos).sum(1).div(pos.sum(1).clamp(min=1)).mean()


def forward(net, feats, levels, ds, dl, has_dry):
    pooled = net.pool(feats)
    mid, side = net.embed(pooled)
    mid, side = F.normalize(mid, dim=-1), F.normalize(side, dim=-1)
    ref_mid_mean = feats[:, 0].mean(-1)
    z_dry = net.head_z(pooled, ref_mid_mean, levels, ds, dl)
    z_nodry = net.head_z(pooled, ref_mid_mean, levels, None, None)
    z_hat = torch.where(has_dry[:, None], z_dry, z_nodry)
    return mid, side, z_hat


def losses(net, batch, tau, lambda_z):
    feats, levels, zs, labels, ds, dl, has_dry = batch
    mid, side, z_hat = forward(net, feats, levels, ds, dl, has_dry)
    l_c = supcon(mid, labels, tau) + supcon(side, labels, tau)
    ok = torch.isfinite(zs).all(1)
    target = zs[ok].clamp(-3, 3)
    l_z = ((z_hat[ok] - target) ** 2).mean() if bool(ok.any()) else z_hat.sum() * 0
    return l_c + lambda_z * l_z, dict(contrastive=l_c.item(), z_mse=l_z.item())


@torch.no_grad()
def validate(net, data: Data, seed: int, tau: float) -> dict:
    rng = np.random.default_rng([seed, 77])
    blocks = data.blocks["val"]
    if not blocks:
        return {}
    net.eval()
    out = dict(contrastive=[], z_mse=[], z_mse_mean=[], z_mse_nodry=[], top1=[], triplet=[], pos_cos=[], hardneg_cos=[])
    for i in range(0, len(blocks), 4):
        group = blocks[i : i + 4]
        if len(group) < 2:
            continue
        batch = make_batch(data, group, rng, MAX_FRAMES, 0.0)
        feats, levels, zs, labels, ds, dl, has_dry = batch
        mid, side, z_hat = forward(net, feats, levels, ds, dl, has_dry)
        _, _, z_nodry = forward(net, feats, levels, ds, dl, torch.zeros_like(has_dry))
        out["contrastive"].append(float(supcon(mid, labels, tau) + supcon(side, labels, tau)))
        ok = torch.isfinite(zs).all(1)
        if bool(ok.any()):
            t = zs[ok].clamp(-3, 3)
            out["z_mse"].append(float(((z_hat[ok] - t) ** 2).mean()))
            out["z_mse_nodry"].append(float(((z_nodry[ok] - t) ** 2).mean()))
            out["z_mse_mean"].append(float((t**2).mean()))
        emb = torch.cat([mid, side], -1) / math.sqrt(2)
        sim = emb @ emb.T
        sim.fill_diagonal_(-2)
        out["top1"].append(float((labels[sim.argmax(1)] == labels).float().mean()))
        # within each block of 4 effects x 4 contents: same effect / other content vs same content / other effect
        for b in range(len(group)):
            idx = torch.arange(16) + 16 * b
            e_idx, c_idx = idx // 4 % 4, idx % 4
            s = sim[idx][:, idx]
            same_e = (e_idx[:, None] == e_idx[None]) & (c_idx[:, None] != c_idx[None])
            same_c = (c_idx[:, None] == c_idx[None]) & (e_idx[:, None] != e_idx[None])
            out["pos_cos"].append(float(s[same_e].mean()))
            out["hardneg_cos"].append(float(s[same_c].mean()))
            wins = (s[same_e].view(16, 3)[:, :, None] > s[same_c].view(16, 3)[:, None, :]).float().mean()
            out["triplet"].append(float(wins))
    net.train()
    return {k: float(np.mean(v)) for k, v in out.items() if v}


def head_inputs(net, pooled, ref_mid_mean, ref_db, ds, dl, has):
    """The preset head's input vector, assembled exactly as ``FxNet.head_z`` does."""
    n = pooled.shape[0]
    hasf = has.to(pooled.dtype)
    ds = ds * hasf[:, None]
    diff = (ref_mid_mean - ds[:, :64]) * hasf[:, None]
    levels = torch.stack([(ref_db + 30.0) / 20.0, hasf * (dl + 30.0) / 20.0, hasf], -1)
    return torch.cat([pooled, ds, diff, levels], -1).reshape(n, -1)


@torch.no_grad()
def cache_head_data(net, data: Data, split: str, seed: int):
    """Frozen-trunk inputs of the preset head for every chain-rendered example of a split (11 s)."""
    rng = np.random.default_rng([seed, 5, 0 if split == "train" else 1])
    net.eval()
    parts = {k: [] for k in ("pooled", "rmm", "ref_db", "ds", "dl", "z")}
    for blk in data.blocks[split]:
        feats, levels, zs, labels, ds, dl, has = make_batch(data, [blk], rng, MAX_FRAMES, 0.0)
        ok = torch.isfinite(zs).all(1)
        if not bool(ok.any()):
            continue
        parts["pooled"].append(net.pool(feats[ok]))
        parts["rmm"].append(feats[ok][:, 0].mean(-1))
        for k, v in (("ref_db", levels), ("ds", ds), ("dl", dl), ("z", zs)):
            parts[k].append(v[ok])
    net.train()
    return {k: torch.cat(v) for k, v in parts.items()}


def fit_head(net, data: Data, args, log) -> dict:
    """Second phase: refit the preset head alone on frozen-trunk features (inputs standardised, the
    standardisation folded into the first layer afterwards), keeping the epoch with the lowest
    validation squared error of the clipped whitened coordinates."""
    t0 = time.time()
    tr, va = cache_head_data(net, data, "train", args.seed), cache_head_data(net, data, "val", args.seed)
    log(f"head: cached {len(tr['z'])} train / {len(va['z'])} val chain examples ({time.time() - t0:.0f} s)")
    gen = torch.Generator().manual_seed(args.seed + 11)

    def inputs(d, has):
        return head_inputs(net, d["pooled"], d["rmm"], d["ref_db"], d["ds"], d["dl"], has)

    x_all = inputs(tr, torch.ones(len(tr["z"]), dtype=torch.bool))
    mu, sd = x_all.mean(0), x_all.std(0) + 1e-3
    sd[-1] = 1.0  # the has-dry flag: keep it 0/1
    mu[-1] = 0.0
    old = net.head
    head = torch.nn.Sequential(
        *[type(m)(m.in_features, m.out_features) if isinstance(m, torch.nn.Linear) else m for m in old]
    )
    drop = torch.nn.Dropout(args.head_dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=args.head_lr, weight_decay=args.head_weight_decay)
    zt, zv = tr["z"].clamp(-3, 3), va["z"].clamp(-3, 3)

    def predict(d, has, train=False):
        x = (inputs(d, has) - mu) / sd
        h = x
        for m in head:
            h = m(drop(h) if (train and isinstance(m, torch.nn.Linear) and m is not head[0]) else h)
        return 3.0 * torch.tanh(h / 3.0)

    best, best_state, n = float("inf"), None, len(zt)
    for epoch in range(args.head_epochs):
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, 256):
            idx = perm[i : i + 256]
            d = {k: v[idx] for k, v in tr.items()}
            has = torch.rand(len(idx), generator=gen) >= args.p_no_dry
            loss = ((predict(d, has, train=True) - zt[idx]) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            v_dry = float(((predict(va, torch.ones(len(zv), dtype=torch.bool)) - zv) ** 2).mean())
            v_no = float(((predict(va, torch.zeros(len(zv), dtype=torch.bool)) - zv) ** 2).mean())
        if v_dry < best:
            best, best_state = v_dry, ({k: t.clone() for k, t in head.state_dict().items()}, epoch, v_no)
        if epoch % 10 == 0 or epoch == args.head_epochs - 1:
            log(
                f"head: epoch {epoch} val z_mse with dry {v_dry:.4f}, without {v_no:.4f} "
                f"(mean-preset baseline {float((zv**2).mean()):.4f})"
            )
    state, epoch, v_no = best_state
    head.load_state_dict(state)
    # fold the standardisation into the first layer: W (x - mu) / sd + b = (W / sd) x + (b - W mu / sd)
    with torch.no_grad():
        first = head[0]
        w = first.weight / sd
        first.bias.sub_(w @ mu)
        first.weight.copy_(w)
    net.head.load_state_dict(head.state_dict())
    out = dict(
        head_best_epoch=epoch,
        head_val_z_mse_dry=round(best, 4),
        head_val_z_mse_nodry=round(v_no, 4),
        head_val_z_mse_mean_preset=round(float((zv**2).mean()), 4),
    )
    log(f"head: kept epoch {epoch}: {out}")
    return out


def git_commit() -> str:
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()


def export(enc: FxEncoder, path: Path, provenance: dict) -> None:
    state = {k: v.detach().clone().float() for k, v in enc.net.state_dict().items()}
    data = dict(
        format=WEIGHTS_FORMAT,
        format_version=WEIGHTS_FORMAT_VERSION,
        config=enc.net.config,
        state_dict=state,
        prior_mean=enc.prior_mean.clone(),
        prior_chol=enc.prior_chol.clone(),
        provenance=provenance,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(data, tmp)
    os.replace(tmp, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "build" / "fx-train")
    ap.add_argument("--run", type=Path, default=None, help="run folder (default DATA/run)")
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--blocks-per-step", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--tau", type=float, default=0.1)
    ap.add_argument("--lambda-z", type=float, default=1.0)
    ap.add_argument("--p-no-dry", type=float, default=0.3)
    ap.add_argument("--min-frames", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ckpt-every", type=int, default=200)
    ap.add_argument("--val-every", type=int, default=250)
    ap.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="wall-time budget over all sessions of the run: the learning-rate schedule follows steps or time, "
        "whichever is further along, and the run stops (checkpoints, exports) when it is spent",
    )
    ap.add_argument(
        "--head-epochs",
        type=int,
        default=0,
        help="after the main loop, refit the preset head alone for this many epochs (0: no)",
    )
    ap.add_argument("--head-lr", type=float, default=1e-3)
    ap.add_argument("--head-weight-decay", type=float, default=1e-2)
    ap.add_argument("--head-dropout", type=float, default=0.1)
    ap.add_argument("--export", type=Path, default=None, help="write the weights file here at the end")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    run = args.run or args.data / "run"
    run.mkdir(parents=True, exist_ok=True)
    logf = open(run / "train.log", "a")

    def log(msg):
        line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    torch.manual_seed(args.seed)
    enc = FxEncoder(weights=None, trainable=True)
    net = enc.net
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    warm = 200

    def progress(step):
        """Fraction of the run done: by steps, or by wall time under --max-minutes, whichever is further."""
        p = step / args.steps
        if args.max_minutes is not None:
            p = max(p, (elapsed_before + time.time() - t_start) / (60 * args.max_minutes))
        return min(1.0, p)

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress(step))))

    step, rng_state, elapsed_before = 0, None, 0.0
    t_start = time.time()
    ckpt = run / "ckpt.pt"
    if ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        net.load_state_dict(st["net"])
        opt.load_state_dict(st["opt"])
        step, rng_state, elapsed_before = st["step"], st["rng"], st.get("elapsed_s", 0.0)
        torch.set_rng_state(st["torch_rng"])
        log(f"resumed from {ckpt} at step {step}")
    else:
        log("start: " + " ".join(sys.argv))
    rng = np.random.default_rng([args.seed, 1])
    if rng_state is not None:
        rng.bit_generator.state = rng_state
    data = Data(args.data)
    n_new = data.refresh()
    log(f"data: {len(data.blocks['train'])} train blocks, {len(data.blocks['val'])} val blocks ({n_new} loaded)")
    metrics_f = open(run / "metrics.jsonl", "a")
    t_start = time.time()
    acc, n_acc = {}, 0
    net.train()

    def save_ckpt():
        tmp = run / "ckpt.tmp"
        torch.save(
            dict(
                net=net.state_dict(),
                opt=opt.state_dict(),
                step=step,
                rng=rng.bit_generator.state,
                torch_rng=torch.get_rng_state(),
                elapsed_s=elapsed_before + time.time() - t_start,
                args={k: str(v) for k, v in vars(args).items()},
            ),
            tmp,
        )
        os.replace(tmp, ckpt)

    stop = False
    while step < args.steps and not stop:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        train = data.blocks["train"]
        pick = rng.choice(len(train), size=args.blocks_per_step, replace=False)
        length = int(rng.integers(args.min_frames, MAX_FRAMES + 1))
        batch = make_batch(data, [train[i] for i in pick], rng, length, args.p_no_dry)
        loss, parts = losses(net, batch, args.tau, args.lambda_z)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        step += 1
        for k, v in parts.items():
            acc[k] = acc.get(k, 0.0) + v
        n_acc += 1
        if step % 50 == 0:
            el = time.time() - t_start
            log(
                f"step {step} lr {lr_at(step):.2e} "
                + " ".join(f"{k} {v / n_acc:.4f}" for k, v in acc.items())
                + f" ({el / 60:.1f} min this session)"
            )
            metrics_f.write(json.dumps(dict(step=step, split="train", **{k: v / n_acc for k, v in acc.items()})) + "\n")
            metrics_f.flush()
            acc, n_acc = {}, 0
        if args.max_minutes is not None and progress(step) >= 1.0 and step < args.steps:
            log(f"time budget of {args.max_minutes} min reached at step {step}")
            stop = True
        if step % args.val_every == 0 or step == args.steps or stop:
            v = validate(net, data, args.seed, args.tau)
            log(f"val step {step} " + " ".join(f"{k} {x:.4f}" for k, x in v.items()))
            metrics_f.write(json.dumps(dict(step=step, split="val", **v)) + "\n")
            metrics_f.flush()
        if step % args.ckpt_every == 0 or step == args.steps or stop:
            save_ckpt()
            n_new = data.refresh()
            if n_new:
                log(f"data: +{n_new} blocks -> {len(data.blocks['train'])} train, {len(data.blocks['val'])} val")
    head_info = {}
    if args.head_epochs > 0:
        head_info = fit_head(net, data, args, log)
    if args.export is not None:
        v = validate(net, data, args.seed, args.tau)
        man = args.data / "manifest.json"
        prov = dict(
            script="scripts/train_fx_encoder.py",
            command="python scripts/train_fx_encoder.py " + " ".join(sys.argv[1:]),
            commit=git_commit(),
            seed=args.seed,
            steps=step,
            data_blocks=dict(train=len(data.blocks["train"]), val=len(data.blocks["val"])),
            data_manifest_sha256=hashlib.sha256(man.read_bytes()).hexdigest() if man.exists() else None,
            validation={k: round(x, 4) for k, x in v.items()},
            head=head_info,
            torch=str(torch.__version__),
        )
        export(enc, args.export, prov)
        log(f"exported {args.export} ({args.export.stat().st_size / 1e6:.2f} MB): {json.dumps(prov)}")


if __name__ == "__main__":
    main()
