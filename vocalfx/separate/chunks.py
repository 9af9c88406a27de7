"""Chunked separation of long audio with bounded memory.

The mix is cut into chunks of ``chunk`` samples that start every ``chunk - overlap`` samples.
Each chunk is separated on its own (after resampling and channel adaptation for the backend);
in the overlap of two neighbours the earlier result fades out and the later one fades in with
complementary sine-squared ramps (``sin^2 + cos^2 = 1``), so a backend that returned its input
unchanged would give back the mix exactly. Results are produced in order, one finished block per
chunk, so a caller can write them out as they come: memory holds one chunk and one overlap,
whatever the length of the input.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterator, Optional, Tuple

import torch

from ..io import resample_audio
from .base import SeparationError, Separator

__all__ = ["chunk_layout", "iter_separate", "separate_in_memory"]

Reader = Callable[[int, int], torch.Tensor]


def chunk_layout(frames: int, chunk: int, overlap: int) -> list:
    """Start offsets of the chunks covering ``frames`` samples.

    Args:
        frames: input length (samples).
        chunk: chunk length (samples).
        overlap: overlap of neighbouring chunks (samples), ``0 <= overlap < chunk``.

    Returns:
        Starts ``[0, chunk - overlap, ...]``; the last chunk ends at or after ``frames`` and
        chunks after it would lie entirely inside it.
    """
    if chunk <= 0 or not 0 <= overlap < chunk:
        raise ValueError(f"need chunk > overlap >= 0, got chunk={chunk}, overlap={overlap} samples")
    hop = chunk - overlap
    starts = [0]
    while starts[-1] + chunk < frames:
        starts.append(starts[-1] + hop)
    return starts


def _fades(n: int, dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    fade_in = torch.sin(0.5 * math.pi * t) ** 2
    return fade_in.to(dtype), (1.0 - fade_in).to(dtype)


def _run_backend(sep: Separator, x: torch.Tensor, sample_rate: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """One chunk through the backend with its rate and channel needs met; results at ``x``'s."""
    channels, frames = x.shape
    work_rate = sep.sample_rate or sample_rate
    y = resample_audio(x, sample_rate, work_rate)
    if sep.channels is not None and sep.channels != channels:
        if sep.channels == 2 and channels == 1:
            y = y.expand(2, -1).contiguous()
        else:
            raise SeparationError(
                f"backend {sep.name!r} takes {sep.channels}-channel audio; got {channels} channels "
                "(only mono is adapted, by duplicating it)"
            )
    vocals, accomp = sep.separate_chunk(y, work_rate)
    if vocals.shape != y.shape or accomp.shape != y.shape:
        raise SeparationError(
            f"backend {sep.name!r} returned shapes {tuple(vocals.shape)} and {tuple(accomp.shape)} "
            f"for a chunk of shape {tuple(y.shape)}"
        )
    if y.shape[0] != channels:  # adapted mono: average back
        vocals, accomp = vocals.mean(0, keepdim=True), accomp.mean(0, keepdim=True)
    vocals = resample_audio(vocals, work_rate, sample_rate, length=frames)
    accomp = resample_audio(accomp, work_rate, sample_rate, length=frames)
    return vocals.to(x.dtype), accomp.to(x.dtype)


def iter_separate(
    read: Reader,
    frames: int,
    sample_rate: int,
    separator: Separator,
    *,
    chunk_seconds: Optional[float] = None,
    overlap_seconds: Optional[float] = None,
    progress: bool = False,
    desc: str = "separating",
) -> Iterator[Tuple[int, torch.Tensor, torch.Tensor]]:
    """Separate audio chunk by chunk, yielding finished blocks in order.

    Args:
        read: ``read(start, stop)`` returns the mix's samples ``[start, stop)`` as float32
            ``(channels, stop - start)`` (fewer at the end of the input).
        frames: total input length (samples).
        sample_rate: input rate (Hz).
        separator: the backend.
        chunk_seconds: chunk length (s); default the backend's :attr:`Separator.chunk_seconds`.
        overlap_seconds: cross-fade length (s); default the backend's.
        progress: show a progress bar (tqdm, stderr) with one step per chunk.
        desc: progress-bar label.

    Yields:
        ``(start, vocals, accompaniment)``: the finished samples from ``start``, each
        ``(channels, n)``; consecutive blocks are contiguous and cover ``[0, frames)``.

    Raises:
        SeparationError: ``chunk_seconds`` is not positive, ``overlap_seconds`` not in
            ``[0, chunk_seconds)``, or the reader or the backend returned the wrong shape.
    """
    chunk_s = separator.chunk_seconds if chunk_seconds is None else float(chunk_seconds)
    overlap_s = separator.overlap_seconds if overlap_seconds is None else float(overlap_seconds)
    if not (chunk_s > 0 and math.isfinite(chunk_s)):
        raise SeparationError(f"chunk_seconds must be positive, got {chunk_s}")
    if not (0 <= overlap_s < chunk_s):
        raise SeparationError(f"overlap_seconds must be in [0, chunk_seconds={chunk_s}), got {overlap_s}")
    chunk = max(1, int(round(chunk_s * sample_rate)))
    overlap = min(int(round(overlap_s * sample_rate)), chunk - 1)
    starts = chunk_layout(frames, chunk, overlap)
    fade_in, fade_out = _fades(overlap, torch.float32) if overlap else (None, None)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(starts), desc=desc, unit="chunk", leave=False)
    tail_v = tail_a = None
    try:
        for i, start in enumerate(starts):
            stop = min(start + chunk, frames)
            x = read(start, stop)
            if x.shape[-1] != stop - start:
                raise SeparationError(f"reader returned {x.shape[-1]} samples for [{start}, {stop})")
            v, a = _run_backend(separator, x, sample_rate)
            last = i == len(starts) - 1
            if tail_v is not None:  # fade in over the previous chunk's tail
                n = tail_v.shape[-1]
                v[:, :n] = v[:, :n] * fade_in[:n] + tail_v
                a[:, :n] = a[:, :n] * fade_in[:n] + tail_a
            if last:
                yield start, v, a
            else:
                keep = chunk - overlap
                tail_v = v[:, keep:] * fade_out[: v.shape[-1] - keep]
                tail_a = a[:, keep:] * fade_out[: a.shape[-1] - keep]
                yield start, v[:, :keep], a[:, :keep]
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def separate_in_memory(
    mix: torch.Tensor, sample_rate: int, separator: Separator, **kwargs: Any
) -> Tuple[torch.Tensor, torch.Tensor]:
    """:func:`iter_separate` over a ``(channels, time)`` tensor, collected into two tensors."""
    channels, frames = mix.shape
    vocals = torch.empty(channels, frames, dtype=torch.float32)
    accomp = torch.empty(channels, frames, dtype=torch.float32)
    src = mix.to(torch.float32)
    for start, v, a in iter_separate(lambda s, e: src[:, s:e].clone(), frames, sample_rate, separator, **kwargs):
        vocals[:, start : start + v.shape[-1]] = v
        accomp[:, start : start + a.shape[-1]] = a
    return vocals, accomp
