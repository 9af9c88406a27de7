"""AFx-Rep encoder (vocalfx.encoders.afx_rep): published checkpoint format, loading, errors, front end,
shapes, resampling and gradients.

The published weights (``afx-rep.ckpt``, huggingface.co/csteinmetz1/afx-rep) cannot be downloaded
here, so the tests write a randomly initialised model in the same format: a PyTorch Lightning
checkpoint whose ``state_dict`` holds ST-ITO's ``ParameterEstimator``: the ``Cnn14`` encoder under
``encoder.`` (csteinmetz1/st-ito ``st_ito/models/panns.py``; its STFT and mel matrix are
torchlibrosa parameters, so they are stored too) next to the classifier heads, which vocalfx
ignores. The front-end tensors written here are computed independently of vocalfx (numpy).
"""

from __future__ import annotations

import argparse
import copy
import math
from pathlib import Path
from typing import Dict, Tuple

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from vocalfx.encoders import available_encoders, get_encoder
from vocalfx.encoders.afx_rep import (
    CHECKPOINT_ENV,
    WEIGHTS_URL,
    AFxRepCheckpointError,
    AFxRepEncoder,
    AFxRepNet,
    load_afx_rep,
    resolve_checkpoint,
)
from vocalfx.errors import VocalfxError

SHORT = 33000  # samples at 44.1 kHz -> 35919 at 48 kHz, 36 frames: above the 31744-sample minimum


# --- an independent front end (numpy), as librosa/torchlibrosa define it -----------------------


def _hz_to_mel_slaney(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, dtype=np.float64)
    linear = f / (200.0 / 3.0)
    log = 15.0 + np.log(np.maximum(f, 1e-300) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, linear)


def _mel_to_hz_slaney(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    linear = m * (200.0 / 3.0)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, linear)


def numpy_mel_basis(sample_rate=48000, n_fft=2048, n_mels=128, f_min=20.0, f_max=20000.0) -> np.ndarray:
    """Triangles between Slaney-mel-spaced edges, each scaled to unit area x 2/width: ``(bins, mels)``."""
    fft_hz = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    edges = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(f_min), _hz_to_mel_slaney(f_max), n_mels + 2))
    weights = np.zeros((n_mels, fft_hz.size))
    for i in range(n_mels):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        rising = (fft_hz - lo) / (mid - lo)
        falling = (hi - fft_hz) / (hi - mid)
        weights[i] = np.maximum(0.0, np.minimum(rising, falling)) * 2.0 / (hi - lo)
    return weights.T


