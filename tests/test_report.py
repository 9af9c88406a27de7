"""HTML reports (vocalfx.report, `vocalfx match --report X.html`, `vocalfx report`, eval's summary.html).

The numbers a report shows are checked against their definitions (an EQ peak's gain at its
centre, the compressor's slope above threshold, BS.1770 loudness), and the page is opened in a
real headless Chromium through the DevTools protocol (over a pipe, no extra package): no console
errors, at least six figures, three players whose FLAC decodes, a non-blank screenshot. Planted
faults (a JS error, a corrupt audio stream) prove those checks can fail. Without Chromium the
browser tests skip with a message, and fail under CI (``CI=true``).
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import pytest
import soundfile as sf
import torch

import vocalfx
from vocalfx import params as P
from vocalfx.cli import build_parser, main
from vocalfx.io import AudioError, integrated_loudness
from vocalfx.preset import Preset
from vocalfx.prior import GaussianPrior
from vocalfx.render import render
from vocalfx.report import (
    DEFAULT_EXCERPT_SECONDS,
    ReportError,
    curves,
    level_stats,
    write_eval_report,
    write_match_report,
    write_result_report,
)
from vocalfx.report.base import check_no_nan
from vocalfx.report.measure import excerpt_flac, loudness_range_lu

SR = P.SAMPLE_RATE
MAX_BYTES = 5_000_000


def vocal_like(seconds: float, seed: int = 0, f0: float = 180.0) -> torch.Tensor:
    """Noise-excited harmonic tone with a syllable envelope, (1, T) float32 (as tests/test_match.py)."""
    g = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f = f0 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) + 0.05 * g.standard_normal(t.size)
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
    return torch.from_numpy((0.2 * x * env)[None].astype(np.float32))


def bright_reference(seconds: float = 4.0) -> torch.Tensor:
    v = GaussianPrior.default().mean.numpy().copy()
    v[P.INDEX["high_shelf.gain_db"]] += 12.0
    return render(vocal_like(seconds, seed=1, f0=220.0), Preset(v))


def prior_mean() -> Preset:
    return Preset(GaussianPrior.default().mean.double().numpy(), name="prior mean")


def strip_payloads(html: str) -> str:
    return re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,", html)


# --- a short synthetic match and its report (shared by the tests below) ------------------------
@pytest.fixture(scope="module")
def matched(tmp_path_factory) -> Dict[str, Any]:
    d = tmp_path_factory.mktemp("report")
    dry, ref = vocal_like(5.0), bright_reference(5.0)
    res = vocalfx.match(dry, ref, chunk_seconds=2, steps=4, progress=False, init="mean")  # the start shown below
    path = d / "match.html"
    t0 = time.perf_counter()
    info = write_result_report(
        path,
        res,
        dry=dry,
        reference=ref,
        start_preset=prior_mean(),
        command="vocalfx match dry.wav ref.wav -o out.wav",
        settings={"steps": 4, "chunk_seconds": 2.0},
    )
    return {
        "dir": d,
        "path": path,
        "info": info,
        "result": res,
        "dry": dry,
        "ref": ref,
        "seconds": time.perf_counter() - t0,
    }


def test_match_report_contents(matched):
    html = matched["path"].read_text(encoding="utf-8")
    info = matched["info"]
    assert info.nbytes == len(html.encode()) <= MAX_BYTES
    assert info.figures == html.count("<figure") == 8 and html.count("<svg") == 8
    assert info.players == 3 and html.count('src="data:audio/flac;base64,') == 3
    visible = strip_payloads(html)
    for text in (
        "EQ magnitude response",
        "Reverb EQ magnitude response",
        "Compressor/expander static curve",
        "Ping-pong delay",
        "Reverb decay time per band",
        "Panning",
        "Long-term average spectrum",
        "MAP loss",
        "start (prior mean)",
        "comp.attack_ms",
        "delay.delay_ms",
        "reverb.t60_median",
        "pan.position",
        "vocalfx match dry.wav ref.wav -o out.wav",
        "loudness range (LU)",
    ):
        assert text in visible, text
    assert not re.search(r"(?<![\w-])nan(?![\w-])", visible, flags=re.I)
    # self-contained: every src is a data URI, every link points inside the page, no stylesheet links
    assert all(v.startswith("data:") for v in re.findall(r'\bsrc="([^"]*)"', html))
    assert all(v.startswith("#") for v in re.findall(r'\bhref="([^"]*)"', visible)) and "<link" not in visible
    # the ids of the inline SVGs are unique in the page (matplotlib repeats them between figures)
    ids = re.findall(r'\bid="([^"]+)"', visible)
    assert len(ids) == len(set(ids))


def test_report_levels_are_bs1770_loudness(matched):
    """The levels table shows vocalfx.io.integrated_loudness and the sample peak of each signal."""
    res, levels = matched["result"], matched["info"].levels
    html = strip_payloads(matched["path"].read_text(encoding="utf-8"))
    for name, x in (("dry", matched["dry"]), ("output", res.audio), ("reference", matched["ref"])):
        lufs = integrated_loudness(x.double(), SR)
        assert levels[name].lufs == pytest.approx(lufs, abs=1e-9)
        assert levels[name].peak_dbfs == pytest.approx(20 * math.log10(float(x.abs().max())), abs=1e-5)
        shown = f"{lufs:.3g}".replace("-", "−")
        assert re.search(rf"<td>{name}</td><td>{re.escape(shown)}</td>", html), (name, shown)


def test_loudness_range_of_two_levels():
    """EBU Tech 3342: 10 s of noise at one level, 10 s 10 dB lower -> a range of about 10 LU."""
    g = np.random.default_rng(3)
    x = g.standard_normal((1, 20 * SR)) * 0.05
    x[:, 10 * SR :] *= 10 ** (-10 / 20)
    assert loudness_range_lu(x, SR) == pytest.approx(10.0, abs=0.6)
    assert math.isnan(loudness_range_lu(x[:, : 2 * SR], SR))  # under 3 s: undefined, shown as —
    s = level_stats(torch.from_numpy(x), SR)
    assert s.seconds == 20 and s.channels == 1 and s.peak_dbfs == pytest.approx(20 * math.log10(np.abs(x).max()))


def test_excerpt_decodes_at_the_playback_level():
    x = vocal_like(6.0).double().numpy()
    ex = excerpt_flac(x, SR, SR, 4 * SR, target_lufs=-18.0)
    y, rate = sf.read(io.BytesIO(base64.b64decode(ex.data_uri.split(",", 1)[1])), always_2d=True)
    assert rate == SR and y.shape == (3 * SR, 1)
    assert integrated_loudness(torch.from_numpy(y.T.copy()), SR) == pytest.approx(-18.0, abs=0.05)
    assert ex.lufs == pytest.approx(-18.0, abs=1e-6) and (ex.start_s, ex.stop_s) == (1.0, 4.0)
    spiky = np.random.default_rng(1).standard_normal((1, 2 * SR)) * 1e-3
    spiky[0, SR] = 0.5  # quiet, with one click: -18 LUFS would clip it, so the gain stops at a -0.5 dBFS peak
    ex = excerpt_flac(spiky, SR, 0, 2 * SR, target_lufs=-18.0)
    assert 20 * math.log10(0.5) + ex.gain_db == pytest.approx(-0.5, abs=1e-9) and ex.lufs < -18.5
    y, _ = sf.read(io.BytesIO(base64.b64decode(ex.data_uri.split(",", 1)[1])))
    assert np.abs(y).max() == pytest.approx(10 ** (-0.5 / 20), abs=1e-4)


# --- the figures' numbers -------------------------------------------------------------------------
def _flat_preset(**physical: float) -> Preset:
    base = {
        "peak1.gain_db": 0.0,
        "peak2.gain_db": 0.0,
        "low_shelf.gain_db": 0.0,
        "high_shelf.gain_db": 0.0,
        "lowpass.freq_hz": 17900.0,
        "highpass.freq_hz": 16.5,
    }
    base.update(physical)
    return Preset.from_physical(base)


@pytest.mark.parametrize("gain_db,freq_hz,q", [(6.0, 1000.0, 2.0), (-9.0, 250.0, 0.7), (4.5, 3150.0, 5.0)])
def test_eq_response_at_a_peak_centre_is_its_gain(gain_db, freq_hz, q):
    p = _flat_preset(**{"peak1.gain_db": gain_db, "peak1.freq_hz": freq_hz, "peak1.q": q})
    r = curves.eq_response_db(p, np.array([freq_hz, 20.0 * freq_hz if freq_hz < 1000 else freq_hz / 20]))
    assert r.bands_db["peak1"][0] == pytest.approx(gain_db, abs=1e-6)
    assert abs(r.bands_db["peak1"][1]) < 0.5  # far from the centre the band is flat
    assert r.total_db[0] == pytest.approx(gain_db, abs=0.05)  # the other bands are flat there
    assert set(r.bands_db) == {"peak1", "peak2", "low_shelf", "high_shelf", "lowpass", "highpass"}


def test_reverb_eq_response_and_shelf():
    p = Preset.from_physical(
        {
            "reverb_eq_peak2.gain_db": -7.0,
            "reverb_eq_peak2.freq_hz": 2000.0,
            "reverb_eq_peak2.q": 1.0,
            "reverb_eq_peak1.gain_db": 0.0,
            "reverb_eq_low_shelf.gain_db": 0.0,
            "reverb_eq_high_shelf.gain_db": 5.0,
            "reverb_eq_high_shelf.freq_hz": 3000.0,
        }
    )
    r = curves.reverb_eq_response_db(p, np.array([2000.0, 21000.0]))
    assert r.bands_db["reverb_eq_peak2"][0] == pytest.approx(-7.0, abs=1e-6)
    assert r.bands_db["reverb_eq_high_shelf"][1] == pytest.approx(5.0, abs=0.1)  # a shelf reaches its gain


def test_eq_response_matches_the_chain_on_noise():
    """The plotted response is the chain's: its EQ stage filters white noise to that magnitude."""
    p = Preset.resolve("pop-lead")
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 1, 4 * SR)))
    chain = vocalfx.VocalChain(SR)
    with torch.no_grad():
        y = chain.render_reference(x.float(), torch.from_numpy(p.native).float()[None])["after_eq"].double()
    from scipy.signal import csd, welch

    f, pxy = csd(x[0, 0].numpy(), y[0, 0].numpy(), fs=SR, nperseg=4096)
    _, pxx = welch(x[0, 0].numpy(), fs=SR, nperseg=4096)
    sel = (f > 100) & (f < 15000)
    measured = 20 * np.log10(np.abs(pxy[sel] / pxx[sel]))
    np.testing.assert_allclose(measured, curves.eq_response_db(p, f[sel]).total_db, atol=0.3)


