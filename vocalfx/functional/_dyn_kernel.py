"""Numba kernels for the compressor/expander's gain computer, forward and adjoint.

One pass per row fuses what torchcomp does in a dozen full-length tensor operations: the
one-pole power average (``avg``), the static curve in dB and the attack/release gain smoother
(``compressor_core``). State and arithmetic are float64; one logarithm and one exponential per
sample forward, one logarithm backward. Each call processes the rows ``[r0, r1)``;
:func:`vocalfx.functional._util.run_ranges` splits the rows over threads.

Per sample ``n`` of a row (``e = max(x^2, 1e-8)``, ``s[-1] = 0``, ``g[-1] = 1``)::

    s[n] = rc e[n] + (1 - rc) s[n-1]                       # power average
    L    = 10 log10 s[n]                                   # level in dB
    u    = 10^(min(kc (ct - L), ke (et - L), 0) / 20)      # static gain, kc = 1 - 1/cr, ke = 1 - 1/er
    c    = at if u < g[n-1] else rt
    g[n] = (1 - c) g[n-1] + c u                            # smoothed gain

The adjoint runs both recursions backwards in one sweep: ``lam[n] = dg[n] + (1 - c[n+1]) lam[n+1]``
for the smoother, ``mu[n] = ds[n] + (1 - rc) mu[n+1]`` for the average, with the branch of every
``min`` and of the attack/release choice taken as in the forward pass.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_LN10 = math.log(10.0)
_DB_PER_NEPER_POWER = 10.0 / _LN10  # 10 log10(s) = this * ln(s)


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _static_gain(s, kc, ct, ke, et):
    """(u, branch, level_db) for the average power ``s``; branch 0: 0 dB (clamped), 1: compressor, 2: expander."""
    level = _DB_PER_NEPER_POWER * math.log(s)
    comp = kc * (ct - level)
    exp = ke * (et - level)
    if comp <= exp:
        g_db, branch = comp, 1
    else:
        g_db, branch = exp, 2
    if g_db > 0.0:
        return 1.0, 0, level
    return math.exp(g_db * (_LN10 / 20.0)), branch, level


@njit(cache=True, error_model="numpy", nogil=True, inline="always")
def _row(p, r):
    """Row ``r``'s parameters with the curve's slopes: ct, cr, 1 - 1/cr, et, er, 1 - 1/er, at, rt, rc."""
    cr, er = p[r, 1], p[r, 3]
    return p[r, 0], cr, 1.0 - 1.0 / cr, p[r, 2], er, 1.0 - 1.0 / er, p[r, 4], p[r, 5], p[r, 6]


@njit(cache=True, error_model="numpy", nogil=True)
def gain_forward(x, p, s, u, g, r0, r1):
    """Rows ``x`` ``(R, T)``; ``p`` ``(R, 7)`` = ct, cr, et, er, at, rt, rc.

    Writes the average power ``s``, the static gain ``u`` (negated where the curve is clamped at
    0 dB, so the backward knows the branch without recomputing it) and the smoothed gain ``g``, all
    float64, for the rows ``[r0, r1)``.
    """
    T = x.shape[1]
    for r in range(r0, r1):
        ct, cr, kc, et, er, ke, at, rt, rc = _row(p, r)
        acc = 0.0
        gain = 1.0
        for n in range(T):
            xv = np.float64(x[r, n])
            acc = rc * max(xv * xv, 1e-8) + (1.0 - rc) * acc
            s[r, n] = acc
            un, branch, _ = _static_gain(acc, kc, ct, ke, et)
            u[r, n] = -un if branch == 0 else un
            c = at if un < gain else rt
            gain = (1.0 - c) * gain + c * un
            g[r, n] = gain


@njit(cache=True, error_model="numpy", nogil=True)
def gain_backward(x, p, s, u, g, dg, dx, dp, r0, r1):
    """Adjoint of :func:`gain_forward` for the output gradient ``dg``; writes ``dx`` ``(R, T)`` and
    ``dp`` ``(R, 7)``."""
    T = x.shape[1]
    for r in range(r0, r1):
        ct, cr, kc, et, er, ke, at, rt, rc = _row(p, r)
        lam = 0.0
        keep = 0.0  # 1 - c[n + 1]
        mu = 0.0
        d_ct = d_cr = d_et = d_er = d_at = d_rt = d_rc = 0.0
        for n in range(T - 1, -1, -1):
            acc = s[r, n]
            un = u[r, n]
            clamped = un < 0.0
            un = abs(un)
            g_prev = g[r, n - 1] if n > 0 else 1.0
            attack = un < g_prev
            c = at if attack else rt
            lam = np.float64(dg[r, n]) + keep * lam
            keep = 1.0 - c
            if attack:
                d_at += lam * (un - g_prev)
            else:
                d_rt += lam * (un - g_prev)
            d_level = 0.0
            if not clamped:
                d_gdb = c * lam * un * (_LN10 / 20.0)
                level = _DB_PER_NEPER_POWER * math.log(acc)
                if kc * (ct - level) <= ke * (et - level):
                    d_level = -kc * d_gdb
                    d_ct += kc * d_gdb
                    d_cr += d_gdb * (ct - level) / (cr * cr)
                else:
                    d_level = -ke * d_gdb
                    d_et += ke * d_gdb
                    d_er += d_gdb * (et - level) / (er * er)
            mu = d_level * _DB_PER_NEPER_POWER / acc + (1.0 - rc) * mu
            xv = np.float64(x[r, n])
            e = xv * xv
            s_prev = s[r, n - 1] if n > 0 else 0.0
            d_rc += mu * (max(e, 1e-8) - s_prev)
            dx[r, n] = rc * mu * 2.0 * xv if e > 1e-8 else 0.0
        dp[r, 0] = d_ct
        dp[r, 1] = d_cr
        dp[r, 2] = d_et
        dp[r, 3] = d_er
        dp[r, 4] = d_at
        dp[r, 5] = d_rt
        dp[r, 6] = d_rc
