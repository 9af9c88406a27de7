"""Encoders (vocalfx.encoders): DiffVox goldens, normalisation, batching, resampling, gradients."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from vocalfx.encoders import (
    MFCCEncoder,
    MIREncoder,
    StereoEncoder,
    available_encoders,
    get_encoder,
    mid_side,
    register_encoder,
)
from vocalfx.encoders.features import time_statistics

GOLDEN_NAMES = ["internal_000", "internal_050", "internal_150", "medleydb_000", "medleydb_020", "medleydb_060"]


@pytest.fixture(scope="module")
def enc():
    """One encoder per name and input rate, built once: ``enc[name, sample_rate]``."""
    return {(name, sr): get_encoder(name, sample_rate=sr) for name in ("mfcc", "mir") for sr in (44100, 48000)}


@pytest.fixture(scope="module")
def golden_outputs(shared):
    """The six golden chain outputs, stacked ``(6, 2, 264600)`` float32."""
    return torch.stack([torch.from_numpy(np.load(shared / "goldens" / f"{n}.npz")["output"]) for n in GOLDEN_NAMES])


@pytest.fixture(scope="module")
def golden_embeddings(shared):
    with np.load(shared / "goldens" / "embeddings.npz") as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=None)
def multisine(sample_rate: int, seconds: float = 1.0, fmax_hz: float = 16000.0) -> torch.Tensor:
    """A stereo test signal defined in continuous time, so it can be sampled at any rate.

    120 partials (50 Hz .. ``fmax_hz``, -3 dB/oct, random phases per channel) under a 1.3 Hz
    amplitude envelope; the scale is a constant (not the sampled peak), so the signals at two
    rates are samples of the same function. Shape ``(1, 2, seconds * sample_rate)``, float64.
    """
    rng = np.random.default_rng(0)
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    freqs = rng.uniform(50.0, fmax_hz, 120)
    phases = rng.uniform(0.0, 2 * math.pi, (120, 2))
    amps = np.sqrt(50.0 / freqs)
    x = np.zeros((2, t.size))
    for f, ph, a in zip(freqs, phases, amps):  # numpy's sin is ~10x faster than torch's in float64
        x += a * np.sin(2 * math.pi * f * t + ph[:, None])
    env = 0.5 + 0.4 * np.sin(2 * math.pi * 1.3 * t)
    return torch.from_numpy(x * env * (2.0 / amps.sum()))[None]


# ---------------------------------------------------------------- goldens


@pytest.mark.parametrize("encoder", ["mfcc", "mir"])
def test_matches_diffvox_goldens(encoder, enc, golden_outputs, golden_embeddings):
    """DiffVox's MFCC/MIR embeddings of six chain outputs, to 1e-4 per value.

    Measured here: MFCC <= 1.2e-7 (float32 rounding); MIR <= 7.1e-5. The MIR residual is float32
    FFT rounding: the log-flatness of frames with a steep spectrum (the sweep's low end) depends on
    bins near the float32 noise floor. A verbatim float32 transcription of the reference gives the
    same 7.1e-5 on this machine, and the same formulas evaluated in float64 are 4e-4 away.
    """
    out = enc[encoder, 44100](golden_outputs)
    for i, name in enumerate(GOLDEN_NAMES):
        for ch in ("mid", "side"):
            ref = golden_embeddings[f"{name}.{encoder}_{ch}"]
            np.testing.assert_allclose(out[ch][i].numpy(), ref, rtol=0, atol=1e-4, err_msg=f"{name} {ch}")


def test_mfcc_top_db_floor_is_shared_by_mid_and_side(enc, golden_outputs, golden_embeddings):
    """Regression: the reference floors dB values at (max over mid AND side) - 80 dB.

    A per-channel floor is off by 0.025..0.076 on the side embeddings of the goldens.
    """
    mfcc = enc["mfcc", 44100]
    x_ms = mid_side(golden_outputs[:1])
    joint = mfcc.mfcc(x_ms)
    side_alone = mfcc.mfcc(x_ms[:, 1:].expand(-1, 2, -1))[:, :1]  # side's own max sets its floor
    assert (joint[:, 1] - side_alone[:, 0]).abs().max() > 1.0  # the floors differ by many dB
    emb = mfcc(golden_outputs[:1])
    np.testing.assert_allclose(emb["side"][0].numpy(), golden_embeddings["internal_000.mfcc_side"], atol=1e-6)


# ---------------------------------------------------------------- shape, norm, batching


@pytest.mark.parametrize("encoder", ["mfcc", "mir"])
def test_unit_norm_and_dims(encoder, enc):
    x = 0.1 * torch.randn(2, 2, 30000, generator=torch.Generator().manual_seed(1))
    e = enc[encoder, 44100]
    out = e(x)
    assert set(out) == {"mid", "side"}
    for ch in ("mid", "side"):
        assert out[ch].shape == (2, e.embedding_dim)
        torch.testing.assert_close(out[ch].norm(dim=-1), torch.ones(2), atol=1e-6, rtol=0)
    assert {"mfcc": 100, "mir": 24}[encoder] == e.embedding_dim


@pytest.mark.parametrize("encoder", ["mfcc", "mir"])
def test_batch_consistency(encoder, enc, golden_outputs):
    """A batch of 3 equals three batch-1 calls (the MFCC dB floor is per batch item)."""
    x = golden_outputs[[0, 3, 5], :, 44100 : 3 * 44100]
    batched = enc[encoder, 44100](x)
    for i in range(3):
        single = enc[encoder, 44100](x[i : i + 1])
        for ch in ("mid", "side"):
            torch.testing.assert_close(batched[ch][i : i + 1], single[ch], atol=1e-6, rtol=0)


@pytest.mark.parametrize("encoder", ["mfcc", "mir"])
@pytest.mark.parametrize("shape", [(2, 4096), (4096,), (1, 2, 2, 4096), (1, 1, 4096), (1, 3, 4096)])
def test_wrong_shape_raises(encoder, shape, enc):
    with pytest.raises(ValueError, match=r"expected \(batch, channels, time\)"):
        enc[encoder, 44100](torch.zeros(shape))


@pytest.mark.parametrize("encoder", ["mfcc", "mir"])
def test_too_short_raises(encoder, enc):
    with pytest.raises(ValueError, match="at least 2048 samples"):
        enc[encoder, 44100](torch.zeros(1, 2, 2047))


# ---------------------------------------------------------------- registry


def test_registry():
    assert {"mfcc", "mir"} <= set(available_encoders())
    mir = get_encoder("mir", sample_rate=48000)
    assert isinstance(mir, MIREncoder) and mir.sample_rate == 48000
    assert get_encoder("mfcc", n_mfcc=13).embedding_dim == 52
    with pytest.raises(ValueError, match="unknown encoder"):
        get_encoder("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("mfcc")(type("Other", (StereoEncoder,), {}))
    with pytest.raises(ValueError, match="sample_rate"):
        MFCCEncoder(sample_rate=0)


# ---------------------------------------------------------------- resampling


@pytest.mark.parametrize("encoder", ["mfcc", "mir"])
def test_resampling_path_is_resample_then_embed(encoder, enc):
    """The 48 kHz encoder is exactly torchaudio's default resampler followed by the 44.1 kHz one."""
    x48 = multisine(48000).float()
    direct = enc[encoder, 48000](x48)
    manual = enc[encoder, 44100](AF.resample(x48, 48000, 44100))
    for ch in ("mid", "side"):
        torch.testing.assert_close(direct[ch], manual[ch], atol=1e-6, rtol=0)


def test_mfcc_48k_input_close_to_44k1(enc):
    """Same continuous-time signal sampled at 48 and 44.1 kHz -> MFCC embeddings within 2e-3.

    Measured max |diff| 5.0e-4: torchaudio's default resampler (6 zero-crossing Hann sinc)
    reproduces this signal at about 59 dB SNR. The tolerance is 4x the measured error and 100x
    below what skipping the resampling gives (0.20).
    """
    a = enc["mfcc", 44100](multisine(44100).float())
    b = enc["mfcc", 48000](multisine(48000).float())
    for ch in ("mid", "side"):
        assert (a[ch] - b[ch]).abs().max() < 2e-3


def test_mir_48k_descriptors_close_to_44k1(enc):
    """MIR descriptors of a 48 kHz input, resampled as the encoder does, match the native ones.

    RMS, crest, spread, centroid and bandwidth agree per frame to <= 2.8e-3 (measured; spread is
    the loosest since it averages log|x| over every sample). Log-flatness is excluded: it is the
    log geometric mean of *all* 1025 bins, so on band-limited audio it is set by the near-empty bins
    above the signal's bandwidth, whose content (Hann leakage vs. resampler error, 1e-5..1e-4 in
    magnitude) changes by orders of magnitude under resampling; on this signal it moves by up to
    1.8 (nepers), which is also why full MIR embeddings of band-limited audio are not
    resampling-invariant (0.06 max |diff| here). Skipping the resampling moves the log-centroid
    alone by up to 0.17.
    """
    mir = enc["mir", 44100]
    native = mir.descriptors(mid_side(multisine(44100).float()))
    resampled = mir.descriptors(mid_side(AF.resample(multisine(48000).float(), 48000, 44100)))
    assert native.shape == resampled.shape
    assert (native[:, :, :5] - resampled[:, :, :5]).abs().max() < 2e-2


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("encoder", ["mfcc", "mir"])
def test_gradients_finite(encoder, enc):
    """Backward through an embedding of ordinary stereo audio gives finite, non-zero gradients."""
    x = (0.1 * torch.randn(2, 2, 22050, generator=torch.Generator().manual_seed(2))).requires_grad_()
    out = enc[encoder, 44100](x)
    w = torch.randn(2, 2 * out["mid"].shape[-1], generator=torch.Generator().manual_seed(3))
    (torch.cat([out["mid"], out["side"]], -1) * w).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("encoder", ["mfcc", "mir"])
def test_gradients_finite_with_digital_silence(encoder, enc):
    """Regression: the reference's sqrt(mean x^2) gives nan gradients on an all-zero frame.

    Here a signal starting with 0.1 s of exact zeros (three silent frames) and one whose side
    channel is identically zero (a constant feature, zero standard deviation) keep finite grads.
    """
    g = torch.Generator().manual_seed(4)
    x = 0.1 * torch.randn(1, 2, 22050, generator=g)
    x[..., :4410] = 0.0
    mono = 0.1 * torch.randn(1, 1, 22050, generator=g).expand(-1, 2, -1).contiguous()
    for sig in (x, mono):
        sig = sig.clone().requires_grad_()
        out = enc[encoder, 44100](sig)
        (out["mid"].sum() + out["side"].sum()).backward()
        assert torch.isfinite(sig.grad).all()


@pytest.mark.parametrize("encoder,sample_rate", [("mfcc", 44100), ("mir", 44100), ("mfcc", 48000)])
def test_gradcheck_float64(encoder, sample_rate):
    """``torch.autograd.gradcheck`` in float64 on 6 frames of audio (fast mode).

    Samples are kept >= 0.05 away from zero so finite differences do not straddle the kink of
    ``|x|`` in the MIR spread (its derivative there is 1/(|x| + 1e-8)).
    """
    n = 2048 + 5 * 1024 if sample_rate == 44100 else 7300
    r = torch.randn(1, 2, n, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    x = (torch.sign(r) * (0.05 + 0.3 * r.abs())).requires_grad_()
    model = get_encoder(encoder, sample_rate=sample_rate).double()

    def fn(sig):
        out = model(sig)
        return torch.cat([out["mid"], out["side"]], -1)

    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=True)


def test_time_statistics_closed_form():
    """Population moments: a two-point sequence has skew 0 and excess kurtosis -2."""
    f = torch.tensor([[[1.0, 3.0, 1.0, 3.0], [0.0, 0.0, 0.0, 6.0]]])  # (batch 1, K 2, frames 4)
    expected = torch.tensor([[2.0, 1.0, 0.0, -2.0, 1.5, 1.5 * math.sqrt(3), 2 / math.sqrt(3), -2 / 3]])
    torch.testing.assert_close(time_statistics(f), expected)


def test_combined_encoder_is_its_parts_side_by_side():
    """``get_encoder("fx+mfcc")``: the first part's embeddings under mid/side, the others under
    ``name:mid``/``name:side``, each exactly what that part gives alone."""
    from vocalfx.encoders import CombinedEncoder, get_encoder

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2, 3 * 44100, generator=g) * 0.1
    combo = get_encoder("fx+mfcc")
    assert isinstance(combo, CombinedEncoder) and combo.names == ["fx", "mfcc"]
    out = combo(x)
    assert sorted(out) == ["mfcc:mid", "mfcc:side", "mid", "side"]
    fx, mfcc = get_encoder("fx")(x), get_encoder("mfcc")(x)
    for k in ("mid", "side"):
        torch.testing.assert_close(out[k], fx[k])
        torch.testing.assert_close(out[f"mfcc:{k}"], mfcc[k])
    # the preset head is the first part's
    torch.testing.assert_close(combo.predict_preset(x[:1]), get_encoder("fx").predict_preset(x[:1]))
    with pytest.raises(ValueError, match="unknown encoder 'nope' in 'fx\\+nope'"):
        get_encoder("fx+nope")
    with pytest.raises(ValueError, match="twice"):
        get_encoder("mfcc+mfcc")


