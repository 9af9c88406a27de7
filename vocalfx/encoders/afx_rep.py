"""AFx-Rep: the audio-effects representation of ST-ITO (Steinmetz et al., 2024), as an encoder.

AFx-Rep is a PANNs CNN14 trained by self-supervision to tell audio-effect settings apart. DiffVox
uses it as one of the encoders its inference-time optimisation compares a prediction and a
reference with ("NN-AFx-Rep" / "ITO AFx-Rep"). The network here is written for vocalfx; it reads
the weights of the published checkpoint (``afx-rep.ckpt``, a PyTorch Lightning checkpoint hosted
at :data:`WEIGHTS_URL`) from a local file: vocalfx never downloads anything.

Signal flow, per batch item (all at 48 kHz; ``forward`` of :class:`AFxRepEncoder` resamples):

1. mid/side of the published network: ``m = (L + R) / 2``, ``s = (L - R) / 2`` (note the 1/2,
   not vocalfx's orthonormal 1/sqrt(2): the log-mel floor below makes the level matter, so the
   network's own convention is kept);
2. power spectrogram: periodic Hann window, ``n_fft`` 2048, hop 1024, centred frames with reflect
   padding (``1 + T // 1024`` frames); ``|X|^2``;
3. 128 Slaney-scale, Slaney-normalised mel bands over 20-20000 Hz (librosa's default filter bank;
   the matrix is read from the checkpoint, which stores it), ``10 log10(max(P, 1e-10))`` dB;
4. input normalisation: ``minmax`` maps [-80, 40] dB to [-1, 1] after clamping (the published
   model); ``batchnorm`` uses the ``bn0`` statistics over mel bands. The checkpoint says which:
   a ``bn0`` that never ran (``num_batches_tracked == 0``) was not used in training;
5. six conv blocks (two 3x3 convolutions with BatchNorm and ReLU, then 2x2 average pooling; none
   after the sixth) with 64, 128, 256, 512, 1024, 2048 channels, shared by mid and side;
6. mean over mel bands, then max + mean over frames -> 2048 values per channel;
7. separate linear heads: ``fc_mid`` for the mid channel, ``fc_side`` for the side channel, each
   to ``embed_dim`` (512) values. :class:`~vocalfx.encoders.StereoEncoder` L2-normalises them.

The module is inference-only: BatchNorm always uses its running statistics and there is no
dropout or SpecAugment (the training-time parts of the published model), whatever
``train()``/``eval()`` says. Its weights are frozen (``requires_grad=False``) so that a backward
pass computes only the gradient with respect to the audio, which is what ITO needs.

Differences from the reference helpers. ST-ITO's ``get_param_embeds`` peak-normalises each batch
item before the network; DiffVox's (which vocalfx follows) does not. ``peak_normalize=True`` turns
the ST-ITO behaviour on as an explicit stage. The STFT is computed with :func:`torch.stft` instead
of the checkpoint's DFT-as-convolution weights; the loader checks that those weights are the
periodic-Hann DFT this assumes (float32 rounding only).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple, Union

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import nn

from ..errors import VocalfxError
from .base import StereoEncoder, register_encoder

__all__ = [
    "AFxRepEncoder",
    "AFxRepNet",
    "AFxRepCheckpointError",
    "load_afx_rep",
    "resolve_checkpoint",
    "CHECKPOINT_ENV",
    "WEIGHTS_URL",
    "CHECKPOINT_URL",
]

CHECKPOINT_ENV = "VOCALFX_AFX_REP"
"""Environment variable holding the path of the AFx-Rep checkpoint, used when none is given."""

WEIGHTS_URL = "https://huggingface.co/csteinmetz1/afx-rep"
"""Model-hub repository of the published AFx-Rep weights (``afx-rep.ckpt`` and ``config.yaml``)."""

CHECKPOINT_URL = WEIGHTS_URL + "/resolve/main/afx-rep.ckpt"
"""Direct address of the published checkpoint file."""

# Keys of the published encoder's front end (torchlibrosa modules inside ST-ITO's Cnn14).
_STFT_REAL = "spectrogram_extractor.stft.conv_real.weight"
_STFT_IMAG = "spectrogram_extractor.stft.conv_imag.weight"
_MEL = "logmel_extractor.melW"
_FRONT_END_KEYS = (_STFT_REAL, _STFT_IMAG, _MEL)
_ENCODER_PREFIX = "encoder."

_CHANNELS = (64, 128, 256, 512, 1024, 2048)
_F_MIN_HZ, _F_MAX_HZ = 20.0, 20000.0  # mel band edges of the published model (ST-ITO's configs)
_POWER_FLOOR = 1e-10  # amin of the published power-to-dB conversion (ref 1.0, no top_db)
_MINMAX_DB = (-80.0, 40.0)  # dB range mapped to [-1, 1] by the "minmax" input normalisation
_PEAK_FLOOR = 1e-8  # floor of the peak in the optional ST-ITO peak normalisation


class AFxRepCheckpointError(VocalfxError):
    """The AFx-Rep checkpoint is missing, unreadable or not in the published format."""


def _how_to_get() -> str:
    return (
        f"The published AFx-Rep weights are afx-rep.ckpt from {WEIGHTS_URL} "
        f"({CHECKPOINT_URL}); vocalfx does not download them. Download the file yourself and pass "
        f"its path with --afx-rep PATH on the command line, checkpoint=PATH in Python, or the "
        f"{CHECKPOINT_ENV} environment variable."
    )


def resolve_checkpoint(checkpoint: Union[str, "os.PathLike[str]", None] = None) -> Path:
    """The AFx-Rep checkpoint file to load: ``checkpoint`` if given, else ``$VOCALFX_AFX_REP``.

    Args:
        checkpoint: path of the checkpoint, or ``None`` to use the environment variable.

    Returns:
        The path, which exists and is a file.

    Raises:
        AFxRepCheckpointError: no path given (and the variable unset or empty), or the path does
            not name an existing file. The message says which path was tried, where the published
            weights are and how to pass them.
    """
    if checkpoint is not None and str(checkpoint) != "":
        path, origin = Path(checkpoint).expanduser(), "given"
    elif os.environ.get(CHECKPOINT_ENV, ""):
        path, origin = Path(os.environ[CHECKPOINT_ENV]).expanduser(), f"from ${CHECKPOINT_ENV}"
    else:
        raise AFxRepCheckpointError(
            f"no AFx-Rep checkpoint given (no path, and ${CHECKPOINT_ENV} is not set). {_how_to_get()}"
        )
    if not path.exists():
        raise AFxRepCheckpointError(f"AFx-Rep checkpoint {path} ({origin}) does not exist. {_how_to_get()}")
    if not path.is_file():
        raise AFxRepCheckpointError(f"AFx-Rep checkpoint {path} ({origin}) is not a file. {_how_to_get()}")
    return path


def _batch_norm_eval(x: torch.Tensor, bn: nn.BatchNorm2d) -> torch.Tensor:
    """``bn`` applied with its running statistics (inference), whatever its ``training`` flag."""
    return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)


class _ConvBlock(nn.Module):
    """Two 3x3 convolutions (no bias), each followed by BatchNorm (optional) and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, batchnorm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.batchnorm = batchnorm
        if batchnorm:
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = F.relu(_batch_norm_eval(x, self.bn1) if self.batchnorm else x)
        x = self.conv2(x)
        return F.relu(_batch_norm_eval(x, self.bn2) if self.batchnorm else x)


