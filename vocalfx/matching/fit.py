"""Fit the vocal chain to a dry/wet pair: the procedure that built DiffVox's preset collections.

Given a dry vocal and the same vocal after someone's effects (the "wet" stem),
:func:`fit_pair` finds the 130 raw values of the chain whose render of the dry best matches the
wet. The steps follow DiffVox's ``main.py`` and ``presets/fx_config.yaml`` (Yu et al., 2025):

1. **Align** (:func:`find_lag`): the lag of the wet behind the dry is the peak of their
   cross-correlation (FFT-based, float64, the dry against the mean of the wet's channels), with
   the PHAT weighting: DiffVox's plain cross-correlation locks onto the wrong pitch period once
   the wet is equalised (measurements in :func:`find_lag`). Both signals are then trimmed to the
   samples they share; DiffVox rolls the dry circularly instead.
2. **Loudness-normalise** the dry and the wet, each on its own, to -18 LUFS
   (:func:`vocalfx.io.loudness_normalize`). The fitted preset therefore expects a dry input at
   -18 LUFS and renders at about -18 LUFS.
3. **Chunk** both into windows of ``chunk_seconds`` (12 s) that advance by
   ``chunk_seconds - warmup_seconds`` (7 s). The first ``warmup_seconds`` (5 s) of every window
   are rendered but not scored, so that reverb and delay tails from before a window are present
   in its scored part, as in the wet. Unlike DiffVox (which drops the first 5 s of the file and
   the remainder that does not fill a window) the start is padded with ``warmup_seconds`` of
   silence and one last window ends at the final sample, so every sample is scored. The padding
   renders as silence; it lets the first window start as a plug-in that has been running on
   silence (a cold start differs only in the compressor's state over the first ~0.1 s). A pair
   no longer than one window is one chunk, unpadded.
   Windows whose scored part of the wet peaks below -60 dBFS are dropped (DiffVox's rule).
4. **Optimise** the raw vector with Adam on DiffVox's loss (:func:`pair_loss`)::

       1.0 MSS(L/R) + 0.5 MSS(mid/side) + 0.5 MLDR(L/R) + 0.25 MLDR(mid/side)

   keeping the parameters of the lowest loss seen. Each step scores a random subset of
   ``batch_size`` chunks (all of them when there are no more), seeded by ``seed``.

Departures from DiffVox's settings, measured in ``docs/guide/presets.md`` (DiffVox ran 2000 full-batch
steps on a GPU; on two CPU cores a few minutes allow about a hundred steps):

* **Learning rate** 0.1, cosine-decayed to a tenth of that by the last step (DiffVox: constant
  0.01, which in a hundred steps moves a dB or Hz parameter by at most about one unit).
* **One chunk per step** (``batch_size=1``, DiffVox: 35, i.e. all chunks of most songs): at about
  equal CPU time, 100 one-chunk steps on a 30 s pair reached a loss of 0.75 where 20 all-chunk
  steps reached 1.63. Steps that score different chunks are compared by their loss relative to the
  initial parameters' loss on the same chunks, so "lowest loss" is not decided by which chunk a
  step drew; the returned parameters are then scored on all chunks, and the initial ones are
  returned instead if they score better.

Numerical guard (the loop shared with matching, :mod:`vocalfx.matching.optimize`): a step whose
loss or gradient is not finite is not applied; the parameters go back to the last ones that gave
a finite loss and gradient, Adam restarts there at half the learning rate, and the event is
recorded in :attr:`FitStats.recoveries`. After ``max_recoveries`` consecutive failures (or if
the initial parameters already fail) :class:`FitError` is raised. Parameters with NaN are never
returned.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .. import defaults
from .. import params as P
from ..chunks import FIT_CHUNK_SECONDS, FIT_WARMUP_SECONDS, SILENT_PEAK_DBFS, TARGET_LUFS, chunk_pair
from ..errors import FitError
from ..preset import Preset
from .config import check_adam
from .objectives import LOSS_WEIGHTS, pair_loss
from .optimize import Evaluation, run_adam, timing_lines
from .start import start_vector

__all__ = [
    "fit_pair",
    "FitResult",
    "FitStats",
    "FitError",
    "find_lag",
    "align_pair",
    "DEFAULT_STEPS",
    "DEFAULT_LR",
]

#: Default number of Adam steps and initial learning rate of :func:`fit_pair`.
DEFAULT_STEPS = defaults.FIT_STEPS
DEFAULT_LR = defaults.FIT_LR


@dataclass
class FitStats:
    """What :func:`fit_pair` did, in numbers.

    Attributes:
        loss: total loss of the returned preset, evaluated on all chunks.
        terms: the unweighted terms of ``loss`` (keys of :data:`LOSS_WEIGHTS`).
        initial_loss: total loss of the initial parameters on all chunks.
        initial_terms: its unweighted terms.
        lag_samples: samples by which the wet lags the dry (negative: the wet leads); the wet was
            shifted earlier by this much before fitting.
        dry_gain_db, wet_gain_db: gains (dB) that brought the dry and the wet to -18 LUFS.
        seconds_fitted: duration of the aligned pair (s).
        n_chunks: chunks used (after dropping silent ones); ``n_chunks_dropped``: dropped.
        chunk_seconds, warmup_seconds: chunk layout (s); ``batch_size``: chunks per step.
        steps: optimiser steps attempted; ``best_step``: step whose parameters are returned
            (0 = the initial parameters).
        lr: initial learning rate; ``final_lr``: that of the last step (after the cosine decay
            and one halving per recovery).
        recoveries: one ``{"step", "reason", "lr"}`` entry per non-finite step that was undone.
        seconds: wall-clock time of the whole fit (s).
    """

    loss: float
    terms: Dict[str, float]
    initial_loss: float
    initial_terms: Dict[str, float]
    lag_samples: int
    dry_gain_db: float
    wet_gain_db: float
    seconds_fitted: float
    n_chunks: int
    n_chunks_dropped: int
    chunk_seconds: float
    warmup_seconds: float
    batch_size: int
    steps: int
    best_step: int
    lr: float
    final_lr: float
    recoveries: List[Dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)

    def summary(self, sample_rate: int = P.SAMPLE_RATE) -> str:
        """A few human-readable lines (what ``vocalfx fit-pair`` prints)."""
        terms = ", ".join(f"{k} {v:.4f}" for k, v in self.terms.items())
        init = ", ".join(f"{k} {v:.4f}" for k, v in self.initial_terms.items())
        lines = [
            f"final loss {self.loss:.4f} ({terms})",
            f"initial loss {self.initial_loss:.4f} ({init})",
            f"alignment lag {self.lag_samples} samples "
            f"({1000.0 * self.lag_samples / sample_rate:+.2f} ms, wet behind dry); "
            f"loudness gains: dry {self.dry_gain_db:+.2f} dB, wet {self.wet_gain_db:+.2f} dB to {TARGET_LUFS:g} LUFS",
            f"{self.seconds_fitted:.1f} s fitted as {self.n_chunks} chunk(s) of {self.chunk_seconds:.1f} s "
            f"(warm-up {self.warmup_seconds:g} s, {self.batch_size} per step"
            + (f", {self.n_chunks_dropped} silent dropped" if self.n_chunks_dropped else "")
            + f"); {self.steps} steps, best at step {self.best_step}",
        ]
        return "\n".join(lines + timing_lines(self.seconds, self.recoveries, self.final_lr))


@dataclass
class FitResult:
    """Result of :func:`fit_pair`.

    Attributes:
        preset: the fitted preset (lowest loss seen); ``preset.extra["fit"]`` holds the stats.
        history: per attempted step, ``{"step", "loss", <terms>}`` on that step's chunks
            (``loss`` is NaN for a step that was undone).
        stats: a :class:`FitStats`.
    """

    preset: Preset
    history: List[Dict[str, float]]
    stats: FitStats


# ----------------------------------------------------------------------------------------------
# Alignment and chunking


def _check_ct(x: torch.Tensor, name: str, channels: int) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 2:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise FitError(f"{name}: expected (channels, time), got shape {shape}")
    if not x.is_floating_point():
        raise FitError(f"{name}: expected floating-point audio, got dtype {x.dtype}")
    if x.shape[0] != channels:
        what = "mono (1 channel)" if channels == 1 else "stereo (2 channels)"
        raise FitError(f"{name}: expected {what} audio, got {x.shape[0]} channels (shape {tuple(x.shape)})")
    if not torch.isfinite(x).all():
        raise FitError(f"{name}: contains NaN or Inf samples")


def find_lag(dry: torch.Tensor, wet: torch.Tensor, *, max_lag: Optional[int] = None, weighting: str = "phat") -> int:
    """Samples by which ``wet`` lags ``dry``: the peak of their (generalised) cross-correlation.

    With ``d`` the mean of the dry's channels, ``w`` the mean of the wet's, and ``D``, ``W`` their
    zero-padded FFTs (float64), the correlation is ``c = irfft(weight * conj(D) W)``, so that
    ``c[k] = sum_n d[n] w[n + k]`` for ``weighting="none"``, over every lag ``k`` in
    ``-(len(d) - 1) .. len(w) - 1``. The lag is the ``k`` of the largest ``c[k]`` (not ``|c|``:
    a polarity flip is not a match).

    ``weighting="phat"`` (default) is GCC-PHAT (Knapp & Carter, 1976): the cross-spectrum is
    divided by its magnitude (plus 1e-3 of its mean, so empty bins stay finite), which keeps
    only phase and makes the peak sharp. Plain cross-correlation (``"none"``, DiffVox's
    ``find_time_offset``) peaks at the wrong multiple of the pitch period once the wet is
    equalised: on 2 s of a sung vocal rendered through each of the 70 MedleyDB presets it found
    the true lag (0) for 2 of them, GCC-PHAT for 45 (69 within 2 samples); on 6 s, 6 against
    65 (``scripts/measure_fit_pair.py --lag-study`` at commit 5d849a6).

    Args:
        dry: ``(channels, time)`` audio.
        wet: ``(channels, time)`` audio at the same sample rate.
        max_lag: only consider ``|k| <= max_lag`` samples (default: every lag).
        weighting: ``"phat"`` or ``"none"``.

    Returns:
        The lag in samples; positive when the wet is later than the dry.

    Example:
        >>> d = torch.randn(1, 1000)
        >>> find_lag(d, torch.nn.functional.pad(d, (30, 0)).repeat(2, 1))
        30
    """
    for name, x in (("dry", dry), ("wet", wet)):
        if not isinstance(x, torch.Tensor) or x.dim() != 2:
            raise ValueError(f"{name}: expected (channels, time), got shape {tuple(getattr(x, 'shape', ()))}")
    if weighting not in ("phat", "none"):
        raise ValueError(f"weighting must be 'phat' or 'none', got {weighting!r}")
    d = dry.detach().to(torch.float64).mean(0)
    w = wet.detach().to(torch.float64).mean(0)
    n, m = d.shape[-1], w.shape[-1]
    size = n + m - 1
    nfft = 1 << (size - 1).bit_length()
    cross = torch.fft.rfft(d, nfft).conj() * torch.fft.rfft(w, nfft)
    if weighting == "phat":
        mag = cross.abs()
        cross = cross / (mag + 1e-3 * mag.mean())
    corr = torch.fft.irfft(cross, nfft)
    # corr[k] for k >= 0 is lag k; corr[nfft - k] is lag -k.
    lags = torch.cat([torch.arange(0, m), torch.arange(-(n - 1), 0)])
    vals = torch.cat([corr[:m], corr[nfft - (n - 1) :]]) if n > 1 else corr[:m]
    if max_lag is not None:
        keep = lags.abs() <= int(max_lag)
        lags, vals = lags[keep], vals[keep]
    return int(lags[int(torch.argmax(vals))])


def align_pair(dry: torch.Tensor, wet: torch.Tensor, lag: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Shift ``wet`` earlier by ``lag`` samples and trim both to the samples they share.

    Returns ``dry[:, a:a + L]`` and ``wet[:, a + lag:a + lag + L]`` with ``a = max(0, -lag)`` and
    ``L`` the longest length both have; nothing is padded or wrapped around.
    """
    start_d = max(0, -lag)
    start_w = start_d + lag
    length = min(dry.shape[-1] - start_d, wet.shape[-1] - start_w)
    if length <= 0:
        raise ValueError(f"after aligning by {lag} samples the dry and wet share no samples")
    return dry[:, start_d : start_d + length], wet[:, start_w : start_w + length]


