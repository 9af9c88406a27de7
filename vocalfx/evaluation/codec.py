"""Lossy references for the evaluation: the reference chunks through a codec and back.

``vocalfx eval --reference-codec mp3:64`` asks how a method fares when the reference is a lossy
file, as a producer's reference song usually is. Only the reference chunks go through the codec;
the input chunks and the wet track that scores the result stay lossless. The codec is LAME,
through pedalboard (an optional dependency: ``pip install pedalboard``, part of the ``test`` and
``compare`` extras).

A round trip, :func:`lossy_roundtrip`:

1. the audio is scaled by one exact gain to a -1 dBFS peak, so that the codec cannot clip, and
   scaled back after decoding (the level is the input's);
2. it is encoded as MP3 at the given bit rate and decoded again;
3. the decoder's output starts late by the encoder delay plus padding (about 1,100 samples for
   LAME); the lag that maximises the cross-correlation with the input, searched over the first
   :data:`MAX_LAG` samples, is cut off, and the result has the input's length (zeros at the end if
   the decoder returned fewer samples).
"""

from __future__ import annotations

import io
import re
from typing import Optional, Tuple

import numpy as np
import torch

from ..matching.lossy import MAX_LAG, align_decoded

__all__ = ["MAX_LAG", "parse_codec", "lossy_roundtrip"]

_CODEC = re.compile(r"^mp3:(\d+)$")


def parse_codec(spec: Optional[str]) -> Optional[Tuple[str, int]]:
    """``"mp3:64"`` -> ``("mp3", 64)``; ``None`` or ``""`` -> ``None``.

    Raises:
        ValueError: another codec, or a bit rate outside 8-320 kbps.
    """
    if spec in (None, "", "none"):
        return None
    m = _CODEC.match(str(spec).strip().lower())
    if m is None:
        raise ValueError(f"reference codec {spec!r}: expected mp3:KBPS, e.g. mp3:64")
    kbps = int(m.group(1))
    if not 8 <= kbps <= 320:
        raise ValueError(f"reference codec {spec!r}: the MP3 bit rate must lie in 8-320 kbps")
    return "mp3", kbps


def lossy_roundtrip(audio: torch.Tensor, sample_rate: int, spec: str) -> torch.Tensor:
    """Encode ``audio`` ``(channels, time)`` with the codec ``spec`` and decode it, re-aligned.

    Returns:
        float32 ``(channels, time)``, the same shape as ``audio``.

    Raises:
        ValueError: pedalboard is missing, or the audio is silent.
    """
    codec = parse_codec(spec)
    if codec is None:
        return audio
    _, kbps = codec
    try:
        from pedalboard.io import AudioFile
    except ImportError:
        raise ValueError("a lossy reference codec needs pedalboard: pip install pedalboard") from None
    x = audio.detach().to(torch.float64).cpu().numpy()
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if not peak > 0:
        raise ValueError("a silent reference cannot go through a codec")
    scale = 10 ** (-1 / 20) / peak
    buf = io.BytesIO()
    with AudioFile(buf, "w", sample_rate, x.shape[0], format="mp3", quality=kbps) as f:
        f.write((x * scale).astype(np.float32))
    with AudioFile(io.BytesIO(buf.getvalue())) as f:
        y = f.read(f.frames).astype(np.float64)
    return torch.from_numpy(align_decoded(x, y, MAX_LAG) / scale).to(torch.float32)
