"""Steering a match (vocalfx.matching.steer): optimise only some groups, blend with the start, set
the output level through the compressor's make-up gain. Short 2 s chunks and a few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_match import CHUNK, SR, bright_reference, vocal_like

from vocalfx import params as P
from vocalfx.io import integrated_loudness, loudness_normalize
from vocalfx.matching import MatchError, match
from vocalfx.matching.steer import GROUPS, LEVEL_PARAM, blend, group_mask, parse_groups, with_output_gain
from vocalfx.preset import Preset
from vocalfx.prior import GaussianPrior
from vocalfx.render import render


@pytest.fixture(scope="module")
def pair():
    return vocal_like(4.0), bright_reference() * 0.3  # a reference well below -18 LUFS


def test_groups_cover_every_parameter_once():
    masks = np.stack([group_mask([g]) for g in GROUPS])
    assert (masks.sum(0) == 1).all(), [n for n, c in zip(P.names(), masks.sum(0)) if c != 1]
    assert group_mask(None).all() and parse_groups("eq, reverb") == ("eq", "reverb")
    with pytest.raises(ValueError, match="loudness"):
        parse_groups("eq,loudness")


def test_makeup_gain_is_a_pure_output_gain():
    # the oracle for --level: everything after the make-up gain (delay, reverb, pan) is linear
    v = GaussianPrior.default().mean.double().numpy()
    x = vocal_like(3.0)
    y0, y1 = render(x, Preset(v)), render(x, Preset(with_output_gain(v, 6.0)))
    np.testing.assert_allclose(y1.numpy(), y0.numpy() * 10 ** (6 / 20), rtol=1e-4, atol=1e-6)


def test_only_eq_leaves_every_other_value_at_the_start(pair):
    dry, ref = pair
    res = match(dry, ref, SR, groups="eq", steps=4, chunk_seconds=CHUNK, progress=False)
    start = res.start  # the default start: the fx head's predicted preset
    assert res.stats.init.startswith("predicted (fx)")
    eq = group_mask(["eq"])
    assert np.array_equal(res.preset.raw[~eq], start[~eq])  # bit for bit
    assert np.abs(res.preset.raw[eq] - start[eq]).max() > 1e-3  # the EQ moved
    assert res.stats.level == "preset" and res.stats.groups == ["eq"]  # no make-up gain without dynamics
    with pytest.raises(MatchError, match="add 'dynamics'"):
        match(dry, ref, SR, groups="eq", level="reference", steps=1, chunk_seconds=CHUNK, progress=False)


def test_strength_blends_between_start_and_match(pair):
    dry, ref = pair
    kw = dict(steps=4, chunk_seconds=CHUNK, progress=False, level="preset")
    res = match(dry, ref, SR, **kw)
    start, full = res.start, res.preset.raw
    assert np.array_equal(match(dry, ref, SR, strength=0.0, **kw).preset.raw, start)
    assert np.array_equal(match(dry, ref, SR, strength=1.0, **kw).preset.raw, full)
    half = match(dry, ref, SR, strength=0.5, **kw)
    np.testing.assert_allclose(half.preset.raw, (start + full) / 2, rtol=0, atol=1e-12)
    dry18 = loudness_normalize(dry, SR, -18.0)[0]  # match renders the dry at -18 LUFS
    assert torch.allclose(half.audio, render(dry18, half.preset), atol=1e-6)
    # the blend is the same in the prior's whitened coordinates (the whitening is affine)
    prior = GaussianPrior.default()
    L = torch.linalg.cholesky(prior.cov)
    z = lambda v: torch.linalg.solve_triangular(L, (torch.from_numpy(v) - prior.mean)[:, None], upper=False)[:, 0]
    torch.testing.assert_close(z(half.preset.raw), (z(start) + z(full)) / 2, rtol=0, atol=1e-8)
    with pytest.raises(ValueError, match="strength"):
        blend(start, full, 1.5)


def test_level_follows_the_reference_and_the_preset_reproduces_it(pair):
    dry, ref = pair
    ref_lufs = integrated_loudness(ref, SR)
    assert ref_lufs < -25  # far from the -18 LUFS the preset renders at
    res = match(dry, ref, SR, steps=2, chunk_seconds=CHUNK, progress=False)
    assert res.stats.level == "reference"
    assert abs(integrated_loudness(res.audio, SR) - ref_lufs) < 0.5
    assert abs(res.stats.output_lufs - ref_lufs) < 0.5
    # the level lives in the preset: rendering the saved preset (on the dry at -18 LUFS, as
    # match renders it) gives the written output
    assert torch.allclose(render(loudness_normalize(dry, SR, -18.0)[0], res.preset), res.audio, atol=1e-6)
    preset_level = match(dry, ref, SR, steps=2, chunk_seconds=CHUNK, progress=False, level="preset")
    gain = res.preset.raw[P.INDEX[LEVEL_PARAM]] - preset_level.preset.raw[P.INDEX[LEVEL_PARAM]]
    assert gain == pytest.approx(res.stats.level_gain_db) and gain < -5
    other = np.ones(P.NUM_PARAMS, bool)
    other[P.INDEX[LEVEL_PARAM]] = False
    assert np.array_equal(res.preset.raw[other], preset_level.preset.raw[other])
    fixed = match(dry, ref, SR, steps=2, chunk_seconds=CHUNK, progress=False, level=-14.0)
    assert abs(integrated_loudness(fixed.audio, SR) - (-14.0)) < 0.1 and fixed.stats.level == "-14 LUFS"
    with pytest.raises(MatchError, match="level"):
        match(dry, ref, SR, steps=1, chunk_seconds=CHUNK, progress=False, level="loud")


def test_cli_steering_flags_and_render_strength(tmp_path, capsys, pair):
    """`vocalfx match --only/--strength/--level` reach the match; `vocalfx render --strength`
    blends a saved match against the start it recorded and reproduces the match's own blend."""
    import soundfile as sf

    from vocalfx.cli import main

    dry, ref = pair
    d, r = tmp_path / "dry.wav", tmp_path / "ref.wav"
    sf.write(str(d), dry[0].numpy(), SR, subtype="FLOAT")
    sf.write(str(r), ref.T.numpy(), SR, subtype="FLOAT")
    common = ["--chunk-seconds", str(CHUNK), "--steps", "3", "-q"]
    assert main(["match", str(d), str(r), "-o", str(tmp_path / "full.wav"), "--level", "preset", *common]) == 0
    assert (
        main(
            [
                "match",
                str(d),
                str(r),
                "-o",
                str(tmp_path / "half.wav"),
                "--level",
                "preset",
                "--strength",
                "0.5",
                *common,
            ]
        )
        == 0
    )
    full, half = Preset.from_json(tmp_path / "full.preset.json"), Preset.from_json(tmp_path / "half.preset.json")
    start = np.asarray(full.extra["match"]["start_raw"])  # the predicted start, recorded
    assert np.array_equal(np.asarray(half.extra["match"]["start_raw"]), start)
    np.testing.assert_allclose(half.raw, (start + full.raw) / 2, rtol=0, atol=1e-12)
    # render --strength 0.5 of the full match = the match made at strength 0.5
    assert (
        main(["render", str(d), str(tmp_path / "full.preset.json"), "-o", str(tmp_path / "r.wav"), "--strength", "0.5"])
        == 0
    )
    assert main(["render", str(d), str(tmp_path / "half.preset.json"), "-o", str(tmp_path / "h.wav")]) == 0
    np.testing.assert_allclose(
        sf.read(str(tmp_path / "r.wav"))[0], sf.read(str(tmp_path / "h.wav"))[0], rtol=0, atol=1e-6
    )
    assert main(["render", str(d), "pop-lead", "-o", str(tmp_path / "x.wav"), "--strength", "0.5"]) == 1
    assert "no starting preset recorded" in capsys.readouterr().err
    assert main(["render", str(d), "pop-lead", "-o", str(tmp_path / "x.wav"), "--strength", "0", "--base", "mean"]) == 0
    # --only eq keeps the rest at the start; --level -16 sets the loudness; bad values fail in one line
    assert main(["match", str(d), str(r), "-o", str(tmp_path / "eq.wav"), "--only", "eq", *common]) == 0
    eq = group_mask(["eq"])
    only_eq = Preset.from_json(tmp_path / "eq.preset.json")
    assert np.array_equal(np.asarray(only_eq.extra["match"]["start_raw"]), start)
    assert np.array_equal(only_eq.raw[~eq], start[~eq])
    assert main(["match", str(d), str(r), "-o", str(tmp_path / "l.wav"), "--level", "-16", *common]) == 0
    y, _ = sf.read(str(tmp_path / "l.wav"), always_2d=True)
    assert abs(integrated_loudness(torch.from_numpy(y.T.copy()).float(), SR) + 16.0) < 0.1
    capsys.readouterr()
    for flags, words in (
        (["--only", "eq,loudness"], "--only"),
        (["--strength", "2"], "--strength"),
        (["--only", "eq", "--level", "-14"], "add 'dynamics'"),
    ):
        assert main(["match", str(d), str(r), "-o", str(tmp_path / "bad.wav"), *flags, *common]) == 1
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "bad.wav").exists()
