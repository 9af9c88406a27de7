"""``vocalfx separate MIX -o DIR``: write a mix's vocal and accompaniment stems.

The mix is read from disk chunk by chunk and the stems are written as the chunks finish, so memory
holds one chunk (plus one overlap) whatever the file's length. Both stems go to hidden temporary
files in DIR that replace ``<stem>_vocals.wav`` and ``<stem>_accompaniment.wav`` only when both are
complete; an error or Ctrl-C leaves no partial file and no existing stem changed.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from pathlib import Path
from typing import List

__all__ = ["register", "cmd_separate", "stem_paths"]

#: Output subtype: 32-bit float WAV stores any finite sample, so nothing is clipped.
_SUBTYPE = "FLOAT"


class _Error(Exception):
    pass


def stem_paths(mix: Path, out_dir: Path) -> tuple:
    """Where ``vocalfx separate`` writes the stems of ``mix``: ``(vocals, accompaniment)``."""
    return out_dir / f"{mix.stem}_vocals.wav", out_dir / f"{mix.stem}_accompaniment.wav"


def _options(a: argparse.Namespace) -> dict:
    opts = {}
    if a.model:
        opts["model"] = a.model
    if a.model_dir:
        opts["model_dir"] = a.model_dir
    return opts


def cmd_separate(a: argparse.Namespace) -> int:
    import numpy as np
    import soundfile as sf
    import torch

    from ..errors import VocalfxError
    from ..io import _check_output_path, _fsync_dir, audio_info
    from . import get_separator, iter_separate

    if a.threads:
        torch.set_num_threads(a.threads)
    mix = Path(a.mix)
    info = audio_info(mix)  # one-line errors for missing and unreadable files
    if info.frames == 0:
        raise _Error(f"{mix}: contains no samples")
    out_dir = Path(a.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise _Error(f"{out_dir}: exists and is not a directory (-o takes a directory)")
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = stem_paths(mix, out_dir)
    for t in targets:
        _check_output_path(t, [mix])
    sep = get_separator(a.backend, **_options(a))
    if sep.channels is not None and info.channels > sep.channels:
        raise _Error(f"{mix}: {info.channels} channels; the {sep.name} backend takes at most {sep.channels}")

    tmps: List[Path] = [t.with_name(f".{t.name}.{uuid.uuid4().hex[:12]}.tmp") for t in targets]
    src = sf.SoundFile(str(mix))
    writers = []
    try:
        writers = [
            sf.SoundFile(str(tmp), mode="w", samplerate=info.sample_rate, channels=info.channels,
                         format="WAV", subtype=_SUBTYPE)
            for tmp in tmps
        ]

        def read(start: int, stop: int) -> "torch.Tensor":
            src.seek(start)
            block = src.read(stop - start, dtype="float32", always_2d=True)
            if not np.isfinite(block).all():
                raise _Error(f"{mix}: contains NaN or Inf samples (between {start / info.sample_rate:.2f} s "
                             f"and {stop / info.sample_rate:.2f} s)")
            return torch.from_numpy(block.T.copy())

        peak = 0.0
        for _, vocals, accomp in iter_separate(
            read, info.frames, info.sample_rate, sep, chunk_seconds=a.chunk_seconds,
            overlap_seconds=a.overlap_seconds, progress=not a.quiet, desc=f"separating {mix.name}",
        ):
            if not (torch.isfinite(vocals).all() and torch.isfinite(accomp).all()):
                raise _Error(f"{mix}: the {sep.name} backend produced non-finite samples")
            peak = max(peak, float(vocals.abs().amax()), float(accomp.abs().amax()))
            writers[0].write(vocals.T.numpy())
            writers[1].write(accomp.T.numpy())
        for w in writers:
            w.flush()
            w.close()
            with open(w.name, "rb+") as f:
                os.fsync(f.fileno())
        for tmp, target in zip(tmps, targets):
            os.replace(tmp, target)
        _fsync_dir(out_dir)
    except VocalfxError:
        raise
    except (RuntimeError, sf.SoundFileError, OSError) as err:
        raise _Error(f"{mix}: separation failed ({type(err).__name__}: {err})") from err
    finally:
        src.close()
        for w in writers:
            if not w.closed:
                w.close()
        for tmp in tmps:
            if tmp.exists():
                tmp.unlink()

    seconds = info.frames / info.sample_rate
    print(f"separated {mix} ({seconds:.1f} s, {info.channels} ch, {info.sample_rate} Hz) with {sep.describe()}")
    print(f"wrote {targets[0]} and {targets[1]} (32-bit float WAV)")
    if peak > 1.0:
        print(f"note: a stem peaks at {peak:.3f} (above full scale); stored as float, nothing was clipped",
              file=sys.stderr)
    return 0


def _run(a: argparse.Namespace) -> int:
    try:
        return cmd_separate(a)
    except _Error as e:
        from ..errors import VocalfxError

        raise VocalfxError(str(e)) from None


def register(sub) -> None:
    p = sub.add_parser(
        "separate",
        help="isolate the vocal of a full mix (writes vocal and accompaniment stems)",
        description=(
            "Split MIX into its vocal and its accompaniment and write DIR/<name>_vocals.wav and "
            "DIR/<name>_accompaniment.wav (32-bit float WAV, the mix's rate and channels; "
            "vocals + accompaniment = mix for the classical backend). Long files are processed in "
            "overlapping chunks with bounded memory. Backends: classical (default, no weights), "
            "demucs (needs `pip install 'vocalfx[separate]'` and local model files; never downloads)."
        ),
    )
    p.add_argument("mix", help="the song: an audio file (wav, flac, ...), mono or stereo")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the stems (created if missing)")
    p.add_argument("--backend", default="classical", help="separation backend (default: classical)")
    p.add_argument("--model", default=None, help="demucs: model name or signature (default htdemucs)")
    p.add_argument("--model-dir", default=None,
                   help="demucs: directory with the model files (else $VOCALFX_DEMUCS_DIR, the torch hub and HF caches)")
    p.add_argument("--chunk-seconds", type=float, default=None,
                   help="longest audio separated at once (s; default: the backend's, 60 for classical)")
    p.add_argument("--overlap-seconds", type=float, default=None,
                   help="cross-fade between chunks (s; default: the backend's, 4 for classical)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)