def numpy_windowed_dft(n_fft=2048) -> Tuple[np.ndarray, np.ndarray]:
    """torchlibrosa's STFT kernels: rows ``k`` of ``hann[n] exp(-2 pi i k n / N)``, ``(bins, 1, N)``."""
    n = np.arange(n_fft)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)  # periodic
    kernel = np.exp(-2j * np.pi * np.outer(np.arange(n_fft // 2 + 1), n) / n_fft) * hann
    return kernel.real[:, None, :], kernel.imag[:, None, :]


def numpy_log_mel(x: np.ndarray, n_fft=2048, hop=1024) -> np.ndarray:
    """Reflect-padded, centred frames -> |rfft|^2 -> mel -> dB (floor 1e-10): ``(frames, mels)``."""
    padded = np.pad(x, n_fft // 2, mode="reflect")
    count = 1 + (padded.size - n_fft) // hop
    frames = np.stack([padded[i * hop : i * hop + n_fft] for i in range(count)])
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    power = np.abs(np.fft.rfft(frames * hann, axis=-1)) ** 2
    return 10.0 * np.log10(np.maximum(power @ numpy_mel_basis(n_fft=n_fft), 1e-10))


# --- the published checkpoint layout -----------------------------------------------------------


def published_encoder_layout(embed_dim=512, n_mels=128, n_fft=2048) -> Dict[str, Tuple[int, ...]]:
    """Keys and shapes of ``state_dict["encoder.*"]`` in ST-ITO's Cnn14 (use_batchnorm=True)."""
    bins = n_fft // 2 + 1
    layout = {
        "spectrogram_extractor.stft.conv_real.weight": (bins, 1, n_fft),
        "spectrogram_extractor.stft.conv_imag.weight": (bins, 1, n_fft),
        "logmel_extractor.melW": (bins, n_mels),
    }

    def bn(name, c):
        layout.update(
            {
                f"{name}.weight": (c,),
                f"{name}.bias": (c,),
                f"{name}.running_mean": (c,),
                f"{name}.running_var": (c,),
                f"{name}.num_batches_tracked": (),
            }
        )

    bn("bn0", n_mels)
    channels = [1, 64, 128, 256, 512, 1024, 2048]
    for i in range(6):
        cin, cout = channels[i], channels[i + 1]
        layout[f"conv_block{i + 1}.conv1.weight"] = (cout, cin, 3, 3)
        layout[f"conv_block{i + 1}.conv2.weight"] = (cout, cout, 3, 3)
        bn(f"conv_block{i + 1}.bn1", cout)
        bn(f"conv_block{i + 1}.bn2", cout)
    for head in ("fc_mid", "fc_side"):
        layout[f"{head}.weight"] = (embed_dim, 2048)
        layout[f"{head}.bias"] = (embed_dim,)
    return {"encoder." + k: v for k, v in layout.items()}


def random_net(seed: int = 0) -> AFxRepNet:
    """An AFxRepNet with PANNs-like random weights and non-trivial BatchNorm statistics."""
    g = torch.Generator().manual_seed(seed)
    net = AFxRepNet()
    with torch.no_grad():
        for name, p in net.named_parameters():
            if p.dim() > 1:  # conv / linear: He-normal keeps the activation scale through 12 layers
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) * math.sqrt(2.0 / fan_in))
            elif name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.05 * torch.randn(b.shape, generator=g))
            elif name.endswith("running_var"):
                b.copy_(torch.empty(b.shape).uniform_(0.8, 1.25, generator=g))
    return net.eval()


def published_checkpoint(net: AFxRepNet) -> dict:
    """``net`` in the published file's format: a Lightning checkpoint of ST-ITO's ParameterEstimator.

    The classifier heads and Lightning bookkeeping are included (names as published, heads at
    a reduced size) to show that the loader ignores them. ``bn0`` never ran in the published
    ``minmax`` model, so its ``num_batches_tracked`` is 0.
    """
    real, imag = numpy_windowed_dft(net.n_fft)
    encoder = {
        "spectrogram_extractor.stft.conv_real.weight": torch.from_numpy(real).float(),
        "spectrogram_extractor.stft.conv_imag.weight": torch.from_numpy(imag).float(),
        "logmel_extractor.melW": torch.from_numpy(numpy_mel_basis(n_fft=net.n_fft, n_mels=net.n_mels)).float(),
    }
    encoder.update(net.state_dict())
    state = {"encoder." + k: v.clone() for k, v in encoder.items()}
    for name, shape in (
        ("instance_estimator.0", (64, 2048)),
        ("instance_estimator.2", (63, 64)),
        ("preset_estimator.0", (64, 2111)),
        ("preset_estimator.2", (10, 64)),
    ):
        state[f"{name}.weight"] = torch.zeros(shape)
        state[f"{name}.bias"] = torch.zeros(shape[0])
    return {
        "epoch": 249,
        "global_step": 100000,
        "pytorch-lightning_version": "2.1.0",
        "state_dict": state,
        "loops": {},
        "callbacks": {"ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}": {"best_model_score": torch.tensor(0.1)}},
        "optimizer_states": [],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {
            "lr": 1e-4,
            "num_instances": 63,
            "num_presets": 10,
            "num_adv_classes": 0,
            "weight_decay": 1e-4,
            "max_epochs": 500,
            "embed_mode": "concat",
            "norm": "L2",
        },
    }


@pytest.fixture(scope="module")
def net() -> AFxRepNet:
    return random_net()


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, net) -> Path:
    path = tmp_path_factory.mktemp("afx") / "afx-rep.ckpt"
    torch.save(published_checkpoint(net), path)
    return path


@pytest.fixture(scope="module")
def enc(ckpt) -> AFxRepEncoder:
    """Built through the registry, so get_encoder's forwarding of ``checkpoint`` is exercised."""
    return get_encoder("afx-rep", sample_rate=44100, checkpoint=ckpt)


