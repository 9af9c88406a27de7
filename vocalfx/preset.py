"""Presets: a versioned, human-readable JSON format in physical units, and preset collections.

A preset file looks like::

    {
      "format": "vocalfx-preset", "version": 1, "layout": "diffvox-130-v1",
      "name": "internal_000", "source": "...",
      "parameters": {
        "peak1": {"gain_db": 2.1, "freq_hz": 412.0, "q": 0.9},
        "comp": {"comp_threshold_db": -21.0, "attack_ms": 12.3, ...},
        "delay": {"delay_ms": 230.0, "odd_pan": -40.0, ...},
        "reverb": {"b": [[...], ...], "c": [[...], ...], "decay_t60_s": [...49 values...],
                   "decay_freqs_hz": [...], "mixing": [...15 values...]},
        ...
      },
      "raw": [...130 values...]
    }

``parameters`` is what a person reads and edits (Hz, dB, ms, ratio, pan -100..100, T60 in
seconds). ``raw`` is the exact 130-value vector; it makes JSON <-> vector round trips exact.
When a file has both, every parameter whose ``parameters`` value still equals the one implied by
``raw`` keeps its raw value, and every edited one is converted from its physical value. Values
outside a parameter's range are refused with an error naming the parameter, its range and unit.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from . import params as P
from .errors import VocalfxError

__all__ = [
    "Preset",
    "PresetError",
    "PresetIndexError",
    "load_collection",
    "save_collection",
    "shipped_presets",
    "collection_vectors",
    "import_diffvox_collection",
    "load_index_file",
]

FORMAT = "vocalfx-preset"
COLLECTION_FORMAT = "vocalfx-collection"
VERSION = 1
#: The shipped collection's file name (in ``presets/``), read by :func:`shipped_presets`.
SHIPPED_COLLECTION = "vocalfx-starter.json"
PathLike = Union[str, Path]
#: A raw parameter vector as callers hold one: a tensor, an array or a sequence of numbers.
VectorLike = Union[torch.Tensor, np.ndarray, Sequence[float]]


class PresetError(VocalfxError, ValueError):
    """A preset or collection that cannot be read or is invalid; the message says which and why."""


class PresetIndexError(PresetError):
    """:meth:`Preset.resolve` was given a collection without an index, or an index out of range.

    Attributes:
        spec: The collection file, as the caller named it.
        count: How many presets it holds.
        index: The index given (``None`` if none was).
    """

    def __init__(self, spec: PathLike, count: int, index: Optional[int]) -> None:
        self.spec, self.count, self.index = str(spec), count, index
        if index is None:
            msg = f"{spec}: a collection of {count} presets; choose one by its index"
        else:
            msg = f"{spec}: index {index} out of range (0..{count - 1})"
        super().__init__(msg)

    def __reduce__(self):  # picklable despite the three-argument init
        return (type(self), (self.spec, self.count, self.index))


def _display_key(spec: P.ParamSpec) -> str:
    local = spec.name.split(".", 1)[1]
    return local + "_ms" if spec.display == "ms" else local


def _decay_freqs_hz() -> List[float]:
    k = P.FDN_NUM_DECAY_FREQS
    return [i * (P.SAMPLE_RATE / 2) / (k - 1) for i in range(k)]


def _check_vector(v: np.ndarray, where: str) -> np.ndarray:
    if v.shape != (P.NUM_PARAMS,):
        raise PresetError(f"{where}: expected {P.NUM_PARAMS} values, got shape {v.shape}")
    bad = np.flatnonzero(~np.isfinite(v))
    if bad.size:
        names = ", ".join(P.SPECS[i].name for i in bad[:5])
        raise PresetError(f"{where}: non-finite values in {names}")
    return v


@dataclass
class Preset:
    """A vocal-chain preset: the 130-value raw vector plus a name and provenance.

    Example:
        >>> p = Preset.from_diffvox(raw_151)
        >>> y = VocalChain()(x, params=p.vector)
        >>> p.to_json("lead.json"); Preset.from_json("lead.json").physical["comp.attack_ms"]
    """

    raw: np.ndarray
    name: str = ""
    source: str = ""
    extra: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.raw = _check_vector(np.array(self.raw, dtype=np.float64).reshape(-1), f"preset {self.name or '(unnamed)'}")

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_vector(cls, vector: VectorLike, name: str = "", source: str = "") -> "Preset":
        """From a raw ``(130,)`` vector (tensor or array)."""
        if isinstance(vector, torch.Tensor):
            vector = vector.detach().cpu().double().numpy()
        return cls(np.asarray(vector, dtype=np.float64), name=name, source=source)

    @classmethod
    def from_diffvox(cls, raw: VectorLike, name: str = "", source: str = "") -> "Preset":
        """From a DiffVox raw vector: 151 values (their layout) or 130 (already masked)."""
        if isinstance(raw, torch.Tensor):
            raw = raw.detach().cpu().double().numpy()
        try:
            v = P.from_diffvox(np.asarray(raw, dtype=np.float64).reshape(-1))
        except ValueError as e:
            raise PresetError(str(e)) from None
        return cls(v, name=name, source=source)

    @classmethod
    def default(cls) -> "Preset":
        """DiffVox's initial parameters (reverb silent)."""
        return cls(P.default_vector(), name="default", source="vocalfx default (DiffVox initial values)")

    @classmethod
    def resolve(cls, spec: PathLike, index: Optional[int] = None) -> "Preset":
        """A preset named the way a user names one: a file, a collection and an index, or a
        shipped preset's name.

        Args:
            spec: A preset JSON file, a collection file (then ``index`` picks the preset; a
                collection of one needs none), or the name of a preset shipped in
                ``presets/vocalfx-starter.json`` (e.g. ``"pop-lead"``), tried when no such file
                exists.
            index: Position of the preset in a collection (default ``None``).

        Returns:
            The preset.

        Raises:
            PresetIndexError: ``spec`` is a collection of several presets and ``index`` is
                ``None``, or ``index`` is out of range.
            PresetError: the file is not a valid preset or collection, or ``spec`` is neither a
                file nor a shipped name (the message lists the shipped names).

        Example:
            >>> Preset.resolve("pop-lead").name
            'pop-lead'
        """
        p = Path(spec)
        if p.is_file():
            presets = load_collection(p)
            if len(presets) > 1 or index is not None:
                if index is None or not 0 <= index < len(presets):
                    raise PresetIndexError(spec, len(presets), index)
                return presets[index]
            return presets[0]
        try:
            shipped = shipped_presets()
        except FileNotFoundError:
            shipped = []
        for pr in shipped:
            if pr.name == str(spec):
                return pr
        names = ", ".join(pr.name for pr in shipped)
        raise PresetError(f"{spec}: no such preset file, and not a shipped preset name (shipped: {names})")

    @classmethod
    def from_physical(cls, values: Dict[str, float], base: Optional["Preset"] = None, name: str = "") -> "Preset":
        """From named display values (``"comp.attack_ms": 10.0``); others from ``base`` or defaults."""
        base = base or cls.default()
        raw = base.raw.copy()
        lookup = {f"{s.module}.{_display_key(s)}": i for i, s in enumerate(P.SPECS)}
        for k, val in values.items():
            if k not in lookup:
                raise PresetError(f"unknown parameter {k!r}")
            i = lookup[k]
            raw[i] = _raw_from_display(i, float(val), f"parameter {k}")
        return cls(raw, name=name or base.name)

    # --- views ----------------------------------------------------------------------------
    @property
    def vector(self) -> torch.Tensor:
        """The raw ``(130,)`` float64 vector."""
        return torch.from_numpy(self.raw.copy())

    @property
    def native(self) -> np.ndarray:
        return P.raw_to_native(torch.from_numpy(self.raw)).numpy()

    @property
    def physical(self) -> Dict[str, float]:
        """Named values in display units, e.g. ``{"peak1.freq_hz": 812.0, "comp.attack_ms": 9.1}``."""
        disp = P.native_to_display(self.native)
        return {f"{s.module}.{_display_key(s)}": float(disp[i]) for i, s in enumerate(P.SPECS)}

    # --- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        disp = P.native_to_display(self.native)
        groups: Dict[str, Dict[str, Any]] = {}
        n = len(P.FDN_DELAYS)
        for i, s in enumerate(P.SPECS):
            if s.module == "reverb":
                continue
            groups.setdefault(s.module, {})[_display_key(s)] = float(disp[i])
        rv = disp[P.MODULE_SLICES["reverb"]]
        groups["reverb"] = {
            "b": rv[: 2 * n].reshape(n, 2).tolist(),
            "c": rv[2 * n : 4 * n].reshape(2, n).tolist(),
            "decay_t60_s": rv[4 * n : 4 * n + P.FDN_NUM_DECAY_FREQS].tolist(),
            "decay_freqs_hz": _decay_freqs_hz(),
            "mixing": rv[4 * n + P.FDN_NUM_DECAY_FREQS :].tolist(),
        }
        out: Dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "layout": P.LAYOUT_ID,
            "sample_rate": P.SAMPLE_RATE,
            "name": self.name,
            "source": self.source,
            "units": _UNITS,
            "parameters": groups,
            "raw": self.raw.tolist(),
        }
        if self.extra:
            out["extra"] = self.extra
        return out

    @classmethod
    def from_dict(cls, d: Dict[str, Any], where: str = "preset") -> "Preset":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise PresetError(f'{where}: not a vocalfx preset (missing "format": "{FORMAT}")')
        if d.get("version") != VERSION:
            raise PresetError(
                f"{where}: unsupported preset version {d.get('version')!r} (this vocalfx reads {VERSION})"
            )
        if d.get("layout", P.LAYOUT_ID) != P.LAYOUT_ID:
            raise PresetError(f"{where}: parameter layout {d.get('layout')!r} is not {P.LAYOUT_ID!r}")
        flat = _flatten_parameters(d.get("parameters"), where)
        raw_in = d.get("raw")
        if raw_in is not None:
            try:
                raw = np.asarray(raw_in, dtype=np.float64).reshape(-1)
            except (TypeError, ValueError):
                raise PresetError(f'{where}: "raw" is not a list of numbers') from None
            raw = _check_vector(raw, where).copy()
        else:
            raw = P.default_vector()
        implied = P.native_to_display(P.raw_to_native(torch.from_numpy(raw)).numpy())
        for i, s in enumerate(P.SPECS):
            key = s.name
            if key not in flat:
                if raw_in is None:
                    raise PresetError(f"{where}: parameter {_public_name(i)} is missing")
                continue
            val = flat[key]
            if raw_in is not None and _close(val, implied[i]):
                continue
            raw[i] = _raw_from_display(i, val, f"{where}: parameter {_public_name(i)}")
        return cls(raw, name=str(d.get("name", "")), source=str(d.get("source", "")), extra=d.get("extra") or {})

    def to_json(self, path: PathLike, *, inputs: Sequence[PathLike] = ()) -> None:
        """Write the preset atomically (refuses to overwrite any path in ``inputs``)."""
        from .io import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1) + "\n", inputs=inputs)

    @classmethod
    def from_json(cls, path: PathLike) -> "Preset":
        d = _read_json(path)
        if isinstance(d, dict) and d.get("format") == COLLECTION_FORMAT:
            raise PresetError(
                f"{path}: this is a preset collection; read it with load_collection or Preset.resolve(path, index)"
            )
        return cls.from_dict(d, where=str(path))

    def table(self) -> str:
        """A readable table of the parameters, grouped by module, with units."""
        disp = P.native_to_display(self.native)
        lines = [f"preset: {self.name or '(unnamed)'}" + (f"  [{self.source}]" if self.source else "")]
        last = None
        n = len(P.FDN_DELAYS)
        for i, s in enumerate(P.SPECS):
            if s.module == "reverb":
                if last != "reverb":
                    rv = disp[P.MODULE_SLICES["reverb"]]
                    t60 = rv[4 * n : 4 * n + P.FDN_NUM_DECAY_FREQS]
                    fr = _decay_freqs_hz()
                    lines.append("reverb (FDN)")
                    lines.append(f"  {'input gains b (6x2)':<28} " + " ".join(f"{v:+.3f}" for v in rv[: 2 * n]))
                    lines.append(f"  {'output gains c (2x6)':<28} " + " ".join(f"{v:+.3f}" for v in rv[2 * n : 4 * n]))
                    for lo in range(0, P.FDN_NUM_DECAY_FREQS, 7):
                        seg = ", ".join(f"{fr[k] / 1000:.1f}k:{t60[k]:.2f}" for k in range(lo, min(lo + 7, len(t60))))
                        lines.append(f"  {'T60 s @ kHz' if lo == 0 else '':<28} {seg}")
                    lines.append(
                        f"  {'mixing generator (15)':<28} "
                        + " ".join(f"{v:+.2f}" for v in rv[4 * n + P.FDN_NUM_DECAY_FREQS :])
                    )
                last = "reverb"
                continue
            if s.module != last:
                lines.append(_MODULE_TITLES.get(s.module, s.module))
                last = s.module
            unit = "pan" if s.display == "pan" else s.unit
            lines.append(f"  {_display_key(s):<28} {disp[i]:>12.4g} {unit}")
        return "\n".join(lines)