# ----------------------------------------------------------------------------------------------
# Fitting


def _floats(terms: Dict[str, torch.Tensor]) -> Dict[str, float]:
    return {k: float(v.detach()) for k, v in terms.items()}


def fit_pair(
    dry: torch.Tensor,
    wet: torch.Tensor,
    sample_rate: int = P.SAMPLE_RATE,
    *,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    lr_final_ratio: float = 0.1,
    chunk_seconds: float = FIT_CHUNK_SECONDS,
    warmup_seconds: float = FIT_WARMUP_SECONDS,
    batch_size: Optional[int] = 1,
    init: Union[Preset, np.ndarray, torch.Tensor, None] = None,
    max_lag_seconds: Optional[float] = None,
    max_recoveries: int = 8,
    seed: int = 0,
    progress: bool = True,
    name: str = "",
) -> FitResult:
    """Fit the vocal chain's 130 raw values so that its render of ``dry`` matches ``wet``.

    The procedure (alignment, -18 LUFS normalisation, chunking, Adam on DiffVox's loss, and the
    non-finite-step guard) is described in the :mod:`vocalfx.matching.fit` docstring.

    Args:
        dry: dry vocal, mono ``(1, time)``, at ``sample_rate`` (e.g. from
            ``vocalfx.io.load_audio(path)``).
        wet: the processed vocal, stereo ``(2, time)``, same rate (any length; both are trimmed
            to their aligned overlap).
        sample_rate: Hz. Default 44100 (presets are defined at 44.1 kHz).
        steps: Adam steps. Default 100 (about 3 minutes for a 30 s pair on two idle CPU cores,
            ``docs/guide/presets.md``; DiffVox ran 2000 on a GPU).
        lr: initial Adam learning rate on the raw values. Default 0.1 (DiffVox: 0.01, see the
            module docstring).
        lr_final_ratio: the learning rate follows a cosine from ``lr`` at the first step to
            ``lr * lr_final_ratio`` at the last; 1.0 keeps it constant. Default 0.1.
        chunk_seconds: chunk length (s). Default 12 (DiffVox).
        warmup_seconds: rendered-but-unscored start of each chunk (s). Default 5 (DiffVox's
            overlap).
        batch_size: chunks scored per step, drawn at random (seeded by ``seed``) when there
            are more. Default 1; ``None``: all of them every step (DiffVox: up to 35).
        init: starting parameters: a :class:`~vocalfx.preset.Preset` or a raw ``(130,)`` vector;
            default ``None``: the mean of the shipped prior (``GaussianPrior.default()``).
        max_lag_seconds: only search alignment lags up to this (s); default ``None``: all lags.
        max_recoveries: consecutive non-finite steps tolerated before :class:`FitError`. Default 8.
        seed: seeds the chunk draws (only used when ``batch_size`` is smaller than the number of
            chunks). Default 0.
        progress: show a tqdm progress bar (on stderr) with the current and best loss.
        name: name of the returned preset.

    Returns:
        A :class:`FitResult` ``(preset, history, stats)``.

    Raises:
        FitError: wrong shapes, non-finite or silent audio, a pair too short to score (under
            0.4 s, the loudness meter's block), bad settings, initial parameters that give a
            non-finite loss, or ``max_recoveries`` consecutive non-finite steps. It is a
            :class:`~vocalfx.errors.VocalfxError` and a ``ValueError``.

    Example:
        >>> from vocalfx.io import load_audio
        >>> dry = load_audio("dry.wav")                      # doctest: +SKIP
        >>> wet = load_audio("wet.wav", mono=False)          # doctest: +SKIP
        >>> res = fit_pair(dry, wet, steps=100)              # doctest: +SKIP
        >>> res.preset.to_json("fitted.json"); print(res.stats.summary())  # doctest: +SKIP
    """
    t_start = time.perf_counter()
    _check_ct(dry, "dry", 1)
    _check_ct(wet, "wet", 2)
    steps, lr = check_adam(steps, lr, lr_final_ratio, FitError)
    if not (chunk_seconds > 0 and 0 <= warmup_seconds < chunk_seconds):
        raise FitError(
            f"need chunk_seconds > 0 and 0 <= warmup_seconds < chunk_seconds, got {chunk_seconds} and {warmup_seconds}"
        )
    if batch_size is not None and (int(batch_size) != batch_size or batch_size < 1):
        raise FitError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    prior = None
    if init is None:
        from ..prior import GaussianPrior

        prior = GaussianPrior.default()
    try:
        raw0, _ = start_vector(init, prior)
    except ValueError as e:
        raise FitError(str(e)) from None
    pair = _prepare_pair(dry, wet, sample_rate, chunk_seconds, warmup_seconds, max_lag_seconds)
    bs = pair.n_chunks if batch_size is None else min(int(batch_size), pair.n_chunks)
    fitted = _fit_chunks(pair, raw0, sample_rate, steps, lr, lr_final_ratio, bs, max_recoveries, seed, progress)
    stats = FitStats(
        loss=fitted.loss, terms=fitted.terms, initial_loss=fitted.initial_loss, initial_terms=fitted.initial_terms,
        lag_samples=pair.lag, dry_gain_db=pair.dry_gain_db, wet_gain_db=pair.wet_gain_db,
        seconds_fitted=pair.seconds, n_chunks=pair.n_chunks, n_chunks_dropped=pair.n_dropped,
        chunk_seconds=pair.x.shape[-1] / sample_rate, warmup_seconds=pair.warmup / sample_rate if pair.start else 0.0,
        batch_size=bs, steps=steps, best_step=fitted.best_step, lr=lr, final_lr=fitted.final_lr,
        recoveries=fitted.recoveries, seconds=time.perf_counter() - t_start,
    )  # fmt: skip
    record = {k: v for k, v in stats.to_dict().items() if k != "recoveries"}
    record.update(recoveries=len(stats.recoveries))
    preset = Preset(
        fitted.vector,
        name=name or "fit-pair",
        source=f"vocalfx fit-pair: dry at {TARGET_LUFS:g} LUFS in, wet at {TARGET_LUFS:g} LUFS out",
        extra={"fit": {"input_lufs": TARGET_LUFS, **record}},
    )
    return FitResult(preset=preset, history=fitted.history, stats=stats)