def slaney_mel_basis(sample_rate: int, n_fft: int, n_mels: int, f_min_hz: float, f_max_hz: float) -> torch.Tensor:
    """librosa's default mel filter bank (Slaney scale and area normalisation), ``(n_fft//2+1, n_mels)``.

    torchaudio's ``melscale_fbanks(..., norm="slaney", mel_scale="slaney")``: triangles over the
    FFT bin frequencies between edges evenly spaced on Slaney's mel scale, each scaled by
    ``2 / (upper edge - lower edge)``. torchaudio builds it in float32; it agrees with a float64
    numpy construction to 1e-5 of its peak (``tests/test_afx_rep.py``), far inside the float32
    arithmetic of the network. Returned in float64.
    """
    fb = AF.melscale_fbanks(n_fft // 2 + 1, f_min_hz, f_max_hz, n_mels, sample_rate, norm="slaney", mel_scale="slaney")
    return fb.to(torch.float64)


def _windowed_dft(n_fft: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Real and imaginary parts of the periodic-Hann-windowed DFT, ``(n_fft//2+1, 1, n_fft)`` each.

    Row ``k``, tap ``n``: ``w[n] cos(2 pi k n / N)`` and ``-w[n] sin(2 pi k n / N)``, the layout the
    published checkpoint stores its STFT in.
    """
    k = torch.arange(n_fft // 2 + 1, dtype=torch.int64)[:, None]
    n = torch.arange(n_fft, dtype=torch.int64)[None, :]
    angle = (2.0 * torch.pi / n_fft) * ((k * n) % n_fft).to(torch.float64)
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    return (torch.cos(angle) * window).unsqueeze(1), (-torch.sin(angle) * window).unsqueeze(1)


class AFxRepNet(nn.Module):
    """The AFx-Rep network: stereo audio at 48 kHz -> unnormalised mid and side embeddings.

    See the module docstring for the signal flow. Parameter and buffer names are those of the
    published checkpoint's encoder (without its ``encoder.`` prefix and the front-end keys, which
    :func:`load_afx_rep` checks and maps), so ``load_state_dict`` reads the published weights.
    The mel filter bank is a non-persistent buffer ``mel_basis`` ``(n_fft//2+1, n_mels)``,
    initialised to the Slaney filter bank and replaced by the checkpoint's by :func:`load_afx_rep`.

    Args:
        embed_dim: size of each head's output. Default 512.
        n_mels: mel bands. Default 128.
        n_fft: frame and FFT length (samples at 48 kHz). Default 2048.
        hop_length: hop (samples at 48 kHz). Default 1024.
        f_min_hz: lowest mel band edge (Hz). Default 20.
        f_max_hz: highest mel band edge (Hz). Default 20000.
        conv_batchnorm: BatchNorm after each convolution. Default True (the published model).
        input_norm: ``"minmax"`` (the published model), ``"batchnorm"`` or ``"none"``.

    Shape:
        input ``(batch, 2, time)`` (left, right) at 48 kHz, ``time >= min_samples``; outputs two
        ``(batch, embed_dim)`` tensors (mid, side).

    Example:
        >>> net = AFxRepNet()  # random weights; load_afx_rep(path) gives the published ones
        >>> mid, side = net(torch.randn(1, 2, 48000))  # mid: (1, 512)
    """

    sample_rate: int = 48000

    def __init__(
        self,
        embed_dim: int = 512,
        *,
        n_mels: int = 128,
        n_fft: int = 2048,
        hop_length: int = 1024,
        f_min_hz: float = _F_MIN_HZ,
        f_max_hz: float = _F_MAX_HZ,
        conv_batchnorm: bool = True,
        input_norm: str = "minmax",
    ) -> None:
        super().__init__()
        if input_norm not in ("minmax", "batchnorm", "none"):
            raise ValueError(f"input_norm must be 'minmax', 'batchnorm' or 'none', got {input_norm!r}")
        self.embed_dim = int(embed_dim)
        self.n_mels = int(n_mels)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.conv_batchnorm = bool(conv_batchnorm)
        self.input_norm = input_norm
        self.register_buffer("window", torch.hann_window(self.n_fft, periodic=True), persistent=False)
        mel = slaney_mel_basis(self.sample_rate, self.n_fft, self.n_mels, f_min_hz, f_max_hz)
        self.register_buffer("mel_basis", mel.to(torch.get_default_dtype()), persistent=False)
        self.bn0 = nn.BatchNorm2d(self.n_mels)
        channels = (1,) + _CHANNELS
        for i in range(len(_CHANNELS)):
            self.add_module(f"conv_block{i + 1}", _ConvBlock(channels[i], channels[i + 1], self.conv_batchnorm))
        self.fc_mid = nn.Linear(_CHANNELS[-1], self.embed_dim)
        self.fc_side = nn.Linear(_CHANNELS[-1], self.embed_dim)

    @property
    def min_samples(self) -> int:
        """Shortest input (samples at 48 kHz): five 2x2 poolings need 32 frames of ``1 + T // hop``."""
        return 31 * self.hop_length

    def log_mel(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel power spectrogram (dB re 1, floored at -100 dB) of mono signals.

        Shape:
            ``(n, time)`` -> ``(n, frames, n_mels)``, ``frames = 1 + time // hop_length``.
        """
        spec = torch.stft(
            x,
            self.n_fft,
            self.hop_length,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        power = torch.view_as_real(spec).square().sum(-1)  # (n, bins, frames)
        mel = torch.matmul(power.transpose(1, 2), self.mel_basis)
        return 10.0 * torch.log10(mel.clamp_min(_POWER_FLOOR))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 3 or x.shape[1] != 2:
            raise ValueError(f"expected (batch, channels, time) with 2 channels, got shape {tuple(x.shape)}")
        if x.shape[-1] < self.min_samples:
            raise ValueError(f"AFx-Rep needs at least {self.min_samples} samples at 48 kHz, got {x.shape[-1]}")
        batch = x.shape[0]
        left, right = x[:, 0], x[:, 1]
        ms = torch.stack([left + right, left - right], dim=1) * 0.5  # (batch, 2, time)
        h = self.log_mel(ms.reshape(batch * 2, -1))  # (2 batch, frames, mels); mid, side interleaved
        if self.input_norm == "minmax":
            lo, hi = _MINMAX_DB
            h = (h.clamp(lo, hi) - lo) * (2.0 / (hi - lo)) - 1.0
        elif self.input_norm == "batchnorm":
            h = _batch_norm_eval(h.transpose(1, 2).unsqueeze(-1), self.bn0).squeeze(-1).transpose(1, 2)
        h = h.unsqueeze(1)  # (2 batch, 1, frames, mels)
        for i in range(1, len(_CHANNELS) + 1):
            h = getattr(self, f"conv_block{i}")(h)
            if i < len(_CHANNELS):
                h = F.avg_pool2d(h, 2)
        h = h.mean(dim=3)  # over mel bands: (2 batch, 2048, frames')
        h = h.amax(dim=2) + h.mean(dim=2)
        h = h.reshape(batch, 2, -1)
        return self.fc_mid(h[:, 0]), self.fc_side(h[:, 1])

    def extra_repr(self) -> str:
        return (
            f"embed_dim={self.embed_dim}, n_mels={self.n_mels}, n_fft={self.n_fft}, "
            f"hop_length={self.hop_length}, sample_rate={self.sample_rate} Hz, input_norm={self.input_norm!r}"
        )


def _short_reason(e: BaseException) -> str:
    """The informative part of a ``torch.load`` failure, on one line."""
    text = str(e)
    found = re.search(r"Unsupported (?:global: GLOBAL \S+|operand \S+)", text)
    if found:
        return found.group(0)
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(e).__name__)
    return first if len(first) <= 200 else first[:197] + "..."


def _read_checkpoint(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True`` (memory-mapped when the file is a zip archive)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        if "Unsupported global" not in str(e):
            raise AFxRepCheckpointError(
                f"AFx-Rep checkpoint {path} is not a readable PyTorch checkpoint ({_short_reason(e)})"
            ) from None
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path} holds Python objects other than tensors and plain containers "
            f"({_short_reason(e)}), which vocalfx refuses to unpickle: it loads checkpoints with "
            f"torch.load(weights_only=True) and never runs code from a file. If you trust the file, keep "
            f"only its weights once: python -c \"import torch; c = torch.load('{path}', map_location='cpu', "
            f"weights_only=False); torch.save({{'state_dict': c['state_dict']}}, 'afx-rep-weights.ckpt')\" "
            f"and pass afx-rep-weights.ckpt instead."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError, AttributeError) as e:
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path} is not a readable PyTorch checkpoint ({_short_reason(e)})"
        ) from None


def _encoder_state(obj: Any, path: Path) -> Dict[str, torch.Tensor]:
    """The encoder's tensors from a loaded checkpoint, keys without the ``encoder.`` prefix.

    Accepted: the published Lightning checkpoint (``{"state_dict": {"encoder.<name>": tensor, ...},
    ...}``; the other modules' entries are ignored), or a bare state dict with or without the
    ``encoder.`` prefix.
    """
    state = obj.get("state_dict", obj) if isinstance(obj, Mapping) else None
    if not isinstance(state, Mapping):
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path} is not in the published format: expected a dict with a "
            f"'state_dict' of tensors, got {type(obj).__name__}"
        )
    if any(isinstance(k, str) and k.startswith(_ENCODER_PREFIX) for k in state):
        state = {
            k[len(_ENCODER_PREFIX) :]: v
            for k, v in state.items()
            if isinstance(k, str) and k.startswith(_ENCODER_PREFIX)
        }
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path}: state_dict entries that are not tensors: {_listing(bad)}"
        )
    return dict(state)


def _listing(keys: List[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def _infer_config(state: Mapping[str, torch.Tensor], path: Path) -> Dict[str, Any]:
    """AFxRepNet arguments read from the tensors' shapes (and the use of ``bn0``)."""
    missing = [k for k in _FRONT_END_KEYS + ("fc_mid.weight",) if k not in state]
    if missing:
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path} is not in the published format: no "
            f"encoder.{', encoder.'.join(missing)} in its state_dict ({len(state)} encoder entries "
            f"found). {_how_to_get()}"
        )
    real, mel, fc = state[_STFT_REAL], state[_MEL], state["fc_mid.weight"]
    n_fft = real.shape[-1] if real.dim() == 3 else 0
    if n_fft < 2 or real.shape[:2] != (n_fft // 2 + 1, 1):
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path}: encoder.{_STFT_REAL} has shape {tuple(real.shape)}, "
            f"expected (n_fft/2+1, 1, n_fft)"
        )
    if mel.dim() != 2 or mel.shape[0] != n_fft // 2 + 1:
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path}: encoder.{_MEL} has shape {tuple(mel.shape)}, "
            f"expected ({n_fft // 2 + 1}, n_mels)"
        )
    if fc.dim() != 2:
        raise AFxRepCheckpointError(f"AFx-Rep checkpoint {path}: encoder.fc_mid.weight has shape {tuple(fc.shape)}")
    tracked = state.get("bn0.num_batches_tracked")
    return {
        "embed_dim": int(fc.shape[0]),
        "n_mels": int(mel.shape[1]),
        "n_fft": int(n_fft),
        "conv_batchnorm": "conv_block1.bn1.weight" in state,
        # bn0 exists in every published model but only runs with input_norm="batchnorm"
        "input_norm": "batchnorm" if tracked is not None and int(tracked) > 0 else "minmax",
    }


