"""Effect modules: declarative parameter specs over slices of the 130-value vector.

Each module reads its own slice of *native* values (see :mod:`vocalfx.params`) and renders with
the functional ops. They are stateless: the parameters live in one flat vector, owned by
:class:`vocalfx.VocalChain`, which is what presets, priors and the optimiser exchange.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import torch
from torch import nn

from .. import functional as VF
from ..params import FDN_DELAYS, MODULE_SLICES, SHELF_Q, SPECS, ParamSpec

__all__ = [
    "Effect",
    "PeakEQ",
    "LowShelf",
    "HighShelf",
    "LowPass",
    "HighPass",
    "CompressorExpander",
    "Send",
    "PingPongDelay",
    "FDNReverb",
    "ReverbEQ",
    "Pan",
]


class Effect(nn.Module):
    """Base: a named module owning the slice ``MODULE_SLICES[key]`` of the vector."""

    key: str = ""

    def __init__(self, sample_rate: float, key: str | None = None):
        super().__init__()
        self.sample_rate = float(sample_rate)
        if key is not None:
            self.key = key
        self.slice = MODULE_SLICES[self.key]

    @property
    def specs(self) -> Tuple[ParamSpec, ...]:
        return SPECS[self.slice]

    def values(self, native: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Named ``(batch,)`` native values of this module from ``(batch, 130)``."""
        v = native[:, self.slice]
        return {p.name.split(".", 1)[1]: v[:, i] for i, p in enumerate(self.specs)}

    def extra_repr(self) -> str:
        return f"{self.key}: " + ", ".join(f"{p.name.split('.', 1)[1]} [{p.unit or '-'}]" for p in self.specs)


class _Biquad(Effect):
    def coeffs(self, native: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, native: torch.Tensor) -> torch.Tensor:
        b, a = self.coeffs(native)
        return VF.biquad(x, b, a)


