"""Style-transfer methods under evaluation: one interface, a registry, and the simple baselines.

A method predicts a preset for a prepared track (:class:`~vocalfx.evaluation.corpus.TrackData`:
the reference chunks, the input chunks and, for oracle-informed baselines only, the true preset).
It is a subclass of :class:`Method` registered under a *family* name with
:func:`register_method`; a family may expand into several methods (one per encoder, per alpha).

Method specs, as given to ``vocalfx eval --methods`` and :func:`parse_methods`:

=====================  =========================================================================
``oracle``             the true preset (the wet track's own parameters)
``mean``               the prior's mean
``nn-param``           the collection preset nearest to the true preset in raw parameter space
                       (mean squared difference, as PMSE; oracle-informed, as DiffVox reports it)
``nn-emb[:ENC]``       the collection preset whose render of the input best matches the reference
                       in ENC's embedding space (:mod:`vocalfx.evaluation.nn_embed`)
``ito[:ENC[:ALPHA]]``  inference-time optimisation, :func:`vocalfx.match` (:mod:`.ito`)
``all``                all of the above for every ``--encoders`` and ``--alphas`` value
=====================  =========================================================================

A family name without arguments expands over :attr:`MethodOptions.encoders` and
:attr:`MethodOptions.alphas`. Each method has a unique :attr:`Method.name` (``nn-emb-mfcc``,
``ito-mir-a0.1``) used as its row in the tables and its file name in the output folder, and a
:attr:`Method.spec` that rebuilds it in a worker process.

Adding a method is one file: subclass :class:`Method`, decorate it with
``@register_method("family")`` and either import the module at the bottom of this file or pass
it to ``vocalfx eval --plugin FILE``.

Example:
    >>> @register_method("zero")
    ... class Zero(Method):
    ...     def predict(self, track, context):
    ...         return Prediction(np.zeros(130))
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Tuple, Type, TypeVar

import numpy as np
import torch

from ..preset import Preset
from .corpus import EvalError, TrackData, load_presets

__all__ = [
    "Method",
    "Prediction",
    "MethodOptions",
    "EvalContext",
    "register_method",
    "available_methods",
    "parse_methods",
    "load_plugin",
    "Oracle",
    "PriorMean",
    "NearestParameters",
    "DEFAULT_ENCODERS",
    "DEFAULT_ALPHAS",
]

#: Encoders and prior weights that ``all``, ``nn-emb`` and ``ito`` expand to by default.
DEFAULT_ENCODERS: Tuple[str, ...] = ("mfcc", "mir")
DEFAULT_ALPHAS: Tuple[float, ...] = (0.0, 0.01, 0.1, 1.0)


@dataclass
class Prediction:
    """What a method returns.

    Attributes:
        vector: the predicted raw ``(130,)`` vector (array, tensor or :class:`Preset`).
        info: JSON-serialisable facts worth keeping (chosen index, optimiser report, ...).
        seconds: the method's own compute time, when it differs from the wall time of
            :meth:`Method.predict` because work is shared between methods through
            :attr:`EvalContext.cache` (``None``: use the wall time).
    """

    vector: Any
    info: Dict[str, Any] = field(default_factory=dict)
    seconds: Optional[float] = None


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
        seed: seed for stochastic methods.
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
    seed: int = 0
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
        self.pending: List["Method"] = []
        self._prior = None
        self._collection: Optional[Tuple[List[Preset], str, str]] = None
        self._vectors: Optional[torch.Tensor] = None
        self._encoders: Dict[str, torch.nn.Module] = {}

    def start_track(self, pending: Sequence["Method"]) -> None:
        self.cache = {}
        self.pending = list(pending)

    def prior(self):
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
            from ..embed import get_encoder
            from ..errors import VocalfxError

            try:
                enc = get_encoder(name, sample_rate=44100, **self.encoder_options(name))
            except VocalfxError:
                raise
            except (ValueError, TypeError) as e:
                raise EvalError(f"encoder {name!r}: {e}") from None
            self._encoders[name] = enc.eval().requires_grad_(False)
        return self._encoders[name]


class Method:
    """Base class of evaluation methods.

    Subclasses set :attr:`family` (by :func:`register_method`), implement :meth:`predict`, and,
    when they take arguments (an encoder, a weight), override :meth:`expand`, :attr:`name`,
    :attr:`spec` and :meth:`config`.

    Class attributes:
        family: the registry name.
        needs_true_preset: the method reads ``track.true_vector`` (oracle-informed); it is not
            run on tracks without a true preset.
        in_all: the spec ``all`` includes this family (``False`` for variants that must be
            asked for by name).
    """

    family: ClassVar[str] = ""
    needs_true_preset: ClassVar[bool] = False
    in_all: ClassVar[bool] = True

    @classmethod
    def expand(cls, args: Sequence[str], options: MethodOptions) -> List["Method"]:
        """The methods a spec ``family[:arg...]`` stands for. Default: no arguments, one method."""
        if args:
            raise EvalError(f"method {cls.family!r} takes no arguments, got {':'.join(args)!r}")
        return [cls()]

    @property
    def name(self) -> str:
        """Unique row label and file stem, e.g. ``ito-mfcc-a0.1``."""
        return self.family

    @property
    def spec(self) -> str:
        """A spec that :func:`parse_methods` turns back into exactly this method."""
        return self.family

    def config(self, context: EvalContext) -> Dict[str, Any]:
        """Everything the prediction depends on besides the track (compared on resume)."""
        return {"method": self.name}

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        """Predict the raw preset vector for ``track``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<method {self.name}>"


