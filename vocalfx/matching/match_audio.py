"""Match a dry vocal to a reference vocal given as files or tensors: :func:`match`.

:func:`match` reads the two signals, brings each to -18 LUFS (the level the prior's presets were
fitted at), cuts them into the protocol's chunks (:func:`vocalfx.chunks.active_chunks`: 11 s,
DiffVox's activity rule, plus one chunk that ends at the last sample so that no audio is
ignored), hands the chunks to the core (:func:`vocalfx.matching.core.match_chunks`), keeps
``strength`` of the way from the start to the match, renders the whole dry with the result and
sets its output level (``comp.makeup_db``, :mod:`vocalfx.matching.steer`), and packages a
:class:`MatchResult`.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from .. import params as P
from ..chunks import TARGET_LUFS, active_chunks, active_mask
from ..codec import HOLE_FRACTION
from ..errors import MatchError
from ..preset import Preset
from .config import MatchConfig, check_sample_rate
from .core import ChunkMatch, default_prior, match_chunks
from .optimize import timing_lines
from .steer import LEVEL_PARAM, blend, level_target_lufs, with_output_gain

__all__ = ["match", "MatchResult", "MatchStats", "render_at_level"]

AudioLike = Union[torch.Tensor, np.ndarray, str, Path]


@dataclass
class MatchStats:
    """What :func:`match` did, in numbers.

    Attributes:
        encoder: encoder name; ``alpha``: prior weight; ``steps``, ``lr``: optimiser settings;
            ``best_step``: step whose parameters are returned (0 = the initial ones).
        loss, nll, log_prior: the MAP loss, ``-log p(y|theta)`` and ``log p(theta)`` of the
            returned parameters; ``initial_*``: the same at the start.
        sigma_mid_deg, sigma_side_deg: RMS angle (degrees) between rendered and reference
            embeddings for the returned parameters; ``initial_sigma_*``: at the start.
        n_ref_chunks, n_dry_chunks: chunks used; ``n_*_chunks_dropped``: inactive chunks dropped.
        chunk_seconds: chunk length (s).
        dry_gain_db, reference_gain_db: gains that brought each to -18 LUFS.
        output_peak_dbfs, output_lufs: level of the returned audio.
        recoveries: non-finite steps undone (``{"step", "reason", "lr"}``).
        seconds: wall-clock time (s); ``init``: where the optimiser started; ``space``: where
            Adam stepped.
        groups: the parameter groups optimised (``None``: all); ``strength``: the blend kept
            between the start and the match; ``level``: how the output level was set
            (``"reference"``, ``"preset"`` or a LUFS value as text); ``level_gain_db``: the gain
            added to ``comp.makeup_db`` for it; ``reference_lufs``: the reference's loudness as given.
        reference_cutoff_hz, reference_hole_fraction: the codec evidence read from the reference
            (:mod:`vocalfx.codec`; ``None`` when ``lossy_reference`` was given).
        lossy_reference: whether the reference was treated as lossy.
        fx_weights: file name of the trained encoder weights used (``None`` if none was used).
        simulated_codec: the codec each render went through before the encoder (``"mp3:KBPS"``),
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
    lossy_reference: bool = False

    def to_dict(self) -> Dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines (what ``vocalfx match`` prints)."""
        space = "" if self.space == "raw" else f", {self.space} space"
        lines = [
            f"encoder {self.encoder}, alpha {self.alpha:g}, {self.steps} steps (lr {self.lr:g}{space}), "
            f"best at step {self.best_step}",
            f"loss {self.initial_loss:.4f} -> {self.loss:.4f}  (-log p(y|x) {self.initial_nll:.4f} -> {self.nll:.4f}, "
            f"log p(x) {self.initial_log_prior:.1f} -> {self.log_prior:.1f})",
            f"RMS embedding angle to the reference: mid {self.initial_sigma_mid_deg:.2f} -> {self.sigma_mid_deg:.2f} "
            f"deg, side {self.initial_sigma_side_deg:.2f} -> {self.sigma_side_deg:.2f} deg",
            f"chunks of {self.chunk_seconds:g} s: reference {self.n_ref_chunks}"
            + (f" ({self.n_ref_chunks_dropped} silent dropped)" if self.n_ref_chunks_dropped else "")
            + f", dry {self.n_dry_chunks}"
            + (f" ({self.n_dry_chunks_dropped} silent dropped)" if self.n_dry_chunks_dropped else ""),
            f"loudness gains to {TARGET_LUFS:g} LUFS: dry {self.dry_gain_db:+.2f} dB, reference "
            f"{self.reference_gain_db:+.2f} dB; output {self.output_lufs:.1f} LUFS, "
            f"peak {self.output_peak_dbfs:+.1f} dBFS"
            + (
                ""
                if self.level == "preset"
                else f" (level: {self.level}, {self.level_gain_db:+.2f} dB on {LEVEL_PARAM})"
            ),
        ]
        return "\n".join(
            lines + self._codec_lines() + self._steering_lines() + timing_lines(self.seconds, self.recoveries)
        )

    def _codec_lines(self) -> List[str]:
        weights = f"fx weights {self.fx_weights}" if self.fx_weights else "no fx encoder in use"
        lines = []
        if self.reference_cutoff_hz is not None:
            lines.append(
                f"the reference is band-limited at {self.reference_cutoff_hz / 1000:.1f} kHz (a lossy codec): {weights}"
            )
        elif self.reference_hole_fraction is not None and self.reference_hole_fraction >= HOLE_FRACTION:
            lines.append(
                f"the reference has a lossy codec's quantisation holes ({100 * self.reference_hole_fraction:.1f} % "
                f"of bins in 2-10 kHz): {weights}"
            )
        elif self.lossy_reference and self.reference_hole_fraction is None:
            lines.append(f"the reference was declared lossy: {weights}")
        if self.simulated_codec == "unavailable":
            lines.append(
                "renders were not put through MP3 like the reference: this libsndfile cannot write MP3 "
                "(pip install -U soundfile)"
            )
        elif self.simulated_codec is not None:
            kbps = self.simulated_codec.replace("mp3:", "MP3 at ")
            lines.append(f"renders went through {kbps} kbps before the encoder, as the reference did")
        return lines

    def _steering_lines(self) -> List[str]:
        if self.groups is None and self.strength == 1.0:
            return []
        return [f"steering: groups {','.join(self.groups) if self.groups else 'all'}, strength {self.strength:g}"]


@dataclass
class MatchResult:
    """Result of :func:`match`.

    Attributes:
        preset: the matched preset (expects a dry input at -18 LUFS); ``preset.extra["match"]``
            holds the stats and the start (``start_raw``, which ``vocalfx render --strength`` blends from).
        audio: the whole dry vocal (at -18 LUFS) rendered with ``preset``, ``(2, time)`` float32
            at ``sample_rate``.
        history: one dict per attempted step: ``step``, ``loss``, ``nll``, ``log_prior``,
            ``sigma_mid_deg``, ``sigma_side_deg``, ``lr`` (NaN losses for undone steps).
        stats: a :class:`MatchStats`.
        sample_rate: rate of ``audio`` (Hz).
        start: the 130 raw values the optimiser started from, float64.
    """

    preset: Preset
    audio: torch.Tensor
    history: List[Dict[str, float]]
    stats: MatchStats
    sample_rate: int
    start: Optional[np.ndarray] = None


def _as_audio(source: AudioLike, name: str, sample_rate: int, mono: bool) -> Tuple[torch.Tensor, str]:
    """``(channels, time)`` float32 at ``sample_rate`` from a tensor, array or file path."""
    from ..io import load_audio

    if isinstance(source, (str, Path)):
        x = load_audio(source, sample_rate=sample_rate, mono=False)
        if mono and x.shape[0] > 1:
            # A "stereo" dry whose channels are the same signal is a mono recording: accept it.
            if float((x - x[:1]).abs().amax()) > 1e-4 * float(x.abs().amax()):
                raise MatchError(
                    f"{source}: the dry vocal has {x.shape[0]} different channels; the chain takes a mono vocal. "
                    "Pass one channel or a downmix (e.g. `sox in.wav -c 1 out.wav`)."
                )
            x = x[:1]
        return x, str(source)
    x = torch.as_tensor(source)
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
    return x.detach().to(torch.float32).cpu(), name


@dataclass
class _Inputs:
    """The two signals at the chain's rate and -18 LUFS (the reference unless kept at its level)."""

    dry: torch.Tensor
    reference: torch.Tensor
    dry_label: str
    reference_label: str
    dry_gain_db: float
    reference_gain_db: float
    reference_lufs: float
    input_length: int  # the dry's length at the caller's rate (samples)


