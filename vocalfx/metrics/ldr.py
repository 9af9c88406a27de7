"""Multi-resolution loudness-dynamic-range distance (MLDR), DiffVox's dynamics metric."""

from __future__ import annotations

import math
from typing import Sequence, Tuple, Union

import torch
from torchcomp import avg as _one_pole_average

from ..params import SAMPLE_RATE, ms_to_coef
from ._util import check_pair, to_mid_side

__all__ = ["mldr", "ldr_alignment_shift"]

TimeConstants = Union[float, Sequence[float]]


def ldr_alignment_shift(short_ms: float, long_ms: float, sample_rate: float = SAMPLE_RATE) -> int:
    """Samples by which MLDR advances the long-term curve: ``floor(sample_rate (long - short) / 2000)``.

    Half the difference between the two averages' rise times, so that the curves line up; written
    as ``sample_rate * (long_ms - short_ms) * 0.0005`` like the reference, so that float rounding
    lands on the same integer.
    """
    return math.floor(sample_rate * (long_ms - short_ms) * 0.0005)


def _as_tuple(ms: TimeConstants, name: str) -> Tuple[float, ...]:
    values = (float(ms),) if isinstance(ms, (int, float)) else tuple(float(v) for v in ms)
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{name} must be one or more positive times in ms, got {ms!r}")
    return values


def _mldr_from_coefs(
    pred: torch.Tensor,
    target: torch.Tensor,
    terms: Sequence[Tuple[float, float, int]],
    mid_side: bool,
) -> torch.Tensor:
    """MLDR for explicit ``(short_coef, long_coef, shift_samples)`` terms (inputs already checked)."""
    if mid_side:
        pred, target = to_mid_side(pred), to_mid_side(target)
    batch, channels, time = pred.shape
    # One recursion per coefficient covers prediction and target together.
    power = torch.cat([pred, target], dim=0).square().clamp_min(1e-8).reshape(2 * batch * channels, time)
    total = pred.new_zeros(())
    for short_coef, long_coef, shift in terms:
        short = _one_pole_average(power, short_coef)
        long = _one_pole_average(power, long_coef)
        # The reference advances the long curve with a roll of the flattened (channels * time)
        # signal: channel c's last `shift` samples come from the start of channel c + 1 (the last
        # channel's from channel 0). We keep that, per batch item.
        long = long.reshape(2 * batch, channels * time).roll(-shift, dims=-1)
        ldr = torch.log(short.reshape(2 * batch, channels * time)) - torch.log(long)
        total = total + (ldr[:batch] - ldr[batch:]).abs().mean()
    return total


def mldr(
    pred: torch.Tensor,
    target: torch.Tensor,
    sample_rate: float = SAMPLE_RATE,
    *,
    mid_side: bool = False,
    short_ms: TimeConstants = (50.0, 100.0),
    long_ms: TimeConstants = (1000.0, 2000.0),
) -> torch.Tensor:
    """Multi-resolution loudness-dynamic-range (MLDR) distance, DiffVox's dynamics loss and metric.

    For each channel, with ``p = max(x^2, 1e-8)`` and one-pole averages
    ``avg_c(p)[n] = c p[n] + (1 - c) avg_c(p)[n-1]`` (zero initial state,
    ``c = 1 - exp(-2200 / (ms * sample_rate))``), the loudness dynamic range is::

        LDR[n] = log avg_short(p)[n] - log avg_long(p)[n + s],  s = floor(sample_rate (long - short) / 2000)

    The advance by ``s`` is a circular roll of the channels laid end to end (as in the reference),
    so the last ``s`` samples of a channel read the start of the next channel, and the last
    channel's read the first's. The distance is the mean ``|LDR_pred - LDR_target|`` over batch,
    channels and time, summed over the ``(short_ms[i], long_ms[i])`` pairs. With ``mid_side`` the
    channels are first turned into ``(L + R) / sqrt(2)`` and ``(L - R) / sqrt(2)``.

    The one-pole averages run as exact recursions (``torchcomp.avg``), differentiable with respect
    to both inputs. Coefficients are computed in float64; the reference computes them in float32
    (losing up to 0.1 % of the 2000 ms coefficient to cancellation in ``1 - exp``), which moves its
    values by 1e-5 to 3e-5 (relative) on the DiffVox goldens.

    Args:
        pred: Predicted audio.
        target: Reference audio, same shape and dtype as ``pred``.
        sample_rate: Sample rate in Hz. Default 44100.
        mid_side: Compare mid/side instead of the channels. Default ``False``.
        short_ms: Short-term time constants in ms. Default ``(50, 100)``.
        long_ms: Long-term time constants in ms, paired with ``short_ms``; each at least its
            partner. Default ``(1000, 2000)``.

    Shape:
        - pred, target: ``(batch, channels, time)``; ``channels == 2`` when ``mid_side``.
        - output: ``()``. Batch items are independent (the roll stays within an item; the reference
          evaluates batch 1), so the value equals the mean of the per-item values.

    Returns:
        The distance, a scalar tensor (log-amplitude units); 0 for identical inputs.

    Raises:
        ValueError: if the inputs are not equal-shape ``(batch, channels, time)`` tensors, are not
            stereo when ``mid_side`` is set, or the time constants are invalid.

    Example:
        >>> y = torch.randn(1, 2, 44100)
        >>> float(mldr(y, y))
        0.0
        >>> mldr(y, 0.5 * y) < 1e-5  # a gain change leaves the dynamic range alone
        tensor(True)
    """
    check_pair(pred, target, stereo=mid_side)
    shorts, longs = _as_tuple(short_ms, "short_ms"), _as_tuple(long_ms, "long_ms")
    if len(shorts) != len(longs):
        raise ValueError(f"short_ms and long_ms must pair up, got {len(shorts)} and {len(longs)} values")
    if any(lo < sh for sh, lo in zip(shorts, longs)):
        raise ValueError(f"each long_ms must be >= its short_ms, got {shorts} and {longs}")
    terms = [
        (
            float(ms_to_coef(sh, sample_rate)),
            float(ms_to_coef(lo, sample_rate)),
            ldr_alignment_shift(sh, lo, sample_rate),
        )
        for sh, lo in zip(shorts, longs)
    ]
    return _mldr_from_coefs(pred, target, terms, mid_side)
