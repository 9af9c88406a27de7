"""Style-transfer methods under evaluation: the interface and the registry.

A method predicts a preset for a prepared track (:class:`~vocalfx.evaluation.corpus.TrackData`:
the reference chunks, the input chunks and, for oracle-informed baselines only, the true preset).
It is a subclass of :class:`Method` registered under a *family* name with
:func:`register_method`; a family may expand into several methods (one per encoder, per alpha).

Method specs, as given to ``vocalfx eval --methods`` and :func:`parse_methods`:

=====================  =========================================================================
``oracle``             the true preset (the wet track's own parameters); these three baselines
                       are in :mod:`.baselines`
``mean``               the prior's mean
``nn-param``           the collection preset nearest to the true preset in raw parameter space
                       (mean squared difference, as PMSE; oracle-informed, as DiffVox reports it)
``nn-emb[:ENC]``       the collection preset whose render of the input best matches the reference
                       in ENC's embedding space (:mod:`vocalfx.evaluation.nn_embed`)
``ito[:ENC[:ALPHA]]``  inference-time optimisation, :func:`vocalfx.match` (:mod:`.ito`)
``ito-nn[:ENC[:A]]``   the same from the ``nn-emb`` pick (:mod:`.ito_nn`; not part of ``all``)
``all``                all of the above for every ``--encoders`` and ``--alphas`` value
=====================  =========================================================================

A family name without arguments expands over :attr:`MethodOptions.encoders` and
:attr:`MethodOptions.alphas`. Each method has a unique :attr:`Method.name` (``nn-emb-mfcc``,
``ito-mir-a0.1``) used as its row in the tables and its file name in the output folder, and a
:attr:`Method.spec` that rebuilds it in a worker process.

Adding a method is one file: subclass :class:`Method`, decorate it with
``@register_method("family")`` and either import the module in ``vocalfx/evaluation/__init__.py``
(where the built-in method modules are imported: this module imports none of them) or pass it to
``vocalfx eval --plugin FILE``.

Example:
    >>> @register_method("zero")
    ... class Zero(Method):
    ...     def predict(self, track, context):
    ...         return Prediction(np.zeros(130))
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Sequence, Type, TypeVar

from .context import DEFAULT_ALPHAS, DEFAULT_ENCODERS, EvalContext, MethodOptions
from .corpus import EvalError, TrackData

__all__ = [
    "Method",
    "Prediction",
    "MethodOptions",
    "register_method",
    "available_methods",
    "parse_methods",
    "load_plugin",
    "format_alpha",
    "parse_alpha",
    "check_encoder",
    "DEFAULT_ENCODERS",
    "DEFAULT_ALPHAS",
]


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


def format_alpha(alpha: float) -> str:
    """How an alpha appears in method names and specs (``0.1``, ``1``)."""
    return f"{alpha:g}"


def parse_alpha(text: str) -> float:
    """A prior weight from a spec or the command line (raises :class:`EvalError`)."""
    try:
        a = float(text)
    except ValueError:
        raise EvalError(f"alpha must be a number, got {text!r}") from None
    if not (math.isfinite(a) and a >= 0):
        raise EvalError(f"alpha must be a finite number >= 0, got {text!r}")
    return a


def check_encoder(name: str) -> str:
    """``name`` if it is a registered encoder (raises :class:`EvalError`)."""
    from ..encoders import available_encoders

    if name not in available_encoders():
        raise EvalError(f"unknown encoder {name!r}; available: {', '.join(available_encoders())}")
    return name
