"""The 130-value parameter vector: the one place that names, orders and maps it.

Every preset, prior, optimiser step and PMSE score speaks this vector. It holds *raw*
(unconstrained) values; :func:`raw_to_native` maps them to the values the DSP consumes
(Hz, dB, Q, ratios, one-pole coefficients, pan positions in (0, 1), FDN decay gains), and
:func:`native_to_display` / :func:`display_to_native` convert those to the units a person reads
in a preset file (ms instead of coefficients, pan -100..100, reverb decay as T60 seconds).

DiffVox stores 151 values per preset (the full 6x6 raw FDN mixing matrix); :func:`from_diffvox`
and :func:`to_diffvox` convert between that layout and ours (we keep the 15 strict-upper-triangle
entries, the only ones the chain reads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
import torch

#: What the unit conversions and vector maps accept: a number, a numpy array or a tensor.
ArrayLike = Union[float, np.ndarray, torch.Tensor]

__all__ = [
    "SAMPLE_RATE",
    "LAYOUT_ID",
    "NUM_PARAMS",
    "NUM_DIFFVOX_PARAMS",
    "FDN_DELAYS",
    "FDN_NUM_DECAY_FREQS",
    "FDN_DECAY_MAX",
    "ParamSpec",
    "SPECS",
    "MODULE_SLICES",
    "raw_to_native",
    "native_to_raw",
    "native_to_display",
    "display_to_native",
    "from_diffvox",
    "to_diffvox",
    "default_vector",
    "db_to_amp",
    "amp_to_db",
    "ms_to_coef",
    "coef_to_ms",
]

SAMPLE_RATE = 44100
LAYOUT_ID = "diffvox-130-v1"
NUM_PARAMS = 130
NUM_DIFFVOX_PARAMS = 151
FDN_DELAYS = (997, 1153, 1327, 1559, 1801, 2099)
FDN_NUM_DECAY_FREQS = 49
FDN_IR_SECONDS = 12.0
# DiffVox: T60 bound = 0.75 * IR duration (12 s) = 9 s, per shortest delay line.
FDN_T60_MAX_S = 0.75 * FDN_IR_SECONDS
LOOKAHEAD_MAX_MS = 15.0
SHELF_Q = 0.707  # DiffVox fixes shelf Q to 0.707 (not exactly 1/sqrt(2)); the goldens use it.


def db_to_amp(x_db: ArrayLike) -> ArrayLike:
    """Decibels to linear amplitude, ``10 ** (x_db / 20)``."""
    return 10.0 ** (x_db / 20.0)


def amp_to_db(x: ArrayLike) -> ArrayLike:
    """Linear amplitude to decibels, ``20 * log10(x)``."""
    if isinstance(x, torch.Tensor):
        return 20.0 * torch.log10(x)
    return 20.0 * np.log10(x)


def ms_to_coef(time_ms: ArrayLike, sample_rate: float) -> ArrayLike:
    """One-pole smoothing coefficient for a time constant (torchcomp's convention).

    ``coef = 1 - exp(-2200 / (time_ms * sample_rate))``.
    """
    if isinstance(time_ms, torch.Tensor):
        return -torch.expm1(-2200.0 / (time_ms * sample_rate))
    return -np.expm1(-2200.0 / (np.asarray(time_ms, dtype=np.float64) * sample_rate))


def coef_to_ms(coef: ArrayLike, sample_rate: float) -> ArrayLike:
    """Inverse of :func:`ms_to_coef`: ``-2200 / (sample_rate * log(1 - coef))``."""
    if isinstance(coef, torch.Tensor):
        return -2200.0 / (sample_rate * torch.log1p(-coef))
    return -2200.0 / (sample_rate * np.log1p(-np.asarray(coef, dtype=np.float64)))


FDN_DECAY_MAX = float(db_to_amp(-60.0 / SAMPLE_RATE / FDN_T60_MAX_S * min(FDN_DELAYS)))


@dataclass(frozen=True)
class ParamSpec:
    """One entry of the 130-value vector.

    Attributes:
        name: dotted name, ``<module>.<parameter>`` (e.g. ``"peak1.freq_hz"``).
        map: raw -> native map: ``"identity"``, ``"sigmoid"``, ``"minmax"`` or ``"abs_mod"``.
        lo, hi: native range for ``minmax``/``sigmoid``/``abs_mod`` (open interval for the
            sigmoid maps); ``-inf``/``inf`` for identity parameters.
        default: native default value (DiffVox's initial value).
        display: how the value is shown in a preset: ``"same"``, ``"ms"`` (coefficient shown as a
            time constant), ``"pan"`` (position in (0, 1) shown as -100..100) or ``"t60"`` (FDN
            decay gain shown as reverberation time in seconds).
        unit: unit of the *display* value.
    """

    name: str
    map: str
    lo: float
    hi: float
    default: float
    display: str = "same"
    unit: str = ""

    @property
    def module(self) -> str:
        return self.name.split(".")[0]


def _peak(prefix, f_lo, f_hi, f_def, q_lo=0.2, q_hi=20.0):
    return [
        ParamSpec(f"{prefix}.gain_db", "identity", -math.inf, math.inf, 0.0, unit="dB"),
        ParamSpec(f"{prefix}.freq_hz", "minmax", f_lo, f_hi, f_def, unit="Hz"),
        ParamSpec(f"{prefix}.q", "minmax", q_lo, q_hi, 0.707, unit=""),
    ]


def _shelf(prefix, f_lo, f_hi, f_def):
    return [
        ParamSpec(f"{prefix}.gain_db", "identity", -math.inf, math.inf, 0.0, unit="dB"),
        ParamSpec(f"{prefix}.freq_hz", "minmax", f_lo, f_hi, f_def, unit="Hz"),
    ]


def _pass(prefix, f_lo, f_hi, f_def, q_lo=0.5, q_hi=10.0):
    return [
        ParamSpec(f"{prefix}.freq_hz", "minmax", f_lo, f_hi, f_def, unit="Hz"),
        ParamSpec(f"{prefix}.q", "minmax", q_lo, q_hi, 0.707, unit=""),
    ]


def _build_specs() -> List[ParamSpec]:
    s: List[ParamSpec] = []
    s += _peak("peak1", 33.0, 5400.0, 800.0)
    s += _peak("peak2", 200.0, 17500.0, 4000.0)
    s += _shelf("low_shelf", 30.0, 200.0, 115.0)
    s += _shelf("high_shelf", 750.0, 8300.0, 6000.0)
    s += _pass("lowpass", 200.0, 18000.0, 17500.0)
    s += _pass("highpass", 16.0, 5300.0, 200.0)
    inf = math.inf
    att = float(ms_to_coef(50.0, SAMPLE_RATE))
    s += [
        ParamSpec("comp.comp_threshold_db", "identity", -inf, inf, -18.0, unit="dB"),
        ParamSpec("comp.exp_threshold_db", "identity", -inf, inf, -48.0, unit="dB"),
        ParamSpec("comp.makeup_db", "identity", -inf, inf, 0.0, unit="dB"),
        ParamSpec("comp.lookahead_ms", "abs_mod", 0.0, LOOKAHEAD_MAX_MS, 1000.0 / SAMPLE_RATE, unit="ms"),
        ParamSpec("comp.attack", "sigmoid", 0.0, 1.0, att, display="ms", unit="ms"),
        ParamSpec("comp.release", "sigmoid", 0.0, 1.0, att, display="ms", unit="ms"),
        ParamSpec("comp.rms", "sigmoid", 0.0, 1.0, 0.3, display="ms", unit="ms"),
        ParamSpec("comp.comp_ratio", "minmax", 1.0, 20.0, 2.0, unit="ratio"),
        ParamSpec("comp.exp_ratio", "sigmoid", 0.0, 1.0, 0.5, unit="ratio"),
        ParamSpec("send.delay_to_reverb", "sigmoid", 0.0, 1.0, 0.01, unit="gain"),
        ParamSpec("delay.delay_ms", "minmax", 100.0, 1000.0, 400.0, unit="ms"),
        ParamSpec("delay.feedback", "sigmoid", 0.0, 1.0, 0.1, unit="gain"),
        ParamSpec("delay.gain", "sigmoid", 0.0, 1.0, 0.1, unit="gain"),
        ParamSpec("delay.lowpass_freq_hz", "minmax", 200.0, 16000.0, 8000.0, unit="Hz"),
        ParamSpec("delay.lowpass_q", "minmax", 0.5, 2.0, 0.707, unit=""),
        ParamSpec("delay.odd_pan", "sigmoid", 0.0, 1.0, 0.5, display="pan", unit="pan"),
        ParamSpec("delay.even_pan", "sigmoid", 0.0, 1.0, 0.5, display="pan", unit="pan"),
    ]
    n = len(FDN_DELAYS)
    s += [
        ParamSpec(f"reverb.b_{i}_{j}", "identity", -inf, inf, 1.0 / n, unit="gain") for i in range(n) for j in range(2)
    ]
    s += [ParamSpec(f"reverb.c_{i}_{j}", "identity", -inf, inf, 0.0, unit="gain") for i in range(2) for j in range(n)]
    s += [
        ParamSpec(f"reverb.decay_{k:02d}", "minmax", 0.0, FDN_DECAY_MAX, 0.5, display="t60", unit="s")
        for k in range(FDN_NUM_DECAY_FREQS)
    ]
    s += [
        ParamSpec(f"reverb.mixing_{i}_{j}", "identity", -inf, inf, 0.0, unit="")
        for i in range(n)
        for j in range(i + 1, n)
    ]
    s += _peak("reverb_eq_peak1", 200.0, 2500.0, 800.0, 0.1, 3.0)
    s += _peak("reverb_eq_peak2", 600.0, 7000.0, 4000.0, 0.1, 3.0)
    s += _shelf("reverb_eq_low_shelf", 30.0, 450.0, 115.0)
    s += _shelf("reverb_eq_high_shelf", 1500.0, 16000.0, 8000.0)
    s += [ParamSpec("pan.position", "sigmoid", 0.0, 1.0, 0.5, display="pan", unit="pan")]
    assert len(s) == NUM_PARAMS, len(s)
    return s


SPECS: Tuple[ParamSpec, ...] = tuple(_build_specs())
INDEX: Dict[str, int] = {p.name: i for i, p in enumerate(SPECS)}


def _module_slices() -> Dict[str, slice]:
    out: Dict[str, slice] = {}
    for i, p in enumerate(SPECS):
        m = p.module
        if m not in out:
            out[m] = slice(i, i + 1)
        else:
            assert out[m].stop == i, f"module {m} is not contiguous"
            out[m] = slice(out[m].start, i + 1)
    return out


MODULE_SLICES: Dict[str, slice] = _module_slices()

_KIND = np.array([{"identity": 0, "sigmoid": 1, "minmax": 2, "abs_mod": 3}[p.map] for p in SPECS])
_LO = np.array([p.lo if p.map != "identity" else 0.0 for p in SPECS])
_HI = np.array([p.hi if p.map != "identity" else 1.0 for p in SPECS])


def _consts(like: torch.Tensor):
    kw = dict(dtype=like.dtype, device=like.device)
    return (
        torch.as_tensor(_KIND, device=like.device),
        torch.as_tensor(_LO, **kw),
        torch.as_tensor(_HI, **kw),
    )


def raw_to_native(raw: torch.Tensor) -> torch.Tensor:
    """Map raw vectors ``(..., 130)`` to native DSP values ``(..., 130)`` (differentiable)."""
    if raw.shape[-1] != NUM_PARAMS:
        raise ValueError(f"expected a raw vector of {NUM_PARAMS} values, got shape {tuple(raw.shape)}")
    kind, lo, hi = _consts(raw)
    sig = torch.sigmoid(raw)
    out = torch.where(kind == 0, raw, lo + (hi - lo) * sig)
    # |r| mod period; the abs has a subgradient of 0 at r = 0, which is what DiffVox does too.
    out = torch.where(kind == 3, torch.remainder(raw.abs(), LOOKAHEAD_MAX_MS), out)
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def native_to_raw(native: ArrayLike) -> np.ndarray:
    """Inverse of :func:`raw_to_native` (float64 numpy). Raises ``ValueError`` out of range."""
    v = np.asarray(native, dtype=np.float64)
    if v.shape[-1] != NUM_PARAMS:
        raise ValueError(f"expected {NUM_PARAMS} native values, got shape {v.shape}")
    out = v.copy()
    for i, p in enumerate(SPECS):
        x = v[..., i]
        if p.map == "identity":
            continue
        if p.map == "abs_mod":
            if np.any((x < 0) | (x >= p.hi)):
                raise ValueError(f"{p.name} must lie in [0, {p.hi}) {p.unit}, got {x}")
            continue
        u = (x - p.lo) / (p.hi - p.lo)
        if np.any((u <= 0) | (u >= 1)):
            raise ValueError(f"{p.name} must lie strictly inside ({p.lo}, {p.hi}), got {x}")
        out[..., i] = _logit(u)
    return out


def native_to_display(native: ArrayLike) -> np.ndarray:
    """Native values -> display units (ms for coefficients, pan -100..100, T60 in seconds)."""
    v = np.array(native, dtype=np.float64)
    for i, p in enumerate(SPECS):
        x = v[..., i]
        if p.display == "ms":
            v[..., i] = coef_to_ms(x, SAMPLE_RATE)
        elif p.display == "pan":
            v[..., i] = x * 200.0 - 100.0
        elif p.display == "t60":
            # decay gain per shortest-line pass: g = 10^(-3 * d / (sr * T60))
            with np.errstate(divide="ignore"):
                v[..., i] = -3.0 * min(FDN_DELAYS) / (SAMPLE_RATE * np.log10(x))
    return v


def display_to_native(display: ArrayLike) -> np.ndarray:
    """Inverse of :func:`native_to_display`."""
    v = np.array(display, dtype=np.float64)
    for i, p in enumerate(SPECS):
        x = v[..., i]
        if p.display == "ms":
            v[..., i] = ms_to_coef(x, SAMPLE_RATE)
        elif p.display == "pan":
            v[..., i] = (x + 100.0) / 200.0
        elif p.display == "t60":
            v[..., i] = 10.0 ** (-3.0 * min(FDN_DELAYS) / (SAMPLE_RATE * x))
    return v


def display_range(p: ParamSpec) -> Tuple[float, float]:
    """Open range of a parameter in display units."""
    if p.display == "ms":
        return 0.0, math.inf
    if p.display == "pan":
        return -100.0, 100.0
    if p.display == "t60":
        return 0.0, FDN_T60_MAX_S
    return p.lo, p.hi


# --- DiffVox 151-value layout -------------------------------------------------------------
_N = len(FDN_DELAYS)
_U_START_151 = 104  # first entry of the raw 6x6 mixing matrix in DiffVox's vector
_U_START_130 = 104
_TRIU = [(i, j) for i in range(_N) for j in range(i + 1, _N)]
_MASK_151 = np.ones(NUM_DIFFVOX_PARAMS, dtype=bool)
for _i in range(_N):
    for _j in range(_i + 1):
        _MASK_151[_U_START_151 + _i * _N + _j] = False
assert _MASK_151.sum() == NUM_PARAMS
DIFFVOX_FEATURE_MASK = _MASK_151


def from_diffvox(raw: ArrayLike) -> np.ndarray:
    """DiffVox raw vector(s) ``(..., 151)`` (or already ``(..., 130)``) -> ours ``(..., 130)``."""
    v = np.asarray(raw, dtype=np.float64)
    if v.shape[-1] == NUM_PARAMS:
        return v.copy()
    if v.shape[-1] != NUM_DIFFVOX_PARAMS:
        raise ValueError(f"expected {NUM_DIFFVOX_PARAMS} (DiffVox) or {NUM_PARAMS} values, got shape {v.shape}")
    return v[..., _MASK_151]


def to_diffvox(vector: ArrayLike) -> np.ndarray:
    """Our ``(..., 130)`` -> DiffVox ``(..., 151)``; the unused mixing entries are zero."""
    v = np.asarray(vector, dtype=np.float64)
    if v.shape[-1] != NUM_PARAMS:
        raise ValueError(f"expected {NUM_PARAMS} values, got shape {v.shape}")
    out = np.zeros(v.shape[:-1] + (NUM_DIFFVOX_PARAMS,))
    out[..., _MASK_151] = v
    return out


def default_vector() -> np.ndarray:
    """DiffVox's initial parameters as a raw vector (FDN decay 0.5, mixing generator 0).

    DiffVox draws the FDN mixing generator and decays at random; our default is the deterministic
    centre of those draws. The reverb is silent by default (``c = 0``), as in DiffVox.
    """
    native = np.array([p.default for p in SPECS])
    return native_to_raw(native)


def names() -> List[str]:
    return [p.name for p in SPECS]


def group_names(prefix: str) -> Sequence[str]:
    return [p.name for p in SPECS if p.name.startswith(prefix)]
