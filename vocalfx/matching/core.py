"""The matching core: MAP inference-time optimisation of the chain on chunks as they are.

:func:`match_chunks` takes the dry chunks and the reference chunks at the level they are to be
compared at, a :class:`~vocalfx.matching.config.MatchConfig` and a prior, and finds the 130 raw
values whose render of the dry chunks sounds, to the encoder, like the reference chunks. It
follows DiffVox's ``ito.py`` (Yu et al., WASPAA 2025, after Steinmetz et al.'s ST-ITO):

1. **Encoder**: :func:`vocalfx.encoders.get_encoder`; for a lossy reference, the encoder's own
   :meth:`~vocalfx.encoders.StereoEncoder.for_lossy_reference`, and, when the encoder
   :attr:`~vocalfx.encoders.StereoEncoder.simulates_codec`, every render goes through MP3 at the
   bit rate whose holes come nearest the reference's (:mod:`vocalfx.codec`).
2. **Start**: the prior mean, a preset, a vector, or the preset the predictor's head predicts
   from the chunks (:func:`vocalfx.matching.start.predicted_start`).
3. **Embeddings**: the reference chunks are embedded once; every step renders the dry chunks and
   embeds them. Both are scaled by one factor (one over the reference chunks' peak), as DiffVox.
4. **Loss** (:func:`vocalfx.matching.objectives.ito_nll`, the angular likelihood of DiffVox,
   ``../shared/SPEC.md`` in this project's workspace): with ``theta_ij`` the angle between
   rendered chunk ``i`` and reference chunk ``j`` (mid and side separately) and
   ``sigma^2 = mean theta^2``, ``-log p(y|theta) = log sigma_mid + log sigma_side + const``; the
   MAP loss adds ``-alpha log p(theta)`` under the Gaussian prior (full normalised density).
5. **Adam** (:func:`vocalfx.matching.optimize.run_adam`, the loop pair fitting shares) from the
   start; the parameters of the lowest loss seen are kept; values outside ``config.groups``
   stay exactly at the start.

Loudness, chunking, the strength blend and the output level belong to the caller
(:func:`vocalfx.match` for files, :mod:`vocalfx.evaluation` for the protocol's chunks).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .. import params as P
from ..chunks import join_chunks
from ..codec import CodecEvidence, codec_evidence, hole_fraction, mp3_available, mp3_chunks, simulated_kbps
from ..errors import MatchError, VocalfxError
from .config import MatchConfig
from .objectives import ito_nll
from .optimize import Evaluation, prior_sqrt_cov, run_adam
from .start import predicted_start, start_vector
from .steer import group_mask, masked

__all__ = ["ChunkMatch", "match_chunks", "default_prior"]

_DEG = 180.0 / math.pi


@dataclass
class ChunkMatch:
    """What :func:`match_chunks` found.

    Attributes:
        vector: the raw values of the best step, float64 ``(130,)``; outside ``config.groups``
            bit for bit the start's. No strength blend and no level are applied.
        start: the raw values the optimiser started from, float64 ``(130,)``; ``init``: its label.
        best_step: the step whose parameters are returned (0: the start).
        best, initial: ``loss``, ``nll``, ``log_prior``, ``sigma_mid_deg``, ``sigma_side_deg``
            of the returned parameters and of the start.
        history: one row per attempted step (``step``, the terms above, ``lr``).
        recoveries: ``{"step", "reason", "lr"}`` per non-finite step undone.
        weights: file name of the trained weights the encoder or the predictor used, or ``None``.
        evidence: the codec evidence read from the reference (``None`` when the caller decided).
        lossy: whether the reference was treated as lossy.
        simulated_codec: ``"mp3:KBPS"`` when renders went through MP3, ``"unavailable"`` when
            they should have but libsndfile cannot write MP3, else ``None``.
        seconds: wall-clock time (s).
    """

    vector: np.ndarray
    start: np.ndarray
    init: str
    best_step: int
    best: Dict[str, float]
    initial: Dict[str, float]
    history: List[Dict[str, float]] = field(default_factory=list)
    recoveries: List[Dict[str, object]] = field(default_factory=list)
    weights: Optional[str] = None
    evidence: Optional[CodecEvidence] = None
    lossy: bool = False
    simulated_codec: Optional[str] = None
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        """Plain values for a record: ``best`` flattened (``loss``, ``nll``, ...) and ``initial``
        as ``initial_loss``, ...; the vectors and the history left out, recoveries counted."""
        out = asdict(self)
        for key in ("vector", "start", "history", "best", "initial"):
            out.pop(key)
        out.update(self.best)
        out.update({f"initial_{k}": v for k, v in self.initial.items()})
        out["recoveries"] = len(self.recoveries)
        return out


def default_prior(prior: Any = None) -> Any:
    """``prior``, or the shipped prior when it is ``None``, checked against the chain's size."""
    if prior is None:
        from ..prior import GaussianPrior

        prior = GaussianPrior.default()
    if prior.dim != P.NUM_PARAMS:
        raise MatchError(f"the prior has {prior.dim} dimensions; the chain has {P.NUM_PARAMS}")
    return prior


