"""Input checks shared by the chain and the public API."""

from __future__ import annotations

import torch

__all__ = ["check_mono_batch"]


def check_mono_batch(x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is mono audio ``(batch, 1, time)`` of float dtype."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected (batch, channels, time), got shape {shape}")
    if x.shape[1] != 1:
        raise ValueError(f"the vocal chain takes mono input (batch, 1, time), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected floating-point audio, got dtype {x.dtype}")
    if x.shape[-1] == 0:
        raise ValueError("expected at least one sample, got an empty signal")
