"""Real FFTs with cheaper gradients than torch's defaults.

torch differentiates ``rfft`` with a full-length complex FFT; the adjoint of a real FFT is a
(scaled) inverse real FFT of the gradient with its interior bins halved, and the adjoint of
``irfft`` is a weighted ``rfft``, each half the work. Results are identical to ``torch.fft``.
"""

from __future__ import annotations

import torch

__all__ = ["rfft", "irfft"]


def _interior_weights(n_bins: int, n: int, dtype, device) -> torch.Tensor:
    """1 for DC (and Nyquist when n is even), 2 for the other bins."""
    w = torch.full((n_bins,), 2.0, dtype=dtype, device=device)
    w[0] = 1.0
    if n % 2 == 0:
        w[-1] = 1.0
    return w


class _RFFT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, n):
        ctx.length = x.shape[-1]
        ctx.n = n
        return torch.fft.rfft(x, n=n)

    @staticmethod
    def backward(ctx, grad):
        n = ctx.n
        w = _interior_weights(grad.shape[-1], n, grad.real.dtype, grad.device)
        # Re sum_k G_k e^{+j w_k t} = n * irfft(G / weight)
        g = torch.fft.irfft(grad / w, n=n) * n
        return g[..., : ctx.length], None


class _IRFFT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, n):
        ctx.bins = X.shape[-1]
        ctx.n = n
        return torch.fft.irfft(X, n=n)

    @staticmethod
    def backward(ctx, grad):
        n = ctx.n
        G = torch.fft.rfft(grad, n=n)
        w = _interior_weights(G.shape[-1], n, grad.dtype, grad.device) / n
        G = G * w
        if G.shape[-1] < ctx.bins:
            G = torch.nn.functional.pad(G, (0, ctx.bins - G.shape[-1]))
        return G[..., : ctx.bins], None


def rfft(x: torch.Tensor, n: int) -> torch.Tensor:
    """``torch.fft.rfft(x, n=n)`` (zero-padded or truncated to ``n``) with a half-cost backward."""
    if x.shape[-1] > n:
        x = x[..., :n]
    if not x.requires_grad:
        return torch.fft.rfft(x, n=n)
    return _RFFT.apply(x, n)


def irfft(X: torch.Tensor, n: int) -> torch.Tensor:
    """``torch.fft.irfft(X, n=n)`` with a half-cost backward."""
    if not X.requires_grad:
        return torch.fft.irfft(X, n=n)
    return _IRFFT.apply(X, n)