def test_compressor_curve_slopes():
    p = Preset.from_physical(
        {
            "comp.comp_threshold_db": -20.0,
            "comp.comp_ratio": 4.0,
            "comp.exp_threshold_db": -50.0,
            "comp.exp_ratio": 0.5,
            "comp.makeup_db": 3.0,
        }
    )
    level = np.array([-70.0, -60.0, -40.0, -30.0, -10.0, 0.0])
    out = curves.compressor_curve_db(p, level)
    assert (out[5] - out[4]) / 10.0 == pytest.approx(1 / 4.0, abs=1e-9)  # above threshold: 1 / ratio
    assert (out[1] - out[0]) / 10.0 == pytest.approx(1 / 0.5, abs=1e-9)  # below the expander's: 1 / exp_ratio
    assert (out[3] - out[2]) / 10.0 == pytest.approx(1.0, abs=1e-9)
    assert out[2] == pytest.approx(-40.0 + 3.0, abs=1e-9)  # unity between the thresholds, plus make-up


def test_delay_echoes_at_the_delay_time():
    p = Preset.from_physical({"delay.delay_ms": 250.0, "delay.feedback": 0.5, "delay.gain": 0.5})
    t, env = curves.delay_envelope_db(p, frame_ms=5.0)
    loud = env.max(axis=0)
    first = t[int(np.argmax(loud > loud.max() - 20))]
    assert first == pytest.approx(0.25, abs=0.006)
    f, t60 = curves.reverb_t60(p)
    assert f.shape == t60.shape == (49,) and np.all(t60 > 0)