_M = TypeVar("_M", bound=Type[Method])
_METHODS: Dict[str, Type[Method]] = {}


def register_method(family: str) -> Callable[[_M], _M]:
    """Class decorator adding a :class:`Method` subclass to the registry under ``family``."""

    def decorator(cls: _M) -> _M:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"register_method expects a Method subclass, got {cls!r}")
        if family in _METHODS and _METHODS[family].__qualname__ != cls.__qualname__:
            raise ValueError(f"method family {family!r} is already registered to {_METHODS[family].__name__}")
        if family == "all" or ":" in family or "," in family:
            raise ValueError(f"invalid method family name {family!r}")
        cls.family = family
        _METHODS[family] = cls
        return cls

    return decorator


def available_methods() -> List[str]:
    """Registered method families, in registration order."""
    return list(_METHODS)


def parse_methods(specs: Sequence[str], options: MethodOptions) -> List[Method]:
    """Turn specs (see the module docstring; commas separate several) into methods, in order.

    Raises:
        EvalError: an unknown family, bad arguments, or no method at all.
    """
    out: List[Method] = []
    names = set()
    for item in specs:
        for spec in (s.strip() for s in str(item).split(",")):
            if not spec:
                continue
            families = [f for f in available_methods() if _METHODS[f].in_all] if spec == "all" else [spec]
            for fam_spec in families:
                family, *args = fam_spec.split(":")
                if family not in _METHODS:
                    raise EvalError(f"unknown method {family!r}; available: {', '.join(available_methods())}, all")
                for m in _METHODS[family].expand(args, options):
                    if m.name not in names:
                        names.add(m.name)
                        out.append(m)
    if not out:
        raise EvalError("no methods given")
    return out


def load_plugin(ref: str) -> None:
    """Import a module that registers methods: a ``.py`` file path or an importable module name."""
    p = Path(ref)
    try:
        if p.suffix == ".py":
            if not p.is_file():
                raise EvalError(f"--plugin {ref}: no such file")
            name = f"vocalfx_eval_plugin_{p.stem}"
            if name in sys.modules:
                return
            spec = importlib.util.spec_from_file_location(name, p)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        else:
            importlib.import_module(ref)
    except ModuleNotFoundError as e:
        raise EvalError(f"--plugin {ref}: {e}") from None


def _format_alpha(alpha: float) -> str:
    return f"{alpha:g}"


def parse_alpha(text: str) -> float:
    try:
        a = float(text)
    except ValueError:
        raise EvalError(f"alpha must be a number, got {text!r}") from None
    if not (math.isfinite(a) and a >= 0):
        raise EvalError(f"alpha must be a finite number >= 0, got {text!r}")
    return a


def check_encoder(name: str) -> str:
    from ..embed import available_encoders

    if name not in available_encoders():
        raise EvalError(f"unknown encoder {name!r}; available: {', '.join(available_encoders())}")
    return name


# ----------------------------------------------------------------------------------------------
# Baselines


@register_method("oracle")
class Oracle(Method):
    """The true preset: the best any method can do (0 on every metric for rendered wet tracks)."""

    needs_true_preset = True

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        return Prediction(track.true_vector.clone())


@register_method("mean")
class PriorMean(Method):
    """The prior's mean, whatever the reference (DiffVox's "mean" baseline)."""

    def config(self, context: EvalContext) -> Dict[str, Any]:
        return {"method": self.name, "prior": context.prior_id()}

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        return Prediction(context.prior().mean.double().clone())


@register_method("nn-param")
class NearestParameters(Method):
    """The collection preset nearest to the true one in raw parameter space (oracle-informed).

    Distance: the mean squared difference of the 130 raw values, i.e. PMSE, as DiffVox's
    ``nn_param`` baseline. It needs the true preset, so it is a bound on what retrieval from the
    collection could achieve in parameter space, not a usable method.
    """

    needs_true_preset = True

    def config(self, context: EvalContext) -> Dict[str, Any]:
        return {"method": self.name, "collection": context.collection()[2]}

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        vectors = context.collection_vectors()
        d = (vectors - track.true_vector.unsqueeze(0)).square().mean(-1)
        i = int(torch.argmin(d))
        presets = context.collection()[0]
        return Prediction(vectors[i].clone(), {"index": i, "preset": presets[i].name, "pmse": float(d[i])})


# Methods in their own modules register themselves when imported.
from . import nn_embed as _nn_embed  # noqa: E402,F401
from . import ito as _ito  # noqa: E402,F401
from . import ito_nn as _ito_nn  # noqa: E402,F401
