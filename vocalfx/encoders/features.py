"""Hand-crafted feature encoders: frame-wise features summarised by four statistics over time.

Both encoders reproduce the "MFCC" and "MIR" baselines of DiffVox (``st_ito/utils.py`` and
``modules/encoder.py`` at SonyResearch/diffvox@97ae464), evaluated per mid/side channel at
44.1 kHz. Frames are 2048 samples with hop 1024 and no padding (``center=False``): a signal of
``T`` samples gives ``1 + (T - 2048) // 1024`` frames and its last ``(T - 2048) % 1024`` samples
are not analysed. Each frame-wise feature ``f`` (one value per frame) is summarised over the frames
by :func:`time_statistics`: mean, standard deviation, skewness and excess kurtosis.

The reference builds these with float32 constants (window, mel filterbank, DCT, frequency grid);
so do the modules here. For float64 input, convert the module with ``.double()`` (used by the
gradient checks); the float32 and float64 results differ by float32 rounding only.

Gradients. Every operation is differentiable almost everywhere. At the few non-differentiable
points the reference's formulas would give ``nan`` (``sqrt`` at exactly 0: a digitally silent
frame, or a feature that is constant over time), :func:`_sqrt` returns the same value with a zero
gradient instead, so a silent stretch of audio does not poison an optimiser step.
"""

from __future__ import annotations

import torch
import torchaudio
import torchaudio.functional as AF

from .base import StereoEncoder, register_encoder

__all__ = ["MFCCEncoder", "MIREncoder", "time_statistics"]

