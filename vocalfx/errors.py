"""The exceptions every vocalfx job failure derives from.

The command line prints any :class:`VocalfxError` as one line (``vocalfx: error: ...``) and exits
with code 1; library users can catch this one class. Messages name the file or parameter at fault
and the problem. Each package defines the errors of its own domain as subclasses (``AudioError``
in :mod:`vocalfx.io`, ``PresetError`` in :mod:`vocalfx.preset`, ...); matching's live here
because the protocol's chunking (:mod:`vocalfx.chunks`), below matching, raises them too.
"""

from __future__ import annotations

__all__ = ["VocalfxError", "MatchError", "FitError"]


class VocalfxError(Exception):
    """A failure caused by the user's input or a job that could not finish; the message says why."""


class MatchError(VocalfxError, ValueError):
    """Matching could not run on these inputs or could not produce finite parameters."""


class FitError(MatchError):
    """Fitting a pair could not run on these inputs or could not produce finite parameters."""
