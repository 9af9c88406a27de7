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
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F

from ._util import check_audio
from .conv import fft_convolve

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


def _lu_inplace(A: torch.Tensor) -> None:
    """LU without pivoting of ``(B, n, n, F)`` in place: unit-lower L below, U on and above."""
    n = A.shape[1]
    for k in range(n - 1):
        inv = 1.0 / A[:, k, k]
        A[:, k + 1 :, k] *= inv[:, None]
        A[:, k + 1 :, k + 1 :] -= A[:, k + 1 :, k, None] * A[:, k, None, k + 1 :]


def _lu_solve(A: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Solve ``L U X = R`` for ``R`` ``(B, n, r, F)`` with factors from :func:`_lu_inplace`."""
    X = R.clone()
    n = A.shape[1]
    for k in range(1, n):  # forward, unit lower
        X[:, k] -= (A[:, k, :k, None] * X[:, :k]).sum(1)
    for k in range(n - 1, -1, -1):  # backward, upper
        if k < n - 1:
            X[:, k] -= (A[:, k, k + 1 :, None] * X[:, k + 1 :]).sum(1)
        X[:, k] /= A[:, k, k, None]
    return X


def _lu_solve_adjoint(A: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """Solve ``(L U)^H Y = R``: ``U^H W = R`` (lower) then ``L^H Y = W`` (unit upper)."""
    Y = R.clone()
    n = A.shape[1]
    Ac = A.conj()
    for k in range(n):
        if k > 0:
            Y[:, k] -= (Ac[:, :k, k, None] * Y[:, :k]).sum(1)
        Y[:, k] /= Ac[:, k, k, None]
    for k in range(n - 2, -1, -1):
        Y[:, k] -= (Ac[:, k + 1 :, k, None] * Y[:, k + 1 :]).sum(1)
    return Y


class _FDNSolve(torch.autograd.Function):
    """``H = c (Z - U diag(g))^{-1} b`` per bin; U ``(B,n,n)``, g ``(B,n,F)``, b ``(B,n,2)``, c ``(B,2,n)``."""

    @staticmethod
    def forward(ctx, U, g, b, c, z):
        B, n, Fb = g.shape
        M = (-U[:, :, :, None] * g[:, None, :, :]).to(z.dtype)
        idx = torch.arange(n, device=g.device)
        M[:, idx, idx] += z
        _lu_inplace(M)
        X = _lu_solve(M, b.to(z.dtype)[..., None].expand(B, n, b.shape[-1], Fb))
        H = torch.einsum("boi,biqf->boqf", c.to(z.dtype), X)
        ctx.save_for_backward(U, g, c, M, X)
        return H

    @staticmethod
    def backward(ctx, grad_H):
        U, g, c, M, X = ctx.saved_tensors
        grad_U = grad_g = grad_b = grad_c = None
        if ctx.needs_input_grad[3]:
            grad_c = torch.einsum("boqf,biqf->boi", grad_H, X.conj()).real
        if any(ctx.needs_input_grad[:3]):
            grad_X = torch.einsum("boi,boqf->biqf", c.to(grad_H.dtype), grad_H)
            Y = _lu_solve_adjoint(M, grad_X)
            if ctx.needs_input_grad[2]:
                grad_b = Y.sum(-1).real
            if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
                P = torch.einsum("biqf,bjqf->bijf", Y, X.conj()).real  # = -grad_M (real part)
                if ctx.needs_input_grad[0]:
                    grad_U = torch.einsum("bijf,bjf->bij", P, g)
                if ctx.needs_input_grad[1]:
                    grad_g = torch.einsum("bijf,bij->bjf", P, U)
        return grad_U, grad_g, grad_b, grad_c, None


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
    cdtype = torch.complex128 if decay.dtype == torch.float64 else torch.complex64
    w = torch.arange(n_bins, dtype=decay.dtype, device=decay.device) * (2 * math.pi / n_fft)
    m = torch.as_tensor(delays, dtype=decay.dtype, device=decay.device)
    z = torch.polar(torch.ones((), dtype=decay.dtype), m[:, None] * w[None, :]).to(cdtype)  # e^{j w m}
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
    return torch.fft.irfft(H, n=ir_length)


def fdn_reverb(x: torch.Tensor, sample_rate: float, *, b, c, decay, mixing, ir_seconds: float = 12.0) -> torch.Tensor:
    """Reverberate a stereo ``(batch, 2, time)`` signal with the FDN (no post-EQ)."""
    check_audio(x)
    if x.shape[1] != 2:
        raise ValueError(f"fdn_reverb expects stereo input (batch, 2, time), got {tuple(x.shape)}")
    h = fdn_ir(b=b, c=c, decay=decay, mixing=mixing, ir_length=int(sample_rate * ir_seconds))
    return fft_convolve(x, h.to(x.dtype))
