"""Result cells: one JSON file per track x method, written atomically, read back for the tables."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

import torch

__all__ = [
    "CELL_FORMAT",
    "RUN_FORMAT",
    "FORMAT_VERSION",
    "METRICS",
    "cell_path",
    "write_cell",
    "read_cells",
    "jsonable",
]

CELL_FORMAT = "vocalfx-eval-cell"
RUN_FORMAT = "vocalfx-eval-run"
FORMAT_VERSION = 1
#: Metric keys of a cell, in table order: MSS and MLDR on left/right (DiffVox's published "MSS"
#: and "MLDR"), the same on mid/side, and PMSE.
METRICS: Tuple[str, ...] = ("mss_lr", "mldr_lr", "mss_ms", "mldr_ms", "pmse")


def cell_path(out: Path, track: str, method: str) -> Path:
    """Where the cell of ``track`` x ``method`` lives."""
    return Path(out) / "cells" / track / f"{method}.json"


def jsonable(x: Any) -> Any:
    """``x`` with tensors and arrays turned into lists and unknown objects into strings."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return jsonable(x.detach().cpu().tolist())
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        return jsonable(x.tolist())
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def write_cell(out: Path, cell: Dict[str, Any]) -> None:
    """Write a finished cell atomically (a reader sees the old file or the whole new one)."""
    from ..io import atomic_write_text

    path = cell_path(out, cell["track"], cell["method"])
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(jsonable(cell), indent=1, allow_nan=True) + "\n")


def read_cells(
    out: Path, tracks: Sequence[str], methods: Sequence[str]
) -> Dict[Tuple[str, str], Optional[Dict[str, Any]]]:
    """The cell of every ``(track, method)`` pair, or ``None`` where there is none yet."""
    cells = {}
    for t in tracks:
        for m in methods:
            p = cell_path(out, t, m)
            try:
                c = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                c = None
            cells[(t, m)] = c if isinstance(c, dict) and c.get("format") == CELL_FORMAT else None
    return cells
