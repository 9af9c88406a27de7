#!/usr/bin/env python
"""Render accompaniment clips from music21's corpus through a General MIDI soundfont.

A third kind of accompaniment for the separation benchmark, beside the dev corpus's loop-based
(Sonic Pi samples) and generated (ACE-Step) clips: scores from music21's corpus (public-domain
works; music21 is BSD-3) played by FluidSynth (LGPL-2.1) with Debian's ``fluid-soundfont-gm``
(FluidR3_GM, MIT). Each clip is 44 s, stereo, 44.1 kHz, -20 LUFS (the dev corpus's accompaniment
level), written to ``OUT/accompaniment/*.flac`` with ``OUT/manifest.json`` (sources, licences,
programs, SHA-256 of each file). Nothing is shipped: ``OUT`` is under ``build/`` by default.

    apt-get install fluidsynth fluid-soundfont-gm && pip install music21
    python benchmarks/make_accompaniment.py --out build/accompaniment
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

SR = 44100
SECONDS = 44.0
LUFS = -20.0
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
#: name -> (music21 corpus path, tempo in quarter notes per minute, GM program per part, top part first)
PIECES = {
    "sf_rag": ("joplin/maple_leaf_rag.mxl", 100, [0, 0]),  # acoustic grand piano
    "sf_quartet": ("mozart/k155/movement1.mxl", 132, [40, 40, 41, 42]),  # violins, viola, cello
    "sf_chorale": ("bach/bwv1.6.mxl", 96, [48, 61, 0, 33]),  # strings, brass, piano, fingered bass
}
LICENCE = (
    "score: public domain (music21 corpus, BSD-3-Clause package); soundfont: FluidR3_GM (MIT, Debian "
    "fluid-soundfont-gm); synthesiser: FluidSynth (LGPL-2.1)"
)


def render_piece(path: str, tempo_qpm: float, programs: list, work: Path) -> np.ndarray:
    """The piece as ``(2, SECONDS * SR)`` float32, repeated if it is shorter."""
    from music21 import corpus, instrument, tempo

    score = corpus.parse(path)
    for i, part in enumerate(score.parts):
        for old in part.recurse().getElementsByClass(instrument.Instrument):
            old.activeSite.remove(old)
        inst = instrument.instrumentFromMidiProgram(programs[min(i, len(programs) - 1)])
        inst.midiChannel = i
        part.insert(0, inst)
        for old in part.recurse().getElementsByClass(tempo.MetronomeMark):
            old.activeSite.remove(old)
    score.parts[0].insert(0, tempo.MetronomeMark(number=tempo_qpm))
    midi = work / "piece.mid"
    wav = work / "piece.wav"
    score.write("midi", fp=str(midi))
    subprocess.run(
        ["fluidsynth", "-ni", "-g", "0.5", "-r", str(SR), "-F", str(wav), str(SOUNDFONT), str(midi)],
        check=True,
        capture_output=True,
    )
    audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    if rate != SR:
        raise SystemExit(f"fluidsynth wrote {rate} Hz, expected {SR}")
    audio = audio.T
    n = int(SECONDS * SR)
    while audio.shape[1] < n:
        audio = np.concatenate([audio, audio], axis=1)
    return np.ascontiguousarray(audio[:, :n])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("build/accompaniment"))
    a = ap.parse_args()
    if not SOUNDFONT.is_file() or shutil.which("fluidsynth") is None:
        raise SystemExit("make_accompaniment.py: needs Debian's fluidsynth and fluid-soundfont-gm")
    from vocalfx.io import atomic_write_text, loudness_normalize

    (a.out / "accompaniment").mkdir(parents=True, exist_ok=True)
    manifest = {"licence": LICENCE, "sample_rate": SR, "seconds": SECONDS, "lufs": LUFS, "clips": {}}
    for name, (path, qpm, programs) in PIECES.items():
        with tempfile.TemporaryDirectory() as tmp:
            audio = render_piece(path, qpm, programs, Path(tmp))
        x, _ = loudness_normalize(torch.from_numpy(audio), SR, LUFS)
        x = x.numpy()
        fade = int(0.5 * SR)
        x[:, -fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
        if np.abs(x).max() >= 1.0:
            raise SystemExit(f"{name}: peak {np.abs(x).max():.2f} at {LUFS} LUFS would clip")
        out = a.out / "accompaniment" / f"{name}.flac"
        sf.write(str(out), x.T, SR, subtype="PCM_24")
        manifest["clips"][out.name] = {
            "score": f"music21 corpus {path}",
            "tempo_qpm": qpm,
            "gm_programs": programs,
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        }
        print(f"{out}: {path}, programs {programs}", flush=True)
    atomic_write_text(a.out / "manifest.json", json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