def _read_inputs(dry, reference, sample_rate: int, ref_rate: int, normalize_reference: bool) -> _Inputs:
    from ..io import AudioError, integrated_loudness, loudness_normalize, resample_audio

    rate = P.SAMPLE_RATE
    try:
        d, dry_label = _as_audio(dry, "dry", sample_rate, mono=True)
        r, ref_label = _as_audio(reference, "reference", ref_rate, mono=False)
    except AudioError as e:
        raise MatchError(str(e)) from None
    input_length = d.shape[-1]
    d = resample_audio(d, sample_rate, rate) if sample_rate != rate else d
    r = resample_audio(r, ref_rate, rate) if ref_rate != rate else r
    r = r.expand(2, -1).contiguous() if r.shape[0] == 1 else r
    try:
        d, dry_gain_db = loudness_normalize(d, rate, TARGET_LUFS)
    except ValueError as e:
        raise MatchError(f"{dry_label}: {e}") from None
    try:
        ref_lufs = integrated_loudness(r, rate)
        if normalize_reference:
            r, ref_gain_db = loudness_normalize(r, rate, TARGET_LUFS)
        elif not math.isfinite(ref_lufs):
            raise ValueError("silent (no 400 ms block above the -70 LUFS gate)")
        else:
            ref_gain_db = 0.0
    except ValueError as e:
        raise MatchError(f"{ref_label}: {e}") from None
    return _Inputs(d, r, dry_label, ref_label, dry_gain_db, ref_gain_db, ref_lufs, input_length)


