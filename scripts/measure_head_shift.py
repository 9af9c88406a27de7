#!/usr/bin/env python
"""Where the ``fx`` head's preset prediction helps, and where it stops helping.

    python scripts/measure_head_shift.py --data build/fx-train --shared ../shared [--per 3] [--out build/head-shift]

Nothing here is fitted or trained: the script renders references with ``VocalChain``, asks the
head for a preset as ``vocalfx.match(init="predicted")`` does (:func:`vocalfx.matching.start.predicted_start`:
the reference chunks at -18 LUFS laid end to end, the dry chunks beside them) and scores the
prediction against the preset that made the reference, with DiffVox's PMSE (mean squared
difference of the 130 raw values). Three measurements:

1. **Collections under the prior.** For the internal collection's training rows (``train_index``,
   the ones the prior was fitted to), its other 20 rows, and the MedleyDB rows of the dev protocol:
   the mean squared whitened coordinate ``z^2`` under the shipped prior (1 for presets drawn from
   it), the share of coordinates with ``|z| > 3`` (outside the head's range) and the PMSE of the
   prior mean, split per module into squared bias and spread across the collection.
2. **A start between the prediction and the prior mean**, ``mean + w (prediction - mean)``, on
   held-out tracks of the training distribution: the validation voices of ``DATA/chunks.json``
   (never trained on) rendered with presets of three kinds (prior samples, perturbed
   ``train_index`` rows, the internal non-train rows). PMSE for ``w`` in 0, 0.1, ..., 1, and the
   least-squares weight per module (clipped to [0, 1]).
3. **Voices or presets?** PMSE of the prior mean and of the prediction on a 2 x 2 grid: voices
   (the validation voices; the dev corpus's dry vocals) x presets (internal non-train rows;
   the 16 MedleyDB rows of the dev protocol, cycled over the voices).

The MedleyDB presets and the dev vocals are read for measurement only, as the evaluation reads
them. Each voice gives its chunks at even positions as the reference and those at odd positions as
the dry, as the protocol does. Writes ``OUT/head_shift.json`` with every number printed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WEIGHTS = [round(0.1 * k, 1) for k in range(11)]


def modules() -> "OrderedDict[str, List[int]]":
    from vocalfx.params import SPECS

    out: "OrderedDict[str, List[int]]" = OrderedDict()
    for i, spec in enumerate(SPECS):
        out.setdefault(spec.module, []).append(i)
    return out


def validation_voices(data: Path) -> List[Tuple[str, torch.Tensor]]:
    """The training set's validation sources: ``(name, (n, 1, time))`` dry chunks at -18 LUFS."""
    table = json.loads((data / "chunks.json").read_text())
    chunks = np.load(data / "chunks.npy", mmap_mode="r")
    by_source: Dict[str, List[int]] = {}
    for i, c in enumerate(table):
        if c["split"] == "val":
            by_source.setdefault(c["source"], []).append(i)
    return [
        (name, torch.from_numpy(np.stack([chunks[i] for i in ids]).astype(np.float32))[:, None])
        for name, ids in sorted(by_source.items())
        if len(ids) >= 2
    ]


