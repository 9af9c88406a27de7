"""Default settings that ``vocalfx --help`` shows, in a module that imports nothing.

The command line builds its parser from these without loading torch, numpy or numba, so that
``--help`` answers at once. They are the library's defaults: ``vocalfx.matching`` and
``vocalfx.evaluation`` take their constants from here (one place for each number), and
``tests/test_imports.py`` checks that each equals the constant the library uses.
"""

from typing import Tuple

__all__ = [
    "MATCH_STEPS",
    "MATCH_LR",
    "MATCH_ALPHA",
    "SEPARATED_ALPHA",
    "CHUNK_SECONDS",
    "TARGET_LUFS",
    "FIT_STEPS",
    "FIT_LR",
    "EVAL_ENCODERS",
    "EVAL_ALPHAS",
    "SEPARATE_BACKEND",
]

#: ``match``: Adam steps and initial learning rate (cosine-decayed to a tenth).
MATCH_STEPS: int = 100
MATCH_LR: float = 0.05
#: ``match``: prior weight. 0.1 beats DiffVox's 1 on the 16 dev tracks on MSS L/R, MLDR L/R and
#: PMSE (0.776 / 0.896 / 8.09 against 0.801 / 1.052 / 8.13; docs/evaluation.md).
MATCH_ALPHA: float = 0.1
#: ``vocalfx match --separate``: prior weight when the reference is a vocal isolated from a mix.
#: Its accompaniment residue pulls a weakly regularised match off: on the 12 s sing_01 mix of
#: tests/test_separate.py, alpha 0.1 ends further from the truth than the prior mean (MSS 0.845 vs
#: 0.837) while alpha 1 improves on it (0.815); docs/separate.md's margins were measured at 1.
SEPARATED_ALPHA: float = 1.0
#: The protocol's chunk length (s) and loudness (LUFS) of matching and evaluation (DiffVox's).
CHUNK_SECONDS: float = 11.0
TARGET_LUFS: float = -18.0
#: ``fit_pair``: Adam steps and initial learning rate.
FIT_STEPS: int = 100
FIT_LR: float = 0.1
#: ``vocalfx eval``: the encoders and prior weights that ``nn-emb``, ``ito`` and ``all`` expand to.
EVAL_ENCODERS: Tuple[str, ...] = ("mfcc", "mir")
EVAL_ALPHAS: Tuple[float, ...] = (0.0, 0.01, 0.1, 1.0)
#: Separation backend used when none is named (needs no weights and no optional package).
SEPARATE_BACKEND: str = "classical"