def _cut(inputs: _Inputs, chunk_seconds: float) -> Tuple[torch.Tensor, int, torch.Tensor, int]:
    """``(dry_chunks, dry_dropped, reference_chunks, reference_dropped)``; a short dry is one chunk."""
    rate, d = P.SAMPLE_RATE, inputs.dry
    chunk = int(round(chunk_seconds * rate))
    ref_chunks, ref_dropped = active_chunks(inputs.reference, chunk, rate, label=inputs.reference_label)
    if d.shape[-1] >= chunk:
        return (*active_chunks(d, chunk, rate, label=inputs.dry_label), ref_chunks, ref_dropped)
    if not bool(active_mask(d.unsqueeze(0), rate)[0]):
        raise MatchError(f"{inputs.dry_label}: mostly silent (below -60 dBFS for most of its length)")
    return d.unsqueeze(0), 0, ref_chunks, ref_dropped


def render_at_level(
    vector: np.ndarray, dry: torch.Tensor, level: Union[str, float], reference_lufs: float
) -> Tuple[torch.Tensor, np.ndarray, float]:
    """``dry`` ``(1, time)`` at 44.1 kHz rendered with ``vector``, at the output level ``level`` asks for.

    The level is set through ``comp.makeup_db``, an identity-mapped output gain, so the returned
    vector renders the returned audio (the render is scaled rather than rendered again: equal
    up to float32 rounding).

    Returns:
        ``(audio (2, time), vector, level_gain_db)``.

    Raises:
        MatchError: the render is not finite, or silent when a level is asked for.
    """
    from ..io import integrated_loudness
    from ..render import cached_chain

    with torch.no_grad():
        audio = cached_chain(float(P.SAMPLE_RATE))(
            dry.unsqueeze(0), params=torch.from_numpy(np.asarray(vector, np.float64)).float().unsqueeze(0)
        )[0]
    if not torch.isfinite(audio).all():
        raise MatchError("the matched preset renders non-finite audio; this is a bug, please report it")
    target_lufs = level_target_lufs(level, reference_lufs)
    if target_lufs is None:
        return audio, np.asarray(vector, dtype=np.float64), 0.0
    try:
        gain_db = target_lufs - integrated_loudness(audio, P.SAMPLE_RATE)
    except ValueError as e:
        raise MatchError(f"level={level!r}: the matched output's loudness cannot be measured ({e})") from None
    if not math.isfinite(gain_db):
        raise MatchError(f"level={level!r}: the matched output is silent; use level='preset'")
    return audio * 10.0 ** (gain_db / 20.0), with_output_gain(vector, gain_db), float(gain_db)


def _stats(config: MatchConfig, found: ChunkMatch, inputs: _Inputs, cut, audio, sample_rate, level_gain_db, t0):
    from ..io import integrated_loudness

    dry_chunks, dry_dropped, ref_chunks, ref_dropped = cut
    try:
        out_lufs = integrated_loudness(audio, sample_rate)
    except ValueError:
        out_lufs = float("-inf")
    level = config.level
    return MatchStats(
        encoder=config.encoder, alpha=float(config.alpha), steps=config.steps, lr=config.lr,
        best_step=found.best_step, **found.best, **{f"initial_{k}": v for k, v in found.initial.items()},
        n_ref_chunks=ref_chunks.shape[0], n_ref_chunks_dropped=ref_dropped, n_dry_chunks=dry_chunks.shape[0],
        n_dry_chunks_dropped=dry_dropped, chunk_seconds=round(config.chunk_seconds * P.SAMPLE_RATE) / P.SAMPLE_RATE,
        dry_gain_db=inputs.dry_gain_db, reference_gain_db=inputs.reference_gain_db,
        output_peak_dbfs=20.0 * math.log10(max(float(audio.abs().amax()), 1e-30)), output_lufs=out_lufs,
        init=found.init, space=config.space, recoveries=found.recoveries, seconds=time.perf_counter() - t0,
        groups=list(config.groups) if config.groups is not None else None, strength=float(config.strength),
        level=level if isinstance(level, str) else f"{float(level):g} LUFS", level_gain_db=level_gain_db,
        reference_lufs=float(inputs.reference_lufs), lossy_reference=found.lossy,
        reference_cutoff_hz=found.evidence.cutoff_hz if found.evidence else None,
        reference_hole_fraction=found.evidence.hole_fraction if found.evidence else None,
        simulated_codec=found.simulated_codec, fx_weights=found.weights,
    )  # fmt: skip


