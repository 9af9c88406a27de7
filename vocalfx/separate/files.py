"""Separation from file to file, streamed: :func:`separate_file`.

The mix is read from disk chunk by chunk and the stems are written as the chunks finish, so memory
holds one chunk (plus one overlap) whatever the file's length. Both stems go to hidden temporary
files beside their targets that replace ``<stem>_vocals.wav`` and ``<stem>_accompaniment.wav`` only
when both are complete (:func:`vocalfx.io.atomic_outputs`); an error or Ctrl-C leaves no partial
file and no existing stem changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np
import soundfile as sf
import torch

from ..errors import VocalfxError
from ..io import atomic_outputs, audio_info, check_output_path
from .base import SeparationError, Separator, get_separator
from .chunks import iter_separate

__all__ = ["separate_file", "stem_paths", "SeparatedFiles", "STEM_SUBTYPE"]

#: Subtype of the stems: 32-bit float WAV stores any finite sample, so nothing is clipped.
STEM_SUBTYPE = "FLOAT"

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class SeparatedFiles:
    """What :func:`separate_file` wrote.

    Attributes:
        vocals: The vocal stem's path.
        accompaniment: The accompaniment stem's path.
        sample_rate: Rate of the mix and the stems (Hz).
        channels: Channel count of the mix and the stems.
        frames: Samples per channel.
        backend: The backend and its settings (:meth:`Separator.describe`).
        peak: Largest absolute sample of either stem (above 1.0: beyond full scale, stored as float).
    """

    vocals: Path
    accompaniment: Path
    sample_rate: int
    channels: int
    frames: int
    backend: str
    peak: float

    @property
    def duration_s(self) -> float:
        """Length of the mix in seconds."""
        return self.frames / self.sample_rate


def stem_paths(mix: PathLike, out_dir: PathLike) -> Tuple[Path, Path]:
    """Where :func:`separate_file` writes the stems of ``mix``: ``(vocals, accompaniment)``.

    Example:
        >>> stem_paths("songs/a.flac", "stems")
        (PosixPath('stems/a_vocals.wav'), PosixPath('stems/a_accompaniment.wav'))
    """
    stem, out = Path(mix).stem, Path(out_dir)
    return out / f"{stem}_vocals.wav", out / f"{stem}_accompaniment.wav"


def separate_file(
    mix: PathLike,
    out_dir: PathLike,
    backend: Union[str, Separator] = "auto",
    *,
    chunk_seconds: Optional[float] = None,
    overlap_seconds: Optional[float] = None,
    progress: bool = False,
    **options: Any,
) -> SeparatedFiles:
    """Split an audio file into its vocal and accompaniment stems, streaming from disk to disk.

    Writes :func:`stem_paths` ``(mix, out_dir)``: 32-bit float WAV at the mix's rate and channel
    count (``vocals + accompaniment == mix`` for the classical backend). ``out_dir`` is created if
    missing. Memory holds one chunk plus one overlap; both stems appear together when complete, or
    not at all (an existing stem is never left half-written).

    Args:
        mix: The song, any format libsndfile reads; mono or stereo (any channel count for
            backends that take any).
        out_dir: Directory for the stems (created, with its parents, if missing).
        backend: ``"auto"`` (default; see :func:`vocalfx.separate.separate`), a registered name, or a
            :class:`Separator` instance.
        chunk_seconds: Longest stretch separated at once (s); default the backend's.
        overlap_seconds: Cross-fade between chunks (s); default the backend's.
        progress: Show a progress bar (stderr).
        **options: Settings of the backend, e.g. ``model="htdemucs", model_dir="~/models"``.

    Returns:
        A :class:`SeparatedFiles` naming the stems and what was done.

    Raises:
        AudioError: ``mix`` is missing or unreadable, or a stem path is refused (it is the mix,
            or a directory).
        SeparationError: the mix is empty, has NaN/Inf samples or more channels than the backend
            takes; ``out_dir`` is a file; the backend or its options are unknown or its model is
            missing; the backend produced non-finite samples; reading or writing failed.

    Example:
        >>> res = separate_file("song.flac", "stems")  # doctest: +SKIP
        >>> res.vocals, res.backend  # doctest: +SKIP
        (PosixPath('stems/song_vocals.wav'), 'classical (...)')
    """
    info = audio_info(mix)  # one-line errors for missing and unreadable files
    if info.frames == 0:
        raise SeparationError(f"{mix}: contains no samples")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise SeparationError(f"{out}: exists and is not a directory (the stems need a directory)")
    out.mkdir(parents=True, exist_ok=True)
    targets = stem_paths(mix, out)
    for t in targets:
        check_output_path(t, [mix])  # before a backend loads its model
    sep = get_separator(backend, **options)
    if sep.channels is not None and info.channels > sep.channels:
        raise SeparationError(f"{mix}: {info.channels} channels; the {sep.name} backend takes at most {sep.channels}")

    peak = 0.0
    try:
        with atomic_outputs(targets, inputs=[mix]) as tmps, sf.SoundFile(os.fspath(mix)) as src:
            writers = []
            try:
                for t in tmps:
                    writers.append(
                        sf.SoundFile(
                            os.fspath(t),
                            mode="w",
                            samplerate=info.sample_rate,
                            channels=info.channels,
                            format="WAV",
                            subtype=STEM_SUBTYPE,
                        )
                    )
                for _, vocals, accomp in iter_separate(
                    lambda start, stop: _read_block(src, mix, start, stop),
                    info.frames,
                    info.sample_rate,
                    sep,
                    chunk_seconds=chunk_seconds,
                    overlap_seconds=overlap_seconds,
                    progress=progress,
                    desc=f"separating {Path(mix).name}",
                ):
                    if not (torch.isfinite(vocals).all() and torch.isfinite(accomp).all()):
                        raise SeparationError(f"{mix}: the {sep.name} backend produced non-finite samples")
                    peak = max(peak, float(vocals.abs().amax()), float(accomp.abs().amax()))
                    writers[0].write(vocals.T.numpy())
                    writers[1].write(accomp.T.numpy())
            finally:
                for w in writers:
                    w.close()
    except VocalfxError:
        raise
    except (RuntimeError, sf.SoundFileError, OSError) as err:
        raise SeparationError(f"{mix}: separation failed ({type(err).__name__}: {err})") from err
    return SeparatedFiles(targets[0], targets[1], info.sample_rate, info.channels, info.frames, sep.describe(), peak)


def _read_block(src: sf.SoundFile, mix: PathLike, start: int, stop: int) -> torch.Tensor:
    """Samples ``[start, stop)`` of an open file as float32 ``(channels, time)``; NaN/Inf refused."""
    src.seek(start)
    block = src.read(stop - start, dtype="float32", always_2d=True)
    if not np.isfinite(block).all():
        rate = src.samplerate
        raise SeparationError(
            f"{mix}: contains NaN or Inf samples (between {start / rate:.2f} s and {stop / rate:.2f} s)"
        )
    return torch.from_numpy(block.T.copy())
