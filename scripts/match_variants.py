"""``vocalfx eval`` plugin: the ``match`` row with some of ``vocalfx.match``'s settings changed.

    vocalfx eval --corpus ../shared/corpus/dev --out OUT --plugin scripts/match_variants.py \\
        --methods match-with:encoder=fx+mfcc match-with:alpha=0.3 match-with:lossy_reference=true

A method spec ``match-with:KEY=VALUE[:KEY=VALUE...]`` runs :func:`vocalfx.match` exactly as the
``match`` row does (its defaults, the reference brought to -18 LUFS, the output at the
reference's loudness) with these keyword arguments changed. Keys: ``encoder``, ``alpha``,
``steps``, ``lr``, ``init`` (``predicted`` or ``mean``), ``space``, ``prediction_weight``, ``lossy_reference``
(``true``/``false``: the ``fx`` weights for a lossy reference, or not, instead of deciding from the
audio) and ``weights`` (an ``fx`` weights file used instead of the shipped ones, for the start and
the objective; the row is named by the file's name, its cells record the file's SHA-256). The row
is named ``match-with-KEY=VALUE-...``; its cells record the settings.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Dict, List, Sequence

from vocalfx.evaluation import Method, Prediction, register_method
from vocalfx.evaluation.corpus import EvalError

_TYPES = {
    "encoder": str,
    "alpha": float,
    "steps": int,
    "lr": float,
    "init": str,
    "space": str,
    "prediction_weight": float,
    "lossy_reference": lambda v: {"true": True, "false": False}[v.lower()],
    "weights": str,
}


@register_method("match-with")
class MatchWith(Method):
    """``vocalfx.match`` with its defaults except the given settings."""

    in_all = False

    def __init__(self, settings: Dict[str, Any]) -> None:
        self.settings = settings

    @classmethod
    def expand(cls, args: Sequence[str], options: Any) -> List[Method]:
        settings: Dict[str, Any] = {}
        for arg in args:
            key, _, value = arg.partition("=")
            if key not in _TYPES or not value:
                raise EvalError(f"match-with: expected KEY=VALUE with KEY in {', '.join(_TYPES)}, got {arg!r}")
            try:
                settings[key] = _TYPES[key](value)
            except (ValueError, KeyError):
                raise EvalError(f"match-with: bad value for {key}: {value!r}") from None
        if not settings:
            raise EvalError("match-with needs at least one KEY=VALUE (plain 'match' is the defaults)")
        return [cls(settings)]

    @property
    def name(self) -> str:
        return "match-with-" + "-".join(
            f"{k}={Path(v).name if k == 'weights' else v}" for k, v in self.settings.items()
        )

    @property
    def spec(self) -> str:
        return "match-with:" + ":".join(f"{k}={v}" for k, v in self.settings.items())

    def config(self, context: Any) -> Dict[str, Any]:
        config = {
            "method": self.name,
            "settings": {k: str(v) for k, v in self.settings.items()},
            "prior": context.prior_id(),
        }
        if "weights" in self.settings:
            path = Path(self.settings["weights"])
            if not path.is_file():
                raise EvalError(f"match-with: weights file {str(path)!r} does not exist")
            config["weights_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        return config

    def predict(self, track: Any, context: Any) -> Prediction:
        from vocalfx.matching import MatchError, match

        n_in, _, length = track.input.shape
        dry = track.input.permute(1, 0, 2).reshape(1, n_in * length)
        reference = track.reference.permute(1, 0, 2).reshape(2, -1)
        settings = dict(self.settings)
        if "weights" in settings:
            settings["encoder_options"] = {"weights": settings.pop("weights")}
        try:
            res = match(
                dry,
                reference,
                track.sample_rate,
                prior=context.prior(),
                chunk_seconds=track.chunk_seconds,
                progress=False,
                name=f"{track.name}-{self.name}",
                **settings,
            )
        except MatchError as e:
            raise EvalError(f"{track.name}: {self.name}: {e}") from None
        report = res.report.to_dict()
        report["recoveries"] = len(report.get("recoveries") or [])
        return Prediction(res.preset.vector, report)
