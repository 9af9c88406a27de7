"""Inference-time optimisation (ITO) as an evaluation method: the matching core per encoder and alpha.

Each cell runs :func:`vocalfx.matching.match_chunks` on the protocol's chunks as they are
(:meth:`vocalfx.evaluation.corpus.TrackData.matching_chunks`): the input chunks (dry, odd
positions), brought together to -18 LUFS with one gain (recorded as ``dry_gain_db`` in the
cell's ``info``), and the reference chunks (wet, even positions) at the level the true preset
gives a -18 LUFS input, so that the preset found should reproduce it. By default the output
level is the preset's (``level="preset"``): the protocol scores the preset the method predicts,
as DiffVox does. With ``MethodOptions.ito_level="reference"`` (``vocalfx eval --ito-level
reference``, rows ending in ``+level``) the make-up gain is set as ``vocalfx match`` sets it by
default: the render of the input chunks gets the reference chunks' integrated loudness.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ..chunks import join_chunks
from ..defaults import EVAL_ITO_LR, EVAL_ITO_STEPS
from ..matching import MatchConfig, MatchError, match_chunks, render_at_level
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
    ``ito:ENCODER:ALPHA``. Steps and learning rate come from :class:`MethodOptions`.
    """

    def __init__(
        self,
        encoder: str,
        alpha: float,
        steps: Optional[int] = None,
        lr: Optional[float] = None,
        space: Optional[str] = None,
        level: Optional[str] = None,
    ) -> None:
        if level not in (None, "preset", "reference"):
            raise EvalError(f"ito level must be 'preset' or 'reference', got {level!r}")
        self.encoder = encoder
        self.alpha = float(alpha)
        self.steps = steps
        self.lr = lr
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
            "prior": context.prior_id(),
        }
        if space != "raw":  # cells computed before the option existed stepped in raw space
            config["space"] = space
        if self.level is not None:  # likewise, they kept the preset's level
            config["level"] = self.level
        return config

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        return self.match_from(track, context)

    def match_from(self, track: TrackData, context: EvalContext, init: Any = None) -> Prediction:
        """The matching core on the track's chunks from ``init`` (``None``: the prior mean)."""
        steps, lr, space = self._settings()
        config = MatchConfig(
            encoder=self.encoder, encoder_options=context.encoder_options(self.encoder), alpha=self.alpha,
            steps=steps, lr=lr, space=space, init="mean" if init is None else init, chunk_seconds=track.chunk_seconds,
            level=self.level or "preset", prediction_weight=1.0,  # ito-pred starts from the prediction itself
        )  # fmt: skip
        return match_track(track, context, config, where=f"{track.name}: {self.name}")


def match_track(track: TrackData, context: EvalContext, config: MatchConfig, *, normalize_reference: bool = False,
                where: str = "") -> Prediction:  # fmt: skip
    """:func:`vocalfx.matching.match_chunks` on ``track``'s chunks (:meth:`TrackData.matching_chunks`).

    With ``config.level == "reference"`` the make-up gain gives the render of the input chunks
    the reference chunks' loudness as the track holds them, as :func:`vocalfx.match` does.
    """
    chunks = track.matching_chunks(normalize_reference=normalize_reference)
    try:
        found = match_chunks(chunks.input, chunks.reference, config, prior=context.prior())
        vector, level_gain_db = found.vector, 0.0
        if config.level != "preset":
            dry = join_chunks(chunks.input)
            _, vector, level_gain_db = render_at_level(vector, dry, config.level, chunks.reference_lufs)
    except MatchError as e:
        raise EvalError(f"{where}: {e}") from None
    info = found.to_dict()
    settings = ("encoder", "alpha", "steps", "lr", "space", "level", "chunk_seconds", "groups", "strength")
    info.update({k: v for k, v in config.to_dict().items() if k in settings})
    info.update(
        n_ref_chunks=chunks.reference.shape[0], n_dry_chunks=chunks.input.shape[0], dry_gain_db=chunks.input_gain_db,
        reference_gain_db=chunks.reference_gain_db, reference_lufs=chunks.reference_lufs, level_gain_db=level_gain_db,
    )  # fmt: skip
    return Prediction(vector, info)
