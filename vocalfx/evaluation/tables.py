"""Tables from result cells: ``results.csv`` (per track) and ``summary.md``/``summary.csv`` (per method).

The statistics are taken over the tracks on which every method finished, so every row of the
summary averages the same tracks; tracks left out (a method failed or has not run yet) are listed
under the tables. A method that needs the true preset is not applicable to a track without one;
that does not exclude the track for the other methods.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .cells import METRICS, read_cells

__all__ = ["write_reports", "summary_table", "METRIC_TITLES"]

#: Column titles of the metrics (L/R = left/right, M/S = mid/side).
METRIC_TITLES = {
    "mss_lr": "MSS L/R",
    "mldr_lr": "MLDR L/R",
    "mss_ms": "MSS M/S",
    "mldr_ms": "MLDR M/S",
    "pmse": "PMSE",
}


def _fmt(v: float) -> str:
    return "—" if v is None or not math.isfinite(v) else f"{v:.3f}"


def summary_table(
    cells: Dict[Tuple[str, str], Optional[Dict[str, Any]]],
    tracks: Sequence[str],
    methods: Sequence[str],
    applicable: Dict[Tuple[str, str], bool],
) -> Tuple[Dict[str, Dict[str, Dict[str, float]]], List[str], List[str]]:
    """Per method and metric: mean, median and n over the complete tracks.

    Returns:
        ``(stats, complete_tracks, problems)``: ``stats[method][metric] = {"mean", "median", "n"}``
        (plus ``stats[method]["predict_s"]``), the tracks used, and one line per failed or missing
        cell.
    """
    problems = []
    complete = []
    for t in tracks:
        ok = True
        for m in methods:
            if not applicable[(t, m)]:
                continue
            c = cells[(t, m)]
            if c is None:
                problems.append(f"{t} × {m}: not run yet")
                ok = False
            elif c.get("status") != "ok":
                problems.append(f"{t} × {m}: {c.get('error', 'failed')}")
                ok = False
        if ok:
            complete.append(t)
    stats: Dict[str, Dict[str, Dict[str, float]]] = {}
    for m in methods:
        stats[m] = {}
        rows = [cells[(t, m)] for t in complete if applicable[(t, m)]]
        for key in list(METRICS) + ["predict_s"]:
            if key == "predict_s":
                vals = np.array([r["seconds"]["predict"] for r in rows], dtype=float)
            else:
                vals = np.array([r["metrics"][key] for r in rows], dtype=float)
            vals = vals[np.isfinite(vals)]
            stats[m][key] = {
                "mean": float(vals.mean()) if vals.size else math.nan,
                "median": float(np.median(vals)) if vals.size else math.nan,
                "n": int(vals.size),
            }
    return stats, complete, problems


def _markdown_table(stats, methods: Sequence[str], which: str) -> str:
    cols = [METRIC_TITLES[k] for k in METRICS]
    head = "| method | " + " | ".join(cols) + " | tracks |" + (" predict s |" if which == "mean" else "")
    sep = "|---|" + "---:|" * (len(cols) + 1) + ("---:|" if which == "mean" else "")
    lines = [head, sep]
    for m in methods:
        s = stats[m]
        row = f"| {m} | " + " | ".join(_fmt(s[k][which]) for k in METRICS) + f" | {s['mss_lr']['n']} |"
        if which == "mean":
            p = s["predict_s"]["mean"]
            row += f" {p:.1f} |" if math.isfinite(p) else " — |"
        lines.append(row)
    return "\n".join(lines)


def write_reports(out: Path, corpus: Any, methods: Sequence[Any], run: Dict[str, Any]) -> Tuple[str, List[str]]:
    """Write ``results.csv``, ``summary.csv`` and ``summary.md`` into ``out``; return the markdown and problems."""
    from ..io import atomic_write_text

    tracks = [t.name for t in corpus.tracks]
    names = [m.name for m in methods]
    applicable = {
        (t.name, m.name): not (m.needs_true_preset and t.preset is None) for t in corpus.tracks for m in methods
    }
    cells = read_cells(out, tracks, names)

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["track", "method", "status", *METRICS, "predict_s", "score_s", "error"])
    for t in tracks:
        for m in names:
            c = cells[(t, m)]
            if not applicable[(t, m)]:
                w.writerow([t, m, "n/a", *[""] * len(METRICS), "", "", "needs the true preset"])
            elif c is None:
                w.writerow([t, m, "missing", *[""] * len(METRICS), "", "", ""])
            elif c.get("status") != "ok":
                w.writerow([t, m, c.get("status"), *[""] * len(METRICS), "", "", c.get("error", "")])
            else:
                w.writerow(
                    [
                        t,
                        m,
                        "ok",
                        *[repr(float(c["metrics"][k])) for k in METRICS],
                        f"{c['seconds']['predict']:.3f}",
                        f"{c['seconds']['score']:.3f}",
                        "",
                    ]
                )
    atomic_write_text(out / "results.csv", buf.getvalue())

    stats, complete, problems = summary_table(cells, tracks, names, applicable)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["method", "metric", "mean", "median", "n"])
    for m in names:
        for k in list(METRICS) + ["predict_s"]:
            s = stats[m][k]
            w.writerow([m, k, repr(s["mean"]), repr(s["median"]), s["n"]])
    atomic_write_text(out / "summary.csv", buf.getvalue())

    md = _summary_markdown(out, corpus, names, stats, complete, problems, cells, run)
    atomic_write_text(out / "summary.md", md)
    return md, problems


def _summary_markdown(out, corpus, names, stats, complete, problems, cells, run) -> str:
    invocations = [r for r in run.get("invocations", []) if r.get("wall_seconds") is not None]
    wall = sum(r["wall_seconds"] for r in invocations if r.get("cells_computed") or r.get("interrupted"))
    last = next((r for r in reversed(invocations) if r.get("cells_computed")), invocations[-1] if invocations else None)
    machine = (last or {}).get("machine", {})
    config = {}
    for c in cells.values():
        if c is not None and c.get("config"):
            config.update({k: v for k, v in c["config"].items() if k in ("collection", "prior")})
    lines = [
        f"# Style-transfer evaluation: {Path(corpus.root).name}",
        "",
        f"- corpus: `{corpus.root}`, {len(corpus.tracks)} tracks; chunks of {corpus.chunk_seconds:g} s; "
        f"dry at {corpus.lufs:g} LUFS; true presets: `{corpus.presets_source or 'per-track files'}`",
    ]
    if "collection" in config:
        lines.append(f"- nearest-neighbour collection: {config['collection']}")
    if "prior" in config:
        lines.append(f"- prior: {config['prior']}")
    if last is not None:
        lines += [
            f"- command: `{last.get('command') or '(API call)'}`",
            f"- wall time: {wall:.0f} s over "
            f"{sum(1 for r in invocations if r.get('cells_computed') or r.get('interrupted'))} "
            f"invocation(s) that computed cells (last: {last.get('jobs')} process(es), "
            f"{last.get('threads') or (1 if (last.get('jobs') or 1) > 1 else 'default')} torch thread(s) each)",
            f"- machine: {machine.get('cpu', '?')}, {machine.get('cpu_count', '?')} logical CPUs, "
            f"load average at start {machine.get('load_average_at_start')}; torch {machine.get('torch')}, "
            f"vocalfx {machine.get('vocalfx')}",
        ]
    lines += [
        f"- statistics over the {len(complete)} of {len(corpus.tracks)} tracks on which every method finished",
        "",
        "MSS and MLDR on L/R are what DiffVox's tables call MSS and MLDR; M/S are the same on mid/side.",
        "Lower is better everywhere. `predict s`: mean seconds per track to predict (scoring excluded).",
        "",
        "### Mean over tracks",
        "",
        _markdown_table(stats, names, "mean"),
        "",
        "### Median over tracks",
        "",
        _markdown_table(stats, names, "median"),
        "",
    ]
    if problems:
        lines += ["### Cells not in the statistics", ""] + [f"- {p}" for p in problems] + [""]
    return "\n".join(lines)
