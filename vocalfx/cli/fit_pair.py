"""``vocalfx fit-pair DRY WET -o PRESET``: :func:`vocalfx.matching.fit_pair` on files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..defaults import FIT_LR, FIT_STEPS
from ._common import CLIError, Subparsers, check_at_least, conversion_notes, existing_files, print_notes, resolve_preset

__all__ = ["register", "run"]


def run(a: argparse.Namespace) -> int:
    from ..io import audio_info, check_output_path, load_audio
    from ..matching import FitError, fit_pair
    from ..params import SAMPLE_RATE

    inputs = [Path(a.dry), Path(a.wet)] + existing_files(a.init)
    out = check_output_path(a.output, inputs)  # fail now, not after minutes of fitting
    check_at_least("--steps", a.steps, 0)
    check_at_least("--batch-size", a.batch_size, 0)
    init = resolve_preset(a.init) if a.init else None
    dry_info, wet_info = audio_info(a.dry), audio_info(a.wet)
    notes = conversion_notes(a.dry, dry_info, SAMPLE_RATE, mono=True) + conversion_notes(a.wet, wet_info, SAMPLE_RATE)
    if wet_info.channels != 2:
        raise CLIError(f"{a.wet}: the wet file must be stereo (2 channels), it has {wet_info.channels}")
    dry = load_audio(a.dry, sample_rate=SAMPLE_RATE, mono=True)
    wet = load_audio(a.wet, sample_rate=SAMPLE_RATE, mono=False)
    print_notes(notes)
    try:
        res = fit_pair(
            dry,
            wet,
            SAMPLE_RATE,
            steps=a.steps,
            lr=a.lr,
            batch_size=a.batch_size or None,
            init=init,
            seed=a.seed,
            progress=not a.quiet,
            name=a.name or out.stem,
        )
    except FitError as e:
        raise CLIError(f"{a.dry} + {a.wet}: {e}") from None
    res.preset.source = (
        f"vocalfx fit-pair {Path(a.dry).name} -> {Path(a.wet).name} (dry at -18 LUFS in, wet at -18 LUFS out)"
    )
    res.preset.to_json(out, inputs=inputs)
    print(res.stats.summary())
    print(f"wrote {out} (apply it to a dry vocal normalised to -18 LUFS)")
    return 0


def register(sub: Subparsers) -> None:
    f = sub.add_parser(
        "fit-pair",
        help="fit a preset to a dry/wet vocal pair (as DiffVox built its preset collections)",
        description="Fit the 130 chain parameters so that the chain's render of DRY matches WET: align the "
        "pair by cross-correlation (GCC-PHAT), normalise both to -18 LUFS, cut 12 s chunks (5 s warm-up), "
        "and run Adam on 1.0 MSS(L/R) + 0.5 MSS(M/S) + 0.5 MLDR(L/R) + 0.25 MLDR(M/S), keeping the lowest-loss "
        "parameters. Starts from the shipped prior's mean; one randomly drawn chunk per step. The preset expects a dry "
        "input at -18 LUFS. Cost on two idle CPU cores: about 1.6 s per step, so about 3 minutes for the "
        "default steps on a 30 s pair (docs/guide/presets.md).",
    )
    f.add_argument("dry", help="dry vocal (averaged to mono, resampled to 44.1 kHz)")
    f.add_argument("wet", help="processed vocal, stereo (resampled to 44.1 kHz)")
    f.add_argument("-o", "--output", required=True, help="preset JSON to write (never one of the inputs)")
    f.add_argument("--steps", type=int, default=FIT_STEPS, help=f"Adam steps (default: {FIT_STEPS})")
    f.add_argument("--seed", type=int, default=0, help="seed for the chunk draws with --batch-size (default: 0)")
    f.add_argument(
        "--lr",
        type=float,
        default=FIT_LR,
        help=f"initial Adam learning rate on the raw values, cosine-decayed to a tenth (default: {FIT_LR})",
    )
    f.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="chunks scored per step, drawn at random; 0 = all chunks every step (default: 1)",
    )
    f.add_argument(
        "--init", default=None, help="starting preset (file or shipped name; default: the shipped prior's mean)"
    )
    f.add_argument("--name", default=None, help="name stored in the preset (default: the output file's stem)")
    f.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    f.set_defaults(func=run)
