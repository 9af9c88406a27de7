"""The DiffVox vocal chain.

``x -> PK1 -> PK2 -> LS -> HS -> LP -> HP -> Comp/Exp = u``, then
``y = pan(u) + delay(u) + fdn(u [1, 1] + send * delay(u))``, mono in, stereo out.

Everything after the compressor is linear and time-invariant, so the chain renders it as one
stereo transfer function per output channel on a shared FFT grid:
``Y_o = U (P_o + D_o + sum_i F_oi (1 + send D_i))`` with ``P`` the direct pan gains, ``D`` the
delay's and ``F`` the FDN's responses (both truncated to the signal length, as the reference's
causal convolutions are). The six EQ biquads run as true IIR filters (one compiled pass through
all sections, :func:`vocalfx.functional.sosfilt`).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from .. import functional as VF
from .._util_check import check_mono_batch
from ..functional.fft import fft_length, rfft, transfer
from ..params import NUM_PARAMS, default_vector, raw_to_native
from .modules import CompressorExpander, FDNReverb, Pan, PingPongDelay, Send, eq_modules

__all__ = ["VocalChain"]


class VocalChain(nn.Module):
    """Differentiable vocal chain; renders ``(B, 1, T)`` mono to ``(B, 2, T)`` stereo.

    Args:
        sample_rate: in Hz. Presets are defined at 44.1 kHz (the FDN delay lengths are in samples).

    Example:
        >>> chain = VocalChain(44100)
        >>> y = chain(torch.randn(1, 1, 44100))            # the chain's own parameters
        >>> y = chain(x, params=torch.zeros(4, 130))        # four presets, one call
    """

    #: Recompute the compressor/expander in the backward pass instead of keeping its
    #: intermediates (same gradients; less memory, a little more time). See ``docs/design/chain.md``.
    recompute_dynamics: bool = False

    def __init__(self, sample_rate: float = 44100):
        super().__init__()
        self.sample_rate = float(sample_rate)
        self.raw = nn.Parameter(torch.as_tensor(default_vector(), dtype=torch.float32))
        self.eq = nn.ModuleList(eq_modules(sample_rate))
        self.comp = CompressorExpander(sample_rate)
        self.send = Send(sample_rate)
        self.delay = PingPongDelay(sample_rate)
        self.reverb = FDNReverb(sample_rate)
        self.pan = Pan(sample_rate)

    def forward(self, x: torch.Tensor, params: torch.Tensor | None = None) -> torch.Tensor:
        """Render.

        Args:
            x: dry mono audio ``(B, 1, T)`` (``B = 1`` broadcasts against the presets).
            params: raw vectors ``(P, 130)`` or ``(130,)``; default: this module's ``raw``.
                ``P`` must equal ``B``, or one of them must be 1.

        Returns:
            ``(max(B, P), 2, T)`` in ``x``'s dtype.
        """
        check_mono_batch(x)
        raw = self.raw if params is None else params
        raw = raw.to(x.dtype)
        if raw.dim() == 1:
            raw = raw.unsqueeze(0)
        if raw.dim() != 2 or raw.shape[1] != NUM_PARAMS:
            raise ValueError(f"expected params of shape (batch, {NUM_PARAMS}), got {tuple(raw.shape)}")
        if x.shape[0] != raw.shape[0] and 1 not in (x.shape[0], raw.shape[0]):
            raise ValueError(f"batch of audio ({x.shape[0]}) and of params ({raw.shape[0]}) do not broadcast")
        native = raw_to_native(raw)
        return self.render_native(x, native)

    def eq_coeffs(self, native: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """EQ coefficients ``(B, 6, 3)`` each, computed in float64 (low-frequency poles need it)."""
        native = native.double()
        bs, as_ = zip(*(m.coeffs(native) for m in self.eq))
        return torch.stack(bs, 1), torch.stack(as_, 1)

    def render_native(self, x: torch.Tensor, native: torch.Tensor) -> torch.Tensor:
        b, a = self.eq_coeffs(native)
        x_eq = VF.sosfilt(x, b, a)
        if self.recompute_dynamics and torch.is_grad_enabled() and (x_eq.requires_grad or native.requires_grad):
            # keep only the compressor's input for the backward and run it again there: its
            # intermediates are a dozen signal-length buffers (about a third of a step's memory)
            u = checkpoint(self.comp, x_eq, native, use_reentrant=False)
        else:
            u = self.comp(x_eq, native)  # (B, 1, T)
        return self.render_post(u, native)

    def _responses(self, native: torch.Tensor, T: int, grad: bool):
        with torch.set_grad_enabled(grad):
            hd = self.delay.ir(native)[..., :T]  # (B, 2, min(T, Ld))
            hf = self.reverb.ir(native, length=T, post_eq=False)  # (B, 2, 2, min(T, Lf))
            he = self.reverb.eq.impulse_response(native).to(hf.dtype)  # (B, 1, Le)
        return hd, hf, he

    def render_post(
        self, u: torch.Tensor, native: torch.Tensor, responses: Optional[Tuple[torch.Tensor, ...]] = None
    ) -> torch.Tensor:
        """The linear part after the compressor, as one transfer function per output channel.

        The FDN's post-EQ multiplies the FDN's spectrum (its decayed impulse response on the same
        grid) instead of filtering the four truncated responses in time: the same output on
        ``[0, T)``, since the grid holds the whole ``u * h * eq`` (``n >= 2T + Le - 1``).
        """
        T = u.shape[-1]
        hd, hf, he = responses if responses is not None else self._responses(native, T, torch.is_grad_enabled())
        n = fft_length(T + max(hd.shape[-1], hf.shape[-1] + he.shape[-1] - 1) - 1)
        D = rfft(hd, n)  # (P, 2, bins)
        Fr = rfft(hf, n)  # (P, 2, 2, bins)
        E = rfft(he, n)  # (P, 1, bins)
        U = rfft(u, n)  # (B, 1, bins)
        send = self.send(native)[:, None, None]
        fdn_in = 1 + send * D  # (B, 2 in, bins)
        P = VF.pan_gains(self.pan.values(native)["position"])  # (B, 2)
        Hsum = P[:, :, None] + D + E * (Fr * fdn_in[:, None, :, :]).sum(2)
        return transfer(U, Hsum, n, T)

    def render_reference(self, x: torch.Tensor, native: torch.Tensor) -> dict:
        """Stage-by-stage render with the plain (unfused) modules, for tests and inspection.

        Returns a dict with ``after_eq``, ``after_compexp``, ``direct_pan``, ``delay_branch``,
        ``fdn_branch`` and ``output`` (the stage names of the reference goldens).
        """
        h = x
        for m in self.eq:
            h = m(h, native)
        after_eq = h
        u = self.comp(h, native)
        direct = self.pan(u, native)
        d = self.delay(u, native)
        send = self.send(native)[:, None, None]
        f = self.reverb(u.expand(-1, 2, -1) + send * d, native)
        return dict(
            after_eq=after_eq, after_compexp=u, direct_pan=direct, delay_branch=d, fdn_branch=f, output=direct + d + f
        )
