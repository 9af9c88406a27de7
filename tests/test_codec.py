"""Lossy references for the evaluation (``vocalfx eval --reference-codec mp3:KBPS``)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from vocalfx.codec import mp3_roundtrip, parse_codec
from vocalfx.evaluation import EvalError, load_corpus

SR = 44100


def _voice_like(seconds: float, seed: int = 0) -> torch.Tensor:
    """Stereo noise band-limited to 5 kHz with a syllable envelope: content MP3 keeps well."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    sos = scipy.signal.butter(8, 5000, fs=SR, output="sos")
    x = scipy.signal.sosfilt(sos, rng.standard_normal((2, n)), axis=-1)
    env = 0.3 + 0.7 * np.sin(2 * np.pi * 3.0 * np.arange(n) / SR) ** 2
    return torch.from_numpy(0.1 * x * env / np.abs(x).max()).float()


def test_codec_specs_are_checked():
    assert parse_codec(None) is None and parse_codec("") is None
    assert parse_codec("mp3:64") == ("mp3", 64) and parse_codec(" MP3:128 ") == ("mp3", 128)
    for bad in ("mp3", "ogg:64", "mp3:4", "mp3:32", "mp3:999", "mp3:sixty"):
        with pytest.raises(ValueError, match="reference codec"):
            parse_codec(bad)


def test_mp3_roundtrip_keeps_length_level_and_alignment():
    x = _voice_like(3.0)
    for kbps in (64, 128):
        y = mp3_roundtrip(x, SR, kbps)
        assert y.shape == x.shape and y.dtype == torch.float32 and torch.isfinite(y).all()
        # the decoder's delay is cut exactly: the cross-correlation peaks at lag 0 (+-50 searched)
        a, b = x.double().mean(0).numpy(), y.double().mean(0).numpy()
        lags = range(-50, 51)
        xc = [np.dot(a[100:-100], b[100 + k : len(b) - 100 + k]) for k in lags]
        assert list(lags)[int(np.argmax(xc))] == 0
        # the codec changes the waveform (a perceptual codec: noise-like content is not kept sample
        # for sample), but keeps its spectrum below 4 kHz within 1.5 dB and its level within 0.5 dB
        assert float((y - x).norm() / x.norm()) > 1e-3
        f, px = scipy.signal.welch(x.double().numpy(), SR, nperseg=4096)
        _, py = scipy.signal.welch(y.double().numpy(), SR, nperseg=4096)
        band = (f > 100) & (f < 4000)
        ratio_db = 10 * np.log10(py[:, band].sum(-1) / px[:, band].sum(-1))
        fine_db = 10 * np.log10(py[:, band] / px[:, band])
        assert np.abs(ratio_db).max() < 0.5 and np.abs(np.median(fine_db, -1)).max() < 1.5, (
            ratio_db,
            np.median(fine_db, -1),
        )
    with pytest.raises(ValueError, match="silent"):
        mp3_roundtrip(torch.zeros(2, SR), SR, 64)


def test_a_bad_codec_is_an_eval_error(tmp_path):
    (tmp_path / "protocol.json").write_text('{"tracks": [{"track": "a", "vocal": "a.wav", "wet": "a.wav"}]}')
    (tmp_path / "a.wav").write_bytes(b"")
    with pytest.raises(EvalError, match="mp3:KBPS"):
        load_corpus(tmp_path, reference_codec="flac")


def test_mp3_chunks_codes_the_chunks_as_one_stream():
    """The evaluation's lossy reference: the chunks laid end to end, coded once, cut again."""
    from vocalfx.chunks import join_chunks, split_chunks
    from vocalfx.codec import mp3_chunks

    x = _voice_like(4.0)
    chunks = split_chunks(x, 2)
    coded = mp3_chunks(chunks, SR, 64)
    assert coded.shape == chunks.shape
    assert torch.equal(join_chunks(coded), mp3_roundtrip(x, SR, 64))
