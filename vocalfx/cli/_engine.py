"""What ``vocalfx eval`` and ``vocalfx match-batch`` share: the engine flags and Ctrl-C-like ``kill``."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Callable, Iterator

from ..engine import ENGINES

__all__ = ["add_engine_arguments", "terminate_as_interrupt"]


def add_engine_arguments(add: Callable[..., object], unit: str) -> None:
    """``--engine``, ``--ray-address``, ``--jobs``, ``--threads``; ``unit`` names what runs in parallel."""
    add(
        "--engine",
        default="local",
        choices=ENGINES,
        help=f"where {unit} run: local (this process, or --jobs worker processes; default) or ray "
        "(one Ray task each; pip install 'vocalfx[ray]'; docs/guide/batch.md)",
    )
    add(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="with --engine ray: a running cluster ('auto' or HOST:PORT); "
        "default: start a local Ray instance with --jobs CPUs",
    )
    add(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help=f"{unit} in parallel: worker processes, or the local Ray instance's CPUs (default: 1)",
    )
    add(
        "--threads",
        type=int,
        default=None,
        help="torch threads per worker (default: 1 with --jobs > 1 or Ray, torch's default otherwise)",
    )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM (``kill PID``) stops the run like Ctrl-C: the workers are ended too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
