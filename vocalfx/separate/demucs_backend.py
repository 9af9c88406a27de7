"""Demucs v4 backend: the pretrained Demucs models through the ``demucs`` package, offline only.

Needs the ``separate`` extra (``pip install 'vocalfx[separate]'``, i.e. ``demucs>=4.1``). Weights
are never downloaded. A model name (``htdemucs``, ``htdemucs_ft``, ``mdx_extra``, ... or a single
model signature such as ``955717e8``) is looked up, in this order, in:

1. ``model_dir`` (``--model-dir`` on the command line), if given;
2. the directory in the ``VOCALFX_DEMUCS_DIR`` environment variable, if set;
3. the torch hub checkpoint cache, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/
   checkpoints``, by default ``~/.cache/torch/hub/checkpoints``): where ``demucs`` up to 4.0 put
   the files it downloaded;
4. the Hugging Face hub cache (``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``), folder ``models--adefossez--<Repo>/snapshots/*``: where
   ``demucs`` 4.1 puts them.

A model is a *bag* of one or more sub-models named by signature. The bag is read from
``<name>.yaml`` in the directory (the file ``demucs`` ships in ``demucs/remote/`` is used when the
directory has none), or ``name`` is itself a signature. Each signature is a file in the same
directory: ``<sig>-<sha256 prefix>.th`` (the checksum is verified, as ``demucs`` does),
``<sig>.th``, or ``<sig>.safetensors`` (the Hugging Face export). ``.th`` files are the pickled
packages ``{"klass", "args", "kwargs", "state"}`` that ``demucs.states.load_model`` reads; they
are loaded with ``torch.load(weights_only=False)``, so only put files there that you trust.

Separation follows ``demucs.api``: the mix is normalised by the mean and standard deviation of its
mono downmix, ``demucs.apply.apply_model`` runs (with its own 25 %-overlap segments inside each of
our chunks), and the stems are scaled back. ``vocals`` is the ``vocals`` stem; the accompaniment
is the sum of the other stems.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch

from .base import MissingDependencyError, ModelNotFoundError, SeparationError, Separator

__all__ = ["DemucsSeparator", "ENV_VAR", "DEFAULT_MODEL", "search_dirs", "find_model_files", "load_demucs_model"]

#: Environment variable naming a directory of Demucs model files.
ENV_VAR = "VOCALFX_DEMUCS_DIR"
#: Model used when none is named (Demucs v4 hybrid transformer, 4 stems).
DEFAULT_MODEL = "htdemucs"
_HF_NAMESPACE = "adefossez"


def _import_demucs():
    try:
        import demucs.apply  # noqa: F401
        import demucs.pretrained  # noqa: F401
        import demucs.repo  # noqa: F401
        import demucs.states  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f"the demucs backend needs the 'demucs' package (>= 4.1), which could not be imported ({e}); "
            "install the extra: pip install 'vocalfx[separate]'"
        ) from e
    return demucs


def _hf_repo_name(name: str) -> str:
    """Hugging Face repository of a named model (``htdemucs_ft`` -> ``HTDemucs-ft``), as demucs 4.1."""
    if name == "htdemucs":
        return "HTDemucs"
    if name.startswith("htdemucs_"):
        return "HTDemucs-" + name[len("htdemucs_") :]
    return "Demucs-" + name


def _hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def search_dirs(name: str = DEFAULT_MODEL, model_dir: Optional[os.PathLike] = None) -> List[Tuple[str, Path]]:
    """The directories searched for model ``name``, in order, each with a label.

    Directories that do not exist are included (so error messages can name them).
    """
    dirs: List[Tuple[str, Path]] = []
    if model_dir is not None:
        dirs.append(("model_dir", Path(model_dir).expanduser()))
    if os.environ.get(ENV_VAR):
        dirs.append((ENV_VAR, Path(os.environ[ENV_VAR]).expanduser()))
    dirs.append(("torch hub cache", Path(torch.hub.get_dir()) / "checkpoints"))
    hf = _hf_cache_dir() / f"models--{_HF_NAMESPACE}--{_hf_repo_name(name)}" / "snapshots"
    snapshots = sorted(hf.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True) if hf.is_dir() else []
    if snapshots:
        dirs.extend(("Hugging Face cache", s) for s in snapshots)
    else:
        dirs.append(("Hugging Face cache", hf / "<revision>"))
    return dirs


def _bag_signatures(name: str, directory: Path) -> Tuple[List[str], Optional[dict]]:
    """Signatures of the bag ``name`` (its yaml in ``directory`` or shipped by demucs), or [name]."""
    import yaml

    candidates = [directory / f"{name}.yaml"]
    demucs = _import_demucs()
    candidates.append(Path(demucs.pretrained.REMOTE_ROOT) / f"{name}.yaml")
    for path in candidates:
        if path.is_file():
            with open(path) as f:
                bag = yaml.safe_load(f)
            return [str(s) for s in bag["models"]], bag
    return [name], None


def _signature_file(sig: str, directory: Path) -> Optional[Path]:
    if not directory.is_dir():
        return None
    exact = [directory / f"{sig}.th", directory / f"{sig}.safetensors"]
    for p in exact:
        if p.is_file():
            return p
    hashed = sorted(p for p in directory.glob(f"{sig}-*.th") if p.is_file())
    return hashed[0] if hashed else None


def find_model_files(
    name: str = DEFAULT_MODEL, model_dir: Optional[os.PathLike] = None
) -> Tuple[List[Path], Optional[dict]]:
    """The files of model ``name``: the first searched directory holding all of its signatures.

    Returns:
        ``(files, bag)``: one file per sub-model, and the bag description (``models``,
        ``weights``, ``segment``) or ``None`` for a single signature.

    Raises:
        ModelNotFoundError: no directory has every file; the message lists where to put which.
        MissingDependencyError: ``demucs`` is not installed.
    """
    dirs = search_dirs(name, model_dir)
    for _label, d in dirs:
        sigs, bag = _bag_signatures(name, d)
        files = [_signature_file(s, d) for s in sigs]
        if all(f is not None for f in files):
            return [f for f in files if f is not None], bag
    sigs, _ = _bag_signatures(name, dirs[0][1])
    urls = _download_urls(sigs)
    where = "; ".join(f"{label}: {d}" for label, d in dirs)
    need = ", ".join(urls.get(s, f"{s}.th") for s in sigs)
    raise ModelNotFoundError(
        f"Demucs model {name!r} not found (vocalfx never downloads weights). Looked in: {where}. "
        f"Put the file(s) {need} (with the {name}.yaml bag file for a multi-model bag) into a directory and pass "
        f"it as model_dir=DIR or set {ENV_VAR}=DIR; running `demucs` once with network access "
        "also fills the caches searched above"
    )


def _download_urls(sigs: List[str]) -> Dict[str, str]:
    """The public URL of each signature's ``.th`` file, from the list demucs ships."""
    demucs = _import_demucs()
    listing = Path(demucs.pretrained.REMOTE_ROOT) / "files.txt"
    urls: Dict[str, str] = {}
    if not listing.is_file():  # pragma: no cover - demucs without its file list
        return urls
    root = ""
    for line in listing.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            root = line.split(":", 1)[1].strip()
            continue
        urls[line.split("-", 1)[0]] = demucs.pretrained.ROOT_URL + root + line
    return {s: urls[s] for s in sigs if s in urls}


