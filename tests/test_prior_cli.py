"""`vocalfx prior fit | info | sample`: outputs, provenance of inputs, and one-line errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from vocalfx import params as P
from vocalfx.cli import main
from vocalfx.preset import Preset, save_collection
from vocalfx.prior import GaussianPrior


def run(args, capsys):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def one_line_error(code: int, err: str) -> str:
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocalfx: error: "), err
    assert "Traceback" not in err
    return lines[0]


def no_temp_files(d: Path) -> bool:
    return not [p for p in d.rglob(".*") if p.name.endswith(".tmp")]


@pytest.fixture
def collection(tmp_path) -> Path:
    """A vocalfx collection of 12 presets (jittered defaults)."""
    g = np.random.default_rng(0)
    base = P.default_vector()
    presets = [Preset(base + 0.3 * g.standard_normal(P.NUM_PARAMS), name=f"p{i}") for i in range(12)]
    path = tmp_path / "coll.json"
    save_collection(presets, path, name="test")
    return path


# --- prior fit ------------------------------------------------------------------------------
def test_fit_collection_json_matches_the_api(tmp_path, collection, capsys):
    out = tmp_path / "p.npz"
    before = digest(collection)
    code, so, se = run(["prior", "fit", collection, "-o", out, "--shrinkage", "ledoit-wolf"], capsys)
    assert code == 0, se
    assert "12 of 12 presets" in so and "ledoit-wolf" in so
    prior = GaussianPrior.load(out)
    from vocalfx.preset import collection_vectors, load_collection

    ref = GaussianPrior.fit(collection_vectors(load_collection(collection)), shrinkage="ledoit-wolf")
    torch.testing.assert_close(prior.mean, ref.mean, rtol=0, atol=0)
    torch.testing.assert_close(prior.cov, ref.cov, rtol=0, atol=0)
    assert prior.shrinkage == "ledoit-wolf" and prior.n_presets == 12
    assert digest(collection) == before
    assert no_temp_files(tmp_path)


def test_fit_writes_exactly_the_named_path(tmp_path, collection, capsys):
    """np.savez would append .npz to a name without it; the CLI writes the path given."""
    out = tmp_path / "prior.bin"
    code, _, se = run(["prior", "fit", collection, "-o", out, "--shrinkage", "ledoit-wolf"], capsys)
    assert code == 0, se
    assert out.is_file() and not (tmp_path / "prior.bin.npz").exists()
    GaussianPrior.load(out)


def test_fit_diffvox_folder_with_index_file_reproduces_the_shipped_prior(tmp_path, shared, capsys):
    out = tmp_path / "internal.npz"
    folder = shared / "diffvox-presets" / "internal"
    code, so, se = run(["prior", "fit", folder, "-o", out, "--index-file", folder / "train_index.npy"], capsys)
    assert code == 0, se
    assert "365 of 385" in so
    prior, shipped = GaussianPrior.load(out), GaussianPrior.default()
    torch.testing.assert_close(prior.mean, shipped.mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(prior.cov, shipped.cov, rtol=0, atol=1e-10)


def test_fit_small_collection_without_shrinkage_warns_singular(tmp_path, shared, capsys):
    out = tmp_path / "m.npz"
    code, _, se = run(["prior", "fit", shared / "diffvox-presets" / "medleydb", "-o", out], capsys)
    assert code == 0
    assert "singular" in se and "--shrinkage ledoit-wolf" in se


def test_fit_refuses_to_overwrite_its_input(tmp_path, collection, capsys):
    before = digest(collection)
    code, _, se = run(["prior", "fit", collection, "-o", collection], capsys)
    assert "refusing to overwrite an input" in one_line_error(code, se)
    assert digest(collection) == before


@pytest.mark.parametrize("n", [0, 1])
def test_fit_needs_two_presets(tmp_path, n, capsys):
    path = tmp_path / "small.json"
    save_collection([Preset.default()] * n, path)
    code, _, se = run(["prior", "fit", path, "-o", tmp_path / "p.npz"], capsys)
    line = one_line_error(code, se)
    assert "at least 2 presets" in line and f"got {n}" in line
    assert not (tmp_path / "p.npz").exists()


def test_fit_index_file_leaving_one_preset(tmp_path, collection, capsys):
    idx = tmp_path / "idx.npy"
    np.save(idx, np.array([3]))
    code, _, se = run(["prior", "fit", collection, "-o", tmp_path / "p.npz", "--index-file", idx], capsys)
    assert "at least 2 presets, got 1" in one_line_error(code, se)


@pytest.mark.parametrize(
    "content, message",
    [(np.array([0, 99]), "out of range"), (np.array([0.5, 1.0]), "integer"), (np.zeros((2, 2), dtype=int), "1-D")],
)
def test_fit_bad_index_file(tmp_path, collection, content, message, capsys):
    idx = tmp_path / "idx.npy"
    np.save(idx, content)
    code, _, se = run(["prior", "fit", collection, "-o", tmp_path / "p.npz", "--index-file", idx], capsys)
    assert message in one_line_error(code, se)


def test_fit_nan_in_a_collection_preset(tmp_path, collection, capsys):
    d = json.loads(collection.read_text())
    d["presets"][4]["raw"][7] = float("nan")  # json writes NaN, which Python's json reads back
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(d))
    code, _, se = run(["prior", "fit", bad, "-o", tmp_path / "p.npz"], capsys)
    line = one_line_error(code, se)
    assert "preset #4" in line and "non-finite" in line and P.SPECS[7].name in line


def test_fit_nan_in_a_diffvox_folder(tmp_path, shared, capsys):
    src = shared / "diffvox-presets" / "medleydb"
    folder = tmp_path / "dv"
    folder.mkdir()
    raw = np.load(src / "raw_params.npy")
    raw[2, 0] = np.nan
    np.save(folder / "raw_params.npy", raw)
    np.save(folder / "feature_mask.npy", np.load(src / "feature_mask.npy"))
    code, _, se = run(["prior", "fit", folder, "-o", tmp_path / "p.npz"], capsys)
    assert "non-finite" in one_line_error(code, se)


@pytest.mark.parametrize("what", ["missing-file", "missing-folder-arrays", "not-json"])
def test_fit_missing_or_bad_collection(tmp_path, what, capsys):
    if what == "missing-file":
        src = tmp_path / "nope.json"
    elif what == "missing-folder-arrays":
        src = tmp_path / "empty_dir"
        src.mkdir()
    else:
        src = tmp_path / "garbage.json"
        src.write_text("{not json")
    code, _, se = run(["prior", "fit", src, "-o", tmp_path / "p.npz"], capsys)
    assert str(src) in one_line_error(code, se)


# --- prior info -----------------------------------------------------------------------------
@pytest.mark.parametrize("args", [[], ["default"]])
def test_info_default_prior(args, capsys):
    code, so, se = run(["prior", "info", *args], capsys)
    assert code == 0, se
    assert "default (shipped)" in so and "fitted from 365 presets" in so
    assert P.LAYOUT_ID in so and "shrinkage: none" in so
    cov = GaussianPrior.default().cov.numpy()
    eig = np.linalg.eigvalsh(cov)
    assert f"{eig[-1] / eig[0]:.4g}" in so
    rows = [
        ln
        for ln in so.splitlines()
        if ln.split()
        and ln.split()[0]
        in {s.module + "." + s.name.split(".", 1)[1] + ("_ms" if s.display == "ms" else "") for s in P.SPECS}
    ]
    assert len(rows) == P.NUM_PARAMS
    # the table is in physical units: the compressor attack is shown in ms, around DiffVox's values
    attack = next(r for r in rows if r.startswith("comp.attack_ms"))
    assert attack.split()[1] == "ms"
    mean_ms = float(attack.split()[2])
    assert 0.1 < mean_ms < 100


def test_info_spread_is_the_mapped_one_sd_interval(tmp_path, capsys):
    """For peak1.freq_hz (min-max sigmoid map) the printed 16%..84% are map(mean -/+ sd)."""
    prior = GaussianPrior.default()
    i = P.INDEX["peak1.freq_hz"]
    m, sd = float(prior.mean[i]), float(prior.cov[i, i]) ** 0.5
    lo_hz = 33.0 + (5400.0 - 33.0) / (1 + np.exp(-(m - sd)))
    hi_hz = 33.0 + (5400.0 - 33.0) / (1 + np.exp(-(m + sd)))
    code, so, _ = run(["prior", "info"], capsys)
    row = next(r for r in so.splitlines() if r.startswith("peak1.freq_hz")).split()
    assert float(row[3]) == pytest.approx(lo_hz, rel=1e-3) and float(row[5]) == pytest.approx(hi_hz, rel=1e-3)


def test_info_shrunk_prior(tmp_path, collection, capsys):
    out = tmp_path / "p.npz"
    assert run(["prior", "fit", collection, "-o", out, "--shrinkage", "ledoit-wolf"], capsys)[0] == 0
    code, so, _ = run(["prior", "info", out], capsys)
    assert code == 0 and "shrinkage: ledoit-wolf (intensity" in so and "fitted from 12 presets" in so


def test_info_singular_prior_reports_infinite_condition(tmp_path, shared, capsys):
    out = tmp_path / "m.npz"
    run(["prior", "fit", shared / "diffvox-presets" / "medleydb", "-o", out], capsys)
    code, so, _ = run(["prior", "info", out], capsys)
    assert code == 0 and "inf (singular" in so


def _other_layout_prior(tmp_path) -> Path:
    ok = tmp_path / "ok.npz"
    GaussianPrior.default().save(ok)
    data = dict(np.load(ok))
    data["layout_id"] = np.array("some-other-layout-v9")
    bad = tmp_path / "other.npz"
    np.savez(bad, **data)
    return bad


@pytest.mark.parametrize("cmd", ["info", "sample"])
def test_prior_of_another_layout(tmp_path, cmd, capsys):
    bad = _other_layout_prior(tmp_path)
    args = ["prior", cmd, bad] + (["-n", "2", "-o", tmp_path / "s"] if cmd == "sample" else [])
    code, _, se = run(args, capsys)
    line = one_line_error(code, se)
    assert "some-other-layout-v9" in line and P.LAYOUT_ID in line
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("cmd", ["info", "sample"])
def test_missing_or_invalid_prior_file(tmp_path, cmd, capsys):
    extra = ["-n", "1", "-o", tmp_path / "s"] if cmd == "sample" else []
    code, _, se = run(["prior", cmd, tmp_path / "nope.npz", *extra], capsys)
    assert "nope.npz" in one_line_error(code, se)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    code, _, se = run(["prior", cmd, junk, *extra], capsys)
    assert "junk.npz" in one_line_error(code, se)


# --- prior sample ---------------------------------------------------------------------------
def test_sample_writes_named_reproducible_presets(tmp_path, capsys):
    out = tmp_path / "samples"
    code, so, se = run(["prior", "sample", "default", "-n", "3", "-o", out, "--seed", "7"], capsys)
    assert code == 0, se
    names = sorted(p.name for p in out.iterdir())
    assert names == ["sample_000.json", "sample_001.json", "sample_002.json"]
    assert no_temp_files(out)
    expected = GaussianPrior.default().sample(3, generator=torch.Generator().manual_seed(7)).numpy()
    for i in range(3):
        pr = Preset.from_json(out / f"sample_{i:03d}.json")
        np.testing.assert_array_equal(pr.raw, expected[i])
        assert pr.name == f"sample_{i:03d}" and "seed 7" in pr.source
    # same seed, same files; another seed, other presets
    again = tmp_path / "again"
    run(["prior", "sample", "default", "-n", "3", "-o", again, "--seed", "7"], capsys)
    assert digest(again / "sample_001.json") == digest(out / "sample_001.json")
    other = tmp_path / "other"
    run(["prior", "sample", "default", "-n", "1", "-o", other, "--seed", "8"], capsys)
    assert not np.array_equal(Preset.from_json(other / "sample_000.json").raw, expected[0])


def test_sample_from_a_fitted_prior_into_an_existing_directory(tmp_path, collection, capsys):
    prior = tmp_path / "p.npz"
    run(["prior", "fit", collection, "-o", prior, "--shrinkage", "ledoit-wolf"], capsys)
    out = tmp_path / "existing"
    out.mkdir()
    code, _, se = run(["prior", "sample", prior, "-n", "2", "-o", out], capsys)
    assert code == 0, se
    assert sorted(p.name for p in out.iterdir()) == ["sample_000.json", "sample_001.json"]


def test_sample_refuses_a_file_as_output(tmp_path, capsys):
    target = tmp_path / "a_file.json"
    target.write_text("keep me")
    code, _, se = run(["prior", "sample", "default", "-n", "2", "-o", target], capsys)
    assert "is a file" in one_line_error(code, se)
    assert target.read_text() == "keep me"


def test_sample_refuses_missing_parent_and_bad_n(tmp_path, capsys):
    code, _, se = run(["prior", "sample", "default", "-n", "2", "-o", tmp_path / "no" / "such"], capsys)
    assert "does not exist" in one_line_error(code, se)
    code, _, se = run(["prior", "sample", "default", "-n", "0", "-o", tmp_path / "s"], capsys)
    assert "-n must be at least 1" in one_line_error(code, se)


def test_sample_singular_prior_is_a_one_line_error(tmp_path, shared, capsys):
    prior = tmp_path / "m.npz"
    run(["prior", "fit", shared / "diffvox-presets" / "medleydb", "-o", prior], capsys)
    code, _, se = run(["prior", "sample", prior, "-n", "2", "-o", tmp_path / "s"], capsys)
    assert "ledoit-wolf" in one_line_error(code, se)
