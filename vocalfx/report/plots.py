"""The figures of a match report, each as an HTML ``<figure>`` with an inline SVG (matplotlib).

Each function draws the matched preset (blue) against the starting preset (orange, dashed) where
there is one, and returns the block; none of them touches pyplot or global matplotlib state.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..preset import Preset
from . import curves
from .base import PALETTE, figure_block, label, legend, message_block, new_figure

__all__ = [
    "eq_figure",
    "reverb_eq_figure",
    "compressor_figure",
    "delay_figure",
    "reverb_t60_figure",
    "pan_figure",
    "spectrum_figure",
    "loss_figure",
]

_BAND_TITLES = {
    "peak1": "peak 1",
    "peak2": "peak 2",
    "low_shelf": "low shelf",
    "high_shelf": "high shelf",
    "lowpass": "low-pass",
    "highpass": "high-pass",
    "reverb_eq_peak1": "peak 1",
    "reverb_eq_peak2": "peak 2",
    "reverb_eq_low_shelf": "low shelf",
    "reverb_eq_high_shelf": "high shelf",
}


def _freq_axis(ax) -> None:
    ax.set_xscale("log")
    ax.set_xlim(20, 20000)
    ax.set_xticks([20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000])
    ax.set_xticklabels(["20", "50", "100", "200", "500", "1k", "2k", "5k", "10k", "20k"])


def _eq(key: str, title: str, response, preset: Preset, start: Optional[Preset], caption: str) -> str:
    freqs = curves.log_frequencies()
    r = response(preset, freqs)
    fig, (ax,) = new_figure()
    for i, (band, db) in enumerate(r.bands_db.items()):
        ax.plot(freqs, db, color=PALETTE[3 + i % 5], linewidth=0.8, alpha=0.55, label=_BAND_TITLES.get(band, band))
    if start is not None:
        ax.plot(freqs, response(start, freqs).total_db, color=PALETTE[1], linestyle="--", linewidth=1.4, label="start")
    ax.plot(freqs, r.total_db, color=PALETTE[0], linewidth=2.0, label="matched")
    _freq_axis(ax)
    lo = min(-12.0, float(np.min(r.total_db[(freqs > 40) & (freqs < 16000)])) - 3)
    hi = max(12.0, float(np.max(r.total_db)) + 3)
    ax.set_ylim(max(lo, -40.0), min(hi, 40.0))
    label(ax, "frequency (Hz)", "gain (dB)", title)
    legend(ax, ncols=2, loc="lower center")
    return figure_block(fig, key, caption)


def eq_figure(preset: Preset, start: Optional[Preset] = None) -> str:
    """The main EQ's magnitude response, with each band's own response thin."""
    return _eq(
        "eq",
        "EQ magnitude response",
        curves.eq_response_db,
        preset,
        start,
        "Main EQ: the chain's six biquads (thin: each band; thick: the cascade), "
        "from the coefficients the chain filters with.",
    )


def reverb_eq_figure(preset: Preset, start: Optional[Preset] = None) -> str:
    """The reverb's post-EQ magnitude response."""
    return _eq(
        "reverb-eq",
        "Reverb EQ magnitude response",
        curves.reverb_eq_response_db,
        preset,
        start,
        "The EQ on the reverb's output (two peaks, two shelves); it shapes only the reverberant sound.",
    )


