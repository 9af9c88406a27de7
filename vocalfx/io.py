"""Audio and result-file I/O: checked loading, atomic saving, loudness normalisation.

Everything that touches the file system goes through this module so that the rules are in one
place:

* Loading (:func:`load_audio`) returns float32 ``(channels, time)`` at the requested rate and fails
  loudly, with an :class:`AudioError` naming the file, on anything a pipeline should not silently
  consume: a missing, unreadable or empty file, NaN/Inf samples, or digital silence. It never clips
  and never normalises; the only conversions are the documented channel mean and resampling.
* Saving (:func:`save_audio`, :func:`atomic_write_text`, :func:`atomic_write` for any bytes,
  :func:`atomic_outputs` for several files written together) is atomic (a temporary file in the
  target's directory, ``fsync``, ``os.replace``), refuses to write over any of the run's input files
  (:func:`check_output_path`), and refuses audio it cannot store exactly (NaN/Inf, or samples beyond
  full scale for a fixed-point subtype) instead of clipping it.
* Loudness normalisation (:func:`loudness_normalize`) is an explicit, named stage (ITU-R BS.1770
  integrated loudness via pyloudnorm), as in the DiffVox pipeline (-18 LUFS).

Files are ``(channels, time)``: one file, one signal. The rest of vocalfx works on
``(batch, channels, time)``; add the batch axis with ``audio.unsqueeze(0)``.
"""

from __future__ import annotations

import math
import operator
import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import IO, Any, Callable, Iterable, Iterator, List, Mapping, Optional, Union

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as taF

from .errors import VocalfxError

__all__ = [
    "AudioError",
    "AudioInfo",
    "SILENCE_PEAK_DBFS",
    "RESAMPLE_SETTINGS",
    "audio_info",
    "load_audio",
    "resampled_length",
    "resample_audio",
    "integrated_loudness",
    "save_audio",
    "atomic_write_text",
    "atomic_write",
    "atomic_outputs",
    "check_output_path",
    "fsync_dir",
    "loudness_normalize",
]

PathLike = Union[str, "os.PathLike[str]"]

#: A file whose peak absolute sample is below this level (dBFS, i.e. relative to full scale 1.0)
#: is "silent". -120 dBFS (amplitude 1e-6) is below the smallest non-zero 16-bit sample (-90.3
#: dBFS) and above 24-bit dither-level residue (one LSB is -138.5 dBFS), so every 16-bit file that is
#: not all zeros passes, while digital silence and float round-off residue do not.
SILENCE_PEAK_DBFS = -120.0

#: Keyword arguments given to ``torchaudio.functional.resample``: a Kaiser-windowed sinc with 64
#: zero crossings per side, beta 14.77 and roll-off 0.9476 (resampy's "kaiser_best", the high-quality
#: setting in torchaudio's resampling guide). Measured for 48 kHz -> 44.1 kHz: flat within 0.001 dB
#: up to 19.5 kHz, -0.09 dB at 20 kHz, -8 dB at 21 kHz, and components at or above 22.6 kHz (which
#: would alias into the audible band) attenuated by more than 140 dB. torchaudio's default (Hann
#: window, 6 zero crossings, roll-off 0.99) loses 3 dB at 20 kHz and lets a 23 kHz component alias
#: back at about -9 dB. The cost, about 0.5 s per minute of 48 kHz audio on two CPU threads, is paid
#: once per file.
RESAMPLE_SETTINGS: Mapping[str, Any] = MappingProxyType(
    {
        "resampling_method": "sinc_interp_kaiser",
        "lowpass_filter_width": 64,
        "rolloff": 0.9475937167399596,
        "beta": 14.769656459379492,
    }
)

