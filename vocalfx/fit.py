"""Moved to :mod:`vocalfx.matching` (kept only while the CLI moves over; removed in this restructure)."""

from .matching.chunks import TARGET_LUFS, chunk_pair  # noqa: F401
from .matching.fit import DEFAULT_LR, DEFAULT_STEPS, FitError, FitReport, FitResult, align_pair, find_lag, fit_pair  # noqa: F401
from .matching.objectives import LOSS_WEIGHTS, pair_loss  # noqa: F401
