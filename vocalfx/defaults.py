"""Default settings that ``vocalfx --help`` shows, in a module that imports nothing.

The command line builds its parser from these without loading torch, numpy or numba, so that
``--help`` answers at once. They are the library's defaults: ``vocalfx.matching`` and
``vocalfx.evaluation`` take their constants from here (one place for each number), and
``tests/test_imports.py`` checks that each equals the constant the library uses.
"""

from typing import Tuple

__all__ = [
    "MATCH_ENCODER",
    "MATCH_INIT",
    "MATCH_PREDICTION_WEIGHT",
    "MATCH_STEPS",
    "MATCH_LR",
    "MATCH_ALPHA",
    "SEPARATED_ALPHA",
    "SEPARATED_ENCODER",
    "SEPARATED_INIT",
    "SEPARATED_STEPS",
    "SEPARATED_LR",
    "CHUNK_SECONDS",
    "TARGET_LUFS",
    "FIT_STEPS",
    "FIT_LR",
    "EVAL_ENCODERS",
    "EVAL_ALPHAS",
    "EVAL_ITO_STEPS",
    "EVAL_ITO_LR",
    "SEPARATE_BACKEND",
]

#: ``match``: the encoder of the likelihood and the starting point. The fx encoder from its own
#: predicted preset, 40 steps at lr 0.1, output at the reference's loudness, scores MSS L/R 0.709
#: and MLDR L/R 0.886 on the 16 dev tracks, against 0.776 and 0.896 for MFCC from the prior mean
#: at alpha 0.1 (100 steps at 0.05). These settings were chosen by scoring those same tracks, so
#: the figures are optimistic (docs/results.md, "The full dev table").
MATCH_ENCODER: str = "fx"
MATCH_INIT: str = "predicted"
#: ``match``: how much of the fx head's prediction the start keeps, from the prior mean (0) to the
#: prediction (1): ``start = mean + w (prediction - mean)``. Halfway scores better on the 16 dev
#: tracks (MSS L/R 0.694 / PMSE 7.92 against 0.708 / 8.16) but worse on the out-of-family check
#: (MSS L/R 1.110 against 1.060), so the default keeps the whole prediction (CHANGELOG.md,
#: 2026-12-05; data at commit 5d849a6).
MATCH_PREDICTION_WEIGHT: float = 1.0
#: ``match``: Adam steps and initial learning rate (cosine-decayed to a tenth). From the
#: prediction, 40 steps at 0.1 match 100 steps at 0.05 (MSS L/R 0.703 vs 0.706 on the dev tracks,
#: CHANGELOG.md, 2026-12-02).
MATCH_STEPS: int = 40
MATCH_LR: float = 0.1
#: ``match``: prior weight. 0.1 beats DiffVox's 1 on the 16 dev tracks on MSS L/R, MLDR L/R and
#: PMSE (0.776 / 0.896 / 8.09 against 0.801 / 1.052 / 8.13; docs/guide/evaluation.md).
MATCH_ALPHA: float = 0.1
#: ``vocalfx match --separate``: prior weight when the reference is a vocal isolated from a mix.
#: Its accompaniment residue pulls a weakly regularised match off. On 16 mixtures of held-out
#: voices at 0 dB, separated with spleeter+classical, this configuration (MFCC from the prior
#: mean, alpha 1, 100 steps at 0.05) scores MSS L/R 0.853 against 1.003 for match's own defaults
#: and 0.932 for fx+mfcc at alpha 1, the prior mean 0.875 (docs/results.md, "What separation costs
#: a match").
SEPARATED_ALPHA: float = 1.0
#: ``vocalfx match --separate``: the rest of that configuration. The fx encoder follows the
#: residue further than MFCC statistics do.
SEPARATED_ENCODER: str = "mfcc"
SEPARATED_INIT: str = "mean"
SEPARATED_STEPS: int = 100
SEPARATED_LR: float = 0.05
#: The protocol's chunk length (s) and loudness (LUFS) of matching and evaluation (DiffVox's).
CHUNK_SECONDS: float = 11.0
TARGET_LUFS: float = -18.0
#: ``fit_pair``: Adam steps and initial learning rate.
FIT_STEPS: int = 100
FIT_LR: float = 0.1
#: ``vocalfx eval``: the encoders and prior weights that ``nn-emb``, ``ito`` and ``all`` expand to.
EVAL_ENCODERS: Tuple[str, ...] = ("mfcc", "mir")
EVAL_ALPHAS: Tuple[float, ...] = (0.0, 0.01, 0.1, 1.0)
#: ``vocalfx eval``: the ``ito`` families' Adam steps and learning rate (the published tables in
#: docs/guide/evaluation.md were made with them; ``--ito-steps``/``--ito-lr`` change them). The ``match``
#: row uses ``vocalfx.match``'s own defaults instead.
EVAL_ITO_STEPS: int = 100
EVAL_ITO_LR: float = 0.05
#: Separation backend used when none is named: ``auto`` is ``spleeter+classical`` (the pretrained
#: masks averaged with the classical ones) when the ``separate`` extra is installed, else
#: ``classical`` (no weights, no optional package).
SEPARATE_BACKEND: str = "auto"
