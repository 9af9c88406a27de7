"""The command line: rendering, preset tools, and one-line errors for bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocalfx.cli import main
from vocalfx.preset import Preset, load_collection

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "dry_vocal.flac"


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def dry(tmp_path) -> Path:
    """A short stereo 48 kHz vocal-like file (exercises the mono/rate conversion)."""
    sr = 48000
    t = np.arange(int(0.8 * sr)) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    p = tmp_path / "dry.wav"
    sf.write(p, np.stack([x, 0.5 * x], 1), sr, subtype="PCM_16")
    return p


def test_render_shipped_preset(tmp_path, dry, capsys):
    out = tmp_path / "out.wav"
    before = digest(dry)
    code, so, se = run(["render", dry, "pop-lead", "-o", out], capsys)
    assert code == 0, se
    y, sr = sf.read(out, always_2d=True)
    assert sr == 44100 and y.shape[1] == 2 and np.isfinite(y).all() and np.abs(y).max() > 1e-3
    assert y.shape[0] == int(np.ceil(0.8 * 48000 * 44100 / 48000))
    assert "averaged to mono" in so and "resampled 48000 -> 44100" in so
    assert digest(dry) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_render_matches_the_api(tmp_path, capsys):
    """The CLI render of the example equals VocalChain on the same preset."""
    from vocalfx import VocalChain
    from vocalfx.io import load_audio

    out = tmp_path / "o.wav"
    assert run(["render", EXAMPLE, "natural", "-o", out], capsys)[0] == 0
    y, _ = sf.read(out, always_2d=True, dtype="float32")
    x = load_audio(EXAMPLE)
    with torch.no_grad():
        ref = VocalChain()(x[None], params=Preset.resolve("natural").vector.float())[0]
    np.testing.assert_allclose(y.T, ref.numpy(), atol=1e-6)


def test_preset_file_and_collection_index(tmp_path, dry, capsys):
    p = tmp_path / "p.json"
    Preset.from_physical({"comp.attack_ms": 7.0, "delay.delay_ms": 250.0}, name="mine").to_json(p)
    assert run(["render", dry, p, "-o", tmp_path / "a.wav"], capsys)[0] == 0
    code, _, err = run(["render", dry, ROOT / "presets" / "vocalfx-starter.json", "-o", tmp_path / "b.wav"], capsys)
    assert code == 1 and "--index" in err
    assert (
        run(
            ["render", dry, ROOT / "presets" / "vocalfx-starter.json", "--index", "2", "-o", tmp_path / "b.wav"], capsys
        )[0]
        == 0
    )


def test_preset_show_list_and_import(tmp_path, capsys, shared):
    code, so, _ = run(["preset", "show", "pop-lead"], capsys)
    assert code == 0 and "attack_ms" in so and "T60" in so and "ms" in so
    code, so, _ = run(["preset", "list"], capsys)
    assert code == 0 and "wide-hall" in so and "prior-mean" in so
    out = tmp_path / "internal.json"
    code, so, _ = run(["preset", "import-diffvox", shared / "diffvox-presets" / "internal", "-o", out], capsys)
    assert code == 0 and "385" in so
    coll = load_collection(out)
    raw = np.load(shared / "diffvox-presets" / "internal" / "raw_params.npy")
    mask = np.load(shared / "diffvox-presets" / "internal" / "feature_mask.npy")
    np.testing.assert_array_equal(np.stack([p.raw for p in coll]), raw[:, mask].astype(np.float64))
    code, so, _ = run(["preset", "show", out, "--index", "5"], capsys)
    assert code == 0 and "internal_005" in so


# --- bad input: one line naming the file and the problem, exit 1, inputs untouched ----------
def _bad_render(tmp_path, capsys, dry, preset="natural", out=None):
    out = out or tmp_path / "out.wav"
    code, so, err = run(["render", dry, preset, "-o", out], capsys)
    lines = [ln for ln in err.strip().splitlines() if ln]
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("vocalfx: error: "), err
    assert not Path(out).exists() or Path(out) == Path(dry)
    return lines[0]


def test_missing_file(tmp_path, capsys):
    msg = _bad_render(tmp_path, capsys, tmp_path / "nope.wav")
    assert "nope.wav" in msg


def test_unreadable_file(tmp_path, capsys):
    p = tmp_path / "garbage.wav"
    p.write_bytes(b"this is not audio" * 100)
    before = digest(p)
    msg = _bad_render(tmp_path, capsys, p)
    assert "garbage.wav" in msg and digest(p) == before


def test_empty_file(tmp_path, capsys):
    p = tmp_path / "empty.wav"
    sf.write(p, np.zeros((0, 1)), 44100)
    assert "empty.wav" in _bad_render(tmp_path, capsys, p)


def test_silent_file(tmp_path, capsys):
    p = tmp_path / "silent.flac"
    sf.write(p, np.zeros((44100, 1)), 44100)
    msg = _bad_render(tmp_path, capsys, p)
    assert "silent.flac" in msg and "silent" in msg


def test_non_finite_file(tmp_path, capsys):
    p = tmp_path / "nan.wav"
    x = np.random.default_rng(0).normal(size=(44100, 1)) * 0.1
    x[100] = np.nan
    sf.write(p, x, 44100, subtype="FLOAT")
    before = digest(p)
    msg = _bad_render(tmp_path, capsys, p)
    assert "nan.wav" in msg and digest(p) == before


def test_invalid_preset_names_the_parameter(tmp_path, dry, capsys):
    p = tmp_path / "bad.json"
    d = Preset.default().to_dict()
    d["parameters"]["delay"]["delay_ms"] = 5000.0
    p.write_text(json.dumps(d))
    msg = _bad_render(tmp_path, capsys, dry, preset=p)
    assert "bad.json" in msg and "delay.delay_ms" in msg and "(100, 1000)" in msg and "ms" in msg


def test_nan_in_preset(tmp_path, dry, capsys):
    p = tmp_path / "nan.json"
    d = Preset.default().to_dict()
    d["raw"][3] = float("nan")
    p.write_text(json.dumps(d))
    msg = _bad_render(tmp_path, capsys, dry, preset=p)
    assert "nan.json" in msg and "non-finite" in msg


def test_unknown_preset_name(tmp_path, dry, capsys):
    msg = _bad_render(tmp_path, capsys, dry, preset="no-such-preset")
    assert "no-such-preset" in msg and "pop-lead" in msg


def test_refuses_to_overwrite_input(tmp_path, dry, capsys):
    before = digest(dry)
    msg = _bad_render(tmp_path, capsys, dry, out=dry)
    assert "overwrite" in msg and digest(dry) == before


def test_console_script_exit_codes(tmp_path):
    """The installed entry point: usage errors exit 2, bad input 1 (no traceback)."""
    exe = Path(sys.executable).parent / "vocalfx"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "vocalfx.cli"]
    r = subprocess.run(cmd + ["render"], capture_output=True, text=True)
    assert r.returncode == 2
    r = subprocess.run(
        cmd + ["render", str(tmp_path / "x.wav"), "natural", "-o", str(tmp_path / "y.wav")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "Traceback" not in r.stderr and "x.wav" in r.stderr


def test_closed_pipe_is_not_a_traceback():
    """`vocalfx ... | head -1`: the reader leaves early; vocalfx stops quietly (exit 141, like Unix tools)."""
    import subprocess
    import sys
    from pathlib import Path

    exe = Path(sys.executable).parent / "vocalfx"
    r = subprocess.run(f"'{exe}' prior info | head -1", shell=True, capture_output=True, text=True, timeout=300)
    assert r.stdout.startswith("prior:") and "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr


def test_programming_errors_are_not_hidden(tmp_path, dry, monkeypatch):
    """Regression: main() turned any ValueError into a one-line "error"; a bug must
    show its traceback, and only VocalfxError is reported as bad input."""
    import vocalfx.render

    def buggy(*args, **kwargs):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(vocalfx.render, "render", buggy)
    with pytest.raises(ValueError, match="a bug"):
        main(["render", str(dry), "natural", "-o", str(tmp_path / "o.wav")])


def test_help_does_not_load_torch():
    """`vocalfx --help` and a sub-command's --help build the parser without torch."""
    probe = (
        "import sys, contextlib, io\nfrom vocalfx.cli import main\n"
        "for argv in (['--help'], ['match', '--help'], ['eval', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n            main(argv)\n        except SystemExit:\n            pass\n"
        "print(sorted(m for m in ('torch', 'numpy', 'numba') if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stderr
