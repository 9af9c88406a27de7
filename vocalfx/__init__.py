"""vocalfx: differentiable vocal-effects style transfer."""

from .fx import VocalChain
from .ito import MatchResult, match
from .preset import Preset

__all__ = ["VocalChain", "Preset", "match", "MatchResult"]
__version__ = "0.1.0"
