"""Evaluation corpora and the style-transfer protocol's data preparation.

A corpus is a directory with a ``protocol.json``::

    {
      "chunk_seconds": 11,                      # optional, default 11 (DiffVox)
      "lufs": -18.0,                            # optional, default -18 (DiffVox)
      "preset_collection": "presets.json",      # where integer track presets point
      "tracks": [
        {"track": "sing_01", "vocal": "vocals/sing_01.flac", "preset": 0},
        {"track": "take_2", "vocal": "dry/take_2.wav", "preset": "presets/take_2.json"},
        {"track": "take_3", "vocal": "dry/take_3.wav", "wet": "wet/take_3.wav"}
      ]
    }

``preset`` is the track's true (target) preset: a row index into ``preset_collection`` (a vocalfx
collection JSON or a DiffVox preset folder), or a preset/collection file. ``preset_index`` and
``medleydb_preset`` (the name ``../shared/corpus/dev`` uses) are accepted for an index.
Relative paths are looked up in the corpus directory first, then in its parent directories (so
``"diffvox-presets/medleydb"`` in ``shared/corpus/dev`` finds ``shared/diffvox-presets/medleydb``).
A track may give its own ``wet`` recording instead of (or as well as) a preset; without a true
preset, PMSE and the methods that need the true preset (oracle, nn-param) are not available for it.

:func:`prepare_track` applies the protocol (DiffVox, WASPAA 2025): the dry vocal is
loudness-normalised to ``lufs``; the wet track is the dry (at that level) rendered with the true
preset, not renormalised; both are cut into ``chunk_seconds`` chunks (the remainder is dropped);
chunks whose wet signal is inactive (median of the 50 ms running peak of the channel mean at or
below -60 dBFS, DiffVox's rule, :func:`vocalfx.chunks.active_mask`) are dropped; of the remaining
chunks, the wet ones at even positions are the *reference* and the dry ones at odd positions the
*input*.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..chunks import CHUNK_SECONDS, TARGET_LUFS, active_mask, cut_chunks
from ..errors import VocalfxError
from ..params import NUM_PARAMS, SAMPLE_RATE
from ..preset import Preset, PresetError, import_diffvox_collection, load_collection

__all__ = [
    "EvalError",
    "TrackSpec",
    "Corpus",
    "TrackData",
    "load_corpus",
    "load_presets",
    "prepare_track",
    "render_vector",
    "check_vector",
]

PathLike = Union[str, Path]

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


class EvalError(VocalfxError):
    """A corpus, a method list or an output folder the evaluation cannot use; the message says why."""


@dataclass(frozen=True)
class TrackSpec:
    """One track of a corpus, before any audio is read.

    Attributes:
        name: track id (also a file-name stem in the output folder).
        dry: the dry vocal file.
        preset: the true preset, or ``None`` when only a wet recording is given.
        wet: a wet recording to use instead of rendering ``preset`` (``None``: render it).
    """

    name: str
    dry: Path
    preset: Optional[Preset] = None
    wet: Optional[Path] = None

    def key(self) -> Dict[str, Any]:
        """What identifies the track's data (stored in each result cell, compared on resume)."""
        import hashlib

        digest = None
        if self.preset is not None:
            digest = hashlib.sha256(np.ascontiguousarray(self.preset.raw, dtype=np.float64).tobytes()).hexdigest()[:16]
        return {
            "dry": str(Path(self.dry).resolve()),
            "wet": None if self.wet is None else str(Path(self.wet).resolve()),
            "preset_sha": digest,
        }


