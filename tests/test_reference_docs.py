"""The generated reference pages (docs/reference/) say what the code does.

``scripts/make_reference.py`` builds ``cli.md`` from the real argparse parsers and ``presets.md``
from ``vocalfx.preset`` and ``vocalfx.params``; these tests fail when a committed page differs
from what it would write now (regenerate with ``python scripts/make_reference.py``), and prove
that its ``--check`` notices a stale or missing page.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make_reference.py"
DOCS = ROOT / "docs" / "reference"


@pytest.fixture(scope="module")
def make_reference():
    spec = importlib.util.spec_from_file_location("make_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pages(make_reference):
    return {name: make() for name, make in make_reference.PAGES.items()}


@pytest.mark.parametrize("name", ["cli.md", "presets.md"])
def test_committed_page_is_current(pages, name):
    committed = (DOCS / name).read_text()
    assert committed == pages[name], f"docs/reference/{name} is stale: run python scripts/make_reference.py"


def test_pages_cover_every_command_and_parameter(pages):
    from vocalfx import params
    from vocalfx.cli import COMMANDS, build_parser

    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert len(subparsers.choices) == len(COMMANDS)
    for name in subparsers.choices:
        assert f"\n## vocalfx {name}\n" in pages["cli.md"], name
    for i, spec in enumerate(params.SPECS):
        assert f"\n| {i} | `{spec.name}` |" in pages["presets.md"], spec.name


def test_output_does_not_depend_on_the_terminal(make_reference, pages, monkeypatch):
    monkeypatch.setenv("COLUMNS", "37")
    assert make_reference.cli_page() == pages["cli.md"]


def test_check_fails_on_a_stale_page(make_reference, tmp_path, capsys):
    """Written by the script as a process, then checked: current passes, stale or missing fails."""
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert make_reference.main(["--check", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""

    page = tmp_path / "presets.md"
    page.write_text(page.read_text().replace("| 0 | `peak1.gain_db`", "| 0 | `peak1.gain`"))
    assert make_reference.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "presets.md" in err and "cli.md" not in err

    (tmp_path / "cli.md").unlink()
    assert make_reference.main(["--check", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "presets.md" in err and "cli.md" in err