def test_ito_nll_adds_one_likelihood_per_part():
    """The combined likelihood is the sum of the parts' (each part has its own sigma), and its
    gradient reaches the audio through both parts."""
    from vocalfx.encoders import get_encoder
    from vocalfx.matching import ito_nll

    g = torch.Generator().manual_seed(1)
    ref = torch.randn(2, 2, 3 * 44100, generator=g) * 0.1
    x = (torch.randn(3, 2, 3 * 44100, generator=g) * 0.1).requires_grad_(True)
    combo, fx, mfcc = get_encoder("fx+mfcc"), get_encoder("fx"), get_encoder("mfcc")
    nll, s_mid, s_side = ito_nll(combo(x), combo(ref))
    n_fx, f_mid, f_side = ito_nll(fx(x), fx(ref))
    n_mf, _, _ = ito_nll(mfcc(x), mfcc(ref))
    torch.testing.assert_close(nll, n_fx + n_mf)
    torch.testing.assert_close((s_mid, s_side), (f_mid, f_side))
    (grad,) = torch.autograd.grad(nll, x)
    (g_fx,) = torch.autograd.grad(n_fx, x)
    assert torch.isfinite(grad).all() and (grad - g_fx).abs().sum() > 0
    with pytest.raises(ValueError, match="same keys"):
        ito_nll(combo(x), fx(ref))