def _check_chunks(chunks: torch.Tensor, name: str, channels: Tuple[int, ...]) -> None:
    if chunks.dim() != 3 or chunks.shape[1] not in channels or chunks.shape[0] < 1:
        raise MatchError(f"{name}: expected (chunks, {'|'.join(map(str, channels))}, time), got {tuple(chunks.shape)}")
    if not bool(torch.isfinite(chunks).all()):
        raise MatchError(f"{name}: contains NaN or Inf samples")


def _codec_decision(
    config: MatchConfig, reference: torch.Tensor, dry: torch.Tensor
) -> Tuple[bool, Optional[CodecEvidence]]:
    """Whether the reference is lossy, and the evidence when the audio decided it."""
    if config.lossy_reference is not None:
        return bool(config.lossy_reference), None
    evidence = codec_evidence(reference, dry, P.SAMPLE_RATE)
    return evidence.lossy, evidence


def _encoder(name: str, options: Dict[str, Any], lossy: bool) -> Any:
    from ..encoders import get_encoder

    try:
        enc = get_encoder(name, sample_rate=P.SAMPLE_RATE, **options)
    except VocalfxError:
        raise
    except (ValueError, TypeError) as e:
        raise MatchError(f"encoder {name!r}: {e}") from None
    if lossy:
        enc = enc.for_lossy_reference()
    return enc.eval().requires_grad_(False)


def _start(config: MatchConfig, prior: Any, enc: Any, lossy: bool, ref: torch.Tensor, dry: torch.Tensor):
    """``(vector, label, predictor or None)``: where Adam starts."""
    if not config.predicts_start:
        try:
            return (*start_vector(config.init, prior), None)
        except ValueError as e:
            raise MatchError(str(e)) from None
    has_head = callable(getattr(enc, "predict_preset", None))
    predictor = enc if has_head else _encoder(config.predictor, {}, lossy)
    try:
        mean = prior.mean.double().numpy()
        raw0, label = predicted_start(ref, dry, predictor, prior_mean=mean, weight=config.prediction_weight)
    except ValueError as e:
        raise MatchError(str(e)) from None
    return raw0, label, predictor


def _through_codec(chunks: torch.Tensor, kbps: int) -> torch.Tensor:
    """``chunks`` as MP3 at ``kbps`` gives them back (coded end to end), straight through for the gradient.

    Silent or non-finite renders are returned as they are (the optimiser handles the latter).
    """
    x = chunks.detach()
    if not bool(torch.isfinite(x).all()) or not float(x.abs().amax()) > 0:
        return chunks
    return chunks + (mp3_chunks(x, P.SAMPLE_RATE, kbps) - x)


def _codec_kbps(chain, dry, raw0, scale, reference, evidence) -> Tuple[Optional[int], str]:
    """The MP3 bit rate renders go through for a lossy reference, and its label."""
    if not mp3_available():
        return None, "unavailable"
    holes = evidence.hole_fraction if evidence is not None else hole_fraction(reference, P.SAMPLE_RATE)
    with torch.no_grad():
        start = chain(dry, params=torch.tensor(raw0, dtype=torch.float32).unsqueeze(0)) * scale
    if not (bool(torch.isfinite(start).all()) and float(start.abs().amax()) > 0):
        return None, None
    kbps = simulated_kbps(holes, start, P.SAMPLE_RATE)
    return kbps, f"mp3:{kbps}"


def _weights_name(*encoders: Any) -> Optional[str]:
    """File name of the trained weights among ``encoders`` (plain or combined), or ``None``."""
    for enc in encoders:
        for part in [enc, *getattr(enc, "parts", [])]:
            path = getattr(part, "weights_path", None)
            if path:
                return Path(path).name
    return None


