"""Classical vocal separation: repetition modelling with soft masks (no weights, the offline default).

Signal flow, per chunk (:class:`ClassicalSeparator`):

1. **STFT** of every channel: Hann window of ``window_ms`` rounded up to a power of two
   (2048 samples at 44.1/48 kHz), hop a quarter of it. ``A = |X|``, ``(channels, freq, frames)``.
2. **Similar frames** (REPET-SIM, Rafii & Pardo 2012): frames are described by the log-compressed
   magnitude of the channel mean, ``log(1 + compression * mean_c A)``, and compared by cosine
   similarity. The log makes the comparison follow the accompaniment's broadband pattern (drum
   hits, chords) rather than the few loud partials of the voice; measured, it is what makes the
   method work when the vocal is louder than the accompaniment (``docs/guide/separation.md``). For each
   frame the ``similar_frames`` most similar frames are chosen, at most one per ``block_ms`` block
   and none closer than ``min_separation_ms`` to it (so the frame's own vocal note is not
   picked).
3. **Repeating-background model**: per channel and bin, the median of ``A`` over the chosen frames,
   capped at ``A``: ``B = min(median, A)``. The voice, which does not repeat the way the
   accompaniment does, is mostly absent from the median.
4. **Soft mask**: vocal magnitude ``V = A - B``; Wiener-like mask
   ``M = V^p / (V^p + B^p)`` with ``p = mask_power`` (2: power-spectrum Wiener filter).
   ``iterations > 1`` re-estimates ``B`` from the current accompaniment estimate ``(1 - M) A``.
5. **Priors**: a smooth high-pass on the mask, ``1 / (1 + (highpass_hz / f)^4)`` (bass and kick
   are accompaniment; a voice has little below 100 Hz). For stereo, an optional centre cue
   multiplies the mask by ``1 - w + w * psi`` with ``psi = 2|L R*| / (|L|^2 + |R|^2)`` the
   inter-channel coherence (Avendano & Jot 2004) and ``w = centre_weight``. It is off by
   default: on the benchmark's processed vocals (panned dry voice, wide reverb and delays) it
   removed more vocal than accompaniment (measured in ``docs/guide/separation.md``).
6. **Output**: ``vocals = istft(M X)``, ``accompaniment = mix - vocals`` (so the two sum to the mix
   exactly).

The cost is one STFT pair plus a frames-by-frames similarity and a median over
``similar_frames`` per bin: about 1 s per minute-long chunk... see ``docs/guide/separation.md`` for the
measured runtime and memory.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .base import Separator

__all__ = ["ClassicalSeparator", "repetition_mask", "similar_frames"]


def similar_frames(
    features: torch.Tensor, k: int, min_separation: int, block: int, *, frame_block: int = 512
) -> torch.Tensor:
    """Indices of the ``k`` frames most similar to each frame (cosine similarity).

    Args:
        features: ``(dims, frames)`` non-negative frame descriptors.
        k: frames to choose per frame (fewer if there are fewer blocks).
        min_separation: frames closer than this (in frames) to the query are never chosen.
        block: at most one frame is chosen from each run of ``block`` frames.
        frame_block: queries processed at once (bounds memory to ``frame_block * frames``).

    Returns:
        ``(frames, k')`` long tensor, ``k' = min(k, ceil(frames / block))``. Where fewer than
        ``k'`` frames are eligible (short inputs), the remaining picks fall on the query's own
        neighbourhood.
    """
    dims, n = features.shape
    unit = features / (features.norm(dim=0, keepdim=True) + 1e-12)
    block = max(1, int(block))
    n_blocks = -(-n // block)
    pad = n_blocks * block - n
    kk = max(1, min(int(k), n_blocks))
    out = []
    cols = torch.arange(n)
    for s in range(0, n, frame_block):
        e = min(n, s + frame_block)
        sim = unit[:, s:e].T @ unit  # (q, n)
        near = (cols[None, :] - torch.arange(s, e)[:, None]).abs() < min_separation
        sim = sim.masked_fill(near, -2.0)
        sim = F.pad(sim, (0, pad), value=-3.0).view(e - s, n_blocks, block)
        best, where = sim.max(-1)
        top = best.topk(kk, dim=-1)
        idx = where.gather(1, top.indices) + top.indices * block
        out.append(idx.clamp_max(n - 1))
    return torch.cat(out)


def _median_over(A: torch.Tensor, idx: torch.Tensor, *, frame_block: int = 256) -> torch.Tensor:
    """Lower median of ``A (C, F, N)`` over the frames ``idx (N, k)`` chosen for each frame.

    numpy's introselect (``np.partition``) is used: on one CPU thread it is about 2.4 times
    faster than ``torch.kthvalue`` or ``torch.median`` for these many short selections.
    """
    C, Fq, N = A.shape
    rows = A.permute(2, 0, 1).reshape(N, C * Fq).contiguous().numpy()
    out = np.empty_like(rows)
    k = idx.shape[1]
    kth = (k - 1) // 2  # lower median
    index = idx.numpy()
    for s in range(0, N, frame_block):
        e = min(N, s + frame_block)
        out[s:e] = np.partition(rows[index[s:e]], kth, axis=1)[:, kth]
    return torch.from_numpy(out).reshape(N, C, Fq).permute(1, 2, 0)


def repetition_mask(
    X: torch.Tensor,
    sample_rate: int,
    hop: int,
    *,
    similar: int = 32,
    min_separation_ms: float = 1000.0,
    block_ms: float = 250.0,
    compression: float = 100.0,
    mask_power: float = 2.0,
    iterations: int = 1,
) -> torch.Tensor:
    """Soft vocal mask from repetition (steps 2-4 of the module description).

    Args:
        X: complex STFT ``(channels, freq, frames)``.
        sample_rate: rate of the audio (Hz).
        hop: STFT hop (samples).
        similar, min_separation_ms, block_ms, compression, mask_power, iterations: see
            :class:`ClassicalSeparator`.

    Returns:
        Mask in [0, 1], ``(channels, freq, frames)``.
    """
    A = X.abs()
    frame_ms = 1000.0 * hop / sample_rate
    feats = torch.log1p(compression * A.mean(0))
    idx = similar_frames(
        feats, similar, max(1, round(min_separation_ms / frame_ms)), max(1, round(block_ms / frame_ms))
    )
    acc = A
    mask = torch.zeros_like(A)
    for _ in range(max(1, int(iterations))):
        B = torch.minimum(_median_over(acc, idx), A)
        V = A - B
        Vp, Bp = V.pow(mask_power), B.pow(mask_power)
        mask = Vp / (Vp + Bp).clamp_min(1e-20)
        acc = A * (1.0 - mask)
    return mask


class ClassicalSeparator(Separator):
    """Repetition-based soft-mask separation (REPET-SIM with a log-spectral similarity).

    Needs no weights and works at any sample rate and channel count. The method is described in
    the :mod:`vocalfx.separate.classical` module docstring; the defaults are the best measured on
    the benchmark (``benchmarks/bench_separate.py``, ``docs/guide/separation.md``).

    Args:
        window_ms: STFT window (ms), rounded up to a power of two in samples. Default 46.
        similar_frames: frames whose median models the background of each frame. Default 32.
        min_separation_ms: chosen frames are at least this far from the frame (ms). Default 1000.
        block_ms: at most one chosen frame per block of this length (ms). Default 250.
        compression: ``c`` in the similarity features ``log(1 + c |X|)``. Default 100.
        mask_power: exponent ``p`` of the soft mask (2: Wiener). Default 2.
        iterations: background re-estimations from the accompaniment estimate. Default 1.
        highpass_hz: corner (Hz) of the high-pass applied to the vocal mask; 0 disables. Default 100.
        centre_weight: weight of the stereo coherence cue in [0, 1]; 0 disables. Default 0.
        chunk_seconds: longest audio separated at once (s); the similarity search sees one chunk.
            Default 60.
        overlap_seconds: cross-fade between chunks (s). Default 4.

    Example:
        >>> sep = ClassicalSeparator(highpass_hz=80.0)
        >>> mix = torch.randn(2, 44100 * 3) * 0.1
        >>> vocals, accompaniment = sep.separate_chunk(mix, 44100)
        >>> bool(torch.allclose(vocals + accompaniment, mix, atol=1e-5))
        True
    """

    name = "classical"
    sample_rate = None
    channels = None

    def __init__(
        self,
        *,
        window_ms: float = 46.0,
        similar_frames: int = 32,
        min_separation_ms: float = 1000.0,
        block_ms: float = 250.0,
        compression: float = 100.0,
        mask_power: float = 2.0,
        iterations: int = 1,
        highpass_hz: float = 100.0,
        centre_weight: float = 0.0,
        chunk_seconds: float = 60.0,
        overlap_seconds: float = 4.0,
    ) -> None:
        checks = {
            "window_ms": (window_ms, window_ms > 0, "> 0 ms"),
            "similar_frames": (similar_frames, int(similar_frames) >= 1, ">= 1"),
            "min_separation_ms": (min_separation_ms, min_separation_ms >= 0, ">= 0 ms"),
            "block_ms": (block_ms, block_ms > 0, "> 0 ms"),
            "compression": (compression, compression > 0, "> 0"),
            "mask_power": (mask_power, mask_power > 0, "> 0"),
            "iterations": (iterations, int(iterations) >= 1, ">= 1"),
            "highpass_hz": (highpass_hz, highpass_hz >= 0, ">= 0 Hz"),
            "centre_weight": (centre_weight, 0 <= centre_weight <= 1, "in [0, 1]"),
        }
        for key, (val, ok, rule) in checks.items():
            if not ok:
                raise ValueError(f"{key} must be {rule}, got {val!r}")
        self.window_ms = float(window_ms)
        self.similar_frames = int(similar_frames)
        self.min_separation_ms = float(min_separation_ms)
        self.block_ms = float(block_ms)
        self.compression = float(compression)
        self.mask_power = float(mask_power)
        self.iterations = int(iterations)
        self.highpass_hz = float(highpass_hz)
        self.centre_weight = float(centre_weight)
        self.chunk_seconds = float(chunk_seconds)
        self.overlap_seconds = float(overlap_seconds)

    def describe(self) -> str:
        return (
            f"classical (REPET-SIM log-similarity, {self.similar_frames} frames, high-pass {self.highpass_hz:g} Hz"
            + (f", centre weight {self.centre_weight:g}" if self.centre_weight else "")
            + ")"
        )

    def fft_size(self, sample_rate: int) -> int:
        """STFT size (samples) at ``sample_rate``: ``window_ms`` rounded up to a power of two."""
        return 1 << max(4, math.ceil(math.log2(self.window_ms * sample_rate / 1000.0)))

    def vocal_mask(self, X: torch.Tensor, sample_rate: int, hop: int) -> torch.Tensor:
        """The soft vocal mask for the STFT ``X (channels, freq, frames)``."""
        mask = repetition_mask(
            X,
            sample_rate,
            hop,
            similar=self.similar_frames,
            min_separation_ms=self.min_separation_ms,
            block_ms=self.block_ms,
            compression=self.compression,
            mask_power=self.mask_power,
            iterations=self.iterations,
        )
        if self.highpass_hz > 0:
            freqs = torch.linspace(0.0, sample_rate / 2.0, X.shape[1], dtype=mask.dtype)
            ratio = self.highpass_hz / freqs.clamp_min(1e-3)
            mask = mask * (1.0 / (1.0 + ratio**4))[:, None]
        if self.centre_weight > 0 and X.shape[0] == 2:
            L, R = X[0], X[1]
            coherence = 2 * (L * R.conj()).abs() / (L.abs() ** 2 + R.abs() ** 2).clamp_min(1e-20)
            mask = mask * (1.0 - self.centre_weight + self.centre_weight * coherence)
        return mask

    def separate_chunk(self, mix: torch.Tensor, sample_rate: int) -> Tuple[torch.Tensor, torch.Tensor]:
        channels, frames = mix.shape
        n_fft = self.fft_size(sample_rate)
        hop = n_fft // 4
        if frames < n_fft:  # too short to model: everything is accompaniment
            return torch.zeros_like(mix), mix.clone()
        window = torch.hann_window(n_fft, dtype=mix.dtype)
        X = torch.stft(mix, n_fft, hop, window=window, center=True, return_complex=True)
        mask = self.vocal_mask(X, sample_rate, hop)
        vocals = torch.istft(X * mask, n_fft, hop, window=window, center=True, length=frames)
        del X, mask
        return vocals, mix - vocals