def compressor_figure(preset: Preset, start: Optional[Preset] = None) -> str:
    """Static input/output curve of the compressor/expander."""
    level = np.linspace(-90.0, 0.0, 361)
    fig, (ax,) = new_figure()
    ax.plot(level, level, color="#999999", linewidth=0.8, linestyle=":", label="1:1")
    if start is not None:
        ax.plot(
            level,
            curves.compressor_curve_db(start, level),
            color=PALETTE[1],
            linestyle="--",
            linewidth=1.4,
            label="start",
        )
    ax.plot(level, curves.compressor_curve_db(preset, level), color=PALETTE[0], linewidth=2.0, label="matched")
    ph = preset.physical
    ax.axvline(ph["comp.comp_threshold_db"], color=PALETTE[0], linewidth=0.6, alpha=0.6)
    ax.axvline(ph["comp.exp_threshold_db"], color=PALETTE[0], linewidth=0.6, alpha=0.6, linestyle="-.")
    ax.set_xlim(-90, 0)
    ax.set_ylim(-110, 12)
    label(ax, "detector level in (dB, RMS)", "level out (dB)", "Compressor/expander static curve")
    legend(ax, loc="upper left")
    cap = (
        f"Steady-state level in vs out (the chain's gain computer plus make-up). Compression above "
        f"{ph['comp.comp_threshold_db']:.1f} dB at {ph['comp.comp_ratio']:.2f}:1, expansion below "
        f"{ph['comp.exp_threshold_db']:.1f} dB (slope {1 / ph['comp.exp_ratio']:.2f}), "
        f"make-up {ph['comp.makeup_db']:+.1f} dB."
    )
    return figure_block(fig, "compressor", cap)


def delay_figure(preset: Preset, start: Optional[Preset] = None) -> str:
    """The delay's echoes, left and right, as the envelope of the chain's delay response."""
    t, env = curves.delay_envelope_db(preset)
    fig, (ax,) = new_figure()
    if start is not None:
        ts, es = curves.delay_envelope_db(start)
        ax.plot(ts, es.max(axis=0), color=PALETTE[1], linestyle="--", linewidth=1.0, label="start (louder channel)")
    ax.plot(t, env[0], color=PALETTE[0], linewidth=1.3, label="matched, left")
    ax.plot(t, env[1], color=PALETTE[5], linewidth=1.0, alpha=0.8, label="matched, right")
    top = float(env.max())
    ax.set_ylim(max(-90.0, top - 70.0), top + 6.0)
    ax.set_xlim(0, t[-1] if len(t) else 1.0)
    ph = preset.physical
    label(ax, "time after the dry sound (s)", "echo level (dB re dry)", "Ping-pong delay")
    legend(ax, loc="upper right")
    cap = (
        f"Echo envelope (5 ms peaks) of the chain's delay response: {ph['delay.delay_ms']:.0f} ms, feedback "
        f"{ph['delay.feedback']:.2f}, level {20 * math.log10(max(ph['delay.gain'], 1e-12)):.1f} dB, low-pass "
        f"{ph['delay.lowpass_freq_hz']:.0f} Hz; odd echoes at pan {ph['delay.odd_pan']:+.0f}, "
        f"even at {ph['delay.even_pan']:+.0f}."
    )
    return figure_block(fig, "delay", cap)


def reverb_t60_figure(preset: Preset, start: Optional[Preset] = None) -> str:
    """Reverberation time per band."""
    f, t60 = curves.reverb_t60(preset)
    fig, (ax,) = new_figure()
    if start is not None:
        ax.plot(
            f / 1000,
            curves.reverb_t60(start)[1],
            color=PALETTE[1],
            linestyle="--",
            linewidth=1.4,
            marker=".",
            markersize=3,
            label="start",
        )
    ax.plot(f / 1000, t60, color=PALETTE[0], linewidth=2.0, marker=".", markersize=4, label="matched")
    ax.set_xlim(0, f[-1] / 1000)
    ax.set_ylim(
        0,
        max(
            1.0,
            float(np.max(t60)) * 1.15,
            float(np.max(curves.reverb_t60(start)[1])) * 1.15 if start is not None else 0,
        ),
    )
    label(ax, "frequency (kHz)", "T60 (s)", "Reverb decay time per band")
    legend(ax, loc="upper right")
    ph = preset.physical
    cap = (
        f"Time for the FDN reverb to decay by 60 dB, in each of its 49 bands (median {np.median(t60):.2f} s). "
        f"Delay-to-reverb send {ph['send.delay_to_reverb']:.3f}."
    )
    return figure_block(fig, "reverb-t60", cap)