class PeakEQ(_Biquad):
    def coeffs(self, native: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        v = self.values(native)
        return VF.peak_coeffs(self.sample_rate, gain_db=v["gain_db"], freq_hz=v["freq_hz"], q=v["q"])


class LowShelf(_Biquad):
    def coeffs(self, native: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        v = self.values(native)
        return VF.low_shelf_coeffs(self.sample_rate, gain_db=v["gain_db"], freq_hz=v["freq_hz"], q=SHELF_Q)


class HighShelf(_Biquad):
    def coeffs(self, native: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        v = self.values(native)
        return VF.high_shelf_coeffs(self.sample_rate, gain_db=v["gain_db"], freq_hz=v["freq_hz"], q=SHELF_Q)


class LowPass(_Biquad):
    key = "lowpass"

    def coeffs(self, native: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        v = self.values(native)
        return VF.lowpass_coeffs(self.sample_rate, freq_hz=v["freq_hz"], q=v["q"])


class HighPass(_Biquad):
    key = "highpass"

    def coeffs(self, native: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        v = self.values(native)
        return VF.highpass_coeffs(self.sample_rate, freq_hz=v["freq_hz"], q=v["q"])


class CompressorExpander(Effect):
    key = "comp"

    def forward(self, x: torch.Tensor, native: torch.Tensor) -> torch.Tensor:
        v = self.values(native)
        return VF.compressor_expander(
            x,
            self.sample_rate,
            comp_threshold_db=v["comp_threshold_db"],
            comp_ratio=v["comp_ratio"],
            exp_threshold_db=v["exp_threshold_db"],
            exp_ratio=v["exp_ratio"],
            attack_coef=v["attack"],
            release_coef=v["release"],
            rms_coef=v["rms"],
            makeup_db=v["makeup_db"],
            lookahead_ms=v["lookahead_ms"],
        )


class Send(Effect):
    key = "send"

    def forward(self, native: torch.Tensor) -> torch.Tensor:
        return self.values(native)["delay_to_reverb"]


class PingPongDelay(Effect):
    key = "delay"
    ir_seconds = 4.0

    def ir(self, native: torch.Tensor) -> torch.Tensor:
        """Panned stereo response ``(batch, 2, L)`` including the output gain."""
        v = self.values(native)
        h = VF.ping_pong_delay_ir(
            self.sample_rate,
            delay_ms=v["delay_ms"],
            feedback=v["feedback"],
            lowpass_freq_hz=v["lowpass_freq_hz"],
            lowpass_q=v["lowpass_q"],
            ir_seconds=self.ir_seconds,
            dtype=native.dtype,
        )
        return VF.stereo_delay_ir(h, gain=v["gain"], odd_pan=v["odd_pan"], even_pan=v["even_pan"])

    def forward(self, x: torch.Tensor, native: torch.Tensor) -> torch.Tensor:
        return VF.fft_convolve(x.expand(-1, 2, -1), self.ir(native))


class ReverbEQ(Effect):
    """The FDN's 4-band post-EQ (peak, peak, low shelf, high shelf) as one frequency response."""

    key = "reverb_eq"

    def __init__(self, sample_rate: float):
        nn.Module.__init__(self)
        self.sample_rate = float(sample_rate)
        self.parts = ["reverb_eq_peak1", "reverb_eq_peak2", "reverb_eq_low_shelf", "reverb_eq_high_shelf"]
        self.slice = slice(MODULE_SLICES[self.parts[0]].start, MODULE_SLICES[self.parts[-1]].stop)

    def coeffs(self, native: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        sr = self.sample_rate
        out = []
        for part in self.parts:
            v = {
                p.name.split(".", 1)[1]: native[:, MODULE_SLICES[part]][:, i]
                for i, p in enumerate(SPECS[MODULE_SLICES[part]])
            }
            if "peak" in part:
                out.append(VF.peak_coeffs(sr, gain_db=v["gain_db"], freq_hz=v["freq_hz"], q=v["q"]))
            elif "low_shelf" in part:
                out.append(VF.low_shelf_coeffs(sr, gain_db=v["gain_db"], freq_hz=v["freq_hz"], q=SHELF_Q))
            else:
                out.append(VF.high_shelf_coeffs(sr, gain_db=v["gain_db"], freq_hz=v["freq_hz"], q=SHELF_Q))
        return torch.stack([b for b, _ in out], 1), torch.stack([a for _, a in out], 1)

    def response(self, native: torch.Tensor, n_fft: int) -> torch.Tensor:
        b, a = self.coeffs(native)
        return VF.cascade_response(b, a, n_fft)

    def impulse_response(self, native: torch.Tensor, tail: float = 1e-12) -> torch.Tensor:
        """The cascade's impulse response ``(batch, 1, L)`` in float64, run until it has decayed.

        ``L`` is where the slowest pole's envelope (with a margin for the four sections' repeated
        poles) falls below ``tail``: a few thousand samples within the parameters' ranges
        (peaks >= 200 Hz with Q <= 3, shelves >= 30 Hz).
        """
        b, a = self.coeffs(native.double())
        a = a / a[..., :1]
        with torch.no_grad():
            a1, a2 = a[..., 1], a[..., 2]
            disc = a1 * a1 - 4 * a2
            root = disc.abs().sqrt()
            # |poles|: sqrt(a2) when complex, else the larger magnitude of the two real roots
            radius = torch.where(disc < 0, a2.abs().sqrt(), torch.maximum((a1 + root).abs(), (a1 - root).abs()) / 2)
            r = float(radius.max())
        if not r < 1.0:
            raise ValueError(f"reverb post-EQ is unstable (pole radius {r:.6f})")
        length = 64 + int(2.0 * math.log(tail) / math.log(max(r, 1e-3)))
        impulse = torch.zeros(native.shape[0], 1, length, dtype=torch.float64, device=native.device)
        impulse[..., 0] = 1.0
        return VF.sosfilt(impulse, b, a)


class FDNReverb(Effect):
    key = "reverb"
    ir_seconds = 12.0

    def __init__(self, sample_rate: float):
        super().__init__(sample_rate)
        self.eq = ReverbEQ(sample_rate)

    def ir(self, native: torch.Tensor, length: int | None = None, post_eq: bool = True) -> torch.Tensor:
        """Response ``(batch, 2 out, 2 in, L)`` including the post-EQ, truncated to ``length``.

        As in DiffVox, the post-EQ filters the (12 s, frequency-sampled) response in time; since
        it is causal, only the first ``length`` samples need filtering. ``post_eq=False`` leaves
        it out (the fused chain applies :meth:`ReverbEQ.impulse_response` as a spectrum).
        """
        v = native[:, self.slice]
        n = len(FDN_DELAYS)
        b = v[:, : 2 * n].reshape(-1, n, 2)
        c = v[:, 2 * n : 4 * n].reshape(-1, 2, n)
        decay = v[:, 4 * n : 4 * n + 49]
        mixing = v[:, 4 * n + 49 :]
        L = int(self.sample_rate * self.ir_seconds)
        h = VF.fdn_ir(b=b, c=c, decay=decay, mixing=mixing, ir_length=L, delays=FDN_DELAYS)
        if length is not None:
            h = h[..., :length]
        if not post_eq:
            return h
        Bn, n_out, n_in, n = h.shape
        eb, ea = self.eq.coeffs(native.double())
        h = VF.sosfilt(h.reshape(Bn, n_out * n_in, n), eb, ea)
        return h.reshape(Bn, n_out, n_in, n)

    def forward(self, x: torch.Tensor, native: torch.Tensor) -> torch.Tensor:
        return VF.fft_convolve(x, self.ir(native))


class Pan(Effect):
    key = "pan"

    def forward(self, x: torch.Tensor, native: torch.Tensor) -> torch.Tensor:
        return VF.pan(x, position=self.values(native)["position"])


def eq_modules(sample_rate: float) -> List[_Biquad]:
    return [
        PeakEQ(sample_rate, "peak1"),
        PeakEQ(sample_rate, "peak2"),
        LowShelf(sample_rate, "low_shelf"),
        HighShelf(sample_rate, "high_shelf"),
        LowPass(sample_rate),
        HighPass(sample_rate),
    ]
