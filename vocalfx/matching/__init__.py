"""Matching: find the chain's parameters for a dry vocal, from a reference or from a wet pair.

- :func:`match` (:mod:`.match_audio`): match a dry vocal to a reference vocal, given as files or
  tensors: read, bring to -18 LUFS, cut into chunks, optimise, blend, set the level.
- :func:`match_chunks` (:mod:`.core`): the optimisation itself on chunks as they are (MAP
  inference-time optimisation, DiffVox's ``ito.py``), which :mod:`vocalfx.evaluation` calls
  with the protocol's chunks.
- :class:`MatchConfig` (:mod:`.config`): a match's settings, checked once.
- :func:`fit_pair` (:mod:`.fit`): fit a dry/wet pair of the same performance on an audio loss
  (DiffVox's ``main.py``, how its preset collections were made).

Both stand on :mod:`.objectives` (``ito_nll``, ``pair_loss``), :mod:`.start` (where
optimisation starts), :mod:`.steer` (groups, strength, level) and :mod:`.optimize` (the one
Adam loop: schedule, whitened space, best-step tracking, non-finite guard); the protocol's
chunking is :mod:`vocalfx.chunks`.

The package is ``matching`` rather than ``match`` so that the function :func:`vocalfx.match`
and a sub-package of the same name cannot shadow each other.
"""

from .. import defaults
from ..chunks import CHUNK_SECONDS, TARGET_LUFS, active_chunks
from ..errors import FitError, MatchError
from .config import SPACES, MatchConfig, check_steering
from .core import ChunkMatch, match_chunks
from .fit import DEFAULT_LR as FIT_DEFAULT_LR
from .fit import DEFAULT_STEPS as FIT_DEFAULT_STEPS
from .fit import FitResult, FitStats, align_pair, find_lag, fit_pair
from .match_audio import MatchResult, MatchStats, match, render_at_level
from .objectives import LOSS_WEIGHTS, ito_nll, pair_loss
from .optimize import Evaluation, OptimResult, run_adam

#: ``match``'s default Adam steps, learning rate and prior weight (:mod:`vocalfx.defaults`).
DEFAULT_STEPS = defaults.MATCH_STEPS
DEFAULT_LR = defaults.MATCH_LR
DEFAULT_ALPHA = defaults.MATCH_ALPHA

__all__ = [
    "match",
    "match_chunks",
    "MatchConfig",
    "ChunkMatch",
    "check_steering",
    "render_at_level",
    "MatchResult",
    "MatchStats",
    "MatchError",
    "DEFAULT_STEPS",
    "DEFAULT_LR",
    "DEFAULT_ALPHA",
    "SPACES",
    "fit_pair",
    "FitResult",
    "FitStats",
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
