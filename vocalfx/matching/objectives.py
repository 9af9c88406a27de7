"""What matching and fitting minimise.

* :func:`ito_nll` -- inference-time optimisation's data term (``SPEC.md``, DiffVox's ``ito.py``):
  the angular Gaussian negative log-likelihood of the reference's encoder embeddings given the
  prediction's. :func:`vocalfx.matching.match` adds ``-alpha log p(theta)`` under the prior.
* :func:`pair_loss` -- pair fitting's audio loss (DiffVox's ``fx_config.yaml``):
  ``1.0 MSS(L/R) + 0.5 MSS(M/S) + 0.5 MLDR(L/R) + 0.25 MLDR(M/S)``.
"""

from __future__ import annotations

import math
from typing import Dict, Tuple

import torch

from ..params import SAMPLE_RATE

__all__ = ["ito_nll", "pair_loss", "LOSS_WEIGHTS", "COS_MAX"]

#: Highest cosine fed to ``arccos`` in :func:`ito_nll` (its derivative is infinite at 1).
COS_MAX = 1.0 - 1e-6
#: Pair fitting's loss (DiffVox's ``presets/fx_config.yaml``): term name -> weight.
LOSS_WEIGHTS: Dict[str, float] = {"mss_lr": 1.0, "mss_ms": 0.5, "mldr_lr": 0.5, "mldr_ms": 0.25}


def ito_nll(
    pred: Dict[str, torch.Tensor], ref: Dict[str, torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DiffVox's angular negative log-likelihood of reference embeddings given predicted ones.

    For each of mid and side, ``theta_ij = arccos(p_i . r_j)`` over every predicted chunk ``i``
    and reference chunk ``j``, ``sigma = sqrt(mean theta^2)``, and the mean Gaussian
    log-density of the angles is ``-1/2 - log(2 pi)/2 - log sigma``. The cosine is clamped to
    :data:`COS_MAX` so that identical embeddings give a finite gradient.

    Embeddings of a combined encoder (:class:`vocalfx.encoders.CombinedEncoder`) carry more keys
    (``"mfcc:mid"``, ...): each key is one more independent angular likelihood, so their
    negative log-likelihoods add up (a product of likelihoods, each with its own sigma).

    Args:
        pred, ref: ``{"mid": (N, D), "side": (M, D), ...}`` L2-normalised embeddings with the
            same keys.

    Returns:
        ``(nll, sigma_mid, sigma_side)``: ``-(sum over keys of the mean log-density)`` (scalar)
        and the RMS angles (radians) of ``"mid"`` and ``"side"``.

    Example:
        >>> e = {"mid": torch.eye(3)[:2], "side": torch.eye(3)[1:]}
        >>> nll, s_mid, s_side = ito_nll(e, e)
    """
    if set(pred) != set(ref) or not {"mid", "side"} <= set(pred):
        raise ValueError(
            f"embeddings must have the same keys, including 'mid' and 'side'; got {sorted(pred)} and {sorted(ref)}"
        )
    sigmas = {}
    nll = 0.0
    for key in ("mid", "side", *sorted(k for k in pred if k not in ("mid", "side"))):
        cos = (pred[key] @ ref[key].T).clamp(-COS_MAX, COS_MAX)
        theta = torch.arccos(cos)
        sigma = theta.square().mean().sqrt()
        nll = nll + 0.5 + 0.5 * math.log(2.0 * math.pi) + torch.log(sigma)
        sigmas[key] = sigma
    return nll, sigmas["mid"], sigmas["side"]


def pair_loss(
    pred: torch.Tensor, target: torch.Tensor, sample_rate: float = SAMPLE_RATE
) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """DiffVox's fitting loss: ``1.0 MSS(L/R) + 0.5 MSS(M/S) + 0.5 MLDR(L/R) + 0.25 MLDR(M/S)``.

    MSS and MLDR are :func:`vocalfx.metrics.mss` and :func:`vocalfx.metrics.mldr` with their
    defaults (DiffVox's settings: A-weighted FFT 128/512/2048; 50/100 ms against 1/2 s).

    Args:
        pred, target: stereo audio ``(batch, 2, time)``.
        sample_rate: Hz.

    Returns:
        ``(total, terms)``: the weighted sum (scalar tensor, differentiable) and the unweighted
        terms by name (:data:`LOSS_WEIGHTS`).
    """
    from ..metrics import mldr, mss

    terms = {
        "mss_lr": mss(pred, target, sample_rate),
        "mss_ms": mss(pred, target, sample_rate, mid_side=True),
        "mldr_lr": mldr(pred, target, sample_rate),
        "mldr_ms": mldr(pred, target, sample_rate, mid_side=True),
    }
    total = sum(LOSS_WEIGHTS[k] * v for k, v in terms.items())
    return total, terms
