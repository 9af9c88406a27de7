#!/usr/bin/env python
"""Benchmark vocal separation: SI-SDR improvement, runtime, memory, and what it costs a match.

Mixtures (from an evaluation corpus, by default ``../shared/corpus/dev``): each track's dry vocal
at the protocol loudness is rendered through its true preset (as a reference song's vocal would
be processed: stereo, EQ, compression, delay, reverb), and the corpus's accompaniment clip number
``(track index mod n_clips) + 1`` is added at a vocal-to-accompaniment ratio (VAR, energy ratio of
the whole stereo signals) of -6, 0 and +6 dB. Nothing is normalised afterwards.

Sections (each can be skipped):

``sdr``     every track x ratio through each backend: SI-SDR of the estimated vocal against the
            true (processed) vocal, minus the SI-SDR of the mix itself (the improvement, dB);
            SI-SDR is computed over both channels laid end to end, zero-mean not enforced
            (Le Roux et al. 2019, scale-invariant). Also the accompaniment's improvement, and the
            backend's runtime per minute of audio (wall clock, this process's torch threads).
``match``   for a few tracks at one ratio: the prior mean, and ``vocalfx.match`` from the protocol's
            input (dry chunks at odd positions) against the protocol's reference (the even
            chunks) taken from (a) the true vocal, with match's defaults, (b) the vocal each
            backend separates from the mix, with the ``--separate`` defaults and with match's
            defaults; each prediction is scored like ``vocalfx eval`` (MSS L/R of the whole dry
            track rendered with it against the whole true wet track).
``memory``  a ``minutes``-long stereo mix (mixtures laid end to end) separated in a fresh process,
            in memory (``vocalfx.separate.separate``) and from file to file (``vocalfx separate``),
            reporting each process's peak resident memory and wall time.

Usage:
    python benchmarks/bench_separate.py [--backends classical] [--sections sdr,match,memory]
        [--corpus DIR] [--accompaniment DIR,DIR,...]
        [--tracks all] [--match-tracks sing_01,sing_05,speech_01,speech_05] [--match-ratio 0]
        [--minutes 5] [--threads 1] [--json docs/data/separate_bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = Path(os.environ.get("VOCALFX_SHARED", HERE.parent.parent / "shared")) / "corpus" / "dev"


def si_sdr(estimate: torch.Tensor, reference: torch.Tensor) -> float:
    """Scale-invariant SDR (dB) of ``estimate`` against ``reference``, all channels together."""
    e = estimate.reshape(-1).double()
    r = reference.reshape(-1).double()
    target = (e @ r) / (r @ r) * r
    noise = e - target
    return float(10 * torch.log10((target @ target) / (noise @ noise).clamp_min(1e-30)))


def band_level_error_db(estimate: torch.Tensor, reference: torch.Tensor, low_hz: float = 11025.0) -> float:
    """Level (dB) of ``estimate`` above ``low_hz`` minus that of ``reference``: the air band's error.

    The pretrained separator models only the band below 11 kHz; this says what each treatment of
    the band above leaves of the vocal's air, which the EQ match reads.
    """
    n = reference.shape[-1]
    freqs = torch.fft.rfftfreq(n, 1.0 / 44100)
    band = freqs >= low_hz

    def energy(x):
        return float(torch.fft.rfft(x.double(), dim=-1)[..., band].abs().pow(2).sum())

    return 10.0 * float(torch.log10(torch.tensor(max(energy(estimate), 1e-30) / max(energy(reference), 1e-30))))


def load_accompaniments(folders) -> list:
    """``(name, (channels, time))`` of every ``.flac`` in ``folders``, interleaved folder by folder.

    Interleaving gives consecutive tracks clips of different kinds (loops, generated songs,
    soundfont renders) when each kind is in its own folder.
    """
    import soundfile as sf

    per_folder = []
    for folder in folders:
        files = sorted(Path(folder).glob("*.flac"))
        if not files:
            raise SystemExit(f"{folder}: no .flac accompaniment clips")
        clips = []
        for f in files:
            data, rate = sf.read(str(f), dtype="float32", always_2d=True)
            if rate != 44100:
                raise SystemExit(f"{f}: {rate} Hz; the benchmark expects 44.1 kHz accompaniment")
            clips.append((f.name, torch.from_numpy(data.T.copy())))
        per_folder.append(clips)
    out = []
    for i in range(max(len(c) for c in per_folder)):
        out.extend(c[i] for c in per_folder if i < len(c))
    return out


def make_mix(vocal: torch.Tensor, accompaniment: torch.Tensor, var_db: float):
    """``(mix, vocal, scaled accompaniment)`` at vocal-to-accompaniment energy ratio ``var_db``."""
    n = min(vocal.shape[-1], accompaniment.shape[-1])
    v, a = vocal[:, :n], accompaniment[:, :n]
    if a.shape[0] == 1:
        a = a.expand(2, -1)
    gain = (v.pow(2).sum() / a.pow(2).sum()).sqrt() / 10 ** (var_db / 20)
    a = a * gain
    return v + a, v, a


def section_sdr(tracks, clips, backends, ratios, log, options=None):
    from vocalfx.separate import get_separator, separate

    rows = []
    for backend in backends:
        sep = get_separator(backend, **(options or {}))
        log(f"  {backend}: {sep.describe()}, options {options or {}}")
        seconds_audio = 0.0
        seconds_wall = 0.0
        for track in tracks:
            clip_name, clip = clips[track.index % len(clips)]
            for r in ratios:
                mix, v, a = make_mix(track.wet, clip, r)
                t0 = time.perf_counter()
                ev, ea = separate(mix, 44100, backend=sep)
                dt = time.perf_counter() - t0
                seconds_wall += dt
                seconds_audio += mix.shape[-1] / 44100
                row = {
                    "backend": backend,
                    "track": track.name,
                    "accompaniment": clip_name,
                    "var_db": r,
                    "sdr_mix_db": si_sdr(mix, v),
                    "sdr_vocal_db": si_sdr(ev, v),
                    "sdr_mix_acc_db": si_sdr(mix, a),
                    "sdr_acc_db": si_sdr(ea, a),
                    "seconds": dt,
                    "audio_seconds": mix.shape[-1] / 44100,
                }
                row["improvement_db"] = row["sdr_vocal_db"] - row["sdr_mix_db"]
                row["acc_improvement_db"] = row["sdr_acc_db"] - row["sdr_mix_acc_db"]
                row["air_band_error_db"] = band_level_error_db(ev, v)
                rows.append(row)
                log(
                    f"  {backend} {track.name} + {clip_name} at {r:+g} dB: vocal SI-SDR {row['sdr_mix_db']:+.2f} -> "
                    f"{row['sdr_vocal_db']:+.2f} dB ({row['improvement_db']:+.2f}), {dt:.1f} s"
                )
        log(
            f"  {backend}: {seconds_wall:.1f} s for {seconds_audio / 60:.1f} min of audio = "
            f"{60 * seconds_wall / seconds_audio:.2f} s per minute"
        )
    summary = []
    for backend in backends:
        for r in ratios:
            sel = [x for x in rows if x["backend"] == backend and x["var_db"] == r]
            imp = [x["improvement_db"] for x in sel]
            secs = sum(x["seconds"] for x in sel)
            mins = sum(x["audio_seconds"] for x in sel) / 60
            summary.append(
                {
                    "backend": backend,
                    "var_db": r,
                    "tracks": len(sel),
                    "mix_sdr_db": statistics.mean(x["sdr_mix_db"] for x in sel),
                    "vocal_sdr_db": statistics.mean(x["sdr_vocal_db"] for x in sel),
                    "improvement_mean_db": statistics.mean(imp),
                    "improvement_median_db": statistics.median(imp),
                    "improvement_min_db": min(imp),
                    "improved_tracks": sum(1 for x in imp if x > 0),
                    "acc_improvement_mean_db": statistics.mean(x["acc_improvement_db"] for x in sel),
                    "air_band_error_mean_db": statistics.mean(x["air_band_error_db"] for x in sel),
                    "air_band_abs_error_mean_db": statistics.mean(abs(x["air_band_error_db"]) for x in sel),
                    "seconds_per_minute": secs / mins,
                }
            )
    return rows, summary


def _chunks_at(audio: torch.Tensor, track, positions: str) -> torch.Tensor:
    """The protocol's chunks of ``audio`` (``(C, T)``): ``even`` (reference) or ``odd`` (input) among the active."""
    from vocalfx.chunks import active_mask, cut_chunks

    chunk = int(round(track.chunk_seconds * 44100))
    active = active_mask(cut_chunks(track.wet, chunk, cover_tail=False), 44100)
    chunks = cut_chunks(audio, chunk, cover_tail=False)[active]
    picked = chunks[0::2] if positions == "even" else chunks[1::2]
    return picked.permute(1, 0, 2).reshape(audio.shape[0], -1).contiguous()