_MODULE_TITLES = {
    "peak1": "EQ peak 1",
    "peak2": "EQ peak 2",
    "low_shelf": "EQ low shelf",
    "high_shelf": "EQ high shelf",
    "lowpass": "EQ low-pass",
    "highpass": "EQ high-pass",
    "comp": "compressor/expander",
    "send": "delay -> reverb send",
    "delay": "ping-pong delay",
    "reverb_eq_peak1": "reverb EQ peak 1",
    "reverb_eq_peak2": "reverb EQ peak 2",
    "reverb_eq_low_shelf": "reverb EQ low shelf",
    "reverb_eq_high_shelf": "reverb EQ high shelf",
    "pan": "direct pan",
}

_UNITS = {
    "_db": "decibels",
    "_hz": "hertz",
    "_ms": "milliseconds",
    "q": "quality factor",
    "ratio": "compression/expansion ratio",
    "pan": "-100 (left) .. 100 (right)",
    "decay_t60_s": "reverberation time (s) at decay_freqs_hz",
    "b, c": "linear gains",
    "mixing": "generator of the orthogonal mixing matrix (unitless)",
}


def _public_name(i: int) -> str:
    s = P.SPECS[i]
    return f"{s.module}.{_display_key(s)}"


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _raw_from_display(i: int, val: float, where: str) -> float:
    s = P.SPECS[i]
    if not isinstance(val, (int, float)) or isinstance(val, bool) or not math.isfinite(val):
        raise PresetError(f"{where} must be a finite number, got {val!r}")
    lo, hi = P.display_range(s)
    unit = "pan" if s.display == "pan" else s.unit
    inclusive_lo = s.map == "abs_mod"
    if s.map != "identity" and not ((lo <= val if inclusive_lo else lo < val) and val < hi):
        bracket = "[" if inclusive_lo else "("
        raise PresetError(f"{where} = {val} is outside its range {bracket}{lo:g}, {hi:g}) {unit}")
    native = np.array([p.default for p in P.SPECS])
    disp = P.native_to_display(native)
    disp[i] = val
    native = P.display_to_native(disp)
    try:
        return float(P.native_to_raw(native)[i])
    except ValueError:
        raise PresetError(
            f"{where} = {val} is at the edge of its range ({lo:g}, {hi:g}) {unit} and cannot be represented"
        ) from None


