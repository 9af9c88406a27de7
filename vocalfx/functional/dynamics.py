"""Compressor/expander with RMS detection and fractional look-ahead (torchcomp semantics)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchcomp import avg as _one_pole_average
from torchcomp.core import compressor_core as _smooth_gain

from ._util import Param, batch_param, check_audio, run_ranges
from .fft import fft_length, irfft, rfft

__all__ = ["compexp_static_gain_db", "compressor_expander", "lookahead_shift"]


def compexp_static_gain_db(
    level_db: torch.Tensor,
    *,
    comp_threshold_db: torch.Tensor,
    comp_ratio: torch.Tensor,
    exp_threshold_db: torch.Tensor,
    exp_ratio: torch.Tensor,
) -> torch.Tensor:
    """Hard-knee static curve: ``min((1-1/Rc)(Tc-L), (1-1/Re)(Te-L), 0)`` in dB.

    Parameters are ``(batch,)`` and broadcast over ``level_db`` ``(batch, time)``.
    """
    comp = (1 - 1 / comp_ratio)[:, None] * (comp_threshold_db[:, None] - level_db)
    exp = (1 - 1 / exp_ratio)[:, None] * (exp_threshold_db[:, None] - level_db)
    return torch.minimum(comp, exp).clamp_max(0.0)


def lookahead_shift(
    gain: torch.Tensor, sample_rate: float, lookahead_ms: torch.Tensor, max_lookahead_ms: float = 15.0
) -> torch.Tensor:
    """Advance ``gain`` ``(batch, time)`` by ``lookahead_ms`` with a truncated-sinc interpolator.

    ``out[n] = sum_j g[n + j] sinc(j - L)`` for ``j`` in ``[-floor(sr/1000), floor(sr (max+1)/1000) - floor(sr/1000)]``,
    ``L = lookahead_ms * sr / 1000`` samples, with ``g`` extended by repeating its end values (DiffVox's
    look-ahead). Computed by FFT correlation.
    """
    B, T = gain.shape
    if lookahead_ms.dim() == 1 and lookahead_ms.shape[0] > 1 and lookahead_ms.stride(0) == 0:
        lookahead_ms = lookahead_ms[:1]  # one value broadcast to every row: one kernel, one FFT
    left = int(sample_rate * 0.001)
    length = int(sample_rate * (max_lookahead_ms + 1) * 0.001) + 1
    right = length - left - 1
    taps = torch.arange(length, dtype=gain.dtype, device=gain.device) - left
    shift = lookahead_ms * (0.001 * sample_rate)
    kernel = torch.sinc(taps[None, :] - shift[:, None])  # (B or 1, length)
    padded = torch.cat([gain[:, :1].expand(B, left), gain, gain[:, -1:].expand(B, right)], dim=1)
    n = fft_length(padded.shape[1] + length - 1)
    # correlation: out[n] = sum_i padded[n + i] kernel[i] = (padded * kernel_reversed)[n + length - 1]
    k = kernel.flip(-1)
    k = F.pad(k, (0, padded.shape[1] - k.shape[1])).expand(-1, padded.shape[1])
    spec = rfft(torch.cat([padded, k], 0), n)  # one batched FFT for signal and kernel
    Y = spec[:B] * spec[B:]
    return irfft(Y, n)[:, length - 1 : length - 1 + T]


def compressor_expander(
    x: torch.Tensor,
    sample_rate: float,
    *,
    comp_threshold_db: Param,
    comp_ratio: Param,
    exp_threshold_db: Param,
    exp_ratio: Param,
    attack_coef: Param,
    release_coef: Param,
    rms_coef: Param,
    makeup_db: Param = 0.0,
    lookahead_ms: Param = 0.0,
    max_lookahead_ms: float = 15.0,
) -> torch.Tensor:
    """Feed-forward compressor/expander (DiffVox/torchcomp).

    Signal flow: ``level = sqrt(avg(max(x^2, 1e-8)))`` with a one-pole average of coefficient
    ``rms_coef``; static gain from :func:`compexp_static_gain_db`; the linear gain is smoothed by a
    one-pole with ``attack_coef`` while the gain falls and ``release_coef`` while it rises
    (torchcomp's ``compressor_core``); the smoothed gain is advanced by ``lookahead_ms`` and
    multiplies ``x``; make-up gain last. Coefficients relate to times by
    :func:`vocalfx.params.ms_to_coef`.

    Args:
        x: ``(batch, channels, time)``; each channel is detected and compressed on its own.
        sample_rate: in Hz (used by the look-ahead).
        comp_threshold_db, exp_threshold_db: thresholds in dB.
        comp_ratio: compression ratio (> 1). exp_ratio: expansion ratio in (0, 1).
        attack_coef, release_coef, rms_coef: one-pole coefficients in (0, 1].
        makeup_db: make-up gain in dB.
        lookahead_ms: look-ahead in ms, in ``[0, max_lookahead_ms)``.

    Returns:
        ``(batch, channels, time)``.
    """
    check_audio(x)
    B, C, T = x.shape
    p = {
        k: batch_param(v, x).repeat_interleave(C) if batch_param(v, x).shape[0] > 1 else batch_param(v, x)
        for k, v in dict(
            ct=comp_threshold_db,
            cr=comp_ratio,
            et=exp_threshold_db,
            er=exp_ratio,
            at=attack_coef,
            rt=release_coef,
            rc=rms_coef,
            mu=makeup_db,
            la=lookahead_ms,
        ).items()
    }
    n = max(B * C, *(v.shape[0] for v in p.values()))
    flat = x.reshape(B * C, T).expand(n, T)
    full = {k: v.expand(n) for k, v in p.items()}
    if flat.device.type == "cpu":
        gain = smoothed_gain(flat, *(full[k] for k in ("ct", "cr", "et", "er", "at", "rt", "rc")))
    else:
        gain = _smoothed_gain_torchcomp(flat, *(full[k] for k in ("ct", "cr", "et", "er", "at", "rt", "rc")))
    gain = lookahead_shift(gain, sample_rate, full["la"], max_lookahead_ms)
    y = flat * gain * (10 ** (full["mu"] / 20))[:, None]
    return y.reshape(-1, C, T)


def _smoothed_gain_torchcomp(x, ct, cr, et, er, at, rt, rc):
    """:func:`smoothed_gain` composed from torchcomp's ``avg`` and ``compressor_core`` (the oracle)."""
    level = _one_pole_average(x.square().clamp_min(1e-8), rc).sqrt()
    g_db = compexp_static_gain_db(
        20 * torch.log10(level),
        comp_threshold_db=ct,
        comp_ratio=cr,
        exp_threshold_db=et,
        exp_ratio=er,
    )
    return _smooth_gain(10 ** (g_db / 20), x.new_ones(x.shape[0]), at, rt)


class _SmoothedGain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, *params):
        from ._dyn_kernel import gain_forward

        xn = x.detach().contiguous().numpy()
        pn = torch.stack([q.detach().double() for q in params], 1).contiguous().numpy()
        s, u, g = (np.empty(xn.shape, dtype=np.float64) for _ in range(3))
        run_ranges(gain_forward, xn.shape[0], xn, pn, s, u, g)
        ctx.save_for_backward(x)
        ctx.state = (pn, s, u, g)
        ctx.dtypes = [q.dtype for q in params]
        return torch.from_numpy(g).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        from ._dyn_kernel import gain_backward

        (x,) = ctx.saved_tensors
        pn, s, u, g = ctx.state
        xn = x.detach().contiguous().numpy()
        dx = np.empty(xn.shape, dtype=xn.dtype)
        dp = np.empty(pn.shape, dtype=np.float64)
        run_ranges(gain_backward, xn.shape[0], xn, pn, s, u, g, grad.detach().contiguous().numpy(), dx, dp)
        dp = torch.from_numpy(dp)
        return (torch.from_numpy(dx), *(dp[:, i].to(dt) for i, dt in enumerate(ctx.dtypes)))


def smoothed_gain(
    x: torch.Tensor,
    ct: torch.Tensor,
    cr: torch.Tensor,
    et: torch.Tensor,
    er: torch.Tensor,
    at: torch.Tensor,
    rt: torch.Tensor,
    rc: torch.Tensor,
) -> torch.Tensor:
    """The compressor/expander's smoothed linear gain for rows ``x`` ``(R, T)``, before the look-ahead.

    Exactly torchcomp's ``compressor_core(10^(static_db(20 log10 sqrt(avg(max(x^2, 1e-8), rc))) / 20),
    1, at, rt)`` (static curve: :func:`compexp_static_gain_db`), fused into one compiled pass each
    way (:mod:`vocalfx.functional._dyn_kernel`) with float64 state: 3-5x faster than the dozen
    full-length tensor operations it replaces and a fraction of their memory (measured by
    ``benchmarks/bench_kernels.py``; equality with torchcomp and gradients in ``tests/test_functional.py``).
    Parameters are ``(R,)``: thresholds in dB, ratios, one-pole coefficients in ``(0, 1]``. CPU only.
    """
    return _SmoothedGain.apply(x, ct, cr, et, er, at, rt, rc)
