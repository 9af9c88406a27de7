"""Pure, batched, differentiable DSP on ``(batch, channels, time)`` tensors."""

from .conv import fft_convolve
from .delay import ping_pong_delay, ping_pong_delay_ir, stereo_delay_ir
from .dynamics import compexp_static_gain_db, compressor_expander, lookahead_shift
from .filters import (
    biquad,
    biquad_cascade_fft,
    biquad_response,
    cascade_response,
    high_shelf_coeffs,
    highpass_coeffs,
    low_shelf_coeffs,
    lowpass_coeffs,
    peak_coeffs,
    sosfilt,
)
from .pan import pan, pan_gains
from .reverb import fdn_decay_gains, fdn_ir, fdn_response, fdn_reverb, mixing_matrix

__all__ = [
    "fft_convolve",
    "ping_pong_delay",
    "ping_pong_delay_ir",
    "stereo_delay_ir",
    "compexp_static_gain_db",
    "compressor_expander",
    "lookahead_shift",
    "biquad",
    "biquad_cascade_fft",
    "biquad_response",
    "cascade_response",
    "high_shelf_coeffs",
    "highpass_coeffs",
    "low_shelf_coeffs",
    "lowpass_coeffs",
    "peak_coeffs",
    "sosfilt",
    "pan",
    "pan_gains",
    "fdn_decay_gains",
    "fdn_ir",
    "fdn_response",
    "fdn_reverb",
    "mixing_matrix",
]
