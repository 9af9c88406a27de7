"""RBJ audio-EQ-cookbook biquads: coefficients, frequency responses and filtering.

Coefficient functions return ``(b, a)``, each of shape ``(..., 3)`` (not normalised by ``a0``),
with ``...`` the broadcast shape of the parameters. Filtering is available two ways that compute
the same thing:

* :func:`biquad` runs a true IIR recursion (zero initial state) with ``torchaudio``'s ``lfilter``;
* :func:`biquad_cascade_fft` multiplies by the cascade's frequency response on an FFT grid at
  least twice the signal length. Its output differs from the recursion only by the part of the
  filters' impulse response that lies beyond the signal length (below 1e-12 for every filter in
  the vocal chain's ranges), and it is several times faster for a cascade of biquads.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch
import torchaudio.functional as AF
from dasp_pytorch.signal import biquad as dasp_biquad

from ._util import Param, as_param, check_audio, run_ranges
from .fft import fft_length, irfft, rfft

__all__ = [
    "peak_coeffs",
    "low_shelf_coeffs",
    "high_shelf_coeffs",
    "lowpass_coeffs",
    "highpass_coeffs",
    "biquad",
    "biquad_response",
    "cascade_response",
    "biquad_cascade_fft",
    "sosfilt",
]

Coeffs = Tuple[torch.Tensor, torch.Tensor]


def _tensors(ref: torch.Tensor | None, *ps: Param):
    like = ref
    if like is None:
        like = next((p for p in ps if isinstance(p, torch.Tensor)), torch.zeros((), dtype=torch.float64))
    return [as_param(p, like) for p in ps]


def _rbj(kind: str, sample_rate: float, gain_db: Param, freq_hz: Param, q: Param) -> Coeffs:
    """RBJ cookbook coefficients from dasp-pytorch's ``signal.biquad``, for parameters of any shape.

    dasp-pytorch designs one biquad per row of a ``(batch,)`` tensor and normalises by ``a0``; its
    formulas are exactly the ones DiffVox's chain uses (``tests/test_functional.py`` checks them
    against scipy and closed forms). The parameters are broadcast, flattened for it and the
    result reshaped to ``(..., 3)``.
    """
    gain_db, freq_hz, q = torch.broadcast_tensors(*_tensors(None, gain_db, freq_hz, q))
    shape = gain_db.shape
    b, a = dasp_biquad(gain_db.reshape(-1), freq_hz.reshape(-1), q.reshape(-1), sample_rate, kind)
    return b.reshape(*shape, 3), a.reshape(*shape, 3)


def peak_coeffs(sample_rate: float, *, gain_db: Param, freq_hz: Param, q: Param) -> Coeffs:
    """Peaking EQ: ``gain_db`` at ``freq_hz``, bandwidth set by ``q`` (RBJ cookbook).

    Args:
        sample_rate: in Hz.
        gain_db: gain at the centre frequency in dB.
        freq_hz: centre frequency in Hz.
        q: quality factor.

    Returns:
        ``(b, a)``, each ``(..., 3)``, normalised so that ``a[..., 0] == 1``.
    """
    return _rbj("peaking", sample_rate, gain_db, freq_hz, q)


def low_shelf_coeffs(sample_rate: float, *, gain_db: Param, freq_hz: Param, q: Param = 0.707) -> Coeffs:
    """Low shelf: ``gain_db`` below ``freq_hz`` (RBJ cookbook, shelf slope set by ``q``)."""
    return _rbj("low_shelf", sample_rate, gain_db, freq_hz, q)


def high_shelf_coeffs(sample_rate: float, *, gain_db: Param, freq_hz: Param, q: Param = 0.707) -> Coeffs:
    """High shelf: ``gain_db`` above ``freq_hz`` (RBJ cookbook, shelf slope set by ``q``)."""
    return _rbj("high_shelf", sample_rate, gain_db, freq_hz, q)


def lowpass_coeffs(sample_rate: float, *, freq_hz: Param, q: Param) -> Coeffs:
    """Second-order low-pass with cutoff ``freq_hz`` and resonance ``q`` (RBJ cookbook)."""
    return _rbj("low_pass", sample_rate, 0.0, freq_hz, q)


def highpass_coeffs(sample_rate: float, *, freq_hz: Param, q: Param) -> Coeffs:
    """Second-order high-pass with cutoff ``freq_hz`` and resonance ``q`` (RBJ cookbook)."""
    return _rbj("high_pass", sample_rate, 0.0, freq_hz, q)


def biquad(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Filter ``x`` with one biquad per batch item, as a true IIR recursion from zero state.

    Args:
        x: audio ``(batch, channels, time)``.
        b, a: coefficients ``(3,)`` or ``(batch, 3)``; ``a[..., 0]`` need not be 1.

    Returns:
        ``(batch, channels, time)``; no clamping.
    """
    check_audio(x)
    B, C, T = x.shape
    if b.dim() == 1:
        b, a = b.unsqueeze(0), a.unsqueeze(0)
    b = b.to(x.dtype).expand(B, 3)
    a = a.to(x.dtype).expand(B, 3)
    # lfilter with 2-D coefficients filters channel k with filter k: one filter per (batch, channel)
    b = b.repeat_interleave(C, 0)
    a = a.repeat_interleave(C, 0)
    y = AF.lfilter(x.reshape(1, B * C, T), a, b, clamp=False, batching=True)
    return y.reshape(B, C, T)