def pan_figure(preset: Preset, start: Optional[Preset] = None) -> str:
    """Where the direct sound and the delay's echoes sit between left and right."""
    pos = curves.pan_positions(preset)
    names = list(pos)
    fig, (ax,) = new_figure(6.4, 2.2)
    y = np.arange(len(names))[::-1]
    if start is not None:
        sp = curves.pan_positions(start)
        ax.scatter(
            [sp[n] for n in names],
            y,
            s=70,
            facecolors="none",
            edgecolors=PALETTE[1],
            linewidths=1.5,
            label="start",
            zorder=3,
        )
    ax.scatter([pos[n] for n in names], y, s=45, color=PALETTE[0], label="matched", zorder=4)
    ax.axvline(0, color="#999999", linewidth=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(names)
    ax.set_xlim(-105, 105)
    ax.set_ylim(-0.7, len(names) - 0.3)
    ax.set_xticks([-100, -50, 0, 50, 100])
    ax.set_xticklabels(["L 100", "L 50", "centre", "R 50", "R 100"])
    label(ax, "pan position", "", "Panning")
    legend(ax, loc="lower right", ncols=2)
    cap = "Pan positions (constant-power law): the direct sound and the delay's odd and even echoes."
    return figure_block(fig, "pan", cap)


def spectrum_figure(spectra: Mapping[str, Tuple[np.ndarray, np.ndarray]], note: str) -> str:
    """Long-term average spectra, one line per signal (``{"dry": (freqs_hz, level_db), ...}``)."""
    fig, (ax,) = new_figure()
    colours = {"dry": PALETTE[1], "output": PALETTE[0], "reference": PALETTE[2]}
    tops = []
    for i, (name, (f, db)) in enumerate(spectra.items()):
        ax.plot(
            f,
            db,
            color=colours.get(name, PALETTE[(3 + i) % len(PALETTE)]),
            linewidth=1.8 if name == "output" else 1.3,
            label=name,
        )
        tops.append(float(np.max(db)))
    _freq_axis(ax)
    top = max(tops) if tops else 0.0
    ax.set_ylim(top - 90, top + 5)
    label(ax, "frequency (Hz)", "power spectral density (dB)", "Long-term average spectrum")
    legend(ax, loc="lower left")
    return figure_block(fig, "ltas", f"Welch spectrum, channels averaged, 1/6-octave smoothing; {note}")


def loss_figure(history: Sequence[Mapping[str, float]], best_step: Optional[int] = None) -> str:
    """The optimisation's loss per step (and its likelihood term), from ``MatchResult.history``."""
    rows = [h for h in history if isinstance(h, Mapping) and "step" in h]
    pts: Dict[str, Tuple[list, list]] = {"loss": ([], []), "nll": ([], [])}
    for h in rows:
        for k in pts:
            v = h.get(k)
            if isinstance(v, (int, float)) and math.isfinite(v):
                pts[k][0].append(h["step"])
                pts[k][1].append(float(v))
    if not pts["loss"][0]:
        return message_block("loss", "Loss curve", "no optimisation history was given (steps 0, or not recorded)")
    fig, axes = new_figure(ncols=2 if pts["nll"][0] else 1)
    marker = "." if len(pts["loss"][0]) < 40 else None
    axes[0].plot(*pts["loss"], color=PALETTE[0], linewidth=1.8, marker=marker)
    label(axes[0], "Adam step", "loss", "MAP loss")
    if pts["nll"][0]:
        axes[1].plot(*pts["nll"], color=PALETTE[2], linewidth=1.5, marker=marker)
        label(axes[1], "Adam step", "−log p(y|θ)", "Embedding term")
    if best_step is not None and best_step > 0:
        for ax in axes:
            ax.axvline(best_step, color=PALETTE[5], linewidth=0.9, linestyle=":", label=f"best step {best_step}")
        legend(axes[0], loc="upper right")
    undone = len(rows) - len(pts["loss"][0])
    cap = (
        f"{len(rows)} steps"
        + (f" ({undone} non-finite steps undone, not drawn)" if undone else "")
        + "; the returned preset is the best step's (step 0: the start)."
    )
    return figure_block(fig, "loss", cap)
