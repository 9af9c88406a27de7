"""The simple baselines: the true preset, the prior's mean, and the nearest preset to the truth."""

from __future__ import annotations

from typing import Any, Dict

import torch

from .context import EvalContext
from .corpus import TrackData
from .registry import Method, Prediction, register_method

__all__ = ["Oracle", "PriorMean", "NearestParameters"]


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
