"""vocalfx: differentiable vocal-effects style transfer."""

from .fx import VocalChain
from .preset import Preset

__all__ = ["VocalChain", "Preset"]
__version__ = "0.1.0"
