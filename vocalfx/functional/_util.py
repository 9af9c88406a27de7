"""Shared helpers for the functional ops (shape checks, parameter broadcasting, FFT sizes)."""

from __future__ import annotations

from typing import Callable, Union

import torch

Param = Union[float, torch.Tensor]


def check_audio(x: torch.Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` is ``(batch, channels, time)``."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"expected {name} of shape (batch, channels, time), got shape {shape}")


def as_param(p: Param, like: torch.Tensor) -> torch.Tensor:
    """A float or tensor as a tensor in ``like``'s dtype and device (no copy when possible)."""
    return torch.as_tensor(p, dtype=like.dtype, device=like.device)


def batch_param(p: Param, like: torch.Tensor) -> torch.Tensor:
    """A scalar or ``(batch,)`` parameter as a ``(batch_or_1,)`` tensor."""
    t = as_param(p, like)
    if t.dim() == 0:
        t = t.reshape(1)
    if t.dim() != 1:
        raise ValueError(f"expected a scalar or a (batch,) parameter, got shape {tuple(t.shape)}")
    return t


def broadcast_batch(*sizes: int) -> int:
    """The common batch size of several batch dimensions (1 broadcasts)."""
    out = 1
    for s in sizes:
        if s != 1:
            if out != 1 and out != s:
                raise ValueError(f"batch sizes {sizes} do not broadcast")
            out = s
    return out


_POOL: list = []  # [ThreadPoolExecutor] once a parallel call has needed one


def run_ranges(kernel: Callable[..., None], n_jobs: int, *args) -> None:
    """Run ``kernel(*args, j0, j1)`` over ``[0, n_jobs)`` split into contiguous ranges, in threads.

    For the compiled (numba, ``nogil``) kernels: as many ranges as torch's intra-op threads
    (``torch.get_num_threads()``), the calling thread taking the first. Plain threads that block
    when idle, not numba's ``parallel=True``: its OpenMP pool spins beside torch's own and slowed
    every torch operation after a kernel by up to 10x on a 2-core machine (``docs/design/chain.md``).
    """
    k = max(1, min(torch.get_num_threads(), n_jobs))
    if k == 1:
        kernel(*args, 0, n_jobs)
        return
    if not _POOL or _POOL[0]._max_workers < k - 1:
        from concurrent.futures import ThreadPoolExecutor

        if _POOL:
            _POOL.pop().shutdown(wait=False)
        _POOL.append(ThreadPoolExecutor(max_workers=k - 1, thread_name_prefix="vocalfx-kernel"))
    bounds = [n_jobs * i // k for i in range(k + 1)]
    futures = [_POOL[0].submit(kernel, *args, bounds[i], bounds[i + 1]) for i in range(1, k)]
    kernel(*args, bounds[0], bounds[1])
    for f in futures:
        f.result()
