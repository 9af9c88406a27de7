"""Is the reference band-limited by a lossy codec? (the choice of the ``fx`` encoder's weights)

Low-bit-rate MP3 (and AAC) cut everything above a cut-off with a brick-wall low-pass: LAME at
64 kbps stereo cuts at about 11 kHz, with more than 30 dB lost within a few hundred Hz. A vocal
chain's filters never do that (a second-order low-pass falls 12 dB per octave), so a cliff of that
depth in the reference's long-term spectrum, where the dry still has content, marks a codec.

:func:`codec_cutoff_hz` finds such a cliff. :func:`vocalfx.match` then uses the ``fx`` encoder's
codec-robust weights (``vocalfx/embed/weights/fx-codec.pt``, ``docs/fx-encoder.md``), which hear
through the codec's damage to the band it keeps: MP3 at 64 kbps moves them about 19 degrees where
it moves the default weights 66 degrees (another preset: about 89).

A source that is band-limited itself (telephone-band prompts, a 16 kHz recording) gives both the
dry and the reference the same cliff; that is not a codec and is not reported.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

__all__ = ["codec_cutoff_hz", "long_term_spectrum_db", "CLIFF_DB", "MIN_CUTOFF_HZ", "MAX_CUTOFF_HZ"]

#: Depth (dB) of the drop across the cliff: the median level in the 1 kHz below it against the
#: highest level above it.
CLIFF_DB = 30.0
#: Cut-offs looked for (Hz). Below 2 kHz nothing is a vocal; above 19 kHz a cut hides nothing
#: the encoder's mel bands weigh much.
MIN_CUTOFF_HZ = 2000.0
MAX_CUTOFF_HZ = 19000.0
_N_FFT = 4096
_WIDTH_HZ = 1000.0
#: The band below the cliff must be within this many dB of the loudest band between 200 Hz and
#: 4 kHz: a cliff in the noise floor is not a codec's.
_FLOOR_DB = 60.0
#: The dry's own fall from the 1 kHz below the cut-off to 0.25-2 kHz above it beyond which the
#: cliff is the source's (a telephone-band prompt), not a codec's.
_DRY_DROP_DB = 15.0


def long_term_spectrum_db(audio: torch.Tensor, sample_rate: int, n_fft: int = _N_FFT) -> np.ndarray:
    """Mean power spectrum (dB, Hann frames of ``n_fft``, half overlap) of the channel mean of ``(channels, time)``."""
    x = audio.detach().to(torch.float64).mean(0)
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    frames = x.unfold(-1, n_fft, n_fft // 2) * torch.hann_window(n_fft, dtype=torch.float64)
    power = torch.fft.rfft(frames).abs().square().mean(0)
    return (10.0 * torch.log10(power + 1e-30)).numpy()


def _cliff_hz(db: np.ndarray, sample_rate: int, n_fft: int) -> Optional[float]:
    df = sample_rate / n_fft
    f = np.arange(len(db)) * df
    s = np.convolve(db, np.ones(9) / 9, mode="same")  # ~100 Hz smoothing
    loud = np.max(s[(f > 200) & (f < 4000)])
    k = int(_WIDTH_HZ / df)
    start = int(MIN_CUTOFF_HZ / df)
    stop = min(int(MAX_CUTOFF_HZ / df), len(s) - k)
    for i in range(start, stop):
        below = float(np.median(s[i - k : i]))
        above = float(np.max(s[i + k // 4 :]))
        if below - above >= CLIFF_DB and below > loud - _FLOOR_DB:
            return float(f[i])
    return None


def codec_cutoff_hz(reference: torch.Tensor, dry: torch.Tensor, sample_rate: int) -> Optional[float]:
    """The cut-off (Hz) of a codec's brick-wall low-pass on ``reference``, or ``None``.

    Args:
        reference: ``(channels, time)``.
        dry: ``(1, time)``: the voice to be matched. Where the dry itself falls by more than
            15 dB across the cut-off, the cliff is the source's, not a codec's.
        sample_rate: of both (Hz).

    Returns:
        The frequency where the reference's long-term spectrum falls by at least :data:`CLIFF_DB`
        within 1 kHz, between :data:`MIN_CUTOFF_HZ` and :data:`MAX_CUTOFF_HZ`, if the dry goes
        on above it; else ``None``.
    """
    fc = _cliff_hz(long_term_spectrum_db(reference, sample_rate), sample_rate, _N_FFT)
    if fc is None:
        return None
    # the dry must go on above the cut-off: a source that falls there itself is band-limited
    db = np.convolve(long_term_spectrum_db(dry, sample_rate), np.ones(9) / 9, mode="same")
    f = np.arange(len(db)) * sample_rate / _N_FFT
    below = float(np.median(db[(f >= fc - _WIDTH_HZ) & (f < fc)]))
    above = float(np.median(db[(f >= fc + 250.0) & (f < fc + 2000.0)]))
    if below - above > _DRY_DROP_DB:
        return None
    return fc
