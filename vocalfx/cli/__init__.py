"""The ``vocalfx`` command line: a thin layer over the public API, one module per command.

Each command module has ``register(subparsers)``, which adds its parser and sets ``func`` to a
callable ``(argparse.Namespace) -> int``. Building the parser imports nothing heavy (defaults come
from :mod:`vocalfx.defaults`), so ``vocalfx --help`` answers without loading torch; each command
imports what it needs when it runs.

Exit codes: 0 success, 1 bad input or a failed job (one line on stderr naming the file and the
problem), 2 usage errors (argparse), 141 when the reader of the output went away (as Unix tools).
Only :class:`~vocalfx.errors.VocalfxError` is reported as one line: any other exception is a bug
and shows its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from .._version import __version__
from ..alloc import apply_from_environment
from ..errors import VocalfxError
from . import eval as eval_command
from . import fit_pair, match, match_batch, preset, prior, render, report, separate
from ._common import CLIError, fail

__all__ = ["main", "build_parser", "CLIError"]

#: The command modules, in the order ``vocalfx --help`` lists them.
COMMANDS = (render, preset, fit_pair, prior, match, match_batch, report, separate, eval_command)


def build_parser() -> argparse.ArgumentParser:
    """The ``vocalfx`` argument parser with every sub-command."""
    ap = argparse.ArgumentParser(prog="vocalfx", description="Differentiable vocal-effects style transfer.")
    ap.add_argument("--version", action="version", version=f"vocalfx {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        command.register(sub)
    return ap


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``vocalfx`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    a = build_parser().parse_args(argv)
    apply_from_environment()  # reuse freed buffers (vocalfx/alloc.py); VOCALFX_KEEP_HEAP=0 opts out
    try:
        return a.func(a)
    except VocalfxError as e:
        return fail(str(e))
    except KeyboardInterrupt:
        return fail("interrupted")
    except BrokenPipeError:
        # The reader went away (e.g. `vocalfx preset show X | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
