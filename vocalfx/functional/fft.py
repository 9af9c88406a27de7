"""Real FFTs with cheaper gradients than torch's defaults.

torch differentiates ``rfft`` with a full-length complex FFT; the adjoint of a real FFT is a
(scaled) inverse real FFT of the gradient with its interior bins halved, and the adjoint of
``irfft`` is a weighted ``rfft``, each half the work. Results are identical to ``torch.fft``.

Two more savings, both for the chain's long (``~10^6``-point) spectra:

* the bin weights (1 at DC and at Nyquist for even ``n``, 2 elsewhere) are applied as one scalar
  scaling in place plus two edge fixes, not as a complex-by-real vector product (which costs a
  fresh 30 MB buffer and its page faults per call);
* :func:`irfft` takes ``length`` and returns only the first ``length`` samples, so its backward
  transforms the short gradient (torch zero-pads inside the FFT) instead of a zero-filled
  full-length copy; :func:`transfer` fuses a spectrum-times-transfer-function product with that
  inverse FFT and keeps only the two factors for the backward.
"""

from __future__ import annotations

import torch

__all__ = ["fft_length", "rfft", "irfft", "transfer", "stft_power"]


def fft_length(min_length: int) -> int:
    """The FFT size the library uses for a linear convolution needing ``min_length`` points.

    The next power of two. With torch's CPU FFT backend (MKL on x86) a power of two is 1.3-2.5x
    faster per transform than the nearest 5-smooth size, which more than pays for the extra
    padding: ``benchmarks/bench_kernels.py`` measures it (numbers in ``docs/design/chain.md``).
    """
    if min_length < 1:
        raise ValueError(f"need a positive length, got {min_length}")
    return 1 << (int(min_length) - 1).bit_length()


def _scale_bins_(G: torch.Tensor, n: int, interior: float) -> torch.Tensor:
    """In place: multiply the interior bins by ``interior`` and DC (and Nyquist, even ``n``) by half of it."""
    G.mul_(interior)
    G[..., 0].mul_(0.5)
    if n % 2 == 0:
        G[..., -1].mul_(0.5)
    return G


def _rfft_adjoint(X: torch.Tensor, n: int, length: int, scale: float = 1.0, overwrite: bool = False) -> torch.Tensor:
    """Adjoint of ``rfft(·, n)`` restricted to the first ``length`` samples, times ``scale``.

    ``overwrite``: ``X`` is a temporary the caller gives up (it is scaled in place, not copied).
    """
    # Re sum_k G_k e^{+j w_k t} = n * irfft(G / weight) with weight 1 at DC/Nyquist, 2 elsewhere
    G = X if overwrite else X.clone()
    G.mul_(0.5 * n * scale)
    G[..., 0].mul_(2.0)
    if n % 2 == 0:
        G[..., -1].mul_(2.0)
    g = torch.fft.irfft(G, n=n)
    return g if length >= n else g[..., :length].contiguous()  # do not keep the n-point buffer alive


def _irfft_adjoint(g: torch.Tensor, n: int, bins: int) -> torch.Tensor:
    """Adjoint of ``irfft(·, n)`` (truncated to ``g``'s length) for a spectrum of ``bins`` bins."""
    G = _scale_bins_(torch.fft.rfft(g, n=n), n, 2.0 / n)
    if G.shape[-1] < bins:
        G = torch.nn.functional.pad(G, (0, bins - G.shape[-1]))
    return G[..., :bins]


class _RFFT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, n):
        ctx.length = x.shape[-1]
        ctx.n = n
        return torch.fft.rfft(x, n=n)

    @staticmethod
    def backward(ctx, grad):
        return _rfft_adjoint(grad, ctx.n, ctx.length), None


class _IRFFT(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, n, length):
        ctx.bins = X.shape[-1]
        ctx.n = n
        y = torch.fft.irfft(X, n=n)
        return y if length >= n else y[..., :length].contiguous()

    @staticmethod
    def backward(ctx, grad):
        return _irfft_adjoint(grad.contiguous(), ctx.n, ctx.bins), None, None


