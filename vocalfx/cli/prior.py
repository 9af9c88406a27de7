"""``vocalfx prior fit|info|sample``: the Gaussian preset priors of :mod:`vocalfx.prior`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Tuple

from ._common import CLIError, Subparsers

if TYPE_CHECKING:
    from ..prior import GaussianPrior

__all__ = ["register", "run_fit", "run_info", "run_sample"]


def load_prior(spec: Optional[str]) -> Tuple["GaussianPrior", str]:
    """The prior a user named (a file, or ``None``/``"default"``) and how to refer to it."""
    from ..prior import GaussianPrior

    if spec is None or spec == "default":
        return GaussianPrior.default(), "default (shipped)"
    if Path(spec).is_dir():
        raise CLIError(f"{spec}: is a directory, not a prior file")
    return GaussianPrior.load(spec), str(Path(spec))


def run_fit(a: argparse.Namespace) -> int:
    from ..io import atomic_write, check_output_path
    from ..preset import collection_vectors, import_diffvox_collection, load_collection, load_index_file
    from ..prior import GaussianPrior

    src = Path(a.collection)
    if not src.exists():
        raise CLIError(f"{src}: no such file or directory")
    if src.is_dir():
        inputs = [src / "raw_params.npy", src / "feature_mask.npy", src / "info.json"]
        presets, kind = import_diffvox_collection(src), "DiffVox folder"
    else:
        inputs, presets, kind = [src], load_collection(src), "collection"
    total = len(presets)
    if a.index_file:
        inputs.append(Path(a.index_file))
        presets = [presets[i] for i in load_index_file(a.index_file, total)]
    out = check_output_path(a.output, inputs)
    n = len(presets)
    if n < 2:
        raise CLIError(
            f"{src}: a prior needs at least 2 presets, got {n}" + (" (after --index-file)" if a.index_file else "")
        )
    shrinkage = None if a.shrinkage == "none" else a.shrinkage
    source = f"fitted by `vocalfx prior fit` from {kind} {src.name}" + (
        f" rows in {Path(a.index_file).name}" if a.index_file else ""
    )
    prior = GaussianPrior.fit(collection_vectors(presets), shrinkage=shrinkage, source=source)
    atomic_write(out, prior.save, inputs=inputs)  # exactly this path: numpy appends no .npz to a file object
    extra = f", Ledoit-Wolf intensity {prior.shrinkage_intensity:.3g}" if shrinkage else ""
    print(f"fitted a Gaussian prior on {n} of {total} presets from {src} (shrinkage: {a.shrinkage}{extra}) -> {out}")
    if shrinkage is None and n <= prior.dim:
        print(
            f"note: {n} presets in {prior.dim} dimensions give a singular covariance (no density, no sampling); "
            "use --shrinkage ledoit-wolf",
            file=sys.stderr,
        )
    return 0


def run_info(a: argparse.Namespace) -> int:
    prior, where = load_prior(a.prior)
    print(f"prior: {where}")
    print(prior.describe())
    return 0


def run_sample(a: argparse.Namespace) -> int:
    import torch

    from ..preset import Preset
    from ..prior import PriorError

    if a.n < 1:
        raise CLIError(f"-n must be at least 1, got {a.n}")
    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{out}: exists and is a file; -o must be a directory")
    if not out.parent.is_dir():
        raise CLIError(f"{out}: parent directory {str(out.parent)!r} does not exist (it is not created)")
    prior, where = load_prior(a.prior)
    try:
        vectors = prior.sample(a.n, generator=torch.Generator().manual_seed(a.seed))
    except PriorError as e:
        raise CLIError(f"{where}: {e} (`vocalfx prior fit ... --shrinkage ledoit-wolf`)") from None
    out.mkdir(exist_ok=True)
    inputs = [] if a.prior in (None, "default") else [Path(a.prior)]
    width = max(3, len(str(a.n - 1)))
    for i, v in enumerate(vectors):
        name = f"sample_{i:0{width}d}"
        source = f"sample {i} of prior {where} (seed {a.seed})"
        Preset.from_vector(v, name=name, source=source).to_json(out / f"{name}.json", inputs=inputs)
    print(f"wrote {a.n} presets sampled from prior {where} (seed {a.seed}) to {out}/sample_{0:0{width}d}.json ..")
    return 0


def register(sub: Subparsers) -> None:
    pr = sub.add_parser("prior", help="fit, inspect and sample Gaussian preset priors")
    prsub = pr.add_subparsers(dest="prior_command", metavar="ACTION")
    prsub.required = True
    pf = prsub.add_parser(
        "fit",
        help="fit a Gaussian prior (mean, covariance of the raw vectors) to a preset collection",
        description="Fit N(mean, cov) to the 130-value raw vectors of a collection. COLLECTION is a vocalfx "
        "collection JSON (or a single preset) or a DiffVox preset folder (raw_params.npy, feature_mask.npy).",
    )
    pf.add_argument("collection", help="collection JSON or DiffVox preset folder")
    pf.add_argument("-o", "--output", required=True, help="prior file to write (.npz; written to exactly this path)")
    pf.add_argument(
        "--shrinkage",
        choices=["none", "ledoit-wolf"],
        default="none",
        help="covariance estimator: 'none' = unbiased sample covariance (DiffVox); 'ledoit-wolf' = shrunk towards a "
        "scaled identity, needed when the collection has no more presets than the 130 dimensions (default: none)",
    )
    pf.add_argument("--index-file", default=None, help="a .npy of row indices to use (e.g. DiffVox's train_index.npy)")
    pf.set_defaults(func=run_fit)
    pi = prsub.add_parser(
        "info",
        help="describe a prior: size, layout, shrinkage, condition number, per-parameter mean and spread",
        description="Print a prior's size, layout, shrinkage and covariance condition number, then a table of every "
        "parameter in physical units (Hz, dB, ms, ratio, pan -100..100, T60 s): its value at the raw mean, and the "
        "spread as the raw mean -1 sd and +1 sd (marginal standard deviation) mapped through the parameter map. "
        "The maps are monotone (except comp.lookahead_ms, which folds at 0 ms), so these are the 16th and 84th "
        "percentiles of the marginal in physical units.",
    )
    pi.add_argument(
        "prior", nargs="?", default=None, help="prior .npz file, or 'default' for the shipped prior (default)"
    )
    pi.set_defaults(func=run_info)
    ps = prsub.add_parser("sample", help="write N presets drawn from a prior (sample_000.json, ...)")
    ps.add_argument("prior", help="prior .npz file, or 'default' for the shipped prior")
    ps.add_argument("-n", type=int, required=True, help="number of presets")
    ps.add_argument(
        "-o", "--output", required=True, help="directory to write into (created if missing; must not be a file)"
    )
    ps.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    ps.set_defaults(func=run_sample)
