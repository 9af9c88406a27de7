"""Matching: inference-time optimisation (``match``) and pair fitting (``fit_pair``).

(Transitional facade while the code moves here from ``vocalfx.ito`` and ``vocalfx.fit``.)
"""

from ..fit import FitError, FitReport, FitResult, fit_pair
from ..fit import DEFAULT_LR as FIT_DEFAULT_LR, DEFAULT_STEPS as FIT_DEFAULT_STEPS
from ..ito import (
    CHUNK_SECONDS,
    DEFAULT_LR,
    DEFAULT_STEPS,
    TARGET_LUFS,
    MatchError,
    MatchReport,
    MatchResult,
    match,
)

__all__ = [
    "match", "MatchResult", "MatchReport", "MatchError",
    "fit_pair", "FitResult", "FitReport", "FitError",
    "DEFAULT_STEPS", "DEFAULT_LR", "FIT_DEFAULT_STEPS", "FIT_DEFAULT_LR", "CHUNK_SECONDS", "TARGET_LUFS",
]