def _matched_mss(track, dry, reference, settings, name):
    """MSS/MLDR L/R of ``vocalfx.match(dry, reference, **settings)``, scored like ``vocalfx eval``."""
    from vocalfx import match
    from vocalfx.evaluation.runner import score

    t0 = time.perf_counter()
    res = match(dry, reference, 44100, chunk_seconds=track.chunk_seconds, progress=False, name=name, **settings)
    m = score(track, res.preset.vector)
    return {"mss_lr": m["mss_lr"], "mldr_lr": m["mldr_lr"], "pmse": m["pmse"], "seconds": time.perf_counter() - t0}


def section_match(tracks, clips, backends, ratio, log, candidates=None, on_row=None, only_candidates=False):
    """What separation costs a match, per mix at ``ratio`` dB.

    Rows per track: the prior mean (no match); ``vocalfx match`` with its defaults from the true
    processed vocal (the target a separated reference can at best reach); and for each backend,
    the reference separated from the mix and matched with the ``--separate`` defaults
    (``vocalfx.defaults.SEPARATED_*``) and with the plain defaults. The input is the protocol's
    dry chunks (odd positions), the reference its even chunks, as ``vocalfx eval``'s match row.
    ``candidates`` (label -> ``vocalfx.match`` settings) adds a row per separated reference for
    each, so that ``--separate``'s defaults are chosen on these mixes; ``on_row(rows)`` is called
    after each row (the caller saves partial results). ``only_candidates`` skips the true-vocal
    row and the two default rows (already measured in another run).
    """
    from vocalfx import defaults as D
    from vocalfx.evaluation.runner import score
    from vocalfx.prior import GaussianPrior
    from vocalfx.separate import separate

    separated_defaults = {
        "encoder": D.SEPARATED_ENCODER,
        "alpha": D.SEPARATED_ALPHA,
        "init": D.SEPARATED_INIT,
        "steps": D.SEPARATED_STEPS,
        "lr": D.SEPARATED_LR,
    }
    mean_vector = GaussianPrior.default().mean.double().numpy()
    rows = []
    for track in tracks:
        clip_name, clip = clips[track.index % len(clips)]
        mix, _, _ = make_mix(track.wet, clip, ratio)
        dry = _chunks_at(track.dry, track, "odd")
        base = {"track": track.name, "accompaniment": clip_name, "var_db": ratio}
        m = score(track, mean_vector)
        cases = [("prior mean", None, None, None)]
        if not only_candidates:
            cases.append(("true vocal", "default", _chunks_at(track.wet, track, "even"), {}))
        for backend in backends:
            ev, _ = separate(mix, 44100, backend=backend)
            ref = _chunks_at(ev, track, "even")
            if not only_candidates:
                cases.append((f"separated ({backend})", "separated", ref, separated_defaults))
                cases.append((f"separated ({backend})", "default", ref, {}))
            for label, settings in (candidates or {}).items():
                cases.append((f"separated ({backend})", label, ref, settings))
        for label, settings_name, ref, settings in cases:
            if ref is None:
                r = {"mss_lr": m["mss_lr"], "mldr_lr": m["mldr_lr"], "pmse": m["pmse"], "seconds": 0.0}
            else:
                r = _matched_mss(track, dry, ref, settings, f"{track.name}-{label}")
            rows.append({**base, "reference": label, "settings": settings_name, **r})
            log(
                f"  {track.name} ({clip_name}, {ratio:+g} dB) {label}, {settings_name or '-'}: "
                f"MSS {r['mss_lr']:.4f}, MLDR {r['mldr_lr']:.4f} [{r['seconds']:.0f} s]"
            )
            if on_row is not None:
                on_row(rows)
    return rows


