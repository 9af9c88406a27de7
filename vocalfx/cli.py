"""The ``vocalfx`` command line: a thin layer over the public API.

Exit codes: 0 success, 1 bad input or a failed job (one line on stderr naming the file and the
problem), 2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import List, Optional

__all__ = ["main"]


class CLIError(Exception):
    """An error to report as one line, exit code 1."""


def _fail(msg: str) -> int:
    print(f"vocalfx: error: {msg}", file=sys.stderr)
    return 1


def _peak_db(y) -> float:
    import math

    p = float(y.abs().max())
    return 20 * math.log10(p) if p > 0 else float("-inf")


# --- render ---------------------------------------------------------------------------------
def cmd_render(a: argparse.Namespace) -> int:
    from .io import audio_info, load_audio, save_audio
    from .params import SAMPLE_RATE
    from .render import render, resolve_preset

    out = Path(a.output)
    _refuse_same(out, [Path(a.dry)] + ([Path(a.preset)] if Path(a.preset).is_file() else []))
    preset = resolve_preset(a.preset, a.index)
    info = audio_info(a.dry)
    dry = load_audio(a.dry, sample_rate=SAMPLE_RATE, mono=True)
    t0 = time.perf_counter()
    y = render(dry, preset, SAMPLE_RATE, dtype=torch_dtype(a.precision))
    dt = time.perf_counter() - t0
    save_audio(out, y, SAMPLE_RATE, inputs=[a.dry])
    conv = []
    if info.channels != 1:
        conv.append(f"{info.channels} channels averaged to mono")
    if info.sample_rate != SAMPLE_RATE:
        conv.append(f"resampled {info.sample_rate} -> {SAMPLE_RATE} Hz")
    print(
        f"rendered {a.dry} ({info.frames / info.sample_rate:.2f} s{'; ' + ', '.join(conv) if conv else ''}) "
        f"with preset '{preset.name}' in {dt:.2f} s -> {out} (stereo, {SAMPLE_RATE} Hz, peak {_peak_db(y):+.1f} dBFS)"
    )
    if _peak_db(y) > 0:
        print("note: the output peaks above 0 dBFS; it is stored as float, nothing was clipped", file=sys.stderr)
    return 0


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[name]


def _refuse_same(out: Path, inputs: List[Path]) -> None:
    import os

    for p in inputs:
        if p.exists() and out.exists() and os.path.samefile(p, out):
            raise CLIError(f"{out}: refusing to overwrite an input file")
        if out.resolve() == p.resolve():
            raise CLIError(f"{out}: refusing to overwrite an input file")


# --- preset -----------------------------------------------------------------------------------
def cmd_preset_show(a: argparse.Namespace) -> int:
    from .preset import load_collection
    from .render import resolve_preset

    p = Path(a.file)
    if p.is_file() and a.index is None:
        presets = load_collection(p)
        if len(presets) > 1:
            print(f"{p}: collection of {len(presets)} presets (show one with --index N)")
            for i, pr in enumerate(presets):
                print(f"  {i:4d}  {pr.name}")
            return 0
    print(resolve_preset(a.file, a.index).table())
    return 0


def cmd_preset_list(a: argparse.Namespace) -> int:
    from ._data import data_path
    from .preset import load_collection

    for pr in load_collection(data_path("presets", "vocalfx-starter.json")):
        print(f"{pr.name:<16} {pr.source}")
    return 0


def cmd_preset_import(a: argparse.Namespace) -> int:
    from .preset import import_diffvox_collection, save_collection

    presets = import_diffvox_collection(a.directory)
    save_collection(presets, a.output, name=Path(a.directory).name, source=f"imported from DiffVox folder {a.directory}")
    print(f"imported {len(presets)} presets from {a.directory} -> {a.output}")
    return 0


# --- fit-pair ---------------------------------------------------------------------------------
def cmd_fit_pair(a: argparse.Namespace) -> int:
    from .fit import FitError, fit_pair
    from .io import _check_output_path, audio_info, load_audio
    from .params import SAMPLE_RATE
    from .render import resolve_preset

    out = Path(a.output)
    inputs = [Path(a.dry), Path(a.wet)] + ([Path(a.init)] if a.init and Path(a.init).is_file() else [])
    _refuse_same(out, inputs)
    _check_output_path(out, inputs)  # fail now, not after minutes of fitting
    if a.steps < 0:
        raise CLIError(f"--steps must be >= 0, got {a.steps}")
    if a.batch_size < 0:
        raise CLIError(f"--batch-size must be >= 0, got {a.batch_size}")
    init = resolve_preset(a.init) if a.init else None
    notes = []
    for path in (a.dry, a.wet):
        info = audio_info(path)
        if info.sample_rate != SAMPLE_RATE:
            notes.append(f"{path}: resampled {info.sample_rate} -> {SAMPLE_RATE} Hz")
        if path == a.dry and info.channels > 1:
            notes.append(f"{path}: {info.channels} channels averaged to mono")
    wet_info = audio_info(a.wet)
    if wet_info.channels != 2:
        raise CLIError(f"{a.wet}: the wet file must be stereo (2 channels), it has {wet_info.channels}")
    dry = load_audio(a.dry, sample_rate=SAMPLE_RATE, mono=True)
    wet = load_audio(a.wet, sample_rate=SAMPLE_RATE, mono=False)
    for n in notes:
        print(f"note: {n}", file=sys.stderr)
    try:
        res = fit_pair(
            dry, wet, SAMPLE_RATE, steps=a.steps, lr=a.lr, batch_size=a.batch_size or None, init=init,
            seed=a.seed, progress=not a.quiet, name=a.name or out.stem,
        )
    except FitError as e:
        raise CLIError(f"{a.dry} + {a.wet}: {e}") from None
    res.preset.source = f"vocalfx fit-pair {Path(a.dry).name} -> {Path(a.wet).name} (dry at -18 LUFS in, wet at -18 LUFS out)"
    res.preset.to_json(out, inputs=inputs)
    print(res.report.summary())
    print(f"wrote {out} (apply it to a dry vocal normalised to -18 LUFS)")
    return 0


# --- prior ------------------------------------------------------------------------------------
def _load_prior(spec: Optional[str]):
    from .prior import GaussianPrior

    if spec is None or spec == "default":
        return GaussianPrior.default(), "default (shipped)"
    p = Path(spec)
    if p.is_dir():
        raise CLIError(f"{spec}: is a directory, not a prior file")
    return GaussianPrior.load(p), str(p)


def cmd_prior_fit(a: argparse.Namespace) -> int:
    from .preset import collection_vectors, import_diffvox_collection, load_collection
    from .prior import GaussianPrior

    src = Path(a.collection)
    if not src.exists():
        raise CLIError(f"{src}: no such file or directory")
    out = Path(a.output)
    if src.is_dir():
        inputs = [src / "raw_params.npy", src / "feature_mask.npy", src / "info.json"]
        presets = import_diffvox_collection(src)
        kind = "DiffVox folder"
    else:
        inputs = [src]
        presets = load_collection(src)
        kind = "collection"
    total = len(presets)
    if a.index_file:
        inputs.append(Path(a.index_file))
        idx = _read_index_file(a.index_file, total)
        presets = [presets[i] for i in idx]
    _refuse_same(out, [p for p in inputs if p.exists()])
    n = len(presets)
    if n < 2:
        raise CLIError(f"{src}: a prior needs at least 2 presets, got {n}" + (" (after --index-file)" if a.index_file else ""))
    shrinkage = None if a.shrinkage == "none" else a.shrinkage
    source = f"fitted by `vocalfx prior fit` from {kind} {src.name}" + (f" rows in {Path(a.index_file).name}" if a.index_file else "")
    prior = GaussianPrior.fit(collection_vectors(presets), shrinkage=shrinkage, source=source)
    _save_prior(prior, out, inputs)
    extra = f", Ledoit-Wolf intensity {prior.shrinkage_intensity:.3g}" if shrinkage else ""
    print(f"fitted a Gaussian prior on {n} of {total} presets from {src} (shrinkage: {a.shrinkage}{extra}) -> {out}")
    if shrinkage is None and n <= prior.dim:
        print(
            f"note: {n} presets in {prior.dim} dimensions give a singular covariance (no density, no sampling); "
            "use --shrinkage ledoit-wolf",
            file=sys.stderr,
        )
    return 0


def _read_index_file(path: str, total: int):
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CLIError(f"{path}: no such file")
    try:
        idx = np.load(p, allow_pickle=False)
    except Exception as e:  # numpy raises several types for corrupt files
        raise CLIError(f"{path}: cannot read as a .npy index array ({type(e).__name__})") from None
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise CLIError(f"{path}: expected a 1-D integer array of row indices, got {idx.dtype} shape {idx.shape}")
    bad = idx[(idx < 0) | (idx >= total)]
    if bad.size:
        raise CLIError(f"{path}: index {int(bad[0])} is out of range for a collection of {total} presets")
    return [int(i) for i in idx]


def _save_prior(prior, out: Path, inputs) -> None:
    """Write a prior's .npz atomically to exactly ``out`` (no ``.npz`` appended)."""
    import io as _io

    from .io import _atomic_write, _check_output_path

    target = _check_output_path(out, inputs)
    buf = _io.BytesIO()
    prior.save(buf)
    data = buf.getvalue()
    _atomic_write(target, out, lambda f: f.write(data))