@dataclass
class _Pair:
    """An aligned pair at -18 LUFS cut into overlapping chunks, silent ones dropped."""

    x: torch.Tensor  # dry chunks (n, 1, chunk)
    y: torch.Tensor  # wet chunks (n, 2, chunk)
    start: int  # first scored sample of a chunk
    warmup: int
    lag: int
    dry_gain_db: float
    wet_gain_db: float
    seconds: float
    n_dropped: int

    @property
    def n_chunks(self) -> int:
        return self.x.shape[0]


def _prepare_pair(dry, wet, sample_rate, chunk_seconds, warmup_seconds, max_lag_seconds) -> _Pair:
    """Steps 1-3 of the module docstring: alignment, loudness, chunks."""
    from ..io import loudness_normalize

    max_lag = None if max_lag_seconds is None else int(round(max_lag_seconds * sample_rate))
    lag = find_lag(dry, wet, max_lag=max_lag)
    try:
        d, w = align_pair(dry, wet, lag)
        # each signal to -18 LUFS on its own
        d, dry_gain_db = loudness_normalize(d.to(torch.float32), sample_rate, TARGET_LUFS)
        w, wet_gain_db = loudness_normalize(w.to(torch.float32), sample_rate, TARGET_LUFS)
    except ValueError as e:
        raise FitError(str(e)) from None
    chunk = int(round(chunk_seconds * sample_rate))
    warmup = int(round(warmup_seconds * sample_rate))
    x, y, start = chunk_pair(d, w, chunk, warmup)
    peak_db = 20 * torch.log10(y[..., start:].abs().amax(dim=(1, 2)).clamp_min(1e-30))
    keep = peak_db > SILENT_PEAK_DBFS
    if not bool(keep.any()):
        raise FitError(f"the wet is silent (every chunk peaks below {SILENT_PEAK_DBFS:g} dBFS after normalisation)")
    return _Pair(
        x[keep].contiguous(), y[keep].contiguous(), start, warmup, lag, dry_gain_db, wet_gain_db,
        d.shape[-1] / sample_rate, int((~keep).sum()),
    )  # fmt: skip


