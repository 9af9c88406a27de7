"""What the command modules share: the CLI's own error, the one-line failure, small helpers.

Nothing here imports torch at module level (the parser is built from these modules).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Optional

from ..errors import VocalfxError

if TYPE_CHECKING:
    from ..io import AudioInfo
    from ..preset import Preset

__all__ = ["Subparsers", "CLIError", "MODEL_DIR_HINT", "fail", "resolve_preset", "conversion_notes", "print_notes", "check_at_least", "existing_files"]

#: What ``ArgumentParser.add_subparsers()`` returns, which each command's ``register`` extends
#: (argparse gives its class no public name).
Subparsers = Any


class CLIError(VocalfxError):
    """A problem with the command line that the parser cannot see (e.g. ``--steps -1``, two
    outputs at one path); printed as one line, exit code 1."""


#: Appended to a separation backend's missing-model error, which names the API's ``model_dir``.
MODEL_DIR_HINT = "; on the command line: --model-dir DIR"


def fail(msg: str) -> int:
    """Print ``vocalfx: error: <msg>`` on stderr; returns exit code 1."""
    print(f"vocalfx: error: {msg}", file=sys.stderr)
    return 1


def resolve_preset(spec: str, index: Optional[int] = None) -> "Preset":
    """:meth:`Preset.resolve`, with a missing or out-of-range index explained in terms of ``--index``."""
    from ..preset import Preset, PresetIndexError

    try:
        return Preset.resolve(spec, index)
    except PresetIndexError as e:
        if e.index is None:
            raise CLIError(f"{spec}: a collection of {e.count} presets; choose one with --index N") from None
        raise CLIError(f"{spec}: --index {e.index} out of range (0..{e.count - 1})") from None


def conversion_notes(path: str, info: "AudioInfo", sample_rate: int, *, mono: bool = False) -> List[str]:
    """What loading ``path`` at ``sample_rate`` (averaged to mono if ``mono``) changes, as notes."""
    notes = []
    if info.sample_rate != sample_rate:
        notes.append(f"{path}: resampled {info.sample_rate} -> {sample_rate} Hz")
    if mono and info.channels > 1:
        notes.append(f"{path}: {info.channels} channels averaged to mono")
    return notes


def print_notes(notes: List[str]) -> None:
    """Each note as ``note: ...`` on stderr."""
    for n in notes:
        print(f"note: {n}", file=sys.stderr)


def check_at_least(flag: str, value: Optional[float], lowest: float) -> None:
    """Refuse ``flag`` below ``lowest`` (``None``, not given, passes)."""
    if value is not None and value < lowest:
        raise CLIError(f"{flag} must be >= {lowest:g}, got {value}")


def existing_files(*paths: Optional[str]) -> List[Path]:
    """The given paths that name existing files (e.g. a preset spec that may be a shipped name)."""
    return [Path(p) for p in paths if p and Path(p).is_file()]
