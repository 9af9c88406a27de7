"""``vocalfx match DRY REFERENCE -o OUT``: :func:`vocalfx.matching.match` on files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import defaults as D
from ._common import (
    MODEL_DIR_HINT,
    CLIError,
    Subparsers,
    check_at_least,
    conversion_notes,
    existing_files,
    print_notes,
    report_format,
    resolve_preset,
    write_match_report_file,
)

__all__ = ["register", "run"]


def _check_arguments(a: argparse.Namespace) -> tuple:
    """Everything that can be refused before audio is read: ``(out, preset_out, inputs)``.

    Unset ``--encoder/--init/--alpha/--steps/--lr`` take the match defaults, or with
    ``--separate`` the separated-reference defaults (a separated vocal keeps some accompaniment,
    docs/guide/separation.md).
    """
    from ..io import check_output_path
    from ..matching import MatchError, check_steering

    out = Path(a.output)
    preset_out = Path(a.preset_out) if a.preset_out else out.with_name(out.stem + ".preset.json")
    inputs = [Path(a.dry), Path(a.reference)] + existing_files(a.init, a.prior, a.afx_rep)
    outputs = [out, preset_out] + ([Path(a.report)] if a.report else [])
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise CLIError(f"the output paths must differ: {', '.join(map(str, outputs))}")
    for o in outputs:
        check_output_path(o, inputs)  # fail now, not after minutes of optimisation
    if a.report:
        report_format(a.report)
    check_at_least("--steps", a.steps, 0)
    for key in ("encoder", "init", "alpha", "steps", "lr"):
        if getattr(a, key) is None:
            setattr(a, key, getattr(D, ("SEPARATED_" if a.separate else "MATCH_") + key.upper()))
    if "afx-rep" not in a.encoder.split("+") and a.afx_rep:
        raise CLIError("--afx-rep is only used with --encoder afx-rep")
    if a.model_dir and not a.separate:
        raise CLIError("--model-dir is only used with --separate")
    steering = (("--only", (a.only, 1.0, None)), ("--strength", (None, a.strength, None)))
    for flag, args in steering + (("--level", (a.only, 1.0, a.level)),):
        try:  # now, not after the separation
            check_steering(*args)
        except MatchError as e:
            raise CLIError(f"{flag}: {e}") from None
    return out, preset_out, inputs


def _reference(a: argparse.Namespace, notes: list):
    """The reference as the match takes it (its vocal isolated with ``--separate``), and the separator used."""
    import torch

    from ..io import load_audio
    from ..params import SAMPLE_RATE

    reference = load_audio(a.reference, sample_rate=SAMPLE_RATE, mono=False)
    if reference.shape[0] > 2:
        raise CLIError(f"{a.reference}: {reference.shape[0]} channels; the reference must be mono or stereo")
    if not a.separate:
        return reference, None
    from ..separate import AUTO, ModelNotFoundError, get_separator, resolve_auto, separate

    backend = a.backend
    try:
        if backend == AUTO:
            backend, fallback = resolve_auto(a.model_dir)
            if fallback:
                notes.append(fallback)
        sep = get_separator(backend, **({"model_dir": a.model_dir} if a.model_dir else {}))
    except ModelNotFoundError as e:
        raise CLIError(f"{e}{MODEL_DIR_HINT}") from None
    vocals, _ = separate(reference, SAMPLE_RATE, backend=sep, progress=not a.quiet)
    if not torch.isfinite(vocals).all() or float(vocals.abs().amax()) == 0.0:
        raise CLIError(f"{a.reference}: separation ({backend}) returned no usable vocal")
    notes.append(f"{a.reference}: vocal isolated with {sep.describe()}")
    return vocals, sep.describe()


def run(a: argparse.Namespace) -> int:
    import torch

    from ..io import audio_info, save_audio
    from ..matching import match
    from ..params import SAMPLE_RATE

    if a.threads:
        torch.set_num_threads(a.threads)  # this process is the command's own
    out, preset_out, inputs = _check_arguments(a)
    notes = conversion_notes(a.dry, audio_info(a.dry), SAMPLE_RATE)
    notes += conversion_notes(a.reference, audio_info(a.reference), SAMPLE_RATE)
    reference, separated_with = _reference(a, notes)
    print_notes(notes)
    prior = None
    if a.prior:
        from ..prior import GaussianPrior

        prior = GaussianPrior.default() if a.prior == "default" else GaussianPrior.load(a.prior)
    init = a.init if a.init in (None, "mean", "predicted") else resolve_preset(a.init)
    options = {"checkpoint": a.afx_rep} if "afx-rep" in a.encoder.split("+") and a.afx_rep else {}
    res = match(
        a.dry, reference, SAMPLE_RATE, prior=prior, normalize_reference=not a.keep_reference_level,
        progress=not a.quiet, name=a.name or out.stem, encoder=a.encoder, alpha=a.alpha, steps=a.steps, lr=a.lr,
        space=a.space, init=init, chunk_seconds=a.chunk_seconds, encoder_options=options, groups=a.only,
        strength=a.strength, level=a.level, lossy_reference={"auto": None, "yes": True, "no": False}[a.lossy_reference],
    )  # fmt: skip
    separated = f", vocal separated with {separated_with}" if separated_with else ""
    res.preset.source = (
        f"vocalfx match {Path(a.dry).name} -> {Path(a.reference).name} ({a.encoder}, alpha {a.alpha:g}{separated}"
        "; dry at -18 LUFS in)"
    )
    if separated_with:
        res.preset.extra.setdefault("match", {})["separation_backend"] = separated_with
    save_audio(out, res.audio, res.sample_rate, inputs=inputs)
    res.preset.to_json(preset_out, inputs=inputs)
    report = a.report and write_match_report_file(
        a, res, reference=reference, start=init, prior=prior, separated_with=separated_with, output=out,
        preset_out=preset_out, inputs=inputs,
    )  # fmt: skip
    print(res.stats.summary())
    if separated_with:
        print(f"reference vocal isolated with {separated_with}")
    print(f"wrote {out} (stereo, {res.sample_rate} Hz) and {preset_out}" + (f"; report {report}" if report else ""))
    if res.stats.output_peak_dbfs > 0:
        print("note: the output peaks above 0 dBFS; it is stored as float, nothing was clipped", file=sys.stderr)
    return 0


_BACKENDS = (
    "auto, the default: spleeter+classical when the separate extra is installed, else classical; "
    "spleeter, spleeter+classical, classical, demucs"
)


def register(sub: Subparsers) -> None:
    m = sub.add_parser(
        "match",
        help="process a dry vocal so that it sounds like a reference vocal (inference-time optimisation)",
        description="Find the vocal-chain preset that makes DRY sound like REFERENCE and write the processed "
        "vocal and the preset. Both are normalised to -18 LUFS and cut into 11 s chunks; Adam minimises the "
        "angular distance between audio-encoder embeddings of the rendered dry chunks and the reference chunks "
        "(mid and side), minus alpha times the log-density of the preset under a Gaussian prior (MAP), starting "
        "from the preset the fx encoder predicts. The output is the whole dry vocal at -18 LUFS through the preset "
        "(stereo, 44.1 kHz; not normalised or clipped). With --separate, REFERENCE may be a full song: its vocal is "
        "isolated first. See docs/guide/matching.md.",
    )
    add = m.add_argument
    add("dry", help="dry vocal (mono; a file whose channels are identical counts as mono; resampled to 44.1 kHz)")
    add(
        "reference", help="reference vocal, mono or stereo, at least one chunk (11 s) long; a full song with --separate"
    )
    add("-o", "--output", required=True, help="processed vocal to write (.wav: 32-bit float, .flac: 24-bit)")
    add("--preset-out", default=None, help="preset JSON to write (default: OUTPUT's name with .preset.json)")
    add(
        "--report",
        default=None,
        metavar="FILE",
        help="also write a report: FILE.html a self-contained page (preset, EQ/dynamics/space figures, spectra, "
        "levels, loss curve, audio players; docs/guide/matching.md), FILE.json the run's numbers and loss history",
    )
    add(
        "--encoder",
        default=None,
        help="embedding: fx (trained here, shipped), mfcc, mir, afx-rep (needs --afx-rep or VOCALFX_AFX_REP), "
        "or several joined by + (fx+mfcc: one likelihood each) "
        f"(default: {D.MATCH_ENCODER}; {D.SEPARATED_ENCODER} with --separate)",
    )
    add(
        "--afx-rep",
        default=None,
        metavar="PATH",
        help="AFx-Rep checkpoint file (docs/guide/encoders.md says where to get it)",
    )
    add(
        "--alpha",
        type=float,
        default=None,
        help=f"prior weight, 0 = no prior (default: {D.MATCH_ALPHA:g}; {D.SEPARATED_ALPHA:g} with --separate)",
    )
    add(
        "--steps",
        type=int,
        default=None,
        help=f"Adam steps (default: {D.MATCH_STEPS}; {D.SEPARATED_STEPS} with --separate)",
    )
    add(
        "--lr",
        type=float,
        default=None,
        help="initial learning rate, cosine-decayed to a tenth "
        f"(default: {D.MATCH_LR:g}; {D.SEPARATED_LR:g} with --separate)",
    )
    add(
        "--space",
        default="raw",
        choices=("raw", "whitened"),
        help="where Adam steps: raw values (default, as DiffVox) or the prior's whitened coordinates, "
        "lr in prior standard deviations (docs/guide/matching.md)",
    )
    add("--prior", default=None, help="prior .npz (from `vocalfx prior fit`) or 'default' (the shipped prior)")
    add(
        "--init",
        default=None,
        help="start: 'predicted' (the fx head's guess), 'mean' (the prior mean), a preset file or shipped name "
        f"(default: {D.MATCH_INIT}; {D.SEPARATED_INIT} with --separate)",
    )
    add(
        "--chunk-seconds", type=float, default=D.CHUNK_SECONDS, help=f"chunk length in s (default: {D.CHUNK_SECONDS:g})"
    )
    add(
        "--keep-reference-level",
        action="store_true",
        help="do not normalise the reference to -18 LUFS; the preset then also matches its loudness",
    )
    add(
        "--lossy-reference",
        default="auto",
        choices=("auto", "yes", "no"),
        help="reference is MP3/AAC: yes = the fx encoder's codec-robust weights, no = its plain ones, "
        "auto = from a codec cut-off or quantisation holes (docs/guide/matching.md)",
    )
    add(
        "--only",
        default=None,
        metavar="GROUPS",
        help="optimise only these groups, comma-separated from eq, dynamics, delay, "
        "reverb, pan; the others stay exactly at the start (default: all)",
    )
    add(
        "--strength",
        type=float,
        default=1.0,
        help="keep this fraction of the match, 0..1: start + s (match - start) (default: 1)",
    )
    add(
        "--level",
        default=None,
        help="output loudness: 'reference' (the reference vocal's; default), 'preset' (as the preset "
        "renders it; the default with --only without dynamics) or a LUFS value such as -14; set on comp.makeup_db",
    )
    add("--separate", action="store_true", help="REFERENCE is a full mix: isolate its vocal first")
    add("--backend", default=D.SEPARATE_BACKEND, help=f"separation backend with --separate ({_BACKENDS})")
    add("--model-dir", default=None, help="with --separate: model files of demucs or spleeter (guide/separation.md)")
    add("--name", default=None, help="name stored in the preset (default: OUTPUT's stem)")
    add("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    add("-q", "--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=run)
