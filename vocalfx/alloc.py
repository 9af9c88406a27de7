"""Keep freed memory in the process heap instead of handing it back to the OS (glibc only).

Rendering and optimising allocate and free many short-lived buffers of a few to a few tens of
MB (spectra of 10-60 s signals). glibc serves such blocks with ``mmap`` and returns them with
``munmap`` once freed (above a threshold it raises dynamically, but only after the first large
free), and trims the heap top whenever more than a few MB are free. Every fresh block then costs
a page fault per 4 kB page on first touch: on a 2-core machine that was 15-30 % of a 10 s render
(``docs/design/chain.md``, measured with ``benchmarks/bench_chain.py`` and ``VOCALFX_KEEP_HEAP=0``).

:func:`keep_freed_memory` sets ``M_MMAP_THRESHOLD`` to 16 MB (larger blocks still use ``mmap``)
and ``M_TRIM_THRESHOLD`` to 1 GB, so freed blocks up to 16 MB are reused without page faults.
Measured peak memory is unchanged (32 MB gave the same speed but 50 MB more peak memory through
fragmentation in the 4 x 11 s forward+backward); memory freed after the peak stays with the
process, up to 1 GB, until it exits. On other C libraries and systems it does nothing.

This changes the whole process, so the library never calls it: ``import vocalfx`` leaves the
allocator alone. The ``vocalfx`` command line and the benchmark scripts call
:func:`apply_from_environment` (or :func:`keep_freed_memory`) themselves; ``VOCALFX_KEEP_HEAP=0``
in the environment makes the command line leave the allocator alone too. A program using the
library can call :func:`keep_freed_memory` once at start-up for the same speed-up.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["keep_freed_memory", "apply_from_environment", "is_applied", "ENV_VAR"]

#: Set to ``0`` to keep the ``vocalfx`` command from tuning the allocator.
ENV_VAR = "VOCALFX_KEEP_HEAP"

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_BYTES = 16 * 1024 * 1024
_TRIM_THRESHOLD_BYTES = 1024 * 1024 * 1024

_applied = False


def keep_freed_memory() -> bool:
    """Tune glibc's ``malloc`` as described in the module docstring.

    Returns:
        ``True`` if both settings were applied (now or by an earlier call), ``False`` if this is
        not Linux with glibc or ``mallopt`` refused them.
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl or no libc found: nothing to do
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD_BYTES) == 1 and ok
    _applied = ok
    return ok


def apply_from_environment() -> bool:
    """Call :func:`keep_freed_memory` unless ``$VOCALFX_KEEP_HEAP`` is ``0``.

    Returns:
        Whether the tuning is in effect afterwards.
    """
    if os.environ.get(ENV_VAR, "1") == "0":
        return _applied
    return keep_freed_memory()


def is_applied() -> bool:
    """Whether this process's allocator has been tuned by :func:`keep_freed_memory`."""
    return _applied
