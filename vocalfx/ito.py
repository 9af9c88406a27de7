"""Match a dry vocal to a reference: MAP inference-time optimisation (ITO) of the vocal chain.

:func:`match` finds the 130 raw values of the chain whose render of the dry vocal sounds, to an
audio encoder, like the reference vocal, regularised by a Gaussian prior over presets. It follows
DiffVox's ``ito.py`` (Yu et al., WASPAA 2025, after Steinmetz et al.'s ST-ITO):

1. **Loudness**: the dry and the reference are each normalised to -18 LUFS
   (:func:`vocalfx.io.loudness_normalize`), the level the prior's presets were fitted at.
2. **Chunks** (:func:`active_chunks`): both are cut into ``chunk_seconds`` (11 s) chunks; chunks
   whose median 50 ms peak is below -60 dBFS (DiffVox's rule) are dropped. Where the signal does
   not end on a chunk boundary, one more chunk ending at the last sample is added, so no audio is
   ignored (DiffVox drops the remainder).
3. **Embeddings**: the reference chunks are embedded once; every step renders the dry chunks with
   the current parameters and embeds them. Both are scaled by the same factor (one over the
   reference chunks' peak) before embedding, as in DiffVox.
4. **Loss** (:func:`ito_nll`, the angular likelihood of ``SPEC.md``): with ``theta_ij`` the angle
   between predicted chunk ``i`` and reference chunk ``j`` (mid and side separately) and
   ``sigma^2 = mean theta^2``, ``-log p(y|theta) = log sigma_mid + log sigma_side + const``; the MAP
   loss adds ``-alpha * log p(theta)`` under the prior (:class:`vocalfx.prior.GaussianPrior`,
   full normalised log-density, as DiffVox). ``alpha = 0`` is maximum likelihood.
5. **Adam** on the raw vector from the prior mean; the parameters of the lowest loss seen are kept.
   Defaults (:data:`DEFAULT_STEPS`, :data:`DEFAULT_LR`, cosine decay) come from the convergence
   measurement in ``docs/match.md``; DiffVox ran 1000 steps at a learning rate of 0.01 on a GPU.
   ``space="whitened"`` steps in the prior's whitened coordinates instead (measured there too).
6. **Render** the whole dry (at -18 LUFS) with the result. The output is not normalised: its level
   is what the preset makes of a -18 LUFS input (reported in :class:`MatchReport`).

Numerical guard (as :func:`vocalfx.fit.fit_pair`): a step with a non-finite loss or gradient is
undone, the learning rate halved, and the event recorded; too many in a row raise
:class:`MatchError`. NaN parameters are never returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from . import params as P
from .errors import VocalfxError
from .preset import Preset

__all__ = [
    "match",
    "MatchResult",
    "MatchReport",
    "MatchError",
    "active_chunks",
    "ito_nll",
    "DEFAULT_STEPS",
    "DEFAULT_LR",
    "CHUNK_SECONDS",
    "TARGET_LUFS",
]

#: Loudness both signals are normalised to (LUFS), as in DiffVox.
TARGET_LUFS = -18.0
#: Chunk length (s), DiffVox's.
CHUNK_SECONDS = 11.0
#: Default Adam steps and initial learning rate (measured in ``docs/match.md``).
DEFAULT_STEPS = 100
DEFAULT_LR = 0.05
#: Where Adam steps (see :func:`match`'s ``space``).
SPACES = ("raw", "whitened")
#: A chunk is active when the median over time of its 50 ms running peak exceeds this (-60 dBFS).
ACTIVE_PEAK = 1e-3
_ACTIVE_WINDOW_S = 0.05
#: Highest cosine fed to ``arccos`` (its derivative is infinite at 1).
_COS_MAX = 1.0 - 1e-6

AudioLike = Union[torch.Tensor, np.ndarray, str, Path]


class MatchError(VocalfxError):
    """Matching could not run on these inputs or could not produce finite parameters."""


@dataclass
class MatchReport:
    """What :func:`match` did, in numbers.

    Attributes:
        encoder: encoder name; ``alpha``: prior weight; ``steps``, ``lr``: optimiser settings;
            ``best_step``: step whose parameters are returned (0 = the initial ones).
        loss, nll, log_prior: the MAP loss, ``-log p(y|theta)`` and ``log p(theta)`` of the
            returned parameters; ``initial_*``: the same at the start.
        sigma_mid_deg, sigma_side_deg: RMS angle (degrees) between predicted and reference
            embeddings for the returned parameters; ``initial_sigma_*``: at the start.
        n_ref_chunks, n_dry_chunks: chunks used; ``n_ref_chunks_dropped``, ``n_dry_chunks_dropped``:
            inactive chunks dropped.
        chunk_seconds: chunk length (s).
        dry_gain_db, reference_gain_db: gains that brought each to -18 LUFS.
        output_peak_dbfs, output_lufs: level of the returned audio.
        recoveries: non-finite steps undone (``{"step", "reason", "lr"}``).
        seconds: wall-clock time (s); ``init``: where the optimiser started; ``space``: where
            Adam stepped (``match``'s ``space``).
    """

    encoder: str
    alpha: float
    steps: int
    lr: float
    best_step: int
    loss: float
    nll: float
    log_prior: float
    sigma_mid_deg: float
    sigma_side_deg: float
    initial_loss: float
    initial_nll: float
    initial_log_prior: float
    initial_sigma_mid_deg: float
    initial_sigma_side_deg: float
    n_ref_chunks: int
    n_ref_chunks_dropped: int
    n_dry_chunks: int
    n_dry_chunks_dropped: int
    chunk_seconds: float
    dry_gain_db: float
    reference_gain_db: float
    output_peak_dbfs: float = float("nan")
    output_lufs: float = float("nan")
    init: str = "prior mean"
    space: str = "raw"
    recoveries: List[Dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines (what ``vocalfx match`` prints)."""
        lines = [
            f"encoder {self.encoder}, alpha {self.alpha:g}, {self.steps} steps (lr {self.lr:g}"
            + ("" if self.space == "raw" else f", {self.space} space") + f"), best at step {self.best_step}",
            f"loss {self.initial_loss:.4f} -> {self.loss:.4f}  (-log p(y|x) {self.initial_nll:.4f} -> {self.nll:.4f}, "
            f"log p(x) {self.initial_log_prior:.1f} -> {self.log_prior:.1f})",
            f"RMS embedding angle to the reference: mid {self.initial_sigma_mid_deg:.2f} -> {self.sigma_mid_deg:.2f} deg, "
            f"side {self.initial_sigma_side_deg:.2f} -> {self.sigma_side_deg:.2f} deg",
            f"chunks of {self.chunk_seconds:g} s: reference {self.n_ref_chunks}"
            + (f" ({self.n_ref_chunks_dropped} silent dropped)" if self.n_ref_chunks_dropped else "")
            + f", dry {self.n_dry_chunks}"
            + (f" ({self.n_dry_chunks_dropped} silent dropped)" if self.n_dry_chunks_dropped else ""),
            f"loudness gains to {TARGET_LUFS:g} LUFS: dry {self.dry_gain_db:+.2f} dB, reference {self.reference_gain_db:+.2f} dB; "
            f"output {self.output_lufs:.1f} LUFS, peak {self.output_peak_dbfs:+.1f} dBFS",
            f"time {self.seconds:.1f} s",
        ]
        if self.recoveries:
            lines.append(f"{len(self.recoveries)} non-finite step(s) undone, each halving the learning rate")
        return "\n".join(lines)


@dataclass
class MatchResult:
    """Result of :func:`match`.

    Attributes:
        preset: the matched preset (expects a dry input at -18 LUFS); ``preset.extra["match"]``
            holds the report.
        audio: the whole dry vocal (at -18 LUFS) rendered with ``preset``, ``(2, time)`` float32
            at ``sample_rate``.
        history: one dict per attempted step: ``step``, ``loss``, ``nll``, ``log_prior``,
            ``sigma_mid_deg``, ``sigma_side_deg``, ``lr`` (NaN losses for undone steps).
        report: a :class:`MatchReport`.
        sample_rate: rate of ``audio`` (Hz).
    """

    preset: Preset
    audio: torch.Tensor
    history: List[Dict[str, float]]
    report: MatchReport
    sample_rate: int


# ----------------------------------------------------------------------------------------------
# Inputs


def _describe(source: AudioLike, name: str) -> str:
    return f"{name} ({source})" if isinstance(source, (str, Path)) else name


def _as_audio(source: AudioLike, name: str, sample_rate: int, mono: bool) -> Tuple[torch.Tensor, str]:
    """``(channels, time)`` float32 at ``sample_rate`` from a tensor, array or file path."""
    from .io import load_audio

    if isinstance(source, (str, Path)):
        x = load_audio(source, sample_rate=sample_rate, mono=False)
        label = str(source)
        if mono and x.shape[0] > 1:
            # A "stereo" dry whose channels are the same signal is a mono recording: accept it.
            spread = float((x - x[:1]).abs().amax())
            if spread > 1e-4 * float(x.abs().amax()):
                raise MatchError(
                    f"{label}: the dry vocal has {x.shape[0]} different channels; the chain takes a mono vocal. "
                    "Pass one channel or a downmix (e.g. `sox in.wav -c 1 out.wav`)."
                )
            x = x[:1]
        return x, label
    x = torch.as_tensor(source)
    label = name
    if x.dim() != 2:
        raise MatchError(f"{name}: expected (channels, time) audio, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise MatchError(f"{name}: expected floating-point audio, got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise MatchError(f"{name}: contains NaN or Inf samples")
    if mono and x.shape[0] != 1:
        raise MatchError(
            f"{name}: the dry vocal must be mono (1, time), got {x.shape[0]} channels; "
            "downmix it first, e.g. x.mean(0, keepdim=True)"
        )
    if not mono and x.shape[0] not in (1, 2):
        raise MatchError(f"{name}: the reference must be mono or stereo, got {x.shape[0]} channels")
    return x.detach().to(torch.float32).cpu(), label


def _running_peak(x: torch.Tensor, window: int) -> torch.Tensor:
    """Running maximum of ``|mean over channels|`` over ``window`` samples, ``(N, C, L) -> (N, L')``."""
    m = x.mean(1).abs().unsqueeze(1)
    return F.max_pool1d(m, window, stride=max(1, window // 4)).squeeze(1)


def active_chunks(
    audio: torch.Tensor, chunk: int, sample_rate: int, *, label: str = "audio"
) -> Tuple[torch.Tensor, int]:
    """Cut ``(channels, time)`` audio into ``chunk``-sample chunks and keep the active ones.

    Chunks start every ``chunk`` samples; if ``time`` is not a multiple of ``chunk``, one more
    chunk ends at the last sample (overlapping its neighbour). A chunk is active when the median
    over time of the 50 ms running peak of its channel mean exceeds :data:`ACTIVE_PEAK`
    (-60 dBFS), DiffVox's rule.

    Returns:
        ``(chunks, dropped)``: ``(N, channels, chunk)`` and the number of inactive chunks.

    Raises:
        MatchError: the audio is shorter than one chunk, or no chunk is active.
    """
    T = audio.shape[-1]
    if T < chunk:
        raise MatchError(
            f"{label}: {T / sample_rate:.2f} s long; matching needs at least one {chunk / sample_rate:g} s chunk "
            "(use a longer excerpt or a shorter chunk_seconds)"
        )
    starts = list(range(0, T - chunk + 1, chunk))
    if starts[-1] + chunk < T:
        starts.append(T - chunk)
    chunks = torch.stack([audio[:, s : s + chunk] for s in starts])
    window = max(1, int(round(_ACTIVE_WINDOW_S * sample_rate)))
    level = _running_peak(chunks, window).median(dim=-1).values
    keep = level > ACTIVE_PEAK
    if not bool(keep.any()):
        raise MatchError(
            f"{label}: no active {chunk / sample_rate:g} s chunk (every chunk is below -60 dBFS for most of its length "
            f"after normalising to {TARGET_LUFS:g} LUFS); is it silent or mostly silence?"
        )
    return chunks[keep].contiguous(), int((~keep).sum())


# ----------------------------------------------------------------------------------------------
# Objective


def ito_nll(
    pred: Dict[str, torch.Tensor], ref: Dict[str, torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DiffVox's angular negative log-likelihood of reference embeddings given predicted ones.

    For each of mid and side, ``theta_ij = arccos(p_i . r_j)`` over every predicted chunk ``i``
    and reference chunk ``j``, ``sigma = sqrt(mean theta^2)``, and the mean Gaussian
    log-density of the angles is ``-1/2 - log(2 pi)/2 - log sigma``. The cosine is clamped to
    ``1 - 1e-6`` so that identical embeddings give a finite gradient.

    Args:
        pred, ref: ``{"mid": (N, D), "side": (N, D)}`` L2-normalised embeddings.

    Returns:
        ``(nll, sigma_mid, sigma_side)``: ``-(mean log-density mid + side)`` (scalar) and the
        two RMS angles (radians).
    """
    sigmas = []
    nll = 0.0
    for key in ("mid", "side"):
        cos = (pred[key] @ ref[key].T).clamp(-_COS_MAX, _COS_MAX)
        theta = torch.arccos(cos)
        sigma = theta.square().mean().sqrt()
        nll = nll + 0.5 + 0.5 * math.log(2.0 * math.pi) + torch.log(sigma)
        sigmas.append(sigma)
    return nll, sigmas[0], sigmas[1]


def _sqrt_cov(prior) -> torch.Tensor:
    """Symmetric square root of the prior's covariance, ``(130, 130)`` float64."""
    w, V = torch.linalg.eigh(prior.cov.double())
    if not bool(w.min() > 0):
        raise MatchError("space='whitened' needs a positive definite prior covariance")
    return (V * w.sqrt()) @ V.T


def _cosine_lr(lr: float, final_ratio: float, step: int, steps: int) -> float:
    if steps <= 1:
        return lr
    c = 0.5 * (1.0 + math.cos(math.pi * step / (steps - 1)))
    return lr * (final_ratio + (1.0 - final_ratio) * c)


def _init_vector(init, prior) -> Tuple[np.ndarray, str]:
    if init is None or (isinstance(init, str) and init == "mean"):
        return prior.mean.double().numpy().copy(), "prior mean"
    if isinstance(init, Preset):
        return init.raw.copy(), f"preset {init.name or '(unnamed)'}"
    v = np.asarray(init.detach().cpu() if isinstance(init, torch.Tensor) else init, dtype=np.float64).reshape(-1)
    if v.shape != (P.NUM_PARAMS,):
        raise MatchError(f"init: expected 'mean', a Preset or {P.NUM_PARAMS} raw values, got shape {np.shape(init)}")
    if not np.isfinite(v).all():
        raise MatchError("init: contains NaN or Inf")
    return v, "given vector"


# ----------------------------------------------------------------------------------------------
# Matching


def match(
    dry: AudioLike,
    reference: AudioLike,
    sample_rate: int = P.SAMPLE_RATE,
    *,
    encoder: str = "mfcc",
    alpha: float = 1.0,
    steps: Optional[int] = None,
    seed: int = 0,
    lr: Optional[float] = None,
    lr_final_ratio: float = 0.1,
    space: str = "raw",
    prior=None,
    init=None,
    chunk_seconds: float = CHUNK_SECONDS,
    reference_sample_rate: Optional[int] = None,
    normalize_reference: bool = True,
    encoder_options: Optional[dict] = None,
    max_recoveries: int = 8,
    progress: bool = True,
    callback=None,
    name: str = "",
) -> MatchResult:
    """Find the preset that makes ``dry`` sound like ``reference`` (MAP inference-time optimisation).

    The procedure is described in the :mod:`vocalfx.ito` docstring.

    Args:
        dry: the dry vocal: a mono ``(1, time)`` tensor or array at ``sample_rate``, or an audio
            file path (read and resampled to ``sample_rate``; a file with several identical
            channels counts as mono).
        reference: the reference vocal: ``(channels, time)`` (mono or stereo) at
            ``reference_sample_rate`` (default: ``sample_rate``), or a file path. At least one
            ``chunk_seconds`` long.
        sample_rate: rate (Hz) of ``dry`` and of the returned audio. The chain runs at 44.1 kHz;
            other rates are resampled in and out.
        encoder: ``"mfcc"`` (default), ``"mir"``, ``"afx-rep"`` or any registered encoder.
        alpha: prior weight; 0 gives maximum likelihood. Default 1.0.
        steps: Adam steps; default :data:`DEFAULT_STEPS`.
        seed: makes the run reproducible (it seeds torch for the run).
        lr: initial learning rate (default :data:`DEFAULT_LR`), cosine-decayed to
            ``lr * lr_final_ratio`` at the last step.
        space: where Adam takes its steps. ``"raw"`` (default, as DiffVox): on the raw vector
            itself, so every raw value moves by about ``lr`` per step whatever its spread in the
            prior. ``"whitened"``: on ``z`` with ``raw = init + C^(1/2) z`` (``C`` the prior's
            covariance, symmetric square root), so a step moves about ``lr`` prior standard
            deviations along each principal direction of the prior; ``lr`` is then in those units.
        prior: a :class:`~vocalfx.prior.GaussianPrior`; default the shipped prior
            (``GaussianPrior.default()``).
        init: starting point: ``None``/``"mean"`` (the prior mean), a :class:`Preset` or a raw
            vector.
        chunk_seconds: chunk length (s). Default 11 (DiffVox).
        reference_sample_rate: rate of a tensor ``reference`` if it differs from ``sample_rate``.
        normalize_reference: bring the reference to -18 LUFS (default), so the result renders at
            about -18 LUFS whatever the reference's level in its mix. ``False`` keeps the
            reference's level as given, so the preset also reproduces its loudness (used by the
            evaluation protocol, whose wet tracks are not renormalised).
        encoder_options: keyword arguments for the encoder (e.g. ``{"checkpoint": path}`` for
            AFx-Rep).
        max_recoveries: consecutive non-finite steps tolerated before :class:`MatchError`.
        progress: show a progress bar with the current loss (stderr).
        callback: called as ``callback(step, raw_vector)`` after every step (for measurements).
        name: name of the returned preset.

    Returns:
        A :class:`MatchResult` (``preset``, ``audio`` ``(2, time)``, ``history``, ``report``).

    Raises:
        MatchError: bad input (stereo dry, NaN, silent or too-short audio, unknown encoder,
            missing AFx-Rep checkpoint) or an optimisation that cannot stay finite.

    Example:
        >>> import vocalfx
        >>> res = vocalfx.match("dry.wav", "reference.wav", encoder="mfcc")  # doctest: +SKIP
        >>> res.preset.to_json("matched.json")                               # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from .embed import get_encoder
    from .fx import VocalChain
    from .io import AudioError, integrated_loudness, loudness_normalize, resample_audio

    t0 = time.perf_counter()
    if int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 384000:
        raise MatchError(f"sample_rate must be an integer between 8000 and 384000 Hz, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    ref_rate = sample_rate if reference_sample_rate is None else reference_sample_rate
    if int(ref_rate) != ref_rate or not 8000 <= ref_rate <= 384000:
        raise MatchError(f"reference_sample_rate must be an integer between 8000 and 384000 Hz, got {ref_rate!r}")
    ref_rate = int(ref_rate)
    steps = DEFAULT_STEPS if steps is None else steps
    if int(steps) != steps or steps < 0:
        raise MatchError(f"steps must be a non-negative integer, got {steps!r}")
    steps = int(steps)
    lr = DEFAULT_LR if lr is None else lr
    if not (math.isfinite(lr) and lr > 0):
        raise MatchError(f"lr must be a positive number, got {lr!r}")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise MatchError(f"alpha must be a finite number >= 0, got {alpha!r}")
    if not 0 < lr_final_ratio <= 1:
        raise MatchError(f"lr_final_ratio must lie in (0, 1], got {lr_final_ratio!r}")
    if not chunk_seconds > 0:
        raise MatchError(f"chunk_seconds must be positive, got {chunk_seconds!r}")
    if space not in SPACES:
        raise MatchError(f"space must be one of {', '.join(SPACES)}, got {space!r}")
    if prior is None:
        from .prior import GaussianPrior

        prior = GaussianPrior.default()
    if prior.dim != P.NUM_PARAMS:
        raise MatchError(f"the prior has {prior.dim} dimensions; the chain has {P.NUM_PARAMS}")
    raw0, init_label = _init_vector(init, prior)

    rate = P.SAMPLE_RATE
    try:
        d, dry_label = _as_audio(dry, "dry", sample_rate, mono=True)
        r, ref_label = _as_audio(reference, "reference", ref_rate, mono=False)
    except AudioError as e:
        raise MatchError(str(e)) from None
    d_in_len = d.shape[-1]
    if sample_rate != rate:
        d = resample_audio(d, sample_rate, rate)
    if ref_rate != rate:
        r = resample_audio(r, ref_rate, rate)
    if r.shape[0] == 1:
        r = r.expand(2, -1).contiguous()
    try:
        d, dry_gain_db = loudness_normalize(d, rate, TARGET_LUFS)
    except ValueError as e:
        raise MatchError(f"{dry_label}: {e}") from None
    try:
        if normalize_reference:
            r, ref_gain_db = loudness_normalize(r, rate, TARGET_LUFS)
        else:
            ref_lufs = integrated_loudness(r, rate)
            if not math.isfinite(ref_lufs):
                raise ValueError("silent (no 400 ms block above the -70 LUFS gate)")
            ref_gain_db = 0.0
    except ValueError as e:
        raise MatchError(f"{ref_label}: {e}") from None

    chunk = int(round(chunk_seconds * rate))
    ref_chunks, ref_dropped = active_chunks(r, chunk, rate, label=ref_label)
    if d.shape[-1] < chunk:
        dry_chunks, dry_dropped = d.unsqueeze(0), 0  # a short dry is one chunk of its own length
        if float(_running_peak(dry_chunks, int(_ACTIVE_WINDOW_S * rate)).median()) <= ACTIVE_PEAK:
            raise MatchError(f"{dry_label}: mostly silent (below -60 dBFS for most of its length)")
    else:
        dry_chunks, dry_dropped = active_chunks(d, chunk, rate, label=dry_label)

    try:
        enc = get_encoder(encoder, sample_rate=rate, **(encoder_options or {}))
    except VocalfxError:
        raise
    except (ValueError, TypeError) as e:
        raise MatchError(f"encoder {encoder!r}: {e}") from None
    enc.eval().requires_grad_(False)

    torch.manual_seed(int(seed))
    chain = VocalChain(rate)
    chain.requires_grad_(False)
    scale = 1.0 / float(ref_chunks.abs().amax())
    with torch.no_grad():
        ref_emb = enc(ref_chunks * scale)

    def objective(v: torch.Tensor):
        pred = chain(dry_chunks, params=v.unsqueeze(0)) * scale
        nll, s_mid, s_side = ito_nll(enc(pred), ref_emb)
        log_prior = prior.log_prob(v)
        loss = nll - alpha * log_prior if alpha > 0 else nll
        return loss, nll, log_prior, s_mid, s_side

    raw0_t = torch.tensor(raw0, dtype=torch.float32)
    with torch.no_grad():
        init_vals = [float(t) for t in objective(raw0_t)]
    if not all(math.isfinite(t) for t in init_vals):
        raise MatchError(f"the initial parameters ({init_label}) give a non-finite loss; choose another init")

    # Adam's variable: the raw vector itself, or z with raw = raw0 + C^(1/2) z.
    if space == "whitened":
        sqrt_cov = _sqrt_cov(prior).to(torch.float32)

        def to_raw(z: torch.Tensor) -> torch.Tensor:
            return raw0_t + sqrt_cov @ z

        var = torch.zeros(P.NUM_PARAMS, dtype=torch.float32, requires_grad=True)
    else:

        def to_raw(z: torch.Tensor) -> torch.Tensor:
            return z

        var = raw0_t.clone().requires_grad_(True)
    opt = torch.optim.Adam([var], lr=lr)
    last_good = var.detach().clone()
    best = (init_vals[0], raw0_t.clone(), 0, init_vals)
    history: List[Dict[str, float]] = []
    recoveries: List[Dict[str, object]] = []
    failures, lr_scale = 0, 1.0
    deg = 180.0 / math.pi
    with tqdm(total=steps, disable=not progress, desc=f"match ({encoder})", unit="step", leave=False) as bar:
        for step in range(steps):
            cur_lr = lr_scale * _cosine_lr(lr, lr_final_ratio, step, steps)
            for group in opt.param_groups:
                group["lr"] = cur_lr
            opt.zero_grad(set_to_none=True)
            raw = to_raw(var)
            loss, nll, log_prior, s_mid, s_side = objective(raw)
            reason = None
            if not torch.isfinite(loss):
                reason = "non-finite loss"
            else:
                loss.backward()
                if var.grad is None or not torch.isfinite(var.grad).all():
                    reason = "non-finite gradient"
            if reason is not None:
                failures += 1
                lr_scale /= 2.0
                recoveries.append({"step": step, "reason": reason, "lr": cur_lr / 2.0})
                history.append({"step": step, "loss": math.nan, "nll": math.nan, "log_prior": math.nan,
                                "sigma_mid_deg": math.nan, "sigma_side_deg": math.nan, "lr": cur_lr})
                if failures > max_recoveries:
                    raise MatchError(
                        f"step {step}: {reason} after {max_recoveries} consecutive recoveries; cannot continue "
                        "(try a smaller lr or a larger alpha)"
                    )
                with torch.no_grad():
                    var.copy_(last_good)
                opt = torch.optim.Adam([var], lr=cur_lr / 2.0)  # drop moment estimates poisoned by the bad step
                bar.update(1)
                continue
            failures = 0
            vals = [float(t.detach()) for t in (loss, nll, log_prior, s_mid, s_side)]
            last_good = var.detach().clone()
            if vals[0] < best[0]:
                best = (vals[0], raw.detach().clone(), step, vals)
            history.append({"step": step, "loss": vals[0], "nll": vals[1], "log_prior": vals[2],
                            "sigma_mid_deg": vals[3] * deg, "sigma_side_deg": vals[4] * deg, "lr": cur_lr})
            opt.step()
            if callback is not None:
                with torch.no_grad():
                    callback(step, to_raw(var).detach().clone())
            bar.set_postfix({"loss": f"{vals[0]:.4f}", "best": f"{best[0]:.4f}"}, refresh=False)
            bar.update(1)
    # The last step's update is never scored by the loop: score it once so it can win.
    if steps > 0 and failures == 0:
        with torch.no_grad():
            raw = to_raw(var).detach()
            final = [float(t) for t in objective(raw)]
        if all(math.isfinite(t) for t in final) and final[0] < best[0]:
            best = (final[0], raw.clone(), steps, final)

    best_vals, best_raw, best_step = best[3], best[1], best[2]
    vec = best_raw.double().numpy()
    if not np.isfinite(vec).all():  # pragma: no cover - guarded above
        raise MatchError("the matched parameters are not finite")
    with torch.no_grad():
        audio = chain(d.unsqueeze(0), params=best_raw.unsqueeze(0))[0]
    if not torch.isfinite(audio).all():
        raise MatchError("the matched preset renders non-finite audio; this is a bug, please report it")
    if sample_rate != rate:
        audio = resample_audio(audio, rate, sample_rate)[..., :d_in_len]
    peak = float(audio.abs().amax())
    try:
        out_lufs = integrated_loudness(audio, sample_rate)
    except ValueError:
        out_lufs = float("-inf")
    report = MatchReport(
        encoder=encoder, alpha=float(alpha), steps=steps, lr=float(lr), best_step=best_step,
        loss=best_vals[0], nll=best_vals[1], log_prior=best_vals[2],
        sigma_mid_deg=best_vals[3] * deg, sigma_side_deg=best_vals[4] * deg,
        initial_loss=init_vals[0], initial_nll=init_vals[1], initial_log_prior=init_vals[2],
        initial_sigma_mid_deg=init_vals[3] * deg, initial_sigma_side_deg=init_vals[4] * deg,
        n_ref_chunks=ref_chunks.shape[0], n_ref_chunks_dropped=ref_dropped,
        n_dry_chunks=dry_chunks.shape[0], n_dry_chunks_dropped=dry_dropped,
        chunk_seconds=chunk / rate, dry_gain_db=dry_gain_db, reference_gain_db=ref_gain_db,
        output_peak_dbfs=20.0 * math.log10(max(peak, 1e-30)), output_lufs=out_lufs,
        init=init_label, space=space, recoveries=recoveries, seconds=time.perf_counter() - t0,
    )
    preset = Preset(
        vec,
        name=name or "match",
        source=f"vocalfx match: {encoder} encoder, alpha {alpha:g}; dry at {TARGET_LUFS:g} LUFS in",
        extra={"match": {"input_lufs": TARGET_LUFS, "reference": ref_label, "dry": dry_label,
                         **{k: v for k, v in report.to_dict().items() if k != "recoveries"},
                         "recoveries": len(recoveries)}},
    )
    return MatchResult(preset=preset, audio=audio.contiguous(), history=history, report=report, sample_rate=sample_rate)
