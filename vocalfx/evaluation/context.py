"""Resources shared by the methods of one process: the prior, the collection, the encoders, a cache."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .. import defaults
from ..preset import Preset
from .corpus import EvalError, load_presets

__all__ = ["EvalContext", "MethodOptions", "DEFAULT_ENCODERS", "DEFAULT_ALPHAS"]

#: Encoders and prior weights that ``all``, ``nn-emb`` and ``ito`` expand to by default.
DEFAULT_ENCODERS: Tuple[str, ...] = defaults.EVAL_ENCODERS
DEFAULT_ALPHAS: Tuple[float, ...] = defaults.EVAL_ALPHAS


@dataclass
class MethodOptions:
    """Settings shared by all methods of a run (picklable: sent to worker processes).

    Attributes:
        encoders: encoders that ``nn-emb``/``ito``/``all`` expand over.
        alphas: prior weights that ``ito``/``all`` expand over.
        collection: the preset collection of the nearest-neighbour methods: a collection JSON or a
            DiffVox folder (its ``train_index.npy`` rows when present); ``None``: the shipped
            ``vocalfx-starter.json``.
        prior: a prior ``.npz`` file; ``None``: the shipped default prior.
        ito_steps, ito_lr, ito_space: optimiser settings for ``ito`` (``None``: :func:`vocalfx.match`'s
            defaults).
        ito_level: the output level of the ITO families: ``None`` or ``"preset"`` (the preset's
            own level, DiffVox's protocol) or ``"reference"`` (the make-up gain set so that the
            output's loudness follows the reference's, as ``vocalfx match`` writes it; rows end
            in ``+level``).
        encoder_options: per-encoder constructor keywords, e.g.
            ``{"afx-rep": {"checkpoint": "afx-rep.ckpt"}}``.
    """

    encoders: Tuple[str, ...] = DEFAULT_ENCODERS
    alphas: Tuple[float, ...] = DEFAULT_ALPHAS
    collection: Optional[str] = None
    prior: Optional[str] = None
    ito_steps: Optional[int] = None
    ito_lr: Optional[float] = None
    ito_space: Optional[str] = None
    ito_level: Optional[str] = None
    encoder_options: Dict[str, Dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:16]


class EvalContext:
    """Shared, lazily loaded resources of one process, plus a per-track cache.

    Attributes:
        options: the run's :class:`MethodOptions`.
        cache: cleared for every track; methods may share work through it (e.g. renders of the
            collection on the track's input).
        pending: the methods this process runs on the current track.
    """

    def __init__(self, options: MethodOptions) -> None:
        self.options = options
        self.cache: Dict[Any, Any] = {}
        self.pending: List[Any] = []  # the Method objects (registry.py, which imports this module)
        self._prior = None
        self._collection: Optional[Tuple[List[Preset], str, str]] = None
        self._vectors: Optional[torch.Tensor] = None
        self._encoders: Dict[str, torch.nn.Module] = {}

    def start_track(self, pending: Sequence[Any]) -> None:
        self.cache = {}
        self.pending = list(pending)

    def prior(self) -> Any:
        """The run's :class:`~vocalfx.prior.GaussianPrior`."""
        if self._prior is None:
            from ..prior import GaussianPrior

            if self.options.prior in (None, "", "default"):
                self._prior = GaussianPrior.default()
            else:
                p = Path(self.options.prior)
                if not p.is_file():
                    raise EvalError(f"--prior {p}: no such file")
                self._prior = GaussianPrior.load(p)
        return self._prior

    def prior_id(self) -> str:
        """``source`` of the prior plus a digest of its mean and covariance."""
        pr = self.prior()
        label = Path(self.options.prior).name if self.options.prior not in (None, "", "default") else "default"
        return f"{label} sha:{_digest(pr.mean.double().numpy(), pr.cov.double().numpy())}"

    def collection(self) -> Tuple[List[Preset], str, str]:
        """``(presets, description, id)`` of the nearest-neighbour collection.

        The id (file name, size and a digest of the vectors) is what result cells record, so the
        same collection reached by another path still resumes.
        """
        if self._collection is None:
            spec = self.options.collection
            if spec in (None, "", "starter"):
                from .._data import data_path

                path = data_path("presets", "vocalfx-starter.json")
                presets = load_presets(path)
                desc = "shipped vocalfx-starter.json"
            else:
                path = Path(spec)
                presets = load_presets(path, use_train_index=True)
                rows = " (train_index.npy rows)" if path.is_dir() and (path / "train_index.npy").is_file() else ""
                desc = f"{path}{rows}"
            if not presets:
                raise EvalError(f"collection {path}: empty")
            vectors = np.stack([p.raw for p in presets])
            ident = f"{Path(path).name}: {len(presets)} presets sha:{_digest(vectors)}"
            self._collection = (presets, desc, ident)
        return self._collection

    def collection_vectors(self) -> torch.Tensor:
        """The collection as an ``(N, 130)`` float64 tensor."""
        if self._vectors is None:
            self._vectors = torch.from_numpy(np.stack([p.raw for p in self.collection()[0]]))
        return self._vectors

    def encoder_options(self, name: str) -> Dict[str, Any]:
        return dict(self.options.encoder_options.get(name, {}))

    def encoder(self, name: str) -> torch.nn.Module:
        """The encoder ``name`` at 44.1 kHz (built once per process)."""
        if name not in self._encoders:
            from ..encoders import get_encoder
            from ..errors import VocalfxError

            try:
                enc = get_encoder(name, sample_rate=44100, **self.encoder_options(name))
            except VocalfxError:
                raise
            except (ValueError, TypeError) as e:
                raise EvalError(f"encoder {name!r}: {e}") from None
            self._encoders[name] = enc.eval().requires_grad_(False)
        return self._encoders[name]