_TRIG: dict = {}


def _unit_circle(n_fft: int, dtype: torch.dtype, device) -> torch.Tensor:
    """Cached complex ``(2, bins)``: ``e^{-jw}`` and ``e^{-2jw}`` at the rFFT bins (from float64)."""
    key = (n_fft, dtype, str(device))
    if key not in _TRIG:
        if len(_TRIG) > 16:
            _TRIG.clear()
        w = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * (2.0 * math.pi / n_fft)
        e = torch.stack([torch.polar(torch.ones_like(w), -w), torch.polar(torch.ones_like(w), -2 * w)])
        cdt = torch.complex128 if dtype == torch.float64 else torch.complex64
        _TRIG[key] = e.to(dtype=cdt, device=device)
    return _TRIG[key]


def _poly_response(c: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """``c0 + c1 e^{-jw} + c2 e^{-2jw}`` for real ``c`` ``(..., 3)``."""
    return c[..., 0:1] + c[..., 1:2] * e[0] + c[..., 2:3] * e[1]


def biquad_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Complex frequency response at the ``n_fft // 2 + 1`` rFFT bins.

    ``H(w) = (b0 + b1 z^-1 + b2 z^-2) / (a0 + a1 z^-1 + a2 z^-2)``, ``z = e^{jw}``.

    Args:
        b, a: ``(..., 3)`` coefficients.
        n_fft: FFT size defining the bins ``w_k = 2 pi k / n_fft``.

    Returns:
        complex tensor ``(..., n_fft // 2 + 1)``.
    """
    e = _unit_circle(n_fft, b.dtype, b.device)
    return _poly_response(b, e) / _poly_response(a, e)


def cascade_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Response of a cascade of K biquads, ``b``, ``a`` ``(..., K, 3)`` -> complex ``(..., bins)``.

    Evaluated in factored form (each biquad's numerator and denominator on the unit circle; an
    expanded degree-2K polynomial would cancel catastrophically near low-frequency poles), with
    the numerators and denominators multiplied separately and divided once.
    """
    e = _unit_circle(n_fft, b.dtype, b.device)
    num = _poly_response(b[..., 0, :], e)
    den = _poly_response(a[..., 0, :], e)
    for k in range(1, b.shape[-2]):
        num = num * _poly_response(b[..., k, :], e)
        den = den * _poly_response(a[..., k, :], e)
    return num / den


class _SOSFilter(torch.autograd.Function):
    """Cascade of normalised biquads over rows: x ``(R, T)``, b/a ``(R, K, 3)`` with ``a0 = 1``."""

    @staticmethod
    def forward(ctx, x, b, a):
        from ._iir_kernel import sos_forward

        xn = x.detach().contiguous().numpy()
        bn = b.detach().contiguous().numpy()
        an = a.detach().contiguous().numpy()
        keep = any(ctx.needs_input_grad)
        R, T = xn.shape
        ys = np.empty((R, bn.shape[1] if keep else 1, T), dtype=xn.dtype)
        run_ranges(sos_forward, R, xn, bn, an, keep, ys)
        ctx.save_for_backward(x, b, a)
        ctx.ys = ys
        return torch.from_numpy(ys[:, -1].copy())

    @staticmethod
    def backward(ctx, grad_y):
        from ._iir_kernel import sos_backward

        x, b, a = ctx.saved_tensors
        ys = ctx.ys
        xn = x.detach().contiguous().numpy()
        gx = np.empty_like(xn)
        gb = np.empty(b.shape, dtype=np.float64)
        ga = np.empty(a.shape, dtype=np.float64)  # coefficients are float64 (see sosfilt)
        run_ranges(
            sos_backward,
            xn.shape[0],
            xn,
            ys,
            b.detach().contiguous().numpy(),
            a.detach().contiguous().numpy(),
            grad_y.detach().contiguous().numpy(),
            gx,
            gb,
            ga,
        )
        return torch.from_numpy(gx), torch.from_numpy(gb), torch.from_numpy(ga)


def sosfilt(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """Filter with a cascade of K biquads per batch item, as true IIR recursions from zero state.

    A compiled (numba) sample loop through all sections, with an exact adjoint for gradients
    w.r.t. the signal and the coefficients; several times faster than K passes of
    ``torchaudio.functional.lfilter`` or a frequency-domain product (see benchmarks/bench_chain.py).

    Args:
        x: ``(batch or 1, channels, time)``.
        b, a: ``(batch or 1, K, 3)`` (``a[..., 0]`` need not be 1).

    Returns:
        ``(batch, channels, time)`` in ``x``'s dtype.
    """
    check_audio(x)
    if x.device.type != "cpu":
        raise ValueError("sosfilt runs on the CPU; move the tensors with .cpu()")
    Bx, C, T = x.shape
    B = max(Bx, b.shape[0])
    # coefficients stay in float64 whatever the signal's dtype (the recursion runs in float64)
    b = b.double()
    a = a.double()
    a0 = a[..., :1]
    bn = (b / a0).expand(B, -1, 3)
    an = (a / a0).expand(B, -1, 3)
    rows = x.expand(B, C, T).reshape(B * C, T)
    bn = bn.repeat_interleave(C, 0)
    an = an.repeat_interleave(C, 0)
    y = _SOSFilter.apply(rows, bn, an)
    return y.reshape(B, C, T)


def biquad_cascade_fft(x: torch.Tensor, b: torch.Tensor, a: torch.Tensor, *, n_fft: int | None = None) -> torch.Tensor:
    """Apply a cascade of K biquads per batch item in the frequency domain.

    Equals running the K recursions one after another from zero state, up to the filters'
    impulse-response energy beyond ``n_fft - time`` samples (the FFT grid is at least twice the
    signal length, so for stable biquads this is far below float64 resolution).

    Args:
        x: ``(batch or 1, channels, time)``.
        b, a: ``(batch or 1, K, 3)``.
        n_fft: FFT size (default: a fast size >= 2 * time).

    Returns:
        ``(batch, channels, time)``.
    """
    check_audio(x)
    T = x.shape[-1]
    n = n_fft or fft_length(2 * T)
    # the response is computed in float64 even for float32 audio: low-frequency, high-Q biquads
    # lose most of their accuracy in float32 coefficients/trigonometry, and it costs little
    H = cascade_response(b.double(), a.double(), n)  # (B, bins)
    X = rfft(x, n)
    return irfft(X * H.unsqueeze(-2).to(X.dtype), n, T)