def _check_front_end(state: Mapping[str, torch.Tensor], config: Mapping[str, Any], path: Path) -> None:
    """The stored STFT must be the periodic-Hann DFT and the mel matrix the 48 kHz Slaney one."""
    n_fft, n_mels = config["n_fft"], config["n_mels"]
    want_real, want_imag = _windowed_dft(n_fft)
    for key, want in ((_STFT_REAL, want_real), (_STFT_IMAG, want_imag)):
        got = state[key]
        if got.shape != want.shape:
            raise AFxRepCheckpointError(
                f"AFx-Rep checkpoint {path}: encoder.{key} has shape {tuple(got.shape)}, expected {tuple(want.shape)}"
            )
        err = float((got.to(torch.float64) - want).abs().max())
        if not err <= 1e-4:  # float32 storage rounds to ~1e-7
            raise AFxRepCheckpointError(
                f"AFx-Rep checkpoint {path}: encoder.{key} is not a periodic-Hann {n_fft}-point DFT "
                f"(max deviation {err:.3g}); its front end differs from the published model's"
            )
    got = state[_MEL].to(torch.float64)
    want = slaney_mel_basis(AFxRepNet.sample_rate, n_fft, n_mels, _F_MIN_HZ, _F_MAX_HZ)
    err = float((got - want).abs().max()) / float(want.abs().max())
    if not err <= 1e-3:
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path}: encoder.{_MEL} is not the {n_mels}-band Slaney mel filter bank "
            f"over {_F_MIN_HZ:g}-{_F_MAX_HZ:g} Hz at 48 kHz (max deviation {err:.3g} of its peak); its "
            f"front end differs from the published model's"
        )


