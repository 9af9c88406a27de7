"""vocalfx.prior.GaussianPrior: fit (DiffVox's convention and Ledoit-Wolf), log_prob, sampling,
the file format and the shipped default prior.

Oracles: DiffVox's own ``gaussian.npz``; ``scipy.stats.multivariate_normal``; a per-sample numpy
transcription of the Ledoit-Wolf (2004) formulas; ``torch.autograd.gradcheck``; the chi-square
and Wishart laws of Gaussian sample moments.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from vocalfx import VocalChain
from vocalfx.params import LAYOUT_ID, NUM_PARAMS, from_diffvox
from vocalfx.prior import GaussianPrior, PriorError, PriorNotFoundError, ledoit_wolf

P = NUM_PARAMS


def _collection(shared: Path, name: str):
    d = shared / "diffvox-presets" / name
    return d, from_diffvox(np.load(d / "raw_params.npy"))


@pytest.fixture(scope="module")
def internal(shared):
    d, raw = _collection(shared, "internal")
    train = np.load(d / "train_index.npy")
    held_out = np.setdiff1d(np.arange(raw.shape[0]), train)
    return dict(dir=d, raw=raw, train=train, held_out=held_out)


@pytest.fixture(scope="module")
def medleydb(shared):
    d, raw = _collection(shared, "medleydb")
    return dict(dir=d, raw=raw)


def _synthetic(n, seed=0, p=P):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((p, p)) / np.sqrt(p)
    return rng.standard_normal((n, p)) @ a.T * rng.uniform(0.1, 3.0, p) + rng.standard_normal(p)


def _rewrite_npz(src: Path, dst: Path, **changes):
    with np.load(src) as f:
        data = {k: f[k] for k in f.files}
    data.update({k: np.asarray(v) for k, v in changes.items()})
    np.savez(dst, **data)
    return dst


# --------------------------------------------------------------------------- fit vs DiffVox
def test_fit_reproduces_diffvox_gaussian_npz(internal, medleydb):
    """DiffVox fitted gaussian.npz from raw_params[train_index][:, feature_mask] with the
    covariance normalised by N - 1 (N gives a 1/N relative error: 2.7e-3 for 365 presets).
    Tolerance: 1e-4 relative, with an absolute floor of 1e-4 * max|entry| because the float32
    reference's small entries carry ~1e-7 * max|entry| of rounding (entrywise 1.7e-3 relative)."""
    for coll, x in [(internal, internal["raw"][internal["train"]]), (medleydb, medleydb["raw"])]:
        ref = np.load(coll["dir"] / "gaussian.npz")
        prior = GaussianPrior.fit(x)
        for ours, theirs in [(prior.mean.numpy(), ref["mean"]), (prior.cov.numpy(), ref["cov"])]:
            theirs = theirs.astype(np.float64)
            np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
            assert np.abs(ours - theirs).max() / np.abs(theirs).max() < 1e-6
    # the other convention does not reproduce it
    x = internal["raw"][internal["train"]]
    ref_cov = np.load(internal["dir"] / "gaussian.npz")["cov"]
    biased = np.cov(x.T, ddof=0)
    assert np.abs(biased - ref_cov).max() / np.abs(ref_cov).max() > 1e-3


