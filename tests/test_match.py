"""vocalfx.match (MAP inference-time optimisation): objective, chunking, the non-finite guard,
bad inputs, determinism, and the `vocalfx match` command. Runs use 2 s chunks and a few steps so
the file stays fast; the dev-corpus quality figures come from `vocalfx eval` (docs/guide/evaluation.md)
and scripts/measure_match.py at commit 5d849a6 (docs/guide/matching.md)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import vocalfx
from vocalfx import params as P
from vocalfx.cli import main
from vocalfx.encoders import MFCCEncoder, StereoEncoder, register_encoder
from vocalfx.matching import MatchError, active_chunks, ito_nll, match
from vocalfx.preset import Preset
from vocalfx.prior import GaussianPrior
from vocalfx.render import render

SR = P.SAMPLE_RATE
CHUNK = 2.0  # seconds; the product default is 11 s


def vocal_like(seconds: float, seed: int = 0, f0: float = 180.0) -> torch.Tensor:
    """Noise-excited harmonic tone with a syllable envelope, (1, T) float32."""
    g = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f = f0 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) + 0.05 * g.standard_normal(t.size)
    env = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None) ** 0.5
    return torch.from_numpy((0.2 * x * env)[None].astype(np.float32))


def bright_reference(seconds: float = 4.0) -> torch.Tensor:
    """Another 'singer' through the prior mean with +12 dB of high shelf: a clear style to find."""
    v = GaussianPrior.default().mean.numpy().copy()
    v[P.INDEX["high_shelf.gain_db"]] += 12.0
    return render(vocal_like(seconds, seed=1, f0=220.0), Preset(v))


def sha(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# --- objective ----------------------------------------------------------------------------------
def test_ito_nll_closed_form():
    # Two predicted and two reference unit vectors at known angles in a plane.
    def unit(deg):
        r = math.radians(deg)
        return torch.tensor([math.cos(r), math.sin(r), 0.0], dtype=torch.float64)

    pred = {"mid": torch.stack([unit(0), unit(10)]), "side": torch.stack([unit(0), unit(0)])}
    ref = {"mid": torch.stack([unit(20), unit(30)]), "side": torch.stack([unit(40), unit(40)])}
    nll, s_mid, s_side = ito_nll(pred, ref)
    angles_mid = np.radians([20, 30, 10, 20])
    sig_mid = math.sqrt(np.mean(angles_mid**2))
    sig_side = math.radians(40)
    assert float(s_mid) == pytest.approx(sig_mid, rel=1e-9)
    assert float(s_side) == pytest.approx(sig_side, rel=1e-9)
    # mean Gaussian log-density of the angles with sigma^2 = mean(theta^2): -1/2 - log(2 pi)/2 - log sigma
    expected = sum(0.5 + 0.5 * math.log(2 * math.pi) + math.log(s) for s in (sig_mid, sig_side))
    assert float(nll) == pytest.approx(expected, rel=1e-12)


def test_ito_nll_gradient_finite_when_embeddings_coincide():
    e = torch.nn.functional.normalize(torch.randn(2, 8, dtype=torch.float64), dim=-1)
    p = {"mid": e.clone().requires_grad_(True), "side": e.clone().requires_grad_(True)}
    nll, _, _ = ito_nll(p, {"mid": e, "side": e})
    nll.backward()
    assert torch.isfinite(p["mid"].grad).all() and torch.isfinite(p["side"].grad).all()


def test_ito_nll_gradcheck():
    g = torch.Generator().manual_seed(0)
    ref = {
        k: torch.nn.functional.normalize(torch.randn(3, 6, generator=g, dtype=torch.float64), dim=-1)
        for k in ("mid", "side")
    }
    raw = torch.randn(2, 2, 6, generator=g, dtype=torch.float64, requires_grad=True)

    def f(r):
        pred = {"mid": torch.nn.functional.normalize(r[0], dim=-1), "side": torch.nn.functional.normalize(r[1], dim=-1)}
        return ito_nll(pred, ref)[0]

    assert torch.autograd.gradcheck(f, (raw,))


# --- chunking -----------------------------------------------------------------------------------
def test_active_chunks_layout_and_silence():
    x = torch.zeros(2, 5 * SR)
    x[:, : 2 * SR] = 0.1 * torch.randn(2, 2 * SR)  # chunk 0 active
    x[:, 4 * SR :] = 0.1 * torch.randn(2, SR)  # only the tail chunk (3 s..5 s) is active
    chunks, dropped = active_chunks(x, 2 * SR, SR)
    # starts 0, 2 s and the tail chunk ending at 5 s; the middle one is silent
    assert chunks.shape == (2, 2, 2 * SR) and dropped == 1
    assert torch.equal(chunks[0], x[:, : 2 * SR]) and torch.equal(chunks[1], x[:, 3 * SR :])


def test_active_chunks_errors():
    with pytest.raises(MatchError, match="at least one 2 s chunk"):
        active_chunks(torch.randn(1, SR), 2 * SR, SR, label="ref.wav")
    with pytest.raises(MatchError, match="ref.wav: no active"):
        active_chunks(1e-5 * torch.randn(1, 4 * SR), 2 * SR, SR, label="ref.wav")


# --- matching -----------------------------------------------------------------------------------
def test_match_moves_towards_the_reference_and_is_deterministic():
    dry, ref = vocal_like(4.0), bright_reference()
    kw = dict(encoder="mfcc", alpha=0.0, steps=25, chunk_seconds=CHUNK, progress=False)
    res = match(dry, ref, SR, **kw)
    r = res.stats
    assert res.audio.shape == (2, dry.shape[-1]) and torch.isfinite(res.audio).all()
    assert np.isfinite(res.preset.raw).all()
    assert len(res.history) == 25 and r.n_ref_chunks == 2 and r.n_dry_chunks == 2
    # The angular distance to the reference must fall clearly (a broken gradient leaves it flat).
    assert r.nll < r.initial_nll - 0.1, r.summary()
    assert r.sigma_mid_deg < 0.8 * r.initial_sigma_mid_deg, r.summary()
    # It found brightness: the high shelf (or the peak EQ near it) went up, not down.
    hs = (
        res.preset.raw[P.INDEX["high_shelf.gain_db"]]
        - GaussianPrior.default().mean[P.INDEX["high_shelf.gain_db"]].item()
    )
    assert hs > 0.5
    again = match(dry, ref, SR, **kw)
    assert np.array_equal(again.preset.raw, res.preset.raw)
    assert torch.equal(again.audio, res.audio)


def test_prior_weight_pulls_towards_the_prior_mean():
    dry, ref = vocal_like(4.0), bright_reference()
    mean = GaussianPrior.default().mean.numpy()
    kw = dict(encoder="mfcc", steps=15, chunk_seconds=CHUNK, progress=False)
    free = match(dry, ref, SR, alpha=0.0, **kw).preset.raw
    tied = match(dry, ref, SR, alpha=10.0, **kw).preset.raw
    assert np.sum((tied - mean) ** 2) < np.sum((free - mean) ** 2)


def test_whitened_space_square_root_and_first_step():
    from vocalfx.matching.optimize import prior_sqrt_cov

    prior = GaussianPrior.default()
    S = prior_sqrt_cov(prior.cov)
    C = prior.cov
    # S is the symmetric square root of the covariance (oracle: S S = C, S = S^T).
    assert torch.allclose(S, S.T, atol=1e-12)
    assert float((S @ S - C).abs().max()) <= 1e-9 * float(C.abs().max())
    # Adam's first step moves every coordinate of its variable by lr * sign(gradient): in
    # whitened space the raw vector must therefore move by S @ dz with |dz_i| = lr for all i.
    dry, ref = vocal_like(4.0), bright_reference()
    after = []
    match(
        dry,
        ref,
        SR,
        encoder="mfcc",
        alpha=1.0,
        steps=1,
        chunk_seconds=CHUNK,
        progress=False,
        lr=0.05,
        space="whitened",
        init="mean",
        callback=lambda i, v: after.append(v.double()),
    )
    dz = torch.linalg.solve(S, after[0] - prior.mean.float().double())
    assert torch.allclose(dz.abs(), torch.full_like(dz, 0.05), rtol=2e-3, atol=1e-5), dz.abs().min()


def test_whitened_space_moves_towards_the_reference():
    dry, ref = vocal_like(4.0), bright_reference()
    res = match(
        dry, ref, SR, encoder="mfcc", alpha=0.0, steps=20, chunk_seconds=CHUNK, progress=False, space="whitened"
    )
    r = res.stats
    assert r.space == "whitened" and "whitened space" in r.summary()
    assert np.isfinite(res.preset.raw).all() and torch.isfinite(res.audio).all()
    assert r.loss < r.initial_loss - 0.05, r.summary()
    with pytest.raises(MatchError, match="space must be one of raw, whitened"):
        match(dry, ref, SR, steps=1, chunk_seconds=CHUNK, progress=False, space="diagonal")


def test_match_accepts_other_rates_and_files(tmp_path):
    dry, ref = vocal_like(4.0), bright_reference()
    import torchaudio.functional as AF

    ref48 = AF.resample(ref, SR, 48000)
    dry22 = AF.resample(dry, SR, 22050)
    res = match(dry22, ref48, 22050, reference_sample_rate=48000, steps=2, chunk_seconds=CHUNK, progress=False)
    assert res.sample_rate == 22050 and res.audio.shape == (2, dry22.shape[-1])
    sf.write(tmp_path / "dry.wav", dry[0].numpy(), SR, subtype="FLOAT")
    sf.write(tmp_path / "ref.flac", ref.T.numpy() * 0.5, 48000)
    res = match(tmp_path / "dry.wav", tmp_path / "ref.flac", steps=2, chunk_seconds=CHUNK, progress=False)
    assert res.audio.shape == (2, dry.shape[-1])
    assert res.preset.extra["match"]["reference"].endswith("ref.flac")


class _NaNAfter(StereoEncoder):
    """MFCC that returns NaN embeddings on chosen calls (to exercise the non-finite guard)."""

    model_sample_rate = 44100
    embedding_dim = 100
    bad_calls: set = set()

    def __init__(self, sample_rate: int = 44100) -> None:
        super().__init__(sample_rate)
        self.inner = MFCCEncoder(sample_rate)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        e = self.inner(x)
        if self.calls in self.bad_calls:
            return {k: v * float("nan") for k, v in e.items()}
        return e


register_encoder("test-nan")(_NaNAfter)


def test_nonfinite_steps_are_undone_and_reported():
    dry, ref = vocal_like(4.0), bright_reference()
    # call 1: reference, call 2: initial loss, calls 3..: one per step
    _NaNAfter.bad_calls = {5, 6}
    res = match(dry, ref, SR, encoder="test-nan", steps=6, chunk_seconds=CHUNK, progress=False)
    assert [r["step"] for r in res.stats.recoveries] == [2, 3]
    assert math.isnan(res.history[2]["loss"]) and math.isfinite(res.history[4]["loss"])
    assert np.isfinite(res.preset.raw).all() and torch.isfinite(res.audio).all()
    _NaNAfter.bad_calls = set(range(3, 100))
    with pytest.raises(MatchError, match="consecutive recoveries"):
        match(dry, ref, SR, encoder="test-nan", steps=20, chunk_seconds=CHUNK, progress=False, max_recoveries=3)
    _NaNAfter.bad_calls = set()


@pytest.mark.parametrize(
    "dry, ref, kw, message",
    [
        (vocal_like(4.0).repeat(2, 1), None, {}, "must be mono"),
        (vocal_like(4.0) * float("nan"), None, {}, "NaN"),
        (None, torch.zeros(2, 4 * SR), {}, "silent"),
        (None, 1e-6 * torch.randn(2, 4 * SR), {}, "silent|no active"),
        (None, torch.randn(2, SR) * 0.1, {}, "at least one 2 s chunk"),
        (None, None, {"encoder": "nope"}, "unknown encoder"),
        (None, None, {"sample_rate": 1000}, "sample_rate"),
        (None, None, {"alpha": -1.0}, "alpha"),
        (None, None, {"init": np.full(130, np.nan)}, "init"),
    ],
)
def test_bad_inputs_raise_clear_errors(dry, ref, kw, message):
    dry = vocal_like(4.0) if dry is None else dry
    ref = bright_reference() if ref is None else ref
    with pytest.raises(vocalfx.errors.VocalfxError, match=message):
        match(dry, ref, chunk_seconds=CHUNK, steps=1, progress=False, **kw)


# --- command line -------------------------------------------------------------------------------
def test_cli_match_writes_audio_preset_and_report(tmp_path, capsys):
    sf.write(tmp_path / "dry.wav", vocal_like(4.0)[0].numpy(), SR)
    sf.write(tmp_path / "ref.wav", bright_reference().T.numpy() * 0.5, SR)
    before = sha(tmp_path / "dry.wav"), sha(tmp_path / "ref.wav")
    args = [
        str(tmp_path / "dry.wav"),
        str(tmp_path / "ref.wav"),
        "-o",
        str(tmp_path / "out.wav"),
        "--chunk-seconds",
        "2",
        "--steps",
        "3",
        "-q",
        "--report",
        str(tmp_path / "report.json"),
    ]
    assert main(["match", *args]) == 0
    text = capsys.readouterr().out
    assert "RMS embedding angle" in text and "out.preset.json" in text
    y, rate = sf.read(tmp_path / "out.wav")
    assert rate == SR and y.shape == (4 * SR, 2) and np.isfinite(y).all()
    preset = Preset.from_json(tmp_path / "out.preset.json")
    # the defaults: the fx encoder from its predicted start
    assert np.isfinite(preset.raw).all() and preset.extra["match"]["encoder"] == "fx"
    assert preset.extra["match"]["init"] == "predicted (fx)"
    rep = json.loads((tmp_path / "report.json").read_text())
    assert len(rep["history"]) == 3 and rep["stats"]["steps"] == 3
    assert (sha(tmp_path / "dry.wav"), sha(tmp_path / "ref.wav")) == before
    # the same inputs -> the same preset
    assert main(["match", *args[:3], str(tmp_path / "out2.wav"), *args[4:-2]]) == 0
    assert np.array_equal(Preset.from_json(tmp_path / "out2.preset.json").raw, preset.raw)
    # --space reaches match and its report
    assert main(["match", *args[:3], str(tmp_path / "out3.wav"), *args[4:], "--space", "whitened"]) == 0
    assert json.loads((tmp_path / "report.json").read_text())["stats"]["space"] == "whitened"


def test_cli_match_errors_are_one_line(tmp_path, capsys):
    sf.write(tmp_path / "dry.wav", vocal_like(4.0)[0].numpy(), SR)
    sf.write(
        tmp_path / "stereo_dry.wav", np.stack([vocal_like(4.0)[0].numpy(), vocal_like(4.0, seed=5)[0].numpy()], 1), SR
    )
    sf.write(tmp_path / "silent.wav", np.zeros((4 * SR, 2)), SR)
    sf.write(tmp_path / "short.wav", bright_reference(1.0).T.numpy() * 0.5, SR)
    sf.write(tmp_path / "ref.wav", bright_reference().T.numpy() * 0.5, SR)
    cases = [
        (["dry.wav", "silent.wav"], "silent"),
        (["dry.wav", "short.wav"], "at least one 2 s chunk"),
        (["stereo_dry.wav", "ref.wav"], "different channels"),
        (["dry.wav", "missing.wav"], "missing.wav"),
        (["dry.wav", "ref.wav", "--encoder", "afx-rep", "--afx-rep", str(tmp_path / "nope.ckpt")], "nope.ckpt"),
    ]
    for files, message in cases:
        code = main(
            [
                "match",
                *[str(tmp_path / f) for f in files[:2]],
                *files[2:],
                "-o",
                str(tmp_path / "o.wav"),
                "--chunk-seconds",
                "2",
                "--steps",
                "1",
                "-q",
            ]
        )
        err = capsys.readouterr().err
        assert code == 1, files
        assert err.startswith("vocalfx: error:") and message in err and "Traceback" not in err, err
    assert not (tmp_path / "o.wav").exists()
    # refuses to write over its input
    code = main(["match", str(tmp_path / "dry.wav"), str(tmp_path / "ref.wav"), "-o", str(tmp_path / "dry.wav"), "-q"])
    assert code == 1 and "refusing to overwrite" in capsys.readouterr().err


def test_cli_match_with_an_afx_rep_checkpoint(tmp_path, capsys, monkeypatch):
    """`--encoder afx-rep` loads a checkpoint in the published format (made here with random
    weights) from --afx-rep or $VOCALFX_AFX_REP and runs the optimiser through it."""
    from test_afx_rep import published_checkpoint, random_net

    ckpt = tmp_path / "afx-rep.ckpt"
    torch.save(published_checkpoint(random_net()), ckpt)
    sf.write(tmp_path / "dry.wav", vocal_like(4.0)[0].numpy(), SR)
    sf.write(tmp_path / "ref.wav", bright_reference().T.numpy() * 0.5, SR)
    common = [
        str(tmp_path / "dry.wav"),
        str(tmp_path / "ref.wav"),
        "--encoder",
        "afx-rep",
        "--chunk-seconds",
        "2",
        "--steps",
        "2",
        "-q",
        "--report",
        str(tmp_path / "r.json"),
    ]
    assert main(["match", *common, "-o", str(tmp_path / "a.wav"), "--afx-rep", str(ckpt)]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["stats"]["encoder"] == "afx-rep" and all(math.isfinite(h["loss"]) for h in rep["history"])
    monkeypatch.setenv("VOCALFX_AFX_REP", str(ckpt))
    assert main(["match", *common[:-1], str(tmp_path / "r2.json"), "-o", str(tmp_path / "b.wav")]) == 0
    assert (
        Preset.from_json(tmp_path / "b.preset.json").raw.tolist()
        == Preset.from_json(tmp_path / "a.preset.json").raw.tolist()
    )
    monkeypatch.delenv("VOCALFX_AFX_REP")
    capsys.readouterr()
    assert main(["match", *common, "-o", str(tmp_path / "c.wav")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vocalfx: error:") and "VOCALFX_AFX_REP" in err and "Traceback" not in err


# --- the fx encoder's predicted start ---------------------------------------------------------------
def test_match_from_the_predicted_preset():
    from vocalfx.encoders import get_encoder
    from vocalfx.matching.start import predicted_start

    dry, ref = vocal_like(4.0), bright_reference()
    kw = dict(encoder="mfcc", init="predicted", steps=0, chunk_seconds=CHUNK, progress=False, level="preset")
    res = match(dry, ref, SR, **kw)
    assert res.stats.init == "predicted (fx)" and res.stats.best_step == 0
    # what match started from is the head's prediction on its own chunks (reference at -18 LUFS)
    enc = get_encoder("fx")
    r, _ = vocalfx.io.loudness_normalize(ref, SR, -18.0)
    d, _ = vocalfx.io.loudness_normalize(dry, SR, -18.0)
    expected, _ = predicted_start(
        active_chunks(r, int(CHUNK * SR), SR)[0], active_chunks(d, int(CHUNK * SR), SR)[0], enc
    )
    np.testing.assert_allclose(res.preset.raw, expected, rtol=0, atol=1e-6)
    mean = GaussianPrior.default().mean.double().numpy()
    assert np.abs(expected - mean).max() > 0.05  # not the mean
    # prediction_weight keeps that fraction of the prediction's distance from the prior mean
    res = match(dry, ref, SR, prediction_weight=0.5, **kw)
    assert res.stats.init == "predicted (fx), weight 0.5 from the prior mean"
    np.testing.assert_allclose(res.preset.raw, mean + 0.5 * (expected - mean), rtol=1e-7, atol=1e-6)  # float32 preset
    with pytest.raises(MatchError, match="prediction_weight"):
        match(dry, ref, SR, prediction_weight=1.5, **kw)
    # with encoder="fx" the same encoder also scores the match; a few steps lower the loss
    res = match(dry, ref, SR, encoder="fx", init="predicted", steps=3, chunk_seconds=CHUNK, progress=False)
    assert res.stats.init.startswith("predicted (fx)") and res.stats.loss <= res.stats.initial_loss
    assert np.isfinite(res.preset.raw).all() and torch.isfinite(res.audio).all()
    with pytest.raises(ValueError, match="MFCCEncoder has no preset head"):
        predicted_start(torch.zeros(1, 2, SR), torch.zeros(1, 1, SR), MFCCEncoder())


def test_cli_match_init_predicted_with_the_fx_encoder(tmp_path, capsys):
    sf.write(tmp_path / "dry.wav", vocal_like(4.0)[0].numpy(), SR)
    sf.write(tmp_path / "ref.wav", bright_reference().T.numpy() * 0.5, SR)
    out = tmp_path / "out.wav"
    assert (
        main(
            [
                "match",
                str(tmp_path / "dry.wav"),
                str(tmp_path / "ref.wav"),
                "-o",
                str(out),
                "--chunk-seconds",
                "2",
                "--steps",
                "2",
                "-q",
                "--encoder",
                "fx",
                "--init",
                "predicted",
            ]
        )
        == 0
    )
    preset = Preset.from_json(tmp_path / "out.preset.json")
    assert preset.extra["match"]["encoder"] == "fx" and preset.extra["match"]["init"].startswith("predicted (fx)")