def load_demucs_model(name: str = DEFAULT_MODEL, model_dir: Optional["os.PathLike[str]"] = None) -> Any:
    """Load a Demucs model (a ``demucs.apply.BagOfModels``) from local files only.

    Raises:
        ModelNotFoundError: the files are not in any searched directory.
        SeparationError: a file fails its checksum or cannot be loaded.
        MissingDependencyError: ``demucs`` (or ``safetensors`` for ``.safetensors`` files) is missing.
    """
    demucs = _import_demucs()
    files, bag = find_model_files(name, model_dir)
    models = []
    for f in files:
        try:
            if f.suffix == ".safetensors":
                try:
                    from demucs.hf import load_safetensors_model
                except ImportError as e:
                    raise MissingDependencyError(
                        f"{f}: reading .safetensors needs the 'safetensors' package ({e}); "
                        "install the extra: pip install 'vocalfx[separate]'"
                    ) from e
                models.append(load_safetensors_model(f))
            else:
                sig, _, checksum = f.stem.partition("-")
                if checksum:
                    demucs.repo.check_checksum(f, checksum)
                models.append(demucs.states.load_model(f))
        except demucs.repo.ModelLoadingError as e:
            raise SeparationError(f"{f}: {e} (a corrupt or partial download? replace the file)") from None
        except (MissingDependencyError, SeparationError):
            raise
        except Exception as e:
            raise SeparationError(f"{f}: cannot load as a Demucs model ({type(e).__name__}: {e})") from None
    weights = bag.get("weights") if bag else None
    segment = bag.get("segment") if bag else None
    model = demucs.apply.BagOfModels(models, weights, segment)
    model.eval()
    return model


