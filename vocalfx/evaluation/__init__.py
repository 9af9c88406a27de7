"""Evaluation harness: DiffVox's style-transfer protocol over a corpus, for any set of methods.

- :func:`load_corpus` reads a corpus folder (``protocol.json``: dry vocals and their true presets);
  :func:`prepare_track` applies the protocol to one track (dry at -18 LUFS, wet render, reference =
  wet chunks at even positions, input = dry chunks at odd positions).
- Methods (:class:`Method`, :func:`register_method`, :func:`parse_methods`): ``oracle``, ``mean``,
  ``nn-param``, ``nn-emb[:ENC]``, ``ito[:ENC[:ALPHA]]``; one file adds another.
- :func:`evaluate` runs them, one resumable result cell per track x method, optionally in worker
  processes; :func:`score` is the scoring step (render the whole dry with the prediction, compare
  with the whole wet: MSS and MLDR on L/R and M/S, PMSE).
- ``vocalfx eval`` is the command line (:mod:`vocalfx.cli.eval`); ``docs/guide/evaluation.md`` has the
  dev-corpus table.

Example:
    >>> from vocalfx.evaluation import MethodOptions, evaluate, load_corpus, parse_methods
    >>> opts = MethodOptions(encoders=("mfcc",))
    >>> corpus = load_corpus("corpus/dev")                                  # doctest: +SKIP
    >>> res = evaluate(corpus, parse_methods(["oracle", "mean", "ito"], opts), "eval-out",
    ...                options=opts)                                        # doctest: +SKIP
    >>> print(res.table)                                                    # doctest: +SKIP
"""

# ruff: noqa: I001 (the method modules are imported in the order ``all`` lists them)
# Layers, each importing only those above it: corpus (tracks, protocol) -> registry (the Method
# interface; it imports no method) -> context -> the method modules -> cells/tables -> runner.
from .corpus import (
    Corpus,
    EvalError,
    TrackData,
    TrackSpec,
    check_vector,
    load_corpus,
    load_presets,
    prepare_track,
    render_vector,
)
from .registry import (
    DEFAULT_ALPHAS,
    DEFAULT_ENCODERS,
    Method,
    MethodOptions,
    Prediction,
    available_methods,
    check_encoder,
    format_alpha,
    load_plugin,
    parse_alpha,
    parse_methods,
    register_method,
)
from .context import EvalContext

# The built-in methods register themselves when imported, in this order (the order of ``all``).
from .baselines import NearestParameters, Oracle, PriorMean  # noqa: E402
from .nn_embed import NearestEmbedding  # noqa: E402
from .ito import InferenceTimeOptimisation  # noqa: E402
from .ito_nn import ITOFromNearest  # noqa: E402
from .predicted import ITOFromPrediction, PredictedPreset  # noqa: E402

from .cells import METRICS  # noqa: E402
from .runner import EvalResult, evaluate, score  # noqa: E402

__all__ = [
    "Corpus",
    "EvalError",
    "TrackData",
    "TrackSpec",
    "check_vector",
    "load_corpus",
    "load_presets",
    "prepare_track",
    "render_vector",
    "DEFAULT_ALPHAS",
    "DEFAULT_ENCODERS",
    "EvalContext",
    "Method",
    "MethodOptions",
    "Prediction",
    "available_methods",
    "check_encoder",
    "format_alpha",
    "load_plugin",
    "parse_alpha",
    "parse_methods",
    "register_method",
    "Oracle",
    "PriorMean",
    "NearestParameters",
    "NearestEmbedding",
    "InferenceTimeOptimisation",
    "ITOFromNearest",
    "ITOFromPrediction",
    "PredictedPreset",
    "METRICS",
    "EvalResult",
    "evaluate",
    "score",
]
