"""Audio encoders: stereo audio -> one L2-normalised embedding per mid/side channel.

The encoders are the "audio -> style" maps that inference-time optimisation (ITO) compares a
prediction and a reference with. Each is an :class:`~torch.nn.Module` built for the sample rate
of the audio it will be given; it resamples to the rate its features are defined at, converts
left/right to mid/side, and returns ``{"mid": (batch, D), "side": (batch, D)}`` with every row of
unit L2 norm (the reference's ``get_feature_embeds`` / ``get_param_embeds`` do the same).

Built-in encoders (names for :func:`get_encoder`):

* ``"mfcc"`` -- :class:`MFCCEncoder`, 100 values per channel;
* ``"mir"`` -- :class:`MIREncoder`, 24 values per channel;
* ``"afx-rep"`` -- :class:`~vocalfx.encoders.afx_rep.AFxRepEncoder`, 512 values per channel (ST-ITO's
  AFx-Rep; needs the published checkpoint as a local file: ``checkpoint=PATH`` or
  ``$VOCALFX_AFX_REP``, see ``docs/guide/encoders.md``);
* ``"fx"`` -- :class:`~vocalfx.encoders.trained.FxEncoder`, trained here, with a preset head;
* names joined by ``+`` (``"fx+mfcc"``) -- a :class:`CombinedEncoder`: each part's embeddings,
  one likelihood per part in ITO.

Adding an encoder is one file: subclass :class:`StereoEncoder` (from :mod:`vocalfx.encoders.base`)
in ``vocalfx/encoders/<name>.py``, decorate the class with ``@register_encoder("<name>")`` and
import the module in this file. An encoder whose features are not a per-channel function of mid/side (AFx-Rep in
``afx_rep.py``: a 48 kHz CNN with separate mid and side heads) sets ``model_sample_rate`` and
overrides :meth:`StereoEncoder.embed_mid_side` instead of :meth:`StereoEncoder.channel_features`.

Example:
    >>> import torch
    >>> from vocalfx.encoders import get_encoder
    >>> enc = get_encoder("mfcc", sample_rate=44100)
    >>> emb = enc(torch.randn(1, 2, 44100))
    >>> emb["mid"].shape, emb["side"].shape
    (torch.Size([1, 100]), torch.Size([1, 100]))
"""

from .afx_rep import AFxRepEncoder  # noqa: E402
from .base import (
    CombinedEncoder,
    StereoEncoder,
    available_encoders,
    check_stereo,
    get_encoder,
    mid_side,
    register_encoder,
)

# The encoder modules register themselves with the registry in .base when imported.
from .features import MFCCEncoder, MIREncoder  # noqa: E402
from .trained import FxEncoder  # noqa: E402

__all__ = [
    "StereoEncoder",
    "CombinedEncoder",
    "MFCCEncoder",
    "MIREncoder",
    "AFxRepEncoder",
    "FxEncoder",
    "check_stereo",
    "mid_side",
    "register_encoder",
    "get_encoder",
    "available_encoders",
]
