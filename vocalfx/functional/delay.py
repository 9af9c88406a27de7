"""Ping-pong delay with a low-pass in the feedback loop, built as an impulse response."""

from __future__ import annotations

import torch

from ._util import Param, batch_param, check_audio
from .conv import fft_convolve
from .fft import irfft, rfft
from .filters import biquad_response, lowpass_coeffs
from .pan import pan_gains

__all__ = ["ping_pong_delay_ir", "ping_pong_delay"]


def ping_pong_delay_ir(
    sample_rate: float,
    *,
    delay_ms: Param,
    feedback: Param,
    lowpass_freq_hz: Param,
    lowpass_q: Param,
    ir_seconds: float = 4.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Odd- and even-echo impulse responses of the ping-pong delay (DiffVox's ``Delay``).

    Echo ``n = 1, 2, ...`` (while ``n <= L // floor(d + 1)``) is a sinc interpolator centred at
    ``n d`` samples (``d = delay_ms * sr / 1000``), weighted by ``feedback^(n-1)`` and filtered
    ``n`` times by the loop low-pass. With ``S(w)`` the DFT of one low-passed sinc over the
    ``L``-sample window, the odd response is ``sum_{n odd} feedback^(n-1) S^n`` and the even one
    ``sum_{n even} ...``, evaluated by Horner's rule and brought back by an inverse FFT (so, as in
    DiffVox, with period ``L``).

    Args:
        sample_rate: in Hz.
        delay_ms: echo spacing in ms, float or ``(batch,)``.
        feedback: echo-to-echo gain in (0, 1).
        lowpass_freq_hz, lowpass_q: the loop low-pass.
        ir_seconds: length of the response (DiffVox: 4 s).

    Returns:
        ``(batch, 2, L)``: channel 0 the odd echoes, channel 1 the even echoes (not yet scaled by
        the delay's output gain, not panned).
    """
    like = torch.zeros((), dtype=dtype)
    for p in (delay_ms, feedback, lowpass_freq_hz, lowpass_q):
        if isinstance(p, torch.Tensor):
            like = p
            break
    d = batch_param(delay_ms, like) * (sample_rate * 0.001)
    fb = batch_param(feedback, like)
    L = int(sample_rate * max(ir_seconds, 2.0))
    n_echoes = [L // int(v + 1) for v in d.detach().reshape(-1).tolist()]
    t = torch.arange(L, dtype=like.dtype, device=like.device)
    sinc = torch.sinc(t[None, :] - d[:, None])  # (B, L)
    b, a = lowpass_coeffs(sample_rate, freq_hz=lowpass_freq_hz, q=lowpass_q)
    b, a = b.reshape(-1, 3), a.reshape(-1, 3)
    S = rfft(sinc, L) * biquad_response(b, a, L)  # (B, bins)
    Bn = S.shape[0]
    fb = fb.expand(Bn)
    q2 = (fb[:, None] * S) ** 2
    n_max = max(n_echoes)
    n_odd = torch.tensor([(n + 1) // 2 for n in n_echoes], device=S.device)
    n_even = torch.tensor([n // 2 for n in n_echoes], device=S.device)
    if len(n_echoes) == 1:
        n_odd, n_even = n_odd.expand(Bn), n_even.expand(Bn)
    # Horner: sum_{k<K} q2^k, with K differing per batch item
    K = (n_max + 1) // 2
    acc_odd = torch.zeros_like(S)
    acc_even = torch.zeros_like(S)
    for k in range(K - 1, -1, -1):
        one_o = (n_odd > k).to(S.real.dtype)[:, None]
        one_e = (n_even > k).to(S.real.dtype)[:, None]
        acc_odd = acc_odd * q2 + one_o
        acc_even = acc_even * q2 + one_e
    odd = S * acc_odd
    even = S * (fb[:, None] * S) * acc_even
    return irfft(torch.stack([odd, even], 1), L)


def ping_pong_delay(
    x: torch.Tensor,
    sample_rate: float,
    *,
    delay_ms: Param,
    feedback: Param,
    gain: Param,
    lowpass_freq_hz: Param,
    lowpass_q: Param,
    odd_pan: Param = 0.5,
    even_pan: Param = 0.5,
    ir_seconds: float = 4.0,
) -> torch.Tensor:
    """Ping-pong delay of a mono signal: ``(batch, 1, time)`` -> wet only ``(batch, 2, time)``.

    ``y = gain * (pan(odd_pan) (x * h_odd) + pan(even_pan) (x * h_even))`` with the responses of
    :func:`ping_pong_delay_ir`; pans are positions in (0, 1) (0.5 = centre).
    """
    check_audio(x)
    if x.shape[1] != 1:
        raise ValueError(f"ping_pong_delay expects mono input (batch, 1, time), got {tuple(x.shape)}")
    h = ping_pong_delay_ir(
        sample_rate,
        delay_ms=delay_ms,
        feedback=feedback,
        lowpass_freq_hz=lowpass_freq_hz,
        lowpass_q=lowpass_q,
        ir_seconds=ir_seconds,
        dtype=x.dtype,
    ).to(x.dtype)
    h = stereo_delay_ir(
        h, gain=batch_param(gain, x), odd_pan=batch_param(odd_pan, x), even_pan=batch_param(even_pan, x)
    )
    return fft_convolve(
        x.expand(-1, 2, -1) if h.shape[0] == x.shape[0] or h.shape[0] == 1 else x.expand(h.shape[0], 2, -1), h
    )


def stereo_delay_ir(
    h: torch.Tensor, *, gain: torch.Tensor, odd_pan: torch.Tensor, even_pan: torch.Tensor
) -> torch.Tensor:
    """Combine odd/even responses ``(B, 2, L)`` into the panned stereo response ``(B, 2, L)``."""
    po = pan_gains(odd_pan)  # (B, 2)
    pe = pan_gains(even_pan)
    return gain[:, None, None] * (po[:, :, None] * h[:, :1] + pe[:, :, None] * h[:, 1:2])
