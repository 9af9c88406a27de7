"""vocalfx.io: checked loading, resampling, atomic/safe saving, loudness normalisation."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import torch

from vocalfx import io
from vocalfx.io import (
    SILENCE_PEAK_DBFS,
    AudioError,
    AudioInfo,
    atomic_outputs,
    atomic_write,
    atomic_write_text,
    audio_info,
    check_output_path,
    load_audio,
    loudness_normalize,
    resampled_length,
    save_audio,
)


def _sine(freq_hz: float, sample_rate: int, frames: int, amp: float = 0.5) -> np.ndarray:
    return amp * np.sin(2 * np.pi * freq_hz * np.arange(frames) / sample_rate)


def _noise(channels: int, frames: int, amp: float = 0.1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return amp * torch.randn(channels, frames, generator=g)


def _listing(d) -> list[str]:
    return sorted(os.listdir(d))


# ------------------------------------------------------------------------------------------
# AudioError


def test_audio_error_is_one_line_names_file_and_pickles():
    e = AudioError("a/b.wav", "cannot read\nas audio  (detail)")
    assert isinstance(e, ValueError)
    assert str(e) == "a/b.wav: cannot read as audio (detail)"
    assert (e.path, e.problem) == ("a/b.wav", "cannot read as audio (detail)")
    e2 = pickle.loads(pickle.dumps(e))
    assert type(e2) is AudioError and str(e2) == str(e)


# ------------------------------------------------------------------------------------------
# Loading: errors


def test_load_missing_file(tmp_path):
    p = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match="file not found") as ei:
        load_audio(p)
    assert str(p) in str(ei.value) and "\n" not in str(ei.value)
    with pytest.raises(AudioError, match="file not found"):
        audio_info(p)


def test_load_directory(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        load_audio(tmp_path)


@pytest.mark.parametrize(
    "name,content",
    [
        ("corrupt.wav", np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()),
        ("notes.txt", b"these are not samples\n" * 50),
        ("truncated.wav", b"RIFF\x24\x00\x00\x00WAVEfmt "),
    ],
)
def test_load_corrupt_or_unknown_format(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(AudioError, match="cannot read as audio") as ei:
        load_audio(p)
    msg = str(ei.value)
    assert msg.startswith(f"{p}: ") and "\n" not in msg
    assert "Error" in msg  # soundfile's own exception text is kept
    with pytest.raises(AudioError, match="cannot read as audio"):
        audio_info(p)


def test_load_empty_file_with_valid_header(tmp_path):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros((0, 2), dtype=np.float32), 44100, subtype="FLOAT")
    assert sf.info(p).frames == 0  # the header is valid
    with pytest.raises(AudioError, match="empty: 0 samples") as ei:
        load_audio(p)
    assert str(p) in str(ei.value)


@pytest.mark.parametrize("bad,expect", [(np.nan, "1 NaN, 0 Inf"), (np.inf, "0 NaN, 1 Inf"), (-np.inf, "0 NaN, 1 Inf")])
def test_load_non_finite_float_wav(tmp_path, bad, expect):
    x = _sine(440, 44100, 44100).astype(np.float32)
    x[22050] = bad
    p = tmp_path / "bad.wav"
    sf.write(p, x, 44100, subtype="FLOAT")  # soundfile itself writes it; save_audio would refuse
    with pytest.raises(AudioError, match="non-finite") as ei:
        load_audio(p)
    assert expect in str(ei.value) and "sample 22050" in str(ei.value)


def test_load_silent(tmp_path):
    p = tmp_path / "zeros.flac"
    sf.write(p, np.zeros(44100), 44100, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"silent \(peak -inf dBFS, threshold -120 dBFS\)"):
        load_audio(p)
    x = load_audio(p, allow_silent=True)
    assert x.shape == (1, 44100) and not x.any()


def test_silence_threshold_is_minus_120_dbfs_peak(tmp_path):
    assert SILENCE_PEAK_DBFS == -120.0
    quiet, audible = tmp_path / "m130.wav", tmp_path / "m110.wav"
    sf.write(quiet, _sine(1000, 44100, 4410, amp=10 ** (-130 / 20)), 44100, subtype="FLOAT")
    sf.write(audible, _sine(1000, 44100, 4410, amp=10 ** (-110 / 20)), 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="silent"):
        load_audio(quiet)
    assert load_audio(audible).abs().max() == pytest.approx(10 ** (-110 / 20), rel=1e-3)
    # the smallest non-zero 16-bit sample (-90.3 dBFS) is never "silent"
    lsb = tmp_path / "lsb.wav"
    sf.write(lsb, np.array([0, 1, 0, -1] * 100, dtype=np.int16), 44100, subtype="PCM_16")
    assert load_audio(lsb).abs().max() == 2.0**-15


def test_stereo_that_cancels_in_mono_is_reported(tmp_path):
    s = _sine(440, 44100, 44100)
    p = tmp_path / "antiphase.wav"
    sf.write(p, np.stack([s, -s], axis=1), 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="silent after averaging 2 channels to mono"):
        load_audio(p)
    assert load_audio(p, mono=False).shape == (2, 44100)


def test_bad_sample_rate_argument(tmp_path):
    p = tmp_path / "x.wav"
    sf.write(p, _sine(440, 44100, 1000), 44100)
    for bad in (0, -44100, 44100.0, True):
        with pytest.raises(ValueError, match="sample_rate must be a positive integer"):
            load_audio(p, sample_rate=bad)


# ------------------------------------------------------------------------------------------
# Loading: conversions


def test_info_reports_stored_format(tmp_path):
    p = tmp_path / "st48.flac"
    sf.write(p, np.zeros((4800, 2)) + 0.25, 48000, subtype="PCM_16")
    info = audio_info(p)
    assert info == AudioInfo(str(p), 48000, 2, 4800, "FLAC", "PCM_16")
    assert info.duration_s == pytest.approx(0.1)


def test_stereo_to_mono_is_the_channel_mean_without_normalisation(tmp_path):
    rng = np.random.default_rng(1)
    st = np.stack([0.3 * rng.standard_normal(8000), _sine(300, 44100, 8000, amp=0.2)], axis=1).astype(np.float32)
    p = tmp_path / "stereo.wav"
    sf.write(p, st, 44100, subtype="FLOAT")
    mono = load_audio(p)
    assert mono.dtype == torch.float32 and mono.shape == (1, 8000)
    np.testing.assert_allclose(mono[0].numpy(), st.astype(np.float64).mean(axis=1), rtol=0, atol=1e-7)
    both = load_audio(p, mono=False)
    assert both.shape == (2, 8000)
    np.testing.assert_array_equal(both.numpy(), st.T)  # float WAV: bit-exact, no scaling


def test_integer_pcm_is_scaled_by_full_scale_only(tmp_path):
    ints = np.array([0, 8192, -32768, 32767, -1] * 200, dtype=np.int16)
    p = tmp_path / "pcm16.wav"
    sf.write(p, ints, 44100, subtype="PCM_16")
    x = load_audio(p)
    np.testing.assert_array_equal(x[0].numpy(), ints / 32768.0)  # peak stays where it was


def test_resample_48k_to_44k1_keeps_frequency_level_and_exact_length(tmp_path):
    frames = 48010  # 48010 * 44100 / 48000 = 44109.1875: the rule is ceil (44110), not round (44109)
    p = tmp_path / "sine48k.wav"
    sf.write(p, _sine(1000.0, 48000, frames), 48000, subtype="FLOAT")
    y = load_audio(p)[0].double().numpy()
    assert len(y) == resampled_length(frames, 48000, 44100) == 44110 == math.ceil(frames * 44100 / 48000)
    seg = y[2000 : 2000 + 40000]  # away from the zero-padded edges
    spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg))))
    freqs = np.fft.rfftfreq(len(seg), 1 / 44100)
    assert abs(freqs[spec.argmax()] - 1000.0) <= 44100 / len(seg)  # within one bin (1.1 Hz)
    ref = _sine(1000.0, 44100, len(y))  # the same sine sampled at 44.1 kHz, phase 0 at t=0
    np.testing.assert_allclose(seg, ref[2000 : 2000 + 40000], atol=2e-5)


def test_resampler_rejects_aliases(tmp_path):
    # A 23 kHz tone at 48 kHz lies above the 22.05 kHz Nyquist of the output; it would alias to
    # 21.1 kHz. RESAMPLE_SETTINGS attenuates it by > 120 dB (torchaudio's default: about -9 dB).
    p = tmp_path / "hf.wav"
    sf.write(p, _sine(23000.0, 48000, 3 * 48000), 48000, subtype="FLOAT")
    y = load_audio(p, allow_silent=True)[0].double().numpy()[44100:88200]
    level = np.abs(np.fft.rfft(y))[44100 - 23000] / (len(y) / 2) / 0.5
    assert 20 * np.log10(level + 1e-30) < -120


def test_resample_length_exact_past_float32_precision():
    # torchaudio computes ceil(new*T/orig) in float32; above 2**24 output samples that is off by
    # one for this length (18375000 instead of 18375001). _resample must still give the exact length.
    frames = 20_000_001
    assert resampled_length(frames, 48000, 44100) == 18_375_001
    x = torch.zeros(1, frames)
    x[0, -1] = 1.0
    y = io._resample(x, 48000, 44100)
    assert y.shape == (1, 18_375_001)
    assert y[0, -200:].abs().sum() > 0.5  # the impulse near the end survives the exact cut


@pytest.mark.parametrize("orig,new", [(22050, 44100), (48000, 44100), (44100, 48000), (16000, 44100), (96000, 44100)])
def test_resample_padding_changes_no_sample(orig, new):
    # Below 2**24 output samples torchaudio's float32 length is exact, so its output is the oracle
    # for the zero padding _resample appends.
    import torchaudio.functional as taF

    x = _noise(2, 9999)
    np.testing.assert_array_equal(
        io._resample(x, orig, new).numpy(), taF.resample(x, orig, new, **io.RESAMPLE_SETTINGS).numpy()
    )


def test_reads_compressed_formats(tmp_path):
    for ext, subtype in (("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")):
        if subtype not in sf.available_subtypes(ext.upper()):
            continue  # this libsndfile lacks the codec
        p = tmp_path / f"tone.{ext}"
        sf.write(p, _sine(1000.0, 44100, 44100, amp=0.3), 44100, format=ext.upper(), subtype=subtype)
        x = load_audio(p)
        assert x.shape[0] == 1 and abs(x.shape[1] - 44100) < 4096
        assert 0.2 < float(x.abs().max()) < 0.4


# ------------------------------------------------------------------------------------------
# Saving


@pytest.mark.parametrize("as_numpy", [False, True])
def test_round_trip_float_wav_is_exact_and_unclipped(tmp_path, as_numpy):
    x = _noise(2, 5000, amp=0.8)
    x[0, 10] = 3.5  # above full scale: FLOAT keeps it
    p = tmp_path / "out.wav"
    save_audio(p, x.numpy() if as_numpy else x, 44100)
    assert sf.info(p).subtype == "FLOAT"
    y = load_audio(p, mono=False)
    torch.testing.assert_close(y, x, rtol=0, atol=0)
    assert _listing(tmp_path) == ["out.wav"]


def test_round_trip_flac_pcm24(tmp_path):
    x = _sine(440, 48000, 9600, amp=0.9)[None].repeat(2, axis=0) * np.array([[1.0], [-0.5]])
    p = tmp_path / "out.flac"
    save_audio(p, torch.from_numpy(x), 48000)
    info = audio_info(p)
    assert (info.format, info.subtype, info.sample_rate, info.channels, info.frames) == (
        "FLAC",
        "PCM_24",
        48000,
        2,
        9600,
    )
    y = load_audio(p, sample_rate=48000, mono=False).double().numpy()
    np.testing.assert_allclose(y, x, rtol=0, atol=2.0**-23)  # one 24-bit step


def test_explicit_pcm16_wav(tmp_path):
    x = _sine(440, 44100, 4410, amp=0.5)[None]
    p = tmp_path / "out16.wav"
    save_audio(p, x, 44100, subtype="pcm_16")
    assert sf.info(p).subtype == "PCM_16"
    np.testing.assert_allclose(load_audio(p)[0].numpy(), x[0], atol=2.0**-15)


@pytest.mark.parametrize("name,subtype", [("x.flac", None), ("x.wav", "PCM_16"), ("x.wav", "PCM_24")])
def test_fixed_point_refuses_to_clip(tmp_path, name, subtype):
    x = _sine(440, 44100, 4410, amp=1.25)[None]
    with pytest.raises(AudioError, match=r"peak 1.25 .* exceeds full scale") as ei:
        save_audio(tmp_path / name, x, 44100, subtype=subtype)
    assert name in str(ei.value)
    assert _listing(tmp_path) == []
    save_audio(tmp_path / name, x / 1.25, 44100, subtype=subtype)  # exactly full scale is fine


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_save_refuses_non_finite(tmp_path, bad):
    x = torch.zeros(1, 100)
    x[0, 5] = bad
    with pytest.raises(AudioError, match="refusing to write non-finite samples"):
        save_audio(tmp_path / "x.wav", x, 44100)
    assert _listing(tmp_path) == []


def test_save_argument_errors(tmp_path):
    with pytest.raises(ValueError, match=r"expected \(channels, time\), got shape \(100,\)"):
        save_audio(tmp_path / "x.wav", torch.zeros(100), 44100)
    with pytest.raises(ValueError, match=r"expected \(channels, time\), got shape \(1, 1, 100\)"):
        save_audio(tmp_path / "x.wav", torch.zeros(1, 1, 100), 44100)
    with pytest.raises(ValueError, match="floating-point"):
        save_audio(tmp_path / "x.wav", np.zeros((1, 100), dtype=np.int16), 44100)
    with pytest.raises(AudioError, match="unknown audio file extension '.xyz'"):
        save_audio(tmp_path / "x.xyz", torch.zeros(1, 100), 44100)
    with pytest.raises(AudioError, match="RAW has no default subtype"):
        save_audio(tmp_path / "x.raw", torch.zeros(1, 100), 44100)
    with pytest.raises(AudioError, match="subtype 'FLOAT' is not valid for FLAC"):
        save_audio(tmp_path / "x.flac", torch.zeros(1, 100), 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match="parent directory .* does not exist"):
        save_audio(tmp_path / "missing" / "x.wav", torch.zeros(1, 100), 44100)
    with pytest.raises(AudioError, match="is a directory"):
        save_audio(tmp_path, torch.zeros(1, 100), 44100)
    assert _listing(tmp_path) == []


def test_save_does_not_modify_the_tensor(tmp_path):
    x = _noise(1, 1000).requires_grad_()
    before = x.detach().clone()
    save_audio(tmp_path / "x.flac", x, 44100)
    assert torch.equal(x.detach(), before)


def test_refuses_to_overwrite_an_input(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, _sine(440, 44100, 4410), 44100, subtype="PCM_16")
    original = src.read_bytes()
    sub = tmp_path / "sub"
    sub.mkdir()
    (tmp_path / "link.wav").symlink_to(src)
    os.link(src, tmp_path / "hard.wav")
    spellings = [src, str(src), sub / ".." / "in.wav", tmp_path / "link.wav"]
    for target in spellings:
        with pytest.raises(AudioError, match="refusing to overwrite an input file"):
            save_audio(target, torch.zeros(1, 10), 44100, inputs=[src])
    # the input given through another name (symlink, hard link) is also caught
    with pytest.raises(AudioError, match="refusing to overwrite an input file"):
        save_audio(src, torch.zeros(1, 10), 44100, inputs=[tmp_path / "link.wav"])
    with pytest.raises(AudioError, match="refusing to overwrite an input file"):
        save_audio(tmp_path / "hard.wav", torch.zeros(1, 10), 44100, inputs=[src])
    with pytest.raises(AudioError, match="refusing to overwrite an input file"):
        atomic_write_text(src, "{}", inputs=[str(src)])
    with pytest.raises(AudioError, match="refusing to overwrite an input file"):
        atomic_write_text(src, "{}", inputs=src)  # a single path, not a list
    assert src.read_bytes() == original
    assert (tmp_path / "hard.wav").read_bytes() == original
    assert _listing(tmp_path) == ["hard.wav", "in.wav", "link.wav", "sub"]
    assert _listing(sub) == []
    save_audio(tmp_path / "out.wav", torch.zeros(1, 10), 44100, inputs=[src])  # other paths are fine


def test_failed_write_leaves_no_temp_file_and_keeps_the_old_output(tmp_path):
    out = tmp_path / "out.flac"
    # libsndfile refuses 9-channel FLAC only once writing starts: a real mid-write failure
    with pytest.raises(AudioError, match="writing failed") as ei:
        save_audio(out, torch.zeros(9, 100), 44100)
    assert str(out) in str(ei.value)
    assert _listing(tmp_path) == []

    save_audio(out, torch.full((1, 100), 0.5), 44100)
    old = out.read_bytes()
    with pytest.raises(AudioError, match="writing failed"):
        save_audio(out, torch.zeros(9, 100), 44100)
    assert out.read_bytes() == old and _listing(tmp_path) == ["out.flac"]


def test_failed_replace_leaves_no_temp_file(tmp_path, monkeypatch):
    out = tmp_path / "r.json"
    atomic_write_text(out, "old")

    def boom(src, dst):
        raise OSError("simulated rename failure")

    monkeypatch.setattr(io.os, "replace", boom)
    with pytest.raises(AudioError, match="simulated rename failure"):
        atomic_write_text(out, "new")
    with pytest.raises(AudioError, match="simulated rename failure"):
        save_audio(tmp_path / "x.wav", torch.zeros(1, 10), 44100)
    assert out.read_text() == "old" and _listing(tmp_path) == ["r.json"]


def test_atomic_write_text(tmp_path):
    p = tmp_path / "res.json"
    text = '{"lufs": -18.0, "name": "vöcal"}\r\n'
    atomic_write_text(p, text)
    assert p.read_bytes() == text.encode("utf-8")  # no newline translation
    atomic_write_text(p, "{}")  # replaces an existing output
    assert p.read_text() == "{}" and _listing(tmp_path) == ["res.json"]
    umask = os.umask(0)
    os.umask(umask)
    assert (p.stat().st_mode & 0o777) == (0o666 & ~umask)  # ordinary permissions, not mkstemp's 0600


def test_atomic_write_any_bytes(tmp_path):
    p = tmp_path / "blob.npz"
    np.savez(tmp_path / "ref.npz", a=np.arange(3))
    atomic_write(p, lambda f: np.savez(f, a=np.arange(3)))  # a file object: numpy appends no .npz
    assert _listing(tmp_path) == ["blob.npz", "ref.npz"]
    assert np.load(p)["a"].tolist() == [0, 1, 2]
    src = tmp_path / "in.txt"
    src.write_text("input")
    with pytest.raises(AudioError, match="refusing to overwrite an input"):
        atomic_write(src, lambda f: f.write(b"x"), inputs=src)
    assert src.read_text() == "input"

    class Boom(Exception):
        pass

    def half_then_fail(f):
        f.write(b"partial")
        raise Boom

    with pytest.raises(Boom):  # the writer's own exception passes through unchanged
        atomic_write(p, half_then_fail)
    assert np.load(p)["a"].tolist() == [0, 1, 2] and _listing(tmp_path) == ["blob.npz", "in.txt", "ref.npz"]


def test_check_output_path(tmp_path):
    src = tmp_path / "in.wav"
    src.write_bytes(b"x")
    assert check_output_path(tmp_path / "out.wav", [src]) == tmp_path / "out.wav"
    os.link(src, tmp_path / "hard.wav")
    with pytest.raises(AudioError, match="refusing to overwrite an input"):
        check_output_path(tmp_path / "hard.wav", [src])  # the same file under another name
    with pytest.raises(AudioError, match="is a directory"):
        check_output_path(tmp_path)
    with pytest.raises(AudioError, match="does not exist"):
        check_output_path(tmp_path / "no" / "out.wav")
    assert _listing(tmp_path) == ["hard.wav", "in.wav"]


def test_atomic_outputs_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("old a")
    with pytest.raises(RuntimeError, match="stop"):
        with atomic_outputs([a, b]) as (ta, tb):
            ta.write_text("new a")
            tb.write_text("new b")
            raise RuntimeError("stop")
    assert a.read_text() == "old a" and _listing(tmp_path) == ["a.txt"]
    with pytest.raises(AudioError, match="b.txt: was not written"):
        with atomic_outputs([a, b]) as (ta, tb):
            ta.write_text("new a")  # b is never written: neither file changes
    assert a.read_text() == "old a" and _listing(tmp_path) == ["a.txt"]
    with atomic_outputs([a, b]) as (ta, tb):
        assert ta.parent == tmp_path and ta.name.startswith(".a.txt.") and not ta.exists()
        ta.write_text("new a")
        tb.write_text("new b")
    assert (a.read_text(), b.read_text()) == ("new a", "new b") and _listing(tmp_path) == ["a.txt", "b.txt"]
    with pytest.raises(AudioError, match="refusing to overwrite an input"):
        with atomic_outputs([a, b], inputs=[b]):
            pytest.fail("the block must not run when a target is refused")


def test_audio_error_is_a_vocalfx_error():
    from vocalfx.errors import VocalfxError

    assert issubclass(AudioError, VocalfxError) and issubclass(AudioError, ValueError)


# ------------------------------------------------------------------------------------------
# Loudness


@pytest.mark.parametrize("channels", [1, 2])
def test_loudness_normalize_hits_target(channels):
    sr = 44100
    x = _noise(channels, 2 * sr, amp=0.02)
    y, gain_db = loudness_normalize(x, sr)
    meter = pyloudnorm.Meter(sr)
    before = meter.integrated_loudness(x.double().numpy().T)
    after = meter.integrated_loudness(y.double().numpy().T)
    assert abs(after - (-18.0)) < 0.05
    assert gain_db == pytest.approx(-18.0 - before, abs=1e-9)
    assert y.dtype == x.dtype and y.shape == x.shape
    torch.testing.assert_close(y, x * 10 ** (gain_db / 20))


def test_loudness_normalize_other_target_and_bs1770_oracle():
    # BS.1770: a 997 Hz sine at -20 dBFS peak on one channel reads -23.01 LUFS (-3.01 at 0 dBFS).
    sr = 48000
    x = torch.from_numpy(_sine(997.0, sr, 3 * sr, amp=0.1))[None]
    y, gain_db = loudness_normalize(x, sr, target_lufs=-23.0)
    assert gain_db == pytest.approx(-23.0 - (-23.01), abs=0.1)
    assert pyloudnorm.Meter(sr).integrated_loudness(y.numpy().T) == pytest.approx(-23.0, abs=0.05)
    assert y.dtype == torch.float64


def test_loudness_normalize_errors():
    sr = 44100
    with pytest.raises(ValueError, match=r"at least one 0.4 s block \(17640 samples at 44100 Hz\)"):
        loudness_normalize(_noise(1, 17639), sr)
    loudness_normalize(_noise(1, 17640), sr)  # exactly one block is enough
    with pytest.raises(ValueError, match="silent"):
        loudness_normalize(torch.zeros(2, sr), sr)
    with pytest.raises(ValueError, match="silent"):
        loudness_normalize(_noise(1, sr, amp=1e-6), sr)  # ~ -117 LUFS: below the -70 LUFS gate
    with pytest.raises(ValueError, match=r"expected \(channels, time\)"):
        loudness_normalize(torch.zeros(1, 1, sr), sr)
    with pytest.raises(ValueError, match="1 to 5 channels"):
        loudness_normalize(_noise(6, sr), sr)
    bad = _noise(1, sr)
    bad[0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        loudness_normalize(bad, sr)


def test_loudness_normalize_keeps_gradient_as_a_fixed_gain():
    x = _noise(1, 44100).requires_grad_()
    y, gain_db = loudness_normalize(x, 44100)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full_like(x, 10 ** (gain_db / 20)))
