"""``fx``: a small vocal-effects encoder trained for vocalfx, and a head that predicts a preset.

The encoder is meant to hear *how* a vocal was processed (EQ, dynamics, stereo, delay, reverb,
level of side against mid), not *what* is sung or said. It was trained here, on dry voices and
effects that never include the MedleyDB presets or the dev-corpus vocals
(``scripts/build_training_set.py``, ``scripts/train_fx_encoder.py``, ``docs/guide/encoders.md``), and
its weights ship inside the package (``vocalfx/encoders/weights/``, with a README saying how they
were made). Nothing is downloaded.

Signal flow (all differentiable with respect to the input audio, so ITO can backpropagate):

1. mid/side of left/right (orthonormal, :func:`vocalfx.encoders.mid_side`);
2. power spectrogram per channel: periodic Hann window, ``n_fft`` 2048, hop 1024, no padding
   (``1 + (T - 2048) // 1024`` frames), ``|X|^2 / sum(w^2)``;
3. 64 Slaney mel bands over 40-20000 Hz (:func:`torchaudio.functional.melscale_fbanks`);
4. **level-free features**: both channels are divided by the mean mel power of the *mid* channel
   (over bands and frames) before ``log(p + 1e-8)``. A gain applied to the audio therefore leaves
   the features unchanged (exactly, up to float rounding), while the side-to-mid level and every
   spectral and temporal shape remain. The level itself is reported separately
   (:meth:`FxEncoder.features`, ``level_db``) and only the preset head uses it;
5. a 1-D convolutional network over frames (mel bands of mid and side as 128 input channels): a
   stride-2 input convolution to ``width`` channels, then residual blocks of GroupNorm, GELU and a
   dilated convolution (dilations 1, 2, 4, 8, 16: about 1.5 s of context), each followed by a
   1x1 convolution;
6. mean and standard deviation over frames of the network's output, concatenated with the mean
   and standard deviation over frames of the input features themselves;
7. two linear maps to the mid and the side embeddings; :class:`~vocalfx.encoders.StereoEncoder`
   L2-normalises them.

The preset head (:meth:`FxEncoder.predict_preset`) maps the pooled reference features, the
reference's level, and optionally the pooled features and level of the dry input, to the prior's
whitened coordinates ``z`` (``raw = mean + L z``, ``C = L L^T`` the covariance of the default
prior, stored in the weights file). Each coordinate is bounded smoothly,
``z = z_max * tanh(u / z_max)`` with ``z_max = 3``: every predicted preset lies within three
prior standard deviations along each whitened axis, so it is finite and inside the region the
prior gives mass to.

Example:
    >>> import torch
    >>> from vocalfx.encoders import get_encoder
    >>> enc = get_encoder("fx")                      # the shipped weights
    >>> emb = enc(torch.randn(1, 2, 11 * 44100))
    >>> emb["mid"].shape
    torch.Size([1, 128])
    >>> raw = enc.predict_preset(torch.randn(1, 2, 11 * 44100))   # (1, 130) raw values
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

from ..errors import VocalfxError
from ..functional.fft import stft_power
from ..params import NUM_PARAMS
from .base import StereoEncoder, check_stereo, mid_side, register_encoder

__all__ = [
    "FxEncoder",
    "FxNet",
    "FxWeightsError",
    "DEFAULT_WEIGHTS",
    "CODEC_WEIGHTS",
    "WEIGHTS_FORMAT",
    "log_mel",
    "level_free",
    "load_fx_weights",
]

WEIGHTS_FORMAT = "vocalfx-fx-encoder"
WEIGHTS_FORMAT_VERSION = 1
DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "fx-v1.pt"
#: Codec-robust weights: fx-v1 distilled to give from an MP3-coded render what it gives from the
#: lossless one (``scripts/tune_fx_codec.py``; ``vocalfx.match`` uses them for a reference that a
#: lossy codec band-limited, see :mod:`vocalfx.codec`).
CODEC_WEIGHTS = Path(__file__).resolve().parent / "weights" / "fx-codec.pt"

N_FFT = 2048
HOP = 1024
N_MELS = 64
F_MIN_HZ = 40.0
F_MAX_HZ = 20000.0
LOG_FLOOR = 1e-8  # relative to the mid channel's mean mel power: -80 dB
_ABS_TINY = 1e-20  # keeps an all-zero input finite
Z_MAX = 3.0

PathLike = Union[str, "os.PathLike[str]"]


class FxWeightsError(VocalfxError, ValueError):
    """The fx encoder's weights file is missing, unreadable or does not match the model."""