def dev_voices(corpus) -> List[Tuple[str, torch.Tensor]]:
    """Each dev track's dry vocal cut into chunks of the protocol's length (at most 8)."""
    from vocalfx.evaluation.corpus import prepare_track

    out = []
    for spec in corpus.tracks:
        t = prepare_track(spec)
        length = t.input.shape[-1]
        n = min(8, t.dry.shape[-1] // length)
        out.append((t.name, t.dry[..., : n * length].reshape(n, 1, length)))
    return out


class Scorer:
    def __init__(self) -> None:
        from vocalfx.embed import get_encoder
        from vocalfx.fx import VocalChain

        self.encoder = get_encoder("fx")
        self.chain = VocalChain(44100)

    def predict(self, dry: torch.Tensor, raw: torch.Tensor) -> np.ndarray | None:
        """The head's preset for the reference made of ``dry``'s even chunks rendered with ``raw``."""
        from vocalfx.io import loudness_normalize
        from vocalfx.matching.start import predicted_start

        ref_ids, in_ids = list(range(0, len(dry), 2)), list(range(1, len(dry), 2))
        with torch.no_grad():
            wet = self.chain(dry[ref_ids], raw.float()[None])
        stream = wet.permute(1, 0, 2).reshape(2, -1)
        try:
            stream, _ = loudness_normalize(stream, 44100, -18.0)
        except ValueError:
            return None  # a silent render
        ref = stream.reshape(2, len(ref_ids), -1).permute(1, 0, 2)
        vector, _ = predicted_start(ref, dry[in_ids], self.encoder)
        return vector


def collections_under_prior(prior, L, sets: Dict[str, np.ndarray]) -> Dict[str, dict]:
    mean = prior.mean.double()
    out = {}
    for name, raw in sets.items():
        r = torch.as_tensor(raw, dtype=torch.float64)
        z = torch.linalg.solve_triangular(L, (r - mean).T, upper=False).T
        d = r - mean
        per_module = {
            m: dict(
                spread=float(d[:, idx].var(0, unbiased=False).sum()) / r.shape[1],
                bias2=float(d[:, idx].mean(0).square().sum()) / r.shape[1],
            )
            for m, idx in modules().items()
        }
        out[name] = dict(
            n=len(r),
            mean_z2=float(z.square().mean()),
            share_abs_z_over_3=float((z.abs() > 3).double().mean()),
            pmse_prior_mean=float(d.square().mean()),
            per_module=per_module,
        )
    return out


def weighted_start(
    scorer: Scorer, voices, families: Dict[str, callable], per: int, mean: np.ndarray
) -> Dict[str, dict]:
    mods = modules()
    out = {}
    for fam, draw in families.items():
        preds, truths = [], []
        for vi, (_, dry) in enumerate(voices):
            for k in range(per):
                raw = draw(vi * per + k)
                v = scorer.predict(dry, raw)
                if v is not None:
                    preds.append(v)
                    truths.append(raw.numpy())
        V, T = np.array(preds) - mean, np.array(truths) - mean
        by_w = {str(w): float(((w * V - T) ** 2).mean()) for w in WEIGHTS}
        per_module = {}
        for m, idx in mods.items():
            a, b = V[:, idx], T[:, idx]
            per_module[m] = float(np.clip((a * b).sum() / max((a * a).sum(), 1e-12), 0.0, 1.0))
        out[fam] = dict(n=len(V), pmse_by_weight=by_w, least_squares_weight_per_module=per_module)
        print(f"  {fam:28s} n={len(V):3d}  " + " ".join(f"w{w:g}:{by_w[str(w)]:.3f}" for w in WEIGHTS), flush=True)
        print(
            "    least-squares weight per module: " + " ".join(f"{m} {w:.2f}" for m, w in per_module.items()),
            flush=True,
        )
    return out


def grid(scorer: Scorer, voice_sets, preset_sets, mean: np.ndarray) -> List[dict]:
    rows = []
    for vname, voices in voice_sets.items():
        for pname, presets in preset_sets.items():
            e_mean, e_pred = [], []
            for vi, (_, dry) in enumerate(voices):
                for k in range(3):
                    raw = presets[(vi * 3 + k) % len(presets)]
                    v = scorer.predict(dry, raw)
                    if v is None:
                        continue
                    e_mean.append(float(((mean - raw.numpy()) ** 2).mean()))
                    e_pred.append(float(((v - raw.numpy()) ** 2).mean()))
            m, p = float(np.mean(e_mean)), float(np.mean(e_pred))
            rows.append(
                dict(
                    voices=vname,
                    presets=pname,
                    n=len(e_mean),
                    pmse_prior_mean=m,
                    pmse_prediction=p,
                    change_percent=100.0 * (p - m) / m,
                )
            )
            print(
                f"  {vname:26s} {pname:30s} n={len(e_mean):3d}  prior mean {m:.3f}  prediction {p:.3f}  ({100 * (p - m) / m:+.1f} %)",
                flush=True,
            )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--data",
        type=Path,
        default=ROOT / "build" / "fx-train",
        help="the training set (chunks.json, chunks.npy) of scripts/build_training_set.py --stage chunks",
    )
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument(
        "--per", type=int, default=3, help="presets per validation voice and kind in measurement 2 (default 3)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "head-shift")
    args = ap.parse_args(argv)

    from vocalfx.evaluation.corpus import load_corpus, prepare_track
    from vocalfx.params import from_diffvox
    from vocalfx.prior import GaussianPrior

    for need in (args.data / "chunks.json", args.data / "chunks.npy", args.shared / "corpus" / "dev" / "protocol.json"):
        if not need.is_file():
            sys.exit(
                f"measure_head_shift: {need} is missing (build the chunks with scripts/build_training_set.py --stage chunks; "
                "the dev corpus is in ../shared)"
            )
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    prior = GaussianPrior.default()
    mean_t = prior.mean.double()
    mean = mean_t.numpy()
    L = torch.linalg.cholesky(prior.cov.double())
    internal = args.shared / "diffvox-presets" / "internal"
    raw_all = from_diffvox(np.load(internal / "raw_params.npy"))
    train_rows = np.load(internal / "train_index.npy")
    other_rows = np.setdiff1d(np.arange(len(raw_all)), train_rows)
    corpus = load_corpus(args.shared / "corpus" / "dev")
    medley = np.array([prepare_track(s).true_vector for s in corpus.tracks])
    scorer = Scorer()
    report: Dict[str, object] = dict(command=" ".join(sys.argv), seed=args.seed, per=args.per)

    print("1. collections under the shipped prior (z: whitened coordinates)")
    report["collections"] = collections_under_prior(
        prior,
        L,
        {
            "internal train_index": raw_all[train_rows],
            "internal non-train": raw_all[other_rows],
            "MedleyDB, dev protocol": medley,
        },
    )
    for name, c in report["collections"].items():
        print(
            f"  {name:24s} n={c['n']:3d}  mean z^2 {c['mean_z2']:.2f}  |z| > 3: {100 * c['share_abs_z_over_3']:.1f} %  "
            f"PMSE of the prior mean {c['pmse_prior_mean']:.2f}"
        )
    print("  per module, PMSE of the prior mean = squared bias + spread (each summed over the module's values / 130):")
    for m in modules():
        print(
            f"    {m:22s} "
            + "  ".join(
                f"{name}: bias^2 {c['per_module'][m]['bias2']:.3f} spread {c['per_module'][m]['spread']:.3f}"
                for name, c in report["collections"].items()
            )
        )

    print("2. start = mean + w (prediction - mean), held-out voices of the training distribution (PMSE)")
    voices = validation_voices(args.data)
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    z_train = torch.linalg.solve_triangular(L, (torch.from_numpy(raw_all[train_rows]) - mean_t).T, upper=False).T
    others = torch.from_numpy(raw_all[other_rows])
    families = {
        "prior samples": lambda i: mean_t + L @ torch.randn(130, generator=gen, dtype=torch.float64),
        "perturbed train_index rows": lambda i: (
            mean_t
            + L
            @ (z_train[int(rng.integers(len(z_train)))] + 0.3 * torch.randn(130, generator=gen, dtype=torch.float64))
        ),
        "internal non-train rows": lambda i: others[i % len(others)],
    }
    report["weighted_start"] = weighted_start(scorer, voices, families, args.per, mean)

    print("3. voices or presets? PMSE of the prior mean and of the prediction")
    report["grid"] = grid(
        scorer,
        {"training validation voices": voices, "dev corpus dry vocals": dev_voices(corpus)},
        {"internal non-train rows": others, "MedleyDB rows (dev truth)": torch.from_numpy(medley)},
        mean,
    )
    report["seconds"] = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "head_shift.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
    print(f"{report['seconds']:.0f} s; wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
