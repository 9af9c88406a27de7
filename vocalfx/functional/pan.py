"""Constant-power panning."""

from __future__ import annotations

import math

import torch

from ._util import Param, batch_param, check_audio

__all__ = ["pan_gains", "pan"]


def pan_gains(position: torch.Tensor) -> torch.Tensor:
    """Left/right gains for positions in (0, 1): ``sqrt(2) [cos(p pi/2), sin(p pi/2)]``.

    Centre (0.5) is 0 dB on both channels. Shape ``(...,)`` -> ``(..., 2)``.
    """
    angle = position * (math.pi / 2)
    return torch.stack([torch.cos(angle), torch.sin(angle)], -1) * math.sqrt(2.0)


def pan(x: torch.Tensor, *, position: Param) -> torch.Tensor:
    """Pan a mono ``(batch, 1, time)`` signal to stereo ``(batch, 2, time)``.

    Args:
        x: mono audio ``(batch, 1, time)``.
        position: 0 = hard left, 0.5 = centre, 1 = hard right; float or ``(batch,)``.
    """
    check_audio(x)
    if x.shape[1] != 1:
        raise ValueError(f"pan expects mono input (batch, 1, time), got shape {tuple(x.shape)}")
    g = pan_gains(batch_param(position, x))  # (B, 2)
    return x * g[:, :, None]
