"""Inference-time optimisation (ITO) as an evaluation method: :func:`vocalfx.match` per encoder and alpha.

The input chunks (dry, odd positions) and the reference chunks (wet, even positions) are each
laid end to end and handed to :func:`vocalfx.match` with the protocol's chunk length, so ``match``
cuts them back into the same chunks. The reference is not renormalised
(``normalize_reference=False``): the wet tracks keep the level the true preset gives a -18 LUFS
input, and the preset found should reproduce it. ``match`` normalises the input to -18 LUFS
itself; the input chunks are already cut from the -18 LUFS dry, so this changes their level only
by the difference between the chunks' loudness and the whole track's (recorded as
``dry_gain_db`` in the cell's ``info``). By default the output level is the preset's (``level="preset"``):
the protocol scores the preset the method predicts, as DiffVox does. With
``MethodOptions.ito_level="reference"`` (``vocalfx eval --ito-level reference``, rows ending in
``+level``) ``match`` sets the make-up gain as ``vocalfx match`` does by default: the render of
the input chunks gets the reference chunks' integrated loudness.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..defaults import EVAL_ITO_LR, EVAL_ITO_STEPS
from ..matching import MatchError, match
from .context import EvalContext
from .corpus import EvalError, TrackData
from .registry import (
    DEFAULT_ALPHAS,
    Method,
    MethodOptions,
    Prediction,
    check_encoder,
    format_alpha,
    parse_alpha,
    register_method,
)

__all__ = ["InferenceTimeOptimisation"]


@register_method("ito")
class InferenceTimeOptimisation(Method):
    """MAP inference-time optimisation with one encoder and one prior weight ``alpha``.

    Spec: ``ito`` (every run encoder x alpha), ``ito:ENCODER`` (every alpha) or
    ``ito:ENCODER:ALPHA``. Steps, learning rate and seed come from :class:`MethodOptions`.
    """

    def __init__(
        self,
        encoder: str,
        alpha: float,
        steps: Optional[int] = None,
        lr: Optional[float] = None,
        seed: int = 0,
        space: Optional[str] = None,
        level: Optional[str] = None,
    ) -> None:
        if level not in (None, "preset", "reference"):
            raise EvalError(f"ito level must be 'preset' or 'reference', got {level!r}")
        self.encoder = encoder
        self.alpha = float(alpha)
        self.steps = steps
        self.lr = lr
        self.seed = int(seed)
        self.space = space
        self.level = None if level == "preset" else level

    @classmethod
    def expand(cls, args: Sequence[str], options: MethodOptions) -> List[Method]:
        if len(args) > 2:
            raise EvalError(f"ito takes up to two arguments (encoder, alpha), got {':'.join(args)!r}")
        encoders = [args[0]] if args else list(options.encoders)
        alphas = [parse_alpha(args[1])] if len(args) > 1 else list(options.alphas or DEFAULT_ALPHAS)
        return [
            cls(
                check_encoder(e),
                a,
                steps=options.ito_steps,
                lr=options.ito_lr,
                seed=options.seed,
                space=options.ito_space,
                level=options.ito_level,
            )
            for e in encoders
            for a in alphas
        ]

    @property
    def name(self) -> str:
        suffix = "" if self.space in (None, "raw") else f"-{self.space}"
        level = "+level" if self.level == "reference" else ""
        return f"ito-{self.encoder}-a{format_alpha(self.alpha)}{suffix}{level}"

    @property
    def spec(self) -> str:
        return f"ito:{self.encoder}:{format_alpha(self.alpha)}"

    def _settings(self):
        return (
            EVAL_ITO_STEPS if self.steps is None else int(self.steps),
            EVAL_ITO_LR if self.lr is None else float(self.lr),
            "raw" if self.space is None else str(self.space),
        )

    def config(self, context: EvalContext) -> Dict[str, Any]:
        steps, lr, space = self._settings()
        config = {
            "method": self.name,
            "encoder": self.encoder,
            "encoder_options": {k: str(v) for k, v in context.encoder_options(self.encoder).items()},
            "alpha": self.alpha,
            "steps": steps,
            "lr": lr,
            "seed": self.seed,
            "prior": context.prior_id(),
        }
        if space != "raw":  # cells computed before the option existed stepped in raw space
            config["space"] = space
        if self.level is not None:  # likewise, they kept the preset's level
            config["level"] = self.level
        return config

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        return self.match_from(track, context)

    def match_from(self, track: TrackData, context: EvalContext, init: Optional[np.ndarray] = None) -> Prediction:
        """Run :func:`vocalfx.match` on the track's chunks from ``init`` (``None``: the prior mean)."""
        steps, lr, space = self._settings()
        n_in, _, length = track.input.shape
        dry = track.input.permute(1, 0, 2).reshape(1, n_in * length)
        n_ref = track.reference.shape[0]
        reference = track.reference.permute(1, 0, 2).reshape(2, n_ref * length)
        try:
            res = match(
                dry,
                reference,
                track.sample_rate,
                encoder=self.encoder,
                alpha=self.alpha,
                steps=steps,
                lr=lr,
                space=space,
                seed=self.seed,
                prior=context.prior(),
                init="mean" if init is None else init,
                chunk_seconds=track.chunk_seconds,
                normalize_reference=False,
                encoder_options=context.encoder_options(self.encoder) or None,
                progress=False,
                name=f"{track.name}-{self.name}",
                level=self.level or "preset",
                prediction_weight=1.0,  # ito-pred starts from the prediction itself (the match row follows the default)
            )
        except MatchError as e:
            raise EvalError(f"{track.name}: {self.name}: {e}") from None
        report = res.report.to_dict()
        report["recoveries"] = len(report.get("recoveries") or [])
        return Prediction(res.preset.vector, report)
