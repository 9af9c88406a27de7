"""``vocalfx preset show|list|import-diffvox``: the preset tools of :mod:`vocalfx.preset`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import Subparsers, resolve_preset

__all__ = ["register", "run_show", "run_list", "run_import"]


def run_show(a: argparse.Namespace) -> int:
    from ..preset import load_collection

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


def run_list(a: argparse.Namespace) -> int:
    from ..preset import shipped_presets

    for pr in shipped_presets():
        print(f"{pr.name:<16} {pr.source}")
    return 0


def run_import(a: argparse.Namespace) -> int:
    from ..preset import import_diffvox_collection, save_collection

    presets = import_diffvox_collection(a.directory)
    save_collection(
        presets, a.output, name=Path(a.directory).name, source=f"imported from DiffVox folder {a.directory}"
    )
    print(f"imported {len(presets)} presets from {a.directory} -> {a.output}")
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("preset", help="show, list and import presets")
    psub = p.add_subparsers(dest="preset_command", metavar="ACTION")
    psub.required = True
    s = psub.add_parser("show", help="print a preset as a table (units: Hz, dB, ms, ratio, pan -100..100, T60 s)")
    s.add_argument("file", help="preset or collection file, or a shipped preset name")
    s.add_argument("--index", type=int, default=None, help="preset index in a collection")
    s.set_defaults(func=run_show)
    ls = psub.add_parser("list", help="list the presets shipped with vocalfx")
    ls.set_defaults(func=run_list)
    im = psub.add_parser(
        "import-diffvox",
        help="convert a DiffVox preset folder (raw_params.npy, feature_mask.npy, info.json) into a collection",
    )
    im.add_argument("directory")
    im.add_argument("-o", "--output", required=True, help="collection JSON to write")
    im.set_defaults(func=run_import)
