"""``vocalfx report PRESET --dry D --reference R -o REPORT.html``: the HTML report of an existing match."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ._common import CLIError, Subparsers, command_line, existing_files, print_notes, resolve_preset, settings_of

__all__ = ["register", "run"]


def _read_match_json(path: Optional[str]) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """``(history, report)`` from a ``vocalfx match --report FILE.json``; empty without one."""
    if not path:
        return [], {}
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CLIError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("history"), list) or not isinstance(doc.get("stats"), dict):
        raise CLIError(f'{path}: not a `vocalfx match --report` JSON file (no "history" list and "stats" object)')
    return doc["history"], doc["stats"]


def _start(spec: Optional[str], recorded: str, start_raw: Any = None) -> Tuple[Any, str, List[str]]:
    """The starting preset to show, its label, and notes: ``--start``, else what the match recorded
    (its start's raw values, which matches save since ``extra.match.start_raw``, else its ``init``)."""
    from ..errors import VocalfxError
    from ..preset import Preset
    from ..prior import GaussianPrior

    if spec == "none":
        return None, "", []
    if spec is None and start_raw is not None:
        return Preset(start_raw, name=recorded or "start"), recorded or "start", []
    if spec is None and recorded.startswith("preset "):
        name = recorded[len("preset ") :]
        try:
            return Preset.resolve(name), recorded, []
        except VocalfxError:  # a user preset the match read from a file we were not given
            return None, "", [f"the match started from {recorded}, which is not a shipped preset: give it with --start"]
    if spec is None and recorded and recorded != "prior mean":
        return None, "", [f"the match started from {recorded}; give that preset with --start to compare with it"]
    if spec is None or spec == "mean":
        mean = GaussianPrior.default().mean.double().numpy()
        return Preset(mean, name="prior mean"), "prior mean" + (" (shipped prior)" if not recorded else ""), []
    p = resolve_preset(spec)
    return p, p.name or spec, []


def run(a: argparse.Namespace) -> int:
    import torch

    from ..io import check_output_path, load_audio
    from ..params import SAMPLE_RATE
    from ..report import write_match_report

    if a.threads:
        torch.set_num_threads(a.threads)
    out = Path(a.out)
    inputs = [Path(p) for p in (a.dry, a.reference, a.output, a.match_json) if p] + existing_files(a.preset, a.start)
    check_output_path(out, inputs)
    if out.suffix.lower() not in (".html", ".htm"):
        raise CLIError(f"{out}: the report is an HTML file; give a name ending in .html")
    if a.excerpt_seconds <= 0:
        raise CLIError(f"--excerpt-seconds must be > 0, got {a.excerpt_seconds}")
    preset = resolve_preset(a.preset)
    history, stats = _read_match_json(a.match_json)
    stats = stats or dict(preset.extra.get("match") or {})
    start, label, notes = _start(
        a.start, str(stats.get("init", "")), (preset.extra.get("match") or {}).get("start_raw")
    )
    dry = load_audio(a.dry, sample_rate=SAMPLE_RATE)
    reference = load_audio(a.reference, sample_rate=SAMPLE_RATE, mono=False)
    output = load_audio(a.output, sample_rate=SAMPLE_RATE, mono=False) if a.output else None
    if output is not None and output.shape[-1] != dry.shape[-1]:
        notes.append(
            f"{a.output} is {output.shape[-1] / SAMPLE_RATE:.2f} s and {a.dry} {dry.shape[-1] / SAMPLE_RATE:.2f} s: "
            "is it the output of this dry?"
        )
    print_notes(notes)
    names = {
        "dry": a.dry,
        "reference": a.reference,
        "output": a.output or f"{a.dry} through {a.preset} (rendered for the report)",
    }
    info = write_match_report(
        out,
        preset=preset,
        dry=dry,
        reference=reference,
        sample_rate=SAMPLE_RATE,
        output=output,
        start_preset=start,
        start_label=label,
        history=history,
        stats=stats,
        command=command_line(a, ("preset",)),
        settings={"preset source": preset.source, **settings_of(a)},
        excerpt_seconds=a.excerpt_seconds,
        names=names,
        inputs=inputs,
    )
    print(f"wrote {out} ({info.nbytes / 1e6:.2f} MB: {info.figures} figures, {info.players} audio players)")
    return 0


def register(sub: Subparsers) -> None:
    r = sub.add_parser(
        "report",
        help="write the HTML report of an existing match (preset, figures, spectra, levels, audio players)",
        description="Write one self-contained HTML page about a matched preset: its parameters in units next to "
        "the starting preset, the EQ and reverb-EQ responses, the compressor/expander curve, delay, reverb and "
        "panning, long-term spectra and loudness of the dry, output and reference, the loss curve (with "
        "--match-json) and audio players for excerpts of each. See docs/guide/matching.md.",
    )
    add = r.add_argument
    add("preset", help="the matched preset (JSON written by `vocalfx match`, or a shipped preset name)")
    add("--dry", required=True, help="the dry vocal that was matched (averaged to mono, resampled to 44.1 kHz)")
    add("--reference", required=True, help="the reference vocal it was matched to")
    add("--output", default=None, help="the processed vocal (default: render the dry at -18 LUFS through PRESET)")
    add(
        "--match-json",
        default=None,
        metavar="FILE",
        help="the `vocalfx match --report FILE.json` of the run: adds the loss curve",
    )
    add(
        "--start",
        default=None,
        metavar="PRESET",
        help="preset to compare with: a file, a shipped name, 'mean' (the shipped prior's mean) or 'none' "
        "(default: where the match recorded that it started)",
    )
    add("--excerpt-seconds", type=float, default=12.0, help="length of each audio excerpt in s (default: 12)")
    add("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    add("-o", "--out", required=True, help="the HTML file to write")
    r.set_defaults(func=run)
