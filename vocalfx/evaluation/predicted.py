"""The ``fx`` encoder's predicted preset, alone (``pred``) and as ITO's starting point (``ito-pred``).

``pred`` asks the preset head of the ``fx`` encoder (:meth:`vocalfx.encoders.trained.FxEncoder.predict_preset`)
for a preset from the reference chunks and the input chunks, each laid end to end, exactly as
:func:`vocalfx.match` does for ``init="predicted"``
(:func:`vocalfx.matching.start.predicted_start`): no optimisation, one forward pass.

``ito-pred[:ENC[:ALPHA]]`` is :func:`vocalfx.match` with ``init="predicted"``: the same MAP
objective as ``ito`` (likelihood under ENC plus ``alpha`` times the log prior), started from the
prediction instead of the prior mean. Neither family is part of ``all``; ask for them by name.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..chunks import join_chunks
from ..matching import MatchConfig, MatchError, render_at_level
from ..matching.start import PREDICTED, predicted_start
from .context import EvalContext
from .corpus import EvalError, TrackData
from .ito import InferenceTimeOptimisation, match_track
from .registry import Method, MethodOptions, Prediction, format_alpha, register_method

__all__ = ["PredictedPreset", "ITOFromPrediction", "DefaultMatch", "MatchWith"]

PREDICTOR = "fx"


def weights_digest(context: EvalContext) -> str:
    """SHA-256 of the predictor's weights file (a cell records which weights predicted it)."""
    path = getattr(context.encoder(PREDICTOR), "weights_path", None)
    return hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else "untrained"


@register_method("pred")
class PredictedPreset(Method):
    """The ``fx`` head's preset from the reference and the input (spec ``pred`` or ``pred:fx``)."""

    in_all = False

    def __init__(self, level: Optional[str] = None) -> None:
        if level not in (None, "preset", "reference"):
            raise EvalError(f"pred level must be 'preset' or 'reference', got {level!r}")
        self.level = None if level == "preset" else level

    @classmethod
    def expand(cls, args: Sequence[str], options: MethodOptions) -> List[Method]:
        if len(args) > 1 or (args and args[0] != PREDICTOR):
            raise EvalError(f"pred takes at most one argument, the predictor ({PREDICTOR!r}), got {':'.join(args)!r}")
        return [cls(level=options.ito_level)]

    @property
    def name(self) -> str:
        return f"pred-{PREDICTOR}" + ("+level" if self.level == "reference" else "")

    @property
    def spec(self) -> str:
        return f"pred:{PREDICTOR}"

    def config(self, context: EvalContext) -> Dict[str, Any]:
        config = {
            "method": self.name,
            "predictor": PREDICTOR,
            "weights_sha256": weights_digest(context),
            "encoder_options": {k: str(v) for k, v in context.encoder_options(PREDICTOR).items()},
        }
        if self.level is not None:
            config["level"] = self.level
        return config

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        t0 = time.perf_counter()
        # the chunks the ito rows give the matching core: the input at -18 LUFS, the reference at its level
        chunks = track.matching_chunks()
        where = f"{track.name}: {self.name}"
        try:
            raw, label = predicted_start(chunks.reference, chunks.input, context.encoder(PREDICTOR))
        except ValueError as e:
            raise EvalError(f"{where}: {e}") from None
        extra: Dict[str, Any] = {"init": label}
        if self.level == "reference":  # as vocalfx.match(level="reference"): the output follows the reference
            try:
                _, raw, extra["level_gain_db"] = render_at_level(
                    raw, join_chunks(chunks.input), "reference", chunks.reference_lufs
                )
            except MatchError as e:
                raise EvalError(f"{where}: {e}") from None
        return Prediction(raw, extra, seconds=time.perf_counter() - t0)


@register_method("ito-pred")
class ITOFromPrediction(InferenceTimeOptimisation):
    """MAP inference-time optimisation from the ``fx`` prediction (``init="predicted"``)."""

    in_all = False

    @property
    def name(self) -> str:
        return "ito-pred" + super().name[len("ito") :]

    @property
    def spec(self) -> str:
        return f"ito-pred:{self.encoder}:{format_alpha(self.alpha)}"

    def config(self, context: EvalContext) -> Dict[str, Any]:
        return {
            **super().config(context),
            "method": self.name,
            "init": PREDICTED,
            "predictor": PREDICTOR,
            "predictor_weights_sha256": weights_digest(context),
        }

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        return self.match_from(track, context, init=PREDICTED)


