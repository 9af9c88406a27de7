"""Detecting a codec's band limit in the reference (vocalfx/codec.py) and its use in match."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from vocalfx.codec import (
    HOLE_FRACTION,
    codec_cutoff_hz,
    codec_evidence,
    hole_fraction,
    mp3_available,
    mp3_roundtrip,
    simulated_kbps,
)

SR = 44100


def voice_like(seconds: float, seed: int) -> torch.Tensor:
    """Full-band noise bursts with a gentle -6 dB/octave tilt above 500 Hz, ``(1, time)``."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = rng.standard_normal(n)
    X = np.fft.rfft(x)
    f = np.fft.rfftfreq(n, 1 / SR)
    X = X / np.maximum(1.0, f / 500.0)
    x = np.fft.irfft(X, n)
    env = (np.sin(2 * np.pi * 1.3 * np.arange(n) / SR) > -0.3).astype(float)  # syllables and gaps
    return torch.from_numpy(0.1 * x * env / np.std(x)).float()[None]


def brickwall(x: torch.Tensor, cutoff_hz: float) -> torch.Tensor:
    X = torch.fft.rfft(x.double())
    f = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    return torch.fft.irfft(X * (f <= cutoff_hz), x.shape[-1]).float()


def test_no_cutoff_on_lossless_or_gently_filtered_references():
    from vocalfx.functional import biquad, lowpass_coeffs

    dry, ref = voice_like(6.0, 0), voice_like(6.0, 1).expand(2, -1)
    assert codec_cutoff_hz(ref, dry, SR) is None
    b, a = lowpass_coeffs(SR, freq_hz=6000.0, q=0.707)
    dark = biquad(ref[None].double(), b.double(), a.double())[0].float()  # a chain's 12 dB/octave low-pass
    assert codec_cutoff_hz(dark, dry, SR) is None


def test_brickwall_cutoff_is_found_where_it_is():
    dry = voice_like(6.0, 0)
    for fc in (7000.0, 11000.0, 16000.0):
        ref = brickwall(voice_like(6.0, 1), fc).expand(2, -1)
        got = codec_cutoff_hz(ref, dry, SR)
        assert got is not None and abs(got - fc) < 300.0, (fc, got)


def test_a_band_limited_source_is_not_a_codec():
    """Telephone-band prompts: the dry stops at 7.5 kHz too, so the reference's cliff is the source's."""
    dry = brickwall(voice_like(6.0, 0), 7500.0)
    ref = brickwall(voice_like(6.0, 1), 7500.0).expand(2, -1)
    assert codec_cutoff_hz(ref, dry, SR) is None


def test_mp3_at_64_kbps_is_found():
    from vocalfx.codec import mp3_roundtrip

    dry, ref = voice_like(6.0, 0), voice_like(6.0, 1).expand(2, -1).contiguous()
    got = codec_cutoff_hz(mp3_roundtrip(ref, SR, 64), dry, SR)
    assert got is not None and 9000.0 < got < 13000.0, got


def test_match_takes_the_codec_weights_for_a_band_limited_reference():
    """The choice is made and reported; ``lossy_reference`` forces either way."""
    import vocalfx

    dry, ref = voice_like(6.0, 0), brickwall(voice_like(6.0, 1), 11000.0).expand(2, -1).contiguous()
    kw = dict(steps=1, chunk_seconds=3.0, progress=False)
    res = vocalfx.match(dry, ref, SR, **kw)
    assert res.stats.fx_weights == "fx-codec.pt"
    assert res.stats.reference_cutoff_hz == pytest.approx(11000.0, abs=300.0)
    assert re.search(r"band-limited at 1[01]\.\d kHz \(a lossy codec\): fx weights fx-codec.pt", res.stats.summary())
    res = vocalfx.match(dry, ref, SR, lossy_reference=False, **kw)
    assert res.stats.fx_weights == "fx-v1.pt" and res.stats.reference_cutoff_hz is None
    assert res.stats.reference_hole_fraction is None  # not looked at when the caller decides
    res = vocalfx.match(dry, voice_like(6.0, 1), SR, encoder="mfcc", **kw)
    assert res.stats.fx_weights == "fx-v1.pt"  # the predicted start still comes from fx's head
    assert res.stats.reference_cutoff_hz is None


def test_match_takes_the_codec_weights_for_a_reference_full_of_holes():
    import vocalfx
    from vocalfx.codec import mp3_roundtrip

    dry = brickwall(voice_like(6.0, 0), 7500.0)
    ref = torch.cat([brickwall(voice_like(6.0, 1), 7500.0), brickwall(voice_like(6.0, 2), 7500.0)])
    coded = mp3_roundtrip(ref, SR, 64)
    res = vocalfx.match(dry, coded, SR, steps=1, chunk_seconds=3.0, progress=False)
    assert res.stats.reference_cutoff_hz is None and res.stats.reference_hole_fraction > HOLE_FRACTION
    assert res.stats.fx_weights == "fx-codec.pt" and res.stats.simulated_codec.startswith("mp3:")
    assert re.search(r"renders went through MP3 at \d+ kbps before the encoder", res.stats.summary())
    assert re.search(
        r"quantisation holes \(\d\.\d % of bins in 2-10 kHz\): fx weights fx-codec.pt", res.stats.summary()
    )
    res = vocalfx.match(dry, ref, SR, steps=1, chunk_seconds=3.0, progress=False)
    assert res.stats.fx_weights == "fx-v1.pt" and res.stats.reference_hole_fraction < HOLE_FRACTION
    assert "holes" not in res.stats.summary() and res.stats.simulated_codec is None
    res = vocalfx.match(dry, coded, SR, encoder="mfcc", init="mean", steps=1, chunk_seconds=3.0, progress=False)
    assert res.stats.fx_weights is None and res.stats.simulated_codec is None  # only the fx encoder changes
    assert "quantisation holes" in res.stats.summary() and "no fx encoder in use" in res.stats.summary()