# pyloudnorm's BS.1770 gating block (s); integrated loudness needs at least one full block.
_LOUDNESS_BLOCK_S = 0.4
# Subtypes that store any finite float exactly; every other subtype is fixed-point or a codec that
# expects [-1, 1], where soundfile would wrap or clip out-of-range samples.
_UNBOUNDED_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
_DEFAULT_SUBTYPES = {"WAV": "FLOAT", "FLAC": "PCM_24"}
_EXTENSION_FORMATS = {"aif": "AIFF", "oga": "OGG"}


class AudioError(VocalfxError, ValueError):
    """A problem with an audio (or other input/output) file.

    The message is one line, ``"<path>: <problem>"``; the parts are kept as attributes.

    Args:
        path: The file concerned, as the caller named it.
        problem: What is wrong with it.

    Attributes:
        path: The file concerned (string).
        problem: What is wrong with it.
    """

    def __init__(self, path: PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = " ".join(str(problem).split())  # always one line
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):  # picklable across worker processes despite the two-argument init
        return (type(self), (self.path, self.problem))


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, as stored (before any conversion by :func:`load_audio`).

    Attributes:
        path: The file, as the caller named it.
        sample_rate: Stored sample rate (Hz).
        channels: Stored channel count.
        frames: Samples per channel (for MP3/Ogg as reported by libsndfile).
        format: libsndfile container name, e.g. ``"WAV"``, ``"FLAC"``.
        subtype: libsndfile sample encoding, e.g. ``"PCM_16"``, ``"FLOAT"``.
    """

    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration_s(self) -> float:
        """Duration in seconds (``frames / sample_rate``)."""
        return self.frames / self.sample_rate


# ----------------------------------------------------------------------------------------------
# Reading


def _check_readable(path: PathLike) -> None:
    p = Path(path)
    if not p.exists():
        raise AudioError(path, "file not found")
    if p.is_dir():
        raise AudioError(path, "is a directory, not an audio file")


def _sf_problem(err: BaseException) -> str:
    return f"cannot read as audio ({type(err).__name__}: {err})"


def audio_info(path: PathLike) -> AudioInfo:
    """Stored sample rate, channels, length and encoding of an audio file, without decoding it.

    Args:
        path: Audio file (any format libsndfile reads: WAV, FLAC, OGG, MP3, ...).

    Returns:
        An :class:`AudioInfo`.

    Raises:
        AudioError: The file is missing, a directory, or not readable as audio.

    Example:
        >>> info = audio_info("vocal.wav")  # doctest: +SKIP
        >>> info.sample_rate, info.channels, info.duration_s  # doctest: +SKIP
        (48000, 2, 12.5)
    """
    _check_readable(path)
    try:
        i = sf.info(os.fspath(path))
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioError(path, _sf_problem(err)) from err
    return AudioInfo(os.fspath(path), int(i.samplerate), int(i.channels), int(i.frames), i.format, i.subtype)


def _positive_int(value: int, name: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be a positive integer (Hz), got {value!r}") from None
    if isinstance(value, bool) or v <= 0:
        raise ValueError(f"{name} must be a positive integer (Hz), got {value!r}")
    return v


def _dbfs(peak: float) -> str:
    return "-inf dBFS" if peak <= 0 else f"{20 * math.log10(peak):.1f} dBFS"


def resampled_length(frames: int, orig_rate: int, new_rate: int) -> int:
    """Length of a signal of ``frames`` samples after resampling: ``ceil(frames * new / orig)``.

    This is torchaudio's rule, computed here in exact integer arithmetic (torchaudio evaluates it
    in float32, which is off by a sample or more once the result exceeds 2**24 samples, about
    6.3 minutes at 44.1 kHz; :func:`load_audio` corrects for that).

    Args:
        frames: Input length in samples.
        orig_rate: Input sample rate (Hz).
        new_rate: Output sample rate (Hz).

    Returns:
        Output length in samples.

    Example:
        >>> resampled_length(48010, 48000, 44100)  # 44109.19 rounds up
        44110
    """
    return -(-frames * new_rate // orig_rate)


def _resample(x: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample ``(channels, time)`` with :data:`RESAMPLE_SETTINGS` to exactly
    :func:`resampled_length` samples."""
    g = math.gcd(orig_rate, new_rate)
    new_r = new_rate // g
    target = resampled_length(x.shape[-1], orig_rate, new_rate)
    # torchaudio cuts its output at ceil() evaluated in float32, which can fall short of the exact
    # length past 2**24 samples. Zeros appended here are what the filter already assumes past the
    # end, so they change no sample before `target`; they lengthen the output by more than
    # target / 2**22 samples, four times float32's worst error, so the exact cut below is available.
    pad = ((target >> 22) // new_r + 2) * (orig_rate // g)
    x = torch.nn.functional.pad(x, (0, pad))
    y = taF.resample(x, orig_rate, new_rate, **RESAMPLE_SETTINGS)[..., :target]
    if y.shape[-1] != target:  # pragma: no cover - guards the padding arithmetic above
        raise RuntimeError(f"resampling produced {y.shape[-1]} samples, expected {target}")
    return y.contiguous()


def resample_audio(x: torch.Tensor, orig_rate: int, new_rate: int, *, length: Optional[int] = None) -> torch.Tensor:
    """Resample audio as :func:`load_audio` does (:data:`RESAMPLE_SETTINGS`): vocalfx's one resampler.

    Args:
        x: ``(..., time)`` audio (e.g. ``(channels, time)``).
        orig_rate, new_rate: Hz.
        length: output length in samples; default :func:`resampled_length`. A longer ``length``
            is reached with zeros (what the filter assumes past the end), a shorter one cuts.

    Returns:
        The resampled audio; the input itself when the rates are equal and no other ``length``
        is asked for.
    """
    orig_rate = _positive_int(orig_rate, "orig_rate")
    new_rate = _positive_int(new_rate, "new_rate")
    y = x if orig_rate == new_rate else _resample(x, orig_rate, new_rate)
    if length is None or length == y.shape[-1]:
        return y
    if length > y.shape[-1]:
        return torch.nn.functional.pad(y, (0, length - y.shape[-1]))
    return y[..., :length].contiguous()


def load_audio(
    path: PathLike,
    *,
    sample_rate: int = 44100,
    mono: bool = True,
    allow_silent: bool = False,
) -> torch.Tensor:
    """Read an audio file as float32 ``(channels, time)`` at ``sample_rate``.

    Reads every format the installed libsndfile reads (WAV, FLAC, OGG/Vorbis/Opus, and MP3 with
    libsndfile >= 1.1) through soundfile. Samples are decoded to float with full scale 1.0 (integer
    PCM is divided by 2**(bits-1)); float files keep their values, including any beyond +/-1. The
    only conversions, in this order:

    1. ``mono=True``: the channels are averaged, ``x.mean(0)`` - no gain compensation, no
       normalisation (so a stereo file with its channels in opposite phase averages to silence and
       is reported as such).
    2. If the file's rate differs from ``sample_rate``: ``torchaudio.functional.resample`` with
       :data:`RESAMPLE_SETTINGS` (Kaiser-windowed sinc, see there for the measured response). The
       output has exactly ``ceil(frames * sample_rate / file_rate)`` samples
       (:func:`resampled_length`).

    Nothing is clipped or normalised.

    Args:
        path: Audio file.
        sample_rate: Output sample rate (Hz). Default 44100, the rate of the vocalfx chain.
        mono: Average the channels to one (default ``True``); ``False`` keeps every stored channel.
        allow_silent: Return silent audio instead of raising (default ``False``). Silent means a
            peak below :data:`SILENCE_PEAK_DBFS` (-120 dBFS).

    Shape:
        Returns ``(1, time)`` if ``mono`` else ``(channels, time)``, with
        ``time = ceil(frames * sample_rate / file_rate)``.

    Returns:
        float32 CPU tensor.

    Raises:
        AudioError: The file is missing, a directory, unreadable/corrupt or in an unknown format
            (soundfile's error text is included), empty (0 samples), contains NaN or Inf samples,
            or is silent and ``allow_silent`` is ``False``.
        ValueError: ``sample_rate`` is not a positive integer.

    Example:
        >>> x = load_audio("vocal_48k_stereo.wav")  # doctest: +SKIP
        >>> x.shape, x.dtype  # doctest: +SKIP
        (torch.Size([1, 551250]), torch.float32)
        >>> y = chain(x.unsqueeze(0))  # (batch, channels, time)  # doctest: +SKIP
    """
    sample_rate = _positive_int(sample_rate, "sample_rate")
    _check_readable(path)
    try:
        data, file_rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as err:
        raise AudioError(path, _sf_problem(err)) from err
    frames, channels = data.shape
    if frames == 0:
        raise AudioError(path, f"empty: 0 samples ({channels} channel(s) at {file_rate} Hz)")
    finite = np.isfinite(data)
    if not finite.all():
        n_nan = int(np.isnan(data).sum())
        n_inf = int(data.size - finite.sum()) - n_nan
        first = int(np.argmin(finite.all(axis=1)))
        raise AudioError(
            path,
            f"contains non-finite samples ({n_nan} NaN, {n_inf} Inf; first at sample {first}, "
            f"{first / file_rate:.3f} s)",
        )
    x = torch.from_numpy(np.ascontiguousarray(data.T))  # (channels, time)

    threshold = 10.0 ** (SILENCE_PEAK_DBFS / 20.0)
    peak = float(x.abs().max())
    if not allow_silent and peak < threshold:
        raise AudioError(path, f"silent (peak {_dbfs(peak)}, threshold {SILENCE_PEAK_DBFS:g} dBFS)")
    if mono and channels > 1:
        x = x.mean(dim=0, keepdim=True)
        mixed_peak = float(x.abs().max())
        if not allow_silent and mixed_peak < threshold:
            raise AudioError(
                path,
                f"silent after averaging {channels} channels to mono (peak {_dbfs(peak)} before, "
                f"{_dbfs(mixed_peak)} after: the channels cancel); pass mono=False to keep them",
            )
    if file_rate != sample_rate:
        x = _resample(x, int(file_rate), sample_rate)
    return x


# ----------------------------------------------------------------------------------------------
# Writing


def check_output_path(path: PathLike, inputs: Union[PathLike, Iterable[PathLike]] = ()) -> Path:
    """Check that ``path`` may be written, before any work is done to produce it.

    The rules every writer in this module applies: the path is none of ``inputs`` (compared after
    resolving symlinks and ``..``, and with ``os.path.samefile`` for hard links), not a directory,
    and its parent directory exists (it is not created, so a mistyped path fails instead of making
    stray directories). Call it early to fail before minutes of computation.

    Args:
        path: The file to be written.
        inputs: Paths the run reads from (or a single path).

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        AudioError: ``path`` is one of ``inputs``, a directory, or in a missing directory.

    Example:
        >>> check_output_path("out.wav", inputs=["dry.wav"])  # doctest: +SKIP
        PosixPath('out.wav')
    """
    target = Path(os.fspath(path))
    if isinstance(inputs, (str, bytes, os.PathLike)):  # a single path, not an iterable of paths
        inputs = [inputs]
    real = os.path.realpath(target)
    for inp in inputs:
        same = os.path.realpath(os.fspath(inp)) == real
        if not same and target.exists() and os.path.exists(inp):
            same = os.path.samefile(target, inp)  # hard links, case-insensitive file systems
        if same:
            raise AudioError(path, f"refusing to overwrite an input file (it is the input {os.fspath(inp)!r})")
    if target.is_dir():
        raise AudioError(path, "is a directory; expected a file path to write")
    parent = target.parent
    if not parent.is_dir():
        raise AudioError(path, f"parent directory {os.fspath(parent)!r} does not exist (it is not created)")
    return target


def fsync_dir(directory: PathLike) -> None:
    """Flush a directory's entries to disk, so that a file renamed into it survives a power cut.

    ``os.replace`` changes the directory, and POSIX makes that durable only once the directory
    itself is synced. Best effort: does nothing where directories cannot be opened (Windows) or
    synced.

    Args:
        directory: The directory that received a renamed file.
    """
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(target: Path, display: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Write through ``write(fileobj)`` to a temporary file next to ``target``, then replace."""
    directory = target.parent
    while True:
        tmp = directory / f".{target.name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            # Mode 0o666 filtered by the umask: the result has ordinary permissions, unlike mkstemp.
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:  # pragma: no cover - 48-bit random name collision
            continue
        except OSError as err:
            problem = f"cannot create a temporary file in {os.fspath(directory)!r} ({err})"
            raise AudioError(display, problem) from err
    try:
        with os.fdopen(fd, "w+b") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, (sf.SoundFileError, RuntimeError, OSError)) and not isinstance(err, AudioError):
            raise AudioError(display, f"writing failed ({type(err).__name__}: {err})") from err
        raise
    fsync_dir(directory)


def atomic_write(
    path: PathLike, write: Callable[[IO[bytes]], None], *, inputs: Union[PathLike, Iterable[PathLike]] = ()
) -> None:
    """Write a file atomically through ``write(fileobj)``: all of it or nothing.

    ``write`` gets a binary file object open on a hidden temporary file in ``path``'s directory;
    when it returns, the file is flushed, ``fsync``-ed and ``os.replace``-d over ``path`` (then
    the directory is synced). If ``write`` raises, the temporary file is removed and an existing
    ``path`` is left untouched. The file is created with ordinary permissions (``0o666`` less the
    umask). :func:`check_output_path` is applied first.

    Args:
        path: Output file.
        write: Writes the whole contents to the file object it is given (it may seek).
        inputs: Paths the run read from (or a single path); writing to one raises.

    Raises:
        AudioError: ``path`` is refused by :func:`check_output_path`, or creating, writing or
            replacing the file fails with an ``OSError`` (the message names ``path``). Other
            exceptions from ``write`` propagate unchanged.

    Example:
        >>> atomic_write("prior.npz", prior.save, inputs=["collection.json"])  # doctest: +SKIP
    """
    _atomic_write(check_output_path(path, inputs), path, write)


@contextmanager
def atomic_outputs(
    paths: Iterable[PathLike], *, inputs: Union[PathLike, Iterable[PathLike]] = ()
) -> Iterator[List[Path]]:
    """Write several files together: each appears complete, or none changes.

    Yields one temporary path per target (a hidden name in the target's directory, not yet
    created) for the caller to write, e.g. with a streaming writer. When the block ends normally,
    each temporary file is ``fsync``-ed and ``os.replace``-d over its target, then the directories
    are synced. When it raises, every temporary file is removed and no target is touched. A
    temporary file the block did not create raises :class:`AudioError` (and no target changes).

    Args:
        paths: The files to write; each is checked with :func:`check_output_path` first.
        inputs: Paths the run read from (or a single path); writing to one raises.

    Raises:
        AudioError: a target is refused by :func:`check_output_path`, a temporary file is
            missing at the end, or syncing or replacing fails.

    Example:
        >>> with atomic_outputs(["a.wav", "b.wav"]) as (tmp_a, tmp_b):  # doctest: +SKIP
        ...     sf.write(tmp_a, x, 44100, format="WAV"); sf.write(tmp_b, y, 44100, format="WAV")
    """
    targets = [check_output_path(p, inputs) for p in paths]
    tmps = [t.with_name(f".{t.name}.{uuid.uuid4().hex[:12]}.tmp") for t in targets]
    try:
        yield list(tmps)
        for tmp, target in zip(tmps, targets):
            if not tmp.is_file():
                raise AudioError(target, "was not written (its temporary file is missing)")
            try:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            except OSError as err:
                raise AudioError(target, f"writing failed ({type(err).__name__}: {err})") from err
        for tmp, target in zip(tmps, targets):
            try:
                os.replace(tmp, target)
            except OSError as err:
                raise AudioError(target, f"replacing failed ({type(err).__name__}: {err})") from err
        for directory in {t.parent for t in targets}:
            fsync_dir(directory)
    finally:
        for tmp in tmps:  # gone after a replace; left over after an error
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _output_format(path: PathLike) -> str:
    ext = Path(os.fspath(path)).suffix.lower().lstrip(".")
    fmt = _EXTENSION_FORMATS.get(ext, ext.upper())
    if not ext or fmt not in sf.available_formats():
        raise AudioError(path, f"unknown audio file extension {('.' + ext) if ext else '(none)'!r}")
    return fmt


def save_audio(
    path: PathLike,
    audio: Union[torch.Tensor, np.ndarray],
    sample_rate: int,
    *,
    subtype: str | None = None,
    inputs: Iterable[PathLike] = (),
) -> None:
    """Write ``(channels, time)`` audio atomically, refusing anything it cannot store exactly.

    The container comes from the extension (``.wav``, ``.flac``, ``.ogg``, ...). Default subtypes:
    ``FLOAT`` (32-bit float) for WAV, so any finite value, including peaks above full scale, is
    stored without clipping; ``PCM_24`` for FLAC (which has no float mode); otherwise soundfile's
    default for the container. For every subtype other than ``FLOAT``/``DOUBLE`` (fixed-point PCM
    and the lossy codecs), samples outside [-1, 1] raise instead of being clipped or wrapped; scale
    explicitly (e.g. :func:`loudness_normalize`) or write float WAV.

    The write is atomic: the data goes to a hidden temporary file in the target's directory, is
    flushed and ``fsync``-ed, then ``os.replace``-d over ``path`` (then the directory is synced).
    On any failure the temporary file is removed and an existing ``path`` is left untouched. The
    parent directory must already exist (it is not created, so a mistyped path fails instead of
    making stray directories). A symlink at ``path`` is replaced by a regular file.

    Args:
        path: Output file.
        audio: Float samples ``(channels, time)`` with full scale 1.0, a tensor (any device; it is
            detached and copied, never modified) or an ndarray.
        sample_rate: Sample rate to record in the file (Hz).
        subtype: libsndfile subtype, e.g. ``"FLOAT"``, ``"PCM_24"``, ``"PCM_16"``
            (default ``None``: by container, as above).
        inputs: Paths this run read from (a single path is also accepted). Writing to any of
            them (compared after resolving symlinks and ``..``, and with ``os.path.samefile``)
            raises and leaves it untouched.

    Shape:
        audio: ``(channels, time)``.

    Raises:
        AudioError: ``path`` is one of ``inputs``, a directory, in a missing directory or has an
            unknown extension; the subtype does not suit the container; the audio contains NaN/Inf
            or exceeds full scale for a bounded subtype; libsndfile fails to write.
        ValueError: ``audio`` is not a 2-D floating-point array, or ``sample_rate`` is not a
            positive integer.

    Example:
        >>> save_audio("wet.wav", y[0], 44100, inputs=["dry.wav"])  # doctest: +SKIP
    """
    sample_rate = _positive_int(sample_rate, "sample_rate")
    if isinstance(audio, torch.Tensor):
        if not audio.is_floating_point():
            raise ValueError(f"expected floating-point audio, got dtype {audio.dtype}")
        arr = audio.detach().cpu()
        if arr.dtype not in (torch.float32, torch.float64):
            arr = arr.float()
        arr = arr.numpy()
    elif isinstance(audio, np.ndarray):
        if not np.issubdtype(audio.dtype, np.floating):
            raise ValueError(f"expected floating-point audio, got dtype {audio.dtype}")
        arr = audio if audio.dtype in (np.float32, np.float64) else audio.astype(np.float32)
    else:
        raise ValueError(f"expected a torch.Tensor or numpy.ndarray, got {type(audio).__name__}")
    if arr.ndim != 2:
        raise ValueError(f"expected (channels, time), got shape {tuple(arr.shape)}")
    channels, frames = arr.shape
    if channels == 0:
        raise ValueError(f"expected at least one channel, got shape {tuple(arr.shape)}")

    target = check_output_path(path, inputs)
    fmt = _output_format(path)
    subtype = subtype or _DEFAULT_SUBTYPES.get(fmt) or sf.default_subtype(fmt)
    if subtype is None:
        raise AudioError(path, f"{fmt} has no default subtype; pass subtype= explicitly")
    subtype = subtype.upper()
    if not sf.check_format(fmt, subtype):
        valid = ", ".join(sorted(sf.available_subtypes(fmt)))
        raise AudioError(path, f"subtype {subtype!r} is not valid for {fmt} (valid: {valid})")

    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        raise AudioError(
            path, f"refusing to write non-finite samples ({n_nan} NaN, {arr.size - int(finite.sum()) - n_nan} Inf)"
        )
    if subtype not in _UNBOUNDED_SUBTYPES and arr.size:
        peak = float(np.abs(arr).max())
        if peak > 1.0:
            raise AudioError(
                path,
                f"peak {peak:.4g} ({_dbfs(peak)}) exceeds full scale, which subtype {subtype} would clip; "
                f"scale the audio explicitly or write FLOAT (e.g. a .wav)",
            )

    frames_first = np.ascontiguousarray(arr.T)  # soundfile wants (time, channels)

    def write(f: IO[bytes]) -> None:
        with sf.SoundFile(f, mode="w", samplerate=sample_rate, channels=channels, format=fmt, subtype=subtype) as out:
            out.write(frames_first)

    _atomic_write(target, path, write)


def atomic_write_text(path: PathLike, text: str, inputs: Iterable[PathLike] = (), *, encoding: str = "utf-8") -> None:
    """Write a text file (e.g. JSON results) atomically, with the same rules as :func:`save_audio`.

    Temporary file in the same directory, ``fsync``, ``os.replace``; refuses any path in
    ``inputs``; the parent directory must exist. The text is encoded as given (no newline
    translation).

    Args:
        path: Output file.
        text: Full contents.
        inputs: Paths this run read from (or a single path); writing to one raises.
        encoding: Text encoding (default ``"utf-8"``).

    Raises:
        AudioError: ``path`` is one of ``inputs``, a directory or in a missing directory, or the
            write fails. (:class:`AudioError` is vocalfx's file error for any file.)

    Example:
        >>> atomic_write_text("params.json", json.dumps(params, indent=2), inputs=[preset_path])  # doctest: +SKIP
    """
    target = check_output_path(path, inputs)
    data = text.encode(encoding)
    _atomic_write(target, path, lambda f: f.write(data))


# ----------------------------------------------------------------------------------------------
# Loudness


def loudness_normalize(audio: torch.Tensor, sample_rate: int, target_lufs: float = -18.0) -> tuple[torch.Tensor, float]:
    """Scale audio to an integrated loudness of ``target_lufs`` (ITU-R BS.1770-4, via pyloudnorm).

    One measurement, one gain: ``gain_db = target_lufs - L(audio)``, ``y = audio * 10**(gain_db/20)``
    - as pyloudnorm's ``normalize.loudness`` and the DiffVox pipeline (-18 LUFS) do. The measurement
    uses K-weighting, 400 ms blocks with 75 % overlap, the -70 LUFS absolute and -10 LU relative
    gates, and BS.1770 channel weights (1.0 for the first three channels, 1.41 for the 4th and 5th).
    Because the gates move with the gain, ``L(y)`` equals ``target_lufs`` except when some blocks
    lie near the -70 LUFS absolute gate. The result is not clipped and may exceed full scale.

    The gain is measured on a detached float64 copy and applied as a constant, so gradients flow
    through ``y`` with respect to ``audio`` as through a fixed gain. ``audio`` is not modified.

    Args:
        audio: Float samples ``(channels, time)``, 1 to 5 channels, at least 0.4 s long.
        sample_rate: Sample rate (Hz).
        target_lufs: Target integrated loudness (LUFS). Default -18.0, DiffVox's level.

    Shape:
        audio: ``(channels, time)``; returns the same shape.

    Returns:
        ``(y, gain_db)``: the scaled audio (same dtype and device as ``audio``) and the gain applied
        (dB).

    Raises:
        ValueError: ``audio`` is not a 2-D float tensor of 1 to 5 channels, contains NaN/Inf, is
            shorter than one 400 ms block, or is silent (no block above the -70 LUFS gate, so its
            loudness is -inf).

    Example:
        >>> x = load_audio("dry.wav")  # doctest: +SKIP
        >>> x18, gain_db = loudness_normalize(x, 44100)  # doctest: +SKIP
    """
    loudness = integrated_loudness(audio, sample_rate)
    if not math.isfinite(loudness):
        raise ValueError(
            "audio is silent for BS.1770 (no 400 ms block above the -70 LUFS absolute gate): loudness is "
            f"{loudness} LUFS, so no gain reaches {target_lufs} LUFS"
        )
    gain_db = float(target_lufs) - loudness
    return audio * (10.0 ** (gain_db / 20.0)), gain_db


def integrated_loudness(audio: torch.Tensor, sample_rate: int) -> float:
    """Integrated loudness (LUFS) of ``(channels, time)`` audio: ITU-R BS.1770-4 via pyloudnorm.

    The measurement :func:`loudness_normalize` uses (K-weighting, 400 ms blocks, 75 % overlap,
    -70 LUFS absolute and -10 LU relative gates), on a detached float64 copy.

    Returns:
        The loudness in LUFS; ``-inf`` for audio with no block above the absolute gate.

    Raises:
        ValueError: not a 2-D float tensor of 1 to 5 channels, NaN/Inf samples, or shorter than
            one 400 ms block.
    """
    import pyloudnorm

    sample_rate = _positive_int(sample_rate, "sample_rate")
    if not isinstance(audio, torch.Tensor) or audio.dim() != 2:
        shape = tuple(audio.shape) if hasattr(audio, "shape") else type(audio).__name__
        raise ValueError(f"expected (channels, time), got shape {shape}")
    if not audio.is_floating_point():
        raise ValueError(f"expected floating-point audio, got dtype {audio.dtype}")
    channels, frames = audio.shape
    if not 1 <= channels <= 5:
        raise ValueError(
            f"BS.1770 loudness is defined for 1 to 5 channels, got {channels} (shape {tuple(audio.shape)})"
        )
    # pyloudnorm rejects frames < block * rate (a float product); mirror it exactly.
    min_frames = math.ceil(_LOUDNESS_BLOCK_S * sample_rate)
    if frames < min_frames:
        raise ValueError(
            f"audio is {frames / sample_rate:.3f} s ({frames} samples) long; BS.1770 integrated loudness "
            f"needs at least one {_LOUDNESS_BLOCK_S:g} s block ({min_frames} samples at {sample_rate} Hz)"
        )
    data = audio.detach().to("cpu", torch.float64).numpy().T  # (time, channels) for pyloudnorm
    if not np.isfinite(data).all():
        raise ValueError("audio contains NaN or Inf samples; its loudness is undefined")
    meter = pyloudnorm.Meter(sample_rate, block_size=_LOUDNESS_BLOCK_S)
    with np.errstate(divide="ignore", invalid="ignore"):
        loudness = float(meter.integrated_loudness(data))
    return loudness
