"""Build the held-out validation corpus: voices and presets that no training example touches.

Every default, checkpoint and threshold of vocalfx is to be chosen on this corpus, never on the dev
corpus (which is a test, scored once per candidate). It has the dev corpus's layout, so
``vocalfx eval --corpus OUT`` runs on it as it is:

    OUT/protocol.json          the tracks, each with its dry vocal and its true preset file
    OUT/vocals/*.flac          44 s dry vocals, mono, 44.1 kHz, peak -3 dBFS
    OUT/presets/*.json         the true presets (vocalfx preset files)
    OUT/manifest.json          sources, licences, speakers, measured f0, seeds, the split's hash

What is held out is fixed in ``scripts/validation_split.json`` (committed): the speakers, the
singing voice, the melodies' seeds and the preset rows. A training-data builder reads the same file
and must leave all of them out. The voices:

* **speech**: real recordings of spoken letters and syllables from Debian's ``klettres-data``
  (KDE's KLettres, GPL-2+), one speaker per language. Held out: Hungarian (a low male voice,
  median f0 about 106 Hz), French (male, about 127 Hz), English (male, about 139 Hz), German
  (female, about 216 Hz), Russian and Czech (female). Clips are trimmed, shuffled and joined
  with 0.3 s gaps into 44 s tracks; two tracks of one speaker use disjoint clips while there are
  enough, and say in the manifest when they had to share.
* **singing**: festival's singing mode (Debian ``festival`` + ``festvox-kallpc16k``, a male
  diphone voice at 16 kHz) on random melodies in a male range, with English syllables; no training
  data uses this voice.

The presets are DiffVox rows (``../shared/diffvox-presets``, MIT): rows of the MedleyDB ``train``
split and internal rows outside ``train_index``, drawn once by ``validation_split.json``'s seed.
The MedleyDB ``dev`` and ``reserved`` rows are never read. Nothing here is shipped: the corpus is
built into ``OUT`` (``build/`` by default, ignored by git).

Usage:
    python scripts/build_validation_set.py --out build/validation
    vocalfx eval --corpus build/validation --out build/validation-eval --methods oracle,mean,match
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import soundfile as sf
import torch

from vocalfx.io import resample_audio
from vocalfx.preset import Preset

ROOT = Path(__file__).resolve().parents[1]
SPLIT_FILE = Path(__file__).resolve().parent / "validation_split.json"
SR = 44100
SECONDS = 44.0
PEAK_DBFS = -3.0
GAP_SECONDS = 0.3
KLETTRES = Path("/usr/share/klettres")
NOTE_NAMES = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
FESTIVAL_LICENCE = (
    "festvox-kallpc16k: permissive (Black and Lenzo 1998: use and distribute without restriction, "
    "notices kept); festival: X11-style"
)
SYLLABLES = ["la", "na", "da", "ma", "oh", "ah", "love", "you", "me", "go", "day", "way", "night", "light", "home"]


def fail(message: str) -> None:
    raise SystemExit(f"build_validation_set.py: {message}")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def median_f0_hz(x: np.ndarray, sr: int) -> float:
    """Median f0 (Hz) of the voiced 40 ms frames (autocorrelation peak in 60-400 Hz above half the energy)."""
    hop, win = int(0.01 * sr), int(0.04 * sr)
    lo, hi = int(sr / 400), int(sr / 60)
    floor = 0.02 * float(np.abs(x).max() + 1e-12)
    f0 = []
    for i in range(0, len(x) - win, hop):
        frame = x[i : i + win] * np.hanning(win)
        if math.sqrt(float((frame**2).mean())) < floor:
            continue
        ac = np.fft.irfft(np.abs(np.fft.rfft(frame, 2 * win)) ** 2)[:win]
        k = lo + int(np.argmax(ac[lo:hi]))
        if ac[k] > 0.5 * ac[0]:
            f0.append(sr / k)
    return float(np.median(f0)) if f0 else float("nan")


def trim(x: np.ndarray, rel_db: float = -40.0) -> np.ndarray:
    """``x`` without its leading and trailing parts more than ``rel_db`` below its 10 ms peak envelope."""
    hop = int(0.01 * SR)
    env = np.array([np.abs(x[i : i + hop]).max() for i in range(0, max(1, len(x) - hop), hop)])
    keep = np.where(env > env.max() * 10 ** (rel_db / 20))[0]
    return x[keep[0] * hop : (keep[-1] + 1) * hop + hop] if keep.size else x


def fit_length(x: np.ndarray) -> np.ndarray:
    n = int(SECONDS * SR)
    x = x[:n] if len(x) >= n else np.concatenate([x, np.zeros(n - len(x))])
    ramp = int(0.02 * SR)
    x[-ramp:] *= np.linspace(1.0, 0.0, ramp)
    return x * (10 ** (PEAK_DBFS / 20) / np.abs(x).max())


def to_44k(x: np.ndarray, sr: int) -> np.ndarray:
    if sr == SR:
        return x
    return resample_audio(torch.from_numpy(x).float()[None], sr, SR)[0].double().numpy()


# --- speech ------------------------------------------------------------------------------------


def klettres_clips(language: str) -> List[Path]:
    clips = sorted((KLETTRES / language).glob("*/*.ogg"))
    if not clips:
        fail(f"{KLETTRES / language}: no clips (apt-get install klettres-data)")
    return clips


def speech_tracks(language: str, n_tracks: int, rng: np.random.Generator) -> List[Tuple[np.ndarray, Dict]]:
    """``n_tracks`` 44 s tracks of one speaker; disjoint clips while they last."""
    clips = []
    for path in klettres_clips(language):
        x, sr = sf.read(path, always_2d=True)
        clips.append((path, trim(to_44k(x.mean(1), sr))))
    order = list(rng.permutation(len(clips)))
    gap = np.zeros(int(GAP_SECONDS * SR))
    tracks, used = [], set()
    for _ in range(n_tracks):
        parts, names, length, shared = [gap], [], len(gap), False
        while length < SECONDS * SR:
            if not order:
                order, shared = list(rng.permutation(len(clips))), True  # more clips than the speaker has
            i = order.pop(0)
            shared |= i in used
            used.add(i)
            parts += [clips[i][1] / np.abs(clips[i][1]).max() * 10 ** (rng.uniform(-3, 3) / 20), gap]
            names.append(str(clips[i][0]))
            length += len(clips[i][1]) + len(gap)
        x = fit_length(np.concatenate(parts))
        tracks.append((x, {"source_files": names, "shares_clips_with_another_track": shared}))
    return tracks


# --- singing -----------------------------------------------------------------------------------


def melody_xml(rng: np.random.Generator) -> Tuple[str, Dict]:
    """A random melody in a male range (A2-D4) as festival SINGING markup, about 50 s long."""
    bpm = float(rng.uniform(80, 120))
    tonic = int(rng.integers(45, 52))  # A2..D#3
    scale = [0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.5 else [0, 2, 3, 5, 7, 8, 10]
    pitches = [tonic + o + s for o in (0, 12) for s in scale if tonic + o + s <= 62]
    lines, beats, idx = [], 0.0, int(rng.integers(0, len(pitches) // 2))
    while beats * 60 / bpm < 50.0:
        for _ in range(int(rng.integers(5, 10))):
            idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pitches) - 1))
            midi, dur = pitches[idx], float(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0]))
            name = f"{NOTE_NAMES[midi % 12]}{midi // 12 - 1}"
            lines.append(f'<DURATION BEATS="{dur}"><PITCH NOTE="{name}">{rng.choice(SYLLABLES)}</PITCH></DURATION>')
            beats += dur
        rest = float(rng.choice([1.0, 1.5, 2.0]))
        lines.append(f'<REST BEATS="{rest}"></REST>')
        beats += rest
    head = (
        '<?xml version="1.0"?>\n<!DOCTYPE SINGING PUBLIC "-//SINGING//DTD SINGING mark up//EN" "Singing.v0_1.dtd" []>'
    )
    xml = f'{head}\n<SINGING BPM="{bpm:.1f}">\n' + "\n".join(lines) + "\n</SINGING>\n"
    return xml, {"tempo_bpm": round(bpm, 2), "tonic_midi": tonic, "n_notes": sum("<PITCH" in ln for ln in lines)}


def festival_track(rng: np.random.Generator) -> Tuple[np.ndarray, Dict]:
    if shutil.which("text2wave") is None:
        fail("text2wave not found (apt-get install festival festvox-kallpc16k)")
    xml, info = melody_xml(rng)
    with tempfile.TemporaryDirectory() as tmp:
        score, wav = Path(tmp) / "score.xml", Path(tmp) / "sung.wav"
        score.write_text(xml)
        shutil.copy("/usr/share/sgml/festival/Singing.v0_1.dtd", Path(tmp) / "Singing.v0_1.dtd")
        r = subprocess.run(
            ["text2wave", "-mode", "singing", str(score), "-o", str(wav)], capture_output=True, text=True
        )
        if r.returncode != 0 or not wav.exists():
            fail(f"festival singing failed: {r.stderr.strip()[:200]}")
        x, sr = sf.read(wav, always_2d=True)
    x = trim(to_44k(x.mean(1), sr))
    return fit_length(np.concatenate([np.zeros(int(0.2 * SR)), x])), {**info, "render_sample_rate": sr, "score": xml}


# --- presets -----------------------------------------------------------------------------------


def held_out_presets(shared: Path, split: Dict) -> List[Tuple[Preset, Dict]]:
    out = []
    for collection, rows in (
        ("medleydb", split["presets"]["medleydb_train_rows"]),
        ("internal", split["presets"]["internal_rows"]),
    ):
        raw = np.load(shared / "diffvox-presets" / collection / "raw_params.npy")
        for row in rows:
            name = f"{collection}-{row:03d}"
            out.append(
                (
                    Preset.from_diffvox(raw[row], name=name, source=f"diffvox-presets/{collection} row {row}"),
                    {"collection": collection, "row": row},
                )
            )
    return out


def check_split(split: Dict, shared: Path) -> None:
    """The held-out rows are allowed ones: MedleyDB ``train`` rows, internal rows outside ``train_index``."""
    allowed = set(json.loads((shared / "diffvox-presets/medleydb/splits.json").read_text())["train"])
    bad = sorted(set(split["presets"]["medleydb_train_rows"]) - allowed)
    if bad:
        fail(f"{SPLIT_FILE}: MedleyDB rows {bad} are not in the train split")
    train_index = set(np.load(shared / "diffvox-presets/internal/train_index.npy").tolist())
    bad = sorted(set(split["presets"]["internal_rows"]) & train_index)
    if bad:
        fail(f"{SPLIT_FILE}: internal rows {bad} are in train_index (the prior's rows)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "validation")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared", help="the shared folder (diffvox-presets)")
    a = ap.parse_args()
    split = json.loads(SPLIT_FILE.read_text())
    check_split(split, a.shared)
    if a.out.exists() and any(a.out.iterdir()):
        fail(f"{a.out}: exists and is not empty; choose a new folder")
    (a.out / "vocals").mkdir(parents=True, exist_ok=True)
    (a.out / "presets").mkdir(exist_ok=True)
    rng = np.random.default_rng(split["seed"])
    vocals = []
    for speaker in split["speech"]:
        for k, (x, info) in enumerate(speech_tracks(speaker["language"], speaker["tracks"], rng), 1):
            name = f"speech_{speaker['language']}_{k}"
            vocals.append(
                (
                    name,
                    x,
                    {"kind": "speech", "speaker": speaker, "package": "klettres-data", "licence": "GPL-2+", **info},
                )
            )
    for k in range(split["singing"]["tracks"]):
        x, info = festival_track(np.random.default_rng([split["seed"], 500 + k]))
        vocals.append(
            (
                f"sing_festival_{k + 1}",
                x,
                {
                    "kind": "singing",
                    "voice": split["singing"]["voice"],
                    "package": "festival, festvox-kallpc16k",
                    "licence": FESTIVAL_LICENCE,
                    "seed": [split["seed"], 500 + k],
                    **info,
                },
            )
        )
    presets = held_out_presets(a.shared, split)
    if len(presets) < len(vocals):
        fail(f"{len(vocals)} tracks but {len(presets)} held-out presets")
    order = rng.permutation(len(presets))[: len(vocals)]
    tracks, files = [], []
    for (name, x, info), p in zip(vocals, order):
        preset, where = presets[p]
        vocal, preset_file = a.out / "vocals" / f"{name}.flac", a.out / "presets" / f"{name}.json"
        sf.write(vocal, x.astype(np.float32), SR, subtype="PCM_24")
        preset.to_json(preset_file)
        tracks.append({"track": name, "vocal": f"vocals/{name}.flac", "preset": f"presets/{name}.json"})
        if "score" in info:  # the festival score, to sing it again
            (a.out / "scores").mkdir(exist_ok=True)
            (a.out / "scores" / f"{name}.xml").write_text(info.pop("score"))
        files.append(
            {
                "track": name,
                "sha256": sha256(vocal),
                "median_f0_hz": round(median_f0_hz(x, SR), 1),
                "preset": where,
                **info,
            }
        )
        print(f"{name}: f0 {files[-1]['median_f0_hz']} Hz, preset {preset.name}", flush=True)
    protocol = {
        "description": "vocalfx validation corpus (scripts/build_validation_set.py): held-out voices and presets, "
        "DiffVox's protocol",
        "sample_rate": SR,
        "chunk_seconds": 11,
        "lufs": -18.0,
        "tracks": tracks,
    }
    (a.out / "protocol.json").write_text(json.dumps(protocol, indent=1) + "\n")
    manifest = {"split_file": str(SPLIT_FILE.relative_to(ROOT)), "split_sha256": sha256(SPLIT_FILE), "files": files}
    (a.out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(tracks)} tracks to {a.out}")


if __name__ == "__main__":
    main()