# --- input checks ----------------------------------------------------------------------------------
def test_bad_input_raises_one_clear_error(tmp_path, matched):
    dry, ref, res = matched["dry"], matched["ref"], matched["result"]
    kw = dict(preset=res.preset, dry=dry, reference=ref, output=res.audio, names={"dry": "dry.wav"})
    bad = dry.clone()
    bad[0, 100] = float("nan")
    with pytest.raises(ReportError, match=r"dry\.wav: contains NaN"):
        write_match_report(tmp_path / "r.html", **{**kw, "dry": bad})
    with pytest.raises(ReportError, match=r"the output audio: expected \(channels, time\), got shape \(1, 2, "):
        write_match_report(tmp_path / "r.html", **{**kw, "output": res.audio[None]})
    with pytest.raises(ReportError, match="the reference audio: silent"):
        write_match_report(tmp_path / "r.html", **{**kw, "reference": ref * 0})
    with pytest.raises(ReportError, match="preset: expected a vocalfx Preset"):
        write_match_report(tmp_path / "r.html", **{**kw, "preset": res.preset.raw})
    src = tmp_path / "dry.wav"
    src.write_bytes(b"x")
    with pytest.raises(AudioError, match="refusing to overwrite an input"):
        write_match_report(src, **kw, inputs=[src])
    with pytest.raises(AudioError, match="does not exist"):
        write_match_report(tmp_path / "missing" / "r.html", **kw)
    assert src.read_bytes() == b"x" and not (tmp_path / "r.html").exists()
    with pytest.raises(ReportError, match="undefined number"):
        check_no_nan("<td>nan</td>", "x.html")
    check_no_nan('<audio src="data:audio/flac;base64,AnaNb+"></audio>', "x.html")  # payloads may spell it


