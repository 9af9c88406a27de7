"""HTML reports: one self-contained page for a match, and one for an evaluation run.

* :func:`write_match_report` (and :func:`write_result_report` for a
  :class:`~vocalfx.matching.MatchResult`): the preset in units next to the start, the EQ,
  compressor, delay, reverb and panning figures computed from the chain's own coefficients,
  spectra and levels of the dry, output and reference, the loss curve, audio players, and the
  command and settings (``vocalfx match --report OUT.html``, ``vocalfx report``).
* :func:`write_eval_report`: ``OUT/summary.html`` of a ``vocalfx eval`` run, from its
  ``results.csv`` and ``summary.csv``.

Figures are matplotlib figures drawn without pyplot and embedded as inline SVG; nothing
process-wide is changed. See ``docs/guide/matching.md``.
"""

from .base import ReportError
from .eval_report import write_eval_report
from .match_report import (
    DEFAULT_EXCERPT_SECONDS,
    ReportInfo,
    build_match_report,
    match_start_preset,
    write_match_report,
    write_result_report,
)
from .measure import LevelStats, level_stats

__all__ = [
    "ReportError",
    "ReportInfo",
    "LevelStats",
    "DEFAULT_EXCERPT_SECONDS",
    "build_match_report",
    "write_match_report",
    "write_result_report",
    "match_start_preset",
    "write_eval_report",
    "level_stats",
]
