"""vocalfx: differentiable vocal-effects style transfer."""

from .fx import VocalChain

__all__ = ["VocalChain"]
__version__ = "0.1.0"
