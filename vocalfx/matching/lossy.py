"""Did the reference go through a lossy codec? (the choice of the ``fx`` encoder's weights)

Low-bit-rate MP3 (and AAC) cut everything above a cut-off with a brick-wall low-pass: LAME at
64 kbps stereo cuts at about 11 kHz, with more than 30 dB lost within a few hundred Hz. A vocal
chain's filters never do that (a second-order low-pass falls 12 dB per octave), so a cliff of that
depth in the reference's long-term spectrum, where the dry still has content, marks a codec.

:func:`codec_cutoff_hz` finds such a cliff. :func:`vocalfx.match` then uses the ``fx`` encoder's
codec-robust weights (``vocalfx/embed/weights/fx-codec.pt``, ``docs/fx-encoder.md``), which hear
through the codec's damage to the band it keeps: MP3 at 64 kbps moves them about 19 degrees where
it moves the default weights 66 degrees (another preset: about 89).

A source that is band-limited itself (telephone-band prompts, a 16 kHz recording) gives both the
dry and the reference the same cliff; that is not a codec and is not reported. Such a source, or
a preset that leaves little above the cut-off, hides the cliff of a real codec too. The second
sign, :func:`hole_fraction`, does not depend on the top of the spectrum: a codec at a low bit rate
zeroes many coefficients inside the band it keeps. :func:`codec_evidence` reports both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

__all__ = ["CodecEvidence", "codec_evidence", "codec_cutoff_hz", "hole_fraction", "long_term_spectrum_db", "CLIFF_DB", "MIN_CUTOFF_HZ", "MAX_CUTOFF_HZ",
           "HOLE_DB", "HOLE_FRACTION"]

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
#: A time-frequency bin is a hole when it lies this many dB below the median of the 15 bins
#: around it (about 570 Hz) in the same frame.
HOLE_DB = 20.0
#: Fraction of holes between 2 and 10 kHz above which the reference is taken for a lossy codec's.
HOLE_FRACTION = 0.02
_HOLE_N_FFT = 1152  # two MP3 granules
_HOLE_BAND_HZ = (2000.0, 10000.0)
_HOLE_MEDIAN_BINS = 15


def long_term_spectrum_db(audio: torch.Tensor, sample_rate: int, n_fft: int = _N_FFT) -> np.ndarray:
    """Mean power spectrum (dB, Hann frames of ``n_fft``, half overlap) of the channel mean of ``(channels, time)``."""
    x = audio.detach().to(torch.float64).mean(0)
    if x.shape[-1] < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.shape[-1]))
    frames = x.unfold(-1, n_fft, n_fft // 2) * torch.hann_window(n_fft, dtype=torch.float64)
    power = torch.fft.rfft(frames).abs().square().mean(0)
    return (10.0 * torch.log10(power + 1e-30)).numpy()


def hole_fraction(audio: torch.Tensor, sample_rate: int) -> float:
    """Fraction of time-frequency bins between 2 and 10 kHz that are holes, averaged over channels.

    A perceptual codec at a low bit rate quantises most of a frame's coefficients in the bands it
    deems masked to zero: the band it keeps is full of holes. A bin is a hole when its power is
    :data:`HOLE_DB` below the median of the 15 bins around it in its frame (Hann frames of 1,152
    samples, half overlap, frames within 40 dB of the loudest in the band). Lossless voices
    through a chain, with or without reverb, measure 0.006-0.015 on the dev references; MP3 at
    64 kbps 0.024-0.054 (docs/fx-encoder.md, session 12).

    Args:
        audio: ``(channels, time)``.
        sample_rate: Hz.
    """
    x = audio.detach().to(torch.float64)
    n_fft, half = _HOLE_N_FFT, _HOLE_MEDIAN_BINS // 2
    if x.shape[-1] < n_fft:
        return 0.0
    frames = x.unfold(-1, n_fft, n_fft // 2) * torch.hann_window(n_fft, dtype=torch.float64)
    f = torch.fft.rfftfreq(n_fft, 1.0 / sample_rate, dtype=torch.float64)
    band = (f >= _HOLE_BAND_HZ[0]) & (f < _HOLE_BAND_HZ[1])
    fractions = []
    for ch in frames:  # (frames, n_fft)
        power = torch.fft.rfft(ch).abs().square()[:, band]
        energy = power.sum(-1)
        power = power[energy > energy.max() * 1e-4]
        if power.shape[0] == 0 or not float(energy.max()) > 0:
            continue
        padded = torch.nn.functional.pad(power[None], (half, half), mode="replicate")[0]
        median = padded.unfold(-1, _HOLE_MEDIAN_BINS, 1).median(-1).values
        fractions.append(float((power < median * 10.0 ** (-HOLE_DB / 10.0)).double().mean()))
    return float(np.mean(fractions)) if fractions else 0.0


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


@dataclass(frozen=True)
class CodecEvidence:
    """What the reference's spectrum says about a lossy codec.

    Attributes:
        cutoff_hz: a codec's brick-wall cut-off (:func:`codec_cutoff_hz`), or ``None``.
        hole_fraction: the share of quantisation holes in 2-10 kHz (:func:`hole_fraction`).
    """

    cutoff_hz: Optional[float]
    hole_fraction: float

    @property
    def lossy(self) -> bool:
        """A cut-off was found, or the holes reach :data:`HOLE_FRACTION`."""
        return self.cutoff_hz is not None or self.hole_fraction >= HOLE_FRACTION


def codec_evidence(reference: torch.Tensor, dry: torch.Tensor, sample_rate: int) -> CodecEvidence:
    """Both signs of a lossy codec in ``reference`` ``(channels, time)``; ``dry`` is ``(1, time)``.

    The cut-off misses a codec whose low-pass removed nothing the reference had (a telephone-band
    source, a dark preset); the holes do not depend on what lies above the cut-off.
    """
    return CodecEvidence(codec_cutoff_hz(reference, dry, sample_rate), hole_fraction(reference, sample_rate))
