"""The matching core (vocalfx.matching.core.match_chunks), its config, and how match() wraps it.

`vocalfx eval` calls the core with the protocol's chunks; `vocalfx.match` cuts files into chunks
and calls the same core. These tests pin the seam between the two: the same chunks at the same
level give the same preset bit for bit, whichever way they arrive.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalfx.chunks import join_chunks, split_chunks
from vocalfx.io import loudness_normalize
from vocalfx.matching import MatchConfig, MatchError, match, match_chunks
from vocalfx.params import NUM_PARAMS

SR = 44100


def _vocal(seconds: float, seed: int, f0: float = 190.0) -> torch.Tensor:
    g = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2
    x = sum(np.sin(2 * np.pi * f0 * k * t + g.uniform(0, 6)) / k for k in range(1, 12))
    return torch.from_numpy((0.1 * env * x + 0.003 * g.standard_normal(t.size))[None]).float()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"steps": -1}, "steps must be a non-negative integer"),
        ({"steps": 2.5}, "steps must be a non-negative integer"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"lr_final_ratio": 0.0}, r"lr_final_ratio must lie in \(0, 1\]"),
        ({"alpha": -1.0}, "alpha must be a finite number >= 0"),
        ({"alpha": float("nan")}, "alpha must be a finite number >= 0"),
        ({"space": "polar"}, "space must be one of raw, whitened"),
        ({"chunk_seconds": 0.0}, "chunk_seconds must be positive"),
        ({"groups": "eq,bogus"}, "bogus not among"),
        ({"strength": 1.5}, r"strength must lie in \[0, 1\]"),
        ({"level": "loud"}, "level must be 'reference', 'preset' or a loudness"),
        ({"groups": "eq", "level": -14.0}, "add 'dynamics' to the groups"),
        ({"prediction_weight": 2.0}, r"prediction_weight must be in \[0, 1\]"),
        ({"init": np.zeros(7)}, "init: expected 'mean', a Preset or 130 raw values"),
        ({"init": "median"}, "init: expected 'mean', 'predicted', a Preset"),
    ],
)
def test_config_refuses_bad_settings_before_any_audio(settings, message):
    with pytest.raises(MatchError, match=message):
        MatchConfig(**settings)
    # match() checks them before it reads the (here missing) files
    with pytest.raises(MatchError, match=message):
        match("no-such-dry.wav", "no-such-reference.wav", progress=False, **settings)


def test_config_resolves_defaults_and_steering():
    c = MatchConfig(steps=None, lr=None, groups="reverb, eq")
    assert (c.steps, c.lr) == (MatchConfig().steps, MatchConfig().lr)
    assert c.groups == ("reverb", "eq") and c.level == "preset"  # no dynamics: the preset's level
    assert MatchConfig().level == "reference" and MatchConfig().predicts_start
    d = MatchConfig(init=np.zeros(NUM_PARAMS)).to_dict()
    assert d["init"] == "given vector" and d["groups"] is None


def test_match_refuses_unknown_settings_and_config_with_settings():
    with pytest.raises(MatchError, match="unknown setting"):
        match("d.wav", "r.wav", progress=False, seed=3)
    with pytest.raises(MatchError, match="not both"):
        match("d.wav", "r.wav", config=MatchConfig(), steps=3, progress=False)


def test_join_and_split_chunks_are_inverse():
    x = torch.randn(3, 2, 50)
    assert torch.equal(split_chunks(join_chunks(x), 3), x)
    assert torch.equal(join_chunks(x)[:, 50:100], x[1])
    with pytest.raises(ValueError, match="cannot cut"):
        split_chunks(torch.zeros(2, 101), 2)
    with pytest.raises(ValueError, match=r"expected \(chunks, channels, time\)"):
        join_chunks(torch.zeros(2, 10))


def test_core_on_chunks_equals_match_on_the_signal():
    """match() on signals that are whole chunks gives the core's preset on those chunks, exactly."""
    chunk = 2.0
    dry, wet = _vocal(3 * chunk, 0), _vocal(2 * chunk, 1, f0=230.0).expand(2, -1).contiguous() * 0.5
    settings = dict(encoder="mfcc", init="mean", steps=3, chunk_seconds=chunk, level="preset")
    res = match(dry, wet, SR, normalize_reference=False, progress=False, **settings)
    d, _ = loudness_normalize(dry, SR, -18.0)
    found = match_chunks(split_chunks(d, 3), split_chunks(wet, 2), MatchConfig(**settings))
    np.testing.assert_array_equal(res.preset.raw, found.vector)
    np.testing.assert_array_equal(res.start, found.start)
    assert res.stats.best_step == found.best_step and res.stats.loss == found.best["loss"]
    assert [h["loss"] for h in res.history] == [h["loss"] for h in found.history]


def test_core_checks_its_chunks():
    ok = torch.zeros(1, 2, 1000)
    with pytest.raises(MatchError, match=r"dry chunks: expected \(chunks, 1, time\)"):
        match_chunks(torch.zeros(1, 2, 1000), ok, MatchConfig(encoder="mfcc", init="mean"))
    with pytest.raises(MatchError, match="reference chunks: contains NaN"):
        match_chunks(torch.zeros(1, 1, 1000), torch.full((1, 2, 1000), float("nan")), MatchConfig())


def test_encoders_say_what_a_lossy_reference_needs():
    from vocalfx.encoders import get_encoder
    from vocalfx.encoders.trained import CODEC_WEIGHTS, DEFAULT_WEIGHTS

    fx = get_encoder("fx")
    lossy = fx.for_lossy_reference()
    assert lossy is not fx and lossy.weights_path == str(CODEC_WEIGHTS) and lossy.simulates_codec
    chosen = get_encoder("fx", weights=DEFAULT_WEIGHTS.with_name(DEFAULT_WEIGHTS.name))  # a file the caller named
    assert chosen.for_lossy_reference() is chosen
    mfcc = get_encoder("mfcc")
    assert mfcc.for_lossy_reference() is mfcc and not mfcc.simulates_codec
    both = get_encoder("fx+mfcc")
    swapped = both.for_lossy_reference()
    assert both.simulates_codec and swapped is not both
    assert swapped.parts[0].weights_path == str(CODEC_WEIGHTS) and swapped.parts[1] is both.parts[1]
    plain = get_encoder("mfcc+mir")
    assert plain.for_lossy_reference() is plain and not plain.simulates_codec
