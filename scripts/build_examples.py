#!/usr/bin/env python
"""Build the bundled example audio in examples/ from the dev corpus (../shared/corpus/dev).

examples/dry_vocal.flac   12 s of corpus vocal sing_01 (0-12 s), untouched (mono, 44.1 kHz, 16-bit)
examples/reference.flac   12 s of corpus vocal sing_05 (12-24 s), rendered by vocalfx through the
                          shipped preset "wide-hall" -- a stand-in for a reference song's vocal
Both come from pysinsy singing synthesis (CC-BY-3.0); attribution in examples/LICENSE.md.
Run from the repository root: python scripts/build_examples.py [--shared ../shared]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import soundfile as sf

from vocalfx.io import load_audio, save_audio
from vocalfx.preset import Preset
from vocalfx.render import render

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=str(ROOT.parent / "shared"))
    a = ap.parse_args()
    vocals = Path(a.shared) / "corpus" / "dev" / "vocals"
    sr = 44100
    dry = load_audio(vocals / "sing_01.flac", sample_rate=sr)[:, : 12 * sr]
    sf.write(ROOT / "examples" / "dry_vocal.flac", dry[0].numpy(), sr, subtype="PCM_16")
    src = load_audio(vocals / "sing_05.flac", sample_rate=sr)[:, 12 * sr : 24 * sr]
    wet = render(src, Preset.resolve("wide-hall"), sr)
    save_audio(ROOT / "examples" / "reference.flac", wet, sr)
    print("wrote examples/dry_vocal.flac and examples/reference.flac")


if __name__ == "__main__":
    main()