def test_default_prior_equals_fresh_fit(internal):
    default = GaussianPrior.default()
    fresh = GaussianPrior.fit(internal["raw"][internal["train"]])
    assert default.n_presets == fresh.n_presets == 365
    assert default.shrinkage is None
    np.testing.assert_allclose(default.mean.numpy(), fresh.mean.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(default.cov.numpy(), fresh.cov.numpy(), rtol=1e-12, atol=1e-12)
    # provenance: the digests in the shipped file are those of the collection in ../shared
    for f in ("raw_params.npy", "train_index.npy"):
        assert hashlib.sha256((internal["dir"] / f).read_bytes()).hexdigest() in default.source


def test_default_prior_is_package_data():
    """The default loads from the shipped data (priors/, carried in the wheel as
    vocalfx._shipped.priors); nothing from ../shared. .ci/run checks the installed wheel too."""
    from vocalfx._data import data_path

    path = data_path("priors", "diffvox-internal.npz")
    assert path.is_file() and "shared" not in path.parts
    default = GaussianPrior.default()
    loaded = GaussianPrior.load(path)
    assert torch.equal(default.cov, loaded.cov) and torch.equal(default.mean, loaded.mean)
    assert default.mean.dtype == torch.float64 and default.cov.shape == (P, P)


# --------------------------------------------------------------------------- Ledoit-Wolf
def _ledoit_wolf_oracle(x):
    """Ledoit & Wolf (2004), Lemma 3.1 / Theorem 3.1, transcribed per sample with their norm
    ||A||^2 = tr(A A^T) / p."""
    n, p = x.shape
    xc = x - x.mean(0)
    s = xc.T @ xc / n
    norm2 = lambda a: np.trace(a @ a.T) / p  # noqa: E731
    m = np.trace(s) / p
    eye = np.eye(p)
    d2 = norm2(s - m * eye)
    b2_bar = sum(norm2(np.outer(xk, xk) - s) for xk in xc) / n**2
    b2 = min(b2_bar, d2)
    return b2 / d2 * m * eye + (1 - b2 / d2) * s, b2 / d2


@pytest.mark.parametrize("n", [20, 70, 500])
def test_ledoit_wolf_matches_formula(n):
    x = _synthetic(n, seed=n)
    cov, s = ledoit_wolf(x)
    cov_ref, s_ref = _ledoit_wolf_oracle(x)
    assert 0.0 < s <= 1.0
    np.testing.assert_allclose(s, s_ref, rtol=1e-10)
    np.testing.assert_allclose(cov, cov_ref, rtol=1e-10, atol=1e-12 * np.abs(cov_ref).max())
    prior = GaussianPrior.fit(x, shrinkage="ledoit-wolf")
    assert prior.shrinkage == "ledoit-wolf" and prior.shrinkage_intensity == pytest.approx(s)
    np.testing.assert_allclose(prior.cov.numpy(), cov_ref, rtol=1e-10, atol=1e-12 * np.abs(cov_ref).max())


def test_medleydb_ledoit_wolf_is_positive_definite(internal, medleydb):
    x = medleydb["raw"]
    assert x.shape == (70, P)
    with pytest.raises(ValueError, match="not positive definite.*ledoit-wolf"):
        GaussianPrior.fit(x).log_prob(torch.as_tensor(x))
    prior = GaussianPrior.fit(x, shrinkage="ledoit-wolf")
    cov_ref, s_ref = _ledoit_wolf_oracle(x)
    np.testing.assert_allclose(prior.cov.numpy(), cov_ref, rtol=1e-10, atol=1e-12 * np.abs(cov_ref).max())
    eig = np.linalg.eigvalsh(prior.cov.numpy())
    assert eig.min() > 0
    assert eig.max() / eig.min() < 1e3  # measured 68.8 (intensity 0.28); unshrunk: singular (rank 69)
    everything = torch.as_tensor(np.concatenate([internal["raw"], x]))
    assert everything.shape == (385 + 70, P)
    for pr in (prior, GaussianPrior.default()):
        lp = pr.log_prob(everything)
        assert lp.shape == (455,) and torch.isfinite(lp).all()


def test_held_out_presets_beat_uniform_vectors(internal):
    """The 20 internal presets not in train_index score higher under the prior fitted on the
    other 365 than raw vectors drawn uniformly, per dimension, over [min, max] of the whole
    385-preset collection (a box that contains every preset)."""
    prior = GaussianPrior.fit(internal["raw"][internal["train"]])
    held = torch.as_tensor(internal["raw"][internal["held_out"]])
    assert held.shape == (20, P)
    lo, hi = internal["raw"].min(0), internal["raw"].max(0)
    rng = np.random.default_rng(0)
    uniform = torch.as_tensor(rng.uniform(lo, hi, size=(1000, P)))
    lp_held, lp_unif = prior.log_prob(held), prior.log_prob(uniform)
    assert lp_held.mean() > lp_unif.mean()
    # not just on average: the worst held-out preset beats the best uniform vector
    assert lp_held.min() > lp_unif.max()


# --------------------------------------------------------------------------- log_prob
def test_log_prob_matches_scipy():
    prior = GaussianPrior.default()
    v = torch.cat([prior.sample(50, generator=torch.Generator().manual_seed(1)), prior.mean[None]])
    v = torch.cat([v, v[:10] + 3.0])  # far from the mean too
    ours = prior.log_prob(v).numpy()
    ref = stats.multivariate_normal(prior.mean.numpy(), prior.cov.numpy()).logpdf(v.numpy())
    np.testing.assert_allclose(ours, ref, rtol=1e-8)


def test_log_prob_shapes_dtypes_and_devices():
    prior = GaussianPrior.default()
    v = prior.sample(6, generator=torch.Generator().manual_seed(2))
    full = prior.log_prob(v)
    assert full.shape == (6,) and full.dtype == torch.float64
    assert prior.log_prob(v[0]).shape == ()
    torch.testing.assert_close(prior.log_prob(v.reshape(2, 3, P)), full.reshape(2, 3), rtol=0, atol=0)
    torch.testing.assert_close(prior.log_prob(v[:1]), full[:1], rtol=1e-12, atol=0)  # batch of 1
    torch.testing.assert_close(prior.log_prob(v.numpy()), full)  # arrays are converted to float64
    f32 = prior.log_prob(v.float())
    assert f32.dtype == torch.float32
    torch.testing.assert_close(f32.double(), full, rtol=1e-4, atol=0)
    for bad in (torch.zeros(3, 151), torch.zeros(()), torch.zeros(129)):
        with pytest.raises(ValueError, match=r"\(\.\.\., 130\)"):
            prior.log_prob(bad)


def test_log_prob_gradcheck_and_analytic_gradient():
    prior = GaussianPrior.default()
    v = prior.sample(3, generator=torch.Generator().manual_seed(3)).requires_grad_(True)
    assert torch.autograd.gradcheck(prior.log_prob, (v,), eps=1e-6, atol=1e-6, rtol=1e-5)
    (g,) = torch.autograd.grad(prior.log_prob(v).sum(), v)
    expected = -np.linalg.solve(prior.cov.numpy(), (v.detach() - prior.mean).numpy().T).T
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-7, atol=1e-9 * np.abs(expected).max())


