"""The ``vocalfx`` command line: a thin layer over the public API.

Exit codes: 0 success, 1 bad input or a failed job (one line on stderr naming the file and the
problem), 2 usage errors (argparse).
"""

from __future__ import annotations

import argparse
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

    return ap


def main(argv: Optional[List[str]] = None) -> int:
    ap = build_parser()
    a = ap.parse_args(argv)
    from .io import AudioError
    from .preset import PresetError

    try:
        return a.func(a)
    except (CLIError, AudioError, PresetError) as e:
        return _fail(str(e))
    except FileNotFoundError as e:
        return _fail(f"{e.filename or ''}: {e.strerror or e}" if e.filename else str(e))
    except ValueError as e:
        return _fail(str(e))
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