@pytest.fixture(scope="module")
def enc48(enc) -> AFxRepEncoder:
    """The same loaded network for 48 kHz input (a shallow copy: loading the file again costs time)."""
    e = copy.copy(enc)
    e.sample_rate = 48000
    return e


def stereo(n: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """Noise with a decaying envelope and partly correlated channels, ``(batch, 2, n)``."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(batch, 1, n, generator=g)
    x = 0.3 * (common + 0.5 * torch.randn(batch, 2, n, generator=g))
    return x * torch.exp(-torch.linspace(0.0, 3.0, n))


# --- format and loading ----------------------------------------------------------------------


def test_writer_matches_published_layout(net):
    """The file the tests write has exactly the published encoder's keys and shapes."""
    state = published_checkpoint(net)["state_dict"]
    got = {k: tuple(v.shape) for k, v in state.items() if k.startswith("encoder.")}
    assert got == published_encoder_layout()


def test_registered_and_get_encoder_forwards_checkpoint(enc, ckpt):
    assert "afx-rep" in available_encoders()
    assert isinstance(enc, AFxRepEncoder) and enc.checkpoint_path == ckpt and not enc.peak_normalize
    assert (enc.sample_rate, enc.model_sample_rate, enc.embedding_dim) == (44100, 48000, 512)
    assert enc.net.input_norm == "minmax" and enc.net.conv_batchnorm


def test_loaded_weights_equal_saved(net, enc):
    saved, loaded = net.state_dict(), enc.net.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[k], loaded[k]) for k in saved)
    ref = torch.from_numpy(numpy_mel_basis()).float()
    assert torch.equal(enc.net.mel_basis, ref)  # the checkpoint's matrix is the one used


def test_env_var_gives_the_same_model(ckpt, enc, monkeypatch):
    monkeypatch.setenv(CHECKPOINT_ENV, str(ckpt))
    e = get_encoder("afx-rep", sample_rate=44100, peak_normalize=True)
    assert e.checkpoint_path == ckpt and e.peak_normalize
    assert all(torch.equal(p, q) for p, q in zip(e.state_dict().values(), enc.state_dict().values()))


def test_explicit_path_wins_over_env_var(ckpt, monkeypatch, tmp_path):
    monkeypatch.setenv(CHECKPOINT_ENV, str(tmp_path / "nowhere.ckpt"))
    assert resolve_checkpoint(str(ckpt)) == ckpt
    with pytest.raises(AFxRepCheckpointError, match="nowhere.ckpt"):
        resolve_checkpoint(None)


def test_bare_encoder_state_dict_and_input_norm(net, tmp_path):
    """The encoder's own tensors (what people extract from the Lightning file) load too; a bn0
    that ran during training (num_batches_tracked > 0) means input_norm='batchnorm'."""
    full = published_checkpoint(net)["state_dict"]
    bare = {k[len("encoder.") :]: v for k, v in full.items() if k.startswith("encoder.")}
    bare["bn0.num_batches_tracked"] = torch.tensor(1000)
    path = tmp_path / "encoder_state.pt"
    torch.save(bare, path)
    loaded = load_afx_rep(path)
    assert torch.equal(loaded.fc_side.weight, net.fc_side.weight)
    assert loaded.input_norm == "batchnorm"


# --- errors --------------------------------------------------------------------------------


