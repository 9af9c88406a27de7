"""vocalfx: differentiable vocal-effects style transfer.

The names below are imported on first use (PEP 562), so ``import vocalfx.cli`` or
``import vocalfx.errors`` does not load torch; ``from vocalfx import match`` works as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

from ._version import __version__  # noqa: F401  (vocalfx.__version__)

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names load lazily
    from .fx import VocalChain
    from .matching import MatchResult, match
    from .preset import Preset

__all__ = ["VocalChain", "Preset", "match", "MatchResult"]

# public name -> the module that defines it
_LAZY = {
    "VocalChain": "vocalfx.fx",
    "Preset": "vocalfx.preset",
    "match": "vocalfx.matching",
    "MatchResult": "vocalfx.matching",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vocalfx' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(_LAZY))
