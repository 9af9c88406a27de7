"""The ``fx`` encoder (vocalfx/encoders/trained.py) with its shipped weights.

Held-out audio: the clips here are made by a small additive source-filter singer written for this
test (harmonics of a gliding, vibrato f0 shaped by vowel formants, with noise consonants), a voice
the encoder never heard (its training set is pysinsy, Asterisk prompts, espeak-ng and flite;
``docs/guide/encoders.md``), rendered with presets drawn from the prior with this file's seeds. Where
espeak-ng is installed, its Finnish voice, which the training set holds out, is checked too.
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import torch

from vocalfx import VocalChain
from vocalfx.encoders import get_encoder
from vocalfx.encoders.trained import DEFAULT_WEIGHTS, Z_MAX, FxEncoder, FxWeightsError
from vocalfx.prior import GaussianPrior

SR = 44100

VOWELS = {  # (F1, F2, F3) Hz, rough adult values
    "a": (800, 1200, 2600),
    "e": (450, 1900, 2600),
    "i": (300, 2300, 3000),
    "o": (500, 900, 2500),
    "u": (330, 800, 2300),
}


def synth_voice(seed: int, seconds: float) -> torch.Tensor:
    """A synthetic sung phrase, mono ``(1, 1, time)`` at a -20 dBFS-ish level."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = np.zeros(n)
    amp = np.zeros(n)
    formants = np.zeros((n, 3))
    pos = int(0.1 * SR)
    base = rng.uniform(110, 260)
    while pos < n:
        dur = int(rng.uniform(0.25, 0.7) * SR)
        end = min(n, pos + dur)
        note = base * 2 ** (rng.integers(-5, 8) / 12)
        f0[pos:end] = note
        env = np.minimum(
            1, np.minimum(np.arange(end - pos) / (0.03 * SR), (end - pos - np.arange(end - pos)) / (0.05 * SR))
        )
        amp[pos:end] = env * 10 ** (rng.uniform(-4, 4) / 20)
        formants[pos:end] = VOWELS[rng.choice(list(VOWELS))]
        pos = end + (int(rng.uniform(0.05, 0.4) * SR) if rng.random() < 0.3 else 0)
    f0 = np.where(f0 > 0, f0, base)
    # glide between notes and vibrato
    k = int(0.04 * SR)
    f0 = np.convolve(np.pad(f0, (k, k), mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="same")[k:-k]
    formants = np.stack(
        [
            np.convolve(np.pad(formants[:, j], (k, k), mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="same")[
                k:-k
            ]
            for j in range(3)
        ],
        1,
    )
    f0 = f0 * (1 + 0.012 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    y = np.zeros(n)
    for h in range(1, 60):
        fh = h * f0
        ok = fh < 0.45 * SR
        gain = np.zeros(n)
        for j, bw in enumerate((80, 100, 150)):
            gain += 1 / (1 + ((fh - formants[:, j]) / bw) ** 2) * (0.5**j)
        y += ok * gain * h**-0.8 * np.sin(h * phase)
    noise = np.convolve(rng.standard_normal(n), [1, -0.9], mode="same") * 0.02
    y = amp * y + noise * (amp < 0.2)
    y = y / np.sqrt(np.mean(y**2)) * 0.1
    return torch.from_numpy(y).float()[None, None]


@pytest.fixture(scope="module")
def enc() -> FxEncoder:
    return get_encoder("fx")


@pytest.fixture(scope="module")
def prior() -> GaussianPrior:
    return GaussianPrior.default()


def test_shipped_weights_load_offline(enc):
    assert DEFAULT_WEIGHTS.is_file()
    assert DEFAULT_WEIGHTS.stat().st_size <= 10 * 1024 * 1024
    assert enc.weights_path == str(DEFAULT_WEIGHTS)
    assert enc.provenance.get("script") == "scripts/train_fx_encoder.py"
    assert not any(p.requires_grad for p in enc.parameters())
    emb = enc(torch.randn(2, 2, 3 * SR) * 0.1)
    assert emb["mid"].shape == (2, 128) and emb["side"].shape == (2, 128)
    assert torch.allclose(emb["mid"].norm(dim=-1), torch.ones(2), atol=1e-5)


def _one_line_error(path, match):
    with pytest.raises(ValueError) as info:
        FxEncoder(weights=path)
    msg = str(info.value)
    assert isinstance(info.value, FxWeightsError)
    assert "\n" not in msg and str(path) in msg, msg
    assert match in msg, msg


def test_corrupt_and_mismatched_weights_fail_in_one_line(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint" * 10)
    _one_line_error(garbage, "cannot read")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(DEFAULT_WEIGHTS.read_bytes()[:100_000])
    _one_line_error(truncated, "cannot read")
    _one_line_error(tmp_path / "missing.pt", "do not exist")

    data = torch.load(DEFAULT_WEIGHTS, weights_only=True)
    other = dict(data, format="something-else")
    torch.save(other, tmp_path / "other.pt")
    _one_line_error(tmp_path / "other.pt", "not a vocalfx fx encoder weights file")

    sd = dict(data["state_dict"])
    sd.pop("head.0.weight")
    torch.save(dict(data, state_dict=sd), tmp_path / "missing_key.pt")
    _one_line_error(tmp_path / "missing_key.pt", "do not match the model")

    wide = dict(data, config=dict(data["config"], width=64))
    torch.save(wide, tmp_path / "wide.pt")
    _one_line_error(tmp_path / "wide.pt", "do not match the model")

    bad = dict(data["state_dict"])
    bad["emb_mid.bias"] = bad["emb_mid.bias"].clone().fill_(float("nan"))
    torch.save(dict(data, state_dict=bad), tmp_path / "nan.pt")
    _one_line_error(tmp_path / "nan.pt", "not finite")


def test_embedding_ignores_gain(enc):
    x = torch.randn(2, 2, 3 * SR) * 0.05
    a, b = enc(x), enc(x * 10 ** (12 / 20))
    for ch in ("mid", "side"):
        assert torch.allclose(a[ch], b[ch], atol=1e-4)


def test_gradient_matches_finite_differences(enc):
    """Directional derivatives of a scalar of the embedding, float64: autograd vs central
    differences (step 1e-6), relative error below 1e-5 in each of three random directions."""
    e64 = FxEncoder(weights=DEFAULT_WEIGHTS).double()
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(1, 2, 8192, generator=g, dtype=torch.float64) * 0.1).requires_grad_(True)
    w_mid = torch.randn(128, generator=g, dtype=torch.float64)
    w_side = torch.randn(128, generator=g, dtype=torch.float64)

    def f(v):
        out = e64(v)
        return (out["mid"] @ w_mid + out["side"] @ w_side).sum()

    f(x).backward()
    grad = x.grad.clone()
    assert torch.isfinite(grad).all() and grad.abs().max() > 0
    for _ in range(3):
        d = torch.randn(x.shape, generator=g, dtype=torch.float64)
        d = d / d.norm()
        with torch.no_grad():
            fd = (f(x + 1e-6 * d) - f(x - 1e-6 * d)) / 2e-6
        ad = (grad * d).sum()
        assert abs(float(fd - ad)) <= 1e-5 * max(abs(float(ad)), 1e-3), (float(fd), float(ad))


def test_gradient_of_a_render_is_finite(enc, renders):
    """float32, as ITO uses it: the gradient w.r.t. rendered audio is finite and not all zero."""
    wet = renders[1][:2].clone().requires_grad_(True)
    out = enc(wet)
    (out["mid"].sum() + out["side"].sum()).backward()
    assert torch.isfinite(wet.grad).all() and wet.grad.abs().max() > 0


@pytest.fixture(scope="module")
def chain() -> VocalChain:
    return VocalChain(SR)


@pytest.fixture(scope="module")
def renders(chain, prior):
    """Two held-out contents (4 s each) rendered with five prior draws: ``(presets, wet_a, wet_b, dry_a)``."""
    presets = prior.sample(5, generator=torch.Generator().manual_seed(2024)).float()
    dry_a, dry_b = synth_voice(101, 4.0), synth_voice(202, 4.0)
    with torch.no_grad():
        return presets, chain(dry_a, presets), chain(dry_b, presets), dry_a


def _pair_distances(enc, wa, wb):
    """Cosine distances: same preset / other content ``(P,)``, same content / other preset ``(2P(P-1),)``."""
    with torch.no_grad():
        ea, eb = enc(wa), enc(wb)
    emb_a = torch.cat([ea["mid"], ea["side"]], -1) / math.sqrt(2)
    emb_b = torch.cat([eb["mid"], eb["side"]], -1) / math.sqrt(2)
    same_fx = 1 - (emb_a * emb_b).sum(-1)
    off = ~torch.eye(wa.shape[0], dtype=torch.bool)
    same_content = torch.cat([(1 - emb_a @ emb_a.T)[off], (1 - emb_b @ emb_b.T)[off]])
    return same_fx, same_content


def test_effects_move_the_embedding_more_than_content(enc, renders):
    _, wa, wb, _ = renders
    same_fx, same_content = _pair_distances(enc, wa, wb)
    assert float(same_fx.mean()) < float(same_content.mean()), (same_fx, same_content)
    # pairwise: a preset's other-content twin is nearer than most same-content other-preset renders
    wins = (same_fx[:, None] < same_content[None, :]).float().mean()
    assert float(wins) >= 0.75, float(wins)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_effects_move_the_embedding_more_than_content_held_out_tts(enc, renders, chain, tmp_path):
    import soundfile as sf
    import torchaudio.functional as AF

    clips = []
    for i, text in enumerate(
        ["yksi kaksi kolme neljä viisi kuusi seitsemän", "huomenna sataa lunta ja tuulee kovasti etelästä"]
    ):
        wav = tmp_path / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", "fi", "-s", "150", "-w", str(wav), text], check=True, capture_output=True)
        x, sr = sf.read(wav, dtype="float32")
        x = AF.resample(torch.from_numpy(x), sr, SR)
        x = x / x.pow(2).mean().sqrt() * 0.1
        clips.append(x[None, None])
    n = min(c.shape[-1] for c in clips)
    presets = renders[0][:4]
    with torch.no_grad():
        wa, wb = chain(clips[0][..., :n], presets), chain(clips[1][..., :n], presets)
    same_fx, same_content = _pair_distances(enc, wa, wb)
    assert float(same_fx.mean()) < float(same_content.mean()), (same_fx, same_content)


def test_predicted_preset_is_finite_and_inside_the_prior(enc, prior, chain, renders):
    _, wet, _, dry = renders
    with torch.no_grad():
        raw_ref = enc.predict_preset(wet)
        raw_dry = enc.predict_preset(wet, dry=synth_voice(8, 4.0))
        extreme = enc.predict_preset(torch.cat([wet[:1] * 1e3, torch.zeros_like(wet[:1]), torch.randn_like(wet[:1])]))
    L = torch.linalg.cholesky(prior.cov)
    raws = torch.cat([raw_ref, raw_dry, extreme])
    assert raws.shape == (13, 130) and torch.isfinite(raws).all()
    z = torch.linalg.solve_triangular(L, (raws.double() - prior.mean).T, upper=False).T
    assert float(z.abs().max()) <= Z_MAX + 1e-3
    assert torch.isfinite(prior.log_prob(raws.double())).all()
    with torch.no_grad():
        assert torch.isfinite(chain(dry[..., :SR], raws[::5])).all()


def test_bad_shapes_are_refused(enc):
    with pytest.raises(ValueError, match="expected \\(batch, channels, time\\)"):
        enc(torch.randn(2, SR))
    with pytest.raises(ValueError, match="2 channels"):
        enc.predict_preset(torch.randn(1, 1, SR))
    with pytest.raises(ValueError, match="at least"):
        enc(torch.randn(1, 2, 1000))


def test_codec_weights_hear_through_mp3(renders):
    """With the codec-robust weights, held-out renders through MP3 at 64 kbps (LAME in
    libsndfile, :func:`vocalfx.codec.mp3_roundtrip`) stay nearer to their lossless selves than to the same content
    under another preset, for every preset. (The default weights fail this: MP3 at 64 kbps moves
    them about as far as another preset does; docs/guide/encoders.md, "Lossy references".)"""
    from vocalfx.codec import mp3_roundtrip
    from vocalfx.encoders.trained import CODEC_WEIGHTS

    enc = FxEncoder(weights=CODEC_WEIGHTS)
    assert (
        enc.provenance.get("teacher_sha256") == __import__("hashlib").sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    )
    _, wa, _, _ = renders
    lossy = torch.stack([mp3_roundtrip(w, SR, 64) for w in wa])
    assert lossy.shape == wa.shape and torch.isfinite(lossy).all()
    with torch.no_grad():
        e, el = enc(wa), enc(lossy)
    emb = torch.cat([e["mid"], e["side"]], -1) / math.sqrt(2)
    emb_l = torch.cat([el["mid"], el["side"]], -1) / math.sqrt(2)
    codec = 1 - (emb * emb_l).sum(-1)  # (P,)
    other = 1 - emb @ emb.T
    other = other + torch.eye(len(emb)) * 9  # ignore the diagonal
    assert bool((codec < other.min(-1).values).all()), (codec, other.min(-1).values)


def test_codec_weights_predict_inside_the_prior(renders):
    from vocalfx.encoders.trained import CODEC_WEIGHTS

    enc = FxEncoder(weights=CODEC_WEIGHTS)
    _, wa, _, dry_a = renders
    with torch.no_grad():
        z = enc.predict_whitened(wa, dry_a)
        raw = enc.whitened_to_raw(z)
    assert torch.isfinite(raw).all() and float(z.abs().max()) < Z_MAX
