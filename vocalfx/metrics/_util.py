"""Shape checks and the mid/side transform shared by the audio metrics."""

from __future__ import annotations

import math

import torch


def check_pair(pred: torch.Tensor, target: torch.Tensor, *, stereo: bool = False) -> None:
    """Raise ``ValueError`` unless ``pred`` and ``target`` are equal-shape ``(batch, channels, time)``.

    With ``stereo=True`` the channel axis must also hold exactly two channels (left, right).
    """
    for name, x in (("pred", pred), ("target", target)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name}: expected (batch, channels, time) tensor, got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(f"{name}: expected (batch, channels, time), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target must have the same (batch, channels, time) shape, "
            f"got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.dtype != target.dtype:
        raise ValueError(f"pred and target must share a dtype, got {pred.dtype} and {target.dtype}")
    if stereo and pred.shape[1] != 2:
        raise ValueError(f"mid/side needs 2 channels (left, right), got {pred.shape[1]}")


def to_mid_side(x: torch.Tensor) -> torch.Tensor:
    """``(batch, 2, time)`` left/right -> mid/side ``[(L + R) / sqrt(2), (L - R) / sqrt(2)]``."""
    left, right = x[:, 0], x[:, 1]
    return torch.stack([left + right, left - right], dim=1) / math.sqrt(2.0)
