"""What the command modules share: the CLI's own error, the one-line failure, small helpers.

Nothing here imports torch at module level (the parser is built from these modules).
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ..errors import VocalfxError

if TYPE_CHECKING:
    import torch

    from ..io import AudioInfo
    from ..matching import MatchResult
    from ..preset import Preset

__all__ = [
    "Subparsers",
    "CLIError",
    "MODEL_DIR_HINT",
    "fail",
    "resolve_preset",
    "conversion_notes",
    "print_notes",
    "check_at_least",
    "existing_files",
    "REPORT_SUFFIXES",
    "report_format",
    "command_line",
    "settings_of",
    "write_match_report_file",
]

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


#: What ``--report`` writes, by the file's suffix.
REPORT_SUFFIXES = {".json": "json", ".html": "html", ".htm": "html"}


def report_format(path: str) -> str:
    """``"json"`` or ``"html"`` for a ``--report`` path, by its suffix (checked before any work)."""
    kind = REPORT_SUFFIXES.get(Path(path).suffix.lower())
    if kind is None:
        raise CLIError(f"{path}: --report must end in .html/.htm (an HTML report) or .json (numbers and loss history)")
    return kind


def command_line(a: argparse.Namespace, positionals: Sequence[str]) -> str:
    """The command that is running, for a report: the process's own arguments when it is the
    ``vocalfx`` program, else the equivalent command rebuilt from ``a`` (every option spelled out)."""
    if Path(sys.argv[0]).name == "vocalfx":
        return shlex.join(["vocalfx", *sys.argv[1:]])
    words = ["vocalfx", str(a.command)] + [str(getattr(a, p)) for p in positionals]
    for key, value in vars(a).items():
        if key in ("func", "command", *positionals) or value is None or value is False:
            continue
        words.append("--" + key.replace("_", "-"))
        if value is not True:
            words.append(str(value))
    return shlex.join(words)


def settings_of(a: argparse.Namespace) -> Dict[str, Any]:
    """The parsed options (not the command function), for a report's settings table."""
    return {k: v for k, v in vars(a).items() if k not in ("func", "command")}


def _non_finite_as_text(x: object) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def write_match_report_file(
    a: argparse.Namespace,
    res: "MatchResult",
    *,
    reference: "torch.Tensor",
    start: Any,
    prior: Any,
    separated_with: Optional[str],
    output: Path,
    preset_out: Path,
    inputs: Sequence[Path],
) -> str:
    """``vocalfx match --report``: the JSON report (``.json``) or the HTML report (``.html``), from the
    reference the match used and its ``init`` and ``prior``; returns what was written."""
    from ..io import atomic_write_text, load_audio
    from ..preset import Preset
    from ..report import match_start_preset, write_result_report

    if report_format(a.report) == "json":
        doc = {
            "stats": res.stats.to_dict(),
            "history": res.history,
            "separation_backend": separated_with,
            "dry": str(a.dry),
            "reference": str(a.reference),
            "output": str(output),
            "preset": str(preset_out),
        }
        atomic_write_text(a.report, json.dumps(doc, indent=1, default=_non_finite_as_text) + "\n", inputs=inputs)
        return f"{a.report} (JSON)"
    names = {
        "dry": str(a.dry),
        "output": str(output),
        "reference": str(a.reference) + (f" (vocal isolated with {separated_with})" if separated_with else ""),
    }
    info = write_result_report(
        a.report,
        res,
        dry=load_audio(a.dry, sample_rate=res.sample_rate),
        reference=reference,
        start_preset=(
            Preset(res.start, name=res.stats.init)
            if res.start is not None
            else match_start_preset(start, prior, name=res.stats.init)
        ),
        command=command_line(a, ("dry", "reference")),
        settings=settings_of(a),
        names=names,
        inputs=inputs,
    )
    return f"{a.report} (HTML, {info.nbytes / 1e6:.1f} MB, {info.figures} figures, {info.players} players)"
