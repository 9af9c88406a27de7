"""``OUT/summary.html`` of an evaluation run, built from the run's ``results.csv`` and ``summary.csv``.

It reads only those two tables (and shows ``summary.md`` as written), so it can be rebuilt for
any finished or partial run: the mean and median tables, per-track bars of MSS L/R for each
method, and the distribution of each metric per method (box plots).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Sequence, Tuple, Union

import numpy as np

from .base import PALETTE, ReportError, check_no_nan, esc, figure_block, fmt, label, legend, new_figure, page, table

if TYPE_CHECKING:
    import os

__all__ = ["write_eval_report", "read_results", "read_summary", "metric_title"]

PathLike = Union[str, "os.PathLike[str]"]

#: The columns of ``results.csv`` that are not metrics.
_NOT_METRICS = ("track", "method", "status", "predict_s", "score_s", "error")
_MAIN = "mss_lr"


def metric_title(key: str) -> str:
    """A metric's column key as a title: ``mss_lr`` -> ``MSS L/R``, ``pmse`` -> ``PMSE``."""
    name, _, side = key.partition("_")
    sides = {"lr": "L/R", "ms": "M/S"}
    return name.upper() + (f" {sides.get(side, side.upper())}" if side else "")


def _read_csv(path: Path, required: Sequence[str]) -> Tuple[List[str], List[Dict[str, str]]]:
    if not path.is_file():
        raise ReportError(f"{path}: no such file (run `vocalfx eval` first, or give its --out directory)")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
            header = list(rows[0].keys()) if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise ReportError(f"{path}: cannot read as CSV ({e})") from None
    if not rows:
        raise ReportError(f"{path}: no rows")
    missing = [c for c in required if c not in header]
    if missing:
        raise ReportError(f"{path}: missing column(s) {', '.join(missing)}; not a vocalfx eval table")
    return header, rows


def _number(text: str, path: Path, what: str) -> float:
    if text is None or text.strip() == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise ReportError(f"{path}: {what} is not a number: {text!r}") from None


def read_results(path: PathLike) -> Tuple[List[str], List[Dict[str, object]]]:
    """``results.csv`` as ``(metric keys, rows)``; metric values are floats (NaN where empty)."""
    p = Path(path)
    header, rows = _read_csv(p, ("track", "method", "status"))
    metrics = [c for c in header if c not in _NOT_METRICS]
    if not metrics:
        raise ReportError(f"{p}: no metric columns")
    out: List[Dict[str, object]] = []
    for i, r in enumerate(rows, start=2):
        row: Dict[str, object] = {
            "track": r["track"],
            "method": r["method"],
            "status": r["status"],
            "error": r.get("error") or "",
        }
        for m in metrics:
            row[m] = _number(r.get(m, ""), p, f"line {i}, {m}") if r["status"] == "ok" else math.nan
        out.append(row)
    return metrics, out


def read_summary(path: PathLike) -> Dict[str, Dict[str, Dict[str, float]]]:
    """``summary.csv`` as ``{method: {metric: {"mean", "median", "n"}}}``, in file order."""
    p = Path(path)
    _, rows = _read_csv(p, ("method", "metric", "mean", "median", "n"))
    out: Dict[str, Dict[str, Dict[str, float]]] = {}
    for i, r in enumerate(rows, start=2):
        out.setdefault(r["method"], {})[r["metric"]] = {
            "mean": _number(r["mean"], p, f"line {i}, mean"),
            "median": _number(r["median"], p, f"line {i}, median"),
            "n": _number(r["n"], p, f"line {i}, n"),
        }
    return out


def _stat_table(summary: Dict[str, Dict[str, Dict[str, float]]], metrics: Sequence[str], which: str) -> str:
    best = {}
    for m in metrics:
        vals = [s[m][which] for s in summary.values() if m in s and math.isfinite(s[m][which])]
        best[m] = min(vals) if vals else None
    rows = []
    for method, s in summary.items():
        cells = [esc(method)]
        for m in metrics:
            v = s.get(m, {}).get(which, math.nan)
            txt = fmt(v, 4)
            cells.append(f"<b>{txt}</b>" if best[m] is not None and v == best[m] else txt)
        n = s.get(_MAIN if _MAIN in s else metrics[0], {}).get("n", math.nan)
        cells.append(fmt(int(n)) if math.isfinite(n) else "—")
        if which == "mean":
            cells.append(fmt(s.get("predict_s", {}).get("mean"), 3))
        rows.append(cells)
    head = ["method"] + [metric_title(m) for m in metrics] + ["tracks"] + (["predict s"] if which == "mean" else [])
    return table(head, rows)