def test_size_budget_for_a_44_s_match(tmp_path):
    """A 44 s match (dry, output, reference of 44 s) makes a report under 5 MB."""
    dry = vocal_like(44.0, seed=4)
    ref = bright_reference(44.0)
    info = write_match_report(
        tmp_path / "r44.html",
        preset=Preset.resolve("wide-hall"),
        dry=dry,
        reference=ref,
        history=[{"step": i, "loss": 10 - i, "nll": 1 - i / 100} for i in range(100)],
    )
    assert info.nbytes == (tmp_path / "r44.html").stat().st_size
    assert info.nbytes <= MAX_BYTES, info.nbytes
    assert info.players == 3 and info.figures == 8
    print(f"44 s report: {info.nbytes / 1e6:.2f} MB")


def test_no_process_wide_matplotlib_state(tmp_path):
    """Building a report loads no pyplot and leaves rcParams and the backend as they were."""
    probe = f"""
import sys, torch
torch.set_num_threads(1)
import matplotlib
raw = lambda: dict(dict.items(matplotlib.rcParams))  # dict.items: reading 'backend' would resolve it
before = raw()
from vocalfx.report import write_match_report
from vocalfx.preset import Preset
x = torch.randn(1, 44100 * 2) * 0.1
write_match_report({str(tmp_path / "p.html")!r}, preset=Preset.resolve('natural'), dry=x, reference=x.repeat(2, 1))
assert 'matplotlib.pyplot' not in sys.modules
assert raw() == before
print('ok')
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert out.stdout.strip().endswith("ok"), out.stderr[-2000:]


# --- command line ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Dict[str, Path]:
    d = tmp_path_factory.mktemp("cli")
    sf.write(d / "dry.wav", vocal_like(4.0)[0].numpy(), SR)
    sf.write(d / "ref.wav", bright_reference().T.numpy() * 0.5, SR)
    return {"dir": d, "dry": d / "dry.wav", "ref": d / "ref.wav"}


def test_cli_match_report_html_and_json(files, capsys):
    d = files["dir"]
    base = [
        "match",
        str(files["dry"]),
        str(files["ref"]),
        "-o",
        str(d / "out.wav"),
        "--chunk-seconds",
        "2",
        "--steps",
        "2",
        "-q",
    ]
    assert main([*base, "--report", str(d / "m.html")]) == 0
    assert "report " + str(d / "m.html") + " (HTML" in capsys.readouterr().out
    html = (d / "m.html").read_text(encoding="utf-8")
    assert html.count("<figure") == 8 and html.count("<audio") == 3
    visible = strip_payloads(html)
    assert "start (predicted (fx))" in visible and "--chunk-seconds 2.0" in visible and str(files["ref"]) in visible
    assert main([*base, "--report", str(d / "m.json")]) == 0  # .json keeps the numbers-and-history report
    doc = json.loads((d / "m.json").read_text())
    assert len(doc["history"]) == 2 and doc["stats"]["steps"] == 2
    code = main([*base, "--report", str(d / "m.txt")])
    assert code == 1 and "--report must end in .html/.htm" in capsys.readouterr().err
    assert not (d / "m.txt").exists()


def test_cli_report_command(files, capsys):
    d = files["dir"]
    assert (
        main(
            [
                "match",
                str(files["dry"]),
                str(files["ref"]),
                "-o",
                str(d / "o.wav"),
                "--chunk-seconds",
                "2",
                "--steps",
                "3",
                "-q",
                "--report",
                str(d / "o.json"),
            ]
        )
        == 0
    )
    capsys.readouterr()
    args = ["report", str(d / "o.preset.json"), "--dry", str(files["dry"]), "--reference", str(files["ref"])]
    assert main([*args, "--output", str(d / "o.wav"), "--match-json", str(d / "o.json"), "-o", str(d / "r.html")]) == 0
    assert "8 figures, 3 audio players" in capsys.readouterr().out
    html = strip_payloads((d / "r.html").read_text(encoding="utf-8"))
    assert 'id="fig-loss"' in html and '<figure id="fig-loss"' in html and "start (predicted (fx))" in html
    # without --output it renders the dry through the preset; without --match-json, no loss curve
    assert main([*args, "--start", "none", "-o", str(d / "r2.html")]) == 0
    html2 = strip_payloads((d / "r2.html").read_text(encoding="utf-8"))
    assert "rendered for the report" in html2 and "no optimisation history" in html2 and "start (not given)" in html2
    # one-line errors
    for extra, message in (
        (["-o", str(files["dry"])], "refusing to overwrite an input"),
        (["-o", str(d / "r.txt")], "ending in .html"),
        (["--match-json", str(d / "o.preset.json"), "-o", str(d / "r3.html")], "not a `vocalfx match --report` JSON"),
        (["--match-json", str(d / "nope.json"), "-o", str(d / "r3.html")], "nope.json: no such file"),
    ):
        assert main([*args, *extra]) == 1
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_cli_report_default_excerpt_is_the_library_default():
    a = build_parser().parse_args(["report", "p.json", "--dry", "d", "--reference", "r", "-o", "x.html"])
    assert a.excerpt_seconds == DEFAULT_EXCERPT_SECONDS


def test_cli_report_help_is_fast_and_lazy():
    probe = (
        "import sys, time; t = time.perf_counter(); from vocalfx.cli import build_parser\n"
        "try:\n    build_parser().parse_args(['report', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules, 'heavy import'\n"
        "print(time.perf_counter() - t, file=sys.stderr)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: vocalfx report" in out.stdout, out.stderr


# --- eval summary.html ------------------------------------------------------------------------------
def _tiny_eval(out: Path) -> None:
    rows = ["track,method,status,mss_lr,mldr_lr,mss_ms,mldr_ms,pmse,predict_s,score_s,error"]
    vals = {"ito-mfcc": [0.8, 0.9, 0.7], "mean": [1.0, 1.1, 1.2]}
    for i, t in enumerate(["a", "b", "c"]):
        for m, v in vals.items():
            rows.append(f"{t},{m},ok,{v[i]!r},{v[i] + 1!r},{v[i] / 2!r},{v[i] * 2!r},{v[i] * 10!r},1.5,0.2,")
    rows.append("d,ito-mfcc,failed,,,,,,,,encoder exploded")
    rows.append("d,mean,ok,1.3,2.3,0.65,2.6,13.0,0.1,0.2,")
    (out / "results.csv").write_text("\n".join(rows) + "\n")
    summ = ["method,metric,mean,median,n"]
    for m, v in vals.items():
        for k, scale in (("mss_lr", 1), ("mldr_lr", None), ("mss_ms", 0.5), ("mldr_ms", 2), ("pmse", 10)):
            vv = np.array(v) + 1 if scale is None else np.array(v) * scale
            summ.append(f"{m},{k},{float(vv.mean())!r},{float(np.median(vv))!r},3")
        summ.append(f"{m},predict_s,1.5,1.5,3")
    (out / "summary.csv").write_text("\n".join(summ) + "\n")
    (out / "summary.md").write_text("# Style-transfer evaluation: tiny\n")


def test_eval_summary_html(tmp_path):
    _tiny_eval(tmp_path)
    path = write_eval_report(tmp_path)
    assert path == tmp_path / "summary.html"
    html = path.read_text(encoding="utf-8")
    assert html.count("<figure") == 6  # per-track MSS L/R bars + a box plot per metric
    for text in (
        "Mean over tracks",
        "Median over tracks",
        "MSS L/R per track and method",
        "Distribution of MSS L/R per method",
        "Distribution of PMSE per method",
        "d × ito-mfcc: failed (encoder exploded)",
        "# Style-transfer evaluation: tiny",
    ):
        assert text in html, text
    # the mean table shows summary.csv's numbers, the best per metric in bold
    assert "<td><b>0.8</b></td>" in html and "<td>1.1</td>" in html
    assert not re.search(r"(?<![\w-])nan(?![\w-])", html, flags=re.I)


def test_eval_summary_html_errors(tmp_path):
    with pytest.raises(ReportError, match=r"results\.csv: no such file"):
        write_eval_report(tmp_path)
    (tmp_path / "results.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ReportError, match=r"results\.csv: missing column\(s\) track, method, status"):
        write_eval_report(tmp_path)
    _tiny_eval(tmp_path)
    (tmp_path / "summary.csv").write_text("method,metric,mean,median,n\nx,mss_lr,abc,1,1\n")
    with pytest.raises(ReportError, match=r"summary\.csv: line 2, mean is not a number: 'abc'"):
        write_eval_report(tmp_path)


# --- the browser -------------------------------------------------------------------------------------
def _chromium() -> str:
    exe = os.environ.get("VOCALFX_CHROMIUM") or next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")) if p),
        None,
    )
    if exe is None:
        msg = (
            "no headless Chromium (Debian: apt-get install chromium, or set VOCALFX_CHROMIUM); "
            "skipping the browser test"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(msg.replace("skipping", "CI must run"))
        pytest.skip(msg)
    return exe


class DevTools:
    """Headless Chromium driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    the browser reads NUL-terminated JSON commands on fd 3 and writes replies and events on fd 4)."""

    def __init__(self, exe: str, timeout_s: float = 90.0) -> None:
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="vocalfx-chromium-")
        child_in, self._out = os.pipe()
        self._in, child_out = os.pipe()

        def fds() -> None:  # in the child: the pipe ends onto fds 3 and 4
            a, b = os.dup(child_in), os.dup(child_out)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [
            exe,
            "--headless=new",
            "--remote-debugging-pipe",
            "--disable-gpu",
            "--no-first-run",
            "--mute-audio",
            "--no-default-browser-check",
            "--hide-scrollbars",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root (containers, CI)
        self.proc = subprocess.Popen(
            args,
            preexec_fn=fds,
            pass_fds=(3, 4),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(child_in)
        os.close(child_out)
        self.inbox: "queue.Queue[Optional[dict]]" = queue.Queue()
        self.events: List[dict] = []
        self.last_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._in, 1 << 16)
            if not chunk:
                self.inbox.put(None)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for m in messages:
                self.inbox.put(json.loads(m))

    def _next(self, deadline: float) -> dict:
        try:
            m = self.inbox.get(timeout=max(0.05, deadline - time.monotonic()))
        except queue.Empty:
            raise AssertionError("Chromium did not answer in time") from None
        if m is None:
            raise AssertionError("Chromium exited")
        return m

    def call(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> dict:
        self.last_id += 1
        msg: Dict[str, Any] = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._out, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout_s
        while True:
            m = self._next(deadline)
            if m.get("id") == self.last_id:
                assert "error" not in m, f"{method}: {m['error']}"
                return m.get("result", {})
            self.events.append(m)

    def wait_for(self, method: str, session: str) -> None:
        if any(e.get("method") == method and e.get("sessionId") == session for e in self.events):
            return
        deadline = time.monotonic() + self.timeout_s
        while True:
            m = self._next(deadline)
            self.events.append(m)
            if m.get("method") == method and m.get("sessionId") == session:
                return

    def open(self, path: Path, width: int = 1280, height: int = 2400) -> Dict[str, Any]:
        """Load ``path``; return its console errors, figure and player counts, decoded audio and a screenshot."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=sid)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=sid,
        )
        self.call("Page.navigate", {"url": path.resolve().as_uri()}, session=sid)
        self.wait_for("Page.loadEventFired", sid)
        probe = """Promise.all([...document.querySelectorAll('audio')].map(a => new Promise(done => {
            const ok = () => done({name: a.dataset.name, duration: a.duration, error: null});
            const bad = () => done({name: a.dataset.name, duration: null, error: a.error ? a.error.code : -1});
            if (a.error) return bad();
            if (a.readyState >= 1) return ok();
            a.addEventListener('loadedmetadata', ok); a.addEventListener('error', bad); a.load();
        }))).then(audio => JSON.stringify({audio, figures: document.querySelectorAll('figure svg').length,
                                           title: document.title}))"""
        page = json.loads(
            self.call(
                "Runtime.evaluate", {"expression": probe, "awaitPromise": True, "returnByValue": True}, session=sid
            )["result"]["value"]
        )
        shot = self.call("Page.captureScreenshot", {"format": "png"}, session=sid)
        self.call("Runtime.evaluate", {"expression": "1"}, session=sid)  # flush pending console events
        errors = []
        for e in self.events:
            if e.get("sessionId") != sid:
                continue
            p = e.get("params", {})
            if e.get("method") == "Runtime.exceptionThrown":
                errors.append(
                    p["exceptionDetails"].get("exception", {}).get("description") or p["exceptionDetails"]["text"]
                )
            elif e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in p.get("args", [])))
            elif e.get("method") == "Log.entryAdded" and p["entry"].get("level") == "error":
                errors.append(p["entry"].get("text", ""))
        self.call("Target.closeTarget", {"targetId": target})
        return {**page, "errors": errors, "png": base64.b64decode(shot["data"])}

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    tools = DevTools(_chromium())
    yield tools
    tools.close()


