"""Shared helpers for the functional ops (shape checks, parameter broadcasting, FFT sizes)."""

from __future__ import annotations

from typing import Union

import torch

Param = Union[float, torch.Tensor]


def check_audio(x: torch.Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` is ``(batch, channels, time)``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected {name} of shape (batch, channels, time), got shape {shape}")


def as_param(p: Param, like: torch.Tensor) -> torch.Tensor:
    """A float or tensor as a tensor in ``like``'s dtype and device (no copy when possible)."""
    return torch.as_tensor(p, dtype=like.dtype, device=like.device)


def batch_param(p: Param, like: torch.Tensor) -> torch.Tensor:
    """A scalar or ``(batch,)`` parameter as a ``(batch_or_1,)`` tensor."""
    t = as_param(p, like)
    if t.dim() == 0:
        t = t.reshape(1)
    if t.dim() != 1:
        raise ValueError(f"expected a scalar or a (batch,) parameter, got shape {tuple(t.shape)}")
    return t


def broadcast_batch(*sizes: int) -> int:
    """The common batch size of several batch dimensions (1 broadcasts)."""
    out = 1
    for s in sizes:
        if s != 1:
            if out != 1 and out != s:
                raise ValueError(f"batch sizes {sizes} do not broadcast")
            out = s
    return out
