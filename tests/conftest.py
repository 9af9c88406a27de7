"""Shared fixtures. Tests that need ``../shared`` (goldens, presets, corpus) use the ``shared``
fixture: they skip with a message when it is absent (a user's clone); CI runs with
``VOCALFX_REQUIRE_SHARED=1`` and turns such a skip into a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Test processes: at most 2 torch threads, and under pytest-xdist (`-n auto`, pyproject.toml) each
# worker gets its share of the CPUs, so that the workers do not oversubscribe the machine.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _workers)))

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VOCALFX_SHARED", ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "goldens").is_dir():
        msg = f"../shared not found at {SHARED} (set VOCALFX_SHARED); skipping a test that needs it"
        if os.environ.get("VOCALFX_REQUIRE_SHARED") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return SHARED