class DemucsSeparator(Separator):
    """Demucs v4 separation (vocals vs the sum of the other stems), from local weights only.

    Args:
        model: model name or signature (default ``"htdemucs"``); see the module docstring for
            where its files are looked for.
        model_dir: a directory searched first (default: none).
        shifts: random time shifts averaged (demucs' "shift trick"; 0 disables). Default 1, as
            the demucs command line. The shifts are drawn from ``seed``, so runs are repeatable.
        overlap: overlap of demucs' internal segments (fraction). Default 0.25.
        segment_seconds: demucs' internal segment length (s); default the model's own.
        seed: seed of the shifts. Default 0.
        chunk_seconds: audio handed to demucs at once (s). Default 60.
        overlap_seconds: cross-fade between our chunks (s). Default 4.
    """

    name = "demucs"
    channels = 2

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        model_dir: Optional[os.PathLike] = None,
        shifts: int = 1,
        overlap: float = 0.25,
        segment_seconds: Optional[float] = None,
        seed: int = 0,
        chunk_seconds: float = 60.0,
        overlap_seconds: float = 4.0,
    ) -> None:
        if int(shifts) < 0:
            raise ValueError(f"shifts must be >= 0, got {shifts!r}")
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1) (a fraction of a segment), got {overlap!r}")
        self.model_name = str(model)
        self.model_dir = model_dir
        self.shifts = int(shifts)
        self.overlap = float(overlap)
        self.segment_seconds = segment_seconds
        self.seed = int(seed)
        self.chunk_seconds = float(chunk_seconds)
        self.overlap_seconds = float(overlap_seconds)
        self._model = None
        self.model_files: List[Path] = []
        # the rate is the model's: known once it is loaded, which happens here so that a missing
        # model fails before any audio is read
        self._load()

    def _load(self) -> None:
        files, _ = find_model_files(self.model_name, self.model_dir)
        self._model = load_demucs_model(self.model_name, self.model_dir)
        self.model_files = files
        self.sample_rate = int(self._model.samplerate)
        if "vocals" not in self._model.sources:
            raise SeparationError(
                f"Demucs model {self.model_name!r} has no 'vocals' stem (stems: {self._model.sources})"
            )
        if int(self._model.audio_channels) != 2:
            raise SeparationError(
                f"Demucs model {self.model_name!r} takes {self._model.audio_channels} channels, expected 2"
            )

    def describe(self) -> str:
        files = ", ".join(str(f) for f in self.model_files)
        return f"demucs ({self.model_name}, shifts {self.shifts}; weights {files})"

    def separate_chunk(self, mix: torch.Tensor, sample_rate: int) -> Tuple[torch.Tensor, torch.Tensor]:
        from demucs.apply import apply_model

        model = self._model
        ref = mix.mean(0)
        mean, std = ref.mean(), ref.std()
        scale = std if float(std) > 1e-8 else torch.ones(())
        x = (mix - mean) / scale
        state = random.getstate()
        random.seed(self.seed)
        try:
            with torch.no_grad():
                stems = apply_model(
                    model,
                    x[None],
                    shifts=self.shifts,
                    split=True,
                    overlap=self.overlap,
                    progress=False,
                    device="cpu",
                    segment=self.segment_seconds,
                )[0]
        finally:
            random.setstate(state)
        stems = stems * scale + mean / len(model.sources)
        v = model.sources.index("vocals")
        vocals = stems[v]
        accomp = stems.sum(0) - vocals
        return vocals.contiguous(), accomp.contiguous()
