"""vocalfx: differentiable vocal-effects style transfer."""

from ._alloc import _apply_default

_apply_default()  # reuse freed buffers instead of page-faulting fresh ones (vocalfx/_alloc.py)

from .fx import VocalChain
from .ito import MatchResult, match
from .preset import Preset

del _apply_default

__all__ = ["VocalChain", "Preset", "match", "MatchResult"]
__version__ = "0.1.0"
