"""The evaluation harness: corpus protocol, methods, scoring, reports, resuming and parallel runs.

Everything runs on a tiny corpus made here (two 4 s tracks cut into 1 s chunks, true presets
from the shipped collection), so the whole file takes about a minute; the full dev-corpus run is
in docs/guide/evaluation.md.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocalfx import params as P
from vocalfx._data import data_path
from vocalfx.chunks import active_mask
from vocalfx.cli import main
from vocalfx.evaluation import (
    EvalError,
    MethodOptions,
    evaluate,
    load_corpus,
    parse_methods,
    prepare_track,
    score,
)
from vocalfx.io import integrated_loudness, loudness_normalize
from vocalfx.metrics import mldr, mss
from vocalfx.preset import Preset, load_collection, save_collection
from vocalfx.prior import GaussianPrior
from vocalfx.render import render

ROOT = Path(__file__).resolve().parents[1]
SR = 44100
CHUNK_S = 1.0
N_CHUNKS = 4


def _vocal(seed: int, seconds: float) -> np.ndarray:
    """A vowel-like test signal: a harmonic tone with vibrato, gliding pitch and syllable envelope."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 180 + 60 * rng.random() + 20 * np.sin(2 * np.pi * 0.3 * t) + 3 * np.sin(2 * np.pi * 5.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    x = sum(np.sin(k * phase) / k**1.2 for k in range(1, 25))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * (1.5 + rng.random()) * t) ** 2
    return (0.2 * x * env / np.abs(x).max() + 0.002 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    shipped = {p.name: p for p in load_collection(data_path("presets", "vocalfx-starter.json"))}
    truth = [shipped["pop-lead"], shipped["wide-hall"]]
    save_collection(truth, d / "truth.json", name="truth")
    # The nearest-neighbour collection: the true presets among others.
    save_collection(list(shipped.values()), d / "collection.json", name="collection")
    (d / "vocals").mkdir()
    tracks = []
    for i in range(2):
        sf.write(d / "vocals" / f"v{i}.wav", _vocal(i, CHUNK_S * N_CHUNKS), SR, subtype="FLOAT")
        tracks.append({"track": f"v{i}", "vocal": f"vocals/v{i}.wav", "preset": i})
    (d / "protocol.json").write_text(
        json.dumps({"chunk_seconds": CHUNK_S, "lufs": -18.0, "preset_collection": "truth.json", "tracks": tracks})
    )
    return d


@pytest.fixture(scope="module")
def corpus(corpus_dir):
    return load_corpus(corpus_dir)


def _opts(corpus_dir, **kw) -> MethodOptions:
    return MethodOptions(encoders=("mfcc",), collection=str(corpus_dir / "collection.json"), **kw)


def _cells(out: Path):
    return {
        p.relative_to(out / "cells").as_posix(): json.loads(p.read_text())
        for p in sorted((out / "cells").glob("*/*.json"))
    }


# ----------------------------------------------------------------------------------------------
# Protocol


def test_prepare_track_follows_the_protocol(corpus):
    spec = corpus.tracks[1]
    tr = prepare_track(spec, chunk_seconds=corpus.chunk_seconds, lufs=corpus.lufs)
    n = int(CHUNK_S * SR)
    assert tr.dry.shape == (1, N_CHUNKS * n) and tr.wet.shape == (2, N_CHUNKS * n)
    assert integrated_loudness(tr.dry, SR) == pytest.approx(-18.0, abs=0.05)
    # The wet track is the render of the -18 LUFS dry with the true preset, not renormalised.
    assert torch.equal(tr.wet, render(tr.dry, spec.preset, SR))
    assert tr.n_active == N_CHUNKS
    # Reference: wet chunks 0 and 2; input: dry chunks 1 and 3.
    assert torch.equal(tr.reference, torch.stack([tr.wet[:, 0:n], tr.wet[:, 2 * n : 3 * n]]))
    assert torch.equal(tr.input, torch.stack([tr.dry[:, n : 2 * n], tr.dry[:, 3 * n : 4 * n]]))
    assert torch.equal(tr.true_vector, spec.preset.vector)


def test_inactive_chunks_are_dropped_before_the_even_odd_split():
    """DiffVox's rule: median of the 50 ms running peak of the channel mean above -60 dBFS."""
    loud = torch.full((1, 2, SR), 0.1)
    quiet = torch.full((1, 2, SR), 0.5e-3)
    half = torch.cat([torch.full((1, 2, SR // 2 - 5000), 0.1), torch.zeros(1, 2, SR - SR // 2 + 5000)], -1)
    mask = active_mask(torch.cat([loud, quiet, half, loud]), SR)
    assert mask.tolist() == [True, False, False, True]


def test_too_short_track_is_an_error(corpus):
    with pytest.raises(EvalError, match="at least two"):
        prepare_track(corpus.tracks[0], chunk_seconds=3.0)


def test_score_is_the_metrics_on_the_whole_tracks(corpus):
    tr = prepare_track(corpus.tracks[0], chunk_seconds=CHUNK_S)
    other = corpus.tracks[1].preset
    s = score(tr, other.vector)
    pred = render(tr.dry, other, SR).unsqueeze(0)
    wet = tr.wet.unsqueeze(0)
    # Scoring runs the A-weighting FIR without oneDNN (for speed): equal to float32 rounding.
    assert s["mss_lr"] == pytest.approx(float(mss(pred, wet)), rel=1e-5)
    assert s["mss_ms"] == pytest.approx(float(mss(pred, wet, mid_side=True)), rel=1e-5)
    assert s["mldr_lr"] == float(mldr(pred, wet))
    assert s["mldr_ms"] == float(mldr(pred, wet, mid_side=True))
    assert s["pmse"] == pytest.approx(float(((other.vector - tr.true_vector) ** 2).mean()))
    with pytest.raises(EvalError, match="130"):
        score(tr, np.zeros(5))


# ----------------------------------------------------------------------------------------------
# Methods


def test_method_specs_expand_and_name_uniquely(corpus_dir):
    opts = MethodOptions(encoders=("mfcc", "mir"), alphas=(0.0, 0.1))
    names = [m.name for m in parse_methods(["all"], opts)]
    assert names == [
        "oracle",
        "mean",
        "nn-param",
        "nn-emb-mfcc",
        "nn-emb-mir",
        "ito-mfcc-a0",
        "ito-mfcc-a0.1",
        "ito-mir-a0",
        "ito-mir-a0.1",
    ]
    ms = parse_methods(["oracle,ito:mir:1", "nn-emb:mfcc", "oracle"], opts)
    assert [m.name for m in ms] == ["oracle", "ito-mir-a1", "nn-emb-mfcc"]
    # A spec rebuilds exactly its method (how worker processes get theirs).
    for m in parse_methods(["all"], opts):
        (again,) = parse_methods([m.spec], opts)
        assert again.name == m.name
    for bad, msg in [
        ("nope", "unknown method"),
        ("ito:nope", "unknown encoder"),
        ("ito:mfcc:-1", "alpha"),
        ("oracle:x", "no arguments"),
    ]:
        with pytest.raises(EvalError, match=msg):
            parse_methods([bad], opts)


def test_baselines_oracle_and_nearest_neighbours(corpus_dir, corpus, tmp_path):
    opts = _opts(corpus_dir)
    methods = parse_methods(["oracle", "mean", "nn-param", "nn-emb"], opts)
    res = evaluate(corpus, methods, tmp_path / "out", options=opts, progress=False)
    assert (res.computed, res.failed, res.skipped) == (8, 0, 0)
    cells = _cells(tmp_path / "out")
    collection = load_collection(corpus_dir / "collection.json")
    for t, spec in zip(["v0", "v1"], corpus.tracks):
        oracle = cells[f"{t}/oracle.json"]
        assert oracle["status"] == "ok"
        assert all(v == 0.0 for v in oracle["metrics"].values()), oracle["metrics"]
        # The true preset is in the collection: parameter-space NN finds it.
        nn = cells[f"{t}/nn-param.json"]
        assert collection[nn["info"]["index"]].name == spec.preset.name and nn["metrics"]["pmse"] == 0.0
        emb = cells[f"{t}/nn-emb-mfcc.json"]
        assert 0 <= emb["info"]["index"] < len(collection) and np.isfinite(emb["info"]["nll"])
        for name in ("mean", "nn-emb-mfcc"):
            m = cells[f"{t}/{name}.json"]["metrics"]
            assert all(np.isfinite(v) for v in m.values())
            assert m["mss_lr"] >= oracle["metrics"]["mss_lr"]
        assert len(cells[f"{t}/mean.json"]["vector"]) == 130
    # Reports: per-track CSV and a summary with mean and median tables.
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert [(r["track"], r["method"], r["status"]) for r in rows] == [
        (t, m, "ok") for t in ("v0", "v1") for m in ("oracle", "mean", "nn-param", "nn-emb-mfcc")
    ]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "### Mean over tracks" in md and "### Median over tracks" in md
    assert "| oracle | 0.000 | 0.000 | 0.000 | 0.000 | 0.000 | 2 |" in md
    mean_pmse = np.mean([cells[f"{t}/mean.json"]["metrics"]["pmse"] for t in ("v0", "v1")])
    summary = {(r["method"], r["metric"]): r for r in csv.DictReader(open(tmp_path / "out" / "summary.csv"))}
    assert float(summary[("mean", "pmse")]["mean"]) == pytest.approx(mean_pmse)


def test_ito_method_runs_match_on_the_chunks(corpus_dir, corpus, tmp_path):
    opts = _opts(corpus_dir, ito_steps=2)
    methods = parse_methods(["ito:mfcc:0.1"], opts)
    res = evaluate(corpus, methods, tmp_path / "out", options=opts, progress=False)
    assert res.failed == 0, res.errors
    cell = _cells(tmp_path / "out")["v0/ito-mfcc-a0.1.json"]
    assert cell["config"]["steps"] == 2 and cell["config"]["alpha"] == 0.1
    assert cell["info"]["n_ref_chunks"] == 2 and cell["info"]["n_dry_chunks"] == 2
    assert cell["info"]["chunk_seconds"] == pytest.approx(CHUNK_S)
    assert np.isfinite(cell["metrics"]["pmse"])
    assert "space" not in cell["config"] and cell["info"]["space"] == "raw"
    # --ito-space whitened: its own row name and config, so it never mixes with raw-space cells
    wopts = _opts(corpus_dir, ito_steps=2, ito_space="whitened")
    (wm,) = parse_methods(["ito:mfcc:0.1"], wopts)
    assert wm.name == "ito-mfcc-a0.1-whitened" and parse_methods([wm.spec], wopts)[0].name == wm.name
    res = evaluate(corpus, [wm], tmp_path / "out-w", options=wopts, progress=False)
    assert res.failed == 0, res.errors
    wcell = _cells(tmp_path / "out-w")["v0/ito-mfcc-a0.1-whitened.json"]
    assert wcell["config"]["space"] == "whitened" and wcell["info"]["space"] == "whitened"


def test_ito_from_the_nearest_preset(corpus_dir, corpus, tmp_path):
    opts = _opts(corpus_dir, ito_steps=2)
    assert not any(m.name.startswith("ito-nn") for m in parse_methods(["all"], opts))  # asked for by name only
    methods = parse_methods(["nn-emb:mfcc", "ito-nn:mfcc:0.1"], opts)
    assert [m.name for m in methods] == ["nn-emb-mfcc", "ito-nn-mfcc-a0.1"]
    assert parse_methods([methods[1].spec], opts)[0].name == "ito-nn-mfcc-a0.1"
    res = evaluate(corpus, methods, tmp_path / "out", options=opts, progress=False)
    assert res.failed == 0, res.errors
    cells = _cells(tmp_path / "out")
    for t in ("v0", "v1"):
        nn, ito = cells[f"{t}/nn-emb-mfcc.json"], cells[f"{t}/ito-nn-mfcc-a0.1.json"]
        assert ito["config"]["init"] == "nn-emb" and ito["info"]["init_index"] == nn["info"]["index"]
        assert ito["info"]["init"] == "given vector"
        # it started from the retrieved preset: its initial loss is that preset's MAP loss, and it
        # returns the lowest loss seen, so it can only improve on the start
        assert ito["info"]["loss"] <= ito["info"]["initial_loss"]
        # match re-normalises the input chunks to -18 LUFS (info.dry_gain_db, a fraction of a dB
        # here), which moves the compressor a little: same preset, nearly the same likelihood
        assert abs(ito["info"]["dry_gain_db"]) < 1.0
        assert ito["info"]["initial_nll"] == pytest.approx(nn["info"]["nll"], abs=0.01)
        # the time charged includes the retrieval's
        assert ito["seconds"]["predict"] >= nn["seconds"]["predict"] * 0.5


def test_predicted_preset_rows_and_ito_from_the_prediction(corpus_dir, corpus, tmp_path):
    opts = _opts(corpus_dir, ito_steps=0)
    assert not any(m.family in ("pred", "ito-pred") for m in parse_methods(["all"], opts))  # by name only
    methods = parse_methods(["pred", "ito-pred:mfcc:0.1", "ito-pred:fx:0.1"], opts)
    assert [m.name for m in methods] == ["pred-fx", "ito-pred-mfcc-a0.1", "ito-pred-fx-a0.1"]
    assert [parse_methods([m.spec], opts)[0].name for m in methods] == [m.name for m in methods]
    with pytest.raises(EvalError, match="predictor"):
        parse_methods(["pred:mfcc"], opts)
    res = evaluate(corpus, methods, tmp_path / "out", options=opts, progress=False)
    assert res.failed == 0, res.errors
    cells = _cells(tmp_path / "out")
    for t in ("v0", "v1"):
        pred = cells[f"{t}/pred-fx.json"]
        assert pred["info"]["init"] == "predicted (fx)" and len(pred["config"]["weights_sha256"]) == 64
        for enc in ("mfcc", "fx"):
            ito = cells[f"{t}/ito-pred-{enc}-a0.1.json"]
            assert ito["config"]["init"] == "predicted" and ito["info"]["init"] == "predicted (fx)"
            # zero steps: ITO returns its start, which is exactly the pred row's preset (the same
            # chunks, the input at -18 LUFS, one forward pass of the same weights)
            assert ito["info"]["best_step"] == 0
            np.testing.assert_allclose(ito["vector"], pred["vector"], rtol=0, atol=1e-6)
        # a trained head does not just return the prior mean
        mean = GaussianPrior.default().mean.double().numpy()
        assert np.abs(np.asarray(pred["vector"]) - mean).max() > 0.05


def test_level_reference_rows_follow_the_reference_loudness(corpus_dir, corpus, tmp_path):
    """``--ito-level reference``: the rows score what ``vocalfx match`` writes by default."""
    opts = _opts(corpus_dir, ito_steps=0, ito_level="reference")
    methods = parse_methods(["pred", "ito:mfcc:0.1", "ito-pred:fx:0.1"], opts)
    assert [m.name for m in methods] == ["pred-fx+level", "ito-mfcc-a0.1+level", "ito-pred-fx-a0.1+level"]
    assert [parse_methods([m.spec], opts)[0].name for m in methods] == [m.name for m in methods]
    with pytest.raises(EvalError, match="level"):
        parse_methods(["ito:mfcc:0.1"], _opts(corpus_dir, ito_level="loud"))
    res = evaluate(corpus, methods, tmp_path / "out", options=opts, progress=False)
    assert res.failed == 0, res.errors
    popts = _opts(corpus_dir, ito_steps=0)
    res = evaluate(
        corpus, parse_methods(["pred", "ito:mfcc:0.1"], popts), tmp_path / "plain", options=popts, progress=False
    )
    assert res.failed == 0, res.errors
    cells = {**_cells(tmp_path / "out"), **_cells(tmp_path / "plain")}
    mean = GaussianPrior.default().mean.double().numpy()
    makeup = list(P.names()).index("comp.makeup_db")
    for spec in corpus.tracks:
        t = prepare_track(spec, chunk_seconds=CHUNK_S)
        ref = t.reference.permute(1, 0, 2).reshape(2, -1)
        dry, _ = loudness_normalize(t.input.permute(1, 0, 2).reshape(1, -1), SR, -18.0)  # as match sees it
        for name, base in (("ito-mfcc-a0.1", mean), ("pred-fx", np.asarray(cells[f"{t.name}/pred-fx.json"]["vector"]))):
            cell = cells[f"{t.name}/{name}+level.json"]
            assert cell["config"]["level"] == "reference"
            v = np.asarray(cell["vector"])
            # only the make-up gain differs from the preset-level row ...
            others = np.arange(v.size) != makeup
            np.testing.assert_allclose(v[others], base[others], rtol=0, atol=1e-6)
            assert abs(v[makeup] - base[makeup]) > 0.05
            # ... and the input chunks rendered with it have the reference chunks' loudness
            y = render(dry, Preset(v))
            assert integrated_loudness(y, SR) == pytest.approx(integrated_loudness(ref, SR), abs=0.3)
        assert "level" not in cells[f"{t.name}/ito-mfcc-a0.1.json"]["config"]


def test_match_row_is_vocalfx_match_with_its_defaults(corpus_dir, corpus, tmp_path):
    from vocalfx import defaults as D
    from vocalfx import match

    opts = _opts(corpus_dir)
    (m,) = parse_methods(["match"], opts)
    assert m.name == "match" and not any(x.name == "match" for x in parse_methods(["all"], opts))
    with pytest.raises(EvalError, match="no arguments"):
        parse_methods(["match:fx"], opts)
    res = evaluate(corpus, [m], tmp_path / "out", options=opts, progress=False)
    assert res.failed == 0, res.errors
    cell = _cells(tmp_path / "out")["v0/match.json"]
    cfg = cell["config"]
    assert (cfg["encoder"], cfg["init"], cfg["steps"], cfg["lr"], cfg["alpha"]) == (
        D.MATCH_ENCODER,
        D.MATCH_INIT,
        D.MATCH_STEPS,
        D.MATCH_LR,
        D.MATCH_ALPHA,
    )
    assert cell["info"]["init"] == "predicted (fx)" and cell["info"]["level"] == "reference"
    # the same as calling vocalfx.match on the chunks with nothing but the chunk length
    t = prepare_track(corpus.tracks[0], chunk_seconds=CHUNK_S)
    direct = match(
        t.input.permute(1, 0, 2).reshape(1, -1),
        t.reference.permute(1, 0, 2).reshape(2, -1),
        SR,
        chunk_seconds=CHUNK_S,
        progress=False,
    )
    np.testing.assert_allclose(cell["vector"], direct.preset.raw, rtol=0, atol=1e-5)


def test_match_with_changes_only_the_settings_it_names(corpus_dir, corpus, tmp_path):
    from vocalfx import match

    opts = _opts(corpus_dir)
    (m,) = parse_methods(["match-with:steps=2:prediction_weight=0.5"], opts)
    assert m.name == "match-prediction_weight0.5-steps2"
    assert parse_methods([m.spec], opts)[0].name == m.name  # the spec rebuilds it (worker processes)
    for bad, msg in [
        ("match-with", "at least one"),
        ("match-with:seed=3", "KEY=VALUE"),
        ("match-with:steps", "KEY=VALUE"),
        ("match-with:steps=two", "int"),
        ("match-with:prediction_weight=2", "prediction_weight"),
    ]:
        with pytest.raises(EvalError, match=msg):
            parse_methods([bad], opts)
    res = evaluate(corpus, [m], tmp_path / "out", options=opts, progress=False)
    assert res.failed == 0, res.errors
    cell = _cells(tmp_path / "out")["v0/match-prediction_weight0.5-steps2.json"]
    assert (cell["config"]["steps"], cell["config"]["prediction_weight"]) == (2, 0.5)
    t = prepare_track(corpus.tracks[0], chunk_seconds=CHUNK_S)
    direct = match(
        t.input.permute(1, 0, 2).reshape(1, -1),
        t.reference.permute(1, 0, 2).reshape(2, -1),
        SR,
        chunk_seconds=CHUNK_S,
        steps=2,
        prediction_weight=0.5,
        progress=False,
    )
    np.testing.assert_allclose(cell["vector"], direct.preset.raw, rtol=0, atol=1e-5)


def test_reference_codec_changes_only_the_reference(corpus_dir, corpus, tmp_path):
    lossy = load_corpus(corpus_dir, reference_codec="mp3:64")
    assert lossy.protocol()["reference_codec"] == "mp3:64" and "reference_codec" not in corpus.protocol()
    a = prepare_track(corpus.tracks[0], chunk_seconds=CHUNK_S)
    b = prepare_track(lossy.tracks[0], chunk_seconds=CHUNK_S, reference_codec="mp3:64")
    assert torch.equal(a.input, b.input) and torch.equal(a.wet, b.wet)  # scored against the lossless wet
    assert b.reference.shape == a.reference.shape and not torch.equal(a.reference, b.reference)
    assert any("mp3:64" in n for n in b.notes)
    opts = _opts(corpus_dir)
    evaluate(corpus, parse_methods(["mean"], opts), tmp_path / "out", options=opts, progress=False)
    with pytest.raises(EvalError, match="different protocol"):  # lossless cells never mix with lossy ones
        evaluate(lossy, parse_methods(["mean"], opts), tmp_path / "out", options=opts, progress=False)


def test_a_method_is_one_plugin_file(corpus_dir, corpus, tmp_path):
    plugin = tmp_path / "zero_method.py"
    plugin.write_text(
        "import numpy as np\n"
        "from vocalfx.evaluation import Method, Prediction, register_method\n"
        "@register_method('zeros')\n"
        "class Zeros(Method):\n"
        "    def predict(self, track, context):\n"
        "        return Prediction(np.zeros(130), {'note': 'all raw values 0'})\n"
    )
    code = main(
        [
            "eval",
            "--corpus",
            str(corpus_dir),
            "--out",
            str(tmp_path / "out"),
            "--methods",
            "zeros",
            "--plugin",
            str(plugin),
            "--tracks",
            "v1",
            "-q",
        ]
    )
    assert code == 0
    cell = _cells(tmp_path / "out")["v1/zeros.json"]
    assert cell["info"] == {"note": "all raw values 0"} and cell["status"] == "ok"


# ----------------------------------------------------------------------------------------------
# Resuming, refusing mismatched results, parallel runs


def test_resume_computes_only_missing_cells(corpus_dir, corpus, tmp_path):
    opts = _opts(corpus_dir)
    out = tmp_path / "out"
    first = evaluate(corpus, parse_methods(["oracle"], opts), out, options=opts, progress=False)
    assert first.computed == 2
    before = {p: (p.stat().st_mtime_ns, json.loads(p.read_text())["run_id"]) for p in out.glob("cells/*/*.json")}
    second = evaluate(corpus, parse_methods(["oracle", "nn-param"], opts), out, options=opts, progress=False)
    assert (second.computed, second.skipped) == (2, 2)
    for p, stamp in before.items():
        assert (p.stat().st_mtime_ns, json.loads(p.read_text())["run_id"]) == stamp
    assert len(list(out.glob("cells/*/*.json"))) == 4
    run = json.loads((out / "run.json").read_text())
    assert [r["cells_computed"] for r in run["invocations"]] == [2, 2]
    # Settings that change a method's result are refused, not mixed into the table.
    other = MethodOptions(encoders=("mfcc",))  # the shipped collection instead
    with pytest.raises(EvalError, match="other settings"):
        evaluate(corpus, parse_methods(["nn-param"], other), out, options=other, progress=False)
    other_corpus = load_corpus(corpus_dir, chunk_seconds=2.0)
    with pytest.raises(EvalError, match="different protocol"):
        evaluate(other_corpus, parse_methods(["oracle"], opts), out, options=opts, progress=False)


def test_failed_cells_are_kept_and_retried_on_request(corpus_dir, tmp_path):
    d = tmp_path / "c"
    d.mkdir()
    sf.write(d / "short.wav", _vocal(3, 1.5), SR, subtype="FLOAT")
    sf.write(d / "ok.wav", _vocal(4, 4.0), SR, subtype="FLOAT")
    (d / "protocol.json").write_text(
        json.dumps(
            {
                "chunk_seconds": 1.0,
                "preset_collection": str(corpus_dir / "truth.json"),
                "tracks": [
                    {"track": "short", "vocal": "short.wav", "preset": 0},
                    {"track": "ok", "vocal": "ok.wav", "preset": 1},
                ],
            }
        )
    )
    out = tmp_path / "out"
    code = main(["eval", "--corpus", str(d), "--out", str(out), "--methods", "oracle", "-q"])
    assert code == 1  # a failed cell: exit 1, and it is listed
    cell = _cells(out)["short/oracle.json"]
    assert cell["status"] == "error" and "two" in cell["error"]
    assert "short × oracle" in (out / "summary.md").read_text()
    assert "statistics over the 1 of 2 tracks" in (out / "summary.md").read_text()
    res = evaluate(load_corpus(d), parse_methods(["oracle"], MethodOptions()), out, progress=False)
    assert res.computed == 0
    res = evaluate(load_corpus(d), parse_methods(["oracle"], MethodOptions()), out, progress=False, retry_failed=True)
    assert res.computed == 1 and res.failed == 1


def _run_until_cells(args, out: Path, n: int, sig: int):
    """Start `vocalfx eval ARGS` in a subprocess, send it ``sig`` once ``n`` cells exist; return its exit code,
    stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vocalfx.cli", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 180
    try:
        while len(list(out.glob("cells/*/*.json"))) < n:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, f"no {n} cells in 180 s"
            time.sleep(0.02)
        proc.send_signal(sig)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, proc.stderr.read().decode()


def _stamps(out: Path):
    return {p: (p.stat().st_mtime_ns, json.loads(p.read_text())["run_id"]) for p in out.glob("cells/*/*.json")}


def _check_resumed(out: Path, done, capsys, n: int) -> None:
    for p, stamp in done.items():  # finished cells were not recomputed
        assert (p.stat().st_mtime_ns, json.loads(p.read_text())["run_id"]) == stamp
    cells = _cells(out)
    assert len(cells) == n and all(c["status"] == "ok" for c in cells.values())
    assert len({c["run_id"] for c in cells.values()}) == 2
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == n and all(r["status"] == "ok" for r in rows)
    assert "statistics over the 2 of 2 tracks" in (out / "summary.md").read_text()


def test_killed_run_continues_where_it_stopped(corpus_dir, tmp_path, capsys):
    """SIGKILL `vocalfx eval` mid-run (no clean-up at all), run the same command again: full table."""
    out = tmp_path / "out"
    args = [
        "eval",
        "--corpus",
        str(corpus_dir),
        "--out",
        str(out),
        "--methods",
        "oracle,mean,nn-param",
        "--collection",
        str(corpus_dir / "collection.json"),
        "--threads",
        "1",
        "-q",
    ]
    _run_until_cells(args, out, 2, signal.SIGKILL)
    done = _stamps(out)
    assert 2 <= len(done) < 6, "the run was not interrupted mid-way"
    assert main(args) == 0
    capsys.readouterr()
    _check_resumed(out, done, capsys, 6)


def test_terminated_parallel_run_stops_its_workers_and_continues(corpus_dir, tmp_path, capsys):
    """SIGTERM (`kill PID`) a run with two worker processes: it exits at once, its workers too."""
    out = tmp_path / "out"
    args = [
        "eval",
        "--corpus",
        str(corpus_dir),
        "--out",
        str(out),
        "--methods",
        "oracle,mean,nn-param",
        "--collection",
        str(corpus_dir / "collection.json"),
        "--jobs",
        "2",
        "-q",
    ]
    code, err = _run_until_cells(args, out, 1, signal.SIGTERM)
    assert code == 1 and "interrupted" in err, err
    done = _stamps(out)
    assert 1 <= len(done) < 6
    time.sleep(4)  # the workers were ended with the run: no cell appears afterwards
    assert _stamps(out) == done
    run = json.loads((out / "run.json").read_text())
    assert run["invocations"][-1]["interrupted"] is True
    assert main(args) == 0
    capsys.readouterr()
    _check_resumed(out, done, capsys, 6)


def test_parallel_workers_give_the_serial_results(corpus_dir, corpus, tmp_path):
    opts = _opts(corpus_dir)
    methods = parse_methods(["nn-param"], opts)
    serial = evaluate(corpus, methods, tmp_path / "serial", options=opts, progress=False)
    parallel = evaluate(corpus, methods, tmp_path / "parallel", options=opts, jobs=2, threads=1, progress=False)
    assert serial.computed == parallel.computed == 2
    a, b = _cells(tmp_path / "serial"), _cells(tmp_path / "parallel")
    assert {k: v["metrics"] for k, v in a.items()} == {k: v["metrics"] for k, v in b.items()}
    run = json.loads((tmp_path / "parallel" / "run.json").read_text())
    assert run["invocations"][-1]["jobs"] == 2 and run["invocations"][-1]["threads"] == 1
    again = evaluate(corpus, methods, tmp_path / "parallel", options=opts, jobs=2, progress=False)
    assert (again.computed, again.skipped) == (0, 2)  # nothing to do: no pool, same table


# ----------------------------------------------------------------------------------------------
# Command line and corpora


def test_cli_errors_are_one_line(corpus_dir, tmp_path, capsys):
    cases = [
        (["--corpus", str(tmp_path), "--methods", "oracle"], "no protocol.json"),
        (["--corpus", str(corpus_dir), "--methods", "magic"], "unknown method"),
        (["--corpus", str(corpus_dir), "--methods", "ito", "--encoders", "afx-rep"], "afx-rep"),
        (["--corpus", str(corpus_dir), "--methods", "oracle", "--tracks", "v9"], "no track named"),
        (["--corpus", str(corpus_dir), "--methods", "oracle", "--reference-codec", "ogg:64"], "expected mp3:KBPS"),
    ]
    for args, msg in cases:
        env_ckpt = os.environ.pop("VOCALFX_AFX_REP", None)
        try:
            code = main(["eval", *args, "--out", str(tmp_path / "o"), "-q"])
        finally:
            if env_ckpt is not None:
                os.environ["VOCALFX_AFX_REP"] = env_ckpt
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and msg in err[0], (args, err)


def test_dev_corpus_protocol_is_read(shared):
    corpus = load_corpus(shared / "corpus" / "dev")
    proto = json.loads((shared / "corpus" / "dev" / "protocol.json").read_text())
    assert [t.name for t in corpus.tracks] == [t["track"] for t in proto["tracks"]]
    assert corpus.chunk_seconds == 11.0 and corpus.lufs == -18.0
    raw = np.load(shared / "diffvox-presets" / "medleydb" / "raw_params.npy")
    mask = np.load(shared / "diffvox-presets" / "medleydb" / "feature_mask.npy").astype(bool)
    for spec, t in zip(corpus.tracks, proto["tracks"]):
        assert np.allclose(spec.preset.raw, raw[t["medleydb_preset"]][mask])
    # The DiffVox internal collection, as the nearest-neighbour methods use it: the train rows.
    from vocalfx.evaluation import EvalContext

    presets, _, ident = EvalContext(MethodOptions(collection=str(shared / "diffvox-presets" / "internal"))).collection()
    assert len(presets) == len(np.load(shared / "diffvox-presets" / "internal" / "train_index.npy")) == 365
