"""``vocalfx match``: the command-line face of :func:`vocalfx.ito.match`."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .errors import VocalfxError

__all__ = ["register"]


class _Error(VocalfxError):
    pass


def _preset_path(out: Path, given) -> Path:
    if given:
        return Path(given)
    return out.with_name(out.stem + ".preset.json")


def cmd_match(a: argparse.Namespace) -> int:
    import torch

    from .io import _check_output_path, atomic_write_text, audio_info, load_audio, save_audio
    from .ito import match
    from .params import SAMPLE_RATE
    from .render import resolve_preset

    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.output)
    preset_out = _preset_path(out, a.preset_out)
    inputs = [Path(a.dry), Path(a.reference)] + [Path(p) for p in (a.init, a.prior, a.afx_rep) if p and Path(p).is_file()]
    outputs = [out, preset_out] + ([Path(a.report)] if a.report else [])
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise _Error(f"the output paths must differ: {', '.join(map(str, outputs))}")
    for o in outputs:
        _check_output_path(o, inputs)  # fail now, not after minutes of optimisation
    if a.steps is not None and a.steps < 0:
        raise _Error(f"--steps must be >= 0, got {a.steps}")
    if a.encoder != "afx-rep" and a.afx_rep:
        raise _Error("--afx-rep is only used with --encoder afx-rep")
    if a.model_dir and not a.separate:
        raise _Error("--model-dir is only used with --separate")

    notes = []
    dinfo = audio_info(a.dry)
    if dinfo.sample_rate != SAMPLE_RATE:
        notes.append(f"{a.dry}: resampled {dinfo.sample_rate} -> {SAMPLE_RATE} Hz")
    rinfo = audio_info(a.reference)
    if rinfo.sample_rate != SAMPLE_RATE:
        notes.append(f"{a.reference}: resampled {rinfo.sample_rate} -> {SAMPLE_RATE} Hz")
    reference = load_audio(a.reference, sample_rate=SAMPLE_RATE, mono=False)
    if reference.shape[0] > 2:
        raise _Error(f"{a.reference}: {reference.shape[0]} channels; the reference must be mono or stereo")
    separated_with = None
    if a.separate:
        from .separate import get_separator, separate

        sep = get_separator(a.backend, **({"model_dir": a.model_dir} if a.model_dir else {}))
        vocals, _ = separate(reference, SAMPLE_RATE, backend=sep, progress=not a.quiet)
        separated_with = sep.describe()
        if not torch.isfinite(vocals).all() or float(vocals.abs().amax()) == 0.0:
            raise _Error(f"{a.reference}: separation ({a.backend}) returned no usable vocal")
        reference = vocals
        notes.append(f"{a.reference}: vocal isolated with {separated_with}")
    for n in notes:
        print(f"note: {n}", file=sys.stderr)

    prior = None
    if a.prior:
        from .prior import GaussianPrior

        prior = GaussianPrior.default() if a.prior == "default" else GaussianPrior.load(a.prior)
    init = resolve_preset(a.init) if a.init else None
    options = {"checkpoint": a.afx_rep} if a.encoder == "afx-rep" and a.afx_rep else None
    res = match(
        a.dry, reference, SAMPLE_RATE,
        encoder=a.encoder, alpha=a.alpha, steps=a.steps, seed=a.seed, lr=a.lr, space=a.space, prior=prior, init=init,
        chunk_seconds=a.chunk_seconds, normalize_reference=not a.keep_reference_level,
        encoder_options=options, progress=not a.quiet, name=a.name or out.stem,
    )
    res.preset.source = (
        f"vocalfx match {Path(a.dry).name} -> {Path(a.reference).name} ({a.encoder}, alpha {a.alpha:g}"
        + (f", vocal separated with {separated_with}" if separated_with else "")
        + "; dry at -18 LUFS in)"
    )
    if separated_with:
        res.preset.extra.setdefault("match", {})["separation_backend"] = separated_with
    save_audio(out, res.audio, res.sample_rate, inputs=inputs)
    res.preset.to_json(preset_out, inputs=inputs)
    if a.report:
        doc = {"report": res.report.to_dict(), "history": res.history, "separation_backend": separated_with,
               "dry": str(a.dry), "reference": str(a.reference), "output": str(out), "preset": str(preset_out)}
        atomic_write_text(a.report, json.dumps(doc, indent=1, default=_json_default) + "\n", inputs=inputs)
    print(res.report.summary())
    if separated_with:
        print(f"reference vocal isolated with {separated_with}")
    print(f"wrote {out} (stereo, {res.sample_rate} Hz) and {preset_out}")
    if res.report.output_peak_dbfs > 0:
        print("note: the output peaks above 0 dBFS; it is stored as float, nothing was clipped", file=sys.stderr)
    return 0


def _json_default(x):
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def register(sub) -> None:
    from .ito import CHUNK_SECONDS, DEFAULT_LR, DEFAULT_STEPS

    m = sub.add_parser(
        "match",
        help="process a dry vocal so that it sounds like a reference vocal (inference-time optimisation)",
        description="Find the vocal-chain preset that makes DRY sound like REFERENCE and write the processed "
        "vocal and the preset. Both are normalised to -18 LUFS and cut into 11 s chunks; Adam minimises the "
        "angular distance between audio-encoder embeddings of the rendered dry chunks and the reference chunks "
        "(mid and side), minus alpha times the log-density of the preset under a Gaussian prior (MAP), starting "
        "from the prior mean. The output is the whole dry vocal at -18 LUFS through the preset (stereo, "
        "44.1 kHz; not normalised or clipped). With --separate, REFERENCE may be a full song: its vocal is "
        "isolated first. See docs/match.md.",
    )
    m.add_argument("dry", help="dry vocal (mono; a file whose channels are identical counts as mono; resampled to 44.1 kHz)")
    m.add_argument("reference", help="reference vocal, mono or stereo, at least one chunk (11 s) long; a full song with --separate")
    m.add_argument("-o", "--output", required=True, help="processed vocal to write (.wav: 32-bit float, .flac: 24-bit)")
    m.add_argument("--preset-out", default=None, help="preset JSON to write (default: OUTPUT's name with .preset.json)")
    m.add_argument("--report", default=None, help="also write the run's report and loss history as JSON")
    m.add_argument("--encoder", default="mfcc", help="embedding: mfcc (default), mir, afx-rep (needs --afx-rep or VOCALFX_AFX_REP)")
    m.add_argument("--afx-rep", default=None, metavar="PATH", help="AFx-Rep checkpoint file (docs/afx-rep.md says where to get it)")
    m.add_argument("--alpha", type=float, default=1.0, help="prior weight, 0 = no prior (default: 1)")
    m.add_argument("--steps", type=int, default=None, help=f"Adam steps (default: {DEFAULT_STEPS})")
    m.add_argument("--lr", type=float, default=None, help=f"initial learning rate, cosine-decayed to a tenth (default: {DEFAULT_LR})")
    m.add_argument("--space", default="raw", choices=("raw", "whitened"),
                   help="where Adam steps: raw values (default, as DiffVox) or the prior's whitened coordinates, lr in prior standard deviations (docs/match.md)")
    m.add_argument("--seed", type=int, default=0, help="seed; the same seed and inputs give the same result (default: 0)")
    m.add_argument("--prior", default=None, help="prior .npz (from `vocalfx prior fit`) or 'default' (the shipped prior)")
    m.add_argument("--init", default=None, help="starting preset (file or shipped name; default: the prior mean)")
    m.add_argument("--chunk-seconds", type=float, default=CHUNK_SECONDS, help=f"chunk length in s (default: {CHUNK_SECONDS:g})")
    m.add_argument("--keep-reference-level", action="store_true",
                   help="do not normalise the reference to -18 LUFS; the preset then also matches its loudness")
    m.add_argument("--separate", action="store_true", help="REFERENCE is a full mix: isolate its vocal first")
    m.add_argument("--backend", default="classical", help="separation backend with --separate (default: classical; demucs)")
    m.add_argument("--model-dir", default=None,
                   help="with --separate --backend demucs: directory with the Demucs model files (docs/separate.md)")
    m.add_argument("--name", default=None, help="name stored in the preset (default: OUTPUT's stem)")
    m.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    m.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=cmd_match)
