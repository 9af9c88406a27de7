"""The demucs backend end to end, with a small randomly initialised HTDemucs saved in the format
demucs itself reads: ``<signature>-<sha256 prefix>.th`` holding ``{"klass", "args", "kwargs",
"state"}``, found by the signature of a bag yaml (demucs' own ``htdemucs.yaml`` names
``955717e8``). No test touches the network: sockets and the download functions are disabled."""

from __future__ import annotations

import hashlib
import io
import socket
from pathlib import Path

import pytest
import torch

demucs = pytest.importorskip("demucs", reason="the demucs backend needs `pip install 'vocalfx[separate]'`")
from demucs.apply import BagOfModels, apply_model  # noqa: E402
from demucs.htdemucs import HTDemucs  # noqa: E402
from demucs.states import get_state  # noqa: E402

from vocalfx.cli import main  # noqa: E402
from vocalfx.separate import ModelNotFoundError, SeparationError, get_separator, separate  # noqa: E402
from vocalfx.separate.demucs_backend import ENV_VAR  # noqa: E402

SR = 44100
HTDEMUCS_SIG = "955717e8"  # the single model of demucs' htdemucs bag (demucs/remote/htdemucs.yaml)
SOURCES = ["drums", "bass", "other", "vocals"]


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No network, and empty caches unless a test fills them."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    try:
        import huggingface_hub

        monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
        monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    except ImportError:  # pragma: no cover
        pass
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    monkeypatch.delenv(ENV_VAR, raising=False)
    torch.hub.set_dir(str(tmp_path / "torch_home" / "hub"))


def tiny_htdemucs(seed: int) -> HTDemucs:
    """A 360k-parameter HTDemucs (depth 4, so the transformer sees a short sequence): 0.5 s for 3 s."""
    torch.manual_seed(seed)
    return HTDemucs(SOURCES, channels=8, depth=4, t_layers=1, t_heads=2, segment=4, dconv_depth=1, dconv_comp=4).eval()


def save_model(model: HTDemucs, directory: Path, sig: str = HTDEMUCS_SIG) -> Path:
    """Write ``model`` as demucs' ``save_with_checksum(serialize_model(...))`` does."""
    args, kwargs = model._init_args_kwargs
    package = {"klass": model.__class__, "args": args, "kwargs": kwargs, "state": get_state(model, None, half=False)}
    buf = io.BytesIO()
    torch.save(package, buf)
    data = buf.getvalue()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{sig}-{hashlib.sha256(data).hexdigest()[:8]}.th"
    path.write_bytes(data)
    return path


def song(seconds: float = 3.0, channels: int = 2, rate: int = SR) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    t = torch.arange(int(seconds * rate)) / rate
    x = 0.2 * torch.sin(2 * torch.pi * 220 * t) + 0.05 * torch.randn(channels, t.numel(), generator=g)
    return x.float()


def direct(model: HTDemucs, mix: torch.Tensor, all_stems: bool = False) -> torch.Tensor:
    """Vocals by demucs.apply directly, with demucs.api's normalisation (mean/std of the mono mix)."""
    ref = mix.mean(0)
    mean, std = ref.mean(), ref.std()
    with torch.no_grad():
        stems = apply_model(
            BagOfModels([model]),
            ((mix - mean) / std)[None],
            shifts=0,
            split=True,
            overlap=0.25,
            progress=False,
            device="cpu",
        )[0]
    stems = stems * std + mean / len(SOURCES)
    return stems if all_stems else stems[SOURCES.index("vocals")]


def test_local_weights_are_found_and_used(tmp_path):
    model = tiny_htdemucs(0)
    path = save_model(model, tmp_path / "models")
    mix = song()
    sep = get_separator("demucs", model_dir=tmp_path / "models", shifts=0)
    assert sep.model_files == [path] and str(path) in sep.describe()
    v, a = separate(mix, SR, backend=sep)
    assert v.shape == mix.shape and a.shape == mix.shape and v.dtype == torch.float32
    assert torch.isfinite(v).all() and torch.isfinite(a).all()
    # the backend's vocals are the model's: equal to demucs.apply run on the same weights
    # (float32, same segments; measured max difference 0)
    torch.testing.assert_close(v, direct(model, mix), atol=1e-5, rtol=1e-4)
    # and the accompaniment is the sum of the other three stems
    stems = direct(model, mix, all_stems=True)
    torch.testing.assert_close(a, stems.sum(0) - stems[SOURCES.index("vocals")], atol=1e-5, rtol=1e-4)
    # other weights give another output: the file on disk is what runs
    other = tmp_path / "other"
    save_model(tiny_htdemucs(1), other)
    v2, _ = separate(mix, SR, backend="demucs", model_dir=other, shifts=0)
    assert float((v2 - v).abs().max()) > 1e-3


def test_mono_and_other_rate_are_adapted(tmp_path):
    save_model(tiny_htdemucs(0), tmp_path / "m")
    sep = get_separator("demucs", model_dir=tmp_path / "m", shifts=0)
    mono = song(2.0, channels=1)
    v, a = separate(mono, SR, backend=sep)
    assert v.shape == mono.shape and torch.isfinite(v).all()
    x = song(2.0, rate=22050)
    v, a = separate(x, 22050, backend=sep)  # resampled to 44.1 kHz for the model and back
    assert v.shape == x.shape and torch.isfinite(v).all()
    with pytest.raises(SeparationError, match="2-channel"):
        separate(song(1.0, channels=3), SR, backend=sep)


