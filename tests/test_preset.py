"""Preset JSON format: exact round trips, edits in physical units, range errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vocalfx.params import NUM_PARAMS, default_vector, from_diffvox, native_to_raw, raw_to_native, to_diffvox
from vocalfx.preset import Preset, PresetError, PresetIndexError, load_index_file, save_collection, shipped_presets


def all_presets(shared):
    out = []
    for coll in ["internal", "medleydb"]:
        raw = np.load(shared / "diffvox-presets" / coll / "raw_params.npy")
        out += [Preset.from_diffvox(r) for r in raw]
    return out


def test_json_round_trip_exact_for_every_diffvox_preset(shared, tmp_path):
    for i, p in enumerate(all_presets(shared)):
        q = Preset.from_dict(json.loads(json.dumps(p.to_dict())))
        assert np.abs(q.raw - p.raw).max() <= 1e-6, i


def test_round_trip_from_physical_values_alone(shared):
    """Without the raw vector, the physical values alone give the raw vector back within 1e-6.

    Except the look-ahead's sign: DiffVox maps it by |r| mod 15, so r and -r are the same
    preset; from physical values we recover the non-negative one (and the same native value).
    """
    from vocalfx.params import INDEX

    la = INDEX["comp.lookahead_ms"]
    worst = 0.0
    for p in all_presets(shared)[::7]:
        d = p.to_dict()
        del d["raw"]
        q = Preset.from_dict(d)
        err = np.abs(q.raw - p.raw)
        err[la] = abs(q.native[la] - p.native[la])
        worst = max(worst, float(err.max()))
    assert worst <= 1e-6, worst


def test_raw_native_round_trip():
    v = np.random.default_rng(0).normal(size=(50, NUM_PARAMS)) * 3
    v[:, 17] = np.abs(v[:, 17]) % 15  # look-ahead is |r| mod 15: only [0, 15) is canonical
    back = native_to_raw(raw_to_native(torch.from_numpy(v)).numpy())
    np.testing.assert_allclose(back, v, atol=1e-9)
    np.testing.assert_array_equal(from_diffvox(to_diffvox(v)), v)


def test_edit_in_physical_units(tmp_path):
    p = Preset.from_physical({"comp.attack_ms": 12.0, "delay.odd_pan": -40.0, "reverb.decay_10": 2.5})
    path = tmp_path / "p.json"
    p.to_json(path)
    d = json.loads(path.read_text())
    assert d["parameters"]["comp"]["attack_ms"] == pytest.approx(12.0)
    d["parameters"]["peak1"]["freq_hz"] = 1234.5  # a person edits one value
    path.write_text(json.dumps(d))
    q = Preset.from_json(path)
    assert q.physical["peak1.freq_hz"] == pytest.approx(1234.5, rel=1e-12)
    assert q.physical["comp.attack_ms"] == pytest.approx(12.0, rel=1e-12)
    assert q.physical["reverb.decay_10"] == pytest.approx(2.5, rel=1e-12)
    unchanged = [i for i in range(NUM_PARAMS) if i != 1]
    np.testing.assert_array_equal(q.raw[unchanged], p.raw[unchanged])


@pytest.mark.parametrize(
    "module,key,value,needle",
    [
        ("lowpass", "freq_hz", 100.0, "lowpass.freq_hz"),
        ("comp", "comp_ratio", 0.5, "comp.comp_ratio"),
        ("delay", "odd_pan", 150.0, "delay.odd_pan"),
        ("comp", "lookahead_ms", 20.0, "comp.lookahead_ms"),
    ],
)
def test_out_of_range_names_parameter_range_and_unit(module, key, value, needle):
    d = Preset.default().to_dict()
    d["parameters"][module][key] = value
    with pytest.raises(PresetError, match=needle) as e:
        Preset.from_dict(d)
    assert "range" in str(e.value)


def test_bad_documents(tmp_path):
    with pytest.raises(PresetError, match="not a vocalfx preset"):
        Preset.from_dict({"hello": 1})
    d = Preset.default().to_dict()
    d["layout"] = "other"
    with pytest.raises(PresetError, match="layout"):
        Preset.from_dict(d)
    d = Preset.default().to_dict()
    d["parameters"]["comp"]["knee_db"] = 3
    with pytest.raises(PresetError, match="unknown parameter comp.knee_db"):
        Preset.from_dict(d)
    p = tmp_path / "broken.json"
    p.write_text("{not json")
    with pytest.raises(PresetError, match="broken.json"):
        Preset.from_json(p)
    with pytest.raises(PresetError, match="151"):
        Preset.from_diffvox(np.zeros(100))


def test_default_vector_is_diffvox_initial_values():
    phys = Preset.default().physical
    assert phys["peak1.freq_hz"] == pytest.approx(800.0)
    assert phys["comp.attack_ms"] == pytest.approx(50.0)
    assert phys["delay.delay_ms"] == pytest.approx(400.0)
    assert phys["pan.position"] == pytest.approx(0.0, abs=1e-12)
    assert np.all(np.isfinite(default_vector()))


def test_resolve_file_collection_index_and_shipped_name(tmp_path):
    one = tmp_path / "one.json"
    Preset.from_physical({"comp.attack_ms": 7.0}, name="mine").to_json(one)
    assert Preset.resolve(one).name == "mine"
    assert Preset.resolve(one, 0).name == "mine"
    coll = tmp_path / "coll.json"
    save_collection([Preset.default(), Preset.from_physical({"delay.delay_ms": 250.0}, name="b")], coll)
    assert Preset.resolve(coll, 1).name == "b"
    with pytest.raises(PresetIndexError, match="a collection of 2 presets; choose one by its index") as e:
        Preset.resolve(coll)
    assert (e.value.count, e.value.index) == (2, None)
    with pytest.raises(PresetIndexError, match=r"index 2 out of range \(0..1\)"):
        Preset.resolve(coll, 2)
    assert "--" not in str(e.value)  # library messages name no CLI flags
    shipped = shipped_presets()
    assert Preset.resolve("pop-lead").raw.tolist() == next(p for p in shipped if p.name == "pop-lead").raw.tolist()
    with pytest.raises(PresetError, match="no-such: no such preset file.*pop-lead"):
        Preset.resolve("no-such")


def test_load_index_file(tmp_path):
    good = tmp_path / "idx.npy"
    np.save(good, np.array([3, 0, 2]))
    assert load_index_file(good, 4) == [3, 0, 2]
    with pytest.raises(PresetError, match="index 3 is out of range for a collection of 3"):
        load_index_file(good, 3)
    floats = tmp_path / "f.npy"
    np.save(floats, np.array([0.5]))
    with pytest.raises(PresetError, match="1-D integer array"):
        load_index_file(floats, 3)
    with pytest.raises(PresetError, match="no such file"):
        load_index_file(tmp_path / "missing.npy", 3)
