"""Multi-resolution STFT distance (MSS) with DiffVox's evaluation settings, via auraloss."""

from __future__ import annotations

import functools

import torch
import torchaudio.functional as taF
from auraloss.freq import MultiResolutionSTFTLoss, STFTLoss
from auraloss.perceptual import FIRFilter

from ..params import SAMPLE_RATE
from ._util import check_pair

__all__ = ["mss", "MSS_FFT_SIZES", "MSS_HOP_SIZES", "MSS_WIN_LENGTHS"]

MSS_FFT_SIZES = (128, 512, 2048)
MSS_HOP_SIZES = (32, 128, 512)
MSS_WIN_LENGTHS = (128, 512, 2048)


class _WeightedMultiResolutionSTFT(torch.nn.Module):
    """auraloss's A-weighted multi-resolution STFT loss, A-weighting each signal once.

    ``MultiResolutionSTFTLoss(..., perceptual_weighting=True)`` runs the same 101-tap A-weighting
    FIR inside each of its three resolutions (and, for float64, through PyTorch's slow direct
    convolution). The FIR does not depend on the resolution, so we run auraloss's filter once and
    hand the result to an unweighted ``MultiResolutionSTFTLoss``: a third of the filtering.
    ``SumAndDifferenceSTFTLoss`` is ``(loss(L+R) + loss(L-R)) / 2`` with the sums formed before the
    weighting, as here.

    The filter's taps are auraloss's, but it is applied by FFT convolution
    (``torchaudio.functional.fftconvolve``, mode ``"same"``) instead of auraloss's ``conv1d``
    (a correlation with ``padding = ntaps // 2``; the taps are flipped to give the same
    operation). On 44 s of stereo float32 on one core ``benchmarks/bench_metrics.py`` measured
    oneDNN's ``conv1d`` at several times the cost of the FFT, and PyTorch's own kernel (what the
    evaluation used to switch oneDNN off for, a process-wide flag) at about twice it; the results
    agree with ``conv1d`` to float32 rounding (``tests/test_metrics.py``).
    """

    def __init__(self, sample_rate: float, mid_side: bool) -> None:
        super().__init__()
        self.mid_side = mid_side
        self.weighting = FIRFilter(filter_type="aw", fs=sample_rate)
        self.stft = MultiResolutionSTFTLoss(
            fft_sizes=list(MSS_FFT_SIZES),
            hop_sizes=list(MSS_HOP_SIZES),
            win_lengths=list(MSS_WIN_LENGTHS),
            sample_rate=sample_rate,
            perceptual_weighting=False,
        )

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.mid_side:  # auraloss's SumAndDifference: unnormalised L + R and L - R
            pred = torch.stack([pred[:, 0] + pred[:, 1], pred[:, 0] - pred[:, 1]], dim=1)
            target = torch.stack([target[:, 0] + target[:, 1], target[:, 0] - target[:, 1]], dim=1)
        taps = self.weighting.fir.weight.detach().reshape(1, 1, -1).flip(-1)
        pred = taF.fftconvolve(pred, taps, mode="same")
        target = taF.fftconvolve(target, taps, mode="same")
        if self.mid_side:
            return (self.stft(pred[:, :1], target[:, :1]) + self.stft(pred[:, 1:], target[:, 1:])) / 2
        return self.stft(pred, target)


@functools.lru_cache(maxsize=None)
def _stft_loss(sample_rate: float, mid_side: bool, dtype: torch.dtype, device: torch.device) -> torch.nn.Module:
    """Build (once per setting) the loss DiffVox's ``loss_eval.py`` computes.

    auraloss makes its Hann windows in the default dtype (float32 in DiffVox) and keeps them outside
    the module's buffers, so ``.to(dtype)`` would not convert them; we recompute them in float32 and
    cast, so float64 results use the reference's window values whatever the global default dtype is.
    The A-weighting FIR taps are float32 in auraloss and cast by ``.to``.
    """
    loss = _WeightedMultiResolutionSTFT(sample_rate, mid_side).to(device=device, dtype=dtype).eval()
    for module in loss.modules():
        if isinstance(module, STFTLoss):
            module.window = torch.hann_window(module.win_length, dtype=torch.float32).to(device=device, dtype=dtype)
    return loss


def mss(
    pred: torch.Tensor,
    target: torch.Tensor,
    sample_rate: float = SAMPLE_RATE,
    *,
    mid_side: bool = False,
) -> torch.Tensor:
    """Multi-resolution STFT loss between two signals, as DiffVox evaluates it.

    This is auraloss's ``MultiResolutionSTFTLoss`` with FFT sizes 128/512/2048, hops 32/128/512,
    Hann windows as long as the FFT, and A-weighting (auraloss's 101-tap FIR fitted to the IEC
    A-curve at ``sample_rate``) applied to both signals first. Per resolution the loss is spectral
    convergence ``||Y| - |X||_F / ||Y||_F`` plus the mean ``| log|X| - log|Y| |`` (magnitudes
    floored at 1e-4); the three resolutions are averaged. With ``mid_side=True`` it is auraloss's
    ``SumAndDifferenceSTFTLoss``: the same loss on ``L + R`` and on ``L - R``, averaged.

    The loss modules are built once per ``(sample_rate, mid_side, dtype, device)`` and cached.
    Differentiable with respect to both inputs.

    Args:
        pred: Predicted audio.
        target: Reference audio, same shape and dtype as ``pred``.
        sample_rate: Sample rate in Hz (sets the A-weighting filter). Default 44100.
        mid_side: Compare sum/difference signals instead of the channels. Default ``False``.

    Shape:
        - pred, target: ``(batch, channels, time)``; ``channels == 2`` when ``mid_side``;
          ``time > 1024`` (the largest FFT's reflect padding).
        - output: ``()``. With ``batch > 1`` the spectral-convergence norms pool the whole batch
          (auraloss), so the value is not exactly the mean of per-item values.

    Returns:
        The loss, a scalar tensor; 0 for identical inputs.

    Raises:
        ValueError: if the inputs are not equal-shape ``(batch, channels, time)`` tensors, are too
            short, or are not stereo when ``mid_side`` is set.

    Example:
        >>> y = torch.randn(1, 2, 44100)
        >>> float(mss(y, y))
        0.0
    """
    check_pair(pred, target, stereo=mid_side)
    min_len = max(MSS_FFT_SIZES) // 2 + 1
    if pred.shape[-1] < min_len:
        raise ValueError(f"mss needs at least {min_len} samples, got {pred.shape[-1]}")
    loss = _stft_loss(float(sample_rate), bool(mid_side), pred.dtype, pred.device)
    return loss(pred, target)
