"""vocalfx.separate: the interface, chunking, the classical backend, `vocalfx separate` and
`vocalfx match --separate` (the demucs backend is in test_separate_demucs.py)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from vocalfx.cli import main
from vocalfx.separate import (
    SeparationError,
    Separator,
    available_backends,
    get_separator,
    iter_separate,
    register_backend,
    separate,
    separate_file,
    stem_paths,
)
from vocalfx.separate.chunks import chunk_layout

SR = 44100


def si_sdr(est: torch.Tensor, ref: torch.Tensor) -> float:
    e, r = est.reshape(-1).double(), ref.reshape(-1).double()
    t = (e @ r) / (r @ r) * r
    return float(10 * torch.log10((t @ t) / ((e - t) @ (e - t))))


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def synthetic_song(seconds: float = 8.0, var_db: float = 0.0, seed: int = 0):
    """A repeating accompaniment (a 0.5 s loop of a decaying noise burst and a bass-free chord) and
    a non-repeating 'vocal' (a gliding harmonic tone with vibrato, phrases with gaps), stereo."""
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * SR)
    t = torch.arange(n, dtype=torch.float64) / SR
    loop_n = SR // 2
    lt = torch.arange(loop_n, dtype=torch.float64) / SR
    burst = torch.randn(loop_n, generator=g, dtype=torch.float64) * torch.exp(-lt / 0.03)
    chord = sum(torch.sin(2 * math.pi * f * lt) for f in (392.0, 494.0, 587.0)) * 0.2
    loop = burst + chord
    acc = loop.repeat(n // loop_n + 1)[:n]
    acc = torch.stack([acc, 0.8 * acc])
    f0 = 220 * 2 ** ((t * 0.37 % 1.0) * 7 / 12) * (1 + 0.01 * torch.sin(2 * math.pi * 5.5 * t))
    phase = 2 * math.pi * torch.cumsum(f0, 0) / SR
    voice = sum(torch.sin(k * phase) / k for k in range(1, 8))
    voice = voice * (torch.sin(2 * math.pi * t / 2.3) > -0.3).double()
    voice = torch.stack([voice, voice])
    gain = (voice.pow(2).sum() / acc.pow(2).sum()).sqrt() / 10 ** (var_db / 20)
    acc = acc * gain
    return (voice + acc).float(), voice.float(), acc.float()


# --- the interface ---------------------------------------------------------------------------------


def test_classical_shapes_and_exact_sum():
    mix, _, _ = synthetic_song(4.0)
    for x in (mix, mix[:1], mix.unsqueeze(0).repeat(2, 1, 1)):
        v, a = separate(x, SR, backend="classical")
        assert v.shape == x.shape and a.shape == x.shape
        assert v.dtype == torch.float32 and a.dtype == torch.float32
        assert torch.isfinite(v).all() and torch.isfinite(a).all()
        torch.testing.assert_close(v + a, x, atol=1e-6, rtol=0)
    x64 = mix.double()
    v, a = separate(x64, 22050, backend="classical")  # any rate: the classical backend works at the input's rate
    assert v.shape == x64.shape
    assert torch.equal(x64, mix.double()), "the input must not be modified"


def test_classical_improves_si_sdr_on_a_repeating_accompaniment():
    for var_db in (-6.0, 0.0, 6.0):
        mix, voice, acc = synthetic_song(8.0, var_db)
        v, a = separate(mix, SR, backend="classical")
        gain_v = si_sdr(v, voice) - si_sdr(mix, voice)
        gain_a = si_sdr(a, acc) - si_sdr(mix, acc)
        # measured: +6.1 to +6.6 dB on the vocal; a method that returned the mix would score 0
        assert gain_v > 3.0, (var_db, gain_v)
        assert gain_a > 0.0, (var_db, gain_a)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.zeros(SR), "channels, time"),
        (torch.zeros(2, SR, dtype=torch.int16), "floating-point"),
        (torch.zeros(2, 0), "non-empty"),
        (torch.tensor([[0.0, float("nan")] * 100]), "NaN or Inf"),
    ],
)
def test_bad_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        separate(bad, SR, backend="classical")


def test_bad_rate_and_backend():
    with pytest.raises(ValueError, match="sample_rate"):
        separate(torch.zeros(2, 4096), 0)
    with pytest.raises(SeparationError, match="unknown separator backend 'nope'.*classical"):
        separate(torch.zeros(2, 4096), SR, backend="nope")
    with pytest.raises(SeparationError, match="window_ms"):
        get_separator("classical", window_ms=-1)
    with pytest.raises(SeparationError, match="classical"):
        get_separator("classical", not_an_option=1)


def test_short_input_is_all_accompaniment():
    x = torch.randn(2, 1000) * 0.1  # shorter than one STFT frame
    v, a = separate(x, SR, backend="classical")
    assert torch.equal(v, torch.zeros_like(x)) and torch.equal(a, x)


class Identity(Separator):
    """Returns the chunk as the vocal: chunking and cross-fades must then give back the mix exactly."""

    name = "identity"
    calls = 0

    def separate_chunk(self, mix, sample_rate):
        Identity.calls += 1
        return mix.clone(), torch.zeros_like(mix)


class StereoAt48k(Separator):
    """Needs stereo at 48 kHz; returns half the chunk as vocal."""

    name = "stereo48"
    sample_rate = 48000
    channels = 2

    def separate_chunk(self, mix, sample_rate):
        assert sample_rate == 48000 and mix.shape[0] == 2
        return 0.5 * mix, 0.5 * mix


def test_chunk_layout_covers_input():
    assert chunk_layout(10, 4, 1) == [0, 3, 6]
    assert chunk_layout(4, 4, 1) == [0]
    with pytest.raises(ValueError):
        chunk_layout(10, 4, 4)


def test_chunked_cross_fade_is_exact_for_identity():
    x = torch.randn(2, 10 * SR + 123, dtype=torch.float32)
    Identity.calls = 0
    v, a = separate(x, SR, backend=Identity(), chunk_seconds=3.0, overlap_seconds=0.5)
    assert Identity.calls == 4
    torch.testing.assert_close(v, x, atol=1e-6, rtol=0)
    assert torch.equal(a, torch.zeros_like(x))
    covered = 0
    for start, bv, _ in iter_separate(
        lambda s, e: x[:, s:e].clone(), x.shape[-1], SR, Identity(), chunk_seconds=3.0, overlap_seconds=0.5
    ):
        assert start == covered
        covered += bv.shape[-1]
    assert covered == x.shape[-1]


def test_backend_rate_and_channel_adaptation_and_registry():
    register_backend("stereo48", StereoAt48k, overwrite=True)
    assert "stereo48" in available_backends()
    with pytest.raises(ValueError, match="already exists"):
        register_backend("classical", StereoAt48k)
    t = torch.arange(SR * 2) / SR
    x = (0.1 * sum(torch.sin(2 * math.pi * f * t) for f in (110.0, 1234.5, 9876.0)))[None]
    v, a = separate(x, SR, backend="stereo48")
    assert v.shape == x.shape
    # resampled 44.1 -> 48 -> 44.1 kHz (torchaudio, band-limited): tones well below Nyquist come
    # back as half the input to about -78 dB, away from the edges the resampler pads with zeros
    mid = slice(SR // 10, -SR // 10)
    err = (v - 0.5 * x)[:, mid].pow(2).sum() / (0.5 * x)[:, mid].pow(2).sum()
    assert float(err) < 1e-6, float(err)  # measured 1.5e-8
    with pytest.raises(SeparationError, match="2-channel"):
        separate(torch.randn(3, SR) * 0.1, SR, backend="stereo48")


def test_dev_mixture_improves(shared):
    """A dev-corpus vocal rendered through its preset, over its accompaniment at 0 dB."""
    from vocalfx.evaluation import load_corpus
    from vocalfx.evaluation.corpus import prepare_track

    corpus = load_corpus(shared / "corpus" / "dev", tracks=["speech_01"])
    track = prepare_track(corpus.tracks[0])
    acc, rate = sf.read(
        str(shared / "corpus" / "dev" / "accompaniment" / "acc_02.flac"), dtype="float32", always_2d=True
    )
    n = 20 * SR
    voice = track.wet[:, :n]
    acc = torch.from_numpy(acc.T.copy())[:, :n]
    acc = acc * (voice.pow(2).sum() / acc.pow(2).sum()).sqrt()
    mix = voice + acc
    v, _ = separate(mix, SR, backend="classical")
    gain = si_sdr(v, voice) - si_sdr(mix, voice)
    # measured +5.15 dB on this 20 s excerpt (+6.7 dB on the whole 44 s); the bound leaves room
    # for float and library differences, not for a method that does nothing (0 dB)
    assert gain > 3.0, gain


# --- vocalfx separate -----------------------------------------------------------------------------


def write_song(path, seconds=6.0, var_db=0.0, channels=2):
    mix, _, _ = synthetic_song(seconds, var_db)
    sf.write(str(path), mix[:channels].T.numpy(), SR, subtype="FLOAT")
    return mix[:channels]


def test_cli_writes_stems(tmp_path, capsys):
    song = tmp_path / "song.wav"
    mix = write_song(song, 10.0)
    before = sha(song)
    out = tmp_path / "stems"
    assert (
        main(
            [
                "separate",
                str(song),
                "-o",
                str(out),
                "-q",
                "--backend",
                "classical",
                "--chunk-seconds",
                "4",
                "--overlap-seconds",
                "1",
            ]
        )
        == 0
    )
    assert sha(song) == before
    vo, ra = sf.read(str(out / "song_vocals.wav"), dtype="float32", always_2d=True)
    ac, rb = sf.read(str(out / "song_accompaniment.wav"), dtype="float32", always_2d=True)
    assert ra == rb == SR and vo.shape == ac.shape == (mix.shape[-1], 2)
    assert sf.info(str(out / "song_vocals.wav")).subtype == "FLOAT"
    np.testing.assert_allclose(vo + ac, mix.T.numpy(), atol=1e-6)
    # file to file in chunks gives exactly what separate() gives in memory with the same chunks
    v, a = separate(mix, SR, backend="classical", chunk_seconds=4.0, overlap_seconds=1.0)
    np.testing.assert_array_equal(vo, v.T.numpy())
    assert [p.name for p in out.iterdir()] and not [p for p in out.iterdir() if p.name.startswith(".")]
    assert "classical" in capsys.readouterr().out


def test_cli_mono_and_other_rate(tmp_path):
    song = tmp_path / "mono.flac"
    mix, _, _ = synthetic_song(3.0)
    sf.write(str(song), mix[0].numpy() * 0.5, 32000, subtype="PCM_24")
    assert main(["separate", str(song), "-o", str(tmp_path), "-q", "--backend", "classical"]) == 0
    info = sf.info(str(tmp_path / "mono_vocals.wav"))
    assert (info.channels, info.samplerate, info.frames) == (1, 32000, sf.info(str(song)).frames)


def test_cli_errors_leave_nothing(tmp_path, capsys):
    out = tmp_path / "stems"
    assert main(["separate", str(tmp_path / "missing.wav"), "-o", str(out), "-q", "--backend", "classical"]) == 1
    assert "missing.wav" in capsys.readouterr().err

    bad = tmp_path / "nan.wav"
    x = np.zeros((SR * 3, 2), dtype=np.float32)
    x[SR * 2, 0] = np.nan
    sf.write(str(bad), x, SR, subtype="FLOAT")
    out.mkdir()
    (out / "nan_vocals.wav").write_bytes(b"old stem")
    assert (
        main(
            [
                "separate",
                str(bad),
                "-o",
                str(out),
                "-q",
                "--backend",
                "classical",
                "--chunk-seconds",
                "1.5",
                "--overlap-seconds",
                "0.2",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "nan.wav" in err and "NaN" in err and len(err.strip().splitlines()) == 1
    assert (out / "nan_vocals.wav").read_bytes() == b"old stem", "an existing stem must not be touched"
    assert sorted(p.name for p in out.iterdir()) == ["nan_vocals.wav"], "no partial or temporary files"

    empty = tmp_path / "empty.wav"
    sf.write(str(empty), np.zeros((0, 2), dtype=np.float32), SR, subtype="FLOAT")
    assert main(["separate", str(empty), "-o", str(out), "-q", "--backend", "classical"]) == 1
    assert "no samples" in capsys.readouterr().err

    song = tmp_path / "song.wav"
    write_song(song, 2.0)
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["separate", str(song), "-o", str(afile), "-q", "--backend", "classical"]) == 1
    assert "not a directory" in capsys.readouterr().err
    assert main(["separate", str(song), "-o", str(out), "-q", "--backend", "nope"]) == 1
    assert "unknown separator backend" in capsys.readouterr().err
    # the stems may not overwrite the mix itself
    same = tmp_path / "x_vocals.wav"
    write_song(same, 2.0)
    before = sha(same)
    assert main(["separate", str(same), "-o", str(tmp_path / "o2"), "-q", "--backend", "classical"]) == 0
    assert (
        main(
            [
                "separate",
                str(tmp_path / "o2" / "x_vocals_vocals.wav"),
                "-o",
                str(tmp_path),
                "-q",
                "--backend",
                "classical",
            ]
        )
        == 0
    )
    assert sha(same) == before


def test_separate_file_api(tmp_path):
    """The streaming separation the CLI uses, as a library call: same stems, a report of what it did."""
    song = tmp_path / "song.wav"
    mix = write_song(song, 5.0)
    res = separate_file(song, tmp_path / "new" / "dir", "classical", chunk_seconds=2.0, overlap_seconds=0.5)
    assert (res.vocals, res.accompaniment) == stem_paths(song, tmp_path / "new" / "dir")
    assert (res.sample_rate, res.channels, res.frames) == (SR, 2, mix.shape[-1])
    assert res.backend.startswith("classical") and res.peak > 0
    v, _ = separate(mix, SR, backend="classical", chunk_seconds=2.0, overlap_seconds=0.5)
    vo, _ = sf.read(str(res.vocals), dtype="float32", always_2d=True)
    np.testing.assert_array_equal(vo, v.T.numpy())
    with pytest.raises(SeparationError, match="chunk_seconds must be positive"):
        separate_file(song, tmp_path / "x", chunk_seconds=-1.0)
    assert not [p for p in (tmp_path / "x").iterdir()], "a failed run leaves no file"


# --- vocalfx match --separate ---------------------------------------------------------------------


def test_match_separate_close_to_true_stem(shared, tmp_path):
    """`match --separate` on a short dev mixture lands near the match against the true vocal stem.

    sing_01 rendered through its true preset (the reference vocal) over acc_01 at 0 dB, 12 s cut
    into 3 s chunks, 25 steps. Both matches start from the prior mean and are scored like
    `vocalfx eval` (MSS L/R of the dry clip rendered with the prediction against the true wet).
    """
    from vocalfx import defaults as D
    from vocalfx import match
    from vocalfx.evaluation import load_corpus
    from vocalfx.evaluation.corpus import prepare_track
    from vocalfx.metrics import mss
    from vocalfx.preset import Preset
    from vocalfx.prior import GaussianPrior
    from vocalfx.render import render

    corpus = load_corpus(shared / "corpus" / "dev", tracks=["sing_01"])
    track = prepare_track(corpus.tracks[0])
    n = 12 * SR
    dry, wet = track.dry[:, :n], track.wet[:, :n]
    acc, _ = sf.read(str(shared / "corpus" / "dev" / "accompaniment" / "acc_01.flac"), dtype="float32", always_2d=True)
    acc = torch.from_numpy(acc.T.copy())[:, :n]
    acc = acc * (wet.pow(2).sum() / acc.pow(2).sum()).sqrt()
    dry_path, mix_path = tmp_path / "dry.wav", tmp_path / "song.wav"
    sf.write(str(dry_path), dry.T.numpy(), SR, subtype="FLOAT")
    sf.write(str(mix_path), (wet + acc).T.numpy(), SR, subtype="FLOAT")
    steps = "25"
    out, report = tmp_path / "out.wav", tmp_path / "report.json"
    assert (
        main(
            [
                "match",
                str(dry_path),
                str(mix_path),
                "-o",
                str(out),
                "--separate",
                "--chunk-seconds",
                "3",
                "--steps",
                steps,
                "--keep-reference-level",
                "--level",
                "preset",
                "--report",
                str(report),
                "-q",
            ]
        )
        == 0
    )
    from vocalfx.separate import resolve_auto

    backend = resolve_auto()[0]  # spleeter+classical with the separate extra installed (as in CI), else classical
    rep = json.loads(report.read_text())
    assert rep["separation_backend"].startswith(backend)
    preset = Preset.from_json(tmp_path / "out.preset.json")
    assert preset.extra["match"]["separation_backend"].startswith(backend)

    # --separate's defaults (vocalfx.defaults.SEPARATED_*: MFCC from the prior mean, alpha 1), for the true stem too
    true = match(
        dry,
        wet,
        SR,
        steps=int(steps),
        chunk_seconds=3.0,
        normalize_reference=False,
        level="preset",
        alpha=D.SEPARATED_ALPHA,
        encoder=D.SEPARATED_ENCODER,
        init=D.SEPARATED_INIT,
        lr=D.SEPARATED_LR,
        progress=False,
    )

    def score(p):
        y = render(dry, p, SR)
        return float(mss(y.unsqueeze(0), wet.unsqueeze(0), SR))

    s_sep, s_true = score(preset), score(true.preset)
    s_mean = score(Preset.from_vector(GaussianPrior.default().mean))
    print(f"MSS: separated {s_sep:.4f}, true stem {s_true:.4f}, prior mean {s_mean:.4f}")
    # measured with spleeter+classical: separated 0.821, true stem 0.821, prior mean 0.837 (with
    # classical: 0.815; the whole-track measurements are in docs/results.md, "Pretrained
    # separation"). The separated match must improve on the prior mean and stay within 0.05 of the
    # true-stem match.
    assert s_sep < s_mean, (s_sep, s_true, s_mean)
    assert s_sep <= s_true + 0.05, (s_sep, s_true, s_mean)
    assert math.isfinite(s_sep)
