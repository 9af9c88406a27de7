#!/usr/bin/env python
"""Which part of a predicted preset holds its error in sound: swap in the truth one group at a time.

    python scripts/measure_module_errors.py --run eval-dev --corpus ../shared/corpus/dev [--method match] [--out module_errors.json]

Reads the cells of a finished ``vocalfx eval`` run (``RUN/cells/TRACK/METHOD.json``, the preset each
method predicted) and the corpus's true presets. For every track it renders the dry track with the
predicted preset, as the evaluation scores it, and then again with the true values of one group of
modules put in its place (the EQ, the compressor, the delay, the reverb side, everything but the
reverb side, everything). Each swapped preset keeps the predicted preset's output loudness:
``comp.makeup_db`` is shifted by the difference of integrated loudness (BS.1770) so that only the
group's sound changes, not the level (the chain is linear after the makeup gain, so one shift is
exact; the script prints the largest loudness left over). The row "all" therefore measures what
the level choice alone costs.

MSS L/R and MLDR L/R are DiffVox's (``vocalfx.metrics``), on the whole track as ``vocalfx eval``
scores it. Nothing is fitted; the true presets are read for scoring only. Prints the mean over
tracks per group and writes every per-track number to ``--out`` when given.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REVERB_SIDE = ("reverb", "reverb_eq_peak1", "reverb_eq_peak2", "reverb_eq_low_shelf", "reverb_eq_high_shelf", "send")
EQ = ("peak1", "peak2", "low_shelf", "high_shelf", "lowpass", "highpass")


def groups() -> "OrderedDict[str, List[int]]":
    """Indices of the 130 raw values per group; ``comp.makeup_db`` is in none (it carries the level)."""
    from vocalfx.params import SPECS

    makeup = [p.name for p in SPECS].index("comp.makeup_db")
    by_module: Dict[str, List[int]] = {}
    for i, spec in enumerate(SPECS):
        if i != makeup:
            by_module.setdefault(spec.module, []).append(i)

    def pick(names) -> List[int]:
        return sorted(i for n in names for i in by_module[n])

    reverb_side = pick(REVERB_SIDE)
    out: "OrderedDict[str, List[int]]" = OrderedDict()
    out["eq (6 bands)"] = pick(EQ)
    out["compressor (not makeup)"] = pick(("comp",))
    out["delay"] = pick(("delay",))
    out["pan"] = pick(("pan",))
    out["reverb side (FDN, its EQ, send)"] = reverb_side
    out["all but the reverb side"] = sorted(i for i in pick(by_module) if i not in reverb_side)
    out["all (the level stays the prediction's)"] = pick(by_module)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, required=True, help="a vocalfx eval output folder")
    ap.add_argument("--corpus", type=Path, required=True, help="the corpus that run scored (protocol.json)")
    ap.add_argument("--method", default="match", help="the method whose cells to read (default: match)")
    ap.add_argument("--tracks", default=None, help="comma-separated tracks (default: all of the corpus)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    ap.add_argument("--out", type=Path, default=None, help="write per-track numbers to this JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from vocalfx.evaluation.corpus import SAMPLE_RATE, load_corpus, prepare_track, render_vector
    from vocalfx.io import integrated_loudness
    from vocalfx.metrics import mldr, mss
    from vocalfx.params import SPECS

    makeup = [p.name for p in SPECS].index("comp.makeup_db")
    corpus = load_corpus(args.corpus)
    specs = corpus.tracks
    if args.tracks:
        wanted = set(args.tracks.split(","))
        specs = [s for s in specs if s.name in wanted]
        missing = wanted - {s.name for s in specs}
        if missing:
            sys.exit(f"{args.corpus}: no track(s) {', '.join(sorted(missing))}")
    cells = {}
    for spec in specs:
        path = args.run / "cells" / spec.name / f"{args.method}.json"
        try:
            cell = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            sys.exit(f"{path}: cannot read the cell: {e}")
        if cell.get("status") != "ok":
            sys.exit(f"{path}: the cell did not finish (status {cell.get('status')!r})")
        cells[spec.name] = np.asarray(cell["vector"], dtype=np.float64)

    def scored(track, vector: np.ndarray):
        audio = render_vector(track.dry, torch.from_numpy(vector))
        p, t = audio.unsqueeze(0), track.wet.unsqueeze(0)
        with torch.no_grad():
            return audio, float(mss(p, t, SAMPLE_RATE)), float(mldr(p, t, SAMPLE_RATE))

    grp = groups()
    results: Dict[str, Dict[str, Dict[str, float]]] = {}
    worst_level_lu = 0.0
    t0 = time.perf_counter()
    print(f"{args.method} cells of {args.run}; true presets of {args.corpus}; {len(specs)} tracks")
    for spec in specs:
        track = prepare_track(spec)
        if track.true_vector is None:
            sys.exit(f"{spec.name}: the corpus gives no true preset for this track")
        truth = track.true_vector.numpy().astype(np.float64)
        pred = cells[spec.name]
        audio, m0, l0 = scored(track, pred)
        lufs = integrated_loudness(audio, SAMPLE_RATE)
        row = {"prediction": {"mss_lr": m0, "mldr_lr": l0}}
        for name, idx in grp.items():
            swapped = pred.copy()
            swapped[idx] = truth[idx]
            swapped[makeup] += lufs - integrated_loudness(
                render_vector(track.dry, torch.from_numpy(swapped)), SAMPLE_RATE
            )
            audio, m, l = scored(track, swapped)
            worst_level_lu = max(worst_level_lu, abs(integrated_loudness(audio, SAMPLE_RATE) - lufs))
            row[name] = {"mss_lr": m, "mldr_lr": l}
        results[spec.name] = row
        print(f"  {spec.name}: " + ", ".join(f"{k} {v['mss_lr']:.3f}" for k, v in row.items()), flush=True)

    names = ["prediction", *grp]
    print(
        f"\nmean over {len(results)} tracks, MSS L/R / MLDR L/R, with the true values of one group put in"
        f" (level kept; largest loudness left over {worst_level_lu:.3f} LU; {time.perf_counter() - t0:.0f} s):"
    )
    print("| true values put in | MSS L/R | MLDR L/R |\n|---|---:|---:|")
    for name in names:
        m = np.mean([results[t][name]["mss_lr"] for t in results])
        l = np.mean([results[t][name]["mldr_lr"] for t in results])
        print(f"| {'none (the prediction)' if name == 'prediction' else name} | {m:.3f} | {l:.3f} |")
    if args.out:
        from vocalfx.io import atomic_write_text

        atomic_write_text(
            args.out,
            json.dumps(
                {
                    "run": str(args.run),
                    "method": args.method,
                    "groups": {k: [SPECS[i].name for i in v] for k, v in grp.items()},
                    "tracks": results,
                },
                indent=1,
            ),
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
