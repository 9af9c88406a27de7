"""Evaluation harness: DiffVox's style-transfer protocol over a corpus, for any set of methods.

- :func:`load_corpus` reads a corpus folder (``protocol.json``: dry vocals and their true presets);
  :func:`prepare_track` applies the protocol to one track (dry at -18 LUFS, wet render, reference =
  wet chunks at even positions, input = dry chunks at odd positions).
- Methods (:class:`Method`, :func:`register_method`, :func:`parse_methods`): ``oracle``, ``mean``,
  ``nn-param``, ``nn-emb[:ENC]``, ``ito[:ENC[:ALPHA]]``; one file adds another.
- :func:`evaluate` runs them, one resumable result cell per track x method, optionally in worker
  processes; :func:`score` is the scoring step (render the whole dry with the prediction, compare
  with the whole wet: MSS and MLDR on L/R and M/S, PMSE).
- ``vocalfx eval`` is the command line (:mod:`vocalfx.evaluation.cli`); ``docs/evaluation.md`` has
  the dev-corpus table.

Example:
    >>> from vocalfx.evaluation import MethodOptions, evaluate, load_corpus, parse_methods
    >>> opts = MethodOptions(encoders=("mfcc",))
    >>> corpus = load_corpus("corpus/dev")                                  # doctest: +SKIP
    >>> res = evaluate(corpus, parse_methods(["oracle", "mean", "ito"], opts), "eval-out",
    ...                options=opts)                                        # doctest: +SKIP
    >>> print(res.table)                                                    # doctest: +SKIP
"""

from .corpus import (
    Corpus,
    EvalError,
    TrackData,
    TrackSpec,
    active_chunk_mask,
    load_corpus,
    load_presets,
    prepare_track,
)
from .methods import (
    EvalContext,
    Method,
    MethodOptions,
    Prediction,
    available_methods,
    parse_methods,
    register_method,
)
from .runner import METRICS, EvalResult, evaluate, score

__all__ = [
    "Corpus",
    "EvalError",
    "TrackData",
    "TrackSpec",
    "active_chunk_mask",
    "load_corpus",
    "load_presets",
    "prepare_track",
    "EvalContext",
    "Method",
    "MethodOptions",
    "Prediction",
    "available_methods",
    "parse_methods",
    "register_method",
    "METRICS",
    "EvalResult",
    "evaluate",
    "score",
]
