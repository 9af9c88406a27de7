"""The encoder interface and registry: :class:`StereoEncoder`, :func:`register_encoder`, :func:`get_encoder`.

The encoder modules (``features``, ``afx_rep``, ``fx``) import this module; ``vocalfx.encoders``
imports them, so they are registered whenever the package is imported, and no module imports
one that imports it.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Dict, List, Tuple, Type, TypeVar

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

__all__ = [
    "check_stereo",
    "StereoEncoder",
    "CombinedEncoder",
    "mid_side",
    "register_encoder",
    "get_encoder",
    "available_encoders",
]


def check_stereo(x: torch.Tensor) -> None:
    """Raise ``ValueError`` unless ``x`` is ``(batch, 2, time)`` audio."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected (batch, channels, time), got shape {shape}")
    if x.shape[1] != 2:
        raise ValueError(f"expected (batch, channels, time) with 2 channels (left, right), got shape {tuple(x.shape)}")


def mid_side(x: torch.Tensor) -> torch.Tensor:
    """Left/right to mid/side: ``mid = (L + R) / sqrt(2)``, ``side = (L - R) / sqrt(2)``.

    The transform is orthonormal (it is its own inverse) and matches DiffVox's ``hadamard``.

    Args:
        x: stereo audio, channels ordered (left, right).

    Shape:
        ``(batch, 2, time)`` -> ``(batch, 2, time)`` with channels (mid, side).
    """
    check_stereo(x)
    left, right = x[:, 0], x[:, 1]
    return torch.stack([left + right, left - right], dim=1) / math.sqrt(2.0)


class StereoEncoder(nn.Module):
    """Base class: stereo audio at ``sample_rate`` -> L2-normalised mid and side embeddings.

    ``forward`` checks the shape, resamples from ``sample_rate`` to :attr:`model_sample_rate`
    (``torchaudio.functional.resample``, its default windowed-sinc settings), then calls
    :meth:`embed_mid_side` and L2-normalises each channel's embedding. Subclasses implement either

    * :meth:`channel_features` -- features of the mid and side signals, computed the same way per
      channel (the default :meth:`embed_mid_side` converts to mid/side and calls it); or
    * :meth:`embed_mid_side` -- for models that take left/right themselves.

    Class attributes:
        model_sample_rate: the rate (Hz) the features are defined at.
        min_samples: the shortest input (samples at ``model_sample_rate``) the encoder accepts.
        simulates_codec: whether a match against a lossy reference should put each render
            through the same kind of codec before this encoder compares them (default False).

    An encoder says what it needs for a reference that went through a lossy codec through
    :meth:`for_lossy_reference` and :attr:`simulates_codec`; matching knows no encoder's files.

    Args:
        sample_rate: sample rate (Hz) of the audio the encoder will be given. Default 44100.

    Shape:
        input ``(batch, 2, time)`` (left, right); outputs ``(batch, embedding_dim)`` each.
    """

    model_sample_rate: int = 44100
    min_samples: int = 1
    embedding_dim: int
    simulates_codec: bool = False

    def __init__(self, sample_rate: int = 44100) -> None:
        super().__init__()
        if int(sample_rate) != sample_rate or sample_rate <= 0:
            raise ValueError(f"sample_rate must be a positive integer in Hz, got {sample_rate}")
        self.sample_rate = int(sample_rate)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Embed stereo audio.

        Args:
            x: stereo audio ``(batch, 2, time)`` at ``self.sample_rate``.

        Returns:
            ``{"mid": (batch, D), "side": (batch, D)}``, each row of unit L2 norm.
        """
        check_stereo(x)
        if self.sample_rate != self.model_sample_rate:
            x = AF.resample(x, self.sample_rate, self.model_sample_rate)
        if x.shape[-1] < self.min_samples:
            raise ValueError(
                f"{type(self).__name__} needs at least {self.min_samples} samples at "
                f"{self.model_sample_rate} Hz, got {x.shape[-1]}"
            )
        mid, side = self.embed_mid_side(x)
        return {"mid": F.normalize(mid, p=2.0, dim=-1), "side": F.normalize(side, p=2.0, dim=-1)}

    def embed_mid_side(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised ``(mid, side)`` embeddings of left/right audio at ``model_sample_rate``.

        Shape:
            ``(batch, 2, time)`` -> two ``(batch, D)`` tensors.
        """
        feats = self.channel_features(mid_side(x))
        return feats[:, 0], feats[:, 1]

    def channel_features(self, x_ms: torch.Tensor) -> torch.Tensor:
        """Unnormalised features of each channel of mid/side audio at ``model_sample_rate``.

        Shape:
            ``(batch, 2, time)`` -> ``(batch, 2, D)``.
        """
        raise NotImplementedError(f"{type(self).__name__} must implement channel_features or embed_mid_side")

    def for_lossy_reference(self) -> "StereoEncoder":
        """The encoder to compare with a reference that went through a lossy codec.

        The default is this encoder itself; an encoder with weights made for coded audio returns
        an encoder that loads them (:class:`vocalfx.encoders.trained.FxEncoder`).
        """
        return self

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate} Hz, model_sample_rate={self.model_sample_rate} Hz, "
            f"embedding_dim={self.embedding_dim}"
        )


