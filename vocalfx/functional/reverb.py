"""Feedback delay network (FDN) reverb, built as a 2-in/2-out impulse response.

``H(w) = c (diag(e^{j w m_i}) - U diag(g_i(w)))^{-1} b`` at every rFFT bin of a 12 s window,
with ``U = expm(S - S^T)`` orthogonal (``S`` the strict upper triangle of the generator),
``g_i(w) = gamma(w)^(m_i / m_min)`` and ``gamma`` given at 49 frequencies and interpolated
linearly over the bins (DiffVox's FDN). The per-bin 6x6 solve is a vectorised LU factorisation
without pivoting: with ``K = Z^{-1} U Gamma`` and ``||K||_2 <= max gamma < 1`` the matrix
``I - K`` has a positive-definite Hermitian part, so elimination needs no pivoting; its backward
pass reuses the factors for the adjoint solve. This is an order of magnitude faster than
``torch.linalg.solve`` over 264,601 small matrices, forward and backward.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._util import check_audio, run_ranges
from .conv import fft_convolve
from .fft import irfft

__all__ = ["mixing_matrix", "fdn_decay_gains", "fdn_response", "fdn_ir", "fdn_reverb"]


def mixing_matrix(generator: torch.Tensor, n: int = 6) -> torch.Tensor:
    """Orthogonal ``(batch, n, n)`` matrix ``expm(S - S^T)`` from ``(batch, n(n-1)/2)`` entries of ``S``."""
    B = generator.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=generator.device)
    S = generator.new_zeros(B, n, n)
    S = S.index_put((torch.arange(B, device=generator.device)[:, None], iu[0][None], iu[1][None]), generator)
    return torch.linalg.matrix_exp(S - S.transpose(-1, -2))


def fdn_decay_gains(decay: torch.Tensor, delays: Sequence[int], n_bins: int) -> torch.Tensor:
    """Per-line, per-bin loop gains ``(batch, lines, bins)`` from ``(batch, K)`` decay values.

    ``decay`` (per pass through the shortest line) is interpolated linearly over the bins with
    the K points spanning DC..Nyquist, then raised to ``m_i / m_min`` for each line.
    """
    gamma = F.interpolate(decay.unsqueeze(1), size=n_bins, mode="linear", align_corners=True)  # (B,1,F)
    m = torch.as_tensor(delays, dtype=decay.dtype, device=decay.device)
    return gamma ** (m / m.min())[None, :, None]


class _FDNSolve(torch.autograd.Function):
    """``H = c (Z - U diag(g))^{-1} b`` per bin; U ``(B,n,n)``, g ``(B,n,F)``, b ``(B,n,2)``, c ``(B,2,n)``.

    ``z`` is ``(2, n, F)``: real and imaginary parts of ``e^{j w m_i}``. Returns complex ``(B,2,2,F)``.
    """

    @staticmethod
    def forward(ctx, U, g, b, c, z):
        from ._fdn_kernel import BLOCK, fdn_solve_forward

        B, n, Fb = g.shape
        npy = lambda t: t.detach().contiguous().numpy()
        Un, gn, bn, cn, zn = npy(U), npy(g), npy(b), npy(c), npy(z)
        dt = gn.dtype
        Hr = np.empty((B, c.shape[1], b.shape[2], Fb), dt)
        Hi = np.empty_like(Hr)
        Xr = np.empty((B, n, b.shape[2], Fb), dt)
        Xi = np.empty_like(Xr)
        run_ranges(fdn_solve_forward, B * ((Fb + BLOCK - 1) // BLOCK), Un, gn, bn, cn, zn[0], zn[1], Hr, Hi, Xr, Xi)
        ctx.save_for_backward(U, g, c, z)
        ctx.X = (Xr, Xi)
        return torch.complex(torch.from_numpy(Hr), torch.from_numpy(Hi))

    @staticmethod
    def backward(ctx, grad_H):
        from ._fdn_kernel import BLOCK, fdn_solve_backward

        U, g, c, z = ctx.saved_tensors
        Xr, Xi = ctx.X
        B, n, Fb = g.shape
        npy = lambda t: t.detach().contiguous().numpy()
        Un, gn, cn, zn = npy(U), npy(g), npy(c), npy(z)
        jobs = B * ((Fb + BLOCK - 1) // BLOCK)
        dt = gn.dtype
        grad_g = np.empty_like(gn)
        part_U = np.empty((jobs, n, n), dt)
        part_b = np.empty((jobs, n, Xr.shape[2]), dt)
        part_c = np.empty((jobs, cn.shape[1], n), dt)
        gH = grad_H.resolve_conj().contiguous()
        run_ranges(
            fdn_solve_backward,
            jobs,
            Un,
            gn,
            cn,
            zn[0],
            zn[1],
            Xr,
            Xi,
            npy(gH.real),
            npy(gH.imag),
            grad_g,
            part_U,
            part_b,
            part_c,
        )
        nblk = jobs // B
        red = lambda a: torch.from_numpy(a.reshape(B, nblk, *a.shape[1:]).sum(1))
        return red(part_U), torch.from_numpy(grad_g), red(part_b), red(part_c), None


_PHASORS: dict = {}


def _delay_phasors(delays: Sequence[int], n_fft: int, dtype: torch.dtype) -> torch.Tensor:
    """Cached ``(2, lines, bins)`` real/imag parts of ``e^{j w m_i}`` (computed in float64)."""
    key = (tuple(delays), n_fft, dtype)
    if key not in _PHASORS:
        if len(_PHASORS) > 8:
            _PHASORS.clear()
        k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)
        m = torch.as_tensor(delays, dtype=torch.float64)
        # reduce the phase exactly (integer arithmetic) before the trig functions
        ph = (m[:, None] * k[None, :]).remainder(n_fft) * (2 * math.pi / n_fft)
        _PHASORS[key] = torch.stack([torch.cos(ph), torch.sin(ph)]).to(dtype)
    return _PHASORS[key]


def fdn_response(
    *,
    b: torch.Tensor,
    c: torch.Tensor,
    decay: torch.Tensor,
    mixing: torch.Tensor,
    n_fft: int,
    delays: Sequence[int] = (997, 1153, 1327, 1559, 1801, 2099),
) -> torch.Tensor:
    """Frequency response of the FDN at the ``n_fft // 2 + 1`` rFFT bins.

    Args:
        b: input gains ``(batch, lines, 2)``. c: output gains ``(batch, 2, lines)``.
        decay: loop gain per pass through the shortest line, at K frequencies ``(batch, K)``.
        mixing: generator of the orthogonal mixing matrix ``(batch, lines (lines-1) / 2)``.
        n_fft: FFT size (DiffVox: 12 s at the sample rate).

    Returns:
        complex ``(batch, 2 out, 2 in, bins)``.
    """
    n = len(delays)
    n_bins = n_fft // 2 + 1
    U = mixing_matrix(mixing, n)
    g = fdn_decay_gains(decay, delays, n_bins)
    z = _delay_phasors(delays, n_fft, decay.dtype)
    Bn = max(U.shape[0], g.shape[0], b.shape[0], c.shape[0])
    U, g = U.expand(Bn, n, n), g.expand(Bn, n, n_bins)
    b, c = b.expand(Bn, n, 2), c.expand(Bn, 2, n)
    return _FDNSolve.apply(U, g, b, c, z)


def fdn_ir(
    *,
    b: torch.Tensor,
    c: torch.Tensor,
    decay: torch.Tensor,
    mixing: torch.Tensor,
    ir_length: int,
    eq_response: torch.Tensor | None = None,
    delays: Sequence[int] = (997, 1153, 1327, 1559, 1801, 2099),
) -> torch.Tensor:
    """FDN impulse response ``(batch, 2 out, 2 in, ir_length)`` by inverse FFT of :func:`fdn_response`.

    ``eq_response`` (complex ``(batch, bins)``) multiplies the response before the inverse FFT
    (the post-EQ). DiffVox filters the 12 s response in time instead; the two differ only by the
    response's tail wrapping around the window, below -100 dB for every DiffVox preset.
    """
    H = fdn_response(b=b, c=c, decay=decay, mixing=mixing, n_fft=ir_length, delays=delays)
    if eq_response is not None:
        H = H * eq_response[:, None, None, :]
    return irfft(H, ir_length)


def fdn_reverb(
    x: torch.Tensor,
    sample_rate: float,
    *,
    b: torch.Tensor,
    c: torch.Tensor,
    decay: torch.Tensor,
    mixing: torch.Tensor,
    ir_seconds: float = 12.0,
) -> torch.Tensor:
    """Reverberate a stereo ``(batch, 2, time)`` signal with the FDN (no post-EQ)."""
    check_audio(x)
    if x.shape[1] != 2:
        raise ValueError(f"fdn_reverb expects stereo input (batch, 2, time), got {tuple(x.shape)}")
    h = fdn_ir(b=b, c=c, decay=decay, mixing=mixing, ir_length=int(sample_rate * ir_seconds))
    return fft_convolve(x, h.to(x.dtype))
