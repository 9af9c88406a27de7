"""The README stays true: its quickstart commands (the first runs here; the second is this suite)
and its Python example."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    return [ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#")]


def test_readme_opens_with_setup_then_main_job_then_tests():
    cmds = readme_commands()
    assert len(cmds) == 2
    assert all(c.startswith("bash scripts/setup.sh && ") for c in cmds)
    assert "vocalfx render" in cmds[0] or "vocalfx match" in cmds[0]
    assert "pytest" in cmds[1]
    assert (ROOT / ".ci" / "run").read_text().count("bash scripts/setup.sh && .venv/bin/python -m pytest") == 1


def test_readme_main_job_runs(tmp_path):
    """Run the part after `setup.sh &&` (setup itself is what CI does first)."""
    job = readme_commands()[0].split("&&", 1)[1].strip()
    argv = shlex.split(job)
    assert argv[0] == ".venv/bin/vocalfx"
    exe = Path(sys.executable).parent / "vocalfx"
    argv = [str(exe)] + [str(ROOT / a) if a.startswith("examples/") else a for a in argv[1:]]
    r = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    out = tmp_path / argv[argv.index("-o") + 1]
    info = sf.info(out)
    assert info.channels == 2 and info.samplerate == 44100 and info.frames > 44100


def readme_python():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "the README has one Python example, run here"
    return blocks[0]


def test_readme_python_example_runs(tmp_path):
    """The Python example as written, from a directory that has the bundled examples/."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    code = readme_python()
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert "torch.Size([2, 529200])" in lines  # res.audio: 12 s of stereo at 44.1 kHz
    assert lines[-1].endswith("torch.Size([2, 2, 529200])")
    from vocalfx.preset import Preset

    assert Preset.from_json(tmp_path / "matched.json").raw.shape == (130,)  # a valid preset file was written