def _track_bars(rows: List[Dict[str, object]], methods: List[str], metric: str) -> str:
    ok = [r for r in rows if r["status"] == "ok" and math.isfinite(float(r[metric]))]
    tracks = list(dict.fromkeys(r["track"] for r in ok))
    value = {(r["track"], r["method"]): float(r[metric]) for r in ok}
    width = max(6.4, min(16.0, 1.2 + 0.09 * len(tracks) * max(1, len(methods))))
    fig, (ax,) = new_figure(width, 3.4)
    step = 0.8 / max(1, len(methods))
    x = np.arange(len(tracks))
    for j, m in enumerate(methods):
        h = [value.get((t, m), math.nan) for t in tracks]
        ax.bar(
            x - 0.4 + step * (j + 0.5),
            np.nan_to_num(h, nan=0.0),
            width=step * 0.95,
            color=PALETTE[j % len(PALETTE)] if j < len(PALETTE) else None,
            label=m,
        )
    ax.set_xticks(x)
    ax.set_xticklabels(tracks, rotation=45 if len(tracks) > 6 else 0, ha="right" if len(tracks) > 6 else "center")
    ax.set_xlim(-0.6, len(tracks) - 0.4)
    label(ax, "track", f"{metric_title(metric)} (lower is better)", f"{metric_title(metric)} per track and method")
    legend(ax, ncols=min(4, max(1, len(methods))), loc="upper right")
    return figure_block(
        fig,
        f"tracks-{metric}",
        f"{metric_title(metric)} of every finished cell; a missing bar is a cell that failed or has not run.",
    )


def _box(rows: List[Dict[str, object]], methods: List[str], metric: str) -> str:
    data = [
        [float(r[metric]) for r in rows if r["method"] == m and r["status"] == "ok" and math.isfinite(float(r[metric]))]
        for m in methods
    ]
    keep = [(m, d) for m, d in zip(methods, data) if d]
    fig, (ax,) = new_figure(max(5.0, 1.2 + 0.6 * len(keep)), 3.2)
    if keep:
        ax.boxplot(
            [d for _, d in keep],
            tick_labels=[m for m, _ in keep],
            showmeans=True,
            medianprops={"color": PALETTE[5]},
            meanprops={"marker": "^", "markerfacecolor": PALETTE[0], "markeredgecolor": PALETTE[0], "markersize": 4},
        )
        for i, (_, d) in enumerate(keep, start=1):
            jitter = np.linspace(-0.12, 0.12, len(d)) if len(d) > 1 else np.zeros(1)
            ax.scatter(i + jitter, d, s=6, color="#555555", alpha=0.6, zorder=3)
        ax.tick_params(axis="x", labelrotation=30 if len(keep) > 4 else 0)
    label(ax, "method", metric_title(metric), f"Distribution of {metric_title(metric)} per method")
    return figure_block(
        fig,
        f"box-{metric}",
        f"{metric_title(metric)} over tracks: box = quartiles, line = median, triangle = mean, dots = tracks.",
    )


def write_eval_report(out_dir: PathLike) -> Path:
    """Write ``out_dir/summary.html`` from ``out_dir/results.csv`` and ``out_dir/summary.csv``.

    The page holds the mean and median tables (best per metric in bold), a bar chart of MSS L/R
    per track and method, a box plot of each metric per method, the cells that are not in the
    statistics, and ``summary.md`` as written. Self-contained (inline SVG and CSS).

    Args:
        out_dir: a ``vocalfx eval --out`` directory.

    Returns:
        The path written.

    Raises:
        ReportError: a table is missing, unreadable or not a vocalfx eval table (the message names it).

    Example:
        >>> write_eval_report("runs/dev")   # doctest: +SKIP
        PosixPath('runs/dev/summary.html')
    """
    from ..io import atomic_write_text

    out = Path(out_dir)
    metrics, rows = read_results(out / "results.csv")
    summary = read_summary(out / "summary.csv")
    methods = list(dict.fromkeys([*summary, *(str(r["method"]) for r in rows)]))
    main = _MAIN if _MAIN in metrics else metrics[0]
    figures = [_track_bars(rows, methods, main)] + [_box(rows, methods, m) for m in metrics]
    problems = [
        f"{r['track']} × {r['method']}: {r['status']}" + (f" ({r['error']})" if r["error"] else "")
        for r in rows
        if r["status"] != "ok"
    ]
    body = [
        "<p>Lower is better everywhere; MSS and MLDR on L/R are DiffVox's MSS and MLDR, M/S the same on mid/side. "
        "The statistics are over the tracks on which every method finished (as in summary.md); "
        "the figures show every finished cell.</p>",
        "<h2>Mean over tracks</h2>",
        _stat_table(summary, metrics, "mean"),
        "<h2>Median over tracks</h2>",
        _stat_table(summary, metrics, "median"),
        "<h2>Figures</h2>",
        figures[0],
        '<div class="grid">' + "".join(figures[1:]) + "</div>",
    ]
    if problems:
        body += ["<h2>Cells not finished</h2>", "<ul>" + "".join(f"<li>{esc(p)}</li>" for p in problems) + "</ul>"]
    md = out / "summary.md"
    if md.is_file():
        body += [
            "<h2>summary.md</h2>",
            f"<details><summary>as written</summary><pre>{esc(md.read_text(encoding='utf-8'))}</pre></details>",
        ]
    text = page(
        f"vocalfx evaluation: {out.resolve().name}",
        "\n".join(body),
        script=False,
        subtitle=f"{len(methods)} method(s), {len(dict.fromkeys(r['track'] for r in rows))} track(s); "
        f"from {esc(out / 'results.csv')}",
    )
    target = out / "summary.html"
    check_no_nan(text, str(target))
    atomic_write_text(target, text)
    return target