# Additive/clamping floors of the reference feature definitions (part of the features' values).
_LOG_EPS = 1e-8  # added inside every log of a time-domain or spectral quantity, and to sums
_POWER_FLOOR = 1e-10  # power floor of the dB conversion (torchaudio's AmplitudeToDB amin)
_STD_FLOOR = 1e-8  # standard deviation floor when forming z-scores


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(x)`` for ``x >= 0`` with gradient 0 (not ``inf``/``nan``) at ``x == 0``."""
    positive = x > 0
    safe = torch.where(positive, x, torch.ones_like(x))
    return torch.where(positive, torch.sqrt(safe), torch.zeros_like(x))


def time_statistics(features: torch.Tensor) -> torch.Tensor:
    """Mean, standard deviation, skewness and excess kurtosis over the last (time) axis.

    All four are population (biased) moments: ``mu = mean(f)``, ``sigma = sqrt(mean((f - mu)^2))``,
    ``z = (f - mu) / max(sigma, 1e-8)``, ``skew = mean(z^3)``, ``kurt = mean(z^4) - 3``.

    Args:
        features: frame-wise features ``(..., K, frames)``.

    Returns:
        ``(..., 4 K)`` ordered feature by feature: ``[mu_0, sigma_0, skew_0, kurt_0, mu_1, ...]``.
    """
    mu = features.mean(-1)
    dev = features - mu.unsqueeze(-1)
    sigma = _sqrt(dev.square().mean(-1))
    z = dev / sigma.clamp_min(_STD_FLOOR).unsqueeze(-1)
    skew = z.pow(3).mean(-1)
    kurt = z.pow(4).mean(-1) - 3.0
    return torch.stack([mu, sigma, skew, kurt], dim=-1).flatten(-2)


@register_encoder("mfcc")
class MFCCEncoder(StereoEncoder):
    """Statistics of 25 MFCCs per channel (DiffVox's "MFCC" encoder), 100 values per channel.

    Per mid/side channel at 44.1 kHz:

    1. power mel spectrogram: periodic Hann window, ``n_fft`` 2048, hop 1024, no centring,
       128 triangular HTK-mel bands over 0-22050 Hz without area normalisation
       (``torchaudio.transforms.MelSpectrogram``);
    2. dB: ``10 log10(max(P, 1e-10))``, then raised to at least ``max - top_db`` (80 dB). The
       maximum is taken over **both channels** (mid and side), frequencies and frames of one
       batch item, as the reference does (its ``AmplitudeToDB`` sees a ``(batch, 2, mels,
       frames)`` tensor). A quiet side channel is therefore floored relative to the mid, and its
       embedding depends (through the floor only) on the mid signal;
    3. orthonormal DCT-II, first 25 coefficients (``torchaudio.functional.create_dct``);
    4. :func:`time_statistics` of each coefficient over frames -> 4 x 25 values, L2-normalised.

    Args:
        sample_rate: sample rate (Hz) of the input. Default 44100.
        n_mfcc: number of coefficients kept. Default 25.
        n_mels: mel bands. Default 128.
        n_fft: frame and FFT length (samples at 44.1 kHz). Default 2048.
        hop_length: hop (samples at 44.1 kHz). Default 1024.
        top_db: dynamic range (dB) kept below the maximum. Default 80.

    Shape:
        input ``(batch, 2, time)``; outputs ``{"mid", "side"}`` of ``(batch, 4 n_mfcc)``.

    Example:
        >>> enc = MFCCEncoder(sample_rate=48000)
        >>> emb = enc(torch.randn(2, 2, 96000))  # emb["mid"]: (2, 100)
    """

    def __init__(
        self,
        sample_rate: int = 44100,
        *,
        n_mfcc: int = 25,
        n_mels: int = 128,
        n_fft: int = 2048,
        hop_length: int = 1024,
        top_db: float = 80.0,
    ) -> None:
        super().__init__(sample_rate)
        if not 0 < n_mfcc <= n_mels:
            raise ValueError(f"n_mfcc must lie in [1, n_mels={n_mels}], got {n_mfcc}")
        self.n_mfcc = n_mfcc
        self.top_db = float(top_db)
        self.min_samples = n_fft
        self.embedding_dim = 4 * n_mfcc
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=self.model_sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            f_min=0.0,
            f_max=float(self.model_sample_rate // 2),
            n_mels=n_mels,
            window_fn=torch.hann_window,
            power=2.0,
            center=False,
            norm=None,
            mel_scale="htk",
        )
        self.register_buffer("dct", AF.create_dct(n_mfcc, n_mels, norm="ortho"))

    def mfcc(self, x_ms: torch.Tensor) -> torch.Tensor:
        """Frame-wise MFCCs of mid/side audio at 44.1 kHz.

        Shape:
            ``(batch, 2, time)`` -> ``(batch, 2, n_mfcc, frames)``.
        """
        power = self.mel(x_ms)  # (batch, 2, mels, frames)
        power_db = 10.0 * torch.log10(power.clamp_min(_POWER_FLOOR))
        floor_db = power_db.amax(dim=(1, 2, 3), keepdim=True) - self.top_db
        power_db = torch.maximum(power_db, floor_db)
        return torch.matmul(power_db.transpose(-1, -2), self.dct).transpose(-1, -2)

    def channel_features(self, x_ms: torch.Tensor) -> torch.Tensor:
        return time_statistics(self.mfcc(x_ms))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", n_mfcc={self.n_mfcc}, top_db={self.top_db} dB"


@register_encoder("mir")
class MIREncoder(StereoEncoder):
    """Statistics of six frame-wise descriptors per channel (DiffVox's "MIR" encoder), 24 values.

    Frames ``x`` of 2048 samples (hop 1024, no centring, no window) give three time-domain
    descriptors, with ``r = sqrt(mean(x^2))`` and ``eps = 1e-8``:

    * log RMS ``log(r + eps)``;
    * log crest factor ``log(max|x| + eps) - log(r + eps)``;
    * log spread ``mean(log(|x| + eps)) - log(r + eps)``.

    The magnitude spectrum ``S_k`` of the same frames (periodic Hann window, 1025 bins,
    ``torchaudio.transforms.Spectrogram(power=1)``) gives three spectral ones. Frequencies are
    *normalised*, ``f_k = k / 1024`` in [0, 1] (1 = Nyquist), and ``p_k = S_k / max(sum S, eps)``:

    * log centroid ``log(c + eps)`` with ``c = sum p_k f_k``;
    * log bandwidth ``0.5 log(sum p_k (f_k - c - eps)^2 + eps)`` (the reference recovers the
      centroid as ``exp(log(c + eps))``, hence the ``eps`` shift);
    * log flatness ``mean(log P_k) - log(mean P_k)`` with ``P_k = max(S_k, eps)^2``.

    Each descriptor is summarised by :func:`time_statistics`, giving 6 x 4 values in the order
    RMS, crest, spread, centroid, bandwidth, flatness; the vector is L2-normalised.

    Args:
        sample_rate: sample rate (Hz) of the input. Default 44100.
        frame_length: frame and FFT length (samples at 44.1 kHz). Default 2048.
        hop_length: hop (samples at 44.1 kHz). Default 1024.

    Shape:
        input ``(batch, 2, time)``; outputs ``{"mid", "side"}`` of ``(batch, 24)``.

    Example:
        >>> enc = MIREncoder()
        >>> emb = enc(torch.randn(1, 2, 44100))  # emb["side"]: (1, 24)
    """

    embedding_dim = 24

    def __init__(self, sample_rate: int = 44100, *, frame_length: int = 2048, hop_length: int = 1024) -> None:
        super().__init__(sample_rate)
        self.frame_length = frame_length
        self.hop_length = hop_length
        self.min_samples = frame_length
        self.spectrogram = torchaudio.transforms.Spectrogram(
            n_fft=frame_length,
            hop_length=hop_length,
            window_fn=torch.hann_window,
            power=1.0,
            center=False,
        )

    def descriptors(self, x_ms: torch.Tensor) -> torch.Tensor:
        """Frame-wise descriptors of mid/side audio at 44.1 kHz.

        Shape:
            ``(batch, 2, time)`` -> ``(batch, 2, 6, frames)``.
        """
        # time domain, (batch, 2, frames, frame_length)
        frames = x_ms.unfold(-1, self.frame_length, self.hop_length)
        log_rms = torch.log(_sqrt(frames.square().mean(-1)) + _LOG_EPS)
        log_crest = torch.log(frames.abs().amax(-1) + _LOG_EPS) - log_rms
        log_spread = torch.log(frames.abs() + _LOG_EPS).mean(-1) - log_rms

        # spectral, (batch, 2, frames, bins)
        mag = self.spectrogram(x_ms).transpose(-1, -2)
        freqs = torch.linspace(0.0, 1.0, mag.shape[-1], dtype=mag.dtype, device=mag.device)
        weights = mag / mag.sum(-1, keepdim=True).clamp_min(_LOG_EPS)
        centroid = torch.matmul(weights, freqs)
        log_centroid = torch.log(centroid + _LOG_EPS)
        spread_sq = (weights * (freqs - (centroid + _LOG_EPS).unsqueeze(-1)).square()).sum(-1)
        log_bandwidth = 0.5 * torch.log(spread_sq + _LOG_EPS)
        power = mag.clamp_min(_LOG_EPS).square()
        log_flatness = torch.log(power).mean(-1) - torch.log(power.mean(-1))

        return torch.stack([log_rms, log_crest, log_spread, log_centroid, log_bandwidth, log_flatness], dim=2)

    def channel_features(self, x_ms: torch.Tensor) -> torch.Tensor:
        return time_statistics(self.descriptors(x_ms))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", frame_length={self.frame_length}, hop_length={self.hop_length}"
