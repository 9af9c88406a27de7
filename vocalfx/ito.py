"""Moved to :mod:`vocalfx.matching` (kept only while the CLI moves over; removed in this restructure)."""

from .matching.chunks import CHUNK_SECONDS, TARGET_LUFS, active_chunks  # noqa: F401
from .matching.ito import DEFAULT_LR, DEFAULT_STEPS, MatchError, MatchReport, MatchResult, match  # noqa: F401
from .matching.objectives import ito_nll  # noqa: F401