@register_method("match")
class DefaultMatch(Method):
    """What ``vocalfx match`` does with no options (spec ``match``): :func:`vocalfx.match`'s defaults.

    The encoder, the start, the steps, the learning rate and the prior weight are the library's
    defaults (:mod:`vocalfx.defaults`), the reference is brought to -18 LUFS as ``match`` does by
    default, and the output level follows the reference's loudness (``level="reference"``). The
    row therefore moves with the defaults; its cell records them, so a changed default is a
    changed configuration and is recomputed.
    """

    in_all = False

    @classmethod
    def expand(cls, args: Sequence[str], options: MethodOptions) -> List[Method]:
        if args:
            raise EvalError(f"match takes no arguments (it is vocalfx.match with its defaults), got {':'.join(args)!r}")
        return [cls()]

    @property
    def name(self) -> str:
        return "match"

    @property
    def spec(self) -> str:
        return "match"

    def config(self, context: EvalContext) -> Dict[str, Any]:
        from .. import defaults

        return {
            "method": self.name,
            "encoder": defaults.MATCH_ENCODER,
            "init": defaults.MATCH_INIT,
            "prediction_weight": defaults.MATCH_PREDICTION_WEIGHT,
            "steps": defaults.MATCH_STEPS,
            "lr": defaults.MATCH_LR,
            "alpha": defaults.MATCH_ALPHA,
            "level": "reference",
            "normalize_reference": True,
            "prior": context.prior_id(),
            "predictor_weights_sha256": weights_digest(context),
        }

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        config = MatchConfig(chunk_seconds=track.chunk_seconds)  # vocalfx.match's defaults
        return match_track(track, context, config, normalize_reference=True, where=f"{track.name}: {self.name}")


#: The :class:`MatchConfig` fields a ``match-with`` spec may set, with how each is read.
_MATCH_WITH_FIELDS = {
    "encoder": str,
    "init": str,
    "prediction_weight": float,
    "predictor": str,
    "steps": int,
    "lr": float,
    "lr_final_ratio": float,
    "alpha": float,
    "space": str,
}


@register_method("match-with")
class MatchWith(DefaultMatch):
    """:func:`vocalfx.match` with some settings changed (spec ``match-with:KEY=VALUE[:KEY=VALUE...]``).

    The candidate defaults are compared this way, on a validation corpus, before one of them
    becomes :mod:`vocalfx.defaults`: ``match-with:steps=25:prediction_weight=0.5`` is the default
    match with 25 steps and a start half-way from the prior mean to the prediction. Keys:
    ``encoder``, ``init``, ``prediction_weight``, ``predictor``, ``steps``, ``lr``,
    ``lr_final_ratio``, ``alpha``, ``space``. Everything else is the default row's.
    """

    def __init__(self, settings: Dict[str, Any]) -> None:
        self.settings = dict(sorted(settings.items()))
        try:
            MatchConfig(**self.settings)
        except (MatchError, TypeError) as e:
            raise EvalError(f"match-with: {e}") from None

    @classmethod
    def expand(cls, args: Sequence[str], options: MethodOptions) -> List[Method]:
        if not args:
            raise EvalError("match-with needs at least one KEY=VALUE (use match for the defaults)")
        settings: Dict[str, Any] = {}
        for arg in args:
            key, sep, text = arg.partition("=")
            if not sep or key not in _MATCH_WITH_FIELDS:
                raise EvalError(f"match-with: {arg!r} is not KEY=VALUE with KEY one of {', '.join(_MATCH_WITH_FIELDS)}")
            try:
                settings[key] = _MATCH_WITH_FIELDS[key](text)
            except ValueError:
                raise EvalError(
                    f"match-with: {key} must be a {_MATCH_WITH_FIELDS[key].__name__}, got {text!r}"
                ) from None
        return [cls(settings)]

    @property
    def name(self) -> str:
        return "match-" + "-".join(f"{k}{v}" for k, v in self.settings.items())

    @property
    def spec(self) -> str:
        return "match-with:" + ":".join(f"{k}={v}" for k, v in self.settings.items())

    def config(self, context: EvalContext) -> Dict[str, Any]:
        config = MatchConfig(**self.settings)
        return {
            **super().config(context),
            "method": self.name,
            **{k: getattr(config, k) for k in _MATCH_WITH_FIELDS},
        }

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        config = MatchConfig(chunk_seconds=track.chunk_seconds, **self.settings)
        return match_track(track, context, config, normalize_reference=True, where=f"{track.name}: {self.name}")
