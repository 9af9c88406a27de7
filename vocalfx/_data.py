"""Locate the data files vocalfx ships (preset collections, priors, example audio).

In the source tree they live at the top level (``presets/``, ``priors/``, ``examples/``); a
wheel carries them inside the package as ``vocalfx/_shipped/<kind>/`` (see pyproject.toml), so
an installed vocalfx never needs the source tree.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["data_path"]

_KINDS = ("presets", "priors", "examples")


def data_path(kind: str, name: str) -> Path:
    """Path of a shipped file, e.g. ``data_path("presets", "diffvox-internal.json")``."""
    if kind not in _KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {_KINDS}")
    try:
        p = Path(str(resources.files(f"vocalfx._shipped.{kind}").joinpath(name)))
        if p.is_file():
            return p
    except (ModuleNotFoundError, TypeError):
        pass
    p = Path(__file__).resolve().parents[1] / kind / name
    if p.is_file():
        return p
    raise FileNotFoundError(f"vocalfx data file {kind}/{name} is missing from this installation")