# --------------------------------------------------------------------------- sample
def test_sample_is_seeded_and_has_the_prior_moments():
    prior = GaussianPrior.default()
    a = prior.sample(5, generator=torch.Generator().manual_seed(7))
    b = prior.sample(5, generator=torch.Generator().manual_seed(7))
    c = prior.sample(5, generator=torch.Generator().manual_seed(8))
    assert a.shape == (5, P) and a.dtype == torch.float64
    assert torch.equal(a, b) and not torch.equal(a, c)

    n = 20000
    s = prior.sample(n, generator=torch.Generator().manual_seed(0)).numpy()
    mean, cov = prior.mean.numpy(), prior.cov.numpy()
    L = np.linalg.cholesky(cov)
    # mean: n (xbar - mu)^T C^-1 (xbar - mu) ~ chi2(130) exactly; bound at its 1 - 1e-6 quantile
    r = np.linalg.solve(L, s.mean(0) - mean)
    assert n * r @ r < stats.chi2.ppf(1 - 1e-6, P)
    # covariance, whitened: W = L^-1 S L^-T ~ Wishart(I, n - 1) / (n - 1), for which
    # E||W - I||_F^2 = p (p + 1) / (n - 1) (0.85 here); that sum of ~8.5k squares concentrates
    # within a few percent, so a 1.5x margin on the norm is loose.
    w = np.linalg.solve(L, np.linalg.solve(L, np.cov(s.T)).T)
    assert np.linalg.norm(w - np.eye(P)) < 1.5 * np.sqrt(P * (P + 1) / (n - 1))
    # and unwhitened, in the raw space: within a few percent of the prior's scale
    assert np.abs(np.cov(s.T) - cov).max() < 0.05 * np.abs(cov).max()


