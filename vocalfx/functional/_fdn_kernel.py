"""Numba kernels for the FDN's per-bin 6x6 complex solve (forward and adjoint).

Bins are processed in blocks whose working set (one 6x6 matrix and two right-hand sides per
bin) stays in L1 cache, with the innermost loops running over the bins of a block so that the
compiler vectorises them; blocks run in parallel. Real and imaginary parts are kept in separate
arrays. Elimination is done without pivoting; see :mod:`vocalfx.functional.reverb` for why that
is stable for this matrix.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

BLOCK = 256


@njit(cache=True, inline="always", fastmath=True, error_model="numpy")
def _factor_block(U, g, zr, zi, bi, f0, m, Ar, Ai):
    n = U.shape[1]
    for i in range(n):
        for j in range(n):
            u = U[bi, i, j]
            for t in range(m):
                Ar[i, j, t] = -u * g[bi, j, f0 + t]
                Ai[i, j, t] = 0.0
        for t in range(m):
            Ar[i, i, t] += zr[i, f0 + t]
            Ai[i, i, t] += zi[i, f0 + t]
    # LU without pivoting; L (unit) stored below the diagonal
    for k in range(n - 1):
        for t in range(m):
            d = Ar[k, k, t] * Ar[k, k, t] + Ai[k, k, t] * Ai[k, k, t]
            pr = Ar[k, k, t] / d
            pi = -Ai[k, k, t] / d
            for i in range(k + 1, n):
                ar = Ar[i, k, t]
                ai = Ai[i, k, t]
                Ar[i, k, t] = ar * pr - ai * pi
                Ai[i, k, t] = ar * pi + ai * pr
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                for t in range(m):
                    lr = Ar[i, k, t]
                    li = Ai[i, k, t]
                    Ar[i, j, t] -= lr * Ar[k, j, t] - li * Ai[k, j, t]
                    Ai[i, j, t] -= lr * Ai[k, j, t] + li * Ar[k, j, t]


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy", nogil=True)
def fdn_solve_forward(U, g, b, c, zr, zi, Hr, Hi, Xr, Xi):
    """H = c (Z - U diag(g))^{-1} b for every batch item and bin; also stores X = (...)^{-1} b."""
    B, n, F = g.shape
    nq = b.shape[2]
    no = c.shape[1]
    nblk = (F + BLOCK - 1) // BLOCK
    for job in prange(B * nblk):
        bi = job // nblk
        f0 = (job % nblk) * BLOCK
        m = min(BLOCK, F - f0)
        Ar = np.empty((n, n, BLOCK), dtype=g.dtype)
        Ai = np.empty((n, n, BLOCK), dtype=g.dtype)
        Rr = np.empty((n, nq, BLOCK), dtype=g.dtype)
        Ri = np.empty((n, nq, BLOCK), dtype=g.dtype)
        _factor_block(U, g, zr, zi, bi, f0, m, Ar, Ai)
        for i in range(n):
            for q in range(nq):
                for t in range(m):
                    Rr[i, q, t] = b[bi, i, q]
                    Ri[i, q, t] = 0.0
        # forward substitution with unit L
        for i in range(1, n):
            for k in range(i):
                for q in range(nq):
                    for t in range(m):
                        lr = Ar[i, k, t]
                        li = Ai[i, k, t]
                        Rr[i, q, t] -= lr * Rr[k, q, t] - li * Ri[k, q, t]
                        Ri[i, q, t] -= lr * Ri[k, q, t] + li * Rr[k, q, t]
        # back substitution with U
        for i in range(n - 1, -1, -1):
            for j in range(i + 1, n):
                for q in range(nq):
                    for t in range(m):
                        ur = Ar[i, j, t]
                        ui = Ai[i, j, t]
                        Rr[i, q, t] -= ur * Rr[j, q, t] - ui * Ri[j, q, t]
                        Ri[i, q, t] -= ur * Ri[j, q, t] + ui * Rr[j, q, t]
            for t in range(m):
                d = Ar[i, i, t] * Ar[i, i, t] + Ai[i, i, t] * Ai[i, i, t]
                pr = Ar[i, i, t] / d
                pi = -Ai[i, i, t] / d
                for q in range(nq):
                    xr = Rr[i, q, t]
                    xi = Ri[i, q, t]
                    Rr[i, q, t] = xr * pr - xi * pi
                    Ri[i, q, t] = xr * pi + xi * pr
        for i in range(n):
            for q in range(nq):
                for t in range(m):
                    Xr[bi, i, q, f0 + t] = Rr[i, q, t]
                    Xi[bi, i, q, f0 + t] = Ri[i, q, t]
        for o in range(no):
            for q in range(nq):
                for t in range(m):
                    sr = 0.0
                    si = 0.0
                    for i in range(n):
                        sr += c[bi, o, i] * Rr[i, q, t]
                        si += c[bi, o, i] * Ri[i, q, t]
                    Hr[bi, o, q, f0 + t] = sr
                    Hi[bi, o, q, f0 + t] = si


@njit(parallel=True, cache=True, fastmath=True, error_model="numpy", nogil=True)
def fdn_solve_backward(U, g, c, zr, zi, Xr, Xi, GHr, GHi, grad_g, part_U, part_b, part_c):
    """Adjoint of :func:`fdn_solve_forward`.

    With ``Y = M^{-H} c^T G_H`` and ``P = Re(Y X^H)``: ``grad_g[j] = sum_i U_ij P_ij`` (per bin),
    ``grad_U = sum_bins P g``, ``grad_b = Re sum_bins Y``, ``grad_c = Re sum_bins G_H X^H``;
    the sums over bins are written per block (``part_*``, summed by the caller).
    """
    B, n, F = g.shape
    nq = Xr.shape[2]
    no = c.shape[1]
    nblk = (F + BLOCK - 1) // BLOCK
    for job in prange(B * nblk):
        bi = job // nblk
        f0 = (job % nblk) * BLOCK
        m = min(BLOCK, F - f0)
        Ar = np.empty((n, n, BLOCK), dtype=g.dtype)
        Ai = np.empty((n, n, BLOCK), dtype=g.dtype)
        Yr = np.empty((n, nq, BLOCK), dtype=g.dtype)
        Yi = np.empty((n, nq, BLOCK), dtype=g.dtype)
        _factor_block(U, g, zr, zi, bi, f0, m, Ar, Ai)
        # grad_c partial sums and grad_X = c^T G_H
        for o in range(no):
            for i in range(n):
                s = 0.0
                for q in range(nq):
                    for t in range(m):
                        s += GHr[bi, o, q, f0 + t] * Xr[bi, i, q, f0 + t] + GHi[bi, o, q, f0 + t] * Xi[bi, i, q, f0 + t]
                part_c[job, o, i] = s
        for i in range(n):
            for q in range(nq):
                for t in range(m):
                    sr = 0.0
                    si = 0.0
                    for o in range(no):
                        sr += c[bi, o, i] * GHr[bi, o, q, f0 + t]
                        si += c[bi, o, i] * GHi[bi, o, q, f0 + t]
                    Yr[i, q, t] = sr
                    Yi[i, q, t] = si
        # solve U^H W = R (lower triangular, conj(U) transposed)
        for i in range(n):
            for k in range(i):
                for q in range(nq):
                    for t in range(m):
                        # conj(A[k, i]) * Y[k]
                        ar = Ar[k, i, t]
                        ai = -Ai[k, i, t]
                        Yr[i, q, t] -= ar * Yr[k, q, t] - ai * Yi[k, q, t]
                        Yi[i, q, t] -= ar * Yi[k, q, t] + ai * Yr[k, q, t]
            for t in range(m):
                ar = Ar[i, i, t]
                ai = -Ai[i, i, t]
                d = ar * ar + ai * ai
                pr = ar / d
                pi = -ai / d
                for q in range(nq):
                    yr = Yr[i, q, t]
                    yi = Yi[i, q, t]
                    Yr[i, q, t] = yr * pr - yi * pi
                    Yi[i, q, t] = yr * pi + yi * pr
        # solve L^H Y = W (unit upper)
        for i in range(n - 2, -1, -1):
            for k in range(i + 1, n):
                for q in range(nq):
                    for t in range(m):
                        lr = Ar[k, i, t]
                        li = -Ai[k, i, t]
                        Yr[i, q, t] -= lr * Yr[k, q, t] - li * Yi[k, q, t]
                        Yi[i, q, t] -= lr * Yi[k, q, t] + li * Yr[k, q, t]
        for i in range(n):
            for q in range(nq):
                s = 0.0
                for t in range(m):
                    s += Yr[i, q, t]
                part_b[job, i, q] = s
        for j in range(n):
            for t in range(m):
                grad_g[bi, j, f0 + t] = 0.0
        for i in range(n):
            for j in range(n):
                su = 0.0
                u = U[bi, i, j]
                for t in range(m):
                    p = 0.0
                    for q in range(nq):
                        p += Yr[i, q, t] * Xr[bi, j, q, f0 + t] + Yi[i, q, t] * Xi[bi, j, q, f0 + t]
                    su += p * g[bi, j, f0 + t]
                    grad_g[bi, j, f0 + t] += u * p
                part_U[job, i, j] = su
