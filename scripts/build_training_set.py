#!/usr/bin/env python
"""Build the training set of the ``fx`` encoder: dry voices x random effects, offline and seeded.

    python scripts/build_training_set.py --out build/fx-train --debroot build/fx-train/debroot

Three resumable stages (a re-run skips whatever is already on disk; ``--stage`` runs one):

``sources``  dry mono voices, 44 s each, at 44.1 kHz (``sources/*.flac``, ``sources.json``):

    * singing: pysinsy with the HTS voice of ``../shared/corpus/build_corpus.py``, melodies drawn
      exactly as that script draws them for its odd seeds >= 3 (``--sing-seeds``; seed 1 is the dev
      corpus and is refused, even seeds are reserved); every score is checked to differ from the
      dev corpus' scores;
    * speech: build_corpus's source pool A (Asterisk prompts of Allison Smith, en-US, and Carlo
      Flora, it-IT; the Fish Fillets character ``m``), using only clips that the dev corpus'
      manifest.json does *not* list as a source file;
    * espeak-ng and flite (Debian): random pseudo-words and numbers in several languages and voices.
      Held out for tests and never used here: espeak-ng's Finnish voice (``fi``) and flite's ``kal``.

``chunks``   each source loudness-normalised to -18 LUFS as a whole (pyloudnorm), cut into 11 s
    chunks, inactive chunks dropped (the evaluation's rule); ``chunks.npy`` (float16 audio) and
    ``dry_feats.pt`` (the encoder's level-free dry features and levels). About 12 % of the sources
    (by a seeded draw) are validation sources.

``blocks``   ``blocks/NNNNN.pt``: 4 chunks of 4 different sources x 4 effects = 16 wet renders, stored
    as the encoder's level-free mid/side log-mel features (float16) with their levels. Effects:

    * ``prior``: ``raw = mean + L z``, ``z ~ N(0, s^2 I)``, ``s ~ U(0.6, 1.2)``, the shipped prior;
    * ``internal``: a training preset of ``../shared/diffvox-presets/internal`` (rows of
      ``train_index.npy`` only) moved by ``N(0, 0.3^2 I)`` in whitened coordinates;
    * ``pedalboard``: an independent implementation with random settings (filters, peaks, shelves,
      compressor, optional drive/chorus, per-channel delays, reverb, pan) and no preset target;
    * any of them, with probability 0.25, through MP3 at 64-192 kbps (pedalboard's LAME encoder,
      decoded again and re-aligned).

    Chain presets are rendered by ``vocalfx.VocalChain`` from the -18 LUFS chunk, at the level the
    preset gives (as in the evaluation protocol). The MedleyDB collection is never read. Random
    gains are not needed for the embedding, whose features are gain-free by construction
    (``vocalfx.encoders.trained.level_free``); the stored level is used by the preset head only.

``manifest.json`` lists every source (package, version, licence, seed, clip files or text) and the
settings of the build. One thread by default (``--threads``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SR = 44100
CHUNK_S = 11.0
TRACK_S = 44.0
LUFS = -18.0
HELD_OUT = {"espeak-ng": ["fi"], "flite": ["kal"]}

# espeak-ng voices used (language, variant); Finnish is held out for the tests
ESPEAK_LANGS = [
    "en",
    "en-us",
    "de",
    "fr",
    "es",
    "it",
    "pt",
    "nl",
    "pl",
    "sv",
    "cs",
    "ru",
    "el",
    "tr",
    "hu",
    "ro",
    "id",
    "sw",
]
ESPEAK_VARIANTS = [
    "",
    "+m1",
    "+m2",
    "+m3",
    "+m4",
    "+m5",
    "+m6",
    "+m7",
    "+f1",
    "+f2",
    "+f3",
    "+f4",
    "+f5",
    "+croak",
    "+whisper",
]
FLITE_VOICES = ["slt", "rms", "awb", "kal16"]

CONS = "bdfgklmnprstvz"
VOWELS = "aeiou"


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def load_build_corpus(path: Path):
    spec = importlib.util.spec_from_file_location("build_corpus", str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def deb_version(debroot: Path, pkg: str) -> str:
    p = debroot / "usr/share/doc" / pkg / "changelog.Debian.gz"
    with gzip.open(p, "rt", encoding="utf-8", errors="replace") as f:
        m = re.match(r"\S+ \(([^)]+)\)", f.readline())
    return m.group(1)


def dpkg_version(pkg: str) -> str:
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_flac(path: Path, x: np.ndarray) -> None:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(x, dtype=np.float32), SR, format="FLAC", subtype="PCM_24")
    atomic_write_bytes(path, buf.getvalue())


def resample(x: np.ndarray, sr_in: int) -> np.ndarray:
    import soxr

    if sr_in == SR:
        return np.asarray(x, dtype=np.float64)
    return soxr.resample(np.asarray(x, dtype=np.float64), sr_in, SR, quality="VHQ")


# ----------------------------------------------------------------------------------- sources
def pseudo_text(rng: np.random.Generator, n_words: int) -> str:
    words = []
    for _ in range(n_words):
        if rng.random() < 0.2:
            words.append(str(int(rng.integers(1, 10000))))
        else:
            syl = int(rng.integers(1, 4))
            w = "".join(
                (rng.choice(list(CONS)) if rng.random() < 0.85 else "")
                + rng.choice(list(VOWELS))
                + (rng.choice(list("nmrsl")) if rng.random() < 0.2 else "")
                for _ in range(syl)
            )
            words.append(w)
        if rng.random() < 0.12:
            words[-1] += rng.choice([",", ".", "?", "!"])
    return " ".join(words)


def tts_clip(engine: str, voice: str, text: str, rng: np.random.Generator):
    import soundfile as sf

    with tempfile.TemporaryDirectory() as d:
        wav = os.path.join(d, "x.wav")
        if engine == "espeak-ng":
            speed, pitch = int(rng.integers(120, 200)), int(rng.integers(20, 80))
            cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", wav, text]
            settings = dict(speed_wpm=speed, pitch=pitch)
        else:
            stretch = float(rng.uniform(0.85, 1.2))
            cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={stretch:.3f}", "-t", text, "-o", wav]
            settings = dict(duration_stretch=round(stretch, 3))
        subprocess.run(cmd, check=True, capture_output=True)
        x, sr = sf.read(wav, always_2d=True)
    return resample(x.mean(1), sr), sr, settings


def assemble_tts_track(engine: str, voice: str, rng: np.random.Generator):
    n = int(TRACK_S * SR)
    y = np.zeros(n)
    pos = int(rng.uniform(0.05, 0.4) * SR)
    texts, settings, sr0 = [], None, None
    while pos < n - int(0.5 * SR):
        text = pseudo_text(rng, int(rng.integers(4, 14)))
        x, sr0, settings = tts_clip(engine, voice, text, rng)
        if len(x) == 0:
            continue
        x = x[: n - pos]
        y[pos : pos + len(x)] = x
        texts.append(text)
        pos += len(x) + int(rng.uniform(0.15, 0.8) * SR)
    return y, texts, settings, sr0


def peak_normalise(x: np.ndarray, peak_dbfs: float = -3.0) -> np.ndarray:
    return x * (10 ** (peak_dbfs / 20) / max(np.max(np.abs(x)), 1e-12))


def stage_sources(args, out: Path) -> None:
    bc = load_build_corpus(args.corpus_script)
    src_dir = out / "sources"
    src_dir.mkdir(parents=True, exist_ok=True)
    index_path = out / "sources.json"
    entries = json.loads(index_path.read_text()) if index_path.exists() else []
    done = {e["id"] for e in entries}

    def add(entry, x):
        write_flac(src_dir / f"{entry['id']}.flac", x)
        entry["file"] = f"sources/{entry['id']}.flac"
        entries.append(entry)
        done.add(entry["id"])
        atomic_write_bytes(index_path, json.dumps(entries, indent=1, ensure_ascii=False).encode())

    dev_manifest = json.loads((args.dev_corpus / "manifest.json").read_text())
    dev_sources = {s for e in dev_manifest["files"] for s in e["source_files"]}
    dev_scores = {hashlib.sha256(p.read_bytes()).hexdigest() for p in (args.dev_corpus / "scores").glob("*.musicxml")}

    # --- singing: build_corpus's melodies for odd seeds >= 3
    seeds = [int(s) for s in args.sing_seeds.split(",") if s]
    for s in seeds:
        if s < 3 or s % 2 == 0:
            raise SystemExit(
                f"--sing-seeds: {s} is not an odd seed >= 3 (1 is the dev corpus, even seeds are reserved)"
            )
    todo = [(s, i) for s in seeds for i in range(8) if f"sing_s{s}_{i + 1:02d}" not in done]
    if todo:
        import pysinsy

        singer = bc.Singer(str(out / "cache"))
        for s, i in todo:
            t0 = time.time()
            rng = np.random.default_rng([s, 100 + i])  # build_corpus.build's seeding
            x, info, xml = bc.make_singing_track(singer, rng)
            digest = hashlib.sha256(xml.encode("utf-8")).hexdigest()
            if digest in dev_scores:
                raise SystemExit(f"seed {s} track {i + 1} reproduces a dev-corpus score; refusing")
            (out / "scores").mkdir(exist_ok=True)
            (out / "scores" / f"sing_s{s}_{i + 1:02d}.musicxml").write_text(xml, encoding="utf-8")
            add(
                dict(
                    id=f"sing_s{s}_{i + 1:02d}",
                    kind="singing",
                    engine="pysinsy",
                    package="pysinsy (PyPI)",
                    version=pysinsy.__version__.split("+")[0],
                    voice="nitech_jp_song070_f001 (USE_GV[MCP]:0, as build_corpus.py)",
                    licence="CC-BY-3.0 (HTS voice NIT SONG070 F001, Nagoya Institute of Technology); pysinsy MIT",
                    seed=[s, 100 + i],
                    score=f"scores/sing_s{s}_{i + 1:02d}.musicxml",
                    score_sha256=digest,
                    details={k: info[k] for k in ("key", "tempo_bpm", "meter", "n_notes", "midi_range")},
                ),
                x,
            )
            log(f"sources: sing seed {s} #{i + 1} ({time.time() - t0:.1f} s)")

    # --- speech: pool A clips the dev corpus did not use
    plan = [
        ("asterisk", "en_US_f_Allison", "asterisk-core-sounds-en-g722", "CC-BY-SA-3.0"),
        ("asterisk", "it_IT_m_Carlo", "asterisk-core-sounds-it-g722", "CC-BY-3.0"),
        ("fillets", "m", "fillets-ng-data-cs", "GPL-2"),
    ]
    debroot = args.debroot
    for source, spk, pkg, lic in plan:
        if any(e.get("speaker") == spk for e in entries):
            continue
        files = bc.fillets_clips(str(debroot), spk) if source == "fillets" else bc.asterisk_clips(str(debroot), spk)
        rel_all = [os.path.relpath(f, debroot) for f in files]
        keep = [f for f, r in zip(files, rel_all) if r not in dev_sources]
        excluded = len(files) - len(keep)
        clips = []
        for f in keep:
            x, sr0, (tail_s, slope) = bc.load_speech_clip(f)
            if len(x) < int(0.6 * SR) or len(x) > int(15 * SR) or (tail_s > 0.3 and slope > -40):
                continue
            clips.append(dict(path=f, x=x, sr0=sr0))
        rng = np.random.default_rng([seeds[0], 7])
        order = rng.permutation(len(clips))
        unused = [clips[i] for i in order]
        k = 0
        while sum(len(c["x"]) + int(bc.GAP * SR) for c in unused) >= int(0.8 * TRACK_S * SR):
            y, sel = bc.assemble_speech(unused, rng)
            if y is None or sum(len(c["x"]) for c in sel) < int(0.6 * TRACK_S * SR):
                break
            used = {id(c) for c in sel}
            unused = [c for c in unused if id(c) not in used]
            rels = [os.path.relpath(c["path"], debroot) for c in sel]
            assert not set(rels) & dev_sources
            k += 1
            add(
                dict(
                    id=f"speech_{spk}_{k:02d}",
                    kind="speech",
                    engine=source,
                    speaker=spk,
                    package=pkg + " (Debian)",
                    version=deb_version(debroot, pkg),
                    licence=lic,
                    seed=[seeds[0], 7],
                    source_files=rels,
                    dev_clips_excluded=excluded,
                ),
                bc.peak_normalise(y),
            )
        log(f"sources: {spk}: {k} tracks from {len(keep)} clips ({excluded} dev clips excluded)")

    # --- espeak-ng and flite
    for engine, n_tracks in (("espeak-ng", args.espeak_tracks), ("flite", args.flite_tracks)):
        version = dpkg_version(engine)
        for k in range(n_tracks):
            tid = f"{engine}_{k + 1:03d}"
            if tid in done:
                continue
            rng = np.random.default_rng([args.seed, 500 if engine == "espeak-ng" else 600, k])
            if engine == "espeak-ng":
                voice = str(rng.choice(ESPEAK_LANGS)) + str(rng.choice(ESPEAK_VARIANTS))
                lic = "GPL-3.0-or-later (espeak-ng program and voice data)"
            else:
                voice = str(rng.choice(FLITE_VOICES))
                lic = "CMU Flite licence (BSD-like; flite and its CMU ARCTIC / CMU Kal voices)"
            assert voice.split("+")[0] not in HELD_OUT[engine]
            y, texts, settings, sr0 = assemble_tts_track(engine, voice, rng)
            add(
                dict(
                    id=tid,
                    kind="speech",
                    engine=engine,
                    speaker=voice,
                    package=f"{engine} (Debian)",
                    version=version,
                    licence=lic,
                    seed=[args.seed, 500 if engine == "espeak-ng" else 600, k],
                    source_sample_rate=sr0,
                    settings=settings,
                    text=texts,
                ),
                peak_normalise(y),
            )
            log(f"sources: {tid} voice {voice}")


# ----------------------------------------------------------------------------------- chunks
def stage_chunks(args, out: Path) -> None:
    import pyloudnorm as pyln
    import soundfile as sf
    import torch

    from vocalfx.encoders.trained import FxEncoder

    if (out / "chunks.json").exists() and (out / "dry_feats.pt").exists():
        log("chunks: already built")
        return
    entries = json.loads((out / "sources.json").read_text())
    meter = pyln.Meter(SR)
    n = int(CHUNK_S * SR)
    chunks, table = [], []
    rng = np.random.default_rng([args.seed, 900])
    val_ids = {e["id"] for e in entries if rng.random() < args.val_fraction}
    for e in entries:
        x, sr = sf.read(out / e["file"], always_2d=True)
        assert sr == SR
        x = x.mean(1)
        gain_db = LUFS - meter.integrated_loudness(x)
        x = x * 10 ** (gain_db / 20)
        for c in range(len(x) // n):
            seg = x[c * n : (c + 1) * n]
            win = int(0.05 * SR)
            peak = np.max(np.lib.stride_tricks.sliding_window_view(np.abs(seg), win)[:: win // 4], axis=1)
            if 20 * np.log10(max(np.median(peak), 1e-12)) <= -60:
                continue
            table.append(
                dict(
                    source=e["id"],
                    chunk=c,
                    split="val" if e["id"] in val_ids else "train",
                    kind=e["kind"],
                    engine=e["engine"],
                    gain_db=round(float(gain_db), 3),
                )
            )
            chunks.append(seg.astype(np.float16))
    arr = np.stack(chunks)
    np.save(out / "chunks.npy.tmp.npy", arr)
    os.replace(out / "chunks.npy.tmp.npy", out / "chunks.npy")
    enc = FxEncoder(weights=None)
    feats, levels = [], []
    with torch.no_grad():
        for i in range(0, len(arr), 16):
            d = torch.from_numpy(arr[i : i + 16].astype(np.float32))[:, None].expand(-1, 2, -1)
            f, lv = enc.features(d)
            feats.append(f[:, 0].half())
            levels.append(lv)
    torch.save(dict(feats=torch.cat(feats), level_db=torch.cat(levels)), out / "dry_feats.pt")
    atomic_write_bytes(out / "chunks.json", json.dumps(table, indent=0).encode())
    log(f"chunks: {len(arr)} chunks of {CHUNK_S} s from {len(entries)} sources ({len(val_ids)} validation sources)")


# ----------------------------------------------------------------------------------- effects
def random_board(rng: np.random.Generator):
    """A random pedalboard effect: (function mono (T,) -> stereo (2, T), settings dict)."""
    import pedalboard as pb

    pre, s = [], {}
    if rng.random() < 0.7:
        s["highpass_hz"] = float(np.exp(rng.uniform(np.log(40), np.log(300))))
        pre.append(pb.HighpassFilter(cutoff_frequency_hz=s["highpass_hz"]))
    if rng.random() < 0.5:
        s["low_shelf"] = [float(np.exp(rng.uniform(np.log(80), np.log(400)))), float(rng.uniform(-9, 9))]
        pre.append(pb.LowShelfFilter(cutoff_frequency_hz=s["low_shelf"][0], gain_db=s["low_shelf"][1]))
    s["peaks"] = []
    for _ in range(int(rng.integers(0, 4))):
        p = [
            float(np.exp(rng.uniform(np.log(150), np.log(9000)))),
            float(rng.uniform(-12, 12)),
            float(rng.uniform(0.4, 3)),
        ]
        s["peaks"].append(p)
        pre.append(pb.PeakFilter(cutoff_frequency_hz=p[0], gain_db=p[1], q=p[2]))
    if rng.random() < 0.5:
        s["high_shelf"] = [float(np.exp(rng.uniform(np.log(2000), np.log(12000)))), float(rng.uniform(-9, 9))]
        pre.append(pb.HighShelfFilter(cutoff_frequency_hz=s["high_shelf"][0], gain_db=s["high_shelf"][1]))
    if rng.random() < 0.3:
        s["lowpass_hz"] = float(np.exp(rng.uniform(np.log(5000), np.log(18000))))
        pre.append(pb.LowpassFilter(cutoff_frequency_hz=s["lowpass_hz"]))
    if rng.random() < 0.7:
        c = dict(
            threshold_db=float(rng.uniform(-40, -10)),
            ratio=float(rng.uniform(1.5, 8)),
            attack_ms=float(rng.uniform(1, 30)),
            release_ms=float(rng.uniform(50, 400)),
        )
        s["compressor"] = c
        pre.append(pb.Compressor(**c))
    if rng.random() < 0.1:
        s["drive_db"] = float(rng.uniform(3, 12))
        pre.append(pb.Distortion(drive_db=s["drive_db"]))
    s["gain_db"] = float(rng.uniform(-6, 6))
    pre.append(pb.Gain(gain_db=s["gain_db"]))
    pre_board = pb.Pedalboard(pre)
    post = []
    if rng.random() < 0.15:
        s["chorus"] = dict(
            rate_hz=float(rng.uniform(0.3, 2)), depth=float(rng.uniform(0.1, 0.4)), mix=float(rng.uniform(0.1, 0.4))
        )
        post.append(pb.Chorus(**s["chorus"]))
    delays = None
    if rng.random() < 0.4:
        base = float(rng.uniform(0.08, 0.5))
        delays = dict(
            left_s=base,
            right_s=float(base * rng.uniform(0.5, 1.5)),
            feedback=float(rng.uniform(0, 0.5)),
            mix=float(rng.uniform(0.1, 0.4)),
        )
        s["delay"] = delays
    if rng.random() < 0.8:
        s["reverb"] = dict(
            room_size=float(rng.uniform(0.1, 0.95)),
            damping=float(rng.uniform(0.1, 0.9)),
            wet_level=float(rng.uniform(0.03, 0.4)),
            dry_level=float(rng.uniform(0.6, 1.0)),
            width=float(rng.uniform(0, 1)),
        )
        post.append(pb.Reverb(**s["reverb"]))
    pan = float(rng.uniform(-0.3, 0.3))
    s["pan"] = pan

    def apply(x: np.ndarray) -> np.ndarray:
        y = pre_board(x.astype(np.float32)[None], SR)[0]
        lr = np.stack([y * math.sqrt(0.5 * (1 - pan)), y * math.sqrt(0.5 * (1 + pan))])
        if delays is not None:
            chans = []
            for ch, t in ((0, delays["left_s"]), (1, delays["right_s"])):
                d = pb.Delay(delay_seconds=t, feedback=delays["feedback"], mix=delays["mix"])
                chans.append(d(lr[ch : ch + 1].astype(np.float32), SR)[0])
            lr = np.stack(chans)
        if post:
            lr = pb.Pedalboard(post)(lr.astype(np.float32), SR)
        return lr

    return apply, s


def mp3_roundtrip(y: np.ndarray, kbps: int) -> np.ndarray:
    """Encode stereo ``(2, T)`` as MP3 at ``kbps`` (pedalboard/LAME) and decode, re-aligned to ``y``.

    The signal is scaled to a -1 dBFS peak before encoding and back after decoding (an explicit,
    exact gain), so that the codec does not clip."""
    from pedalboard.io import AudioFile

    scale = 0.89 / max(float(np.max(np.abs(y))), 1e-9)
    buf = io.BytesIO()
    with AudioFile(buf, "w", SR, 2, format="mp3", quality=kbps) as f:
        f.write((y * scale).astype(np.float32))
    with AudioFile(io.BytesIO(buf.getvalue())) as f:
        z = f.read(f.frames)
    t = y.shape[1]
    # align: the decoder output starts with the encoder delay (~1105 samples); find it
    a, b = y.mean(0)[: 2 * SR], z.mean(0)[: 2 * SR + 4096]
    spec = np.fft.rfft(b, 2 * len(b)) * np.conj(np.fft.rfft(a, 2 * len(b)))
    xc = np.fft.irfft(spec)[:4096]
    lag = int(np.argmax(xc))
    z = z[:, lag : lag + t]
    if z.shape[1] < t:
        z = np.pad(z, ((0, 0), (0, t - z.shape[1])))
    return z / scale


def stage_blocks(args, out: Path) -> None:
    import torch

    from vocalfx import VocalChain
    from vocalfx.encoders.trained import FxEncoder
    from vocalfx.params import from_diffvox
    from vocalfx.prior import GaussianPrior

    table = json.loads((out / "chunks.json").read_text())
    chunks = np.load(out / "chunks.npy", mmap_mode="r")
    prior = GaussianPrior.default()
    mean = prior.mean
    L = torch.linalg.cholesky(prior.cov)
    coll = args.internal
    raw_all = np.load(coll / "raw_params.npy")
    train_rows = np.load(coll / "train_index.npy")
    internal = torch.from_numpy(from_diffvox(raw_all[train_rows]))  # (365, 130)
    internal_z = torch.linalg.solve_triangular(L, (internal - mean).T, upper=False).T
    chain = VocalChain(SR)
    enc = FxEncoder(weights=None)
    by_split = {sp: {} for sp in ("train", "val")}
    for i, c in enumerate(table):
        by_split[c["split"]].setdefault(c["source"], []).append(i)
    bdir = out / "blocks"
    bdir.mkdir(exist_ok=True)
    t_start, made = time.time(), 0
    for b in range(args.blocks):
        path = bdir / f"{b:05d}.pt"
        if path.exists():
            continue
        t0 = time.time()
        rng = np.random.default_rng([args.seed, 1000, b])
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        split = "val" if b % 10 == 0 else "train"
        sources = list(by_split[split])
        pick = rng.choice(len(sources), size=4, replace=False)
        chunk_ids = [int(rng.choice(by_split[split][sources[p]])) for p in pick]
        dry = torch.from_numpy(np.stack([chunks[i] for i in chunk_ids]).astype(np.float32))[:, None]  # (4, 1, T)
        effects, raws, zs, wets = [], [], [], []
        for _ in range(4):
            r = rng.random()
            eff = {}
            if r < 0.75:
                if r < 0.4:
                    s = float(rng.uniform(0.6, 1.2))
                    z = torch.randn(130, generator=gen, dtype=torch.float64) * s
                    eff = dict(type="prior", sigma=round(s, 3))
                else:
                    row = int(rng.integers(len(internal_z)))
                    z = internal_z[row] + 0.3 * torch.randn(130, generator=gen, dtype=torch.float64)
                    eff = dict(type="internal", train_row=int(train_rows[row]), perturb_sigma=0.3)
                raw = mean + L @ z
                with torch.no_grad():
                    y = chain(dry, raw.float()[None]).double().numpy()  # (4, 2, T)
                raws.append(raw)
                zs.append(z)
            else:
                apply, settings = random_board(rng)
                y = np.stack([apply(dry[k, 0].numpy()) for k in range(4)]).astype(np.float64)
                eff = dict(type="pedalboard", settings=settings)
                raws.append(torch.full((130,), float("nan"), dtype=torch.float64))
                zs.append(torch.full((130,), float("nan"), dtype=torch.float64))
            if rng.random() < 0.25:
                kbps = int(rng.choice([64, 96, 128, 160, 192]))
                y = np.stack([mp3_roundtrip(y[k], kbps) for k in range(4)])
                eff["mp3_kbps"] = kbps
            if not np.all(np.isfinite(y)):
                raise RuntimeError(f"block {b}: non-finite render for effect {eff}")
            effects.append(eff)
            wets.append(y)
        wet = torch.from_numpy(np.stack(wets).astype(np.float32))  # (E=4, C=4, 2, T)
        with torch.no_grad():
            f, lv = enc.features(wet.reshape(16, 2, -1))
        rec = dict(
            split=split,
            chunk_ids=torch.tensor(chunk_ids),
            effects=json.dumps(effects),
            feats=f.reshape(4, 4, *f.shape[1:]).half(),
            level_db=lv.reshape(4, 4).float(),
            raw=torch.stack(raws).float(),
            z=torch.stack(zs).float(),
        )
        buf = io.BytesIO()
        torch.save(rec, buf)
        atomic_write_bytes(path, buf.getvalue())
        made += 1
        if made % 10 == 1 or b == args.blocks - 1:
            el = time.time() - t_start
            log(f"blocks: {b + 1}/{args.blocks} ({time.time() - t0:.2f} s this block, {el / made:.2f} s/block)")


def write_manifest(args, out: Path) -> None:
    import importlib.metadata as md

    entries = json.loads((out / "sources.json").read_text()) if (out / "sources.json").exists() else []
    pk = {}
    for name in ("torch", "numpy", "pedalboard", "pysinsy", "soxr", "pyloudnorm", "soundfile", "av"):
        try:
            pk[name] = md.version(name)
        except md.PackageNotFoundError:
            pk[name] = None
    for deb in ("espeak-ng", "flite"):
        pk[f"{deb} (Debian)"] = dpkg_version(deb)
    n_blocks = len(list((out / "blocks").glob("*.pt"))) if (out / "blocks").is_dir() else 0
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    man = dict(
        command="python scripts/build_training_set.py " + " ".join(sys.argv[1:]),
        commit=git,
        seed=args.seed,
        sing_seeds=args.sing_seeds,
        sample_rate=SR,
        chunk_seconds=CHUNK_S,
        lufs=LUFS,
        held_out_voices=HELD_OUT,
        packages=pk,
        n_sources=len(entries),
        n_blocks=n_blocks,
        effects=dict(
            chain="vocalfx.VocalChain, presets: shipped prior samples and perturbed internal train_index presets",
            independent="pedalboard random boards",
            codec="MP3 64-192 kbps (pedalboard LAME)",
            never_used="diffvox-presets/medleydb; dev-corpus vocals and their source clips",
        ),
        sources=entries,
    )
    atomic_write_bytes(out / "manifest.json", json.dumps(man, indent=1, ensure_ascii=False).encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--out", type=Path, default=ROOT / "build" / "fx-train", help="output folder (default build/fx-train)"
    )
    ap.add_argument("--stage", choices=("all", "sources", "chunks", "blocks", "manifest"), default="all")
    ap.add_argument(
        "--shared", type=Path, default=ROOT.parent / "shared", help="the shared data folder (default ../shared)"
    )
    ap.add_argument(
        "--debroot",
        type=Path,
        default=None,
        help="folder with the pool-A Debian packages unpacked by dpkg -x "
        "(asterisk-core-sounds-en-g722, asterisk-core-sounds-it-g722, fillets-ng-data-cs); default OUT/debroot",
    )
    ap.add_argument("--seed", type=int, default=0, help="seed of the TTS texts, the split and the effects (default 0)")
    ap.add_argument("--sing-seeds", default="3,5,7", help="odd build_corpus seeds >= 3 for the singing (default 3,5,7)")
    ap.add_argument("--espeak-tracks", type=int, default=48, help="44 s espeak-ng tracks (default 48)")
    ap.add_argument("--flite-tracks", type=int, default=12, help="44 s flite tracks (default 12)")
    ap.add_argument(
        "--val-fraction", type=float, default=0.12, help="fraction of sources kept for validation (default 0.12)"
    )
    ap.add_argument("--blocks", type=int, default=1200, help="blocks of 4 chunks x 4 effects (default 1200)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    args.debroot = (args.debroot or out / "debroot").resolve()
    args.corpus_script = args.shared / "corpus" / "build_corpus.py"
    args.dev_corpus = args.shared / "corpus" / "dev"
    args.internal = args.shared / "diffvox-presets" / "internal"
    if args.stage in ("all", "sources"):
        stage_sources(args, out)
        write_manifest(args, out)
    if args.stage in ("all", "chunks"):
        stage_chunks(args, out)
    if args.stage in ("all", "blocks"):
        stage_blocks(args, out)
    write_manifest(args, out)
    log("done")


if __name__ == "__main__":
    main()
