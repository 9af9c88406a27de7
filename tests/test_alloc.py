"""vocalfx.alloc: the allocator tuning is the command line's choice, never a side effect of import."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

from vocalfx import alloc

# A command that needs torch but no files; then whether the allocator was tuned.
IMPORT_PROBE = "import vocalfx, vocalfx.preset, vocalfx.alloc as a; print(a.is_applied())"
CLI_PROBE = (
    "import contextlib, io, vocalfx.alloc as a; from vocalfx.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()): code = main(['preset', 'list'])\n"
    "print(code, a.is_applied())"
)


def _run(probe, env_value):
    env = dict(os.environ)
    env.pop(alloc.ENV_VAR, None)
    if env_value is not None:
        env[alloc.ENV_VAR] = env_value
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    ).stdout.strip()


def test_import_leaves_the_allocator_alone():
    """Regression: `import vocalfx` used to call mallopt for the whole process."""
    assert _run(IMPORT_PROBE, None) == "False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_cli_applies_it_unless_opted_out():
    glibc = platform.libc_ver()[0] == "glibc"
    assert _run(CLI_PROBE, None) == f"0 {glibc}"
    assert _run(CLI_PROBE, "0") == "0 False"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_keep_freed_memory_is_idempotent():
    glibc = platform.libc_ver()[0] == "glibc"
    assert alloc.keep_freed_memory() is glibc
    assert alloc.keep_freed_memory() is glibc
    assert alloc.is_applied() is glibc
