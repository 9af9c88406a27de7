"""Functional ops against independent oracles (scipy, closed forms), DSP checks and gradchecks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.signal as ss
import torch
from torch.autograd import gradcheck

from vocalfx import functional as VF
from vocalfx.functional.fft import irfft, rfft
from vocalfx.params import FDN_DELAYS

F64 = torch.float64


def t(*v):
    return torch.tensor(v, dtype=F64)


COEFFS = {
    "peak": lambda sr: VF.peak_coeffs(sr, gain_db=t(6.0, -9.0), freq_hz=t(1000.0, 60.0), q=t(2.0, 8.0)),
    "low_shelf": lambda sr: VF.low_shelf_coeffs(sr, gain_db=t(6.0, -9.0), freq_hz=t(100.0, 200.0)),
    "high_shelf": lambda sr: VF.high_shelf_coeffs(sr, gain_db=t(6.0, -9.0), freq_hz=t(4000.0, 8000.0)),
    "lowpass": lambda sr: VF.lowpass_coeffs(sr, freq_hz=t(1000.0, 15000.0), q=t(0.707, 5.0)),
    "highpass": lambda sr: VF.highpass_coeffs(sr, freq_hz=t(100.0, 20.0), q=t(0.707, 2.0)),
}


@pytest.mark.parametrize("kind", list(COEFFS))
@pytest.mark.parametrize("sr", [44100, 48000])
def test_biquad_ops_equal_scipy_lfilter(kind, sr):
    """biquad (torchaudio), sosfilt (ours) and the FFT cascade all equal scipy.signal.lfilter."""
    b, a = COEFFS[kind](sr)
    x = torch.randn(2, 3, 4000, dtype=F64, generator=torch.Generator().manual_seed(0))
    y_iir = VF.biquad(x, b, a)
    y_sos = VF.sosfilt(x, b[:, None], a[:, None])
    # FFT grid long enough for the slowest filter here (60 Hz, Q 8: time constant 42 ms) to decay
    y_fft = VF.biquad_cascade_fft(x, b[:, None], a[:, None], n_fft=1 << 17)
    for i in range(2):
        ref = ss.lfilter(b[i].numpy(), a[i].numpy(), x[i].numpy(), axis=-1)
        np.testing.assert_allclose(y_iir[i].numpy(), ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(y_sos[i].numpy(), ref, rtol=0, atol=1e-10)
        # the FFT cascade differs by the filter's response beyond n_fft - T samples
        np.testing.assert_allclose(y_fft[i].numpy(), ref, rtol=0, atol=1e-10)


def test_sosfilt_cascade_equals_scipy_sosfilt():
    sr = 44100
    parts = [COEFFS[k](sr) for k in COEFFS]
    b = torch.stack([p[0] for p in parts], 1)
    a = torch.stack([p[1] for p in parts], 1)
    x = torch.randn(2, 1, 20000, dtype=F64, generator=torch.Generator().manual_seed(1))
    y = VF.sosfilt(x, b, a)
    for i in range(2):
        sos = np.concatenate([b[i].numpy(), a[i].numpy()], 1)
        sos = sos / sos[:, 3:4]
        np.testing.assert_allclose(y[i, 0].numpy(), ss.sosfilt(sos, x[i, 0].numpy()), rtol=0, atol=1e-10)


@pytest.mark.parametrize("sr", [22050, 44100, 96000])
def test_dsp_theory_points(sr):
    """Peak: gain_db at the centre; low-pass: -3 dB at the cutoff for Q = 1/sqrt(2); shelves
    reach their gain far from the corner."""
    n = 1 << 16

    def mag_db(b, a, f):
        w, h = ss.freqz(b.numpy(), a.numpy(), worN=[2 * math.pi * f / sr])
        return 20 * np.log10(abs(h[0]))

    b, a = VF.peak_coeffs(sr, gain_db=7.5, freq_hz=1234.0, q=3.0)
    assert mag_db(b, a, 1234.0) == pytest.approx(7.5, abs=1e-9)
    b, a = VF.lowpass_coeffs(sr, freq_hz=2000.0, q=1 / math.sqrt(2))
    assert mag_db(b, a, 2000.0) == pytest.approx(-3.0103, abs=1e-3)
    b, a = VF.highpass_coeffs(sr, freq_hz=300.0, q=1 / math.sqrt(2))
    assert mag_db(b, a, 300.0) == pytest.approx(-3.0103, abs=1e-3)
    b, a = VF.low_shelf_coeffs(sr, gain_db=-6.0, freq_hz=100.0)
    assert mag_db(b, a, 5.0) == pytest.approx(-6.0, abs=0.05)
    b, a = VF.high_shelf_coeffs(sr, gain_db=4.0, freq_hz=2000.0)
    assert mag_db(b, a, sr * 0.45) == pytest.approx(4.0, abs=0.1)
    # biquad_response equals freqz at the rFFT bins
    b, a = VF.peak_coeffs(sr, gain_db=t(3.0), freq_hz=t(500.0), q=t(1.0))
    H = VF.biquad_response(b[0], a[0], n)
    _, h = ss.freqz(b[0].numpy(), a[0].numpy(), worN=n // 2 + 1, whole=False, include_nyquist=True)
    np.testing.assert_allclose(H.numpy(), h, rtol=1e-10, atol=1e-12)


def test_pan_closed_form():
    x = torch.ones(3, 1, 4, dtype=F64)
    y = VF.pan(x, position=t(0.0, 0.5, 1.0))
    np.testing.assert_allclose(y[:, :, 0].numpy(), [[math.sqrt(2), 0.0], [1.0, 1.0], [0.0, math.sqrt(2)]], atol=1e-12)
    # constant power: L^2 + R^2 = 2 for every position
    p = torch.rand(50, dtype=F64)
    g = VF.pan_gains(p)
    np.testing.assert_allclose((g**2).sum(-1).numpy(), 2.0, rtol=1e-12)


def test_delay_taps_closed_form():
    """With an integer delay, a wide-open loop filter and no wrap, echo n sits at n*d samples with
    amplitude feedback^(n-1) times the loop filter's n-fold response (checked at DC)."""
    sr = 44100
    d_ms = 1000.0 * 4410 / sr  # exactly 4410 samples
    h = VF.ping_pong_delay_ir(
        sr, delay_ms=t(d_ms), feedback=t(0.5), lowpass_freq_hz=t(16000.0), lowpass_q=t(0.707), dtype=F64
    )
    odd, even = h[0, 0].numpy(), h[0, 1].numpy()
    L = odd.shape[0]
    # the loop low-pass passes DC unchanged, so each echo's taps sum to feedback^(n-1)
    for n in range(1, 6):
        src = odd if n % 2 else even
        seg = src[n * 4410 - 2000 : n * 4410 + 2000]
        assert seg.sum() == pytest.approx(0.5 ** (n - 1), rel=2e-3)
        assert np.argmax(np.abs(seg)) + n * 4410 - 2000 in range(n * 4410, n * 4410 + 8)
    assert L == int(sr * 4.0)


