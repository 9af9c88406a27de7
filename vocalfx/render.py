"""Render presets onto audio (the API behind ``vocalfx render``)."""

from __future__ import annotations

from typing import Dict

import torch

from .fx import VocalChain
from .params import SAMPLE_RATE
from .preset import Preset, PresetError

__all__ = ["render", "cached_chain"]

_CHAINS: Dict[float, VocalChain] = {}


def cached_chain(sample_rate: float) -> VocalChain:
    """One :class:`VocalChain` per sample rate, built on first use and shared by every caller.

    Rendering many presets with the same chain object saves rebuilding its modules each time; the
    chain holds no per-call state (the preset is passed as ``params=``), so sharing it is safe
    within one thread.

    Args:
        sample_rate: Hz (converted to ``float``, so ``44100`` and ``44100.0`` share one chain).

    Returns:
        The cached chain at ``sample_rate``.
    """
    sample_rate = float(sample_rate)
    if sample_rate not in _CHAINS:
        _CHAINS[sample_rate] = VocalChain(sample_rate)
    return _CHAINS[sample_rate]


def render(
    dry: torch.Tensor, preset: Preset, sample_rate: int = SAMPLE_RATE, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Render one preset onto a mono dry vocal.

    Args:
        dry: ``(1, time)`` or ``(batch, 1, time)`` mono audio at ``sample_rate``.
        preset: the preset to apply.
        sample_rate: in Hz; presets are defined at 44.1 kHz.
        dtype: computation dtype (float32 is within -40 dB of the float64 reference render).

    Returns:
        ``(2, time)`` (or ``(batch, 2, time)``) stereo audio; nothing is clipped or normalised.

    Raises:
        PresetError: the render holds NaN or Inf samples (nothing is returned then).
    """
    x = dry
    squeeze = x.dim() == 2
    if squeeze:
        x = x.unsqueeze(0)
    with torch.no_grad():
        y = cached_chain(sample_rate)(x.to(dtype), params=preset.vector.to(dtype))
    if not torch.isfinite(y).all():
        raise PresetError(f"preset {preset.name or '(unnamed)'} rendered non-finite audio; refusing to return it")
    return y[0] if squeeze else y