def test_no_checkpoint_error_says_how_to_get_one(monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    with pytest.raises(AFxRepCheckpointError) as info:
        get_encoder("afx-rep", sample_rate=44100)
    msg = str(info.value)
    assert isinstance(info.value, VocalfxError)
    assert "no AFx-Rep checkpoint given" in msg
    for needle in (WEIGHTS_URL, "afx-rep.ckpt", "--afx-rep PATH", CHECKPOINT_ENV):
        assert needle in msg


def test_missing_file_error_names_the_path(tmp_path, monkeypatch):
    monkeypatch.delenv(CHECKPOINT_ENV, raising=False)
    path = tmp_path / "missing" / "afx-rep.ckpt"
    with pytest.raises(AFxRepCheckpointError, match="does not exist") as info:
        AFxRepEncoder(44100, checkpoint=path)
    assert str(path) in str(info.value) and WEIGHTS_URL in str(info.value) and "(given)" in str(info.value)

    monkeypatch.setenv(CHECKPOINT_ENV, str(path))
    with pytest.raises(AFxRepCheckpointError, match=f"from \\${CHECKPOINT_ENV}") as info:
        AFxRepEncoder(44100)
    assert str(path) in str(info.value)


def test_directory_is_not_a_checkpoint(tmp_path):
    with pytest.raises(AFxRepCheckpointError, match="is not a file"):
        load_afx_rep(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all" * 100, b"PK\x03\x04" + b"\x00" * 64])
def test_corrupt_file(tmp_path, content):
    path = tmp_path / "afx-rep.ckpt"
    path.write_bytes(content)
    with pytest.raises(AFxRepCheckpointError, match="not a readable PyTorch checkpoint") as info:
        load_afx_rep(path)
    assert str(path) in str(info.value)


def test_truncated_file(tmp_path):
    path = tmp_path / "afx-rep.ckpt"
    torch.save({"state_dict": {"encoder.fc_mid.weight": torch.zeros(512, 2048)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AFxRepCheckpointError, match="not a readable PyTorch checkpoint"):
        load_afx_rep(path)


def test_arbitrary_objects_are_refused(tmp_path):
    """weights_only loading: a pickled class instance is not unpickled; the message says what to do."""
    path = tmp_path / "afx-rep.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": argparse.Namespace(lr=1e-4)}, path)
    with pytest.raises(AFxRepCheckpointError, match="refuses to unpickle") as info:
        load_afx_rep(path)
    assert str(path) in str(info.value) and "weights_only" in str(info.value)


def test_wrong_format_errors(tmp_path, net):
    path = tmp_path / "x.ckpt"
    torch.save([torch.zeros(3)], path)
    with pytest.raises(AFxRepCheckpointError, match="expected a dict with a 'state_dict'"):
        load_afx_rep(path)

    # another model's checkpoint: none of the encoder's keys
    torch.save({"state_dict": {"model.linear.weight": torch.zeros(3, 3)}}, path)
    with pytest.raises(AFxRepCheckpointError, match="not in the published format") as info:
        load_afx_rep(path)
    assert "logmel_extractor.melW" in str(info.value) and str(path) in str(info.value)


def test_missing_and_misshapen_weights(tmp_path, net):
    full = published_checkpoint(net)["state_dict"]
    keep = [k for k in full if not k.startswith("encoder.conv_block6.") and not k.startswith("encoder.conv_block")]
    state = {k: full[k] for k in keep}
    state["encoder.conv_block1.conv1.weight"] = torch.zeros(32, 1, 3, 3)
    state["encoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.ckpt"
    torch.save({"state_dict": state}, path)
    with pytest.raises(AFxRepCheckpointError) as info:
        load_afx_rep(path)
    msg = str(info.value)
    assert str(path) in msg and "does not match the published encoder" in msg
    assert "missing conv_block1.conv2.weight" in msg
    assert "unexpected extra.weight" in msg
    assert "conv_block1.conv1.weight (32, 1, 3, 3) (expected (64, 1, 3, 3))" in msg


def front_end_only(net: AFxRepNet) -> dict:
    """The published file cut down to what is checked before the weights: front end and fc_mid."""
    real, imag = numpy_windowed_dft()
    state = {
        "encoder.spectrogram_extractor.stft.conv_real.weight": torch.from_numpy(real).float(),
        "encoder.spectrogram_extractor.stft.conv_imag.weight": torch.from_numpy(imag).float(),
        "encoder.logmel_extractor.melW": torch.from_numpy(numpy_mel_basis()).float(),
    }
    for name, p in net.named_parameters():
        if name.startswith("fc_"):
            state["encoder." + name] = p.detach().clone()
    return {"state_dict": state}


def test_other_front_end_is_refused(tmp_path, net):
    """A mel matrix made for another sample rate is not the published model's front end."""
    ck = front_end_only(net)
    ck["state_dict"]["encoder.logmel_extractor.melW"] = torch.from_numpy(
        numpy_mel_basis(sample_rate=44100, f_max=20000.0)
    ).float()
    path = tmp_path / "sr.ckpt"
    torch.save(ck, path)
    with pytest.raises(AFxRepCheckpointError, match="Slaney mel filter bank"):
        load_afx_rep(path)
    ck = front_end_only(net)
    ck["state_dict"]["encoder.spectrogram_extractor.stft.conv_real.weight"] *= 2.0
    torch.save(ck, path)
    with pytest.raises(AFxRepCheckpointError, match="conv_real.weight is not a periodic-Hann 2048-point DFT"):
        load_afx_rep(path)


def test_nonfinite_weights_are_refused(tmp_path, net):
    ck = front_end_only(net)
    ck["state_dict"]["encoder.fc_side.bias"][3] = float("nan")
    path = tmp_path / "nan.ckpt"
    torch.save(ck, path)
    with pytest.raises(AFxRepCheckpointError, match="non-finite values in fc_side.bias"):
        load_afx_rep(path)


# --- front end oracle ----------------------------------------------------------------------


def test_mel_basis_matches_independent_slaney():
    """vocalfx's filter bank (torchaudio's Slaney bank, float32 arithmetic) vs a float64 numpy construction.

    Tolerance 1e-5 of the peak: torchaudio computes edges and slopes in float32 (eps 1.2e-7),
    and a slope is a difference of two frequencies near 20 kHz divided by a band width of
    ~100 Hz, which magnifies rounding ~200x (seen: 3e-6). A wrong edge or normalisation is off
    by more than 1e-2 of the peak.
    """
    ours = AFxRepNet().mel_basis.double().numpy()
    ref = numpy_mel_basis()
    assert ours.shape == ref.shape == (1025, 128)
    assert np.abs(ours - ref).max() <= 1e-5 * ref.max()


def test_log_mel_matches_numpy(net):
    """Framing, window, |rfft|^2, mel and dB against numpy.

    float64 with the same (numpy) mel matrix: within 1e-6 dB everywhere. float32 with the
    module's own matrix: within 0.01 dB wherever the reference is above -100 dB (float32 STFT
    rounding grows as the level falls towards the 1e-10 power floor).
    """
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 40000)) * np.array([[0.5], [1e-3]])  # a loud and a quiet signal
    ref = np.stack([numpy_log_mel(row) for row in x])
    net64 = AFxRepNet().double()  # buffers are made in float32: give the float64 run float64 ones
    net64.mel_basis.copy_(torch.from_numpy(numpy_mel_basis()))
    net64.window.copy_(torch.hann_window(2048, periodic=True, dtype=torch.float64))
    got = net64.log_mel(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape == (2, 1 + 40000 // 1024, 128)
    assert np.abs(got - ref).max() <= 1e-6
    got32 = net.log_mel(torch.from_numpy(x).float()).numpy()
    loud = ref > -100.0
    assert loud.mean() > 0.9
    assert np.abs(got32 - ref)[loud].max() <= 1e-2


def test_mid_side_convention(enc, monkeypatch):
    """The network's own mid/side, (L + R)/2 and (L - R)/2 (not vocalfx's 1/sqrt(2)), feeds the front end."""
    seen = []
    original = enc.net.log_mel
    monkeypatch.setattr(enc.net, "log_mel", lambda z: seen.append(z.detach().clone()) or original(z))
    x48 = stereo(35000, batch=2, seed=7)
    AFxRepEncoder.embed_mid_side(enc, x48)
    left, right = x48[:, 0], x48[:, 1]
    want = torch.stack([(left + right) / 2, (left - right) / 2], dim=1).reshape(4, -1)
    assert len(seen) == 1 and torch.equal(seen[0], want)


# --- outputs -------------------------------------------------------------------------------


def test_shapes_norms_and_determinism(enc):
    x = stereo(SHORT, batch=3, seed=2)
    a = enc(x)
    one = enc(x[1:2])
    again = enc(x[1:2])
    for key in ("mid", "side"):
        assert a[key].shape == (3, 512) and a[key].dtype == torch.float32
        assert torch.isfinite(a[key]).all()
        torch.testing.assert_close(a[key].norm(dim=-1), torch.ones(3), rtol=0, atol=1e-5)
        assert torch.equal(one[key], again[key])  # deterministic
        # batch consistency: sizes 1 and 3 give the same rows
        torch.testing.assert_close(one[key], a[key][1:2], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(a["mid"], a["side"])


def test_train_mode_does_not_change_output(enc):
    """BatchNorm always uses running statistics; there is no dropout: train() changes nothing."""
    x = stereo(SHORT)
    before = enc(x)["mid"]
    try:
        enc.train()
        assert torch.equal(enc(x)["mid"], before)
    finally:
        enc.eval()


def test_resamples_itself(enc, enc48):
    """44.1 kHz input = resampling to 48 kHz first; the same band-limited signal at both rates agrees."""
    x44 = stereo(SHORT, seed=3)
    a = enc(x44)
    b = enc48(AF.resample(x44, 44100, 48000))
    assert torch.equal(a["mid"], b["mid"]) and torch.equal(a["side"], b["side"])

    def tones(rate: int) -> torch.Tensor:
        t = torch.arange(int(0.8 * rate), dtype=torch.float64) / rate
        f = torch.tensor([110.0, 440.0, 1250.0, 3300.0, 7100.0, 12500.0], dtype=torch.float64)[:, None]
        left = (torch.sin(2 * math.pi * f * t) / f.sqrt()).sum(0)
        right = (torch.sin(2 * math.pi * f * t + 1.0) / f.sqrt()).sum(0)
        return (0.2 * torch.stack([left, right])).float()[None]

    e44, e48 = enc(tones(44100)), enc48(tones(48000))
    for key in ("mid", "side"):
        cos = float((e44[key] * e48[key]).sum())
        assert cos > 0.9999, (key, cos)  # measured 0.999999 (mid) and 1.0 (side)


def test_too_short_input(enc):
    with pytest.raises(ValueError, match="at least 31744 samples at 48000 Hz"):
        enc(stereo(29000))


def test_wrong_rank(enc):
    with pytest.raises(ValueError, match="expected \\(batch, channels, time\\)"):
        enc(torch.zeros(2, SHORT))


def test_peak_normalize_is_scale_invariant(enc, monkeypatch):
    """ST-ITO's per-item peak normalisation (opt-in) removes the level; without it the level matters."""
    x = stereo(SHORT, seed=4)
    plain = enc(x * 0.05)
    monkeypatch.setattr(enc, "peak_normalize", True)
    a, b = enc(x), enc(x * 0.05)
    torch.testing.assert_close(a["mid"], b["mid"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(a["side"], b["side"], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(a["mid"], plain["mid"], rtol=1e-3, atol=1e-4)


# --- gradients -----------------------------------------------------------------------------


def test_gradient_reaches_the_audio(enc):
    assert not any(p.requires_grad for p in enc.parameters())
    x = stereo(SHORT, batch=2, seed=5).requires_grad_(True)
    out = enc(x)
    g = torch.Generator().manual_seed(0)
    w_mid, w_side = torch.randn(2, 2, 512, generator=g)
    loss = (out["mid"] * w_mid).sum() + (out["side"] * w_side).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert (x.grad.abs().amax(dim=-1) > 0).all()  # every item, both channels


def test_directional_derivative_float64(enc48):
    """Autograd vs a finite difference along one random direction, in float64.

    The network is piecewise linear (ReLU, max over time, clamp) around smooth parts (log, L2
    normalisation): a difference quotient is only meaningful inside one linear piece, so the step
    is tiny (1e-9 per sample); float64 round-off then bounds the quotient's accuracy to ~1e-5.
    """
    g = torch.Generator().manual_seed(6)
    x = stereo(32768, seed=6).double().requires_grad_(True)
    v = torch.randn(x.shape, generator=g, dtype=torch.float64)
    w = torch.randn(2, 512, generator=g, dtype=torch.float64)

    def f(z):
        out = enc48(z)
        return (out["mid"] * w[0]).sum() + (out["side"] * w[1]).sum()

    enc48.double()  # float32 -> float64 -> float32 is exact, so the fixture is restored below
    try:
        f0 = f(x)
        f0.backward()
        analytic = float((x.grad * v).sum())
        h = 1e-9
        with torch.no_grad():
            numeric = (float(f(x + h * v)) - float(f0)) / h
    finally:
        enc48.float()
    assert abs(analytic - numeric) <= 1e-4 * abs(numeric), (analytic, numeric)