# Peak memory is read from /proc/self/status (VmHWM, the high-water mark of this process's own
# address space). getrusage's ru_maxrss would not do: Linux carries the RSS of the forked copy of
# this (large) benchmark process over the exec into the child's figure.
_HWM = r"""
def vm_hwm_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

_MEMORY_CHILD = (
    _HWM
    + r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[3]))
import soundfile as sf
from vocalfx.separate import separate
data, rate = sf.read(sys.argv[1], dtype="float32", always_2d=True)
mix = torch.from_numpy(data.T.copy())
t0 = time.perf_counter()
v, a = separate(mix, rate, backend=sys.argv[2])
dt = time.perf_counter() - t0
assert torch.isfinite(v).all() and torch.isfinite(a).all()
print(json.dumps({"seconds": dt, "peak_rss_mb": vm_hwm_mb()}))
"""
)

_CLI_CHILD = (
    _HWM
    + r"""
import json, sys, time
t0 = time.perf_counter()
from vocalfx.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "seconds": time.perf_counter() - t0, "peak_rss_mb": vm_hwm_mb()}))
sys.exit(code)
"""
)


def _run_child(cmd, env) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def section_memory(tracks, clips, backends, minutes, threads, log):
    import soundfile as sf

    frames = int(minutes * 60 * 44100)
    parts, total, i = [], 0, 0
    while total < frames:
        track = tracks[i % len(tracks)]
        mix, _, _ = make_mix(track.wet, clips[i % len(clips)][1], 0.0)
        parts.append(mix)
        total += mix.shape[-1]
        i += 1
    long_mix = torch.cat(parts, dim=-1)[:, :frames]
    rows = []
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long_mix.wav"
        sf.write(str(path), long_mix.T.numpy(), 44100, subtype="FLOAT")
        del long_mix, parts
        for backend in backends:
            r = _run_child([sys.executable, "-c", _MEMORY_CHILD, str(path), backend, str(threads)], env)
            rows.append(
                {
                    "backend": backend,
                    "mode": "separate() in memory",
                    "minutes": minutes,
                    "peak_rss_mb": r["peak_rss_mb"],
                    "seconds": r["seconds"],
                }
            )
            log(
                f"  {backend}, separate() in memory, {minutes:g} min stereo: peak RSS {r['peak_rss_mb']:.0f} MB, "
                f"{r['seconds']:.1f} s"
            )
            r = _run_child(
                [
                    sys.executable,
                    "-c",
                    _CLI_CHILD,
                    "separate",
                    str(path),
                    "-o",
                    str(Path(tmp) / "stems"),
                    "--backend",
                    backend,
                    "--threads",
                    str(threads),
                    "-q",
                ],
                env,
            )
            rows.append(
                {
                    "backend": backend,
                    "mode": "vocalfx separate (file to file)",
                    "minutes": minutes,
                    "peak_rss_mb": r["peak_rss_mb"],
                    "seconds": r["seconds"],
                }
            )
            log(
                f"  {backend}, vocalfx separate file to file, {minutes:g} min stereo: "
                f"peak RSS {r['peak_rss_mb']:.0f} MB, "
                f"{r['seconds']:.1f} s (including imports)"
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument(
        "--accompaniment",
        default=None,
        help="comma-separated folders of 44.1 kHz .flac accompaniment clips (default: the corpus's accompaniment/)",
    )
    ap.add_argument("--backends", default="classical", help="comma-separated backends (default classical)")
    ap.add_argument("--sections", default="sdr,match,memory")
    ap.add_argument("--ratios", default="-6,0,6", help="vocal-to-accompaniment ratios (dB)")
    ap.add_argument("--tracks", default="all", help="tracks for the sdr section (comma-separated or 'all')")
    ap.add_argument("--match-tracks", default="sing_01,sing_05,speech_01,speech_05")
    ap.add_argument("--match-ratio", type=float, default=0.0)
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the memory section's mix")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--options",
        type=json.loads,
        default=None,
        help="backend options for the sdr section, as JSON (ablations), e.g. '{\"centre_weight\": 0.5}'",
    )
    ap.add_argument(
        "--candidates",
        type=json.loads,
        default=None,
        help="match section: extra settings for separated references, as JSON label -> vocalfx.match settings, "
        'e.g. \'{"fx+mfcc-a0.2": {"encoder": "fx+mfcc", "alpha": 0.2}}\'',
    )
    ap.add_argument(
        "--only-candidates", action="store_true", help="match section: only the prior mean and the --candidates rows"
    )
    ap.add_argument("--json", type=Path, default=None, help="write every measurement here (updated as it goes)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    from vocalfx.evaluation import load_corpus
    from vocalfx.evaluation.corpus import prepare_track

    def log(msg):
        print(msg, flush=True)

    backends = [b for b in a.backends.split(",") if b]
    sections = set(a.sections.split(","))
    ratios = [float(r) for r in a.ratios.split(",")]
    corpus = load_corpus(a.corpus)
    names = [t.name for t in corpus.tracks]
    folders = a.accompaniment.split(",") if a.accompaniment else [a.corpus / "accompaniment"]
    clips = load_accompaniments(folders)
    load = os.getloadavg()
    log(
        f"# bench_separate: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{a.threads} torch thread(s); backends {backends}; corpus {a.corpus} ({len(names)} tracks, "
        f"{len(clips)} accompaniment clips); load average before {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}"
    )

    def prepared(wanted):
        out = []
        for spec in corpus.tracks:
            if wanted == "all" or spec.name in wanted.split(","):
                t = prepare_track(spec, chunk_seconds=corpus.chunk_seconds, lufs=corpus.lufs)
                t.index = names.index(spec.name)
                out.append(t)
        return out

    result = {
        "options": a.options,
        "machine": {
            "arch": platform.machine(),
            "cores": os.cpu_count(),
            "torch": torch.__version__,
            "threads": a.threads,
            "load_before": load,
        },
        "corpus": os.path.relpath(a.corpus, HERE.parent),
    }
    if "sdr" in sections:
        log("## SI-SDR improvement (vocal estimate vs the mix, against the true processed vocal)")
        rows, summary = section_sdr(prepared(a.tracks), clips, backends, ratios, log, a.options)
        result["sdr"], result["sdr_summary"] = rows, summary
        log(
            "| backend | VAR | tracks | mix SI-SDR | vocal SI-SDR | improvement mean | median | min | improved | "
            "accomp. improvement | s per min of audio |"
        )
        log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in summary:
            log(
                f"| {s['backend']} | {s['var_db']:+g} dB | {s['tracks']} | {s['mix_sdr_db']:+.2f} | "
                f"{s['vocal_sdr_db']:+.2f} | **{s['improvement_mean_db']:+.2f}** | "
                f"{s['improvement_median_db']:+.2f} | {s['improvement_min_db']:+.2f} | "
                f"{s['improved_tracks']}/{s['tracks']} | {s['acc_improvement_mean_db']:+.2f} | "
                f"{s['seconds_per_minute']:.2f} |"
            )
    if "match" in sections:
        log(f"## Match cost at {a.match_ratio:+g} dB (MSS L/R of the scored render, lower is better)")
        result["match_candidates"] = a.candidates

        def save_partial(rows):
            if a.json:
                a.json.parent.mkdir(parents=True, exist_ok=True)
                a.json.write_text(json.dumps({**result, "match": rows, "partial": True}, indent=1) + "\n")

        rows = section_match(
            prepared(a.match_tracks),
            clips,
            backends,
            a.match_ratio,
            log,
            a.candidates,
            on_row=save_partial,
            only_candidates=a.only_candidates,
        )
        result["match"] = rows
        tracks = sorted({r["track"] for r in rows})
        log("| reference | settings | " + " | ".join(tracks) + " | mean MSS | mean MLDR |")
        log("|---|---|" + "---:|" * (len(tracks) + 2))
        for key in dict.fromkeys((r["reference"], r["settings"]) for r in rows):
            sel = sorted((r for r in rows if (r["reference"], r["settings"]) == key), key=lambda r: r["track"])
            log(
                f"| {key[0]} | {key[1] or '-'} | "
                + " | ".join(f"{r['mss_lr']:.4f}" for r in sel)
                + f" | {statistics.mean(r['mss_lr'] for r in sel):.4f}"
                + f" | {statistics.mean(r['mldr_lr'] for r in sel):.4f} |"
            )
    if "memory" in sections:
        log(f"## Memory: {a.minutes:g} min stereo mix")
        result["memory"] = section_memory(prepared("all"), clips, backends, a.minutes, a.threads, log)
    load = os.getloadavg()
    result["machine"]["load_after"] = load
    log(f"# load average after {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(result, indent=1) + "\n")
        log(f"# wrote {a.json}")


if __name__ == "__main__":
    main()