_SETTINGS = frozenset(f.name for f in fields(MatchConfig))


def match(
    dry: AudioLike,
    reference: AudioLike,
    sample_rate: int = P.SAMPLE_RATE,
    *,
    config: Optional[MatchConfig] = None,
    prior: Any = None,
    reference_sample_rate: Optional[int] = None,
    normalize_reference: bool = True,
    progress: bool = True,
    callback: Optional[Callable[[int, torch.Tensor], None]] = None,
    name: str = "",
    **settings: Any,
) -> MatchResult:
    """Find the preset that makes ``dry`` sound like ``reference`` (MAP inference-time optimisation).

    Args:
        dry: the dry vocal: mono ``(1, time)`` at ``sample_rate`` (tensor or array), or a file
            (a file whose channels are identical counts as mono).
        reference: the reference vocal, ``(channels, time)`` mono or stereo at
            ``reference_sample_rate`` (default ``sample_rate``), or a file; at least one chunk long.
        sample_rate: rate (Hz) of ``dry`` and of the returned audio (the chain runs at 44.1 kHz).
        config: a :class:`~vocalfx.matching.config.MatchConfig`; or give its fields by name
            as ``**settings`` (``encoder="mfcc"``, ``alpha=1.0``, ``steps=100``, ``init="mean"``,
            ``groups="eq"``, ``level=-14``, ``lossy_reference=True``, ...). Default: vocalfx's default match.
        prior: a :class:`~vocalfx.prior.GaussianPrior`; default the shipped prior.
        normalize_reference: bring the reference to -18 LUFS (default); ``False`` keeps its level.
        progress: show a progress bar (stderr); ``callback(step, raw_vector)`` after each step.
        name: the returned preset's name.

    Returns:
        A :class:`MatchResult` (``preset``, ``audio`` ``(2, time)``, ``history``, ``stats``).

    Raises:
        MatchError: a bad setting (before any audio is read), bad audio (a stereo dry, NaN,
            silence, too short), an unknown encoder, or an optimisation that cannot stay finite.

    Example:
        >>> res = vocalfx.match("dry.wav", "reference.wav", encoder="mfcc")  # doctest: +SKIP
        >>> res.preset.to_json("matched.json")                               # doctest: +SKIP
    """
    t0 = time.perf_counter()
    unknown = sorted(set(settings) - _SETTINGS)
    if unknown or (config is not None and settings):
        raise MatchError(
            f"unknown setting(s) {', '.join(unknown)}" if unknown else "give config= or settings, not both"
        )
    config = MatchConfig(**settings) if config is None else config
    sample_rate = check_sample_rate(sample_rate, "sample_rate")
    ref_rate = sample_rate if reference_sample_rate is None else reference_sample_rate
    ref_rate = check_sample_rate(ref_rate, "reference_sample_rate")
    prior = default_prior(prior)
    inputs = _read_inputs(dry, reference, sample_rate, ref_rate, normalize_reference)
    cut = _cut(inputs, config.chunk_seconds)
    found = match_chunks(
        cut[0], cut[2], config, prior=prior, reference_audio=inputs.reference, dry_audio=inputs.dry,
        progress=progress, callback=callback,
    )  # fmt: skip
    vector = blend(found.start, found.vector, config.strength)
    audio, vector, level_gain_db = render_at_level(vector, inputs.dry, config.level, inputs.reference_lufs)
    if sample_rate != P.SAMPLE_RATE:
        from ..io import resample_audio

        audio = resample_audio(audio, P.SAMPLE_RATE, sample_rate)[..., : inputs.input_length]
    stats = _stats(config, found, inputs, cut, audio, sample_rate, level_gain_db, t0)
    source = f"vocalfx match: {config.encoder} encoder, alpha {config.alpha:g}; dry at {TARGET_LUFS:g} LUFS in"
    extra = {"input_lufs": TARGET_LUFS, "reference": inputs.reference_label, "dry": inputs.dry_label}
    extra.update({k: v for k, v in stats.to_dict().items() if k != "recoveries"})
    extra.update(recoveries=len(stats.recoveries), start_raw=[float(x) for x in found.start])
    preset = Preset(vector, name=name or "match", source=source, extra={"match": extra})
    return MatchResult(preset, audio.contiguous(), found.history, stats, sample_rate, found.start.copy())