def _sum_to(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``t`` over the dimensions that were broadcast from ``shape``."""
    dims = [i for i, (a, b) in enumerate(zip(t.shape, shape)) if b == 1 and a != 1]
    return t.sum(dims, keepdim=True) if dims else t


class _Transfer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, X, H, n, length):
        ctx.n = n
        ctx.save_for_backward(X, H)
        y = torch.fft.irfft(X * H, n=n)
        return y if length >= n else y[..., :length].contiguous()

    @staticmethod
    def backward(ctx, grad):
        X, H = ctx.saved_tensors
        G = _irfft_adjoint(grad.contiguous(), ctx.n, X.shape[-1])
        gX = _sum_to(G * H.conj_physical(), X.shape) if ctx.needs_input_grad[0] else None
        gH = _sum_to(G * X.conj_physical(), H.shape) if ctx.needs_input_grad[1] else None
        return gX, gH, None, None


def rfft(x: torch.Tensor, n: int) -> torch.Tensor:
    """``torch.fft.rfft(x, n=n)`` (zero-padded or truncated to ``n``) with a half-cost backward."""
    if x.shape[-1] > n:
        x = x[..., :n]
    if not x.requires_grad:
        return torch.fft.rfft(x, n=n)
    return _RFFT.apply(x, n)


def irfft(X: torch.Tensor, n: int, length: int | None = None) -> torch.Tensor:
    """``torch.fft.irfft(X, n=n)[..., :length]`` with a half-cost backward.

    ``length`` (default ``n``) keeps only the first samples; the backward then transforms the
    short gradient directly.
    """
    length = n if length is None else min(int(length), n)
    if not X.requires_grad:
        y = torch.fft.irfft(X, n=n)
        return y if length >= n else y[..., :length]
    return _IRFFT.apply(X, n, length)


def transfer(X: torch.Tensor, H: torch.Tensor, n: int, length: int | None = None) -> torch.Tensor:
    """``irfft(X * H, n)[..., :length]``: a spectrum through a transfer function, back in time.

    ``X`` and ``H`` are complex spectra of ``n // 2 + 1`` bins that broadcast against each other.
    The product is not kept for the backward (only ``X`` and ``H``), which saves one spectrum's
    worth of memory per call and the gradient of the product's buffer.
    """
    length = n if length is None else min(int(length), n)
    if not (X.requires_grad or H.requires_grad):
        y = torch.fft.irfft(X * H, n=n)
        return y if length >= n else y[..., :length]
    return _Transfer.apply(X, H, n, length)


class _STFTPower(torch.autograd.Function):
    """``|rfft(window * frame)|^2`` of half-overlapping frames, with an overlap-add backward."""

    @staticmethod
    def forward(ctx, x, window):
        n = window.shape[0]
        frames = x.unfold(-1, n, n // 2)  # (rows, frames, n): a view, no copy
        X = torch.fft.rfft(frames * window)
        ctx.save_for_backward(X, window)
        ctx.length = x.shape[-1]
        return X.real.square() + X.imag.square()

    @staticmethod
    def backward(ctx, grad):
        X, window = ctx.saved_tensors
        n = window.shape[0]
        hop = n // 2
        # d|X|^2 = 2 Re(conj(X) dX): the adjoint of rfft applied to 2 grad X, then the window
        # X * grad without promoting grad to a complex copy first
        G = torch.view_as_complex(torch.view_as_real(X) * grad.unsqueeze(-1))
        g = _rfft_adjoint(G, n, n, scale=2.0, overwrite=True).mul_(window)  # (rows, frames, n)
        rows, frames, _ = g.shape
        out = g.new_zeros(rows, (frames + 1) * hop)
        halves = out.view(rows, frames + 1, hop)
        halves[:, :frames] += g[..., :hop]
        halves[:, 1:] += g[..., hop:]
        if out.shape[-1] < ctx.length:
            out = torch.nn.functional.pad(out, (0, ctx.length - out.shape[-1]))
        return out[..., : ctx.length], None


def stft_power(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Power spectrogram ``|STFT|^2`` of ``(rows, time)`` with hop ``len(window) // 2``, no padding.

    Equal to ``torch.stft(x, n, n // 2, window=window, center=False, return_complex=True).abs() ** 2``
    transposed to ``(rows, frames, n // 2 + 1)``, with a backward that overlap-adds the frames'
    gradients (the two halves of each frame) instead of torch's complex FFT and ``index_add``:
    about twice as fast for the encoders' 4 x 11 s batches.
    """
    if x.dim() != 2:
        raise ValueError(f"expected (rows, time), got shape {tuple(x.shape)}")
    n = window.shape[0]
    if n % 2 or x.shape[-1] < n:
        raise ValueError(f"need an even window no longer than the signal, got {n} and {x.shape[-1]} samples")
    if not x.requires_grad:
        X = torch.fft.rfft(x.unfold(-1, n, n // 2) * window)
        return X.real.square() + X.imag.square()
    return _STFTPower.apply(x, window)
