"""What a preset does, as curves computed from the chain's own parts.

* EQ magnitude responses: the coefficients the chain filters with
  (:meth:`vocalfx.VocalChain.eq_coeffs` and the reverb's :class:`~vocalfx.fx.ReverbEQ`), evaluated
  with ``scipy.signal.freqz_sos``; nothing is re-derived here.
* The compressor/expander's static curve: :func:`vocalfx.functional.compexp_static_gain_db`, the
  gain computer the chain runs, plus the make-up gain.
* The delay's echoes: the envelope of the chain's own stereo delay response
  (:meth:`vocalfx.fx.PingPongDelay.ir`).
* The reverb's decay: the preset's T60 per band, as :meth:`vocalfx.preset.Preset.to_dict` gives it.

Every function takes a :class:`~vocalfx.preset.Preset` and works at 44.1 kHz, the rate presets
are defined at (the FDN delay lengths are in samples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from ..params import SAMPLE_RATE
from ..preset import Preset

__all__ = [
    "EQResponse",
    "eq_response_db",
    "reverb_eq_response_db",
    "compressor_curve_db",
    "delay_envelope_db",
    "reverb_t60",
    "pan_positions",
    "log_frequencies",
]


@dataclass(frozen=True)
class EQResponse:
    """A cascade's magnitude response.

    Attributes:
        freqs_hz: the frequencies ``(n,)``.
        total_db: the whole cascade ``(n,)`` in dB.
        bands_db: each section's response, by module name (e.g. ``"peak1"``), ``(n,)`` in dB.
    """

    freqs_hz: np.ndarray
    total_db: np.ndarray
    bands_db: Dict[str, np.ndarray]


def log_frequencies(n: int = 600, fmin_hz: float = 20.0, fmax_hz: float = 20000.0) -> np.ndarray:
    """``n`` logarithmically spaced frequencies (Hz) from ``fmin_hz`` to ``fmax_hz``."""
    return np.geomspace(fmin_hz, fmax_hz, n)


def _native(preset: Preset):
    import torch

    return torch.from_numpy(preset.native).double()[None]


def _response(b: np.ndarray, a: np.ndarray, keys: List[str], freqs_hz: np.ndarray) -> EQResponse:
    from scipy.signal import freqz_sos

    sos = np.concatenate([b, a], axis=1)  # (K, 6): b0 b1 b2 a0 a1 a2, as scipy wants
    bands = {}
    for key, row in zip(keys, sos):
        _, h = freqz_sos(row[None], worN=freqs_hz, fs=SAMPLE_RATE)
        bands[key] = 20.0 * np.log10(np.maximum(np.abs(h), 1e-12))
    _, h = freqz_sos(sos, worN=freqs_hz, fs=SAMPLE_RATE)
    return EQResponse(
        freqs_hz=np.asarray(freqs_hz, dtype=float),
        total_db=20.0 * np.log10(np.maximum(np.abs(h), 1e-12)),
        bands_db=bands,
    )


def eq_response_db(preset: Preset, freqs_hz: np.ndarray) -> EQResponse:
    """The main EQ's magnitude response (six biquads: two peaks, two shelves, low- and high-pass).

    Args:
        preset: the preset.
        freqs_hz: frequencies (Hz) to evaluate at, below 22.05 kHz.

    Returns:
        An :class:`EQResponse`; ``bands_db`` keys are the chain's EQ modules (``peak1``, ``peak2``,
        ``low_shelf``, ``high_shelf``, ``lowpass``, ``highpass``).
    """
    from ..render import cached_chain

    chain = cached_chain(SAMPLE_RATE)
    b, a = chain.eq_coeffs(_native(preset))
    return _response(b[0].numpy(), a[0].numpy(), [m.key for m in chain.eq], freqs_hz)


def reverb_eq_response_db(preset: Preset, freqs_hz: np.ndarray) -> EQResponse:
    """The reverb's post-EQ magnitude response (two peaks and two shelves on the FDN's output)."""
    from ..render import cached_chain

    eq = cached_chain(SAMPLE_RATE).reverb.eq
    b, a = eq.coeffs(_native(preset))
    return _response(b[0].numpy(), a[0].numpy(), list(eq.parts), freqs_hz)


def compressor_curve_db(preset: Preset, level_db: np.ndarray) -> np.ndarray:
    """Static output level (dB) of the compressor/expander for a steady detector level ``level_db``.

    ``out = level + g(level) + makeup``, with ``g`` the chain's hard-knee gain computer: above the
    compression threshold the slope is ``1 / comp_ratio``, below the expansion threshold
    ``1 / exp_ratio``, and 1 in between.
    """
    import torch

    from ..functional import compexp_static_gain_db
    from ..render import cached_chain

    v = cached_chain(SAMPLE_RATE).comp.values(_native(preset))
    lv = torch.as_tensor(np.asarray(level_db, dtype=np.float64))[None]
    g = compexp_static_gain_db(
        lv,
        comp_threshold_db=v["comp_threshold_db"],
        comp_ratio=v["comp_ratio"],
        exp_threshold_db=v["exp_threshold_db"],
        exp_ratio=v["exp_ratio"],
    )
    return (lv + g + v["makeup_db"][:, None])[0].numpy()


def delay_envelope_db(preset: Preset, *, frame_ms: float = 5.0, seconds: float = 2.5) -> Tuple[np.ndarray, np.ndarray]:
    """Envelope of the delay's stereo response: the peak of each ``frame_ms`` frame, per channel.

    Returns:
        ``(time_s, level_db)``: frame start times ``(n,)`` and levels ``(2, n)`` (left, right) in
        dB relative to the dry signal, floored at -120 dB; the first ``seconds`` of the response.
    """
    import torch

    from ..render import cached_chain

    with torch.no_grad():
        h = cached_chain(SAMPLE_RATE).delay.ir(_native(preset))[0].numpy()  # (2, L)
    frame = max(1, int(round(frame_ms * 1e-3 * SAMPLE_RATE)))
    n = min(h.shape[1], int(seconds * SAMPLE_RATE)) // frame
    env = np.abs(h[:, : n * frame]).reshape(2, n, frame).max(axis=2)
    return np.arange(n) * frame / SAMPLE_RATE, 20.0 * np.log10(np.maximum(env, 1e-6))


def reverb_t60(preset: Preset) -> Tuple[np.ndarray, np.ndarray]:
    """``(freqs_hz, t60_s)``: the reverb's decay time per band (49 bands), as stored in a preset file."""
    rv = preset.to_dict()["parameters"]["reverb"]
    return np.asarray(rv["decay_freqs_hz"], dtype=float), np.asarray(rv["decay_t60_s"], dtype=float)


def pan_positions(preset: Preset) -> Dict[str, float]:
    """Pan positions (-100 left .. 100 right) of the direct sound and the delay's odd/even echoes."""
    ph = preset.physical
    return {
        "direct": ph["pan.position"],
        "delay odd echoes": ph["delay.odd_pan"],
        "delay even echoes": ph["delay.even_pan"],
    }
