"""The HTML report of one match: what the preset does, how the audio compares, how the run went.

One self-contained file (inline CSS, SVG figures, audio as base64 FLAC; nothing loaded from
elsewhere), written atomically. For a 44 s match with the default 12 s excerpts it is about
2.5 MB (``docs/guide/matching.md``).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from .. import params as P
from ..defaults import TARGET_LUFS
from ..preset import Preset
from . import plots
from .base import ReportError, check_no_nan, esc, fmt, page, table
from .measure import LevelStats, as_signal, excerpt_flac, level_stats, long_term_spectrum_db, loudest_window

if TYPE_CHECKING:
    import os

    from ..matching import MatchResult

__all__ = [
    "ReportInfo",
    "DEFAULT_EXCERPT_SECONDS",
    "build_match_report",
    "write_match_report",
    "write_result_report",
    "match_start_preset",
]

#: Length (s) of each audio excerpt. Three 12 s excerpts (mono dry, stereo output and reference
#: as 16-bit FLAC, base64) keep a report near 2.5 MB, well under the 5 MB budget.
DEFAULT_EXCERPT_SECONDS = 12.0

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ReportInfo:
    """What was written.

    Attributes:
        path: the HTML file. ``nbytes``: its size. ``figures``: SVG figures in it. ``players``:
        audio players in it. ``levels``: the measured level of each signal (``dry``, ``output``,
        ``reference``).
    """

    path: Path
    nbytes: int
    figures: int
    players: int
    levels: Dict[str, LevelStats]


_GROUPS = [
    ("EQ", ("peak1", "peak2", "low_shelf", "high_shelf", "lowpass", "highpass")),
    ("compressor/expander", ("comp",)),
    ("ping-pong delay", ("delay", "send")),
    ("reverb EQ", ("reverb_eq_peak1", "reverb_eq_peak2", "reverb_eq_low_shelf", "reverb_eq_high_shelf")),
    ("panning", ("pan",)),
]


def _units() -> Dict[str, str]:
    """Display unit of each public parameter name (``"comp.attack_ms"`` -> ``"ms"``), in vector order."""
    keys = list(Preset.default().physical)
    return {k: ("pan" if s.display == "pan" else s.unit) for k, s in zip(keys, P.SPECS)}


def _changed(a: float, b: float) -> bool:
    """Whether the table shows two different numbers (float32 round-off is not a change)."""
    return fmt(a) != fmt(b)


def _row(name: str, value: float, start: Optional[float], unit: str, has_start: bool) -> str:
    changed = start is not None and _changed(value, start)
    delta = fmt(value - start) if changed and math.isfinite(value - start) else ("" if start is not None else "—")
    shown = fmt(start) if has_start else "—"
    cls = ' class="changed"' if changed else ""
    return (
        f"<tr><td>{esc(name)}</td><td{cls}>{fmt(value)}</td><td>{shown}</td>"
        f'<td class="l">{esc(unit)}</td><td>{delta}</td></tr>'
    )


def _reverb_summary(p: Preset) -> Dict[str, "tuple[float, str]"]:
    rv = p.to_dict()["parameters"]["reverb"]
    t60 = np.asarray(rv["decay_t60_s"], dtype=float)
    f = np.asarray(rv["decay_freqs_hz"], dtype=float)
    c = np.asarray(rv["c"], dtype=float)
    rms_c = float(np.sqrt(np.mean(c**2)))
    out = {"reverb.t60_median": (float(np.median(t60)), "s")}
    for target in (0.0, 1000.0, 4000.0, 10000.0):
        k = int(np.argmin(np.abs(f - target)))
        out[f"reverb.t60_at_{f[k]:.0f}_hz"] = (float(t60[k]), "s")
    out["reverb.output_gain_rms_db"] = (20 * math.log10(rms_c) if rms_c > 0 else -math.inf, "dB")
    return out


def preset_table(preset: Preset, start: Optional[Preset], start_label: str) -> str:
    """The preset's parameters in display units (Hz, dB, ms, ratio, pan, T60) next to the start."""
    units = _units()
    mine = preset.physical
    theirs = start.physical if start is not None else {}
    has = start is not None
    rows: List[str] = []
    for title, modules in _GROUPS:
        rows.append(f'<tr class="group"><td colspan="5">{esc(title)}</td></tr>')
        rows += [_row(k, v, theirs.get(k), units[k], has) for k, v in mine.items() if k.split(".", 1)[0] in modules]
    rows.append('<tr class="group"><td colspan="5">reverb (FDN; every band in the T60 figure)</td></tr>')
    rs = _reverb_summary(start) if has else {}
    rows += [_row(k, v, rs[k][0] if has else None, u, has) for k, (v, u) in _reverb_summary(preset).items()]
    head = ["parameter", "matched", f"start ({start_label or 'not given'})", "unit", "change"]
    return (
        '<table class="preset"><thead><tr>'
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _all_values(preset: Preset, start: Optional[Preset]) -> str:
    units = _units()
    theirs = start.physical if start is not None else {}
    rows = [[esc(k), fmt(v, 6), fmt(theirs.get(k), 6), esc(units[k])] for k, v in preset.physical.items()]
    return (
        "<details><summary>all 130 parameters (display units)</summary>"
        + table(["parameter", "matched", "start", "unit"], rows)
        + "</details>"
    )


def _levels_table(levels: Mapping[str, LevelStats], sources: Mapping[str, str]) -> str:
    rows = [
        [
            esc(n),
            fmt(s.lufs, 3),
            fmt(s.lra_lu, 3),
            fmt(s.peak_dbfs, 3),
            fmt(s.seconds, 4),
            str(s.channels),
            f'<span class="l">{esc(sources.get(n, ""))}</span>',
        ]
        for n, s in levels.items()
    ]
    head = [
        "signal",
        "integrated loudness (LUFS)",
        "loudness range (LU)",
        "sample peak (dBFS)",
        "duration (s)",
        "channels",
        "source",
    ]
    return table(head, rows)


def _players(excerpts: Mapping[str, Any], notes: Mapping[str, str]) -> str:
    out = ['<div class="players">']
    for name, ex in excerpts.items():
        out.append(
            f'<div class="player"><b>{esc(name)}</b> <small>{ex.start_s:.1f}–{ex.stop_s:.1f} s, played at '
            f"{fmt(ex.lufs, 3)} LUFS (gain {fmt(ex.gain_db, 3)} dB){esc(notes.get(name, ''))}</small>"
            f'<audio controls preload="metadata" data-name="{esc(name)}" src="{ex.data_uri}"></audio></div>'
        )
    out.append("</div>")
    return "".join(out)


def _as_mapping(stats: Any) -> Dict[str, Any]:
    if stats is None:
        return {}
    if hasattr(stats, "to_dict"):
        return dict(stats.to_dict())
    if isinstance(stats, Mapping):
        return dict(stats)
    raise ReportError(f"stats: expected a MatchStats or a mapping, got {type(stats).__name__}")


def _kv_table(d: Mapping[str, Any]) -> str:
    rows = []
    for k, v in d.items():
        if isinstance(v, (list, tuple, dict)):
            v = f"{len(v)} item(s)" if not isinstance(v, dict) else ", ".join(f"{a}={b}" for a, b in v.items())
        rows.append([esc(k), f'<span class="l">{fmt(v)}</span>'])
    return table(["setting", "value"], rows, cls="kv")


def _run_summary(rep: Mapping[str, Any]) -> str:
    if not rep:
        return "<p>No run statistics were given.</p>"
    parts = []
    if "initial_loss" in rep and "loss" in rep:
        parts.append(
            f"loss {fmt(rep['initial_loss'], 6)} → {fmt(rep['loss'], 6)} "
            f"(best at step {fmt(rep.get('best_step'))} of {fmt(rep.get('steps'))})"
        )
    if "sigma_mid_deg" in rep:
        parts.append(
            f"RMS embedding angle to the reference: mid {fmt(rep.get('initial_sigma_mid_deg'), 3)} → "
            f"{fmt(rep['sigma_mid_deg'], 3)}°, "
            f"side {fmt(rep.get('initial_sigma_side_deg'), 3)} → {fmt(rep.get('sigma_side_deg'), 3)}°"
        )
    if "encoder" in rep:
        parts.append(
            f"encoder {esc(rep['encoder'])}, alpha {fmt(rep.get('alpha'))}, start: {esc(rep.get('init', '?'))}, "
            f"{fmt(rep.get('seconds'), 3)} s"
        )
    return "<ul>" + "".join(f"<li>{p}</li>" for p in parts) + "</ul>"


def build_match_report(
    *,
    preset: Preset,
    dry: Any,
    reference: Any,
    sample_rate: int = P.SAMPLE_RATE,
    output: Any = None,
    start_preset: Optional[Preset] = None,
    start_label: str = "",
    history: Sequence[Mapping[str, float]] = (),
    stats: Any = None,
    command: str = "",
    settings: Optional[Mapping[str, Any]] = None,
    title: str = "",
    excerpt_seconds: float = DEFAULT_EXCERPT_SECONDS,
    names: Optional[Mapping[str, str]] = None,
) -> "tuple[str, Dict[str, LevelStats]]":
    """The report's HTML text and the measured levels (see :func:`write_match_report`)."""
    if not isinstance(preset, Preset):
        raise ReportError(f"preset: expected a vocalfx Preset, got {type(preset).__name__}")
    if start_preset is not None and not isinstance(start_preset, Preset):
        raise ReportError(f"start_preset: expected a vocalfx Preset, got {type(start_preset).__name__}")
    if not (excerpt_seconds > 0 and math.isfinite(excerpt_seconds)):
        raise ReportError(f"excerpt_seconds must be a positive number of seconds, got {excerpt_seconds!r}")
    if int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 384000:
        raise ReportError(f"sample_rate must be an integer between 8000 and 384000 Hz, got {sample_rate!r}")
    sr = int(sample_rate)
    names = dict(names or {})
    sig = {"dry": as_signal(dry, names.get("dry", "the dry audio"))}
    rendered_here = output is None
    if rendered_here:
        sig["output"] = _render(preset, sig["dry"], sr, names.get("dry", "the dry audio"))
    else:
        sig["output"] = as_signal(output, names.get("output", "the output audio"))
    sig["reference"] = as_signal(reference, names.get("reference", "the reference audio"))
    levels = {k: level_stats(x, sr, names.get(k, f"the {k} audio")) for k, x in sig.items()}
    for k, s in levels.items():
        if not math.isfinite(s.lufs):
            raise ReportError(
                f"{names.get(k, 'the ' + k + ' audio')}: silent (no 400 ms block above the -70 LUFS gate)"
            )

    spectra = {k: long_term_spectrum_db(x * 10 ** ((TARGET_LUFS - levels[k].lufs) / 20), sr) for k, x in sig.items()}
    d0, d1 = loudest_window(sig["dry"], sr, excerpt_seconds)
    r0, r1 = loudest_window(sig["reference"], sr, excerpt_seconds)
    o1 = min(d1, sig["output"].shape[1])
    excerpts = {
        "dry": excerpt_flac(sig["dry"], sr, d0, d1, target_lufs=TARGET_LUFS),
        "output": excerpt_flac(sig["output"], sr, d0, o1, target_lufs=TARGET_LUFS),
        "reference": excerpt_flac(sig["reference"], sr, r0, r1, target_lufs=TARGET_LUFS),
    }
    rep = _as_mapping(stats)
    best = rep.get("best_step")
    figures = [
        plots.spectrum_figure(spectra, f"each signal at {TARGET_LUFS:g} LUFS, so the curves compare tone, not level."),
        plots.eq_figure(preset, start_preset),
        plots.compressor_figure(preset, start_preset),
        plots.reverb_eq_figure(preset, start_preset),
        plots.delay_figure(preset, start_preset),
        plots.reverb_t60_figure(preset, start_preset),
        plots.pan_figure(preset, start_preset),
        plots.loss_figure(list(history or []), best if isinstance(best, int) else None),
    ]
    label = start_label or ("start" if start_preset is not None else "")
    src = {k: names.get(k, k) for k in sig}
    if rendered_here and "output" not in names:
        src["output"] = f"the dry at {TARGET_LUFS:g} LUFS through the preset (rendered for the report)"
    subtitle = (
        f"{esc(src['dry'])} matched to {esc(src['reference'])} · preset “{esc(preset.name or '(unnamed)')}” · "
        f"made {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} by vocalfx {_version()}"
    )
    body = [
        "<h2>Run</h2>",
        _run_summary(rep),
        "<h2>Listen</h2>",
        f"<p>Excerpts of {excerpt_seconds:g} s (the dry's most energetic stretch, the same stretch of the output, "
        f"and the reference's own), each brought to {TARGET_LUFS:g} LUFS so that they compare at one loudness "
        "(quieter if that would clip). The levels as produced are in the table below.</p>",
        _players(excerpts, {"output": "; rendered here from the dry at -18 LUFS" if rendered_here else ""}),
        "<h2>Levels</h2>",
        _levels_table(levels, src),
        "<h2>Figures</h2>",
        '<div class="grid">' + "".join(figures) + "</div>",
        "<h2>Preset</h2>",
        f"<p>Matched preset next to the starting preset ({esc(label or 'not given')}); changed values in blue. "
        "The preset expects a dry vocal at -18 LUFS.</p>",
        preset_table(preset, start_preset, label),
        _all_values(preset, start_preset),
        "<h2>Command and settings</h2>",
        f"<pre>{esc(command or '(not recorded)')}</pre>",
    ]
    if settings:
        body.append("<h3>settings</h3>" + _kv_table(settings))
    if rep:
        body.append("<details><summary>the run's statistics (all fields)</summary>" + _kv_table(rep) + "</details>")
    text = page(title or f"vocalfx match report: {preset.name or 'match'}", "\n".join(body), subtitle=subtitle)
    return text, levels


def _version() -> str:
    from .._version import __version__

    return __version__


def _render(preset: Preset, dry: np.ndarray, sample_rate: int, name: str) -> np.ndarray:
    """The output a match writes: the dry at the preset's input level (-18 LUFS) through the preset."""
    import torch

    from ..io import loudness_normalize
    from ..render import render

    if dry.shape[0] != 1:
        raise ReportError(f"{name}: {dry.shape[0]} channels; give a mono dry vocal, or the output audio")
    x = torch.from_numpy(dry).float()
    lufs = float((preset.extra.get("match") or {}).get("input_lufs", TARGET_LUFS))
    try:
        x, _ = loudness_normalize(x, sample_rate, lufs)
    except ValueError as e:
        raise ReportError(f"{name}: {e}") from None
    return render(x, preset, sample_rate).double().numpy()


def write_match_report(
    path: PathLike,
    *,
    preset: Preset,
    dry: Any,
    reference: Any,
    sample_rate: int = P.SAMPLE_RATE,
    output: Any = None,
    start_preset: Optional[Preset] = None,
    start_label: str = "",
    history: Sequence[Mapping[str, float]] = (),
    stats: Any = None,
    command: str = "",
    settings: Optional[Mapping[str, Any]] = None,
    title: str = "",
    excerpt_seconds: float = DEFAULT_EXCERPT_SECONDS,
    names: Optional[Mapping[str, str]] = None,
    inputs: Iterable[PathLike] = (),
) -> ReportInfo:
    """Write the HTML report of a match: one self-contained file.

    It shows the preset as a table in units next to the starting preset; the main and reverb EQ
    responses, the compressor/expander's static curve, the delay's echoes, the reverb's T60 per
    band and the panning (all computed from the chain's own coefficients and gain computer);
    long-term average spectra, integrated loudness, loudness range and sample peak of the dry,
    output and reference; the loss curve; three audio players (excerpts as base64 16-bit FLAC);
    and the command and settings.

    Args:
        path: the ``.html`` file to write (atomically; its directory must exist).
        preset: the matched preset.
        dry: the dry vocal ``(channels, time)`` (mono, as :func:`vocalfx.io.load_audio` reads it)
            at ``sample_rate``, at its own level.
        reference: the reference vocal ``(channels, time)`` at ``sample_rate``.
        sample_rate: Hz of every signal (default 44100).
        output: the processed vocal ``(channels, time)`` (e.g. ``MatchResult.audio``). ``None``:
            render it here from the dry at -18 LUFS through ``preset``, as ``vocalfx match`` does.
        start_preset: where the optimisation started (e.g. the prior mean), shown next to the
            result; ``None`` leaves that column empty. ``start_label``: what to call it.
        history: ``MatchResult.history`` (dicts with ``step``, ``loss``, ``nll``, ...).
        stats: ``MatchResult.stats`` (or its ``to_dict()``).
        command: the command line that made the match. ``settings``: named settings to list.
        title: page title (default: from the preset's name).
        excerpt_seconds: length of each audio excerpt (s), default :data:`DEFAULT_EXCERPT_SECONDS`.
        names: what to call each signal in the page and in errors, e.g. its file
            (``{"dry": "dry.wav", "reference": ..., "output": ...}``).
        inputs: files the run read; writing over one of them is refused.

    Returns:
        A :class:`ReportInfo` (path, size, counts of figures and players, levels).

    Raises:
        ReportError: a signal of the wrong shape, with NaN/Inf, silent or shorter than 0.4 s; a
            preset that is not a :class:`~vocalfx.preset.Preset`.
        AudioError: ``path`` is an input file, a directory, or in a missing directory.

    Example:
        >>> res = vocalfx.match("dry.wav", "ref.wav")                              # doctest: +SKIP
        >>> write_match_report("report.html", preset=res.preset, dry=load_audio("dry.wav"),
        ...     reference=load_audio("ref.wav", mono=False), output=res.audio,
        ...     history=res.history, stats=res.stats)                          # doctest: +SKIP
    """
    from ..io import atomic_write_text, check_output_path

    inputs = list(inputs)
    check_output_path(path, inputs)
    text, levels = build_match_report(
        preset=preset,
        dry=dry,
        reference=reference,
        sample_rate=sample_rate,
        output=output,
        start_preset=start_preset,
        start_label=start_label,
        history=history,
        stats=stats,
        command=command,
        settings=settings,
        title=title,
        excerpt_seconds=excerpt_seconds,
        names=names,
    )
    check_no_nan(text, str(path))
    atomic_write_text(path, text, inputs=inputs)
    return ReportInfo(
        path=Path(path),
        nbytes=len(text.encode("utf-8")),
        figures=text.count("<figure"),
        players=text.count("<audio"),
        levels=levels,
    )


def write_result_report(
    path: PathLike,
    result: "MatchResult",
    *,
    dry: Any,
    reference: Any,
    start_preset: Optional[Preset] = None,
    start_label: str = "",
    command: str = "",
    settings: Optional[Mapping[str, Any]] = None,
    names: Optional[Mapping[str, str]] = None,
    inputs: Iterable[PathLike] = (),
    excerpt_seconds: float = DEFAULT_EXCERPT_SECONDS,
) -> ReportInfo:
    """:func:`write_match_report` for a :class:`~vocalfx.matching.MatchResult` (its preset, audio,
    history and report); ``dry`` and ``reference`` ``(channels, time)`` at ``result.sample_rate``."""
    return write_match_report(
        path,
        preset=result.preset,
        dry=dry,
        reference=reference,
        sample_rate=result.sample_rate,
        output=result.audio,
        start_preset=start_preset,
        start_label=start_label or (result.stats.init if start_preset is not None else ""),
        history=result.history,
        stats=result.stats,
        command=command,
        settings=settings,
        names=names,
        inputs=inputs,
        excerpt_seconds=excerpt_seconds,
    )


def match_start_preset(init: Any, prior: Any = None, *, name: str = "start") -> Optional[Preset]:
    """Where :func:`vocalfx.match` started for its ``init`` and ``prior`` arguments, as a preset.

    Args:
        init: ``match``'s ``init``: ``None``/``"mean"`` (the prior's mean), a preset or raw vector.
        prior: ``match``'s ``prior`` (``None``: the shipped prior).
        name: the returned preset's name.

    Returns:
        The starting preset, or ``None`` for ``init="predicted"`` (the predicted start depends on
        the audio and the result does not keep it).
    """
    from ..matching.start import PREDICTED, start_vector

    if isinstance(init, str) and init == PREDICTED:
        return None
    if prior is None:
        from ..prior import GaussianPrior

        prior = GaussianPrior.default()
    try:
        vector, _ = start_vector(init, prior)
    except ValueError as e:
        raise ReportError(f"init: {e}") from None
    return Preset(vector, name=name)
