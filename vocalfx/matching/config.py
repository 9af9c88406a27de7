"""A match's settings, checked once: :class:`MatchConfig`, and the checks pair fitting shares.

:func:`vocalfx.match` builds a :class:`MatchConfig` from its keyword arguments before it reads
any audio, so a bad setting fails at once with a :class:`~vocalfx.errors.MatchError` naming it;
:func:`vocalfx.matching.core.match_chunks` takes the config as it is. :func:`check_adam` and
:func:`check_sample_rate` are the checks that :func:`vocalfx.matching.fit_pair` shares.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np

from .. import defaults
from ..errors import MatchError
from ..preset import Preset
from .start import PREDICTED, start_vector
from .steer import LEVEL_PARAM, blend, level_target_lufs, parse_groups

__all__ = ["MatchConfig", "SPACES", "check_adam", "check_sample_rate", "check_steering"]

#: Where Adam steps (see :class:`MatchConfig`'s ``space``).
SPACES = ("raw", "whitened")


def check_sample_rate(value: Any, name: str, error: Type[Exception] = MatchError) -> int:
    """``value`` as an integer rate in Hz; ``error`` unless it is a whole number in 8000-384000."""
    if int(value) != value or not 8000 <= value <= 384000:
        raise error(f"{name} must be an integer between 8000 and 384000 Hz, got {value!r}")
    return int(value)


def check_adam(steps: Any, lr: Any, lr_final_ratio: Any, error: Type[Exception] = MatchError) -> Tuple[int, float]:
    """The optimiser's settings checked: ``(steps, lr)`` as ``int`` and ``float``.

    Raises:
        error: ``steps`` not a non-negative integer, ``lr`` not positive and finite, or
            ``lr_final_ratio`` outside ``(0, 1]``.
    """
    if int(steps) != steps or steps < 0:
        raise error(f"steps must be a non-negative integer, got {steps!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise error(f"lr must be a positive number, got {lr!r}")
    if not 0 < lr_final_ratio <= 1:
        raise error(f"lr_final_ratio must lie in (0, 1], got {lr_final_ratio!r}")
    return int(steps), float(lr)


def check_steering(
    groups: Union[None, str, Sequence[str]], strength: float, level: Union[None, str, float]
) -> Tuple[Optional[Tuple[str, ...]], Union[str, float]]:
    """The steering settings checked: the parsed groups and the level mode.

    ``level=None`` resolves to ``"reference"``, or to ``"preset"`` when the groups leave out
    ``dynamics``, which holds the make-up gain that carries the level.

    Raises:
        MatchError: an unknown group, a strength outside [0, 1], an unknown level mode or an
            implausible LUFS value, or a level asked for while ``dynamics`` stays fixed.
    """
    try:
        groups = parse_groups(groups)
        blend(np.zeros(1), np.zeros(1), strength)
        if level is not None:
            level_target_lufs(level, -18.0)
    except ValueError as e:
        raise MatchError(str(e)) from None
    holds_level = groups is None or "dynamics" in groups
    if level is None:
        return groups, ("reference" if holds_level else "preset")
    if level != "preset" and not holds_level:
        raise MatchError(
            f"level={level!r} is set through {LEVEL_PARAM}, which groups {','.join(groups)} keeps fixed: "
            "add 'dynamics' to the groups or use level='preset'"
        )
    return groups, level


@dataclass(frozen=True)
class MatchConfig:
    """How to match: the objective, the optimiser, the start and the steering.

    Every field is checked when the config is made; ``None`` for ``steps`` or ``lr`` is the
    default, and ``groups`` and ``level`` are stored as :func:`check_steering` resolves them.

    Attributes:
        encoder: the likelihood's encoder (:func:`vocalfx.encoders.get_encoder` name; ``"fx"``,
            ``"mfcc"``, ``"mir"``, ``"afx-rep"``, or parts joined by ``+``).
        encoder_options: keyword arguments for the encoder (e.g. ``{"checkpoint": path}``).
        alpha: prior weight of the MAP loss, ``>= 0`` (0: maximum likelihood).
        steps, lr, lr_final_ratio: Adam steps and learning rate, cosine-decayed to
            ``lr * lr_final_ratio``.
        space: ``"raw"`` (Adam on the raw vector) or ``"whitened"`` (on the prior's whitened
            coordinates; ``lr`` in prior standard deviations).
        init: ``"predicted"`` (the predictor's preset from the reference and the dry),
            ``"mean"``/``None`` (the prior mean), a :class:`~vocalfx.preset.Preset` or 130 raw values.
        prediction_weight: with ``init="predicted"``, the start is
            ``prior mean + w (prediction - prior mean)``, ``w`` in ``[0, 1]``.
        predictor: the encoder whose preset head predicts the start when the likelihood's
            encoder has none (default ``"fx"``).
        chunk_seconds: chunk length (s) of the files :func:`vocalfx.match` cuts.
        lossy_reference: whether the reference went through a lossy codec; ``None``: decided
            from the audio (:func:`vocalfx.codec.codec_evidence`).
        groups: the parameter groups optimised (``None``: all); the rest stay at the start.
        strength: the fraction of the way from the start to the match that is kept.
        level: ``"reference"``, ``"preset"`` or a loudness in LUFS (see :func:`vocalfx.match`).
        max_recoveries: consecutive non-finite steps tolerated.
    """

    encoder: str = defaults.MATCH_ENCODER
    encoder_options: Mapping[str, Any] = field(default_factory=dict)
    alpha: float = defaults.MATCH_ALPHA
    steps: Optional[int] = defaults.MATCH_STEPS
    lr: Optional[float] = defaults.MATCH_LR
    lr_final_ratio: float = 0.1
    space: str = "raw"
    init: Any = defaults.MATCH_INIT
    prediction_weight: float = defaults.MATCH_PREDICTION_WEIGHT
    predictor: str = "fx"
    chunk_seconds: float = defaults.CHUNK_SECONDS
    lossy_reference: Optional[bool] = None
    groups: Union[None, str, Sequence[str]] = None
    strength: float = 1.0
    level: Union[None, str, float] = None
    max_recoveries: int = 8

    def __post_init__(self) -> None:
        put = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        steps = defaults.MATCH_STEPS if self.steps is None else self.steps
        lr = defaults.MATCH_LR if self.lr is None else self.lr
        steps, lr = check_adam(steps, lr, self.lr_final_ratio)
        put("steps", steps)
        put("lr", lr)
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise MatchError(f"alpha must be a finite number >= 0, got {self.alpha!r}")
        if not self.chunk_seconds > 0:
            raise MatchError(f"chunk_seconds must be positive, got {self.chunk_seconds!r}")
        if self.space not in SPACES:
            raise MatchError(f"space must be one of {', '.join(SPACES)}, got {self.space!r}")
        groups, level = check_steering(self.groups, self.strength, self.level)
        put("groups", groups)
        put("level", level)
        if not 0.0 <= self.prediction_weight <= 1.0:
            raise MatchError(f"prediction_weight must be in [0, 1], got {self.prediction_weight!r}")
        if not (self.predicts_start or self.init is None or (isinstance(self.init, str) and self.init == "mean")):
            try:
                start_vector(self.init, None)  # a preset, or a vector's size and values, before any audio is read
            except ValueError as e:
                raise MatchError(str(e)) from None
        put("encoder_options", dict(self.encoder_options or {}))

    @property
    def predicts_start(self) -> bool:
        """Whether the start is the predictor's preset (``init="predicted"``)."""
        return isinstance(self.init, str) and self.init == PREDICTED

    def to_dict(self) -> Dict[str, Any]:
        """The settings as plain values (``init`` as a label when it is a preset or a vector)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if not (out["init"] is None or isinstance(out["init"], str)):
            out["init"] = f"preset {out['init'].name}" if isinstance(out["init"], Preset) else "given vector"
        out["groups"] = list(self.groups) if self.groups is not None else None
        out["encoder_options"] = {k: str(v) for k, v in self.encoder_options.items()}
        return out