def _mel_matrix(sample_rate: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    fb = AF.melscale_fbanks(
        N_FFT // 2 + 1, F_MIN_HZ, min(F_MAX_HZ, sample_rate / 2), N_MELS, sample_rate, norm="slaney", mel_scale="slaney"
    )
    return fb.to(dtype)  # (freqs, mels)


def log_mel(x: torch.Tensor, mel: torch.Tensor, window: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mel power spectrogram of each channel and the log mean mel power of channel 0.

    Args:
        x: audio ``(batch, channels, time)`` with ``time >= 2048``.
        mel: mel filter bank ``(1025, 64)``.
        window: analysis window ``(2048,)``.

    Returns:
        ``(power, log_level)``: ``power`` of shape ``(batch, channels, 64, frames)`` (linear),
        ``log_level`` of shape ``(batch,)``: ``log`` of the mean of channel 0's mel power.
    """
    b, c, t = x.shape
    # |STFT|^2 with hop N_FFT / 2, no padding (torch.stft(center=False)); vocalfx's own backward
    power = stft_power(x.reshape(b * c, t), window) / window.pow(2).sum()  # (b*c, frames, freqs)
    melp = (power @ mel).transpose(1, 2).reshape(b, c, N_MELS, -1)
    level = torch.log(melp[:, 0].mean(dim=(-2, -1)) + _ABS_TINY)
    return melp, level


def level_free(melp: torch.Tensor, log_level: torch.Tensor) -> torch.Tensor:
    """``log(p / exp(log_level) + 1e-8)``: features that a gain on the audio leaves unchanged.

    Shape:
        ``(batch, channels, 64, frames)``, ``(batch,)`` -> ``(batch, channels, 64, frames)``.
    """
    return torch.log(melp / torch.exp(log_level)[:, None, None, None] + LOG_FLOOR)


class _Block(nn.Module):
    def __init__(self, width: int, dilation: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(8, width)
        self.conv = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.mix(F.gelu(self.conv(F.gelu(self.norm(h)))))


class FxNet(nn.Module):
    """The trainable part: level-free mid/side log-mel features -> embeddings and a preset.

    Args:
        width: channels of the convolutional trunk. Default 128.
        embedding_dim: size of each of the mid and side embeddings. Default 128.
        dilations: one residual block per entry. Default ``(1, 2, 4, 8, 16)``.
        head_hidden: hidden units of the preset head. Default 512.

    Shape:
        :meth:`pool`: ``(batch, 2, 64, frames)`` -> ``(batch, pooled_dim)``.
    """

    def __init__(
        self,
        width: int = 128,
        embedding_dim: int = 128,
        dilations: Tuple[int, ...] = (1, 2, 4, 8, 16),
        head_hidden: int = 512,
    ) -> None:
        super().__init__()
        self.config = dict(width=width, embedding_dim=embedding_dim, dilations=list(dilations), head_hidden=head_hidden)
        self.inp = nn.Conv1d(2 * N_MELS, width, 4, stride=2, padding=1)
        self.blocks = nn.ModuleList(_Block(width, d) for d in dilations)
        self.out_norm = nn.GroupNorm(8, width)
        self.pooled_dim = 2 * width + 4 * N_MELS
        self.emb_mid = nn.Linear(self.pooled_dim, embedding_dim)
        self.emb_side = nn.Linear(self.pooled_dim, embedding_dim)
        # preset head: pooled reference, pooled dry (2 * 64 values: the dry is mono), the
        # reference-minus-dry mean mid spectrum (64), and three level inputs
        head_in = self.pooled_dim + 3 * N_MELS + 3
        self.head = nn.Sequential(
            nn.Linear(head_in, head_hidden),
            nn.GELU(),
            nn.Linear(head_hidden, head_hidden),
            nn.GELU(),
            nn.Linear(head_hidden, NUM_PARAMS),
        )

    def pool(self, feats: torch.Tensor) -> torch.Tensor:
        """Pooled statistics of level-free features ``(batch, 2, 64, frames)``."""
        b, c, m, t = feats.shape
        if t < 4:
            raise ValueError(f"need at least 4 frames of features, got {t}")
        flat = feats.reshape(b, c * m, t)
        h = self.inp(flat)
        for block in self.blocks:
            h = block(h)
        h = F.gelu(self.out_norm(h))
        return torch.cat([h.mean(-1), _std(h), flat.mean(-1), _std(flat)], dim=-1)

    def embed(self, pooled: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Unnormalised mid and side embeddings of pooled features."""
        return self.emb_mid(pooled), self.emb_side(pooled)

    def head_z(
        self,
        pooled: torch.Tensor,
        ref_mid_mean: torch.Tensor,
        ref_level_db: torch.Tensor,
        dry_stats: Optional[torch.Tensor],
        dry_level_db: Optional[torch.Tensor],
    ) -> torch.Tensor:
        """Bounded whitened preset coordinates ``(batch, 130)``, each in ``(-3, 3)``.

        Args:
            pooled: pooled reference features ``(batch, pooled_dim)``.
            ref_mid_mean: mean over frames of the reference's level-free mid features ``(batch, 64)``.
            ref_level_db: the reference's mid level in dB ``(batch,)``.
            dry_stats: mean and std over frames of the dry's level-free features ``(batch, 128)``,
                or ``None`` without a dry input.
            dry_level_db: the dry's level in dB ``(batch,)``, or ``None``.
        """
        b = pooled.shape[0]
        if dry_stats is None:
            dry_stats = pooled.new_zeros(b, 2 * N_MELS)
            diff = pooled.new_zeros(b, N_MELS)
            dry_db = pooled.new_zeros(b)
            has = pooled.new_zeros(b)
        else:
            diff = ref_mid_mean - dry_stats[:, :N_MELS]
            dry_db = dry_level_db
            has = pooled.new_ones(b)
        # levels enter in units of 20 dB around a -30 dB operating point
        levels = torch.stack([(ref_level_db + 30.0) / 20.0, has * (dry_db + 30.0) / 20.0, has], dim=-1)
        u = self.head(torch.cat([pooled, dry_stats, diff, levels], dim=-1))
        return Z_MAX * torch.tanh(u / Z_MAX)


def _std(h: torch.Tensor) -> torch.Tensor:
    # sqrt(var + eps): the plain std has an infinite gradient on constant rows
    return torch.sqrt(h.var(dim=-1, unbiased=False) + 1e-5)


def load_fx_weights(path: PathLike) -> Dict[str, Any]:
    """Read and check an fx weights file (``torch.load(weights_only=True)``).

    Returns:
        The file's dictionary: ``format``, ``format_version``, ``config``, ``state_dict``,
        ``prior_mean`` (130,), ``prior_chol`` (130, 130), ``provenance``.

    Raises:
        FxWeightsError: (a ``ValueError``) one line naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise FxWeightsError(f"fx encoder weights {str(path)!r} do not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip, pickle and truncation errors all mean "unreadable"
        lines = [s.strip() for s in str(e).strip().splitlines() if s.strip()]
        # torch's weights-only refusal puts its reason on an inner line; otherwise take the first
        why = next(
            (s for s in lines if s.startswith("WeightsUnpickler error")), lines[0] if lines else type(e).__name__
        )
        raise FxWeightsError(f"cannot read fx encoder weights {str(path)!r}: {why[:200]}") from None
    if not isinstance(data, Mapping) or data.get("format") != WEIGHTS_FORMAT:
        raise FxWeightsError(
            f"{str(path)!r} is not a vocalfx fx encoder weights file (format {WEIGHTS_FORMAT!r} expected)"
        )
    version = data.get("format_version")
    if not isinstance(version, int) or version > WEIGHTS_FORMAT_VERSION:
        raise FxWeightsError(
            f"fx encoder weights {str(path)!r} have format version {version!r}; "
            f"this vocalfx reads up to {WEIGHTS_FORMAT_VERSION}"
        )
    missing = [k for k in ("config", "state_dict", "prior_mean", "prior_chol") if k not in data]
    if missing:
        raise FxWeightsError(f"fx encoder weights {str(path)!r} lack {missing}")
    mean, chol = data["prior_mean"], data["prior_chol"]
    if not (
        torch.is_tensor(mean)
        and mean.shape == (NUM_PARAMS,)
        and torch.is_tensor(chol)
        and chol.shape == (NUM_PARAMS, NUM_PARAMS)
    ):
        raise FxWeightsError(f"fx encoder weights {str(path)!r}: the stored prior is not for {NUM_PARAMS} parameters")
    for name, t in data["state_dict"].items():
        if not torch.is_tensor(t) or not bool(torch.isfinite(t).all()):
            raise FxWeightsError(f"fx encoder weights {str(path)!r}: tensor {name!r} is missing or not finite")
    return dict(data)


@register_encoder("fx")
class FxEncoder(StereoEncoder):
    """The vocalfx effects encoder: 128 values per mid/side channel, plus a preset predictor.

    Args:
        sample_rate: sample rate (Hz) of the audio it will be given (resampled to 44.1 kHz).
            Default 44100.
        weights: a weights file; default: the shipped ``vocalfx/encoders/weights/fx-v1.pt``.
            ``None`` builds an untrained network (random initialisation from torch's global
            generator; for training scripts).

    The parameters are frozen (``requires_grad=False``) unless ``trainable=True``: ITO needs only
    the gradient with respect to the audio.

    Shape:
        input ``(batch, 2, time)`` with ``time >= 2048`` samples at 44.1 kHz (46 ms);
        outputs ``(batch, 128)`` each.
    """

    model_sample_rate = 44100
    min_samples = N_FFT + 3 * HOP  # four frames
    embedding_dim = 128
    simulates_codec = True  # the codec weights were distilled on coded renders: compare coded with coded

    def __init__(
        self,
        sample_rate: int = 44100,
        weights: Optional[PathLike] = DEFAULT_WEIGHTS,
        *,
        trainable: bool = False,
        **net_config: Any,
    ) -> None:
        super().__init__(sample_rate)
        self.weights_path: Optional[str] = None
        self.provenance: Dict[str, Any] = {}
        self._shipped_default = weights is DEFAULT_WEIGHTS  # the codec weights stand in for these only
        if weights is not None:
            data = load_fx_weights(weights)
            config = dict(data["config"])
            if net_config and net_config != {k: config.get(k) for k in net_config}:
                raise FxWeightsError(
                    f"fx encoder weights {str(weights)!r} were trained with {config}, not {net_config}"
                )
            self.net = FxNet(**config)
            mean, chol = data["prior_mean"], data["prior_chol"]
        else:
            self.net = FxNet(**net_config)
            from ..prior import GaussianPrior

            prior = GaussianPrior.default()
            mean, chol = prior.mean, torch.linalg.cholesky(prior.cov)
        self.embedding_dim = self.net.config["embedding_dim"]
        self.register_buffer("prior_mean", mean.to(torch.float32).clone(), persistent=False)
        self.register_buffer("prior_chol", chol.to(torch.float32).clone(), persistent=False)
        self.register_buffer("mel", _mel_matrix(self.model_sample_rate), persistent=False)
        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)
        if weights is not None:
            try:
                self.net.load_state_dict(data["state_dict"], strict=True)
            except RuntimeError as e:
                first = str(e).strip().splitlines()
                detail = " ".join(s.strip() for s in first[1:3])[:240] if len(first) > 1 else first[0][:240]
                raise FxWeightsError(f"fx encoder weights {str(weights)!r} do not match the model: {detail}") from None
            self.weights_path = str(weights)
            self.provenance = dict(data.get("provenance", {}))
        self.net.requires_grad_(trainable)

    # ------------------------------------------------------------------ features
    def features(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Level-free mid/side log-mel features and the mid level.

        Args:
            x: stereo audio ``(batch, 2, time)`` at ``model_sample_rate``.

        Returns:
            ``(feats, level_db)``: ``(batch, 2, 64, frames)`` and ``(batch,)`` (10 log10 of the mid
            channel's mean mel power).
        """
        melp, log_level = log_mel(mid_side(x), self.mel.to(x.dtype), self.window.to(x.dtype))
        return level_free(melp, log_level), log_level * (10.0 / math.log(10.0))

    def embed_mid_side(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        feats, _ = self.features(x)
        return self.net.embed(self.net.pool(feats))

    # ------------------------------------------------------------------ preset prediction
    def _prepare(self, x: torch.Tensor, mono_ok: bool) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 3:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"expected (batch, channels, time), got shape {shape}")
        if mono_ok and x.shape[1] == 1:
            x = x.expand(-1, 2, -1)
        check_stereo(x)
        if self.sample_rate != self.model_sample_rate:
            x = AF.resample(x, self.sample_rate, self.model_sample_rate)
        if x.shape[-1] < self.min_samples:
            raise ValueError(
                f"FxEncoder needs at least {self.min_samples} samples at {self.model_sample_rate} Hz, got {x.shape[-1]}"
            )
        return x

    def predict_whitened(self, reference: torch.Tensor, dry: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Whitened preset coordinates ``z`` (each in ``(-3, 3)``) predicted from a reference.

        Args:
            reference: the processed (wet) vocal, stereo ``(batch, 2, time)`` at ``sample_rate``,
                at the level it has (a -18 LUFS dry rendered with the preset, as in the
                evaluation protocol and ``vocalfx.match``).
            dry: optionally the dry vocal to be processed (the same voice, other audio is fine),
                ``(batch, 1, time)`` or ``(1, 1, time)``, at -18 LUFS.

        Returns:
            ``(batch, 130)`` in the reference's dtype.
        """
        ref = self._prepare(reference, mono_ok=False)
        feats, ref_db = self.features(ref)
        pooled = self.net.pool(feats)
        ref_mid_mean = feats[:, 0].mean(-1)
        dry_stats = dry_db = None
        if dry is not None:
            d = self._prepare(dry, mono_ok=True)
            dfeats, dry_db = self.features(d)
            dry_stats = torch.cat([dfeats[:, 0].mean(-1), _std(dfeats[:, 0])], dim=-1)
            if dry_stats.shape[0] == 1 and pooled.shape[0] > 1:
                dry_stats, dry_db = dry_stats.expand(pooled.shape[0], -1), dry_db.expand(pooled.shape[0])
            elif dry_stats.shape[0] != pooled.shape[0]:
                raise ValueError(f"batch of dry ({dry_stats.shape[0]}) and of reference ({pooled.shape[0]}) differ")
        return self.net.head_z(pooled, ref_mid_mean, ref_db, dry_stats, dry_db)

    def whitened_to_raw(self, z: torch.Tensor) -> torch.Tensor:
        """``raw = mean + L z`` with the prior stored in the weights file. ``(..., 130)``."""
        return self.prior_mean.to(z.dtype) + z @ self.prior_chol.to(z.dtype).T

    def predict_preset(self, reference: torch.Tensor, dry: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Predict a preset (130 raw values) that makes ``dry`` sound like ``reference``.

        A starting point for ITO (or a preset on its own). Every whitened coordinate of the
        result is within three prior standard deviations (see the module docstring).

        Args:
            reference: stereo ``(batch, 2, time)`` at ``sample_rate`` (see :meth:`predict_whitened`).
            dry: optional dry input ``(batch or 1, 1, time)`` at -18 LUFS.

        Returns:
            ``(batch, 130)`` raw parameter vectors, in the reference's dtype.

        Example:
            >>> enc = FxEncoder()
            >>> raw = enc.predict_preset(wet_chunks, dry=dry_chunks[:1])
        """
        return self.whitened_to_raw(self.predict_whitened(reference, dry))

    def for_lossy_reference(self) -> "FxEncoder":
        """With the shipped default weights, an encoder with the codec-robust ones (:data:`CODEC_WEIGHTS`).

        They hear through a lossy codec's damage: MP3 at 64 kbps moves them about 19 degrees
        where it moves the default weights 66 (another preset: about 89). An encoder built from
        any other weights file is returned as it is: the caller chose those weights.
        """
        if not self._shipped_default:
            return self
        return FxEncoder(sample_rate=self.sample_rate, weights=CODEC_WEIGHTS)

    def extra_repr(self) -> str:
        w = self.weights_path if self.weights_path is not None else "untrained"
        return super().extra_repr() + f", weights={w}"
