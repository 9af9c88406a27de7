"""Match a dry vocal to a reference: MAP inference-time optimisation (ITO) of the vocal chain.

:func:`match` finds the 130 raw values of the chain whose render of the dry vocal sounds, to an
audio encoder, like the reference vocal, regularised by a Gaussian prior over presets. It follows
DiffVox's ``ito.py`` (Yu et al., WASPAA 2025, after Steinmetz et al.'s ST-ITO):

1. **Loudness**: the dry and the reference are each normalised to -18 LUFS
   (:func:`vocalfx.io.loudness_normalize`), the level the prior's presets were fitted at.
2. **Chunks** (:func:`vocalfx.matching.chunks.active_chunks`): both are cut into
   ``chunk_seconds`` (11 s) chunks; chunks whose median 50 ms running peak is below -60 dBFS
   (DiffVox's rule) are dropped. Where the signal does
   not end on a chunk boundary, one more chunk ending at the last sample is added, so no audio is
   ignored (DiffVox drops the remainder).
3. **Embeddings**: the reference chunks are embedded once; every step renders the dry chunks with
   the current parameters and embeds them. Both are scaled by the same factor (one over the
   reference chunks' peak) before embedding, as in DiffVox.
4. **Loss** (:func:`vocalfx.matching.objectives.ito_nll`, the angular likelihood of ``SPEC.md``): with ``theta_ij`` the angle
   between predicted chunk ``i`` and reference chunk ``j`` (mid and side separately) and
   ``sigma^2 = mean theta^2``, ``-log p(y|theta) = log sigma_mid + log sigma_side + const``; the MAP
   loss adds ``-alpha * log p(theta)`` under the prior (:class:`vocalfx.prior.GaussianPrior`,
   full normalised log-density, as DiffVox). ``alpha = 0`` is maximum likelihood.
5. **Adam** (:func:`vocalfx.matching.optimize.run_adam`, the loop shared with pair fitting) on
   the raw vector from the prior mean; the parameters of the lowest loss seen are kept.
   Defaults (:data:`DEFAULT_STEPS`, :data:`DEFAULT_LR`, cosine decay) come from the convergence
   measurement in ``docs/match.md``; DiffVox ran 1000 steps at a learning rate of 0.01 on a GPU.
   ``space="whitened"`` steps in the prior's whitened coordinates instead (measured there too).
6. **Render** the whole dry (at -18 LUFS) with the result. The output is not normalised: its level
   is what the preset makes of a -18 LUFS input (reported in :class:`MatchReport`).

Numerical guard (the shared loop's): a step with a non-finite loss or gradient is undone, the
learning rate halved, and the event recorded; too many in a row raise :class:`MatchError`. NaN
parameters are never returned.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from .. import defaults
from .. import params as P
from ..errors import VocalfxError
from ..preset import Preset
from .chunks import CHUNK_SECONDS, TARGET_LUFS, active_chunks, active_mask
from .errors import MatchError
from .lossy import HOLE_FRACTION, codec_evidence, hole_fraction, mp3_available, mp3_roundtrip, simulated_kbps
from .objectives import ito_nll
from .optimize import Evaluation, prior_sqrt_cov, run_adam, timing_lines
from .start import PREDICTED, predicted_start, start_vector
from .steer import LEVEL_PARAM, blend, group_mask, level_target_lufs, masked, parse_groups, with_output_gain

__all__ = [
    "match",
    "check_steering",
    "MatchResult",
    "MatchReport",
    "MatchError",
    "DEFAULT_STEPS",
    "DEFAULT_LR",
    "DEFAULT_ALPHA",
    "SPACES",
]

#: Default Adam steps and initial learning rate (measured in ``docs/fx-encoder.md``, "The default").
DEFAULT_STEPS = defaults.MATCH_STEPS
DEFAULT_LR = defaults.MATCH_LR
DEFAULT_ALPHA = defaults.MATCH_ALPHA
#: Where Adam steps (see :func:`match`'s ``space``).
SPACES = ("raw", "whitened")

AudioLike = Union[torch.Tensor, np.ndarray, str, Path]


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
        groups: the parameter groups optimised (``None``: all); ``strength``: the blend kept
            between the start and the match; ``level``: how the output level was set
            (``"reference"``, ``"preset"`` or a LUFS value as text); ``level_gain_db``: the gain
            added to ``comp.makeup_db`` for it; ``reference_lufs``: the reference's loudness as given.
        reference_cutoff_hz: the cut-off of a lossy codec found in the reference
            (:func:`vocalfx.matching.lossy.codec_cutoff_hz`), or ``None``;
            ``reference_hole_fraction``: its share of a codec's quantisation holes
            (:func:`vocalfx.matching.lossy.hole_fraction`; ``None`` when ``lossy_reference``
            was given); ``fx_weights``: the file name of the ``fx`` weights used (``None`` if no
            ``fx`` encoder was used); ``simulated_codec``: for a lossy reference, the codec each
            render went through before the encoder (``"mp3:KBPS"``, :func:`vocalfx.matching.lossy.simulated_kbps`),
            ``"unavailable"`` if libsndfile cannot write MP3, else ``None``.
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
    seed: int = 0
    recoveries: List[Dict[str, object]] = field(default_factory=list)
    seconds: float = 0.0
    groups: Optional[List[str]] = None
    strength: float = 1.0
    level: str = "preset"
    level_gain_db: float = 0.0
    reference_lufs: float = float("nan")
    reference_cutoff_hz: Optional[float] = None
    fx_weights: Optional[str] = None
    reference_hole_fraction: Optional[float] = None
    simulated_codec: Optional[str] = None

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines (what ``vocalfx match`` prints)."""
        lines = [
            f"encoder {self.encoder}, alpha {self.alpha:g}, {self.steps} steps (lr {self.lr:g}"
            + ("" if self.space == "raw" else f", {self.space} space")
            + f"), best at step {self.best_step}",
            f"loss {self.initial_loss:.4f} -> {self.loss:.4f}  (-log p(y|x) {self.initial_nll:.4f} -> {self.nll:.4f}, "
            f"log p(x) {self.initial_log_prior:.1f} -> {self.log_prior:.1f})",
            f"RMS embedding angle to the reference: mid {self.initial_sigma_mid_deg:.2f} -> {self.sigma_mid_deg:.2f} deg, "
            f"side {self.initial_sigma_side_deg:.2f} -> {self.sigma_side_deg:.2f} deg",
            f"chunks of {self.chunk_seconds:g} s: reference {self.n_ref_chunks}"
            + (f" ({self.n_ref_chunks_dropped} silent dropped)" if self.n_ref_chunks_dropped else "")
            + f", dry {self.n_dry_chunks}"
            + (f" ({self.n_dry_chunks_dropped} silent dropped)" if self.n_dry_chunks_dropped else ""),
            f"loudness gains to {TARGET_LUFS:g} LUFS: dry {self.dry_gain_db:+.2f} dB, reference {self.reference_gain_db:+.2f} dB; "
            f"output {self.output_lufs:.1f} LUFS, peak {self.output_peak_dbfs:+.1f} dBFS"
            + (
                ""
                if self.level == "preset"
                else f" (level: {self.level}, {self.level_gain_db:+.2f} dB on {LEVEL_PARAM})"
            ),
        ]
        weights = f"fx weights {self.fx_weights}" if self.fx_weights else "no fx encoder in use"
        if self.reference_cutoff_hz is not None:
            lines.append(
                f"the reference is band-limited at {self.reference_cutoff_hz / 1000:.1f} kHz (a lossy codec): {weights}"
            )
        elif self.reference_hole_fraction is not None and self.reference_hole_fraction >= HOLE_FRACTION:
            lines.append(
                f"the reference has a lossy codec's quantisation holes ({100 * self.reference_hole_fraction:.1f} % "
                f"of bins in 2-10 kHz): {weights}"
            )
        elif self.fx_weights == _codec_weights_name():
            lines.append(f"the reference was declared lossy: fx weights {self.fx_weights}")
        if self.simulated_codec == "unavailable":
            lines.append(
                "renders were not put through MP3 like the reference: this libsndfile cannot write MP3 (pip install -U soundfile)"
            )
        elif self.simulated_codec is not None:
            lines.append(
                f"renders went through {self.simulated_codec.replace('mp3:', 'MP3 at ')} kbps before the encoder, as the reference did"
            )
        if self.groups is not None or self.strength != 1.0:
            lines.append(
                f"steering: groups {','.join(self.groups) if self.groups else 'all'}, strength {self.strength:g}"
            )
        return "\n".join(lines + timing_lines(self.seconds, self.recoveries))


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
        start: the 130 raw values the optimiser started from (the prior mean, the given preset or
            the predicted one), float64; also stored as ``preset.extra["match"]["start_raw"]`` so
            that ``vocalfx render --strength`` can blend a saved match against its start.
    """

    preset: Preset
    audio: torch.Tensor
    history: List[Dict[str, float]]
    report: MatchReport
    sample_rate: int
    start: Optional[np.ndarray] = None


# ----------------------------------------------------------------------------------------------
# Inputs


def _describe(source: AudioLike, name: str) -> str:
    return f"{name} ({source})" if isinstance(source, (str, Path)) else name


def _as_audio(source: AudioLike, name: str, sample_rate: int, mono: bool) -> Tuple[torch.Tensor, str]:
    """``(channels, time)`` float32 at ``sample_rate`` from a tensor, array or file path."""
    from ..io import load_audio

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


# ----------------------------------------------------------------------------------------------
# Matching


def check_steering(
    groups: Union[None, str, Sequence[str]], strength: float, level: Union[None, str, float]
) -> Tuple[Optional[Tuple[str, ...]], Union[str, float]]:
    """:func:`match`'s steering arguments checked, before any audio is touched: the parsed groups
    and the level mode (``None`` resolved to ``"reference"``, or ``"preset"`` when the groups leave
    out ``dynamics``, which holds the make-up gain that carries the level).

    Raises:
        MatchError: an unknown group, a strength outside [0, 1], an unknown level mode or an
            implausible LUFS value, or a level asked for while ``dynamics`` stays fixed.
    """
    try:
        groups = parse_groups(groups)
        blend(np.zeros(1), np.zeros(1), strength)
        if level is not None:
            level_target_lufs(level, -18.0)
    except ValueError as e:
        raise MatchError(str(e)) from None
    holds_level = groups is None or "dynamics" in groups
    if level is None:
        return groups, ("reference" if holds_level else "preset")
    if level != "preset" and not holds_level:
        raise MatchError(
            f"level={level!r} is set through {LEVEL_PARAM}, which groups {','.join(groups)} keeps fixed: "
            "add 'dynamics' to the groups or use level='preset'"
        )
    return groups, level


def _through_codec(chunks: torch.Tensor, sample_rate: int, kbps: int) -> torch.Tensor:
    """``chunks`` ``(n, channels, time)`` as MP3 at ``kbps`` gives them back, straight through.

    The value is the codec's; the gradient is the identity's (the codec is not differentiable).
    Silent or non-finite renders are returned as they are (the optimiser handles the latter).
    """
    x = chunks.detach()
    if not bool(torch.isfinite(x).all()) or not float(x.abs().amax()) > 0:
        return chunks
    n, c, t = x.shape  # coded end to end, as one stream, as the reference was
    coded = mp3_roundtrip(x.permute(1, 0, 2).reshape(c, n * t), sample_rate, kbps).reshape(c, n, t).permute(1, 0, 2)
    return chunks + (coded - x)


def _codec_weights_name() -> str:
    from ..embed.fx import CODEC_WEIGHTS

    return CODEC_WEIGHTS.name


def _fx_weights_name(*encoders: Any) -> Optional[str]:
    """File name of the fx weights among ``encoders`` (plain or combined), or ``None``."""
    for enc in encoders:
        for part in [enc, *getattr(enc, "parts", [])]:
            path = getattr(part, "weights_path", None)
            if path:
                return Path(path).name
    return None


def match(
    dry: AudioLike,
    reference: AudioLike,
    sample_rate: int = P.SAMPLE_RATE,
    *,
    encoder: str = defaults.MATCH_ENCODER,
    alpha: float = DEFAULT_ALPHA,
    steps: Optional[int] = None,
    seed: int = 0,
    lr: Optional[float] = None,
    lr_final_ratio: float = 0.1,
    space: str = "raw",
    prior: Optional[Any] = None,
    init: Union[None, str, Preset, np.ndarray, torch.Tensor] = defaults.MATCH_INIT,
    chunk_seconds: float = CHUNK_SECONDS,
    reference_sample_rate: Optional[int] = None,
    normalize_reference: bool = True,
    encoder_options: Optional[dict] = None,
    max_recoveries: int = 8,
    progress: bool = True,
    callback: Optional[Callable[[int, torch.Tensor], None]] = None,
    name: str = "",
    groups: Union[None, str, Sequence[str]] = None,
    strength: float = 1.0,
    level: Union[None, str, float] = None,
    lossy_reference: Optional[bool] = None,
    prediction_weight: float = defaults.MATCH_PREDICTION_WEIGHT,
) -> MatchResult:
    """Find the preset that makes ``dry`` sound like ``reference`` (MAP inference-time optimisation).

    The procedure is described in the :mod:`vocalfx.matching.ito` docstring.

    Args:
        dry: the dry vocal: a mono ``(1, time)`` tensor or array at ``sample_rate``, or an audio
            file path (read and resampled to ``sample_rate``; a file with several identical
            channels counts as mono).
        reference: the reference vocal: ``(channels, time)`` (mono or stereo) at
            ``reference_sample_rate`` (default: ``sample_rate``), or a file path. At least one
            ``chunk_seconds`` long.
        sample_rate: rate (Hz) of ``dry`` and of the returned audio. The chain runs at 44.1 kHz;
            other rates are resampled in and out.
        encoder: ``"fx"`` (default: the effects encoder trained here and shipped), ``"mfcc"``,
            ``"mir"``, ``"afx-rep"`` or any registered encoder.
        alpha: prior weight; 0 gives maximum likelihood. Default :data:`DEFAULT_ALPHA` (0.1; DiffVox used 1).
        steps: Adam steps; default :data:`DEFAULT_STEPS`.
        seed: recorded with the result. The objective and the loop draw no random numbers, so a
            match is reproducible whatever the seed (it no longer calls ``torch.manual_seed``:
            library calls leave the process's random state alone).
        lr: initial learning rate (default :data:`DEFAULT_LR`), cosine-decayed to
            ``lr * lr_final_ratio`` at the last step.
        space: where Adam takes its steps. ``"raw"`` (default, as DiffVox): on the raw vector
            itself, so every raw value moves by about ``lr`` per step whatever its spread in the
            prior. ``"whitened"``: on ``z`` with ``raw = init + C^(1/2) z`` (``C`` the prior's
            covariance, symmetric square root), so a step moves about ``lr`` prior standard
            deviations along each principal direction of the prior; ``lr`` is then in those units.
        prior: a :class:`~vocalfx.prior.GaussianPrior`; default the shipped prior
            (``GaussianPrior.default()``).
        init: starting point: ``"predicted"`` (default: the preset
            the ``fx`` encoder's head predicts from the reference and dry chunks,
            :func:`~vocalfx.matching.start.predicted_start`; with ``encoder="fx"`` the same
            encoder instance and ``encoder_options`` are used), ``None``/``"mean"`` (the prior
            mean, DiffVox's start), a :class:`Preset` or a raw vector.
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
        groups: optimise only these parameter groups (:data:`vocalfx.matching.steer.GROUPS`:
            ``eq``, ``dynamics``, ``delay``, ``reverb``, ``pan``; a list or ``"eq,reverb"``); every
            other raw value is returned exactly as in the start. ``None`` (default): all.
        strength: keep this fraction of the match: ``start + strength (match - start)``
            (:func:`~vocalfx.matching.steer.blend`), in ``[0, 1]``. Default 1.
        level: the output's integrated loudness: ``"reference"`` (that of the reference as given,
            before any normalisation), ``"preset"`` (what the preset makes of a -18 LUFS dry), or
            a number in LUFS. It is set through ``comp.makeup_db`` (a pure output gain in this
            chain), so the returned preset renders the returned audio. Default ``None``:
            ``"reference"``, or ``"preset"`` when ``groups`` leaves out ``dynamics`` (which holds
            the make-up gain); asking for a level then is an error.
        lossy_reference: whether the reference went through a lossy codec, which picks the
            ``fx`` encoder's weights: the codec-robust ``fx-codec.pt`` if so, ``fx-v1.pt`` if not.
            Default ``None``: decided from the audio (a codec's brick-wall cut-off in the
            reference that the dry does not have, or its quantisation holes in the band it keeps,
            :func:`vocalfx.matching.lossy.codec_evidence`; reported as
            ``report.reference_cutoff_hz`` and ``report.reference_hole_fraction``). With a lossy
            reference and an ``fx`` encoder, each render also goes through MP3 before the
            encoder, at the bit rate that best reproduces the reference's holes
            (``report.simulated_codec``; the gradient passes straight through). ``encoder_options={"weights": ...}``
            overrides both.
        prediction_weight: with ``init="predicted"``, how much of the prediction the start keeps:
            ``prior.mean + w (prediction - prior.mean)``, ``w`` in ``[0, 1]``. Default
            :data:`vocalfx.defaults.MATCH_PREDICTION_WEIGHT` (1, the prediction itself: smaller
            weights did better on the dev corpus but worse out of family, docs/fx-encoder.md,
            session 11).

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
    from ..embed import get_encoder
    from ..embed.fx import CODEC_WEIGHTS
    from ..fx import VocalChain
    from ..io import AudioError, integrated_loudness, loudness_normalize, resample_audio

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
    groups, level = check_steering(groups, strength, level)
    if prior is None:
        from ..prior import GaussianPrior

        prior = GaussianPrior.default()
    if prior.dim != P.NUM_PARAMS:
        raise MatchError(f"the prior has {prior.dim} dimensions; the chain has {P.NUM_PARAMS}")
    predict_init = isinstance(init, str) and init == PREDICTED
    if not 0.0 <= prediction_weight <= 1.0:
        raise MatchError(f"prediction_weight must be in [0, 1], got {prediction_weight!r}")
    if not predict_init:
        try:
            raw0, init_label = start_vector(init, prior)
        except ValueError as e:
            raise MatchError(str(e)) from None

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
        ref_lufs_given = integrated_loudness(r, rate)
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
        if not bool(active_mask(dry_chunks, rate)[0]):
            raise MatchError(f"{dry_label}: mostly silent (below -60 dBFS for most of its length)")
    else:
        dry_chunks, dry_dropped = active_chunks(d, chunk, rate, label=dry_label)

    # a codec-band-limited reference gets the fx encoder's codec-robust weights (vocalfx/matching/lossy.py)
    evidence = codec_evidence(r, d, rate) if lossy_reference is None else None
    use_codec_weights = evidence.lossy if evidence is not None else bool(lossy_reference)
    encoder_options = dict(encoder_options or {})
    fx_options = {"weights": CODEC_WEIGHTS} if use_codec_weights else {}
    if "fx" in encoder.split("+") and "weights" not in encoder_options:
        encoder_options.update(fx_options)
    try:
        enc = get_encoder(encoder, sample_rate=rate, **encoder_options)
    except VocalfxError:
        raise
    except (ValueError, TypeError) as e:
        raise MatchError(f"encoder {encoder!r}: {e}") from None
    enc.eval().requires_grad_(False)
    predictor_used = None
    if predict_init:
        try:
            predictor = (
                enc
                if callable(getattr(enc, "predict_preset", None))
                else get_encoder("fx", sample_rate=rate, **fx_options)
            )
            raw0, init_label = predicted_start(
                ref_chunks, dry_chunks, predictor, prior_mean=prior.mean.double().numpy(), weight=prediction_weight
            )
            predictor_used = predictor
        except ValueError as e:
            raise MatchError(str(e)) from None

    chain = VocalChain(rate)
    chain.requires_grad_(False)
    chain.recompute_dynamics = True  # the same gradients in less memory (docs/match.md, "Speed and memory")
    scale = 1.0 / float(ref_chunks.abs().amax())
    with torch.no_grad():
        ref_emb = enc(ref_chunks * scale)
    deg = 180.0 / math.pi

    raw0_t = torch.tensor(raw0, dtype=torch.float32)
    # a lossy reference is compared with renders through the same kind of codec (vocalfx/matching/lossy.py)
    codec_kbps, simulated_codec = None, None
    if use_codec_weights and "fx" in encoder.split("+"):
        if not mp3_available():
            simulated_codec = "unavailable"
        else:
            holes = evidence.hole_fraction if evidence is not None else hole_fraction(r, rate)
            with torch.no_grad():
                start = chain(dry_chunks, params=raw0_t.unsqueeze(0)) * scale
            if bool(torch.isfinite(start).all()) and float(start.abs().amax()) > 0:
                codec_kbps = simulated_kbps(holes, start, rate)
                simulated_codec = f"mp3:{codec_kbps}"
    mask_np = group_mask(groups)
    mask = torch.from_numpy(mask_np)

    def objective(v: torch.Tensor, step: int = 0) -> Evaluation:
        if groups is not None:
            v = masked(v, raw0_t, mask)  # the fixed groups stay at the start (zero gradient there)
        pred = chain(dry_chunks, params=v.unsqueeze(0)) * scale
        if codec_kbps is not None:
            pred = _through_codec(pred, rate, codec_kbps)
        nll, s_mid, s_side = ito_nll(enc(pred), ref_emb)
        log_prior = prior.log_prob(v)
        loss = nll - alpha * log_prior if alpha > 0 else nll
        terms = {
            "nll": float(nll.detach()),
            "log_prior": float(log_prior.detach()),
            "sigma_mid_deg": float(s_mid.detach()) * deg,
            "sigma_side_deg": float(s_side.detach()) * deg,
        }
        return Evaluation(loss, terms)

    with torch.no_grad():
        ev0 = objective(raw0_t)
    initial = {"loss": float(ev0.loss), **ev0.terms}
    if not all(math.isfinite(t) for t in initial.values()):
        raise MatchError(f"the initial parameters ({init_label}) give a non-finite loss; choose another init")
    sqrt_cov = None
    if space == "whitened":
        try:
            sqrt_cov = prior_sqrt_cov(prior.cov)
        except ValueError as e:
            raise MatchError(f"space='whitened': {e}") from None
    opt = run_adam(
        objective,
        raw0_t,
        steps=steps,
        lr=lr,
        lr_final_ratio=lr_final_ratio,
        initial=initial,
        initial_score=initial["loss"],
        sqrt_cov=sqrt_cov,
        rescore_final=True,
        max_recoveries=max_recoveries,
        error=MatchError,
        hint=" (try a smaller lr or a larger alpha)",
        callback=callback,
        progress=progress,
        desc=f"match ({encoder})",
    )
    history, recoveries = opt.history, opt.recoveries
    best_vals, best_raw, best_step = opt.best, opt.vector, opt.best_step
    vec = best_raw.double().numpy().copy()
    vec[~mask_np] = raw0[~mask_np]  # bit for bit the start's values
    vec = blend(raw0, vec, strength)

    def render_whole(v: np.ndarray) -> torch.Tensor:
        with torch.no_grad():
            y = chain(d.unsqueeze(0), params=torch.from_numpy(v).float().unsqueeze(0))[0]
        if not torch.isfinite(y).all():
            raise MatchError("the matched preset renders non-finite audio; this is a bug, please report it")
        return y

    audio = render_whole(vec)
    level_gain_db = 0.0
    target_lufs = level_target_lufs(level, ref_lufs_given)
    if target_lufs is not None:
        try:
            level_gain_db = target_lufs - integrated_loudness(audio, rate)
        except ValueError as e:
            raise MatchError(f"level={level!r}: the matched output's loudness cannot be measured ({e})") from None
        if not math.isfinite(level_gain_db):
            raise MatchError(f"level={level!r}: the matched output is silent; use level='preset'")
        vec = with_output_gain(vec, level_gain_db)
        # comp.makeup_db is an identity-mapped output gain, so the new preset's render is this
        # render scaled (equal to re-rendering up to float32 rounding; tests/test_steer.py checks it)
        audio = audio * 10.0 ** (level_gain_db / 20.0)
    if sample_rate != rate:
        audio = resample_audio(audio, rate, sample_rate)[..., :d_in_len]
    peak = float(audio.abs().amax())
    try:
        out_lufs = integrated_loudness(audio, sample_rate)
    except ValueError:
        out_lufs = float("-inf")
    report = MatchReport(
        encoder=encoder,
        alpha=float(alpha),
        steps=steps,
        lr=float(lr),
        best_step=best_step,
        loss=best_vals["loss"],
        nll=best_vals["nll"],
        log_prior=best_vals["log_prior"],
        sigma_mid_deg=best_vals["sigma_mid_deg"],
        sigma_side_deg=best_vals["sigma_side_deg"],
        initial_loss=initial["loss"],
        initial_nll=initial["nll"],
        initial_log_prior=initial["log_prior"],
        initial_sigma_mid_deg=initial["sigma_mid_deg"],
        initial_sigma_side_deg=initial["sigma_side_deg"],
        n_ref_chunks=ref_chunks.shape[0],
        n_ref_chunks_dropped=ref_dropped,
        n_dry_chunks=dry_chunks.shape[0],
        n_dry_chunks_dropped=dry_dropped,
        chunk_seconds=chunk / rate,
        dry_gain_db=dry_gain_db,
        reference_gain_db=ref_gain_db,
        output_peak_dbfs=20.0 * math.log10(max(peak, 1e-30)),
        output_lufs=out_lufs,
        init=init_label,
        space=space,
        seed=int(seed),
        recoveries=recoveries,
        seconds=time.perf_counter() - t0,
        groups=list(groups) if groups is not None else None,
        strength=float(strength),
        level=level if isinstance(level, str) else f"{float(level):g} LUFS",
        level_gain_db=float(level_gain_db),
        reference_lufs=float(ref_lufs_given),
        reference_cutoff_hz=evidence.cutoff_hz if evidence else None,
        reference_hole_fraction=evidence.hole_fraction if evidence else None,
        simulated_codec=simulated_codec,
        fx_weights=_fx_weights_name(enc, predictor_used),
    )
    preset = Preset(
        vec,
        name=name or "match",
        source=f"vocalfx match: {encoder} encoder, alpha {alpha:g}; dry at {TARGET_LUFS:g} LUFS in",
        extra={
            "match": {
                "input_lufs": TARGET_LUFS,
                "reference": ref_label,
                "dry": dry_label,
                **{k: v for k, v in report.to_dict().items() if k != "recoveries"},
                "recoveries": len(recoveries),
                "start_raw": [float(x) for x in raw0],
            }
        },
    )
    return MatchResult(
        preset=preset,
        audio=audio.contiguous(),
        history=history,
        report=report,
        sample_rate=sample_rate,
        start=np.asarray(raw0, dtype=np.float64).copy(),
    )