def _pixel_spread(png: bytes) -> "tuple[float, int]":
    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    colours = len(np.unique(img.reshape(-1, 3)[::7], axis=0))
    return float(img.std()), colours


def test_report_in_headless_chromium(browser, matched):
    seen = browser.open(matched["path"])
    assert seen["errors"] == [], seen["errors"]
    assert seen["figures"] >= 6 and seen["title"].startswith("vocalfx match report")
    assert [a["name"] for a in seen["audio"]] == ["dry", "output", "reference"]
    for a in seen["audio"]:  # every embedded FLAC decodes, to the excerpt's length
        assert a["error"] is None and a["duration"] == pytest.approx(5.0, abs=0.05), a
    assert matched["path"].stat().st_size <= MAX_BYTES
    std, colours = _pixel_spread(seen["png"])
    assert std > 20 and colours > 100, (std, colours)  # a rendered page, not a blank or one-colour screen


def test_browser_checks_catch_planted_faults(browser, matched, tmp_path):
    """A copy with a JS error fails the console check; a copy with a corrupt audio stream fails the
    decode check; a blank page fails the screenshot check."""
    html = matched["path"].read_text(encoding="utf-8")
    broken = tmp_path / "js-error.html"
    broken.write_text(html.replace("</body>", "<script>undefinedFunctionPlanted();</script></body>"), encoding="utf-8")
    seen = browser.open(broken)
    assert any("undefinedFunctionPlanted" in e for e in seen["errors"]), seen["errors"]
    logged = tmp_path / "console-error.html"
    logged.write_text(
        html.replace("</body>", "<script>console.error('planted console error');</script></body>"), encoding="utf-8"
    )
    assert any("planted console error" in e for e in browser.open(logged)["errors"])
    corrupt = tmp_path / "bad-audio.html"
    corrupt.write_text(
        re.sub(r'(data-name="dry" src="data:audio/flac;base64,)[^"]+', r"\1AAAAAAAAAAAAAAAA", html, count=1),
        encoding="utf-8",
    )
    audio = {a["name"]: a for a in browser.open(corrupt)["audio"]}
    assert audio["dry"]["error"] is not None and audio["output"]["error"] is None
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>")
    std, colours = _pixel_spread(browser.open(blank)["png"])
    assert not (std > 20 and colours > 100)


