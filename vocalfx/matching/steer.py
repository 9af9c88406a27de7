"""Steering a match: which parameter groups move, how much of the match to keep, and the output level.

- **Groups** (:data:`GROUPS`, ``match(groups=...)``, ``vocalfx match --only``): the optimiser
  moves only the raw values of the named groups; every other value stays exactly at the starting
  preset (the objective sees the start's values there, and the returned vector copies them).
- **Strength** (:func:`blend`, ``--strength``): ``start + s (match - start)``. The prior's whitening
  ``z = L^-1 (raw - mean)`` is affine, so this is also the straight line between the two presets
  in whitened coordinates: the blend is the same in either space.
- **Level** (:func:`level_target_lufs`, :func:`with_output_gain`, ``--level``): the chain has no
  output-gain parameter, but the compressor's make-up gain (``comp.makeup_db``, unbounded, in dB)
  is applied after its gain computer and everything after it (delay, reverb, pan) is linear, so
  adding ``g`` dB to it scales the whole output by exactly ``g`` dB. The level is set there, so the
  saved preset renders the output as written.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .. import params as P

__all__ = [
    "GROUPS",
    "LEVEL_PARAM",
    "LEVEL_MODES",
    "group_mask",
    "parse_groups",
    "blend",
    "level_target_lufs",
    "with_output_gain",
]

#: Parameter groups of ``--only``, by the prefixes of :mod:`vocalfx.params` names.
GROUPS: Dict[str, Tuple[str, ...]] = {
    "eq": ("peak1", "peak2", "low_shelf", "high_shelf", "lowpass", "highpass"),
    "dynamics": ("comp",),
    "delay": ("delay", "send"),
    "reverb": ("reverb", "reverb_eq_peak1", "reverb_eq_peak2", "reverb_eq_low_shelf", "reverb_eq_high_shelf"),
    "pan": ("pan",),
}

#: The raw value that carries the output level (dB, identity mapping).
LEVEL_PARAM = "comp.makeup_db"
#: ``level`` modes besides a number in LUFS.
LEVEL_MODES = ("reference", "preset")


def parse_groups(groups: Union[None, str, Iterable[str]]) -> Optional[Tuple[str, ...]]:
    """``"eq,reverb"`` or ``["eq", "reverb"]`` -> ``("eq", "reverb")``; ``None`` -> ``None`` (all).

    Raises:
        ValueError: an unknown or empty group list.
    """
    if groups is None:
        return None
    items = [g.strip() for g in (groups.split(",") if isinstance(groups, str) else groups)]
    items = [g for g in items if g]
    bad = [g for g in items if g not in GROUPS]
    if bad or not items:
        raise ValueError(f"groups: {', '.join(bad) or '(none)'} not among {', '.join(GROUPS)}")
    return tuple(dict.fromkeys(items))


def group_mask(groups: Optional[Sequence[str]]) -> np.ndarray:
    """Boolean ``(130,)``: True for the raw values of ``groups`` (all True for ``None``)."""
    if groups is None:
        return np.ones(P.NUM_PARAMS, dtype=bool)
    prefixes = {p for g in parse_groups(groups) or () for p in GROUPS[g]}
    return np.array([n.split(".", 1)[0] in prefixes for n in P.names()], dtype=bool)


def blend(start: np.ndarray, matched: np.ndarray, strength: float) -> np.ndarray:
    """``start + strength * (matched - start)`` (float64); strength 0 is ``start``, 1 is ``matched``.

    Raises:
        ValueError: ``strength`` outside ``[0, 1]``.
    """
    if not (isinstance(strength, (int, float)) and 0.0 <= float(strength) <= 1.0):
        raise ValueError(f"strength must lie in [0, 1], got {strength!r}")
    start, matched = np.asarray(start, dtype=np.float64), np.asarray(matched, dtype=np.float64)
    if strength == 1.0:
        return matched.copy()
    if strength == 0.0:
        return start.copy()
    return start + float(strength) * (matched - start)


def level_target_lufs(level: Union[str, float], reference_lufs: float) -> Optional[float]:
    """The output loudness ``level`` asks for: the reference's, ``None`` (the preset's), or a number.

    Raises:
        ValueError: an unknown mode, or a non-finite or implausible LUFS value.
    """
    if isinstance(level, str):
        if level == "reference":
            return float(reference_lufs)
        if level == "preset":
            return None
        try:
            level = float(level)
        except ValueError:
            raise ValueError(f"level must be 'reference', 'preset' or a loudness in LUFS, got {level!r}") from None
    if not (math.isfinite(level) and -70.0 < level <= 0.0):
        raise ValueError(f"level: a loudness in LUFS between -70 and 0 is expected, got {level!r}")
    return float(level)


def with_output_gain(vector: np.ndarray, gain_db: float) -> np.ndarray:
    """A copy of ``vector`` whose render is ``gain_db`` louder (``comp.makeup_db += gain_db``)."""
    v = np.asarray(vector, dtype=np.float64).copy()
    if not math.isfinite(gain_db):
        raise ValueError(f"output gain must be finite, got {gain_db!r}")
    v[P.INDEX[LEVEL_PARAM]] += gain_db
    return v


def masked(v: torch.Tensor, start: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``v`` where ``mask``, ``start`` elsewhere (the objective's view under ``groups``)."""
    return torch.where(mask, v, start)
