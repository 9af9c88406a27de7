"""Parameter-space distance between 130-value raw vectors (PMSE)."""

from __future__ import annotations

import torch

from ..params import NUM_PARAMS

__all__ = ["pmse"]


def pmse(pred_vector: torch.Tensor, true_vector: torch.Tensor) -> torch.Tensor:
    """Mean squared error between predicted and true raw parameter vectors (DiffVox's PMSE).

    ``mean_k (pred[..., k] - true[..., k])^2`` over the 130 raw (unconstrained) values of
    :mod:`vocalfx.params`; leading dimensions are batch dimensions and broadcast.

    Args:
        pred_vector: Predicted raw vectors.
        true_vector: True raw vectors.

    Shape:
        - pred_vector, true_vector: ``(..., 130)``, leading dimensions broadcastable.
        - output: the broadcast leading dimensions (``()`` for two single vectors).

    Returns:
        The per-vector mean squared error.

    Raises:
        ValueError: if either last dimension is not 130.

    Example:
        >>> v = torch.zeros(4, 130)
        >>> pmse(v, v + 1.0)
        tensor([1., 1., 1., 1.])
    """
    for name, v in (("pred_vector", pred_vector), ("true_vector", true_vector)):
        if not isinstance(v, torch.Tensor) or v.dim() < 1 or v.shape[-1] != NUM_PARAMS:
            shape = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"{name}: expected (..., {NUM_PARAMS}) raw vector(s), got shape {shape}")
    return (pred_vector - true_vector).square().mean(dim=-1)
