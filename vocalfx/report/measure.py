"""Measurements a report shows of audio: loudness, loudness range, peak, long-term spectrum, excerpts.

All functions take one signal as ``(channels, time)`` (a tensor or array, as a file holds it)
at ``sample_rate`` Hz. Loudness is ITU-R BS.1770 integrated loudness through
:func:`vocalfx.io.integrated_loudness`; the loudness range is EBU Tech 3342's (pyloudnorm's
``Meter.loudness_range``).
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np

from .base import ReportError

__all__ = [
    "LevelStats",
    "Excerpt",
    "as_signal",
    "level_stats",
    "peak_dbfs",
    "loudness_range_lu",
    "long_term_spectrum_db",
    "loudest_window",
    "excerpt_flac",
]


@dataclass(frozen=True)
class LevelStats:
    """Level of one signal.

    Attributes:
        lufs: integrated loudness (LUFS, BS.1770; ``-inf`` if no block passes the gate).
        lra_lu: loudness range (LU, EBU Tech 3342); NaN for audio under 3 s or too quiet.
        peak_dbfs: sample peak (dB relative to full scale 1.0).
        seconds: duration (s).
        channels: channel count.
    """

    lufs: float
    lra_lu: float
    peak_dbfs: float
    seconds: float
    channels: int


@dataclass(frozen=True)
class Excerpt:
    """An excerpt encoded for an ``<audio>`` player.

    Attributes:
        data_uri: ``data:audio/flac;base64,...`` (16-bit FLAC).
        start_s, stop_s: where in the signal the excerpt lies (s).
        gain_db: gain applied before encoding (to bring it to the playback level).
        lufs: integrated loudness of the excerpt as encoded (LUFS).
        nbytes: size of the FLAC data (bytes, before base64).
    """

    data_uri: str
    start_s: float
    stop_s: float
    gain_db: float
    lufs: float
    nbytes: int


def as_signal(audio: Any, name: str) -> np.ndarray:
    """``audio`` as a float64 ``(channels, time)`` array, checked.

    Args:
        audio: a tensor or array ``(channels, time)`` with 1 to 5 channels.
        name: what to call it in an error (e.g. ``"the output audio"``).

    Raises:
        ReportError: another rank, no samples, more than 5 channels, NaN or Inf samples.
    """
    if hasattr(audio, "detach"):
        audio = audio.detach().cpu().double().numpy()
    try:
        x = np.asarray(audio, dtype=np.float64)
    except (TypeError, ValueError):
        raise ReportError(f"{name}: expected an audio array (channels, time), got {type(audio).__name__}") from None
    if x.ndim != 2:
        raise ReportError(f"{name}: expected (channels, time), got shape {tuple(x.shape)}")
    if not 1 <= x.shape[0] <= 5 or x.shape[1] == 0:
        raise ReportError(f"{name}: expected 1 to 5 channels and some samples, got shape {tuple(x.shape)}")
    if not np.isfinite(x).all():
        raise ReportError(f"{name}: contains NaN or Inf samples")
    return x


def peak_dbfs(x: np.ndarray) -> float:
    """Sample peak of ``(channels, time)`` in dBFS (``-inf`` for digital silence)."""
    peak = float(np.abs(x).max()) if x.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def loudness_range_lu(x: np.ndarray, sample_rate: int) -> float:
    """Loudness range (LU) of ``(channels, time)``: EBU Tech 3342 through pyloudnorm.

    Short-term (3 s) loudness at about 10 Hz, gated at -70 LUFS and 20 LU below the mean; the
    range is the 95th minus the 10th percentile. NaN when it is undefined (under 3 s, too quiet)
    or the installed pyloudnorm is older than 0.2 (which added ``loudness_range``).
    """
    import pyloudnorm

    meter = pyloudnorm.Meter(int(sample_rate))
    if not hasattr(meter, "loudness_range") or x.shape[1] < 3 * sample_rate:
        return math.nan
    try:
        with np.errstate(divide="ignore", invalid="ignore"):
            lra = float(meter.loudness_range(np.ascontiguousarray(x.T)))
    except ValueError:
        return math.nan
    return lra if math.isfinite(lra) else math.nan


def level_stats(audio: Any, sample_rate: int, name: str = "audio") -> LevelStats:
    """Integrated loudness, loudness range and sample peak of one signal.

    Args:
        audio: ``(channels, time)`` at ``sample_rate`` Hz.
        sample_rate: Hz.
        name: what to call the signal in an error.

    Returns:
        A :class:`LevelStats`. ``lufs`` equals :func:`vocalfx.io.integrated_loudness` of the same
        samples.

    Raises:
        ReportError: bad shape, NaN/Inf, or shorter than one 400 ms loudness block.
    """
    import torch

    from ..io import integrated_loudness

    x = as_signal(audio, name)
    try:
        lufs = integrated_loudness(torch.from_numpy(x), int(sample_rate))
    except ValueError as e:
        raise ReportError(f"{name}: {e}") from None
    return LevelStats(
        lufs=lufs,
        lra_lu=loudness_range_lu(x, int(sample_rate)),
        peak_dbfs=peak_dbfs(x),
        seconds=x.shape[1] / sample_rate,
        channels=x.shape[0],
    )


def long_term_spectrum_db(
    x: np.ndarray,
    sample_rate: int,
    *,
    fraction: int = 6,
    fmin_hz: float = 20.0,
    fmax_hz: float = 20000.0,
    nperseg: int = 8192,
) -> Tuple[np.ndarray, np.ndarray]:
    """Long-term average spectrum: Welch's power spectral density, channels averaged, smoothed to
    ``1/fraction``-octave bands.

    Args:
        x: ``(channels, time)``.
        sample_rate: Hz.
        fraction: bands per octave (default 6).
        fmin_hz, fmax_hz: band centres from ``fmin_hz`` up to ``min(fmax_hz, 0.95 * Nyquist)``.
        nperseg: Welch segment length (samples, Hann window, half overlap; shortened for short audio).

    Returns:
        ``(centres_hz, level_db)``: band centres and the mean power spectral density in each band,
        ``10 log10`` of (full scale)^2 per Hz, floored at -200 dB.
    """
    from scipy.signal import welch

    n = int(min(nperseg, x.shape[1]))
    f, pxx = welch(x, fs=sample_rate, nperseg=n, axis=-1)
    pxx = pxx.mean(axis=0)
    top = min(fmax_hz, 0.95 * sample_rate / 2)
    count = int(math.floor(fraction * math.log2(top / fmin_hz))) + 1
    centres = fmin_hz * 2.0 ** (np.arange(count) / fraction)
    half = 2.0 ** (0.5 / fraction)
    level = np.empty(count)
    for i, fc in enumerate(centres):
        sel = (f >= fc / half) & (f < fc * half)
        level[i] = pxx[sel].mean() if sel.any() else np.interp(fc, f, pxx)
    return centres, 10.0 * np.log10(np.maximum(level, 1e-20))


def loudest_window(x: np.ndarray, sample_rate: int, seconds: float) -> Tuple[int, int]:
    """The ``seconds``-long stretch of ``(channels, time)`` with the most energy, as ``(start, stop)``
    sample indices (the whole signal if it is shorter). Searched on a 0.1 s grid."""
    length = int(round(seconds * sample_rate))
    total = x.shape[1]
    if total <= length:
        return 0, total
    hop = max(1, int(0.1 * sample_rate))
    power = np.concatenate([[0.0], np.cumsum((x**2).mean(axis=0))])
    starts = np.arange(0, total - length + 1, hop)
    energy = power[starts + length] - power[starts]
    start = int(starts[int(np.argmax(energy))])
    return start, start + length


def excerpt_flac(
    x: np.ndarray, sample_rate: int, start: int, stop: int, *, target_lufs: float = -18.0, max_peak_dbfs: float = -0.5
) -> Excerpt:
    """``x[:, start:stop]`` at ``target_lufs`` as a 16-bit FLAC data URI for an ``<audio>`` player.

    The excerpt gets one gain, ``target_lufs`` minus its loudness, lowered if needed so that its
    peak stays at ``max_peak_dbfs`` (16-bit PCM cannot hold more than full scale, and nothing is
    clipped). The gain and the resulting loudness are returned, for the page to say.

    Raises:
        ReportError: the excerpt is silent (no gain brings it to a level).
    """
    import soundfile as sf
    import torch

    from ..io import integrated_loudness

    seg = x[:, start:stop]
    try:
        lufs = integrated_loudness(torch.from_numpy(seg), int(sample_rate))
    except ValueError:
        lufs = -math.inf
    peak = float(np.abs(seg).max())
    if peak == 0.0:
        raise ReportError("the excerpt to play is digital silence")
    gain_db = target_lufs - lufs if math.isfinite(lufs) else 0.0
    gain_db = min(gain_db, max_peak_dbfs - 20.0 * math.log10(peak))
    y = seg * 10.0 ** (gain_db / 20.0)
    buf = io.BytesIO()
    sf.write(buf, np.ascontiguousarray(y.T), int(sample_rate), format="FLAC", subtype="PCM_16")
    data = buf.getvalue()
    out_lufs = lufs + gain_db if math.isfinite(lufs) else -math.inf
    return Excerpt(
        data_uri="data:audio/flac;base64," + base64.b64encode(data).decode("ascii"),
        start_s=start / sample_rate,
        stop_s=stop / sample_rate,
        gain_db=gain_db,
        lufs=out_lufs,
        nbytes=len(data),
    )