def test_cli_lossy_reference_flag(tmp_path, capsys):
    """``vocalfx match --lossy-reference``: auto finds the cut-off, no and yes force the weights."""
    import soundfile as sf

    from vocalfx.cli import main

    dry, ref = tmp_path / "dry.wav", tmp_path / "ref.wav"
    sf.write(dry, voice_like(6.0, 0)[0].numpy(), SR, subtype="FLOAT")
    sf.write(ref, brickwall(voice_like(6.0, 1), 11000.0).expand(2, -1).numpy().T, SR, subtype="FLOAT")
    base = ["match", str(dry), str(ref), "--steps", "1", "--chunk-seconds", "3", "-q"]
    said = {}
    for flag in ("auto", "no", "yes"):
        out = tmp_path / f"out-{flag}.wav"
        assert main(base + ["-o", str(out), "--lossy-reference", flag]) == 0
        said[flag] = capsys.readouterr().out
    assert re.search(r"band-limited at 1[01]\.\d kHz .*fx-codec.pt", said["auto"])
    assert "fx-codec.pt" not in said["no"]
    assert "fx-codec.pt" in said["yes"] and "band-limited" not in said["yes"]


def test_hole_fraction_of_white_noise_follows_the_exponential_law():
    """White noise: each bin's power is exponential, so P(p < 0.01 median) = 1 - 2**-0.01 = 0.0069."""
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((2, 20 * SR))).float()
    expected = 1.0 - 2.0**-0.01  # 20 dB below the median of an exponential law
    assert hole_fraction(x, SR) == pytest.approx(expected, rel=0.25)
    assert hole_fraction(0.001 * x, SR) == pytest.approx(hole_fraction(x, SR), rel=1e-6)  # level-free


def test_codec_holes_reveal_mp3_where_the_cutoff_is_hidden():
    """A telephone-band source through MP3 at 64 kbps: no cliff to find, but the holes give it away."""
    from vocalfx.codec import mp3_roundtrip

    dry = brickwall(voice_like(6.0, 0), 7500.0)
    ref = torch.cat([brickwall(voice_like(6.0, 1), 7500.0), brickwall(voice_like(6.0, 2), 7500.0)])
    lossless = codec_evidence(ref, dry, SR)
    assert lossless.cutoff_hz is None and lossless.hole_fraction < HOLE_FRACTION / 2 and not lossless.lossy
    lossy = codec_evidence(mp3_roundtrip(ref, SR, 64), dry, SR)
    assert lossy.cutoff_hz is None and lossy.hole_fraction > HOLE_FRACTION and lossy.lossy


needs_mp3 = pytest.mark.skipif(not mp3_available(), reason="this libsndfile cannot write MP3")


@needs_mp3
def test_mp3_roundtrip_keeps_length_level_and_alignment():
    """Through libsndfile's LAME and back: same shape, aligned (a lag would ruin the SNR), better with more bits."""
    x = torch.cat([voice_like(6.0, 1), voice_like(6.0, 2)])
    snr = {}
    for kbps in (64, 192):
        y = mp3_roundtrip(x, SR, kbps)
        assert y.shape == x.shape and y.dtype == torch.float32 and torch.isfinite(y).all()
        snr[kbps] = float(10 * torch.log10(x.square().sum() / (y - x).square().sum()))
        assert abs(float(10 * torch.log10(y.square().mean() / x.square().mean()))) < 1.0  # level kept
    assert 8.0 < snr[64] < snr[192]
    with pytest.raises(ValueError, match="bit rate"):
        mp3_roundtrip(x, SR, 32)
    with pytest.raises(ValueError, match="silent"):
        mp3_roundtrip(torch.zeros(2, SR), SR, 64)


@needs_mp3
def test_simulated_bit_rate_is_the_one_that_made_the_holes():
    x = torch.cat([voice_like(6.0, 1), voice_like(6.0, 2)])
    for kbps in (64, 96, 128):
        assert simulated_kbps(hole_fraction(mp3_roundtrip(x, SR, kbps), SR), x[None], SR) == kbps


@needs_mp3
def test_codec_in_the_objective_is_straight_through():
    """The value is the codec's, the gradient the identity's."""
    from vocalfx.matching.core import _through_codec

    x = torch.cat([voice_like(3.0, 1), voice_like(3.0, 2)]).reshape(2, 2, -1).permute(1, 0, 2).contiguous()
    x.requires_grad_(True)
    y = _through_codec(x, 64)
    stream = x.detach().permute(1, 0, 2).reshape(2, -1)  # coded end to end, as one stream
    expected = mp3_roundtrip(stream, SR, 64).reshape(2, 2, -1).permute(1, 0, 2)
    torch.testing.assert_close(y.detach(), expected, atol=1e-6, rtol=0)
    w = torch.randn_like(x)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, w)
    silent = torch.zeros(1, 2, SR)
    assert _through_codec(silent, 64) is silent
