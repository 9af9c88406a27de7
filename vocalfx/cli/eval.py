"""``vocalfx eval``: :func:`vocalfx.evaluation.evaluate` over a corpus, resumable."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import List

from ..defaults import EVAL_ALPHAS, EVAL_ENCODERS
from ._common import CLIError, Subparsers
from ._engine import add_engine_arguments, terminate_as_interrupt

__all__ = ["register", "run"]


def _csv_list(text: str) -> List[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def run(a: argparse.Namespace) -> int:
    from ..encoders.afx_rep import CHECKPOINT_ENV
    from ..evaluation import MethodOptions, evaluate, load_corpus, load_plugin, parse_alpha, parse_methods

    for p in a.plugin:
        load_plugin(p)
    encoders = tuple(_csv_list(a.encoders))
    if not encoders:
        raise CLIError("--encoders: give at least one encoder")
    alphas = tuple(parse_alpha(x) for x in _csv_list(a.alphas)) if a.alphas else EVAL_ALPHAS
    if a.ito_steps is not None and a.ito_steps < 0:
        raise CLIError(f"--ito-steps must be >= 0, got {a.ito_steps}")
    if a.ito_lr is not None and not a.ito_lr > 0:
        raise CLIError(f"--ito-lr must be positive, got {a.ito_lr}")
    options = MethodOptions(
        encoders=encoders,
        alphas=alphas,
        collection=a.collection,
        prior=a.prior,
        ito_steps=a.ito_steps,
        ito_lr=a.ito_lr,
        ito_space=a.ito_space,
        ito_level=a.ito_level,
        encoder_options={"afx-rep": {"checkpoint": a.afx_rep}} if a.afx_rep else {},
    )
    methods = parse_methods(a.methods, options)
    uses_afx_rep = "afx-rep" in {getattr(m, "encoder", None) for m in methods}
    if uses_afx_rep and not a.afx_rep and not os.environ.get(CHECKPOINT_ENV):
        raise CLIError(f"the afx-rep encoder needs its checkpoint: --afx-rep PATH (or ${CHECKPOINT_ENV})")
    corpus = load_corpus(
        a.corpus,
        presets=a.presets,
        chunk_seconds=a.chunk_seconds,
        tracks=_csv_list(a.tracks) if a.tracks else None,
        reference_codec=a.reference_codec,
    )
    if not a.quiet:
        n_cells = len(corpus.tracks) * len(methods)
        print(f"{len(corpus.tracks)} tracks x {len(methods)} methods = {n_cells} cells -> {a.out}", file=sys.stderr)
        print("methods: " + ", ".join(m.name for m in methods), file=sys.stderr)
    with terminate_as_interrupt():  # `kill PID` stops the workers too, like Ctrl-C
        res = evaluate(
            corpus,
            methods,
            a.out,
            options=options,
            jobs=a.jobs,
            threads=a.threads,
            engine=a.engine,
            ray_address=a.ray_address,
            retry_failed=a.retry_failed,
            progress=not a.quiet,
            plugins=a.plugin,
            command=_command(a),
        )
    print(res.table)
    print(
        f"{res.computed} cell(s) computed ({res.failed} failed), {res.skipped} already finished; "
        f"{res.seconds:.0f} s. Tables: {res.out / 'summary.md'}, {res.out / 'results.csv'}",
        file=sys.stderr,
    )
    if res.errors:
        print(
            f"vocalfx: {len(res.errors)} cell(s) failed or missing (listed in {res.out / 'summary.md'})",
            file=sys.stderr,
        )
        return 1
    return 0


def _command(a: argparse.Namespace) -> str:
    """The command line with every setting that differs from the defaults, for the record."""
    parts = ["vocalfx", "eval", "--corpus", a.corpus, "--out", a.out, "--methods", *a.methods]
    for flag, value, default in [
        ("--encoders", a.encoders, ",".join(EVAL_ENCODERS)),
        ("--alphas", a.alphas, None),
        ("--collection", a.collection, None),
        ("--prior", a.prior, None),
        ("--presets", a.presets, None),
        ("--tracks", a.tracks, None),
        ("--chunk-seconds", a.chunk_seconds, None),
        ("--reference-codec", a.reference_codec, None),
        ("--ito-steps", a.ito_steps, None),
        ("--ito-lr", a.ito_lr, None),
        ("--ito-space", a.ito_space, None),
        ("--ito-level", a.ito_level, None),
        ("--afx-rep", a.afx_rep, None),
        ("--jobs", a.jobs, 1),
        ("--threads", a.threads, None),
        ("--engine", a.engine, "local"),
        ("--ray-address", a.ray_address, None),
    ]:
        if value != default:
            parts += [flag, str(value)]
    for p in a.plugin:
        parts += ["--plugin", p]
    return " ".join(shlex.quote(str(x)) for x in parts)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate style-transfer methods on a corpus (DiffVox's protocol); resumable",
        description=(
            "Run style-transfer methods over a corpus with DiffVox's protocol and tabulate MSS, MLDR (L/R and M/S) "
            "and PMSE. For each track the dry vocal is normalised to the protocol loudness (-18 LUFS) and rendered "
            "with its true preset (the wet track); both are cut into chunks (11 s); the wet chunks at even "
            "positions are the reference, the dry chunks at odd positions the input. Each method predicts a preset "
            "from them; the whole dry track rendered with it is compared with the whole wet track. Every finished "
            "track x method cell is saved at once: run the same command again to continue after an interruption. "
            "Method specs: oracle, mean, nn-param, nn-emb[:ENCODER], ito[:ENCODER[:ALPHA]], all. "
            "Corpus format and method details: docs/guide/evaluation.md."
        ),
    )
    add = p.add_argument
    add("--corpus", required=True, help="corpus folder with protocol.json")
    add("--out", required=True, help="output folder (created; holds the cells, results.csv, summary.md)")
    add("--methods", nargs="+", default=["all"], help="method specs, comma- or space-separated (default: all)")
    add(
        "--encoders",
        default=",".join(EVAL_ENCODERS),
        help=f"encoders that nn-emb, ito and all expand to (default: {','.join(EVAL_ENCODERS)}; "
        "afx-rep needs --afx-rep)",
    )
    add(
        "--alphas",
        default=None,
        help=f"prior weights that ito and all expand to (default: {','.join(f'{x:g}' for x in EVAL_ALPHAS)})",
    )
    add(
        "--collection",
        default=None,
        help="preset collection of the nearest-neighbour methods: a collection JSON or a DiffVox preset "
        "folder (its train_index.npy rows when present) (default: the shipped vocalfx-starter.json)",
    )
    add("--prior", default=None, help="prior .npz for mean and ito (default: the shipped prior)")
    add(
        "--presets",
        default=None,
        help="collection that integer track presets index (default: the protocol's preset_collection)",
    )
    add("--tracks", default=None, help="comma-separated track names to run (default: all)")
    add(
        "--chunk-seconds",
        type=float,
        default=None,
        help="chunk length in s (default: the protocol's, 11 s; a changed value needs a new --out)",
    )
    add(
        "--reference-codec",
        default=None,
        metavar="mp3:KBPS",
        help="put the reference chunks through MP3 at KBPS (64-320) and back (LAME in libsndfile); "
        "the input and the scoring wet stay lossless",
    )
    add("--ito-steps", type=int, default=None, help="Adam steps per ITO run (default: vocalfx.match's)")
    add("--ito-lr", type=float, default=None, help="ITO learning rate (default: vocalfx.match's)")
    add(
        "--ito-space",
        default=None,
        choices=("raw", "whitened"),
        help="where ITO's Adam steps (default: vocalfx.match's, raw)",
    )
    add(
        "--ito-level",
        default=None,
        choices=("preset", "reference"),
        help="output level of ito/ito-pred/ito-nn/pred: the preset's (default, DiffVox's protocol) "
        "or the reference's loudness, as vocalfx match writes it (rows end in +level)",
    )
    add("--afx-rep", default=None, metavar="CKPT", help="AFx-Rep checkpoint file, for --encoders afx-rep")
    add_engine_arguments(add, "tracks (cells on Ray)")
    add("--retry-failed", action="store_true", help="recompute cells that finished with an error")
    add(
        "--plugin",
        action="append",
        default=[],
        metavar="MODULE",
        help="import a module or .py file that registers more methods (repeatable)",
    )
    add("-q", "--quiet", action="store_true", help="no progress bar or notes (the table is still printed)")
    p.set_defaults(func=run)