def match_chunks(
    dry_chunks: torch.Tensor,
    reference_chunks: torch.Tensor,
    config: Optional[MatchConfig] = None,
    *,
    prior: Any = None,
    reference_audio: Optional[torch.Tensor] = None,
    dry_audio: Optional[torch.Tensor] = None,
    progress: bool = False,
    callback: Optional[Callable[[int, torch.Tensor], None]] = None,
) -> ChunkMatch:
    """Find the raw values that make ``dry_chunks`` sound like ``reference_chunks``.

    Args:
        dry_chunks: ``(n_dry, 1, time)`` at 44.1 kHz, at the level the prior's presets expect
            (-18 LUFS).
        reference_chunks: ``(n_ref, 2, time_ref)`` at 44.1 kHz, at the level they are compared at.
        config: the settings (default ``MatchConfig()``: vocalfx's default match).
        prior: a :class:`~vocalfx.prior.GaussianPrior`; default the shipped prior.
        reference_audio, dry_audio: the signals the codec evidence is read from, ``(2, time)``
            and ``(1, time)``; default the chunks laid end to end.
        progress: show a progress bar (stderr). ``callback(step, raw_vector)``: after each step.

    Returns:
        A :class:`ChunkMatch`.

    Raises:
        MatchError: bad chunks, an unknown encoder, a start with a non-finite loss, or an
            optimisation that cannot stay finite.
    """
    t0 = time.perf_counter()
    config = MatchConfig() if config is None else config
    _check_chunks(dry_chunks, "dry chunks", (1,))
    _check_chunks(reference_chunks, "reference chunks", (2,))
    prior = default_prior(prior)
    reference = join_chunks(reference_chunks) if reference_audio is None else reference_audio
    lossy, evidence = _codec_decision(config, reference, join_chunks(dry_chunks) if dry_audio is None else dry_audio)
    enc = _encoder(config.encoder, config.encoder_options, lossy)
    raw0, init_label, predictor = _start(config, prior, enc, lossy, reference_chunks, dry_chunks)

    from ..fx import VocalChain

    chain = VocalChain(P.SAMPLE_RATE)
    chain.requires_grad_(False)
    chain.recompute_dynamics = True  # the same gradients in less memory (docs/design/chain.md)
    scale = 1.0 / float(reference_chunks.abs().amax())
    with torch.no_grad():
        ref_emb = enc(reference_chunks * scale)
    kbps, simulated = None, None
    if lossy and enc.simulates_codec:
        kbps, simulated = _codec_kbps(chain, dry_chunks, raw0, scale, reference, evidence)
    raw0_t = torch.tensor(raw0, dtype=torch.float32)
    mask_np = group_mask(config.groups)
    mask = torch.from_numpy(mask_np)
    alpha = config.alpha

    def objective(v: torch.Tensor, step: int = 0) -> Evaluation:
        if config.groups is not None:
            v = masked(v, raw0_t, mask)  # the fixed groups stay at the start (zero gradient there)
        pred = chain(dry_chunks, params=v.unsqueeze(0)) * scale
        if kbps is not None:
            pred = _through_codec(pred, kbps)
        nll, s_mid, s_side = ito_nll(enc(pred), ref_emb)
        log_prior = prior.log_prob(v)
        loss = nll - alpha * log_prior if alpha > 0 else nll
        terms = {"nll": float(nll.detach()), "log_prior": float(log_prior.detach())}
        terms.update(sigma_mid_deg=float(s_mid.detach()) * _DEG, sigma_side_deg=float(s_side.detach()) * _DEG)
        return Evaluation(loss, terms)

    with torch.no_grad():
        ev0 = objective(raw0_t)
    initial = {"loss": float(ev0.loss), **ev0.terms}
    if not all(math.isfinite(t) for t in initial.values()):
        raise MatchError(f"the initial parameters ({init_label}) give a non-finite loss; choose another init")
    sqrt_cov = None
    if config.space == "whitened":
        try:
            sqrt_cov = prior_sqrt_cov(prior.cov)
        except ValueError as e:
            raise MatchError(f"space='whitened': {e}") from None
    opt = run_adam(
        objective, raw0_t, steps=config.steps, lr=config.lr, lr_final_ratio=config.lr_final_ratio, initial=initial,
        initial_score=initial["loss"], sqrt_cov=sqrt_cov, rescore_final=True, max_recoveries=config.max_recoveries,
        error=MatchError, hint=" (try a smaller lr or a larger alpha)", callback=callback, progress=progress,
        desc=f"match ({config.encoder})",
    )  # fmt: skip
    vec = opt.vector.double().numpy().copy()
    vec[~mask_np] = raw0[~mask_np]  # bit for bit the start's values
    return ChunkMatch(
        vector=vec, start=np.asarray(raw0, dtype=np.float64).copy(), init=init_label, best_step=opt.best_step,
        best=opt.best, initial=initial, history=opt.history, recoveries=opt.recoveries,
        weights=_weights_name(enc, predictor), evidence=evidence, lossy=lossy, simulated_codec=simulated,
        seconds=time.perf_counter() - t0,
    )  # fmt: skip