# --------------------------------------------------------------------------- files
def test_save_load_round_trip(tmp_path):
    prior = GaussianPrior.fit(_synthetic(40, seed=4), shrinkage="ledoit-wolf", source="synthetic test data")
    path = tmp_path / "prior.npz"
    prior.save(path)
    back = GaussianPrior.load(path)
    assert torch.equal(back.mean, prior.mean) and torch.equal(back.cov, prior.cov)
    assert (back.n_presets, back.source, back.shrinkage) == (40, "synthetic test data", "ledoit-wolf")
    assert back.shrinkage_intensity == prior.shrinkage_intensity
    v = prior.sample(4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(back.log_prob(v), prior.log_prob(v))
    with np.load(path, allow_pickle=False) as f:  # the documented keys, readable without pickle
        assert str(f["layout_id"]) == LAYOUT_ID and int(f["num_params"]) == P
        assert str(f["format"]) == "vocalfx-gaussian-prior" and len(f["param_names"]) == P
    # a prior built without fit() (unknown count, no shrinkage) round-trips too
    bare = GaussianPrior(prior.mean, prior.cov)
    bare.save(tmp_path / "bare.npz")
    again = GaussianPrior.load(tmp_path / "bare.npz")
    assert again.n_presets is None and again.shrinkage is None and again.shrinkage_intensity is None


def test_load_refuses_another_layout(tmp_path):
    good = tmp_path / "good.npz"
    GaussianPrior.default().save(good)
    bad = _rewrite_npz(good, tmp_path / "other-layout.npz", layout_id="diffvox-151-v0")
    with pytest.raises(ValueError, match=r"other-layout\.npz.*layout 'diffvox-151-v0'.*diffvox-130-v1"):
        GaussianPrior.load(bad)
    wide = _rewrite_npz(good, tmp_path / "wide.npz", num_params=np.int64(151))
    with pytest.raises(ValueError, match=r"wide\.npz.*151 values"):
        GaussianPrior.load(wide)


def test_load_refuses_nan_corrupt_and_missing_files(tmp_path):
    good = tmp_path / "good.npz"
    prior = GaussianPrior.default()
    prior.save(good)
    mean = prior.mean.numpy()
    mean[16] = np.nan
    with pytest.raises(ValueError, match=r"nan-mean\.npz.*NaN or Inf.*comp\.makeup_db"):
        GaussianPrior.load(_rewrite_npz(good, tmp_path / "nan-mean.npz", mean=mean))
    cov = prior.cov.numpy()
    cov[3, 3] = np.inf
    with pytest.raises(ValueError, match=r"inf-cov\.npz.*NaN or Inf"):
        GaussianPrior.load(_rewrite_npz(good, tmp_path / "inf-cov.npz", cov=cov))

    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(good.read_bytes()[:5000])  # truncated download
    with pytest.raises(ValueError, match=r"corrupt\.npz"):
        GaussianPrior.load(corrupt)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a prior at all")
    with pytest.raises(ValueError, match=r"garbage\.npz"):
        GaussianPrior.load(garbage)
    np.save(tmp_path / "array.npy", mean)
    with pytest.raises(ValueError, match=r"array\.npy"):
        GaussianPrior.load(tmp_path / "array.npy")
    with pytest.raises(FileNotFoundError, match=r"missing\.npz"):
        GaussianPrior.load(tmp_path / "missing.npz")

    with np.load(good) as f:
        data = {k: f[k] for k in f.files if k != "cov"}
    np.savez(tmp_path / "no-cov.npz", **data)
    with pytest.raises(ValueError, match=r"no-cov\.npz.*missing \['cov'\]"):
        GaussianPrior.load(tmp_path / "no-cov.npz")
    np.savez(tmp_path / "diffvox.npz", mean=mean, cov=cov)  # DiffVox's own gaussian.npz layout
    with pytest.raises(ValueError, match=r"diffvox\.npz.*not a vocalfx prior file"):
        GaussianPrior.load(tmp_path / "diffvox.npz")


# --------------------------------------------------------------------------- fit refusals
def test_fit_refuses_bad_collections():
    x = _synthetic(10)
    with pytest.raises(ValueError, match="at least 2 vectors to fit a covariance, got 1"):
        GaussianPrior.fit(x[:1])
    with pytest.raises(ValueError, match="at least 2 vectors to fit a covariance, got 0"):
        GaussianPrior.fit(x[:0])
    bad = x.copy()
    bad[4, 14] = np.nan
    bad[6, 14] = np.inf
    with pytest.raises(ValueError, match=r"NaN or Inf \(rows \[4, 6\], parameters \['comp\.comp_threshold_db'\]"):
        GaussianPrior.fit(bad)
    with pytest.raises(ValueError, match=r"shape \(N, 130\), got shape \(10, 151\).*from_diffvox"):
        GaussianPrior.fit(np.zeros((10, 151)))
    with pytest.raises(ValueError, match=r"shape \(N, 130\), got shape \(130,\)"):
        GaussianPrior.fit(x[0])
    with pytest.raises(ValueError, match="unknown shrinkage 'oas'"):
        GaussianPrior.fit(x, shrinkage="oas")
    # a torch input gives the same fit as numpy
    t = GaussianPrior.fit(torch.as_tensor(x, dtype=torch.float64))
    assert torch.equal(t.cov, GaussianPrior.fit(x).cov)


def test_rank_deficient_prior_raises_a_clear_error():
    prior = GaussianPrior.fit(_synthetic(30))  # 30 vectors in 130 dimensions: singular
    with pytest.raises(ValueError, match=r"not positive definite, fitted from 30 vectors.*shrinkage='ledoit-wolf'"):
        prior.log_prob(torch.zeros(P))
    with pytest.raises(ValueError, match="not positive definite"):
        prior.sample(1)
    assert torch.isfinite(GaussianPrior.fit(_synthetic(30), shrinkage="ledoit-wolf").log_prob(torch.zeros(P)))


# --------------------------------------------------------------------------- renders
def test_default_prior_samples_render_finite_non_silent_audio():
    """500 presets drawn from the default prior, rendered (float32, batches of 50) on a 0.25 s
    white-noise burst at -20 dBFS RMS: every output is finite and peaks above 1e-4. (The dry path
    reaches the output at once, so a quarter second shows silence as well as a longer burst.)"""
    n, batch, sample_rate = 500, 50, 44100  # each render is dominated by the 12 s FDN response, not the burst
    presets = GaussianPrior.default().sample(n, generator=torch.Generator().manual_seed(2025)).float()
    x = 0.1 * torch.randn(1, 1, sample_rate // 4, generator=torch.Generator().manual_seed(0))
    chain = VocalChain(sample_rate)
    peaks, finite = [], []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, n, batch):
            y = chain(x, params=presets[i : i + batch])
            assert y.shape == (min(batch, n - i), 2, x.shape[-1]) and y.dtype == torch.float32
            finite.append(torch.isfinite(y).all(dim=(1, 2)))
            peaks.append(y.abs().amax(dim=(1, 2)))
    elapsed = time.perf_counter() - t0
    finite, peaks = torch.cat(finite), torch.cat(peaks)
    assert finite.all(), f"non-finite output for presets {torch.nonzero(~finite).flatten().tolist()[:10]}"
    silent = torch.nonzero(peaks <= 1e-4).flatten().tolist()
    assert not silent, f"silent output (peak <= 1e-4) for presets {silent[:10]}"
    print(f"rendered {n} presets in {elapsed:.1f} s; peak min {peaks.min():.3g}, median {peaks.median():.3g}")


def test_prior_errors_are_vocalfx_errors(tmp_path):
    """Bad prior files are user errors (one line from the CLI), and stay ValueError/FileNotFoundError."""
    from vocalfx.errors import VocalfxError

    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(PriorError) as e:
        GaussianPrior.load(junk)
    assert isinstance(e.value, VocalfxError) and isinstance(e.value, ValueError)
    with pytest.raises(PriorNotFoundError) as e:
        GaussianPrior.load(tmp_path / "missing.npz")
    assert isinstance(e.value, VocalfxError) and isinstance(e.value, FileNotFoundError)
    singular = GaussianPrior.fit(np.random.default_rng(0).normal(size=(10, NUM_PARAMS)))
    with pytest.raises(PriorError, match="not positive definite"):
        singular.sample(1)


def test_describe_lists_every_parameter():
    text = GaussianPrior.default().describe()
    lines = text.splitlines()
    assert lines[0].startswith("source: DiffVox internal collection")
    assert "fitted from 365 presets" in lines[1] and lines[2] == f"layout: {LAYOUT_ID}"
    assert len(lines) == 9 + NUM_PARAMS
    assert lines[9].startswith("peak1.gain_db ") and lines[-1].startswith("pan.position ")
