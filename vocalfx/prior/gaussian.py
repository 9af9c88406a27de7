"""A multivariate Gaussian over the 130-value raw parameter vector.

DiffVox (Yu et al., 2025) models a collection of fitted presets as ``N(mean, cov)`` in the raw
(unconstrained) parameter space and uses its log-density as the regulariser of inference-time
optimisation. :class:`GaussianPrior` fits, evaluates, samples, saves and loads such a model.

Conventions:
    * ``fit`` uses the sample mean and the unbiased sample covariance (normalised by ``N - 1``).
      That is DiffVox's convention: it reproduces the shipped ``gaussian.npz`` of the internal
      collection to ~1e-7 (relative to the largest entry); normalising by ``N`` is off by 1/365.
    * ``fit(..., shrinkage="ledoit-wolf")`` uses the Ledoit-Wolf (2004) estimator exactly as
      published (and as scikit-learn's ``LedoitWolf``): the maximum-likelihood covariance ``S``
      (normalised by ``N``) shrunk towards ``mu * I`` with ``mu = trace(S) / p`` and the
      closed-form optimal intensity. Use it when a collection has fewer presets than the 130
      dimensions (MedleyDB has 70), where the plain covariance is singular.

File format (``save``/``load``): an ``.npz`` (``numpy.savez``, no pickled objects) holding:

    ========================  =================  ===============================================
    key                       dtype / shape      meaning
    ========================  =================  ===============================================
    ``format``                str                ``"vocalfx-gaussian-prior"``
    ``format_version``        int64 ()           ``1``
    ``layout_id``             str                parameter layout (:data:`vocalfx.params.LAYOUT_ID`)
    ``num_params``            int64 ()           vector width (:data:`vocalfx.params.NUM_PARAMS`)
    ``param_names``           str (130,)         names of the entries, in vector order
    ``mean``                  float64 (130,)     mean raw vector
    ``cov``                   float64 (130, 130) covariance of the raw vectors
    ``n_presets``             int64 ()           number of vectors fitted (-1 if unknown)
    ``source``                str                free-text provenance
    ``shrinkage``             str                ``"none"`` or ``"ledoit-wolf"``
    ``shrinkage_intensity``   float64 ()         Ledoit-Wolf intensity in [0, 1] (NaN if none)
    ``vocalfx_version``       str                version of vocalfx that wrote the file
    ========================  =================  ===============================================

Loading refuses a file whose ``layout_id`` or ``num_params`` differ from this vocalfx's, and
files that are missing, not ``.npz``, lack a key, or hold non-finite values; every error names
the file.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import IO, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .. import params as P
from ..errors import VocalfxError

__all__ = [
    "GaussianPrior",
    "PriorError",
    "PriorNotFoundError",
    "SHRINKAGE_METHODS",
    "FILE_FORMAT",
    "FILE_FORMAT_VERSION",
    "ledoit_wolf",
]

FILE_FORMAT = "vocalfx-gaussian-prior"
FILE_FORMAT_VERSION = 1
SHRINKAGE_METHODS = (None, "ledoit-wolf")
DEFAULT_PRIOR_FILE = "diffvox-internal.npz"
_KEYS = (
    "format",
    "format_version",
    "layout_id",
    "num_params",
    "param_names",
    "mean",
    "cov",
    "n_presets",
    "source",
    "shrinkage",
    "shrinkage_intensity",
    "vocalfx_version",
)
# A Cholesky pivot this small relative to the largest variance means the matrix is singular up
# to rounding: accepting it would give log-densities dominated by rounding noise.
_PIVOT_RTOL = 1e-12

PathLike = Union[str, "os.PathLike[str]"]
#: Vectors or matrices as callers hold them: a tensor, an array or nested sequences of numbers.
ArrayLike = Union[torch.Tensor, np.ndarray, Sequence[float], Sequence[Sequence[float]]]


class PriorError(VocalfxError, ValueError):
    """A prior file that cannot be used (unreadable, another layout, non-finite values), data a
    prior cannot be fitted to, or a prior that cannot do what was asked (a singular covariance
    has no density and no samples); the message names the file or the problem."""


class PriorNotFoundError(VocalfxError, FileNotFoundError):
    """:meth:`GaussianPrior.load` was given a path where there is no file."""


def ledoit_wolf(x: np.ndarray) -> Tuple[np.ndarray, float]:
    """Ledoit-Wolf shrunk covariance of the rows of ``x`` (closed form, Ledoit & Wolf 2004).

    With ``X`` the centred data (``n`` rows, ``p`` columns) and ``S = X^T X / n``:
    ``mu = tr(S) / p``, ``d2 = ||S - mu I||_F^2 / p``,
    ``b2 = min(d2, sum_k ||x_k x_k^T - S||_F^2 / (p n^2))``, intensity ``s = b2 / d2``,
    result ``(1 - s) S + s mu I``.

    Args:
        x: data, shape ``(n, p)``, float64.

    Returns:
        ``(cov, intensity)``: the ``(p, p)`` shrunk covariance and the intensity in ``[0, 1]``.
    """
    x = np.asarray(x, dtype=np.float64)
    n, p = x.shape
    xc = x - x.mean(0)
    s = xc.T @ xc / n
    s = 0.5 * (s + s.T)
    mu = np.trace(s) / p
    d2 = (np.sum(s * s) - 2.0 * mu * np.trace(s) + p * mu * mu) / p  # ||S - mu I||_F^2 / p
    # sum_k ||x_k x_k^T - S||_F^2 = sum_k ||x_k||^4 - n ||S||_F^2   (because sum_k x_k x_k^T = n S)
    sq = np.sum(xc * xc, axis=1)
    b2_bar = (np.sum(sq * sq) - n * np.sum(s * s)) / (p * n * n)
    b2 = min(b2_bar, d2)
    intensity = 0.0 if d2 == 0.0 else float(b2 / d2)
    cov = (1.0 - intensity) * s
    cov[np.diag_indices(p)] += intensity * mu
    return cov, intensity


def _describe_nonfinite(x: np.ndarray) -> str:
    rows, cols = np.nonzero(~np.isfinite(x))
    urows = sorted(set(rows.tolist()))
    names = sorted({P.SPECS[c].name for c in cols.tolist()}) if x.shape[-1] == P.NUM_PARAMS else []
    what = f"rows {urows[:5]}{' ...' if len(urows) > 5 else ''}"
    if names:
        what += f", parameters {names[:5]}{' ...' if len(names) > 5 else ''}"
    return what


class GaussianPrior:
    """Multivariate normal ``N(mean, cov)`` over raw 130-value parameter vectors.

    Construct it with :meth:`fit`, :meth:`load` or :meth:`default`, or directly from a mean and a
    covariance. ``mean`` and ``cov`` are float64 CPU tensors (copies: the prior is immutable).

    Args:
        mean: mean raw vector, shape ``(130,)``.
        cov: covariance, shape ``(130, 130)``, symmetric (asymmetry at rounding level, up to
            1e-6 of the largest entry, is averaged away; more is refused).
        n_presets: number of vectors the prior was fitted from (``None`` if unknown).
        source: free-text provenance, stored in saved files.
        shrinkage: ``None`` or ``"ledoit-wolf"``: how ``cov`` was estimated.
        shrinkage_intensity: the Ledoit-Wolf intensity, if any.

    Example:
        >>> prior = GaussianPrior.default()
        >>> v = prior.sample(4, generator=torch.Generator().manual_seed(0))   # (4, 130) float64
        >>> prior.log_prob(v).shape
        torch.Size([4])
    """

    def __init__(
        self,
        mean: ArrayLike,
        cov: ArrayLike,
        *,
        n_presets: Optional[int] = None,
        source: str = "",
        shrinkage: Optional[str] = None,
        shrinkage_intensity: Optional[float] = None,
    ) -> None:
        p = P.NUM_PARAMS
        m, c = _as_f64(mean), _as_f64(cov)
        if m.shape != (p,):
            raise ValueError(f"expected a mean of shape ({p},), got shape {m.shape}")
        if c.shape != (p, p):
            raise ValueError(f"expected a covariance of shape ({p}, {p}), got shape {c.shape}")
        if not np.all(np.isfinite(m)):
            raise ValueError(f"the mean contains NaN or Inf at parameters {_nonfinite_names(m)}")
        if not np.all(np.isfinite(c)):
            raise ValueError("the covariance contains NaN or Inf")
        scale = float(np.max(np.abs(c)))
        asym = float(np.max(np.abs(c - c.T)))
        if asym > 1e-6 * scale:
            raise ValueError(f"the covariance is not symmetric (max |C - C^T| = {asym:.3g}, max |C| = {scale:.3g})")
        if shrinkage not in SHRINKAGE_METHODS:
            raise ValueError(f"unknown shrinkage {shrinkage!r}; choose one of {SHRINKAGE_METHODS}")
        self._mean = torch.from_numpy(m)
        self._cov = torch.from_numpy(0.5 * (c + c.T))
        self.n_presets = None if n_presets is None else int(n_presets)
        self.source = str(source)
        self.shrinkage = shrinkage
        self.shrinkage_intensity = None if shrinkage_intensity is None else float(shrinkage_intensity)
        self._chol64: Optional[torch.Tensor] = None
        self._logdet: Optional[float] = None
        self._factors: Dict[Tuple[torch.dtype, torch.device], Tuple[torch.Tensor, torch.Tensor]] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def fit(cls, vectors: ArrayLike, shrinkage: Optional[str] = None, *, source: str = "") -> "GaussianPrior":
        """Fit the sample mean and covariance of a collection of raw vectors.

        Args:
            vectors: raw parameter vectors, shape ``(N, 130)`` with ``N >= 2`` (array or tensor;
                computed in float64). DiffVox's 151-value vectors must first go through
                :func:`vocalfx.params.from_diffvox`.
            shrinkage: ``None`` (default): unbiased sample covariance, normalised by ``N - 1``
                (DiffVox's convention). ``"ledoit-wolf"``: Ledoit-Wolf shrinkage towards a
                scaled identity (see :func:`ledoit_wolf`); use it when ``N`` is not much larger
                than 130.
            source: free-text provenance stored with the prior.

        Returns:
            The fitted :class:`GaussianPrior`.

        Raises:
            PriorError: fewer than 2 vectors, or NaN/Inf in them.
            ValueError: wrong shape, or an unknown ``shrinkage``.
        """
        if shrinkage not in SHRINKAGE_METHODS:
            raise ValueError(f"unknown shrinkage {shrinkage!r}; choose one of {SHRINKAGE_METHODS}")
        x = _as_f64(vectors)
        p = P.NUM_PARAMS
        if x.ndim != 2 or x.shape[1] != p:
            hint = (
                " (DiffVox's 151-value layout: convert with vocalfx.params.from_diffvox)"
                if x.shape[-1:] == (P.NUM_DIFFVOX_PARAMS,)
                else ""
            )
            raise ValueError(f"expected vectors of shape (N, {p}), got shape {x.shape}{hint}")
        n = x.shape[0]
        if n < 2:
            raise PriorError(f"need at least 2 vectors to fit a covariance, got {n}")
        if not np.all(np.isfinite(x)):
            raise PriorError(f"vectors contain NaN or Inf ({_describe_nonfinite(x)})")
        mean = x.mean(0)
        if shrinkage is None:
            xc = x - mean
            cov = xc.T @ xc / (n - 1)
            intensity = None
        else:
            cov, intensity = ledoit_wolf(x)
        return cls(
            mean, 0.5 * (cov + cov.T), n_presets=n, source=source, shrinkage=shrinkage, shrinkage_intensity=intensity
        )

    @classmethod
    def default(cls) -> "GaussianPrior":
        """The prior shipped with vocalfx: fitted from DiffVox's internal collection.

        365 training presets (``train_index.npy``) of the DiffVox internal collection (Yu et al.,
        2025, MIT), no shrinkage; rebuilt by ``scripts/fit_default_prior.py`` (see
        ``priors/README.md``). Needs no file outside the installed package.
        """
        from .._data import data_path

        return cls.load(data_path("priors", DEFAULT_PRIOR_FILE))

    # ------------------------------------------------------------------ attributes
    @property
    def mean(self) -> torch.Tensor:
        """Mean raw vector, ``(130,)`` float64 (a copy)."""
        return self._mean.clone()

    @property
    def cov(self) -> torch.Tensor:
        """Covariance, ``(130, 130)`` float64 (a copy)."""
        return self._cov.clone()

    @property
    def dim(self) -> int:
        return P.NUM_PARAMS

    def __repr__(self) -> str:
        shrink = "" if self.shrinkage is None else f", shrinkage={self.shrinkage!r} ({self.shrinkage_intensity:.3g})"
        return f"GaussianPrior(dim={self.dim}, n_presets={self.n_presets}{shrink}, layout={P.LAYOUT_ID!r})"

    def describe(self) -> str:
        """A readable account of the prior (what ``vocalfx prior info`` prints).

        Its source, size, layout, shrinkage and the covariance's condition number, then one row
        per parameter in physical units (Hz, dB, ms, ratio, pan -100..100, T60 s): the value at the
        raw mean and the raw mean -1 sd and +1 sd (marginal standard deviation) mapped through the
        parameter map. The maps are monotone (except ``comp.lookahead_ms``, which folds at 0 ms),
        so these are the 16th and 84th percentiles of the marginal in physical units.

        Returns:
            Multi-line text, no trailing newline.
        """
        mean = self._mean.numpy()
        cov = self._cov.numpy()
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        eig = np.linalg.eigvalsh(cov)
        cond = "inf (singular: not positive definite)" if eig[0] <= 0 else f"{eig[-1] / eig[0]:.4g}"
        shrink = "none" if self.shrinkage is None else f"{self.shrinkage} (intensity {self.shrinkage_intensity:.3g})"
        n = self.n_presets if self.n_presets is not None else "an unknown number of"
        lines: List[str] = [
            f"source: {self.source or '(not recorded)'}",
            f"size: {self.dim} parameters, fitted from {n} presets",
            f"layout: {P.LAYOUT_ID}",
            f"shrinkage: {shrink}",
            f"condition number of the covariance: {cond} (eigenvalues {eig[0]:.3g} .. {eig[-1]:.3g})",
            "",
            "Per parameter, in physical units: the value at the raw mean, and the raw mean -1 sd and +1 sd mapped",
            "through the parameter map (for these monotone maps: the 16th and 84th percentiles of the marginal).",
            f"{'parameter':<32} {'unit':<6} {'mean':>11}   {'16%':>11} .. {'84%':<11} {'raw mean':>9} {'raw sd':>8}",
        ]

        def display(raw: np.ndarray) -> np.ndarray:
            return P.native_to_display(P.raw_to_native(torch.from_numpy(raw)).numpy())

        at_mean, at_lo, at_hi = display(mean), display(mean - sd), display(mean + sd)
        for i, spec in enumerate(P.SPECS):
            key = spec.name.split(".", 1)[1] + ("_ms" if spec.display == "ms" else "")
            unit = "pan" if spec.display == "pan" else spec.unit
            lo, hi = sorted((at_lo[i], at_hi[i]))
            lines.append(
                f"{spec.module + '.' + key:<32} {unit:<6} {at_mean[i]:>11.4g}   {lo:>11.4g} .. {hi:<11.4g} "
                f"{mean[i]:>9.3f} {sd[i]:>8.3f}"
            )
        return "\n".join(lines)

    # ------------------------------------------------------------------ factor
    def _cholesky64(self) -> torch.Tensor:
        if self._chol64 is None:
            L, info = torch.linalg.cholesky_ex(self._cov)
            k = int(info)
            if k == 0:
                piv = torch.diagonal(L) ** 2
                if bool(piv.min() <= _PIVOT_RTOL * torch.diagonal(self._cov).max()):
                    k = int(torch.argmin(piv)) + 1
            if k != 0:
                n = "" if self.n_presets is None else f", fitted from {self.n_presets} vectors"
                raise PriorError(
                    f"the covariance of this prior is not positive definite{n} in {self.dim} dimensions "
                    f"(Cholesky fails at pivot {k}, parameter {P.SPECS[k - 1].name!r}); "
                    "refit with GaussianPrior.fit(vectors, shrinkage='ledoit-wolf')"
                )
            self._chol64 = L
            self._logdet = float(2.0 * torch.log(torch.diagonal(L)).sum())
        return self._chol64

    def _factor(self, dtype: torch.dtype, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(L, mean)`` in the given dtype/device, cached; ``L`` is computed once in float64."""
        key = (dtype, torch.device(device))
        if key not in self._factors:
            L = self._cholesky64()
            self._factors[key] = (L.to(device=device, dtype=dtype), self._mean.to(device=device, dtype=dtype))
        return self._factors[key]

    @property
    def log_det_cov(self) -> float:
        """``log det(cov)``, from the Cholesky factor."""
        self._cholesky64()
        assert self._logdet is not None
        return self._logdet

    # ------------------------------------------------------------------ density / sampling
    def log_prob(self, v: ArrayLike) -> torch.Tensor:
        """Log-density of raw vectors under the prior (differentiable).

        ``log p(v) = -(p log(2 pi) + log det C + ||L^-1 (v - mean)||^2) / 2`` with ``C = L L^T``
        (Cholesky); computed with a triangular solve, never an explicit inverse.

        Args:
            v: raw vectors, shape ``(..., 130)``; a floating tensor keeps its dtype and device
                (and autograd graph), anything else is converted to float64.

        Shape:
            ``(..., 130) -> (...)``.

        Returns:
            The log-densities, in ``v``'s dtype.

        Raises:
            ValueError: ``v`` is not ``(..., 130)``.
            PriorError: the covariance is not positive definite (fit with
                ``shrinkage="ledoit-wolf"`` then).
        """
        if not (torch.is_tensor(v) and v.is_floating_point()):
            v = torch.as_tensor(np.asarray(v, dtype=np.float64) if not torch.is_tensor(v) else v, dtype=torch.float64)
        if v.dim() == 0 or v.shape[-1] != self.dim:
            raise ValueError(f"expected raw vectors of shape (..., {self.dim}), got shape {tuple(v.shape)}")
        L, mean = self._factor(v.dtype, v.device)
        batch = v.shape[:-1]
        diff = (v - mean).reshape(-1, self.dim)  # (M, p)
        z = torch.linalg.solve_triangular(L, diff.T, upper=False)  # (p, M)
        maha = (z * z).sum(0)
        const = self.dim * math.log(2.0 * math.pi) + self.log_det_cov
        return (-0.5 * (maha + const)).reshape(batch)

    def sample(self, n: int, *, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Draw raw vectors ``mean + L z``, ``z ~ N(0, I)``.

        Args:
            n: number of vectors.
            generator: a seeded ``torch.Generator`` for reproducible draws (CPU); default: torch's
                global generator.

        Returns:
            ``(n, 130)`` float64 CPU tensor.

        Raises:
            PriorError: the covariance is not positive definite.
        """
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        L = self._cholesky64()
        z = torch.randn(int(n), self.dim, generator=generator, dtype=torch.float64)
        return self._mean + z @ L.T

    # ------------------------------------------------------------------ files
    def save(self, path: Union[PathLike, IO[bytes]]) -> None:
        """Write the prior as ``.npz`` (format in this module's docstring).

        Args:
            path: A file name, which should end in ``.npz`` (numpy appends it otherwise), or a
                binary file object (written as is; e.g. with :func:`vocalfx.io.atomic_write`,
                which writes exactly the path it is given, atomically).
        """
        from .._version import __version__

        np.savez(
            path,
            format=np.array(FILE_FORMAT),
            format_version=np.array(FILE_FORMAT_VERSION, dtype=np.int64),
            layout_id=np.array(P.LAYOUT_ID),
            num_params=np.array(P.NUM_PARAMS, dtype=np.int64),
            param_names=np.array([s.name for s in P.SPECS]),
            mean=self._mean.numpy(),
            cov=self._cov.numpy(),
            n_presets=np.array(-1 if self.n_presets is None else self.n_presets, dtype=np.int64),
            source=np.array(self.source),
            shrinkage=np.array("none" if self.shrinkage is None else self.shrinkage),
            shrinkage_intensity=np.array(
                np.nan if self.shrinkage_intensity is None else self.shrinkage_intensity, dtype=np.float64
            ),
            vocalfx_version=np.array(__version__),
        )

    @classmethod
    def load(cls, path: PathLike) -> "GaussianPrior":
        """Read a prior written by :meth:`save`.

        Raises:
            PriorNotFoundError: no such file (a ``FileNotFoundError``).
            PriorError: not a vocalfx prior file, a missing key, another parameter layout or
                width, or non-finite values; the message names the file.
        """
        path = Path(path)
        if not path.is_file():
            raise PriorNotFoundError(f"prior file {str(path)!r} does not exist")
        try:
            f = np.load(path, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):  # a plain .npy: one array, not a prior
                raise ValueError("it holds a single array, not a set of named arrays")
            with f:
                data = {k: f[k] for k in f.files}
        except Exception as e:  # zip, zlib, pickle and format errors all mean "unreadable"
            raise PriorError(f"cannot read prior file {str(path)!r}: not a valid .npz ({e})") from e
        missing = [k for k in _KEYS if k not in data]
        if "format" not in data or str(data["format"]) != FILE_FORMAT:
            raise PriorError(
                f"{str(path)!r} is not a vocalfx prior file (format {str(data.get('format', 'missing'))!r}, "
                f"expected {FILE_FORMAT!r}); a DiffVox gaussian.npz can be used as "
                "GaussianPrior(mean, cov) after checking its layout"
            )
        if missing:
            raise PriorError(f"prior file {str(path)!r} is missing {missing}")
        version = int(data["format_version"])
        if version > FILE_FORMAT_VERSION:
            raise PriorError(
                f"prior file {str(path)!r} has format version {version}; this vocalfx reads up to "
                f"{FILE_FORMAT_VERSION}: upgrade vocalfx"
            )
        layout, width = str(data["layout_id"]), int(data["num_params"])
        if layout != P.LAYOUT_ID or width != P.NUM_PARAMS:
            raise PriorError(
                f"prior file {str(path)!r} is for parameter layout {layout!r} ({width} values); "
                f"this vocalfx uses {P.LAYOUT_ID!r} ({P.NUM_PARAMS} values): refit the prior"
            )
        shrink = str(data["shrinkage"])
        n_presets = int(data["n_presets"])
        try:
            return cls(
                data["mean"],
                data["cov"],
                n_presets=None if n_presets < 0 else n_presets,
                source=str(data["source"]),
                shrinkage=None if shrink == "none" else shrink,
                shrinkage_intensity=None
                if np.isnan(data["shrinkage_intensity"])
                else float(data["shrinkage_intensity"]),
            )
        except ValueError as e:
            raise PriorError(f"invalid prior file {str(path)!r}: {e}") from e


def _as_f64(x) -> np.ndarray:
    if torch.is_tensor(x):
        x = x.detach().cpu().numpy()
    return np.array(x, dtype=np.float64)


def _nonfinite_names(m: np.ndarray):
    return [P.SPECS[i].name for i in np.nonzero(~np.isfinite(m))[0][:5]]