def _flatten_parameters(groups: Any, where: str) -> Dict[str, float]:
    if not isinstance(groups, dict):
        raise PresetError(f'{where}: "parameters" must be an object of modules')
    flat: Dict[str, float] = {}
    by_key = {(s.module, _display_key(s)): s.name for s in P.SPECS}
    n = len(P.FDN_DELAYS)
    for mod, vals in groups.items():
        if not isinstance(vals, dict):
            raise PresetError(f"{where}: module {mod!r} must be an object")
        if mod == "reverb":
            arrays = {"b": (n, 2), "c": (2, n), "decay_t60_s": (P.FDN_NUM_DECAY_FREQS,), "mixing": (n * (n - 1) // 2,)}
            for key, shape in arrays.items():
                if key not in vals:
                    continue
                try:
                    arr = np.asarray(vals[key], dtype=np.float64)
                except (TypeError, ValueError):
                    raise PresetError(f"{where}: reverb.{key} is not numeric") from None
                if arr.shape != shape:
                    raise PresetError(f"{where}: reverb.{key} must have shape {shape}, got {arr.shape}")
                names = {
                    "b": [f"reverb.b_{i}_{j}" for i in range(n) for j in range(2)],
                    "c": [f"reverb.c_{i}_{j}" for i in range(2) for j in range(n)],
                    "decay_t60_s": [f"reverb.decay_{k:02d}" for k in range(P.FDN_NUM_DECAY_FREQS)],
                    "mixing": [f"reverb.mixing_{i}_{j}" for i in range(n) for j in range(i + 1, n)],
                }[key]
                for nm, v in zip(names, arr.reshape(-1)):
                    flat[nm] = float(v)
            continue
        for key, v in vals.items():
            if (mod, key) not in by_key:
                raise PresetError(f"{where}: unknown parameter {mod}.{key}")
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise PresetError(f"{where}: parameter {mod}.{key} must be a number, got {v!r}")
            flat[by_key[(mod, key)]] = float(v)
    return flat


def _read_json(path: PathLike) -> Any:
    p = Path(path)
    if not p.is_file():
        raise PresetError(f"{path}: no such file")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise PresetError(f"{path}: not valid JSON ({e})") from None


# --- collections -------------------------------------------------------------------------
def save_collection(
    presets: Sequence[Preset], path: PathLike, *, name: str = "", source: str = "", inputs: Sequence[PathLike] = ()
) -> None:
    """Write presets as one collection file (JSON), atomically."""
    from .io import atomic_write_text

    d = {
        "format": COLLECTION_FORMAT,
        "version": VERSION,
        "layout": P.LAYOUT_ID,
        "name": name,
        "source": source,
        "presets": [p.to_dict() for p in presets],
    }
    atomic_write_text(path, json.dumps(d, indent=None, separators=(",", ":")) + "\n", inputs=inputs)


def load_collection(path: PathLike) -> List[Preset]:
    """Read a collection file (or a single preset file, as a collection of one)."""
    d = _read_json(path)
    if isinstance(d, dict) and d.get("format") == FORMAT:
        return [Preset.from_dict(d, where=str(path))]
    if not isinstance(d, dict) or d.get("format") != COLLECTION_FORMAT:
        raise PresetError(f"{path}: not a vocalfx preset collection")
    if d.get("layout") != P.LAYOUT_ID:
        raise PresetError(f"{path}: parameter layout {d.get('layout')!r} is not {P.LAYOUT_ID!r}")
    items = d.get("presets")
    if not isinstance(items, list):
        raise PresetError(f'{path}: "presets" must be a list')
    return [Preset.from_dict(x, where=f"{path} preset #{i}") for i, x in enumerate(items)]


def shipped_presets() -> List[Preset]:
    """The presets shipped with vocalfx (``presets/vocalfx-starter.json``), in file order."""
    from ._data import data_path

    return load_collection(data_path("presets", SHIPPED_COLLECTION))


def collection_vectors(presets: Sequence[Preset]) -> np.ndarray:
    """Stack presets into an ``(N, 130)`` raw matrix."""
    return np.stack([p.raw for p in presets]) if presets else np.zeros((0, P.NUM_PARAMS))


def import_diffvox_collection(directory: PathLike, *, indices: Optional[Sequence[int]] = None) -> List[Preset]:
    """Convert a DiffVox preset folder (``raw_params.npy``, ``feature_mask.npy``, optional ``info.json``).

    The 151-value rows are masked to our 130 values; the stored mask must agree with ours.
    """
    d = Path(directory)
    rp, fm = d / "raw_params.npy", d / "feature_mask.npy"
    for f in (rp, fm):
        if not f.is_file():
            raise PresetError(f"{f}: missing (a DiffVox collection has raw_params.npy and feature_mask.npy)")
    try:
        raw = np.load(rp)
        mask = np.load(fm)
    except Exception as e:  # numpy raises several types for corrupt files
        raise PresetError(f"{d}: cannot read the DiffVox arrays ({e})") from None
    if raw.ndim != 2 or raw.shape[1] != P.NUM_DIFFVOX_PARAMS:
        raise PresetError(f"{rp}: expected shape (N, {P.NUM_DIFFVOX_PARAMS}), got {raw.shape}")
    if mask.shape != (P.NUM_DIFFVOX_PARAMS,) or not np.array_equal(mask.astype(bool), P.DIFFVOX_FEATURE_MASK):
        raise PresetError(f"{fm}: feature mask differs from the DiffVox layout vocalfx knows")
    names = [f"{d.name}_{i:03d}" for i in range(raw.shape[0])]
    info = d / "info.json"
    if info.is_file():
        try:
            runs = json.loads(info.read_text()).get("runs")
            if isinstance(runs, list) and len(runs) == raw.shape[0]:
                names = [f"{d.name}_{i:03d} ({Path(str(r)).name})" for i, r in enumerate(runs)]
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise PresetError(f"{info}: not valid JSON") from None
    idx = range(raw.shape[0]) if indices is None else indices
    src = f"DiffVox preset collection '{d.name}' (Yu et al. 2025, MIT), row {{}}"
    return [Preset.from_diffvox(raw[i], name=names[i], source=src.format(i)) for i in idx]


def load_index_file(path: PathLike, total: int) -> List[int]:
    """Read a ``.npy`` of row indices into a collection (e.g. DiffVox's ``train_index.npy``).

    Args:
        path: A ``.npy`` file holding a 1-D integer array.
        total: Size of the collection the indices select from.

    Returns:
        The indices, in file order.

    Raises:
        PresetError: the file is missing or unreadable, not a 1-D integer array, or holds an index
            outside ``0 .. total - 1``.
    """
    p = Path(path)
    if not p.is_file():
        raise PresetError(f"{path}: no such file")
    try:
        idx = np.load(p, allow_pickle=False)
    except Exception as e:  # numpy raises several types for corrupt files
        raise PresetError(f"{path}: cannot read as a .npy index array ({type(e).__name__})") from None
    if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
        raise PresetError(f"{path}: expected a 1-D integer array of row indices, got {idx.dtype} shape {idx.shape}")
    bad = idx[(idx < 0) | (idx >= total)]
    if bad.size:
        raise PresetError(f"{path}: index {int(bad[0])} is out of range for a collection of {total} presets")
    return [int(i) for i in idx]