def cmd_prior_info(a: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from . import params as P

    prior, where = _load_prior(a.prior)
    mean = prior.mean.numpy()
    cov = prior.cov.numpy()
    sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    eig = np.linalg.eigvalsh(cov)
    cond = "inf (singular: not positive definite)" if eig[0] <= 0 else f"{eig[-1] / eig[0]:.4g}"
    shrink = "none" if prior.shrinkage is None else f"{prior.shrinkage} (intensity {prior.shrinkage_intensity:.3g})"
    print(f"prior: {where}")
    print(f"source: {prior.source or '(not recorded)'}")
    print(f"size: {prior.dim} parameters, fitted from {prior.n_presets if prior.n_presets is not None else 'an unknown number of'} presets")
    print(f"layout: {P.LAYOUT_ID}")
    print(f"shrinkage: {shrink}")
    print(f"condition number of the covariance: {cond} (eigenvalues {eig[0]:.3g} .. {eig[-1]:.3g})")

    def disp(raw):
        return P.native_to_display(P.raw_to_native(torch.from_numpy(raw)).numpy())

    at_mean, at_lo, at_hi = disp(mean), disp(mean - sd), disp(mean + sd)
    print()
    print("Per parameter, in physical units: the value at the raw mean, and the raw mean -1 sd and +1 sd mapped")
    print("through the parameter map (for these monotone maps: the 16th and 84th percentiles of the marginal).")
    print(f"{'parameter':<32} {'unit':<6} {'mean':>11}   {'16%':>11} .. {'84%':<11} {'raw mean':>9} {'raw sd':>8}")
    for i, s in enumerate(P.SPECS):
        key = s.name.split(".", 1)[1] + ("_ms" if s.display == "ms" else "")
        unit = "pan" if s.display == "pan" else s.unit
        lo, hi = sorted((at_lo[i], at_hi[i]))
        print(f"{s.module + '.' + key:<32} {unit:<6} {at_mean[i]:>11.4g}   {lo:>11.4g} .. {hi:<11.4g} {mean[i]:>9.3f} {sd[i]:>8.3f}")
    return 0


def cmd_prior_sample(a: argparse.Namespace) -> int:
    import torch

    from .preset import Preset

    if a.n < 1:
        raise CLIError(f"-n must be at least 1, got {a.n}")
    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise CLIError(f"{out}: exists and is a file; -o must be a directory")
    if not out.parent.is_dir():
        raise CLIError(f"{out}: parent directory {str(out.parent)!r} does not exist (it is not created)")
    prior, where = _load_prior(a.prior)
    try:
        vectors = prior.sample(a.n, generator=torch.Generator().manual_seed(a.seed))
    except ValueError as e:
        raise CLIError(f"{where}: {e} (`vocalfx prior fit ... --shrinkage ledoit-wolf`)") from None
    out.mkdir(exist_ok=True)
    inputs = [] if a.prior in (None, "default") else [Path(a.prior)]
    width = max(3, len(str(a.n - 1)))
    for i, v in enumerate(vectors):
        name = f"sample_{i:0{width}d}"
        Preset.from_vector(v, name=name, source=f"sample {i} of prior {where} (seed {a.seed})").to_json(
            out / f"{name}.json", inputs=inputs
        )
    print(f"wrote {a.n} presets sampled from prior {where} (seed {a.seed}) to {out}/sample_{0:0{width}d}.json ..")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vocalfx", description="Differentiable vocal-effects style transfer.")
    from . import __version__

    ap.add_argument("--version", action="version", version=f"vocalfx {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    r = sub.add_parser(
        "render",
        help="render a preset onto a dry vocal",
        description="Render a preset onto a dry vocal. The input (WAV/FLAC/OGG, MP3 where libsndfile "
        "supports it; any rate and channel count) is averaged to mono and resampled to 44.1 kHz; the "
        "output is stereo 44.1 kHz, written atomically, never clipped or normalised.",
    )
    r.add_argument("dry", help="dry vocal audio file")
    r.add_argument("preset", help="preset JSON file, collection file (with --index), or a shipped preset name (see `vocalfx preset list`)")
    r.add_argument("-o", "--output", required=True, help="output audio file (.wav: 32-bit float, .flac: 24-bit)")
    r.add_argument("--index", type=int, default=None, help="preset index when PRESET is a collection")
    r.add_argument("--precision", choices=["float32", "float64"], default="float32", help="computation precision (default: float32)")
    r.set_defaults(func=cmd_render)

    p = sub.add_parser("preset", help="show, list and import presets")
    psub = p.add_subparsers(dest="preset_command", metavar="ACTION")
    psub.required = True
    s = psub.add_parser("show", help="print a preset as a table (units: Hz, dB, ms, ratio, pan -100..100, T60 s)")
    s.add_argument("file", help="preset or collection file, or a shipped preset name")
    s.add_argument("--index", type=int, default=None, help="preset index in a collection")
    s.set_defaults(func=cmd_preset_show)
    ls = psub.add_parser("list", help="list the presets shipped with vocalfx")
    ls.set_defaults(func=cmd_preset_list)
    im = psub.add_parser("import-diffvox", help="convert a DiffVox preset folder (raw_params.npy, feature_mask.npy, info.json) into a collection")
    im.add_argument("directory")
    im.add_argument("-o", "--output", required=True, help="collection JSON to write")
    im.set_defaults(func=cmd_preset_import)

    from .fit import DEFAULT_LR as FIT_LR, DEFAULT_STEPS as FIT_STEPS

    f = sub.add_parser(
        "fit-pair",
        help="fit a preset to a dry/wet vocal pair (as DiffVox built its preset collections)",
        description="Fit the 130 chain parameters so that the chain's render of DRY matches WET: align the "
        "pair by cross-correlation (GCC-PHAT), normalise both to -18 LUFS, cut 12 s chunks (5 s warm-up), and run Adam on "
        "1.0 MSS(L/R) + 0.5 MSS(M/S) + 0.5 MLDR(L/R) + 0.25 MLDR(M/S), keeping the lowest-loss parameters. "
        "Starts from the shipped prior's mean; one randomly drawn chunk per step. The preset expects a dry "
        "input at -18 LUFS. Cost on two idle CPU cores: about 1.6 s per step, so about 3 minutes for the "
        "default steps on a 30 s pair (docs/fit-pair.md).",
    )
    f.add_argument("dry", help="dry vocal (averaged to mono, resampled to 44.1 kHz)")
    f.add_argument("wet", help="processed vocal, stereo (resampled to 44.1 kHz)")
    f.add_argument("-o", "--output", required=True, help="preset JSON to write (never one of the inputs)")
    f.add_argument("--steps", type=int, default=FIT_STEPS, help=f"Adam steps (default: {FIT_STEPS})")
    f.add_argument("--seed", type=int, default=0, help="seed for the chunk draws with --batch-size (default: 0)")
    f.add_argument("--lr", type=float, default=FIT_LR, help=f"initial Adam learning rate on the raw values, cosine-decayed to a tenth (default: {FIT_LR})")
    f.add_argument("--batch-size", type=int, default=1, help="chunks scored per step, drawn at random; 0 = all chunks every step (default: 1)")
    f.add_argument("--init", default=None, help="starting preset (file or shipped name; default: the shipped prior's mean)")
    f.add_argument("--name", default=None, help="name stored in the preset (default: the output file's stem)")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=cmd_fit_pair)

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
        "--shrinkage", choices=["none", "ledoit-wolf"], default="none",
        help="covariance estimator: 'none' = unbiased sample covariance (DiffVox); 'ledoit-wolf' = shrunk towards a "
        "scaled identity, needed when the collection has no more presets than the 130 dimensions (default: none)",
    )
    pf.add_argument("--index-file", default=None, help="a .npy of row indices to use (e.g. DiffVox's train_index.npy)")
    pf.set_defaults(func=cmd_prior_fit)
    pi = prsub.add_parser(
        "info",
        help="describe a prior: size, layout, shrinkage, condition number, per-parameter mean and spread",
        description="Print a prior's size, layout, shrinkage and covariance condition number, then a table of every "
        "parameter in physical units (Hz, dB, ms, ratio, pan -100..100, T60 s): its value at the raw mean, and the "
        "spread as the raw mean -1 sd and +1 sd (marginal standard deviation) mapped through the parameter map. "
        "The maps are monotone (except comp.lookahead_ms, which folds at 0 ms), so these are the 16th and 84th "
        "percentiles of the marginal in physical units.",
    )
    pi.add_argument("prior", nargs="?", default=None, help="prior .npz file, or 'default' for the shipped prior (default)")
    pi.set_defaults(func=cmd_prior_info)
    ps = prsub.add_parser("sample", help="write N presets drawn from a prior (sample_000.json, ...)")
    ps.add_argument("prior", help="prior .npz file, or 'default' for the shipped prior")
    ps.add_argument("-n", type=int, required=True, help="number of presets")
    ps.add_argument("-o", "--output", required=True, help="directory to write into (created if missing; must not be a file)")
    ps.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    ps.set_defaults(func=cmd_prior_sample)

    for name in _EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:  # an extension not built yet in this checkout
            if e.name != name:
                raise
            continue
        module.register(sub)

    return ap


# Sub-commands that live beside the code they drive: each module has ``register(subparsers)``,
# which adds its parser(s) and sets ``func`` to a callable ``(argparse.Namespace) -> int``.
_EXTENSIONS: List[str] = ["vocalfx.cli_match", "vocalfx.separate.cli", "vocalfx.evaluation.cli"]


def main(argv: Optional[List[str]] = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    from .io import AudioError
    from .preset import PresetError
    from .errors import VocalfxError

    try:
        return a.func(a)
    except (CLIError, AudioError, PresetError, VocalfxError) as e:
        return _fail(str(e))
    except FileNotFoundError as e:
        return _fail(f"{e.filename or ''}: {e.strerror or e}" if e.filename else str(e))
    except ValueError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted")
    except BrokenPipeError:
        # The reader went away (e.g. `vocalfx preset show X | head`): stop quietly, as Unix tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