def test_eval_summary_in_headless_chromium(browser, tmp_path):
    _tiny_eval(tmp_path)
    seen = browser.open(write_eval_report(tmp_path))
    assert seen["errors"] == [] and seen["figures"] == 6 and seen["audio"] == []
    assert _pixel_spread(seen["png"])[0] > 20


def test_match_start_preset():
    from vocalfx.report import match_start_preset

    assert np.array_equal(match_start_preset(None).raw, GaussianPrior.default().mean.double().numpy())
    assert np.array_equal(match_start_preset(Preset.resolve("pop-lead")).raw, Preset.resolve("pop-lead").raw)
    assert match_start_preset("predicted") is None
    with pytest.raises(ReportError, match="init: "):
        match_start_preset(np.zeros(3))


def test_eval_summary_html_of_a_run_with_nothing_finished(tmp_path):
    """A run whose cells all failed or are missing still gets a page (no figure data, no NaN)."""
    (tmp_path / "results.csv").write_text(
        "track,method,status,mss_lr,mldr_lr,mss_ms,mldr_ms,pmse,predict_s,score_s,error\n"
        "a,mean,failed,,,,,,,,boom\na,oracle,n/a,,,,,,,,needs the true preset\n"
    )
    (tmp_path / "summary.csv").write_text(
        "method,metric,mean,median,n\nmean,mss_lr,nan,nan,0\nmean,predict_s,nan,nan,0\n"
    )
    html = write_eval_report(tmp_path).read_text(encoding="utf-8")
    assert "a × mean: failed (boom)" in html and html.count("<figure") == 6
    assert not re.search(r"(?<![\w-])nan(?![\w-])", html, flags=re.I)
