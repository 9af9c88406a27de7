#!/usr/bin/env python
"""Measure the ``fx`` encoder: speed, and its predicted preset on the dev corpus.

    python scripts/measure_fx_encoder.py speed
    python scripts/measure_fx_encoder.py dev --corpus ../shared/corpus/dev --out build/fx-measure [--ito]

``speed``: median wall time (after one warm-up) of embedding one 11 s stereo chunk, and of one
forward+backward of 4 x 11 s dry chunks through ``VocalChain`` (one shared preset, gradient w.r.t.
its 130 raw values, as one ITO step) with and without the encoder; ``--threads`` torch threads.
The allocator is tuned as the ``vocalfx`` command tunes it (``VOCALFX_KEEP_HEAP=0`` to compare without).

``dev``: the evaluation protocol (``vocalfx.evaluation``: dry at -18 LUFS, wet = the true MedleyDB
preset's render, reference = wet chunks at even positions, input = dry chunks at odd positions,
scored on the whole track). The MedleyDB presets are used here as the truth only, never for
training. Rows: ``mean`` (the prior mean), ``fx-pred`` (``predict_preset`` from the reference
chunks laid end to end), ``fx-pred-dry`` (the same, given the input chunks as the dry too) and,
with ``--ito``, ``ito-fx-from-pred`` (``vocalfx.match`` with the fx encoder started from
``fx-pred-dry``; alpha ``--alpha``). Writes ``OUT/results.csv`` and ``OUT/summary.md``.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def speed(args) -> None:
    from vocalfx import VocalChain
    from vocalfx.embed import get_encoder
    from vocalfx.prior import GaussianPrior

    enc = get_encoder("fx")
    chain = VocalChain(44100)
    g = torch.Generator().manual_seed(0)
    chunk = torch.randn(1, 2, 11 * 44100, generator=g) * 0.1
    dry = torch.randn(4, 1, 11 * 44100, generator=g) * 0.1
    raw = GaussianPrior.default().mean.float()[None]
    with torch.no_grad():
        target = enc(chain(dry, raw))

    def embed():
        with torch.no_grad():
            enc(chunk)

    def step(with_encoder: bool):
        p = raw.clone().requires_grad_(True)
        y = chain(dry, p)
        if with_encoder:
            e = enc(y)
            loss = sum(((e[k] - target[k]) ** 2).sum() for k in e)
        else:
            loss = y.pow(2).mean()
        loss.backward()

    t_embed = timed(embed, args.repeats)
    t_chain = timed(lambda: step(False), args.repeats)
    t_both = timed(lambda: step(True), args.repeats)
    size = Path(enc.weights_path).stat().st_size
    from vocalfx.alloc import is_applied

    print(
        f"threads {torch.get_num_threads()}, weights {enc.weights_path} ({size / 1e6:.2f} MB), "
        f"freed memory kept for reuse: {is_applied()} (docs/chain.md)"
    )
    print(f"embed one 11 s chunk: {1000 * t_embed:.1f} ms")
    print(
        f"forward+backward 4 x 11 s: chain {t_chain:.3f} s, chain + fx encoder {t_both:.3f} s "
        f"(encoder share {t_both - t_chain:.3f} s)"
    )


def dev(args) -> None:
    from vocalfx.embed import get_encoder
    from vocalfx.evaluation.corpus import load_corpus, prepare_track
    from vocalfx.evaluation.runner import score
    from vocalfx.prior import GaussianPrior

    enc = get_encoder("fx")
    prior = GaussianPrior.default()
    corpus = load_corpus(args.corpus, tracks=args.tracks.split(",") if args.tracks else None)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for spec in corpus.tracks:
        track = prepare_track(spec, chunk_seconds=corpus.chunk_seconds, lufs=corpus.lufs)
        n_ref, _, length = track.reference.shape
        ref = track.reference.permute(1, 0, 2).reshape(1, 2, n_ref * length)
        n_in = track.input.shape[0]
        dry = track.input.permute(1, 0, 2).reshape(1, 1, n_in * length)
        with torch.no_grad():
            preds = {
                "mean": prior.mean,
                "fx-pred": enc.predict_preset(ref)[0].double(),
                "fx-pred-dry": enc.predict_preset(ref, dry=dry)[0].double(),
            }
        if args.ito:
            from vocalfx import match

            t = time.time()
            res = match(
                dry[0],
                ref[0],
                track.sample_rate,
                encoder="fx",
                alpha=args.alpha,
                prior=prior,
                init=preds["fx-pred-dry"].numpy(),
                chunk_seconds=track.chunk_seconds,
                normalize_reference=False,
                progress=False,
                name=f"{track.name}-ito-fx",
            )
            preds["ito-fx-from-pred"] = torch.as_tensor(res.preset.vector, dtype=torch.float64)
            print(f"  ito {time.time() - t:.0f} s", flush=True)
        for name, v in preds.items():
            s = score(track, v)
            rows.append(dict(track=track.name, method=name, **{k: round(x, 5) for k, x in s.items()}))
            print(
                f"{track.name:10s} {name:18s} mss_lr {s['mss_lr']:.4f} mldr_lr {s['mldr_lr']:.4f} pmse {s['pmse']:.3f}",
                flush=True,
            )
    with open(args.out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines = [
        "| method | tracks | MSS L/R | MLDR L/R | MSS M/S | MLDR M/S | PMSE | MSS L/R wins vs mean |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base = {r["track"]: r["mss_lr"] for r in rows if r["method"] == "mean"}
    for m in methods:
        rs = [r for r in rows if r["method"] == m]
        wins = sum(r["mss_lr"] < base[r["track"]] for r in rs)
        mean = {k: statistics.mean(r[k] for r in rs) for k in ("mss_lr", "mldr_lr", "mss_ms", "mldr_ms", "pmse")}
        lines.append(
            f"| {m} | {len(rs)} | {mean['mss_lr']:.4f} | {mean['mldr_lr']:.4f} | {mean['mss_ms']:.4f} | "
            f"{mean['mldr_ms']:.4f} | {mean['pmse']:.3f} | {wins}/{len(rs)} |"
        )
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--threads", type=int, default=2)
    d = sub.add_parser("dev")
    d.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus" / "dev")
    d.add_argument("--out", type=Path, default=ROOT / "build" / "fx-measure")
    d.add_argument("--ito", action="store_true", help="also ITO with the fx encoder from the prediction")
    d.add_argument("--alpha", type=float, default=0.1)
    d.add_argument("--threads", type=int, default=1)
    d.add_argument("--tracks", default=None, help="comma-separated track names (default: all)")
    args = ap.parse_args()
    if args.cmd == "speed":
        from vocalfx.alloc import apply_from_environment

        apply_from_environment()  # as the vocalfx command does; VOCALFX_KEEP_HEAP=0 to compare without
    torch.set_num_threads(args.threads)
    {"speed": speed, "dev": dev}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
