"""Effect modules with declarative parameter specs, and the vocal chain."""

from .chain import VocalChain
from .modules import (
    CompressorExpander,
    Effect,
    FDNReverb,
    HighPass,
    HighShelf,
    LowPass,
    LowShelf,
    Pan,
    PeakEQ,
    PingPongDelay,
    ReverbEQ,
    Send,
)

__all__ = [
    "VocalChain",
    "CompressorExpander",
    "Effect",
    "FDNReverb",
    "HighPass",
    "HighShelf",
    "LowPass",
    "LowShelf",
    "Pan",
    "PeakEQ",
    "PingPongDelay",
    "ReverbEQ",
    "Send",
]
