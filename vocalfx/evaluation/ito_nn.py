"""ITO started from the nearest collection preset in embedding space (``ito-nn``).

:func:`vocalfx.match` normally starts at the prior's mean. This variant first runs the
``nn-emb`` retrieval with the same encoder (the collection preset whose render of the input best
explains the reference, :mod:`vocalfx.evaluation.nn_embed`) and starts the optimiser there; the
objective (likelihood plus ``alpha`` times the log prior) is unchanged. It measures whether a better
start helps in the same number of steps.

The collection renders are shared with ``nn-emb`` rows of the same track through the per-track
cache; the time charged to an ``ito-nn`` cell is the retrieval's share plus the optimisation.
``all`` does not include this family: ask for it as ``ito-nn``, ``ito-nn:ENC`` or
``ito-nn:ENC:ALPHA``.
"""

from __future__ import annotations

import time
from typing import Any, Dict

import numpy as np

from .context import EvalContext
from .corpus import EvalError, TrackData
from .ito import InferenceTimeOptimisation
from .nn_embed import collection_scores
from .registry import Prediction, format_alpha, register_method

__all__ = ["ITOFromNearest"]


@register_method("ito-nn")
class ITOFromNearest(InferenceTimeOptimisation):
    """MAP inference-time optimisation from the ``nn-emb`` pick of the same encoder."""

    in_all = False

    @property
    def name(self) -> str:
        return "ito-nn" + super().name[len("ito") :]

    @property
    def spec(self) -> str:
        return f"ito-nn:{self.encoder}:{format_alpha(self.alpha)}"

    def config(self, context: EvalContext) -> Dict[str, Any]:
        return {**super().config(context), "method": self.name, "init": "nn-emb", "collection": context.collection()[2]}

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        nll, _, _, nn_seconds = collection_scores(track, context, self.encoder)[self.encoder]
        if not np.isfinite(nll).any():
            raise EvalError(f"{track.name}: no preset of the collection renders finite audio on the input")
        i = int(np.argmin(nll))
        t0 = time.perf_counter()
        pred = self.match_from(track, context, init=context.collection_vectors()[i].double().numpy())
        pred.info.update({"init_index": i, "init_preset": context.collection()[0][i].name, "init_nll": float(nll[i])})
        pred.seconds = nn_seconds + (time.perf_counter() - t0)
        return pred