@dataclass
class _Fitted:
    vector: np.ndarray
    loss: float
    terms: Dict[str, float]
    initial_loss: float
    initial_terms: Dict[str, float]
    best_step: int
    final_lr: float
    history: List[Dict[str, float]]
    recoveries: List[Dict[str, object]]


def _fit_chunks(
    pair: _Pair, raw0, sample_rate, steps, lr, lr_final_ratio, bs, max_recoveries, seed, progress
) -> _Fitted:
    """Step 4: Adam on the pair's chunks, ``bs`` drawn per step from the fit's own generator."""
    from ..fx import VocalChain

    x, y, start, n_chunks = pair.x, pair.y, pair.start, pair.n_chunks
    chain = VocalChain(sample_rate)
    chain.requires_grad_(False)

    def render_all(v: torch.Tensor) -> torch.Tensor:
        """Scored part of the render of every chunk, ``bs`` chunks at a time, without gradients."""
        with torch.no_grad():
            return torch.cat([chain(x[i : i + bs], params=v.unsqueeze(0))[..., start:] for i in range(0, n_chunks, bs)])

    raw_init = torch.tensor(raw0, dtype=torch.float32)
    pred = render_all(raw_init)
    with torch.no_grad():
        init_loss, init_terms = pair_loss(pred, y[..., start:], sample_rate)
        # With minibatches a step's loss depends on which chunks it drew; steps are compared by
        # their loss relative to the initial parameters' loss on the same chunks.
        if bs < n_chunks:
            chunk_init = torch.stack(
                [pair_loss(pred[c : c + 1], y[c : c + 1, :, start:], sample_rate)[0] for c in range(n_chunks)]
            )
    del pred
    if not torch.isfinite(init_loss):
        raise FitError(f"the initial parameters give a non-finite loss ({float(init_loss)}); choose another init")
    gen = torch.Generator().manual_seed(int(seed))

    def objective(v: torch.Tensor, step: int) -> Evaluation:
        if bs == n_chunks:
            loss, terms = pair_loss(chain(x, params=v.unsqueeze(0))[..., start:], y[..., start:], sample_rate)
            return Evaluation(loss, terms)
        idx = torch.randperm(n_chunks, generator=gen)[:bs]
        loss, terms = pair_loss(chain(x[idx], params=v.unsqueeze(0))[..., start:], y[idx][..., start:], sample_rate)
        return Evaluation(loss, terms, baseline=float(chunk_init[idx].mean()))

    initial = {"loss": float(init_loss), **_floats(init_terms)}
    opt = run_adam(
        objective, raw_init, steps=steps, lr=lr, lr_final_ratio=lr_final_ratio, initial=initial,
        initial_score=initial["loss"] if bs == n_chunks else 1.0, max_recoveries=max_recoveries, error=FitError,
        progress=progress, desc="fit-pair", best_label="best" if bs == n_chunks else "best_vs_init",
    )  # fmt: skip
    best_raw, best_step = opt.vector, opt.best_step
    # Report the returned parameters' loss on all chunks. With every chunk in each step that is
    # the best step's own loss; with minibatches it is re-evaluated, and the initial parameters
    # are returned if the minibatch-best parameters are worse on the whole pair.
    final_loss, final_terms = init_loss, _floats(init_terms)
    if best_step > 0:
        if bs == n_chunks:
            final_loss, final_terms = opt.best["loss"], {k: opt.best[k] for k in LOSS_WEIGHTS}
        else:
            with torch.no_grad():
                loss_all, terms_all = pair_loss(render_all(best_raw), y[..., start:], sample_rate)
            if torch.isfinite(loss_all) and float(loss_all) <= float(init_loss):
                final_loss, final_terms = loss_all, _floats(terms_all)
            else:
                best_raw, best_step = raw_init, 0
    else:
        best_raw = raw_init
    return _Fitted(
        best_raw.double().numpy(), float(final_loss), dict(final_terms), float(init_loss), _floats(init_terms),
        best_step, opt.final_lr, opt.history, opt.recoveries,
    )  # fmt: skip