def load_afx_rep(checkpoint: Union[str, "os.PathLike[str]", None] = None) -> AFxRepNet:
    """Build :class:`AFxRepNet` from a checkpoint in the published format.

    Args:
        checkpoint: path of ``afx-rep.ckpt`` (see :data:`WEIGHTS_URL`), or ``None`` for
            ``$VOCALFX_AFX_REP``. Also accepted: a bare state dict of the encoder, with or
            without the ``encoder.`` prefix.

    Returns:
        The network in float32, inference mode, weights frozen.

    Raises:
        AFxRepCheckpointError: missing file, unreadable file, a file holding arbitrary Python
            objects (only ``weights_only`` loading is done), or tensors whose names or shapes are
            not those of the published encoder; the message names the file and the problem.

    Example:
        >>> net = load_afx_rep("afx-rep.ckpt")  # doctest: +SKIP
    """
    path = resolve_checkpoint(checkpoint)
    state = _encoder_state(_read_checkpoint(path), path)
    config = _infer_config(state, path)
    _check_front_end(state, config, path)
    net = AFxRepNet(**config)
    weights = {k: v for k, v in state.items() if k not in _FRONT_END_KEYS}
    nonfinite = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if nonfinite:
        raise AFxRepCheckpointError(f"AFx-Rep checkpoint {path}: non-finite values in {_listing(nonfinite)}")
    expected = net.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    wrong = [
        f"{k} {tuple(weights[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"missing {_listing(missing)}")
        if unexpected:
            problems.append(f"unexpected {_listing(unexpected)}")
        if wrong:
            problems.append(f"wrong shapes {_listing(wrong)}")
        raise AFxRepCheckpointError(
            f"AFx-Rep checkpoint {path} does not match the published encoder (keys after 'encoder.'): "
            + "; ".join(problems)
        )
    net.load_state_dict(weights, strict=True)
    net.mel_basis.copy_(state[_MEL])
    return net.eval().requires_grad_(False)


@register_encoder("afx-rep")
class AFxRepEncoder(StereoEncoder):
    """AFx-Rep (ST-ITO's CNN14 with mid and side heads), 512 values per channel.

    Loads the published weights from a local checkpoint (:func:`load_afx_rep`), resamples the
    input to 48 kHz and returns the L2-normalised mid and side embeddings. The mid/side split is
    the network's own, ``(L +- R) / 2``. Gradients flow to the input audio (the weights are
    frozen; BatchNorm always uses running statistics; no dropout).

    Args:
        sample_rate: sample rate (Hz) of the input. Default 44100.
        checkpoint: path of the published ``afx-rep.ckpt``; ``None`` (default) reads
            ``$VOCALFX_AFX_REP``. Raises :class:`AFxRepCheckpointError` when neither names a
            usable file.
        peak_normalize: divide each batch item by its peak absolute value (over both channels,
            floored at 1e-8) before the network, as ST-ITO's ``get_param_embeds`` does. Default
            False, as DiffVox's ITO.

    Shape:
        input ``(batch, 2, time)`` with at least 31744 samples at 48 kHz (0.66 s) after
        resampling; outputs ``{"mid", "side"}`` of ``(batch, 512)``.

    Example:
        >>> enc = AFxRepEncoder(44100, checkpoint="afx-rep.ckpt")  # doctest: +SKIP
        >>> emb = enc(torch.randn(1, 2, 44100))  # emb["mid"]: (1, 512)  # doctest: +SKIP
    """

    model_sample_rate = 48000

    def __init__(
        self,
        sample_rate: int = 44100,
        checkpoint: Union[str, "os.PathLike[str]", None] = None,
        *,
        peak_normalize: bool = False,
    ) -> None:
        super().__init__(sample_rate)
        self.checkpoint_path = resolve_checkpoint(checkpoint)
        self.net = load_afx_rep(self.checkpoint_path)
        self.embedding_dim = self.net.embed_dim
        self.min_samples = self.net.min_samples
        self.peak_normalize = bool(peak_normalize)
        self.eval().requires_grad_(False)

    def embed_mid_side(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if self.peak_normalize:
            x = x / x.abs().amax(dim=(1, 2), keepdim=True).clamp_min(_PEAK_FLOOR)
        return self.net(x)

    def extra_repr(self) -> str:
        return (
            super().extra_repr() + f", checkpoint={str(self.checkpoint_path)!r}, peak_normalize={self.peak_normalize}"
        )
