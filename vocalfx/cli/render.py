"""``vocalfx render DRY PRESET -o OUT``: :func:`vocalfx.render.render` on files."""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import CLIError, Subparsers, existing_files, resolve_preset

if TYPE_CHECKING:
    from ..preset import Preset

__all__ = ["register", "run"]


def run(a: argparse.Namespace) -> int:
    import torch

    from ..io import audio_info, check_output_path, load_audio, save_audio
    from ..params import SAMPLE_RATE
    from ..render import render

    out = check_output_path(a.output, [Path(a.dry)] + existing_files(a.preset, a.base))
    preset = resolve_preset(a.preset, a.index)
    if a.strength is not None:
        preset = _blended(preset, a)
    elif a.base:
        raise CLIError("--base is only used with --strength")
    info = audio_info(a.dry)
    dry = load_audio(a.dry, sample_rate=SAMPLE_RATE, mono=True)
    t0 = time.perf_counter()
    y = render(dry, preset, SAMPLE_RATE, dtype={"float32": torch.float32, "float64": torch.float64}[a.precision])
    dt = time.perf_counter() - t0
    save_audio(out, y, SAMPLE_RATE, inputs=[a.dry])
    conv = []
    if info.channels != 1:
        conv.append(f"{info.channels} channels averaged to mono")
    if info.sample_rate != SAMPLE_RATE:
        conv.append(f"resampled {info.sample_rate} -> {SAMPLE_RATE} Hz")
    peak = float(y.abs().max())
    peak_db = 20 * math.log10(peak) if peak > 0 else float("-inf")
    print(
        f"rendered {a.dry} ({info.duration_s:.2f} s{'; ' + ', '.join(conv) if conv else ''}) "
        f"with preset '{preset.name}' in {dt:.2f} s -> {out} (stereo, {SAMPLE_RATE} Hz, peak {peak_db:+.1f} dBFS)"
    )
    if peak_db > 0:
        print("note: the output peaks above 0 dBFS; it is stored as float, nothing was clipped", file=sys.stderr)
    return 0


def _blended(preset: "Preset", a: argparse.Namespace) -> "Preset":
    """``--strength S``: ``base + S (preset - base)``, the base being ``--base`` or the start a match recorded."""
    from ..matching.steer import blend
    from ..preset import Preset
    from ..prior import GaussianPrior

    if a.base == "mean":
        base, label = GaussianPrior.default().mean.double().numpy(), "the prior mean"
    elif a.base:
        base, label = resolve_preset(a.base).raw, a.base
    else:
        start = preset.extra.get("match", {}).get("start_raw") if isinstance(preset.extra, dict) else None
        if start is None:
            raise CLIError(
                f"{a.preset}: no starting preset recorded (not written by `vocalfx match`); "
                "name one with --base PRESET or --base mean"
            )
        base, label = start, "the match's start"
    try:
        raw = blend(base, preset.raw, a.strength)
        return Preset(raw, name=f"{preset.name} at strength {a.strength:g} from {label}", source=preset.source)
    except ValueError as e:
        raise CLIError(f"--strength: {e}") from None


def register(sub: Subparsers) -> None:
    r = sub.add_parser(
        "render",
        help="render a preset onto a dry vocal",
        description="Render a preset onto a dry vocal. The input (WAV/FLAC/OGG, MP3 where libsndfile "
        "supports it; any rate and channel count) is averaged to mono and resampled to 44.1 kHz; the "
        "output is stereo 44.1 kHz, written atomically, never clipped or normalised.",
    )
    r.add_argument("dry", help="dry vocal audio file")
    r.add_argument(
        "preset",
        help="preset JSON file, collection file (with --index), or a shipped preset name (see `vocalfx preset list`)",
    )
    r.add_argument("-o", "--output", required=True, help="output audio file (.wav: 32-bit float, .flac: 24-bit)")
    r.add_argument("--index", type=int, default=None, help="preset index when PRESET is a collection")
    r.add_argument(
        "--strength",
        type=float,
        default=None,
        metavar="S",
        help="render base + S (preset - base), 0..1: S = 0 the base, 1 the preset (the level is blended too)",
    )
    r.add_argument(
        "--base",
        default=None,
        help="with --strength: the preset to blend from, a file, a shipped name or 'mean' "
        "(the prior mean); default: the start recorded by `vocalfx match`",
    )
    r.add_argument(
        "--precision",
        choices=["float32", "float64"],
        default="float32",
        help="computation precision (default: float32)",
    )
    r.set_defaults(func=run)
