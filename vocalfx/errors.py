"""The exception every vocalfx job failure derives from.

The command line prints any :class:`VocalfxError` as one line (``vocalfx: error: ...``) and exits
with code 1; library users can catch this one class. Messages name the file or parameter at fault
and the problem.
"""

from __future__ import annotations

__all__ = ["VocalfxError"]


class VocalfxError(Exception):
    """A failure caused by the user's input or a job that could not finish; the message says why."""
