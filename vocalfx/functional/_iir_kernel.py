"""Numba kernels for a cascade of biquads (second-order sections), forward and adjoint.

Each row is filtered sample by sample through all sections (transposed direct form II, zero
initial state); the sections' recursions are independent dependency chains, so the CPU overlaps
them. Each call filters the rows ``[r0, r1)``; :func:`vocalfx.functional._util.run_ranges` splits
the rows over threads. Coefficients are normalised (``a0 = 1``) by the caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy", nogil=True)
def sos_forward(x, b, a, keep, ys, r0, r1):
    """Filter rows ``x`` ``(R, T)`` with sections ``b``, ``a`` ``(R, K, 3)``.

    Writes the output of every section into ``ys`` ``(R, K, T)`` when ``keep`` (needed by the
    backward pass), else only the last section's output into ``ys[:, 0]``.
    """
    R, T = x.shape
    K = b.shape[1]
    for r in range(r0, r1):
        s1 = np.zeros(K, dtype=np.float64)
        s2 = np.zeros(K, dtype=np.float64)
        b0 = b[r, :, 0].astype(np.float64)
        b1 = b[r, :, 1].astype(np.float64)
        b2 = b[r, :, 2].astype(np.float64)
        a1 = a[r, :, 1].astype(np.float64)
        a2 = a[r, :, 2].astype(np.float64)
        for n in range(T):
            v = np.float64(x[r, n])
            for k in range(K):
                y = b0[k] * v + s1[k]
                s1[k] = b1[k] * v - a1[k] * y + s2[k]
                s2[k] = b2[k] * v - a2[k] * y
                v = y
                if keep:
                    ys[r, k, n] = y
            if not keep:
                ys[r, 0, n] = v


@njit(cache=True, error_model="numpy", nogil=True)
def sos_backward(x, ys, b, a, g, gx, gb, ga, r0, r1):
    """Adjoint of :func:`sos_forward` (with ``keep``).

    For one section ``y[n] = b0 x[n] + b1 x[n-1] + b2 x[n-2] - a1 y[n-1] - a2 y[n-2]`` and output
    gradient ``g``: ``mu[n] = g[n] - a1 mu[n+1] - a2 mu[n+2]`` (anti-causal), ``dx[n] = b0 mu[n] +
    b1 mu[n+1] + b2 mu[n+2]``, ``db_k = sum_n mu[n+k] x[n]``, ``da_k = -sum_n mu[n+k] y[n]``; all
    in one reverse sweep per section, whose ``dx`` is the previous section's output gradient.
    """
    R, K, T = ys.shape
    for r in range(r0, r1):
        cur = np.empty(T, dtype=np.float64)
        for n in range(T):
            cur[n] = g[r, n]
        for k in range(K - 1, -1, -1):
            b0 = np.float64(b[r, k, 0])
            b1 = np.float64(b[r, k, 1])
            b2 = np.float64(b[r, k, 2])
            a1 = np.float64(a[r, k, 1])
            a2 = np.float64(a[r, k, 2])
            xin = x[r] if k == 0 else ys[r, k - 1]
            yk = ys[r, k]
            m1 = 0.0  # mu[n + 1]
            m2 = 0.0  # mu[n + 2]
            db0 = 0.0
            db1 = 0.0
            db2 = 0.0
            da1 = 0.0
            da2 = 0.0
            for n in range(T - 1, -1, -1):
                m0 = cur[n] - a1 * m1 - a2 * m2
                xv = np.float64(xin[n])
                yv = np.float64(yk[n])
                db0 += m0 * xv
                db1 += m1 * xv
                db2 += m2 * xv
                da1 -= m1 * yv
                da2 -= m2 * yv
                cur[n] = b0 * m0 + b1 * m1 + b2 * m2
                m2 = m1
                m1 = m0
            gb[r, k, 0] = db0
            gb[r, k, 1] = db1
            gb[r, k, 2] = db2
            ga[r, k, 0] = 0.0
            ga[r, k, 1] = da1
            ga[r, k, 2] = da2
        for n in range(T):
            gx[r, n] = cur[n]
