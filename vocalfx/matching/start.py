"""Where matching and fitting start: the prior's mean, a preset, or a raw vector."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch

from .. import params as P
from ..preset import Preset

__all__ = ["PREDICTED", "predicted_start", "start_vector"]

#: The ``init`` value that asks for the ``fx`` encoder's predicted preset as the starting point.
PREDICTED = "predicted"


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
    if isinstance(init, str) and init == PREDICTED:
        raise ValueError("init='predicted' needs the audio: use predicted_start (vocalfx.match does)")
    if init is None or (isinstance(init, str) and init == "mean"):
        return prior.mean.double().numpy().copy(), "prior mean"
    if isinstance(init, Preset):
        return init.raw.copy(), f"preset {init.name or '(unnamed)'}"
    if isinstance(init, str):
        raise ValueError(f"init: expected 'mean', 'predicted', a Preset or {P.NUM_PARAMS} raw values, got {init!r}")
    v = np.asarray(init.detach().cpu() if isinstance(init, torch.Tensor) else init, dtype=np.float64).reshape(-1)
    if v.shape != (P.NUM_PARAMS,):
        raise ValueError(f"init: expected 'mean', a Preset or {P.NUM_PARAMS} raw values, got shape {np.shape(init)}")
    if not np.isfinite(v).all():
        raise ValueError("init: contains NaN or Inf")
    return v, "given vector"


def predicted_start(
    reference_chunks: torch.Tensor,
    dry_chunks: torch.Tensor,
    predictor: Any,
    prior_mean: Optional[Any] = None,
    weight: float = 1.0,
) -> Tuple[np.ndarray, str]:
    """The preset a trained encoder predicts from the reference and the dry, as a starting point.

    The chunks are laid end to end in time (the ``fx`` head pools over time), so every chunk of
    each side informs one prediction.

    Args:
        reference_chunks: reference chunks ``(n_ref, 2, time)``, at the level the match uses.
        dry_chunks: dry chunks ``(n_dry, 1, time)`` at -18 LUFS.
        predictor: an encoder with ``predict_preset(reference, dry=None) -> (batch, 130)``
            (:class:`vocalfx.encoders.trained.FxEncoder`).
        prior_mean, weight: with a mean ``(130,)``, return ``mean + weight (prediction - mean)``:
            the prediction moved toward the prior mean (``weight`` in ``[0, 1]``; 1, the
            default, is the prediction itself).

    Returns:
        ``(vector, label)``: a float64 ``(130,)`` vector and ``"predicted (fx)"`` (with the
        weight when it is not 1).

    Raises:
        ValueError: the predictor has no preset head, or predicts NaN or Inf, or a bad weight.
    """
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"prediction weight must be in [0, 1], got {weight!r}")
    if not callable(getattr(predictor, "predict_preset", None)):
        raise ValueError(f"init='predicted': {type(predictor).__name__} has no preset head (predict_preset)")
    n_ref, c, t = reference_chunks.shape
    n_dry, _, t_dry = dry_chunks.shape
    ref = reference_chunks.permute(1, 0, 2).reshape(1, c, n_ref * t)
    dry = dry_chunks.permute(1, 0, 2).reshape(1, 1, n_dry * t_dry)
    with torch.no_grad():
        v = predictor.predict_preset(ref, dry=dry)[0].double().numpy().copy()
    if not np.isfinite(v).all():
        raise ValueError("init='predicted': the predicted preset contains NaN or Inf")
    label = f"predicted ({getattr(predictor, 'name', 'fx')})"
    if prior_mean is None or weight == 1.0:
        return v, label
    m = np.asarray(prior_mean, dtype=np.float64).reshape(-1)
    return m + weight * (v - m), f"{label}, weight {weight:g} from the prior mean"
