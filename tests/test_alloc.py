"""vocalfx._alloc: the allocator tuning applied at import, and its opt-out."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vocalfx import _alloc

PROBE = "import vocalfx, vocalfx._alloc as a; print(a._applied)"


def _run(env_value):
    import os

    env = dict(os.environ)
    env.pop(_alloc.ENV_VAR, None)
    if env_value is not None:
        env[_alloc.ENV_VAR] = env_value
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_applied_at_import_unless_opted_out():
    glibc = bool(__import__("platform").libc_ver()[0] == "glibc")
    assert _run(None) == str(glibc)
    assert _run("0") == "False"
    assert _alloc.keep_freed_memory() is glibc  # idempotent
