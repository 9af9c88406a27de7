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

import torch
import torchaudio.functional as AF

from ._util import Param, as_param, check_audio, next_fast_len

__all__ = [
    "peak_coeffs",
    "low_shelf_coeffs",
    "high_shelf_coeffs",
    "lowpass_coeffs",
    "highpass_coeffs",
    "biquad",
    "biquad_response",
    "biquad_cascade_fft",
]

Coeffs = Tuple[torch.Tensor, torch.Tensor]


def _w0(sample_rate: float, freq_hz: torch.Tensor) -> torch.Tensor:
    return 2.0 * math.pi * freq_hz / sample_rate


def _stack(b0, b1, b2, a0, a1, a2) -> Coeffs:
    b0, b1, b2, a0, a1, a2 = torch.broadcast_tensors(b0, b1, b2, a0, a1, a2)
    return torch.stack([b0, b1, b2], -1), torch.stack([a0, a1, a2], -1)


def _tensors(ref: torch.Tensor | None, *ps: Param):
    like = ref
    if like is None:
        like = next((p for p in ps if isinstance(p, torch.Tensor)), torch.zeros((), dtype=torch.float64))
    return [as_param(p, like) for p in ps]


def peak_coeffs(sample_rate: float, *, gain_db: Param, freq_hz: Param, q: Param) -> Coeffs:
    """Peaking EQ: ``gain_db`` at ``freq_hz``, bandwidth set by ``q``.

    Args:
        sample_rate: in Hz.
        gain_db: gain at the centre frequency in dB.
        freq_hz: centre frequency in Hz.
        q: quality factor.

    Returns:
        ``(b, a)``, each ``(..., 3)``.
    """
    gain_db, freq_hz, q = _tensors(None, gain_db, freq_hz, q)
    w0 = _w0(sample_rate, freq_hz)
    A = torch.exp(gain_db * (math.log(10.0) / 40.0))
    alpha = torch.sin(w0) / (2.0 * q)
    cos = torch.cos(w0)
    return _stack(1 + alpha * A, -2 * cos, 1 - alpha * A, 1 + alpha / A, -2 * cos, 1 - alpha / A)


def _shelf(sample_rate, gain_db, freq_hz, q, sign: float) -> Coeffs:
    gain_db, freq_hz, q = _tensors(None, gain_db, freq_hz, q)
    w0 = _w0(sample_rate, freq_hz)
    A = torch.exp(gain_db * (math.log(10.0) / 40.0))
    alpha = torch.sin(w0) / (2.0 * q)
    cos = torch.cos(w0)
    k = 2 * alpha * torch.sqrt(A)
    s = sign  # +1 low shelf, -1 high shelf
    b0 = A * (A + 1 - s * (A - 1) * cos + k)
    b1 = s * 2 * A * (A - 1 - s * (A + 1) * cos)
    b2 = A * (A + 1 - s * (A - 1) * cos - k)
    a0 = A + 1 + s * (A - 1) * cos + k
    a1 = -s * 2 * (A - 1 + s * (A + 1) * cos)
    a2 = A + 1 + s * (A - 1) * cos - k
    return _stack(b0, b1, b2, a0, a1, a2)


def low_shelf_coeffs(sample_rate: float, *, gain_db: Param, freq_hz: Param, q: Param = 0.707) -> Coeffs:
    """Low shelf: ``gain_db`` below ``freq_hz`` (RBJ cookbook, shelf slope set by ``q``)."""
    return _shelf(sample_rate, gain_db, freq_hz, q, 1.0)


def high_shelf_coeffs(sample_rate: float, *, gain_db: Param, freq_hz: Param, q: Param = 0.707) -> Coeffs:
    """High shelf: ``gain_db`` above ``freq_hz`` (RBJ cookbook, shelf slope set by ``q``)."""
    return _shelf(sample_rate, gain_db, freq_hz, q, -1.0)


def lowpass_coeffs(sample_rate: float, *, freq_hz: Param, q: Param) -> Coeffs:
    """Second-order low-pass with cutoff ``freq_hz`` and resonance ``q``."""
    freq_hz, q = _tensors(None, freq_hz, q)
    w0 = _w0(sample_rate, freq_hz)
    alpha = torch.sin(w0) / (2.0 * q)
    cos = torch.cos(w0)
    b0 = (1 - cos) / 2
    return _stack(b0, 1 - cos, b0, 1 + alpha, -2 * cos, 1 - alpha)


def highpass_coeffs(sample_rate: float, *, freq_hz: Param, q: Param) -> Coeffs:
    """Second-order high-pass with cutoff ``freq_hz`` and resonance ``q``."""
    freq_hz, q = _tensors(None, freq_hz, q)
    w0 = _w0(sample_rate, freq_hz)
    alpha = torch.sin(w0) / (2.0 * q)
    cos = torch.cos(w0)
    b0 = (1 + cos) / 2
    return _stack(b0, -1 - cos, b0, 1 + alpha, -2 * cos, 1 - alpha)


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


def biquad_response(b: torch.Tensor, a: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Complex frequency response at the ``n_fft // 2 + 1`` rFFT bins.

    ``H(w) = (b0 + b1 z^-1 + b2 z^-2) / (a0 + a1 z^-1 + a2 z^-2)``, ``z = e^{jw}``.

    Args:
        b, a: ``(..., 3)`` coefficients.
        n_fft: FFT size defining the bins ``w_k = 2 pi k / n_fft``.

    Returns:
        complex tensor ``(..., n_fft // 2 + 1)``.
    """
    n_bins = n_fft // 2 + 1
    w = torch.arange(n_bins, dtype=b.dtype, device=b.device) * (2.0 * math.pi / n_fft)
    c1, s1 = torch.cos(w), torch.sin(w)
    c2, s2 = torch.cos(2 * w), torch.sin(2 * w)
    b0, b1, b2 = (b[..., i : i + 1] for i in range(3))
    a0, a1, a2 = (a[..., i : i + 1] for i in range(3))
    num = torch.complex(b0 + b1 * c1 + b2 * c2, -(b1 * s1 + b2 * s2))
    den = torch.complex(a0 + a1 * c1 + a2 * c2, -(a1 * s1 + a2 * s2))
    return num / den


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
    n = n_fft or next_fast_len(2 * T)
    H = biquad_response(b, a, n).prod(dim=-2)  # (B, bins)
    X = torch.fft.rfft(x, n=n)
    return torch.fft.irfft(X * H.unsqueeze(-2), n=n)[..., :T]
