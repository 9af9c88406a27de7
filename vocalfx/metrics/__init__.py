"""Evaluation metrics and training losses, as DiffVox computes them.

- :func:`mss`: multi-resolution STFT loss (A-weighted, FFT 128/512/2048), on L/R or mid/side.
- :func:`mldr`: multi-resolution loudness-dynamic-range distance, on L/R or mid/side.
- :func:`pmse`: mean squared error between raw 130-value parameter vectors.

Audio metrics take ``(batch, channels, time)`` tensors and return a scalar tensor; all are
differentiable. ``tests/test_metrics.py`` checks them against ``goldens/metrics.json``.
"""

from .ldr import ldr_alignment_shift, mldr
from .stft import MSS_FFT_SIZES, MSS_HOP_SIZES, MSS_WIN_LENGTHS, mss
from .vector import pmse

__all__ = [
    "mss",
    "mldr",
    "pmse",
    "ldr_alignment_shift",
    "MSS_FFT_SIZES",
    "MSS_HOP_SIZES",
    "MSS_WIN_LENGTHS",
]