def test_fdn_response_equals_dense_solve():
    g = torch.Generator().manual_seed(0)
    B, n_fft = 2, 256
    b = torch.randn(B, 6, 2, dtype=F64, generator=g)
    c = torch.randn(B, 2, 6, dtype=F64, generator=g)
    decay = torch.rand(B, 49, dtype=F64, generator=g) * 0.95
    mixing = torch.randn(B, 15, dtype=F64, generator=g)
    delays = (7, 9, 11, 13, 17, 19)
    H = VF.fdn_response(b=b, c=c, decay=decay, mixing=mixing, n_fft=n_fft, delays=delays)
    U = VF.mixing_matrix(mixing)
    torch.testing.assert_close(U @ U.transpose(-1, -2), torch.eye(6, dtype=F64).expand(B, 6, 6), rtol=0, atol=1e-12)
    gains = VF.fdn_decay_gains(decay, delays, n_fft // 2 + 1)  # (B, 6, F)
    w = torch.arange(n_fft // 2 + 1, dtype=F64) * 2 * math.pi / n_fft
    z = torch.exp(1j * w[:, None] * torch.tensor(delays, dtype=F64))  # (F, 6)
    M = torch.diag_embed(z)[None] - U[:, None].to(torch.complex128) * gains.transpose(1, 2)[:, :, None, :]
    ref = c[:, None].to(torch.complex128) @ torch.linalg.solve(M, b[:, None].to(torch.complex128))  # (B, F, 2, 2)
    torch.testing.assert_close(H, ref.permute(0, 2, 3, 1), rtol=1e-10, atol=1e-12)


def test_fdn_ir_decay_matches_t60():
    """A frequency-flat decay gives an impulse response whose energy falls 60 dB in T60."""
    sr = 44100
    T60 = 0.5
    g = 10 ** (-3 * min(FDN_DELAYS) / (sr * T60))
    B = 1
    b = torch.full((B, 6, 2), 1 / 6, dtype=F64)
    c = torch.ones(B, 2, 6, dtype=F64) / 6
    h = VF.fdn_ir(
        b=b, c=c, decay=torch.full((B, 49), g, dtype=F64), mixing=torch.randn(B, 15, dtype=F64), ir_length=sr * 3
    )
    e = (h[0, 0, 0] ** 2).numpy()
    e1 = e[int(0.2 * sr) : int(0.3 * sr)].sum()
    e2 = e[int(0.7 * sr) : int(0.8 * sr)].sum()
    assert 10 * np.log10(e1 / e2) == pytest.approx(60.0, abs=2.0)


def test_compressor_against_loop_oracle():
    """Static curve + one-pole detector + attack/release smoothing, against a plain-Python loop."""
    sr = 8000
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(1, 1, 800, dtype=F64, generator=g) * torch.linspace(0.01, 1.0, 800, dtype=F64)).contiguous()
    kw = dict(
        comp_threshold_db=-20.0,
        comp_ratio=4.0,
        exp_threshold_db=-40.0,
        exp_ratio=0.5,
        attack_coef=0.3,
        release_coef=0.05,
        rms_coef=0.2,
        makeup_db=3.0,
        lookahead_ms=0.0,
    )
    y = VF.compressor_expander(x, sr, **kw)[0, 0].numpy()
    xs = x[0, 0].numpy()
    lvl, gs, out = 0.0, 1.0, np.zeros_like(xs)
    for n, v in enumerate(xs):
        lvl = 0.2 * max(v * v, 1e-8) + 0.8 * lvl
        L = 10 * np.log10(lvl)
        gdb = min((1 - 1 / 4.0) * (-20 - L), (1 - 1 / 0.5) * (-40 - L), 0.0)
        target = 10 ** (gdb / 20)
        coef = 0.3 if target < gs else 0.05
        gs = gs + coef * (target - gs)
        out[n] = v * gs * 10 ** (3 / 20)
    # zero look-ahead: the sinc interpolator is the identity up to its truncation
    np.testing.assert_allclose(y, out, rtol=1e-9, atol=1e-12)


def test_lookahead_integer_shift():
    g = torch.arange(100, dtype=F64)[None] ** 1.5
    y = VF.lookahead_shift(g, 1000.0, t(3.0))  # 3 samples at 1 kHz
    np.testing.assert_allclose(y[0, :90].numpy(), g[0, 3:93].numpy(), atol=1e-9)


def test_fft_convolve_equals_numpy():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 500, dtype=F64, generator=g)
    h = torch.randn(2, 3, 120, dtype=F64, generator=g)
    y = VF.fft_convolve(x, h)
    for i in range(2):
        for c in range(3):
            np.testing.assert_allclose(y[i, c].numpy(), np.convolve(x[i, c].numpy(), h[i, c].numpy())[:500], atol=1e-10)