@dataclass
class Corpus:
    """A corpus read by :func:`load_corpus`.

    Attributes:
        root: the corpus directory.
        tracks: the tracks, in file order.
        chunk_seconds: chunk length (s).
        lufs: loudness the dry vocals are normalised to (LUFS).
        presets_source: where the integer presets came from (path), or ``""``.
        description: the protocol's free-text description, if any.
        reference_codec: ``"mp3:KBPS"``: the reference chunks go through that codec and back
            (:func:`vocalfx.codec.mp3_chunks`, LAME in libsndfile); ``None``: lossless.
    """

    root: Path
    tracks: List[TrackSpec]
    chunk_seconds: float = CHUNK_SECONDS
    lufs: float = TARGET_LUFS
    presets_source: str = ""
    description: str = ""
    reference_codec: Optional[str] = None

    def protocol(self) -> Dict[str, Any]:
        """The run-wide settings a result depends on (stored with the results, compared on resume)."""
        out = {"chunk_seconds": float(self.chunk_seconds), "lufs": float(self.lufs), "sample_rate": SAMPLE_RATE}
        if self.reference_codec:  # absent in runs made before the option existed
            out["reference_codec"] = self.reference_codec
            out["reference_coder"] = "libsndfile"  # runs that coded with pedalboard's LAME are not resumed
        return out


def _find(root: Path, rel: str, what: str) -> Path:
    p = Path(rel).expanduser()
    if p.is_absolute():
        if p.exists():
            return p
        raise EvalError(f"{what} {p}: no such file or directory")
    for base in [root, *root.resolve().parents]:
        if (base / p).exists():
            return base / p
    raise EvalError(f"{what} {rel!r}: not found in {root} or any of its parent directories")


def load_presets(path: PathLike, *, use_train_index: bool = False) -> List[Preset]:
    """Presets from a vocalfx collection/preset JSON or a DiffVox preset folder.

    Args:
        path: a ``.json`` collection or preset file, or a DiffVox folder (``raw_params.npy``,
            ``feature_mask.npy``).
        use_train_index: for a DiffVox folder with ``train_index.npy``, keep only those rows (the
            presets DiffVox's prior and nearest-neighbour baselines use).

    Raises:
        EvalError: the path is missing or not a preset collection.
    """
    p = Path(path)
    try:
        if p.is_dir():
            indices = None
            ti = p / "train_index.npy"
            if use_train_index and ti.is_file():
                indices = [int(i) for i in np.load(ti, allow_pickle=False)]
            return import_diffvox_collection(p, indices=indices)
        if p.is_file():
            return load_collection(p)
    except PresetError as e:
        raise EvalError(str(e)) from None
    raise EvalError(f"{path}: no such preset collection (a collection JSON or a DiffVox preset folder)")


