#!/usr/bin/env python
"""Merge ``bench_separate.py`` result files and print their tables as Markdown.

Several runs of the benchmark (the SI-SDR section in one process, the match section split over
two processes, say) are merged into one file, each run's machine kept beside its rows:

    python benchmarks/separate_tables.py build/sepbench/sdr.json build/sepbench/match_A.json \
        build/sepbench/match_B.json --out docs/data/separate_pretrained_bench.json

Tables printed (whichever sections the files hold; the rows of a run with backend ``--options``
are named by the backend and its options):

* per backend and vocal-to-accompaniment ratio: the mean, median and worst SI-SDR improvement;
* per mix: each backend's improvement at every ratio, and at 0 dB the difference to the first
  backend named by ``--baseline`` (default ``classical``);
* per mix, the match section: MSS L/R of the prior mean, of the match from the true vocal, and of
  each (backend, settings) row from the separated vocal, with the mean, the ratio of means to the
  true-vocal row, and the number of mixes worse than the prior mean.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def merge(paths):
    merged = {"runs": [], "sdr": [], "sdr_summary": [], "match": [], "memory": []}
    for path in paths:
        data = json.loads(Path(path).read_text())
        run = {"file": Path(path).name, "machine": data.get("machine"), "corpus": data.get("corpus")}
        for key in ("options", "match_candidates", "partial"):
            if data.get(key) is not None:
                run[key] = data[key]
        merged["runs"].append(run)
        for key in ("sdr", "sdr_summary", "match", "memory"):
            rows = [{**row, "run": run["file"]} for row in data.get(key) or []]
            if key.startswith("sdr") and data.get("options"):  # an ablation: its rows named by their options
                rows = [{**row, "backend": f"{row['backend']} {json.dumps(data['options'])}"} for row in rows]
            merged[key] += rows
    return merged


def sdr_tables(rows, summary, baseline):
    out = ["| backend | VAR | mixes | improvement mean | median | worst | improved | air-band level error (mean) |"]
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for s in summary:
        out.append(
            f"| {s['backend']} | {s['var_db']:+g} dB | {s['tracks']} | **{s['improvement_mean_db']:+.2f}** | "
            f"{s['improvement_median_db']:+.2f} | {s['improvement_min_db']:+.2f} | "
            f"{s['improved_tracks']}/{s['tracks']} | {s.get('air_band_error_mean_db', float('nan')):+.1f} dB |"
        )
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    ratios = sorted({r["var_db"] for r in rows})
    tracks = list(dict.fromkeys(r["track"] for r in rows))
    get = {(r["backend"], r["track"], r["var_db"]): r for r in rows}
    head = "| mix | accompaniment | " + " | ".join(f"{b} {v:+g} dB" for b in backends for v in ratios)
    others = [b for b in backends if b != baseline]
    if baseline in backends:
        head += " | " + " | ".join(f"{b} − {baseline} at 0 dB" for b in others)
    out += [
        "",
        head + " |",
        "|---|---|" + "---:|" * (len(backends) * len(ratios) + (len(others) if baseline in backends else 0)),
    ]
    for t in tracks:
        acc = next(r["accompaniment"] for r in rows if r["track"] == t)
        cells = [
            f"{get[(b, t, v)]['improvement_db']:+.2f}" if (b, t, v) in get else "" for b in backends for v in ratios
        ]
        if baseline in backends:
            base = get[(baseline, t, 0.0)]["improvement_db"]
            cells += [f"{get[(b, t, 0.0)]['improvement_db'] - base:+.2f}" for b in others]
        out.append(f"| {t} | {acc.removesuffix('.flac')} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def match_table(rows):
    tracks = list(dict.fromkeys(r["track"] for r in rows))
    keys = list(dict.fromkeys((r["reference"], r["settings"]) for r in rows))
    get = {(r["track"], r["reference"], r["settings"]): r for r in rows}
    mean = {t: get[(t, "prior mean", None)]["mss_lr"] for t in tracks if (t, "prior mean", None) in get}
    true_key = ("true vocal", "default")
    complete = [t for t in tracks if all((t, *k) in get for k in keys)]
    out = ["| reference | settings | mean MSS L/R | ÷ true vocal's | mean MLDR L/R | worse than the prior mean |"]
    out.append("|---|---|---:|---:|---:|---|")
    true_mss = statistics.mean(get[(t, *true_key)]["mss_lr"] for t in complete) if true_key in keys else None
    for k in keys:
        sel = [get[(t, *k)] for t in complete]
        m = statistics.mean(r["mss_lr"] for r in sel)
        worse = [f"{r['track']} {r['mss_lr'] / mean[r['track']]:.2f}×" for r in sel if r["mss_lr"] > mean[r["track"]]]
        ratio = f"{m / true_mss:.2f}" if true_mss else ""
        out.append(
            f"| {k[0]} | {k[1] or '—'} | {m:.3f} | {ratio} | {statistics.mean(r['mldr_lr'] for r in sel):.3f} | "
            f"{len(worse)}{': ' + ', '.join(worse) if worse else ''} |"
        )
    out += ["", f"Mixes: {len(complete)} of {len(tracks)} complete.", ""]
    out.append("| mix | accompaniment | " + " | ".join(f"{a}, {s or '—'}" for a, s in keys) + " |")
    out.append("|---|---|" + "---:|" * len(keys))
    for t in complete:
        acc = get[(t, *keys[0])]["accompaniment"].removesuffix(".flac")
        out.append(f"| {t} | {acc} | " + " | ".join(f"{get[(t, *k)]['mss_lr']:.3f}" for k in keys) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="write the merged results here")
    ap.add_argument("--baseline", default="classical")
    a = ap.parse_args()
    merged = merge(a.files)
    if merged["sdr"]:
        print("## SI-SDR improvement\n")
        print(sdr_tables(merged["sdr"], merged["sdr_summary"], a.baseline) + "\n")
    if merged["match"]:
        print("## Match from the separated vocal (MSS L/R, lower is better)\n")
        print(match_table(merged["match"]) + "\n")
    if merged["memory"]:
        print("## Memory\n")
        print("| backend | how | minutes | peak RSS | time |\n|---|---|---:|---:|---:|")
        for r in merged["memory"]:
            print(
                f"| {r['backend']} | {r['mode']} | {r['minutes']:g} | {r['peak_rss_mb']:.0f} MB | "
                f"{r['seconds']:.1f} s |"
            )
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(merged, indent=1) + "\n")
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
