"""Rebuild the Gaussian prior shipped with vocalfx (``priors/diffvox-internal.npz``).

Fits :class:`vocalfx.prior.GaussianPrior` (sample mean, covariance normalised by N - 1, no
shrinkage) to the training presets of the DiffVox internal collection:
``raw_params.npy[train_index.npy]`` (365 of 385 presets), converted from DiffVox's 151-value
layout to vocalfx's 130 values with :func:`vocalfx.params.from_diffvox`. The provenance (input
file SHA-256 digests, preset count) is written into the file's ``source`` field.

Usage (from the repository root, with vocalfx installed, e.g. ``pip install -e .``)::

    .venv/bin/python scripts/fit_default_prior.py ../shared/diffvox-presets/internal

Exit codes: 0 written, 1 input missing or invalid.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

from vocalfx.params import LAYOUT_ID, from_diffvox
from vocalfx.prior import GaussianPrior

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_COLLECTION = ROOT.parent / "shared" / "diffvox-presets" / "internal"
DEFAULT_OUTPUT = ROOT / "priors" / "diffvox-internal.npz"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fit_internal(collection: Path) -> GaussianPrior:
    """Fit the prior from a DiffVox collection directory holding raw_params.npy and train_index.npy."""
    raw_path, idx_path = collection / "raw_params.npy", collection / "train_index.npy"
    for f in (raw_path, idx_path):
        if not f.is_file():
            raise FileNotFoundError(f"{f} not found (expected a DiffVox preset collection directory)")
    raw = np.load(raw_path)
    train_index = np.load(idx_path)
    vectors = from_diffvox(raw[train_index])
    source = (
        f"DiffVox internal collection (Yu et al. 2025, github.com/SonyResearch/diffvox, MIT): "
        f"{len(train_index)} training presets of {raw.shape[0]}, raw_params.npy[train_index.npy] "
        f"mapped 151->130 by vocalfx.params.from_diffvox (layout {LAYOUT_ID}); "
        f"raw_params.npy sha256 {sha256(raw_path)}, train_index.npy sha256 {sha256(idx_path)}; "
        f"fitted by scripts/fit_default_prior.py (no shrinkage, covariance / (N - 1))"
    )
    return GaussianPrior.fit(vectors, shrinkage=None, source=source)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "collection",
        nargs="?",
        type=Path,
        default=DEFAULT_COLLECTION,
        help=f"DiffVox internal collection directory (default: {DEFAULT_COLLECTION})",
    )
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"output .npz (default: {DEFAULT_OUTPUT})")
    args = ap.parse_args(argv)
    try:
        prior = fit_internal(args.collection)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    args.output.parent.mkdir(parents=True, exist_ok=True)
    prior.save(args.output)
    cov = prior.cov.numpy()
    print(f"wrote {args.output}: {prior!r}")
    print(f"  log det cov = {prior.log_det_cov:.4f}, condition number = {np.linalg.cond(cov):.4g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
