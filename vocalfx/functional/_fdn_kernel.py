"""Numba kernels for the FDN's per-bin 6x6 complex solve (forward and adjoint).

Bins are processed in blocks whose working set (one 6x6 matrix and two right-hand sides per
bin) stays in cache, and every innermost loop runs over the bins of a block (unit stride) so
that the compiler vectorises it; each call solves the jobs (a batch item's block of bins)
``[j0, j1)``, and :func:`vocalfx.functional._util.run_ranges` splits the jobs over threads. Real
and imaginary parts are kept in separate arrays. Elimination is done without pivoting; see
:mod:`vocalfx.functional.reverb` for why that is stable for this matrix.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 1024
_OPTS = dict(cache=True, fastmath=True, error_model="numpy", nogil=True)


@njit(inline="always", **_OPTS)
def _csub(ar, ai, lr, li, br, bi, m):
    """a -= l * b (complex, elementwise over the first m entries)."""
    for t in range(m):
        ar[t] -= lr[t] * br[t] - li[t] * bi[t]
        ai[t] -= lr[t] * bi[t] + li[t] * br[t]


@njit(inline="always", **_OPTS)
def _csub_conj(ar, ai, lr, li, br, bi, m):
    """a -= conj(l) * b."""
    for t in range(m):
        ar[t] -= lr[t] * br[t] + li[t] * bi[t]
        ai[t] -= lr[t] * bi[t] - li[t] * br[t]


@njit(inline="always", **_OPTS)
def _cinv(ar, ai, pr, pi, m):
    """p = 1 / a."""
    for t in range(m):
        d = ar[t] * ar[t] + ai[t] * ai[t]
        pr[t] = ar[t] / d
        pi[t] = -ai[t] / d


@njit(inline="always", **_OPTS)
def _cmul_inplace(ar, ai, pr, pi, m):
    """a *= p."""
    for t in range(m):
        xr = ar[t]
        xi = ai[t]
        ar[t] = xr * pr[t] - xi * pi[t]
        ai[t] = xr * pi[t] + xi * pr[t]


@njit(inline="always", **_OPTS)
def _factor_block(U, g, zr, zi, bi, f0, m, Ar, Ai, pr, pi):
    """Build M = diag(z) - U diag(g) for bins f0..f0+m and factor it in place (LU, no pivoting)."""
    n = U.shape[1]
    for i in range(n):
        for j in range(n):
            u = -U[bi, i, j]
            ar = Ar[i, j]
            ai = Ai[i, j]
            gj = g[bi, j]
            for t in range(m):
                ar[t] = u * gj[f0 + t]
                ai[t] = 0.0
        ar = Ar[i, i]
        ai = Ai[i, i]
        zri = zr[i]
        zii = zi[i]
        for t in range(m):
            ar[t] += zri[f0 + t]
            ai[t] += zii[f0 + t]
    for k in range(n - 1):
        _cinv(Ar[k, k], Ai[k, k], pr, pi, m)
        for i in range(k + 1, n):
            _cmul_inplace(Ar[i, k], Ai[i, k], pr, pi, m)
            for j in range(k + 1, n):
                _csub(Ar[i, j], Ai[i, j], Ar[i, k], Ai[i, k], Ar[k, j], Ai[k, j], m)


@njit(**_OPTS)
def fdn_solve_forward(U, g, b, c, zr, zi, Hr, Hi, Xr, Xi, j0, j1):
    """H = c (Z - U diag(g))^{-1} b for every batch item and bin; also stores X = (...)^{-1} b."""
    B, n, F = g.shape
    nq = b.shape[2]
    no = c.shape[1]
    nblk = (F + BLOCK - 1) // BLOCK
    for job in range(j0, j1):
        bi = job // nblk
        f0 = (job % nblk) * BLOCK
        m = min(BLOCK, F - f0)
        Ar = np.empty((n, n, BLOCK), dtype=g.dtype)
        Ai = np.empty((n, n, BLOCK), dtype=g.dtype)
        Rr = np.empty((n, nq, BLOCK), dtype=g.dtype)
        Ri = np.empty((n, nq, BLOCK), dtype=g.dtype)
        pr = np.empty(BLOCK, dtype=g.dtype)
        pi = np.empty(BLOCK, dtype=g.dtype)
        _factor_block(U, g, zr, zi, bi, f0, m, Ar, Ai, pr, pi)
        for i in range(n):
            for q in range(nq):
                v = b[bi, i, q]
                for t in range(m):
                    Rr[i, q, t] = v
                    Ri[i, q, t] = 0.0
        for i in range(1, n):  # forward substitution, unit L
            for k in range(i):
                for q in range(nq):
                    _csub(Rr[i, q], Ri[i, q], Ar[i, k], Ai[i, k], Rr[k, q], Ri[k, q], m)
        for i in range(n - 1, -1, -1):  # back substitution, U
            for j in range(i + 1, n):
                for q in range(nq):
                    _csub(Rr[i, q], Ri[i, q], Ar[i, j], Ai[i, j], Rr[j, q], Ri[j, q], m)
            _cinv(Ar[i, i], Ai[i, i], pr, pi, m)
            for q in range(nq):
                _cmul_inplace(Rr[i, q], Ri[i, q], pr, pi, m)
        for i in range(n):
            for q in range(nq):
                xr = Xr[bi, i, q]
                xi = Xi[bi, i, q]
                rr = Rr[i, q]
                ri = Ri[i, q]
                for t in range(m):
                    xr[f0 + t] = rr[t]
                    xi[f0 + t] = ri[t]
        for o in range(no):
            for q in range(nq):
                hr = Hr[bi, o, q]
                hi = Hi[bi, o, q]
                for t in range(m):
                    hr[f0 + t] = 0.0
                    hi[f0 + t] = 0.0
                for i in range(n):
                    cv = c[bi, o, i]
                    rr = Rr[i, q]
                    ri = Ri[i, q]
                    for t in range(m):
                        hr[f0 + t] += cv * rr[t]
                        hi[f0 + t] += cv * ri[t]


@njit(**_OPTS)
def fdn_solve_backward(U, g, c, zr, zi, Xr, Xi, GHr, GHi, grad_g, part_U, part_b, part_c, j0, j1):
    """Adjoint of :func:`fdn_solve_forward`.

    With ``Y = M^{-H} c^T G_H`` and ``P = Re(Y X^H)``: ``grad_g[j] = sum_i U_ij P_ij`` (per bin),
    ``grad_U = sum_bins P g``, ``grad_b = Re sum_bins Y``, ``grad_c = Re sum_bins G_H X^H``;
    the sums over bins are written per block (``part_*``, summed by the caller).
    """
    B, n, F = g.shape
    nq = Xr.shape[2]
    no = c.shape[1]
    nblk = (F + BLOCK - 1) // BLOCK
    for job in range(j0, j1):
        bi = job // nblk
        f0 = (job % nblk) * BLOCK
        m = min(BLOCK, F - f0)
        Ar = np.empty((n, n, BLOCK), dtype=g.dtype)
        Ai = np.empty((n, n, BLOCK), dtype=g.dtype)
        Yr = np.empty((n, nq, BLOCK), dtype=g.dtype)
        Yi = np.empty((n, nq, BLOCK), dtype=g.dtype)
        pr = np.empty(BLOCK, dtype=g.dtype)
        pi = np.empty(BLOCK, dtype=g.dtype)
        pacc = np.empty(BLOCK, dtype=g.dtype)
        _factor_block(U, g, zr, zi, bi, f0, m, Ar, Ai, pr, pi)
        for o in range(no):  # grad_c partial sums
            for i in range(n):
                s = 0.0
                for q in range(nq):
                    ghr = GHr[bi, o, q]
                    ghi = GHi[bi, o, q]
                    xr = Xr[bi, i, q]
                    xi = Xi[bi, i, q]
                    for t in range(m):
                        s += ghr[f0 + t] * xr[f0 + t] + ghi[f0 + t] * xi[f0 + t]
                part_c[job, o, i] = s
        for i in range(n):  # Y = c^T G_H
            for q in range(nq):
                yr = Yr[i, q]
                yi = Yi[i, q]
                for t in range(m):
                    yr[t] = 0.0
                    yi[t] = 0.0
                for o in range(no):
                    cv = c[bi, o, i]
                    ghr = GHr[bi, o, q]
                    ghi = GHi[bi, o, q]
                    for t in range(m):
                        yr[t] += cv * ghr[f0 + t]
                        yi[t] += cv * ghi[f0 + t]
        # U^H W = R: lower triangular with conj(U[k, i]) below the diagonal
        for i in range(n):
            for k in range(i):
                for q in range(nq):
                    _csub_conj(Yr[i, q], Yi[i, q], Ar[k, i], Ai[k, i], Yr[k, q], Yi[k, q], m)
            _cinv(Ar[i, i], Ai[i, i], pr, pi, m)
            for t in range(m):
                pi[t] = -pi[t]  # 1 / conj(a) = conj(1 / a)
            for q in range(nq):
                _cmul_inplace(Yr[i, q], Yi[i, q], pr, pi, m)
        # L^H Y = W: unit upper with conj(L[k, i]) above the diagonal
        for i in range(n - 2, -1, -1):
            for k in range(i + 1, n):
                for q in range(nq):
                    _csub_conj(Yr[i, q], Yi[i, q], Ar[k, i], Ai[k, i], Yr[k, q], Yi[k, q], m)
        for i in range(n):
            for q in range(nq):
                s = 0.0
                yr = Yr[i, q]
                for t in range(m):
                    s += yr[t]
                part_b[job, i, q] = s
        for j in range(n):
            gg = grad_g[bi, j]
            for t in range(m):
                gg[f0 + t] = 0.0
        for i in range(n):
            for j in range(n):
                for t in range(m):
                    pacc[t] = 0.0
                for q in range(nq):
                    yr = Yr[i, q]
                    yi = Yi[i, q]
                    xr = Xr[bi, j, q]
                    xi = Xi[bi, j, q]
                    for t in range(m):
                        pacc[t] += yr[t] * xr[f0 + t] + yi[t] * xi[f0 + t]
                u = U[bi, i, j]
                gj = g[bi, j]
                gg = grad_g[bi, j]
                su = 0.0
                for t in range(m):
                    su += pacc[t] * gj[f0 + t]
                    gg[f0 + t] += u * pacc[t]
                part_U[job, i, j] = su
