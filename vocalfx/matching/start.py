"""Where matching and fitting start: the prior's mean, a preset, or a raw vector."""

from __future__ import annotations

from typing import Any, Tuple

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


def predicted_start(reference_chunks: torch.Tensor, dry_chunks: torch.Tensor, predictor: Any) -> Tuple[np.ndarray, str]:
    """The preset a trained encoder predicts from the reference and the dry, as a starting point.

    The chunks are laid end to end in time (the ``fx`` head pools over time), so every chunk of
    each side informs one prediction.

    Args:
        reference_chunks: reference chunks ``(n_ref, 2, time)``, at the level the match uses.
        dry_chunks: dry chunks ``(n_dry, 1, time)`` at -18 LUFS.
        predictor: an encoder with ``predict_preset(reference, dry=None) -> (batch, 130)``
            (:class:`vocalfx.embed.fx.FxEncoder`).

    Returns:
        ``(vector, label)``: a float64 ``(130,)`` vector and ``"predicted (fx)"``.

    Raises:
        ValueError: the predictor has no preset head, or predicts NaN or Inf.
    """
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
    return v, f"predicted ({getattr(predictor, 'name', 'fx')})"
