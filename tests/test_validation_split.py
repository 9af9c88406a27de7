"""The validation corpus's split (scripts/validation_split.json) holds out only what it may.

Its presets must be rows the rules allow for validation: MedleyDB ``train`` rows (never ``dev`` or
``reserved``) and internal rows outside ``train_index`` (the rows the shipped prior was fitted on).
scripts/build_validation_set.py refuses a split that breaks this; these tests check the committed
split and that the refusal fires.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("build_validation_set", ROOT / "scripts" / "build_validation_set.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_split_holds_out_allowed_rows_and_enough_voices(shared):
    split = json.loads((ROOT / "scripts" / "validation_split.json").read_text())
    _builder().check_split(split, shared)  # raises SystemExit otherwise
    rows = json.loads((shared / "diffvox-presets/medleydb/splits.json").read_text())
    held = set(split["presets"]["medleydb_train_rows"])
    assert not held & (set(rows["dev"]) | set(rows["reserved"]))
    assert len(held) + len(split["presets"]["internal_rows"]) >= 16
    speech = split["speech"]
    assert sum(s["tracks"] for s in speech) >= 8 and len(speech) >= 4
    assert any(s["voice"].startswith("male") for s in speech) and split["singing"]["tracks"] >= 8


def test_a_split_with_forbidden_rows_is_refused(shared):
    builder = _builder()
    train_index = np.load(shared / "diffvox-presets/internal/train_index.npy")
    dev_row = json.loads((shared / "diffvox-presets/medleydb/splits.json").read_text())["dev"][0]
    with pytest.raises(SystemExit, match=rf"MedleyDB rows \[{dev_row}\] are not in the train split"):
        builder.check_split({"presets": {"medleydb_train_rows": [dev_row], "internal_rows": []}}, shared)
    with pytest.raises(SystemExit, match="are in train_index"):
        builder.check_split({"presets": {"medleydb_train_rows": [], "internal_rows": [int(train_index[0])]}}, shared)
