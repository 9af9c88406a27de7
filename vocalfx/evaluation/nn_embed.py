"""Nearest neighbour in embedding space: retrieval from a preset collection (DiffVox's ``nn_emb``).

Every preset of the collection (:attr:`MethodOptions.collection`) renders the track's input
chunks; the renders and the reference chunks are scaled by one over the reference chunks' peak
and embedded; the preset whose renders have the highest angular likelihood of the reference
embeddings (:func:`vocalfx.matching.ito_nll`, the ITO data term without the prior) is the prediction.
It uses only the reference and the input, so it is a fair baseline for ITO.

The renders are the expensive part (one chain pass per preset), so they are computed once per
track and embedded with every encoder of the ``nn-emb`` methods pending on that track; each
method is charged its share of the renders plus its own embedding time.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Sequence

import numpy as np
import torch

from ..matching.objectives import ito_nll
from ..params import SAMPLE_RATE
from ..render import cached_chain
from .context import EvalContext
from .corpus import EvalError, TrackData
from .registry import Method, MethodOptions, Prediction, check_encoder, register_method

__all__ = ["NearestEmbedding", "collection_scores"]


@register_method("nn-emb")
class NearestEmbedding(Method):
    """Retrieve the collection preset that best matches the reference in an encoder's space.

    Spec: ``nn-emb`` (every run encoder) or ``nn-emb:ENCODER``.
    """

    def __init__(self, encoder: str) -> None:
        self.encoder = encoder

    @classmethod
    def expand(cls, args: Sequence[str], options: MethodOptions) -> List[Method]:
        if len(args) > 1:
            raise EvalError(f"nn-emb takes one argument (an encoder), got {':'.join(args)!r}")
        encoders = [args[0]] if args else list(options.encoders)
        return [cls(check_encoder(e)) for e in encoders]

    @property
    def name(self) -> str:
        return f"nn-emb-{self.encoder}"

    @property
    def spec(self) -> str:
        return f"nn-emb:{self.encoder}"

    def config(self, context: EvalContext) -> Dict[str, Any]:
        return {
            "method": self.name,
            "encoder": self.encoder,
            "encoder_options": {k: str(v) for k, v in context.encoder_options(self.encoder).items()},
            "collection": context.collection()[2],
        }

    def predict(self, track: TrackData, context: EvalContext) -> Prediction:
        scores = collection_scores(track, context, self.encoder)
        nll, s_mid, s_side, seconds = scores[self.encoder]
        if not np.isfinite(nll).any():
            raise EvalError(f"{track.name}: no preset of the collection renders finite audio on the input")
        order = np.argsort(nll, kind="stable")
        i = int(order[0])
        presets = context.collection()[0]
        deg = 180.0 / math.pi
        info = {
            "index": i,
            "preset": presets[i].name,
            "nll": float(nll[i]),
            "sigma_mid_deg": float(s_mid[i]) * deg,
            "sigma_side_deg": float(s_side[i]) * deg,
            "collection_size": len(presets),
        }
        if len(order) > 1:
            info["runner_up"] = {"index": int(order[1]), "nll": float(nll[order[1]])}
        return Prediction(context.collection_vectors()[i].clone(), info, seconds=seconds)


def collection_scores(track: TrackData, context: EvalContext, encoder: str) -> Dict[str, tuple]:
    """Score every collection preset on the track: its renders of the input against the reference.

    The renders are shared by every ``nn-emb`` encoder pending on the track and cached in
    :attr:`EvalContext.cache` (``ito-nn`` reuses them).

    Returns:
        Per encoder name: ``(nll, sigma_mid, sigma_side, seconds)``: three arrays over the
        collection (``inf``/NaN where a preset renders non-finite audio) and the encoder's share
        of the compute time (s).
    """

    key = ("nn-emb", context.collection()[2])
    cache: Dict[str, tuple] = context.cache.setdefault(key, {})
    wanted = {m.encoder for m in context.pending if isinstance(m, NearestEmbedding)} | {encoder}
    todo = sorted(wanted - set(cache))
    if not todo:
        return cache
    scale = 1.0 / float(track.reference.abs().amax())
    chain = cached_chain(float(SAMPLE_RATE))
    encoders = {name: context.encoder(name) for name in todo}
    vectors = context.collection_vectors()
    n = vectors.shape[0]
    out = {name: (np.full(n, np.inf), np.full(n, np.nan), np.full(n, np.nan)) for name in todo}
    render_s, embed_s = 0.0, {name: 0.0 for name in todo}
    with torch.no_grad():
        refs = {name: enc(track.reference * scale) for name, enc in encoders.items()}
        for i in range(n):
            t0 = time.perf_counter()
            pred = chain(track.input, params=vectors[i].to(torch.float32).unsqueeze(0))
            render_s += time.perf_counter() - t0
            if not torch.isfinite(pred).all():
                continue
            pred = pred * scale
            for name, enc in encoders.items():
                t0 = time.perf_counter()
                nll, s_mid, s_side = ito_nll(enc(pred), refs[name])
                embed_s[name] += time.perf_counter() - t0
                if math.isfinite(float(nll)):
                    out[name][0][i], out[name][1][i], out[name][2][i] = float(nll), float(s_mid), float(s_side)
    for name in todo:
        cache[name] = (*out[name], render_s / len(todo) + embed_s[name])
    return cache
