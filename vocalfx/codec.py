"""Lossy codecs: is a reference MP3-coded, and one MP3 round trip that matching and evaluation share.

**Detection.** Low-bit-rate MP3 (and AAC) cut everything above a cut-off with a brick-wall
low-pass: LAME at 64 kbps stereo cuts at about 11 kHz, with more than 30 dB lost within a few
hundred Hz. A vocal chain's filters never do that (a second-order low-pass falls 12 dB per
octave), so a cliff of that depth in the reference's long-term spectrum, where the dry still has
content, marks a codec (:func:`codec_cutoff_hz`). A source that is band-limited itself
(telephone-band prompts, a 16 kHz recording) gives both the dry and the reference the same cliff;
that is not a codec and is not reported. Such a source, or a preset that leaves little above the
cut-off, hides the cliff of a real codec too. The second sign, :func:`hole_fraction`, does not
depend on the top of the spectrum: a codec at a low bit rate zeroes many coefficients inside the
band it keeps. :func:`codec_evidence` reports both.

**What matching does with it.** :func:`vocalfx.match` asks the encoder for its lossy-reference
variant (:meth:`vocalfx.encoders.StereoEncoder.for_lossy_reference`; the ``fx`` encoder loads its
codec-robust weights) and, when that encoder asks for it, puts each render through MP3 before
the encoder (:func:`mp3_roundtrip`, straight through for the gradient), so that the encoder
compares a coded render with a coded reference. The bit rate is the one whose holes on the
starting render come nearest the reference's (:func:`simulated_kbps`).

**What evaluation does with it.** ``vocalfx eval --reference-codec mp3:KBPS`` (:func:`parse_codec`)
puts the reference chunks through the same :func:`mp3_roundtrip`.

The codec is LAME inside libsndfile, which the ``soundfile`` wheels bundle (libsndfile 1.1 or
newer); without it matching goes on without the simulation and says so.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

__all__ = [
    "CodecEvidence",
    "codec_evidence",
    "align_decoded",
    "mp3_roundtrip",
    "mp3_available",
    "simulated_kbps",
    "SIMULATED_KBPS",
    "codec_cutoff_hz",
    "hole_fraction",
    "long_term_spectrum_db",
    "CLIFF_DB",
    "MIN_CUTOFF_HZ",
    "MAX_CUTOFF_HZ",
    "HOLE_DB",
    "HOLE_FRACTION",
]

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
    64 kbps 0.024-0.054 (docs/results.md, "MP3 references").

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


#: Bit rates (kbps) that :func:`simulated_kbps` chooses from: MPEG-1 layer III rates from which
#: LAME keeps the sample rate at 44.1 kHz.
SIMULATED_KBPS = (64, 80, 96, 112, 128, 160, 192, 256)
#: Longest decoder delay searched for when re-aligning a decoded signal (samples).
MAX_LAG = 4096


def align_decoded(x: np.ndarray, y: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """``y`` (a decoding of ``x``, both ``(channels, time)``) cut to start and end where ``x`` does.

    The lag that maximises the cross-correlation of the channel means over the first 88,200
    samples (2 s at 44.1 kHz; lags up to
    ``max_lag`` samples) is cut off; a short result is padded with zeros to ``x``'s length.
    """
    n = x.shape[1]
    span = min(n, 88200)
    a, b = x.mean(0)[:span], y.mean(0)[: span + max_lag]
    size = 1 << int(np.ceil(np.log2(len(b) + len(a))))
    xc = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)[: max_lag + 1]
    lag = int(np.argmax(xc))
    y = y[:, lag : lag + n]
    if y.shape[1] < n:
        y = np.pad(y, ((0, 0), (0, n - y.shape[1])))
    return y


def mp3_available() -> bool:
    """Whether the installed libsndfile (through ``soundfile``) can write MP3."""
    import soundfile

    return "MP3" in soundfile.available_formats()


def mp3_roundtrip(audio: torch.Tensor, sample_rate: int, kbps: int) -> torch.Tensor:
    """``audio`` ``(channels, time)`` through constant-bit-rate MP3 at ``kbps`` and back.

    The audio is scaled by one gain to a -1 dBFS peak for the codec, and back after decoding, so
    the level is kept and the codec cannot clip. The result is re-aligned (:func:`align_decoded`).

    Returns:
        float32 ``(channels, time)`` on ``audio``'s device.

    Raises:
        ValueError: ``kbps`` outside 64-320, silent or non-finite audio, or no MP3 in libsndfile.
    """
    import soundfile

    if not 64 <= kbps <= 320:
        raise ValueError(f"MP3 simulation: bit rate {kbps} kbps outside 64-320")
    if not mp3_available():
        raise ValueError("MP3 simulation needs libsndfile 1.1 or newer (pip install -U soundfile)")
    x = audio.detach().to(torch.float64).cpu().numpy()
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not (np.isfinite(peak) and peak > 0):
        raise ValueError("MP3 simulation: the audio is silent or not finite")
    scale = 10.0 ** (-1.0 / 20.0) / peak
    buf = io.BytesIO()
    # libsndfile maps a compression level c to 32 + 288 (1 - c) kbps at a constant rate
    level = 1.0 - (kbps - 32.0) / 288.0
    soundfile.write(
        buf,
        (x * scale).T.astype(np.float32),
        sample_rate,
        format="MP3",
        compression_level=level,
        bitrate_mode="CONSTANT",
    )
    buf.seek(0)
    y, _ = soundfile.read(buf, dtype="float64", always_2d=True)
    y = align_decoded(x, y.T)
    return torch.from_numpy(y / scale).to(device=audio.device, dtype=torch.float32)


def simulated_kbps(
    reference_holes: float, chunks: torch.Tensor, sample_rate: int, candidates: Sequence[int] = SIMULATED_KBPS
) -> int:
    """The bit rate at which ``chunks`` ``(n, channels, time)`` get holes nearest ``reference_holes``.

    The chunks are coded end to end, as one stream (as a reference file is). Holes fall as the
    bit rate rises, so the candidates are tried from the lowest and the search stops once the
    coded chunks have fewer holes than the reference (:func:`hole_fraction`).
    """
    best, best_gap = int(candidates[0]), float("inf")
    stream = chunks.permute(1, 0, 2).reshape(chunks.shape[1], -1)
    for kbps in sorted(candidates):
        holes = hole_fraction(mp3_roundtrip(stream, sample_rate, kbps), sample_rate)
        gap = abs(holes - reference_holes)
        if gap < best_gap:
            best, best_gap = int(kbps), gap
        if holes < reference_holes:
            break
    return best


_CODEC_SPEC = re.compile(r"^mp3:(\d+)$")


def parse_codec(spec: Optional[str]) -> Optional[Tuple[str, int]]:
    """``"mp3:64"`` -> ``("mp3", 64)``; ``None``, ``""`` or ``"none"`` -> ``None``.

    Raises:
        ValueError: another codec, or a bit rate outside the 64-320 kbps that
            :func:`mp3_roundtrip` codes.
    """
    if spec in (None, "", "none"):
        return None
    m = _CODEC_SPEC.match(str(spec).strip().lower())
    if m is None:
        raise ValueError(f"reference codec {spec!r}: expected mp3:KBPS, e.g. mp3:64")
    kbps = int(m.group(1))
    if not 64 <= kbps <= 320:
        raise ValueError(f"reference codec {spec!r}: the MP3 bit rate must lie in 64-320 kbps")
    return "mp3", kbps


def mp3_chunks(chunks: torch.Tensor, sample_rate: int, kbps: int) -> torch.Tensor:
    """``chunks`` ``(n, channels, time)`` coded end to end as one stream, as a reference file is, and cut again."""
    from .chunks import join_chunks, split_chunks

    return split_chunks(mp3_roundtrip(join_chunks(chunks), sample_rate, kbps), chunks.shape[0])
