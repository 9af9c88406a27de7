"""The protocol's constants, chunking and activity rule, shared by matching, fitting and evaluation.

DiffVox (Yu et al., 2025) works on a dry vocal and a processed vocal that are each brought to
-18 LUFS and cut into fixed-length chunks; chunks that are mostly silent are not used. The
numbers and the rule live here once:

* :data:`TARGET_LUFS` (-18 LUFS), :data:`CHUNK_SECONDS` (11 s, inference-time optimisation and
  evaluation), :data:`FIT_CHUNK_SECONDS` and :data:`FIT_WARMUP_SECONDS` (12 s windows with a 5 s
  rendered-but-unscored start, pair fitting);
* :func:`chunk_activity` and :func:`active_mask`: DiffVox's activity rule, the median over the
  chunk of the 50 ms running peak of the channel mean must exceed :data:`ACTIVE_PEAK` (-60 dBFS);
* :func:`chunk_starts` and :func:`cut_chunks`: where chunks start (from the first sample, every
  chunk length; optionally one more chunk that ends at the last sample);
* :func:`active_chunks`: both, as matching uses them;
* :func:`chunk_pair`: the overlapping windows of pair fitting;
* :func:`join_chunks` and :func:`split_chunks`: chunks laid end to end as one signal, and back.

Example:
    >>> x = torch.randn(1, 44100 * 30) * 0.1
    >>> chunks, dropped = active_chunks(x, 44100 * 11, 44100)
    >>> chunks.shape, dropped
    (torch.Size([3, 1, 485100]), 0)
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch
from scipy.ndimage import maximum_filter1d

from . import defaults
from .errors import MatchError

__all__ = [
    "TARGET_LUFS",
    "CHUNK_SECONDS",
    "FIT_CHUNK_SECONDS",
    "FIT_WARMUP_SECONDS",
    "ACTIVE_PEAK",
    "ACTIVE_WINDOW_SECONDS",
    "SILENT_PEAK_DBFS",
    "chunk_activity",
    "active_mask",
    "chunk_starts",
    "cut_chunks",
    "active_chunks",
    "chunk_pair",
    "join_chunks",
    "split_chunks",
]

#: Loudness the dry and the processed vocal are normalised to (LUFS), as in DiffVox.
TARGET_LUFS = defaults.TARGET_LUFS
#: Chunk length (s) of inference-time optimisation and of the evaluation protocol (DiffVox's).
CHUNK_SECONDS = defaults.CHUNK_SECONDS
#: Window length and its unscored warm-up (s) of pair fitting (DiffVox's ``fx_config.yaml``).
FIT_CHUNK_SECONDS = 12.0
FIT_WARMUP_SECONDS = 5.0
#: A chunk is active when the median over time of its 50 ms running peak exceeds this (-60 dBFS).
ACTIVE_PEAK = 1e-3
#: Length (s) of the running peak of the activity rule.
ACTIVE_WINDOW_SECONDS = 0.05
#: Pair fitting drops windows whose scored part of the wet peaks below this level (dBFS), DiffVox's
#: training rule (a peak, not the median of a running peak: it only removes silent windows).
SILENT_PEAK_DBFS = -60.0


def _window(sample_rate: float) -> int:
    return max(1, int(round(ACTIVE_WINDOW_SECONDS * sample_rate)))


def chunk_activity(chunks: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """The activity level of each chunk: median over time of the 50 ms running peak of ``|mean|``.

    The running peak is the maximum of ``|mean over channels|`` over every window of
    :data:`ACTIVE_WINDOW_SECONDS` that lies inside the chunk (every start, stride 1, as
    ``max_pool1d(..., stride=1)`` in DiffVox); the median of an even number of values is the mean
    of the two middle ones (``numpy.median``). The channel mean is taken in the input's dtype,
    the rest in float64 with ``scipy.ndimage.maximum_filter1d`` (O(length), exact). Not
    differentiable: it only decides which chunks are used.

    Args:
        chunks: ``(n, channels, time)`` audio.
        sample_rate: Hz.

    Returns:
        ``(n,)`` float64 levels (linear, full scale 1).
    """
    if chunks.dim() != 3:
        raise ValueError(f"expected (batch, channels, time), got shape {tuple(chunks.shape)}")
    m = np.abs(chunks.detach().mean(1).cpu().numpy().astype(np.float64))
    w = min(_window(sample_rate), m.shape[-1])
    # maximum_filter1d centres its window; origin -(w // 2) moves it so output i covers [i, i + w).
    peak = maximum_filter1d(m, size=w, axis=-1, mode="nearest", origin=-(w // 2))
    valid = peak[:, : m.shape[-1] - w + 1]
    return torch.from_numpy(np.median(valid, axis=-1))


def active_mask(chunks: torch.Tensor, sample_rate: float) -> torch.Tensor:
    """``(n,)`` booleans: :func:`chunk_activity` above :data:`ACTIVE_PEAK` (DiffVox's rule)."""
    return chunk_activity(chunks, sample_rate) > ACTIVE_PEAK


def chunk_starts(length: int, chunk: int, *, cover_tail: bool) -> List[int]:
    """Start samples of the chunks of a signal of ``length`` samples.

    Chunks start at 0, ``chunk``, ``2 chunk``, ... while they fit. With ``cover_tail`` and a
    remainder, one more chunk ends at the last sample (overlapping its neighbour), so no sample
    is left out; without it the remainder is dropped (DiffVox's ``unfold``).
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be a positive number of samples, got {chunk}")
    starts = list(range(0, length - chunk + 1, chunk))
    if cover_tail and starts and starts[-1] + chunk < length:
        starts.append(length - chunk)
    return starts


def cut_chunks(audio: torch.Tensor, chunk: int, *, cover_tail: bool) -> torch.Tensor:
    """``(channels, time)`` -> ``(n, channels, chunk)`` at :func:`chunk_starts`."""
    starts = chunk_starts(audio.shape[-1], chunk, cover_tail=cover_tail)
    if not starts:
        return audio.new_zeros((0, audio.shape[0], chunk))
    return torch.stack([audio[:, s : s + chunk] for s in starts])


def active_chunks(
    audio: torch.Tensor, chunk: int, sample_rate: float, *, label: str = "audio"
) -> Tuple[torch.Tensor, int]:
    """Cut ``(channels, time)`` audio into chunks (covering the tail) and keep the active ones.

    Returns:
        ``(chunks, dropped)``: ``(n, channels, chunk)`` and the number of inactive chunks.

    Raises:
        MatchError: the audio is shorter than one chunk, or no chunk is active.
    """
    T = audio.shape[-1]
    if T < chunk:
        raise MatchError(
            f"{label}: {T / sample_rate:.2f} s long; matching needs at least one {chunk / sample_rate:g} s chunk "
            "(use a longer excerpt or a shorter chunk length)"
        )
    chunks = cut_chunks(audio, chunk, cover_tail=True)
    keep = active_mask(chunks, sample_rate)
    if not bool(keep.any()):
        raise MatchError(
            f"{label}: no active {chunk / sample_rate:g} s chunk (every chunk is below -60 dBFS for most of its length "
            f"after normalising to {TARGET_LUFS:g} LUFS); is it silent or mostly silence?"
        )
    return chunks[keep].contiguous(), int((~keep).sum())


def chunk_pair(dry: torch.Tensor, wet: torch.Tensor, chunk: int, warmup: int) -> Tuple[torch.Tensor, torch.Tensor, int]:
    """Cut an aligned dry/wet pair into the overlapping windows of pair fitting.

    Windows of ``chunk`` samples advance by ``chunk - warmup``; the first ``warmup`` samples of
    each are rendered but not scored, so reverb and delay tails from before a window are present
    in its scored part. The start is padded with ``warmup`` samples of silence and one last window
    ends at the final sample, so every sample is scored once at least.

    Args:
        dry: ``(1, time)``.
        wet: ``(2, time)``, same length.
        chunk: window length in samples.
        warmup: unscored samples at the start of each window (``0 <= warmup < chunk``).

    Returns:
        ``(x, y, start)``: dry windows ``(n, 1, L)``, wet windows ``(n, 2, L)`` and the index from
        which each is scored. A pair of at most ``chunk`` samples is one window of its own length
        with ``start = 0``.
    """
    if not 0 <= warmup < chunk:
        raise ValueError(f"the warm-up ({warmup} samples) must be shorter than a chunk ({chunk} samples)")
    T = dry.shape[-1]
    if T <= chunk:
        return dry.unsqueeze(0), wet.unsqueeze(0), 0
    hop = chunk - warmup
    d = torch.nn.functional.pad(dry, (warmup, 0))
    w = torch.nn.functional.pad(wet, (warmup, 0))
    total = T + warmup
    starts = list(range(0, total - chunk + 1, hop))
    if starts[-1] + chunk < total:
        starts.append(total - chunk)
    x = torch.stack([d[:, s : s + chunk] for s in starts])
    y = torch.stack([w[:, s : s + chunk] for s in starts])
    return x, y, warmup


def join_chunks(chunks: torch.Tensor) -> torch.Tensor:
    """``(n, channels, time)`` chunks laid end to end in time: ``(channels, n * time)``.

    Example:
        >>> x = torch.arange(12.0).reshape(3, 1, 4)
        >>> torch.equal(split_chunks(join_chunks(x), 3), x)
        True
    """
    if chunks.dim() != 3:
        raise ValueError(f"expected (chunks, channels, time), got shape {tuple(chunks.shape)}")
    n, c, t = chunks.shape
    return chunks.permute(1, 0, 2).reshape(c, n * t)


def split_chunks(audio: torch.Tensor, n: int) -> torch.Tensor:
    """``(channels, n * time)`` cut into ``n`` equal chunks: ``(n, channels, time)`` (the inverse of
    :func:`join_chunks`)."""
    if audio.dim() != 2 or n < 1 or audio.shape[-1] % n:
        raise ValueError(f"cannot cut audio of shape {tuple(audio.shape)} into {n} equal chunks")
    c, total = audio.shape
    return audio.reshape(c, n, total // n).permute(1, 0, 2).contiguous()
