#!/usr/bin/env python
"""Fine-tune the fx encoder's preset head with an audio loss through ``VocalChain``.

    python scripts/tune_fx_head_audio.py --data build/fx-train --weights vocalfx/embed/weights/fx-v1.pt \
        --run build/fx-head-audio --max-minutes 45 --export vocalfx/embed/weights/fx-v2.pt

Why: a squared error over the 130 whitened coordinates mostly rewards predicting the prior mean
(most coordinates barely change the sound; ``docs/fx-encoder.md``). Here the head is trained on
what the evaluation scores instead (DeepAFx-ST's idea): the dry chunk of a training example is
rendered with the *predicted* preset and with the example's *true* preset, and the loss is the
evaluation's MSS (``vocalfx.metrics.mss``, L/R, per example, through ``log1p`` so that a nearly
silent target cannot dominate a batch) between the two, plus ``--lambda-z`` times the
squared whitened error as a weak anchor for the coordinates the audio cannot see.

Only the head (the MLP on pooled features) is trained; the trunk and the embeddings are frozen,
so the ``fx`` embedding, and ITO with it, are unchanged. The head inputs of every chain-rendered
example are computed once from the full 11 s features (as ``train_fx_encoder.py``'s head refit
does); each step renders a random ``--crop-seconds`` excerpt of the examples' dry chunks. The
pedalboard examples have no true preset and are not used. MedleyDB presets are never read.

Seeded (``--seed``), resumable (``RUN/ckpt.pt``), logged (``RUN/train.log``,
``RUN/metrics.jsonl``); the head state with the lowest validation MSS (fixed excerpts of
validation blocks: sources and presets never trained on) is kept and exported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from train_fx_encoder import MAX_FRAMES, Data, export, git_commit, head_inputs, make_batch  # noqa: E402

from vocalfx.embed.fx import Z_MAX, FxEncoder  # noqa: E402
from vocalfx.fx.chain import VocalChain  # noqa: E402
from vocalfx.metrics import mss  # noqa: E402

SR = 44100


@torch.no_grad()
def cache(net, data: Data, split: str, seed: int) -> dict:
    """Head inputs (with the dry, and without), true whitened vectors and the rendered chunk of
    every chain-rendered example of ``split``."""
    rng = np.random.default_rng([seed, 5, 0 if split == "train" else 1])
    net.eval()
    parts = {k: [] for k in ("x_dry", "x_nodry", "z", "chunk")}
    for blk in data.blocks[split]:
        feats, levels, zs, labels, ds, dl, has = make_batch(data, [blk], rng, MAX_FRAMES, 0.0)
        ok = torch.isfinite(zs).all(1)
        if not bool(ok.any()):
            continue
        E, C = blk["feats"].shape[:2]
        chunk = blk["chunk_ids"].repeat(E)  # make_batch's order: effect-major, then content
        pooled, rmm = net.pool(feats[ok]), feats[ok][:, 0].mean(-1)
        n = int(ok.sum())
        for key, flag in (("x_dry", True), ("x_nodry", False)):
            has_t = torch.full((n,), flag)
            parts[key].append(head_inputs(net, pooled, rmm, levels[ok], ds[ok], dl[ok], has_t))
        parts["z"].append(zs[ok])
        parts["chunk"].append(chunk[ok])
    return {k: torch.cat(v) for k, v in parts.items()}


def predict_z(head, x):
    return Z_MAX * torch.tanh(head(x) / Z_MAX)


def crops(chunks, ids, starts, length):
    return torch.from_numpy(np.stack([chunks[int(i), s : s + length] for i, s in zip(ids, starts)]).astype(np.float32))[
        :, None
    ]


def per_item_mss(pred, target):
    return torch.stack([mss(pred[i : i + 1], target[i : i + 1]) for i in range(pred.shape[0])])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / "build" / "fx-train")
    ap.add_argument("--weights", type=Path, default=ROOT / "vocalfx" / "embed" / "weights" / "fx-v1.pt")
    ap.add_argument("--run", type=Path, default=ROOT / "build" / "fx-head-audio")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--crop-seconds", type=float, default=3.0)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--lambda-z", type=float, default=0.05)
    ap.add_argument("--p-no-dry", type=float, default=0.2)
    ap.add_argument("--val-items", type=int, default=96)
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100000)
    ap.add_argument("--max-minutes", type=float, default=45.0, help="wall-time budget over all sessions of the run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--export", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.run.mkdir(parents=True, exist_ok=True)
    logf = open(args.run / "train.log", "a")

    def log(msg):
        line = time.strftime("%Y-%m-%d %H:%M:%S ") + msg
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    enc = FxEncoder(weights=args.weights)
    net = enc.net
    for p in net.parameters():
        p.requires_grad_(False)
    head = net.head
    for p in head.parameters():
        p.requires_grad_(True)
    mean, chol = enc.prior_mean, enc.prior_chol
    chain = VocalChain(SR)
    for p in chain.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(head.parameters(), lr=args.lr, weight_decay=args.weight_decay)

    data = Data(args.data)
    data.refresh()
    t0 = time.time()
    tr, va = cache(net, data, "train", args.seed), cache(net, data, "val", args.seed)
    log(f"cached head inputs: {len(tr['z'])} train / {len(va['z'])} val chain examples ({time.time() - t0:.0f} s)")
    chunks = np.load(args.data / "chunks.npy", mmap_mode="r")
    length = int(args.crop_seconds * SR)
    max_start = chunks.shape[1] - length

    # fixed validation excerpts, and the two baselines on them: the prior mean and the start head
    vrng = np.random.default_rng([args.seed, 9])
    vi = torch.from_numpy(vrng.choice(len(va["z"]), size=min(args.val_items, len(va["z"])), replace=False))
    v_starts = vrng.integers(0, max_start, size=len(vi))
    with torch.no_grad():
        v_dry = crops(chunks, va["chunk"][vi], v_starts, length)
        v_target = chain(v_dry, mean + va["z"][vi] @ chol.T)
        base_mean = float(per_item_mss(chain(v_dry, mean.expand(len(vi), -1)), v_target).mean())

    def validate() -> float:
        with torch.no_grad():
            z = predict_z(head, va["x_dry"][vi])
            return float(per_item_mss(chain(v_dry, mean + z @ chol.T), v_target).mean())

    step, best, best_state, elapsed_before = 0, float("inf"), None, 0.0
    rng = np.random.default_rng([args.seed, 1])
    ckpt = args.run / "ckpt.pt"
    if ckpt.exists():
        st = torch.load(ckpt, weights_only=False)
        head.load_state_dict(st["head"])
        opt.load_state_dict(st["opt"])
        step, best, best_state, elapsed_before = st["step"], st["best"], st["best_state"], st["elapsed_s"]
        rng.bit_generator.state = st["rng"]
        log(f"resumed from {ckpt} at step {step} (best val MSS {best:.4f})")
    else:
        log("start: " + " ".join(sys.argv))
        v = validate()
        best, best_state = v, {k: t.clone() for k, t in head.state_dict().items()}
        log(
            f"val step 0: MSS {v:.4f} (start head); prior mean {base_mean:.4f} on {len(vi)} excerpts of {args.crop_seconds} s"
        )
    metrics_f = open(args.run / "metrics.jsonl", "a")
    t_start = time.time()

    def save_ckpt():
        tmp = args.run / "ckpt.tmp"
        torch.save(
            dict(
                head=head.state_dict(),
                opt=opt.state_dict(),
                step=step,
                best=best,
                best_state=best_state,
                rng=rng.bit_generator.state,
                elapsed_s=elapsed_before + time.time() - t_start,
            ),
            tmp,
        )
        os.replace(tmp, ckpt)

    acc, n_acc = np.zeros(2), 0
    while step < args.steps:
        if elapsed_before + time.time() - t_start > 60 * args.max_minutes:
            log(f"time budget of {args.max_minutes} min reached at step {step}")
            break
        idx = torch.from_numpy(rng.choice(len(tr["z"]), size=args.batch, replace=False))
        no_dry = torch.from_numpy(rng.random(args.batch) < args.p_no_dry)
        x = torch.where(no_dry[:, None], tr["x_nodry"][idx], tr["x_dry"][idx])
        dry = crops(chunks, tr["chunk"][idx], rng.integers(0, max_start, size=args.batch), length)
        z_true = tr["z"][idx]
        with torch.no_grad():
            target = chain(dry, mean + z_true @ chol.T)
        z = predict_z(head, x)
        # per-example MSS, compressed by log1p: a target made nearly silent by its preset has a
        # tiny norm, and its spectral-convergence term (a ratio to that norm) would otherwise
        # dominate the batch (a first run's loss reached 48 in its first 25 steps)
        m_items = per_item_mss(chain(dry, mean + z @ chol.T), target)
        l_audio = torch.log1p(m_items).mean()
        l_z = ((z - z_true.clamp(-Z_MAX, Z_MAX)) ** 2).mean()
        loss = l_audio + args.lambda_z * l_z
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        opt.step()
        step += 1
        acc += (l_audio.item(), l_z.item())
        n_acc += 1
        if step % 25 == 0:
            el = elapsed_before + time.time() - t_start
            log(f"step {step} log1p(mss) {acc[0] / n_acc:.4f} z_mse {acc[1] / n_acc:.4f} ({el / 60:.1f} min)")
            metrics_f.write(json.dumps(dict(step=step, split="train", mss=acc[0] / n_acc, z_mse=acc[1] / n_acc)) + "\n")
            acc, n_acc = np.zeros(2), 0
        if step % args.val_every == 0:
            v = validate()
            if v < best:
                best, best_state = v, {k: t.clone() for k, t in head.state_dict().items()}
            log(f"val step {step}: MSS {v:.4f} (best {best:.4f}; prior mean {base_mean:.4f})")
            metrics_f.write(json.dumps(dict(step=step, split="val", mss=v, best=best, mean_preset=base_mean)) + "\n")
            metrics_f.flush()
            save_ckpt()
    save_ckpt()
    head.load_state_dict(best_state)
    if args.export is not None:
        src = torch.load(args.weights, map_location="cpu", weights_only=True).get("provenance", {})
        man = args.data / "manifest.json"
        prov = dict(
            script="scripts/tune_fx_head_audio.py",
            command="python scripts/tune_fx_head_audio.py " + " ".join(sys.argv[1:]),
            commit=git_commit(),
            seed=args.seed,
            steps=step,
            start_weights=str(args.weights.name),
            start_provenance=src,
            data_manifest_sha256=hashlib.sha256(man.read_bytes()).hexdigest() if man.exists() else None,
            head_audio=dict(
                val_mss_best=round(best, 4),
                val_mss_prior_mean=round(base_mean, 4),
                val_items=len(vi),
                crop_seconds=args.crop_seconds,
                train_examples=len(tr["z"]),
            ),
            torch=str(torch.__version__),
        )
        export(enc, args.export, prov)
        log(f"exported {args.export} ({args.export.stat().st_size / 1e6:.2f} MB): {json.dumps(prov)[:400]}")


if __name__ == "__main__":
    main()