def test_lookup_order_env_torch_hub_and_hf_cache(tmp_path, monkeypatch):
    env_dir = tmp_path / "env_models"
    p_env = save_model(tiny_htdemucs(0), env_dir)
    monkeypatch.setenv(ENV_VAR, str(env_dir))
    assert get_separator("demucs").model_files == [p_env]
    monkeypatch.delenv(ENV_VAR)

    hub = Path(torch.hub.get_dir()) / "checkpoints"
    p_hub = save_model(tiny_htdemucs(0), hub)
    assert get_separator("demucs").model_files == [p_hub]
    p_hub.unlink()

    snap = tmp_path / "hf_cache" / "models--adefossez--HTDemucs" / "snapshots" / "0123abcd"
    p_hf = save_model(tiny_htdemucs(0), snap)
    assert get_separator("demucs").model_files == [p_hf]
    # an explicit directory comes first
    first = save_model(tiny_htdemucs(2), tmp_path / "first")
    assert get_separator("demucs", model_dir=tmp_path / "first").model_files == [first]


def test_bag_yaml_and_single_signature(tmp_path):
    d = tmp_path / "bag"
    save_model(tiny_htdemucs(0), d, sig="aaaa1111")
    save_model(tiny_htdemucs(1), d, sig="bbbb2222")
    (d / "mybag.yaml").write_text("models: ['aaaa1111', 'bbbb2222']\nsegment: 4\n")
    sep = get_separator("demucs", model="mybag", model_dir=d, shifts=0)
    assert len(sep.model_files) == 2
    v, _ = separate(song(2.0), SR, backend=sep)
    assert torch.isfinite(v).all()
    one = get_separator("demucs", model="aaaa1111", model_dir=d)
    assert [f.name.split("-")[0] for f in one.model_files] == ["aaaa1111"]
    (d / "broken.yaml").write_text("models: ['aaaa1111', 'cccc3333']\n")
    with pytest.raises(ModelNotFoundError, match="cccc3333"):
        get_separator("demucs", model="broken", model_dir=d)


def test_checksum_mismatch_and_garbage(tmp_path):
    d = tmp_path / "bad"
    path = save_model(tiny_htdemucs(0), d)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(SeparationError, match="checksum"):
        get_separator("demucs", model_dir=d)
    path.unlink()
    (d / f"{HTDEMUCS_SIG}.th").write_bytes(b"not a model")
    with pytest.raises(SeparationError, match="cannot load as a Demucs model"):
        get_separator("demucs", model_dir=d)


def test_missing_model_message(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "env_dir"))
    with pytest.raises(ModelNotFoundError) as e:
        get_separator("demucs", model_dir=tmp_path / "given")
    msg = str(e.value)
    assert "\n" not in msg and "never downloads" in msg
    for part in (
        str(tmp_path / "given"),
        str(tmp_path / "env_dir"),
        ENV_VAR,
        "checkpoints",
        "models--adefossez--HTDemucs",
        f"{HTDEMUCS_SIG}-",
        "model_dir=DIR",
    ):
        assert part in msg, part
    assert "--model-dir" not in msg  # the library names its argument; the CLI names its flag
    mix = tmp_path / "song.wav"
    import soundfile as sf

    sf.write(str(mix), song(1.0).T.numpy(), SR)
    assert main(["separate", str(mix), "-o", str(tmp_path / "out"), "--backend", "demucs", "-q"]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and ENV_VAR in err and len(err.strip().splitlines()) == 1
    assert "--model-dir DIR" in err
    assert not list((tmp_path / "out").glob("*.wav"))


def test_cli_with_local_model(tmp_path):
    import soundfile as sf

    save_model(tiny_htdemucs(0), tmp_path / "m")
    mix = tmp_path / "song.wav"
    x = song(3.0)
    sf.write(str(mix), x.T.numpy(), SR, subtype="FLOAT")
    assert (
        main(
            [
                "separate",
                str(mix),
                "-o",
                str(tmp_path / "out"),
                "--backend",
                "demucs",
                "--model-dir",
                str(tmp_path / "m"),
                "-q",
            ]
        )
        == 0
    )
    v, rate = sf.read(str(tmp_path / "out" / "song_vocals.wav"), dtype="float32", always_2d=True)
    assert rate == SR and v.shape == (x.shape[-1], 2)


def test_match_separate_with_demucs(tmp_path):
    """`vocalfx match --separate --backend demucs --model-dir` runs the local model and says so."""
    import json

    import soundfile as sf

    path = save_model(tiny_htdemucs(0), tmp_path / "m")
    t = torch.arange(4 * SR) / SR
    dry = (0.3 * torch.sin(2 * torch.pi * 200 * t) * (1 + torch.sin(2 * torch.pi * 3 * t))).float()
    sf.write(str(tmp_path / "dry.wav"), dry.numpy(), SR, subtype="FLOAT")
    sf.write(str(tmp_path / "song.wav"), song(4.0).T.numpy(), SR, subtype="FLOAT")
    args = [
        "match",
        str(tmp_path / "dry.wav"),
        str(tmp_path / "song.wav"),
        "-o",
        str(tmp_path / "out.wav"),
        "--separate",
        "--backend",
        "demucs",
        "--model-dir",
        str(tmp_path / "m"),
        "--steps",
        "2",
        "--chunk-seconds",
        "2",
        "--report",
        str(tmp_path / "r.json"),
        "-q",
    ]
    assert main(args) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["separation_backend"].startswith("demucs") and str(path) in rep["separation_backend"]
    out, rate = sf.read(str(tmp_path / "out.wav"), dtype="float32", always_2d=True)
    assert rate == SR and out.shape == (dry.numel(), 2) and torch.isfinite(torch.from_numpy(out)).all()
