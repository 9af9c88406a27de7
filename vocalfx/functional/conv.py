"""Causal FFT convolution."""

from __future__ import annotations

import torch

from ._util import check_audio
from .fft import fft_length, irfft, rfft

__all__ = ["fft_convolve"]


def fft_convolve(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Causal linear convolution truncated to the input length: ``y[n] = sum_k h[k] x[n-k]``.

    Args:
        x: ``(batch, channels, time)``.
        h: impulse responses ``(batch or 1, channels, length)`` (one per channel) or
            ``(batch or 1, out_channels, channels, length)`` (a MIMO filter; the outputs sum over
            input channels).

    Returns:
        ``(batch, channels or out_channels, time)``.
    """
    check_audio(x)
    T = x.shape[-1]
    h = h[..., :T]
    n = fft_length(T + h.shape[-1] - 1)
    X = rfft(x, n)
    Hf = rfft(h, n)
    if h.dim() == 4:
        Y = (Hf * X.unsqueeze(1)).sum(2)
    elif h.dim() == 3:
        Y = Hf * X
    else:
        raise ValueError(
            f"expected h of shape (batch, channels, length) or (batch, out, in, length), got {tuple(h.shape)}"
        )
    return irfft(Y, n, T)
