"""Render presets onto audio (the API behind ``vocalfx render``)."""

from __future__ import annotations

from pathlib import Path
from typing import Union

import torch

from .fx import VocalChain
from .params import SAMPLE_RATE
from .preset import Preset, PresetError, load_collection

__all__ = ["render", "resolve_preset"]

_CHAINS: dict = {}


def _chain(sample_rate: float) -> VocalChain:
    if sample_rate not in _CHAINS:
        _CHAINS[sample_rate] = VocalChain(sample_rate)
    return _CHAINS[sample_rate]


def render(dry: torch.Tensor, preset: Preset, sample_rate: int = SAMPLE_RATE, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Render one preset onto a mono dry vocal.

    Args:
        dry: ``(1, time)`` or ``(batch, 1, time)`` mono audio at ``sample_rate``.
        preset: the preset to apply.
        sample_rate: in Hz; presets are defined at 44.1 kHz.
        dtype: computation dtype (float32 is within -40 dB of the float64 reference render).

    Returns:
        ``(2, time)`` (or ``(batch, 2, time)``) stereo audio; nothing is clipped or normalised.
    """
    x = dry
    squeeze = x.dim() == 2
    if squeeze:
        x = x.unsqueeze(0)
    with torch.no_grad():
        y = _chain(float(sample_rate))(x.to(dtype), params=preset.vector.to(dtype))
    if not torch.isfinite(y).all():
        raise ValueError(f"preset {preset.name or '(unnamed)'} rendered non-finite audio; refusing to return it")
    return y[0] if squeeze else y


def resolve_preset(spec: Union[str, Path], index: int | None = None) -> Preset:
    """A preset from a file (preset or collection + ``index``) or the name of a shipped preset."""
    p = Path(spec)
    if p.is_file():
        presets = load_collection(p)
        if len(presets) > 1 or index is not None:
            i = 0 if index is None else index
            if index is None:
                raise PresetError(f"{spec}: a collection of {len(presets)} presets; choose one with --index N")
            if not 0 <= i < len(presets):
                raise PresetError(f"{spec}: --index {i} out of range (0..{len(presets) - 1})")
            return presets[i]
        return presets[0]
    from ._data import data_path

    try:
        shipped = load_collection(data_path("presets", "vocalfx-starter.json"))
    except FileNotFoundError:
        shipped = []
    for pr in shipped:
        if pr.name == str(spec):
            return pr
    names = ", ".join(pr.name for pr in shipped)
    raise PresetError(f"{spec}: no such preset file, and not a shipped preset name (shipped: {names})")