_E = TypeVar("_E", bound=Type[StereoEncoder])
_ENCODERS: Dict[str, Type[StereoEncoder]] = {}


def register_encoder(name: str) -> Callable[[_E], _E]:
    """Class decorator adding a :class:`StereoEncoder` subclass to the registry under ``name``.

    Raises:
        ValueError: if ``name`` is already taken by another class.
    """

    def decorator(cls: _E) -> _E:
        if not (isinstance(cls, type) and issubclass(cls, StereoEncoder)):
            raise TypeError(f"register_encoder expects a StereoEncoder subclass, got {cls!r}")
        if name in _ENCODERS and _ENCODERS[name] is not cls:
            raise ValueError(f"encoder name {name!r} is already registered to {_ENCODERS[name].__name__}")
        _ENCODERS[name] = cls
        return cls

    return decorator


def available_encoders() -> List[str]:
    """Names accepted by :func:`get_encoder`, sorted."""
    return sorted(_ENCODERS)


def get_encoder(name: str, sample_rate: int = 44100, **kwargs: Any) -> StereoEncoder:
    """Build the encoder registered as ``name``.

    Args:
        name: one of :func:`available_encoders` (``"mfcc"``, ``"mir"``, ...).
        sample_rate: sample rate (Hz) of the audio the encoder will be given. Default 44100.
        **kwargs: passed to the encoder's constructor.

    Returns:
        The encoder module (in float32; call ``.double()`` for float64 input).

    Example:
        >>> enc = get_encoder("mir", sample_rate=48000)
    """
    if "+" in name:
        parts = name.split("+")
        for part in parts:
            if part not in _ENCODERS:
                raise ValueError(f"unknown encoder {part!r} in {name!r}; available: {', '.join(available_encoders())}")
        if len(set(parts)) != len(parts):
            raise ValueError(f"encoder {name!r} names a part twice")
        # options (e.g. an AFx-Rep checkpoint) go to the parts whose constructor takes them
        built = []
        for part in parts:
            cls = _ENCODERS[part]
            accepted = inspect.signature(cls.__init__).parameters
            own = {k: v for k, v in kwargs.items() if k in accepted}
            built.append((part, cls(sample_rate=sample_rate, **own)))
        return CombinedEncoder(built, sample_rate=sample_rate)
    try:
        cls = _ENCODERS[name]
    except KeyError:
        raise ValueError(f"unknown encoder {name!r}; available: {', '.join(available_encoders())}") from None
    return cls(sample_rate=sample_rate, **kwargs)


class CombinedEncoder(StereoEncoder):
    """Several encoders side by side (``get_encoder("fx+mfcc")``): one likelihood each in ITO.

    The first part's embeddings are ``"mid"`` and ``"side"``; each further part adds
    ``"<name>:mid"`` and ``"<name>:side"``. :func:`vocalfx.matching.ito_nll` sums one angular
    negative log-likelihood per key, so every part contributes with its own spread (its own
    ``sigma``) and none dominates by the scale of its angles. ``predict_preset`` is the first
    part's, where it has one (``fx+mfcc`` starts from the fx head's preset).

    Args:
        parts: ``(name, encoder)`` pairs, all built for ``sample_rate``.
    """

    def __init__(self, parts: List[Tuple[str, StereoEncoder]], sample_rate: int = 44100) -> None:
        super().__init__(sample_rate)
        if len(parts) < 2:
            raise ValueError("a combined encoder needs at least two parts")
        self.names = [n for n, _ in parts]
        self.parts = nn.ModuleList(e for _, e in parts)
        self.embedding_dim = sum(e.embedding_dim for e in self.parts)
        self.min_samples = max(getattr(e, "min_samples", 1) for e in self.parts)
        self.simulates_codec = any(e.simulates_codec for e in self.parts)
        first = self.parts[0]
        if callable(getattr(first, "predict_preset", None)):
            self.predict_preset = first.predict_preset  # the first part's preset head

    def for_lossy_reference(self) -> "CombinedEncoder":
        """Each part's own lossy-reference encoder; this encoder if none of them changes."""
        parts = [(name, enc.for_lossy_reference()) for name, enc in zip(self.names, self.parts)]
        if all(new is old for (_, new), old in zip(parts, self.parts)):
            return self
        return CombinedEncoder(parts, sample_rate=self.sample_rate)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        check_stereo(x)
        out: Dict[str, torch.Tensor] = {}
        for i, (name, enc) in enumerate(zip(self.names, self.parts)):
            e = enc(x)
            out.update(e if i == 0 else {f"{name}:{k}": v for k, v in e.items()})
        return out

    def extra_repr(self) -> str:
        return f"parts={'+'.join(self.names)}, sample_rate={self.sample_rate} Hz"
