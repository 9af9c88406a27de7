"""Where matching and fitting start: the prior's mean, a preset, or a raw vector."""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np
import torch

from .. import params as P
from ..preset import Preset

__all__ = ["start_vector"]


def start_vector(init: Any, prior: Any) -> Tuple[np.ndarray, str]:
    """The starting raw vector and a label for reports.

    Args:
        init: ``None`` or ``"mean"`` (the prior's mean), a :class:`~vocalfx.preset.Preset`, or
            130 raw values (array or tensor).
        prior: a :class:`~vocalfx.prior.GaussianPrior` (its mean is used for ``None``/``"mean"``).

    Returns:
        ``(vector, label)``: a float64 ``(130,)`` copy and ``"prior mean"``, ``"preset NAME"`` or
        ``"given vector"``.

    Raises:
        ValueError: a vector of another size, or with NaN or Inf.
    """
    if init is None or (isinstance(init, str) and init == "mean"):
        return prior.mean.double().numpy().copy(), "prior mean"
    if isinstance(init, Preset):
        return init.raw.copy(), f"preset {init.name or '(unnamed)'}"
    if isinstance(init, str):
        raise ValueError(f"init: expected 'mean', a Preset or {P.NUM_PARAMS} raw values, got {init!r}")
    v = np.asarray(init.detach().cpu() if isinstance(init, torch.Tensor) else init, dtype=np.float64).reshape(-1)
    if v.shape != (P.NUM_PARAMS,):
        raise ValueError(f"init: expected 'mean', a Preset or {P.NUM_PARAMS} raw values, got shape {np.shape(init)}")
    if not np.isfinite(v).all():
        raise ValueError("init: contains NaN or Inf")
    return v, "given vector"
