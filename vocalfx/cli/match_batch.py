"""``vocalfx match-batch PAIRS.csv|FOLDER [--reference REF] -o OUT``: :func:`vocalfx.batch.match_batch`."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..defaults import CHUNK_SECONDS, MATCH_ALPHA, MATCH_ENCODER, MATCH_INIT, MATCH_LR, MATCH_STEPS
from ._common import CLIError, Subparsers
from ._engine import add_engine_arguments, terminate_as_interrupt

__all__ = ["register", "run"]


def run(a: argparse.Namespace) -> int:
    from ..batch import folder_items, load_pairs, match_batch

    source = Path(a.source)
    if source.is_dir():
        if not a.reference:
            raise CLIError(f"{source}: a folder of dry takes needs --reference REF (the one reference they all match)")
        items = folder_items(source, a.reference)
    elif a.reference:
        raise CLIError(
            f"--reference is only used when SOURCE is a folder; {source} is a pairs list (its reference column)"
        )
    elif not source.is_file():
        raise CLIError(f"{source}: no such file or folder")
    else:
        items = load_pairs(source)
    settings = {
        "encoder": a.encoder,
        "alpha": a.alpha,
        "steps": a.steps,
        "lr": a.lr,
        "init": a.init,
        "chunk_seconds": a.chunk_seconds,
        "level": a.level,
        "groups": a.only,
        "strength": a.strength,
    }
    if not a.quiet:
        print(f"{len(items)} item(s) -> {a.output} (engine {a.engine}, {a.jobs} job(s))", file=sys.stderr)
    command = (
        " ".join(shlex.quote(x) for x in ["vocalfx", "match-batch", *sys.argv[2:]])
        if sys.argv[1:2] == ["match-batch"]
        else ""
    )
    with terminate_as_interrupt():  # `kill PID` ends the workers too; finished items stay
        res = match_batch(
            items,
            a.output,
            settings=settings,
            engine=a.engine,
            jobs=a.jobs,
            threads=a.threads,
            ray_address=a.ray_address,
            retry_failed=a.retry_failed,
            progress=not a.quiet,
            command=command,
        )
    print(
        f"{res.computed} item(s) matched ({res.failed} failed), {res.skipped} already finished; "
        f"{res.seconds:.0f} s. Summary: {res.summary}"
    )
    for line in res.errors:
        print(f"vocalfx: item {line}", file=sys.stderr)
    return 1 if res.errors else 0


def register(sub: Subparsers) -> None:
    m = sub.add_parser(
        "match-batch",
        help="match many dry vocals: a pairs list (CSV) or a folder of takes to one reference; resumable",
        description="Run `vocalfx match` on every item of SOURCE and write OUT/items/NAME.wav, NAME.preset.json and "
        "NAME.json (the report, or the item's one-line error) plus OUT/summary.csv. SOURCE is a CSV with columns "
        "dry, reference and optionally name and per-item settings (encoder, alpha, steps, lr, init, "
        "chunk_seconds, level, groups, strength), or a folder whose audio files all match --reference. Running "
        "the same command again skips finished items; other settings in the same OUT are refused. A bad item "
        "does not stop the others; the exit code is 1 if any failed. See docs/guide/batch.md.",
    )
    add = m.add_argument
    add("source", help="pairs list (.csv) or a folder of dry vocals")
    add("--reference", default=None, help="with a folder SOURCE: the reference vocal every take is matched to")
    add("-o", "--output", required=True, help="output folder (created; resumed if it holds this batch)")
    add(
        "--encoder",
        default=MATCH_ENCODER,
        help=f"embedding: fx, mfcc, mir, afx-rep (VOCALFX_AFX_REP) (default: {MATCH_ENCODER})",
    )
    add("--alpha", type=float, default=MATCH_ALPHA, help=f"prior weight (default: {MATCH_ALPHA:g})")
    add("--steps", type=int, default=None, help=f"Adam steps (default: {MATCH_STEPS})")
    add("--lr", type=float, default=None, help=f"initial learning rate (default: {MATCH_LR})")
    add(
        "--init",
        default=MATCH_INIT,
        help=f"starting preset: 'predicted', 'mean', a preset file or a shipped name (default: {MATCH_INIT})",
    )
    add("--chunk-seconds", type=float, default=CHUNK_SECONDS, help=f"chunk length in s (default: {CHUNK_SECONDS:g})")
    add("--level", default=None, help="output loudness: reference (default), preset or a LUFS value")
    add("--only", default=None, metavar="GROUPS", help="optimise only these groups (eq, dynamics, delay, reverb, pan)")
    add("--strength", type=float, default=1.0, help="keep this fraction of each match, 0..1 (default: 1)")
    add_engine_arguments(add, "items")
    add("--retry-failed", action="store_true", help="recompute items that ended with an error")
    add("-q", "--quiet", action="store_true", help="no progress bar")
    m.set_defaults(func=run)
