"""The errors of matching and fitting."""

from __future__ import annotations

from ..errors import VocalfxError

__all__ = ["MatchError", "FitError"]


class MatchError(VocalfxError, ValueError):
    """Matching could not run on these inputs or could not produce finite parameters."""


class FitError(MatchError):
    """Fitting a pair could not run on these inputs or could not produce finite parameters."""
