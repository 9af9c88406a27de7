"""Matching: find the chain's parameters for a dry vocal, from a reference or from a wet pair.

- :func:`match` (:mod:`.ito`): MAP inference-time optimisation against a reference vocal under an
  audio encoder and the Gaussian prior (DiffVox's ``ito.py``).
- :func:`fit_pair` (:mod:`.fit`): fit a dry/wet pair of the same performance on an audio loss
  (DiffVox's ``main.py``, how its preset collections were made).

Both stand on the same pieces: :mod:`.chunks` (the protocol's constants, chunking and activity
rule, also used by :mod:`vocalfx.evaluation`), :mod:`.objectives` (``ito_nll``, ``pair_loss``),
:mod:`.start` (where optimisation starts) and :mod:`.optimize` (the one Adam loop: schedule,
whitened space, best-step tracking, non-finite guard).

The package is ``matching`` rather than ``match`` so that the function :func:`vocalfx.match`
and a sub-package of the same name cannot shadow each other.
"""

from .chunks import CHUNK_SECONDS, TARGET_LUFS, active_chunks
from .fit import DEFAULT_LR as FIT_DEFAULT_LR
from .fit import DEFAULT_STEPS as FIT_DEFAULT_STEPS
from .fit import FitError, FitReport, FitResult, align_pair, find_lag, fit_pair
from .ito import (
    DEFAULT_ALPHA,
    DEFAULT_LR,
    DEFAULT_STEPS,
    SPACES,
    MatchError,
    MatchReport,
    MatchResult,
    check_steering,
    match,
)
from .objectives import LOSS_WEIGHTS, ito_nll, pair_loss
from .optimize import Evaluation, OptimResult, run_adam

__all__ = [
    "match",
    "check_steering",
    "MatchResult",
    "MatchReport",
    "MatchError",
    "DEFAULT_STEPS",
    "DEFAULT_LR",
    "DEFAULT_ALPHA",
    "SPACES",
    "fit_pair",
    "FitResult",
    "FitReport",
    "FitError",
    "find_lag",
    "align_pair",
    "FIT_DEFAULT_STEPS",
    "FIT_DEFAULT_LR",
    "ito_nll",
    "pair_loss",
    "LOSS_WEIGHTS",
    "active_chunks",
    "CHUNK_SECONDS",
    "TARGET_LUFS",
    "run_adam",
    "Evaluation",
    "OptimResult",
]