def load_corpus(
    directory: PathLike,
    *,
    presets: Optional[PathLike] = None,
    chunk_seconds: Optional[float] = None,
    tracks: Optional[Sequence[str]] = None,
    reference_codec: Optional[str] = None,
) -> Corpus:
    """Read a corpus directory's ``protocol.json`` (format in the module docstring).

    Args:
        directory: the corpus directory.
        presets: a collection to use for integer track presets instead of the protocol's
            ``preset_collection``.
        chunk_seconds: override the protocol's chunk length (s), e.g. for short test corpora.
        tracks: keep only these track names (in this order).
        reference_codec: e.g. ``"mp3:64"``: make the reference chunks lossy (see :class:`Corpus`).

    Raises:
        EvalError: a missing or malformed protocol, file or preset.
    """
    root = Path(directory)
    proto_path = root / "protocol.json"
    if not proto_path.is_file():
        raise EvalError(f"{root}: not an evaluation corpus (no protocol.json)")
    try:
        proto = json.loads(proto_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EvalError(f"{proto_path}: not valid JSON ({e})") from None
    if not isinstance(proto, dict) or not isinstance(proto.get("tracks"), list) or not proto["tracks"]:
        raise EvalError(f'{proto_path}: expected an object with a non-empty "tracks" list')

    sr = proto.get("sample_rate", SAMPLE_RATE)
    if sr != SAMPLE_RATE:
        raise EvalError(f"{proto_path}: sample_rate {sr} Hz; the protocol runs at {SAMPLE_RATE} Hz")
    cs = float(chunk_seconds if chunk_seconds is not None else proto.get("chunk_seconds", CHUNK_SECONDS))
    if not (math.isfinite(cs) and cs > 0.1):
        raise EvalError(f"chunk_seconds must be a number above 0.1 s, got {cs}")
    lufs = float(proto.get("lufs", TARGET_LUFS))
    if not (math.isfinite(lufs) and -70 < lufs < 0):
        raise EvalError(f"{proto_path}: lufs must lie in (-70, 0), got {lufs}")

    collection: Optional[List[Preset]] = None
    collection_path = ""
    coll_spec = str(presets) if presets is not None else proto.get("preset_collection")
    if coll_spec:
        cp = Path(coll_spec) if presets is not None else _find(root, str(coll_spec), "preset_collection")
        collection = load_presets(cp)
        collection_path = str(cp)

    specs: List[TrackSpec] = []
    seen = set()
    for i, t in enumerate(proto["tracks"]):
        where = f"{proto_path} track #{i}"
        if not isinstance(t, dict):
            raise EvalError(f"{where}: expected an object")
        name = str(t.get("track", t.get("name", "")))
        if not _NAME_RE.match(name):
            raise EvalError(f"{where}: track name {name!r} must be letters, digits, '.', '_', '+' or '-'")
        if name in seen:
            raise EvalError(f"{where}: duplicate track name {name!r}")
        seen.add(name)
        if "vocal" not in t:
            raise EvalError(f'{where} ({name}): no "vocal" (the dry vocal file)')
        dry = _find(root, str(t["vocal"]), f"{name}: vocal")
        wet = _find(root, str(t["wet"]), f"{name}: wet") if t.get("wet") else None
        preset = _track_preset(t, root, collection, collection_path, f"{where} ({name})")
        if preset is None and wet is None:
            raise EvalError(f'{where} ({name}): neither a "preset" nor a "wet" file; one is needed')
        specs.append(TrackSpec(name=name, dry=dry, preset=preset, wet=wet))

    if tracks is not None:
        by_name = {s.name: s for s in specs}
        missing = [n for n in tracks if n not in by_name]
        if missing:
            raise EvalError(f"{root}: no track named {', '.join(map(repr, missing))} (tracks: {', '.join(by_name)})")
        specs = [by_name[n] for n in tracks]
    from ..codec import parse_codec

    try:
        codec = parse_codec(reference_codec)
    except ValueError as e:
        raise EvalError(str(e)) from None
    return Corpus(
        root=root.resolve(),
        tracks=specs,
        chunk_seconds=cs,
        lufs=lufs,
        presets_source=str(Path(collection_path).resolve()) if collection_path else "",
        description=str(proto.get("description", "")),
        reference_codec=None if codec is None else f"{codec[0]}:{codec[1]}",
    )


def _track_preset(t: Dict[str, Any], root: Path, collection, collection_path: str, where: str) -> Optional[Preset]:
    keys = [k for k in ("preset", "preset_index", "medleydb_preset") if k in t]
    if len(keys) > 1:
        raise EvalError(f"{where}: give one of preset, preset_index, medleydb_preset, not {', '.join(keys)}")
    if not keys:
        return None
    value = t[keys[0]]
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise EvalError(f"{where}: {keys[0]} must be a row index or a preset file, got {value!r}")
    if isinstance(value, int):
        if collection is None:
            raise EvalError(f"{where}: preset index {value} but the protocol names no preset_collection")
        if not 0 <= value < len(collection):
            raise EvalError(
                f"{where}: preset index {value} is out of range for {collection_path} ({len(collection)} presets)"
            )
        return collection[value]
    path = _find(root, value, "preset")
    presets = load_presets(path)
    if len(presets) != 1:
        raise EvalError(f"{where}: {path} holds {len(presets)} presets; give a single preset or an index")
    return presets[0]


# ----------------------------------------------------------------------------------------------
# Preparation


@dataclass
class MatchingChunks:
    """A track's chunks as a matching method is given them (:meth:`TrackData.matching_chunks`).

    Attributes:
        input: ``(n_in, 1, chunk)`` at -18 LUFS together; ``reference``: ``(n_ref, 2, chunk)``.
        input_gain_db, reference_gain_db: the gains applied to them (dB).
        reference_lufs: the reference chunks' loudness as the track holds them (LUFS).
    """

    input: torch.Tensor
    reference: torch.Tensor
    input_gain_db: float
    reference_gain_db: float
    reference_lufs: float


@dataclass
class TrackData:
    """A track prepared for the protocol (all audio float32 at 44.1 kHz, on the CPU).

    Attributes:
        name: track id.
        dry: the whole dry vocal at the protocol loudness, ``(1, time)``.
        wet: the whole wet track (render of ``dry`` with the true preset, or the given wet
            recording), ``(2, time)``.
        reference: wet chunks at even positions among the active chunks, ``(n_ref, 2, chunk)``.
        input: dry chunks at odd positions among the active chunks, ``(n_in, 1, chunk)``.
        true_vector: the true preset's raw ``(130,)`` float64 vector, or ``None``.
        chunk_seconds: chunk length (s).
        dry_gain_db: gain that brought the dry vocal to the protocol loudness (dB).
        n_chunks, n_active: whole chunks in the track, and how many are active.
        sample_rate: 44100.
    """

    name: str
    dry: torch.Tensor
    wet: torch.Tensor
    reference: torch.Tensor
    input: torch.Tensor
    true_vector: Optional[torch.Tensor]
    chunk_seconds: float
    dry_gain_db: float
    n_chunks: int
    n_active: int
    sample_rate: int = SAMPLE_RATE
    notes: List[str] = field(default_factory=list)

    def matching_chunks(self, *, normalize_reference: bool = False) -> "MatchingChunks":
        """The chunks a matching method is given, at the levels the match compares them at.

        The input chunks, taken together, are brought to -18 LUFS with one gain: they are cut
        from the -18 LUFS dry, but the odd chunks alone are a little louder or quieter than the
        whole track (the gain is recorded). The reference chunks keep the level the true preset
        gives a -18 LUFS input unless ``normalize_reference`` (then, together, to -18 LUFS, as
        :func:`vocalfx.match` treats a reference by default).

        Raises:
            EvalError: silent chunks (no loudness to measure).
        """
        from ..chunks import join_chunks, split_chunks
        from ..io import integrated_loudness, loudness_normalize

        dry, ref = join_chunks(self.input), join_chunks(self.reference)
        try:
            dry, dry_gain_db = loudness_normalize(dry, self.sample_rate, TARGET_LUFS)
            ref_lufs = integrated_loudness(ref, self.sample_rate)
            if not math.isfinite(ref_lufs):
                raise ValueError("silent (no 400 ms block above the -70 LUFS gate)")
            ref_gain_db = 0.0
            if normalize_reference:
                ref, ref_gain_db = loudness_normalize(ref, self.sample_rate, TARGET_LUFS)
        except ValueError as e:
            raise EvalError(f"{self.name}: input or reference chunks: {e}") from None
        return MatchingChunks(
            split_chunks(dry, self.input.shape[0]), split_chunks(ref, self.reference.shape[0]), dry_gain_db,
            ref_gain_db, ref_lufs,
        )  # fmt: skip

    def info(self) -> Dict[str, Any]:
        """Per-track facts stored with every result cell."""
        return {
            "seconds": self.dry.shape[-1] / self.sample_rate,
            "dry_gain_db": self.dry_gain_db,
            "n_chunks": self.n_chunks,
            "n_active": self.n_active,
            "n_reference": int(self.reference.shape[0]),
            "n_input": int(self.input.shape[0]),
        }


def render_vector(dry: torch.Tensor, vector: torch.Tensor) -> torch.Tensor:
    """The dry ``(1, time)`` rendered with a raw vector at 44.1 kHz in float32, ``(2, time)``."""
    from ..render import cached_chain

    with torch.no_grad():
        return cached_chain(float(SAMPLE_RATE))(dry.unsqueeze(0), params=vector.to(torch.float32).unsqueeze(0))[0]


def prepare_track(
    spec: TrackSpec,
    *,
    chunk_seconds: float = CHUNK_SECONDS,
    lufs: float = TARGET_LUFS,
    reference_codec: Optional[str] = None,
) -> TrackData:
    """Load a track and apply the protocol (module docstring): dry at ``lufs``, wet, chunks.

    With ``reference_codec`` (e.g. ``"mp3:64"``) the reference chunks, laid end to end, go
    through that codec and back (:func:`vocalfx.codec.mp3_chunks`); the input
    and the wet track that scores a method stay lossless.

    Raises:
        EvalError: unreadable or silent audio, a track shorter than two chunks, fewer than two
            active chunks, or a wet file that is not stereo.
    """
    from ..io import AudioError, load_audio, loudness_normalize

    try:
        dry = load_audio(spec.dry, sample_rate=SAMPLE_RATE, mono=True)
        dry, gain_db = loudness_normalize(dry, SAMPLE_RATE, lufs)
    except (AudioError, ValueError) as e:
        raise EvalError(f"{spec.name}: {spec.dry}: {e}") from None
    notes: List[str] = []
    true_vector = spec.preset.vector if spec.preset is not None else None
    if spec.wet is not None:
        try:
            wet = load_audio(spec.wet, sample_rate=SAMPLE_RATE, mono=False)
        except AudioError as e:
            raise EvalError(f"{spec.name}: {e}") from None
        if wet.shape[0] != 2:
            raise EvalError(f"{spec.name}: {spec.wet}: the wet track must be stereo, it has {wet.shape[0]} channel(s)")
        n = min(dry.shape[-1], wet.shape[-1])
        if n != max(dry.shape[-1], wet.shape[-1]):
            notes.append(f"dry and wet lengths differ; both cut to {n} samples")
        dry, wet = dry[:, :n].contiguous(), wet[:, :n].contiguous()
    else:
        wet = render_vector(dry, true_vector)
        if not torch.isfinite(wet).all():
            raise EvalError(f"{spec.name}: the true preset renders non-finite audio")

    chunk = int(round(chunk_seconds * SAMPLE_RATE))
    n_chunks = dry.shape[-1] // chunk
    if n_chunks < 2:
        raise EvalError(
            f"{spec.name}: {dry.shape[-1] / SAMPLE_RATE:.2f} s long; the protocol needs at least two "
            f"{chunk_seconds:g} s chunks"
        )
    dry_chunks = cut_chunks(dry, chunk, cover_tail=False)
    wet_chunks = cut_chunks(wet, chunk, cover_tail=False)
    active = active_mask(wet_chunks, SAMPLE_RATE)
    n_active = int(active.sum())
    if n_active < 2:
        raise EvalError(
            f"{spec.name}: {n_active} of {n_chunks} chunks are active (wet above -60 dBFS for most of the chunk); "
            "the protocol needs two (one reference, one input)"
        )
    reference = wet_chunks[active][0::2].contiguous()
    inp = dry_chunks[active][1::2].contiguous()
    if reference_codec:
        from ..codec import mp3_chunks, parse_codec

        try:
            reference = mp3_chunks(reference, SAMPLE_RATE, parse_codec(reference_codec)[1])
        except ValueError as e:
            raise EvalError(f"{spec.name}: reference codec: {e}") from None
        notes.append(f"reference chunks through {reference_codec} and back")
    return TrackData(
        name=spec.name,
        dry=dry,
        wet=wet,
        reference=reference,
        input=inp,
        true_vector=None if true_vector is None else true_vector.clone(),
        chunk_seconds=chunk / SAMPLE_RATE,
        dry_gain_db=float(gain_db),
        n_chunks=n_chunks,
        n_active=n_active,
        notes=notes,
    )


def check_vector(vector: Any, where: str) -> torch.Tensor:
    """A method's prediction as a finite float64 ``(130,)`` tensor (raises :class:`EvalError`)."""
    if isinstance(vector, Preset):
        vector = vector.vector
    v = torch.as_tensor(
        np.asarray(vector.detach().cpu() if isinstance(vector, torch.Tensor) else vector, dtype=np.float64)
    ).reshape(-1)
    if v.shape != (NUM_PARAMS,):
        raise EvalError(f"{where}: predicted {tuple(v.shape)} values, expected {NUM_PARAMS}")
    if not torch.isfinite(v).all():
        raise EvalError(f"{where}: the prediction has non-finite values")
    return v