def test_fft_wrappers_equal_torch_fft_and_gradients():
    for L, n in [(10, 16), (10, 15), (7, 12)]:
        x = torch.randn(2, L, dtype=F64, requires_grad=True)
        assert gradcheck(lambda v, n=n: rfft(v, n), (x,))
        X = torch.randn(2, n // 2 + 1, dtype=torch.complex128, requires_grad=True)
        assert gradcheck(lambda v, n=n: irfft(v, n), (X,))


# --- gradchecks in float64 on short signals -----------------------------------------------
def test_gradcheck_sosfilt():
    b, a = COEFFS["peak"](44100)
    x = torch.randn(2, 1, 60, dtype=F64, requires_grad=True)
    bb = b[:, None].clone().requires_grad_()
    aa = a[:, None].clone().requires_grad_()
    assert gradcheck(VF.sosfilt, (x, bb, aa))


def test_gradcheck_biquad_coeffs_and_cascade_fft():
    p = [t(3.0, -2.0), t(900.0, 3000.0), t(1.5, 0.8)]
    p = [v.requires_grad_() for v in p]
    x = torch.randn(2, 1, 64, dtype=F64)

    def f(gain, freq, q):
        b, a = VF.peak_coeffs(44100, gain_db=gain, freq_hz=freq, q=q)
        return VF.biquad_cascade_fft(x, b[:, None], a[:, None])

    assert gradcheck(f, p)


def test_gradcheck_compressor():
    sr = 2000
    g = torch.Generator().manual_seed(5)
    x = (torch.randn(1, 1, 200, dtype=F64, generator=g) * 0.5).requires_grad_()
    ps = [t(-12.0), t(3.0), t(-35.0), t(0.6), t(0.2), t(0.05), t(0.3), t(2.0), t(2.3)]
    ps = [p.requires_grad_() for p in ps]

    def f(x, ct, cr, et, er, at, rt, rc, mu, la):
        return VF.compressor_expander(
            x,
            sr,
            comp_threshold_db=ct,
            comp_ratio=cr,
            exp_threshold_db=et,
            exp_ratio=er,
            attack_coef=at,
            release_coef=rt,
            rms_coef=rc,
            makeup_db=mu,
            lookahead_ms=la,
        )

    assert gradcheck(f, [x] + ps, atol=1e-6, rtol=1e-4)


def test_fused_gain_computer_equals_torchcomp():
    """The compiled gain computer equals torchcomp's avg + static curve + compressor_core, values and gradients."""
    from vocalfx.functional.dynamics import _smoothed_gain_torchcomp, smoothed_gain

    g = torch.Generator().manual_seed(8)
    R, T = 3, 4000
    x = torch.randn(R, T, dtype=F64, generator=g) * torch.linspace(0.001, 0.8, T, dtype=F64)
    w = torch.randn(R, T, dtype=F64, generator=g)
    rows = torch.tensor(
        [
            [-20.0, 4.0, -45.0, 0.5, 0.05, 0.002, 0.01],
            [-10.0, 1.5, -60.0, 0.8, 0.5, 0.1, 0.3],
            [-30.0, 20.0, -35.0, 0.2, 0.01, 0.001, 1.0],
        ],
        dtype=F64,
    )
    results = []
    for f in (smoothed_gain, _smoothed_gain_torchcomp):
        xx = x.clone().requires_grad_()
        ps = [rows[:, i].clone().requires_grad_() for i in range(7)]
        y = f(xx, *ps)
        (y * w).sum().backward()
        results.append((y.detach(), xx.grad, torch.stack([p.grad for p in ps])))
    (y1, gx1, gp1), (y2, gx2, gp2) = results
    torch.testing.assert_close(y1, y2, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(gx1, gx2, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(gp1, gp2, rtol=1e-9, atol=1e-9)
    # float32 audio: the same values to float32 rounding, returned in float32
    y32 = smoothed_gain(x.float(), *(rows[:, i].float() for i in range(7)))
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y2, rtol=1e-5, atol=1e-6)


def test_gradcheck_delay_ir():
    ps = [t(150.0), t(0.4), t(3000.0), t(0.9)]
    ps = [p.requires_grad_() for p in ps]
    assert gradcheck(
        lambda d, fb, f, q: VF.ping_pong_delay_ir(
            4000, delay_ms=d, feedback=fb, lowpass_freq_hz=f, lowpass_q=q, ir_seconds=0.5, dtype=F64
        )[..., ::50],
        ps,
        atol=1e-6,
        rtol=1e-4,
    )


def test_gradcheck_fdn():
    g = torch.Generator().manual_seed(6)
    b = torch.randn(1, 6, 2, dtype=F64, generator=g).requires_grad_()
    c = torch.randn(1, 2, 6, dtype=F64, generator=g).requires_grad_()
    decay = (torch.rand(1, 49, dtype=F64, generator=g) * 0.9).requires_grad_()
    mixing = torch.randn(1, 15, dtype=F64, generator=g).requires_grad_()
    delays = (3, 4, 5, 7, 9, 11)
    assert gradcheck(
        lambda b, c, d, m: VF.fdn_ir(b=b, c=c, decay=d, mixing=m, ir_length=128, delays=delays), (b, c, decay, mixing)
    )


def test_gradcheck_pan():
    x = torch.randn(2, 1, 10, dtype=F64, requires_grad=True)
    p = t(0.2, 0.7).requires_grad_()
    assert gradcheck(lambda x, p: VF.pan(x, position=p), (x, p))


@pytest.mark.parametrize("op", ["sosfilt", "pan", "conv"])
def test_rank_errors(op):
    x = torch.zeros(10)
    with pytest.raises(ValueError, match=r"expected .*\(batch, channels, time\)"):
        if op == "sosfilt":
            VF.sosfilt(x, torch.zeros(1, 1, 3), torch.ones(1, 1, 3))
        elif op == "pan":
            VF.pan(x, position=0.5)
        else:
            VF.fft_convolve(x, torch.zeros(1, 1, 3))


def test_stft_power_equals_torch_stft_with_its_gradient():
    """``stft_power`` (the fx encoder's front end) against ``torch.stft``: values and gradients to
    float64 rounding, a tail that no frame covers gets a zero gradient, and gradcheck passes."""
    from vocalfx.functional.fft import stft_power

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 9000, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.hann_window(1024, periodic=True, dtype=torch.float64)
    ref = torch.stft(x, 1024, 512, window=w, center=False, return_complex=True).abs().square().transpose(1, 2)
    ours = stft_power(x, w)
    assert ours.shape == ref.shape == (3, 16, 513)
    torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-9)
    weights = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    (g_ref,) = torch.autograd.grad((ref * weights).sum(), x)
    (g_ours,) = torch.autograd.grad((ours * weights).sum(), x)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-12, atol=1e-9)
    assert float(g_ours[:, 16 * 512 + 512 :].abs().max()) == 0.0  # samples after the last frame
    small = torch.randn(2, 300, generator=g, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: stft_power(t, torch.hann_window(64, dtype=torch.float64)), (small,))
    with pytest.raises(ValueError, match="rows, time"):
        stft_power(torch.zeros(1, 1, 4096), torch.hann_window(1024))
