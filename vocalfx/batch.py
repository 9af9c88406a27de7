"""Many matches at once: a list of (dry, reference) pairs or a folder of dry takes to one reference.

Output folder layout::

    OUT/batch.json               the batch's settings and one record per invocation (wall time, engine)
    OUT/items/<name>.json        one finished item: status, settings, inputs, the match report or the error
    OUT/items/<name>.wav         the processed vocal          (items that succeeded)
    OUT/items/<name>.preset.json the matched preset           (items that succeeded)
    OUT/summary.csv              one row per item (rebuilt from the item files)

Every file is written atomically, and an item's ``.json`` last, so an item is finished exactly
when its record exists. Running the same command again skips finished items (checked against the
settings stored in their records: different settings are refused, not mixed) and computes the
rest; ``retry_failed`` recomputes items that ended with an error. A bad item (unreadable, silent,
too short...) is recorded with a one-line reason and the others go on. Items run on an engine of
:mod:`vocalfx.engine` (this process, local worker processes, or Ray), one task per item.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from .errors import VocalfxError

__all__ = [
    "BatchError",
    "BatchItem",
    "BatchResult",
    "ITEM_OPTIONS",
    "AUDIO_SUFFIXES",
    "load_pairs",
    "folder_items",
    "match_batch",
    "run_item",
]

ITEM_FORMAT = "vocalfx-batch-item"
BATCH_FORMAT = "vocalfx-batch"
FORMAT_VERSION = 1

#: Match settings an item may set (PAIRS.csv columns, ``settings=``), with their types; the
#: rest of :func:`vocalfx.match`'s arguments keep their defaults.
ITEM_OPTIONS: Dict[str, Callable[[str], Any]] = {
    "encoder": str,
    "alpha": float,
    "steps": int,
    "lr": float,
    "space": str,
    "init": str,
    "chunk_seconds": float,
    "level": str,
    "groups": str,
    "strength": float,
}
#: Files a folder source picks up, by suffix.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class BatchError(VocalfxError):
    """A problem with the batch itself (its list, its output folder); one item's problem is a row."""


@dataclass
class BatchItem:
    """One match of a batch: ``dry`` to ``reference``, with per-item ``options`` (:data:`ITEM_OPTIONS`)."""

    name: str
    dry: str
    reference: str
    options: Dict[str, Any] = field(default_factory=dict)


@dataclass
class BatchResult:
    """What :func:`match_batch` did: items ``computed`` (of which ``failed``), ``skipped`` (already
    finished), wall ``seconds``, the summary CSV and ``errors`` (one line per failed item)."""

    out: Path
    computed: int
    failed: int
    skipped: int
    seconds: float
    summary: Path
    errors: List[str] = field(default_factory=list)


def _option(name: str, text: str, where: str) -> Any:
    if name not in ITEM_OPTIONS:
        raise BatchError(f"{where}: unknown column {name!r} (columns: dry, reference, name, {', '.join(ITEM_OPTIONS)})")
    try:
        return ITEM_OPTIONS[name](text)
    except ValueError:
        raise BatchError(f"{where}: {name} {text!r} is not a {ITEM_OPTIONS[name].__name__}") from None


def _check_names(items: List[BatchItem], where: str) -> List[BatchItem]:
    seen: Dict[str, int] = {}
    for i, it in enumerate(items):
        if not _NAME.match(it.name):
            raise BatchError(f"{where}: item {i + 1}: name {it.name!r} must be letters, digits, '.', '_' or '-'")
        if it.name in seen:
            raise BatchError(
                f"{where}: items {seen[it.name] + 1} and {i + 1} are both named {it.name!r}; give them a name column"
            )
        seen[it.name] = i
    if not items:
        raise BatchError(f"{where}: no items")
    return items


def load_pairs(path: Any) -> List[BatchItem]:
    """Items from a CSV with columns ``dry``, ``reference`` and optionally ``name`` and any of
    :data:`ITEM_OPTIONS` (an empty cell keeps the batch's setting). Relative paths are relative to
    the CSV's folder; the name defaults to the dry file's stem.

    Raises:
        BatchError: a missing file, missing or unknown columns, a bad value, duplicate names.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise BatchError(f"{path}: cannot read the pairs list ({e.__class__.__name__})") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    header = [h.strip() for h in (csv.reader(io.StringIO(text)).__next__() if text.strip() else [])]
    missing = [c for c in ("dry", "reference") if c not in header]
    if missing:
        raise BatchError(f"{path}: no {' or '.join(missing)} column (header: {', '.join(header) or 'empty'})")
    items = []
    for i, row in enumerate(rows):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        where = f"{path} line {i + 2}"
        if not row["dry"] or not row["reference"]:
            raise BatchError(f"{where}: empty dry or reference")
        dry, ref = (str(p if p.is_absolute() else path.parent / p) for p in (Path(row["dry"]), Path(row["reference"])))
        options = {k: _option(k, v, where) for k, v in row.items() if k not in ("dry", "reference", "name") and v}
        items.append(BatchItem(row.get("name") or Path(dry).stem, dry, ref, options))
    return _check_names(items, str(path))


def folder_items(folder: Any, reference: Any) -> List[BatchItem]:
    """Every audio file of ``folder`` (:data:`AUDIO_SUFFIXES`, not recursive, sorted) to ``reference``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BatchError(f"{folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    ref = Path(reference).resolve()
    items = [BatchItem(p.stem, str(p), str(reference)) for p in files if p.resolve() != ref]
    return _check_names(items, f"{folder} (audio files: {', '.join(AUDIO_SUFFIXES)})")


# ----------------------------------------------------------------------------------------------
# One item (runs in a worker)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _file_key(path: str) -> Dict[str, Any]:
    """What identifies an input file for resuming: its resolved path, size and modification time."""
    p = Path(path)
    try:
        st = p.stat()
        return {"path": str(p.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    except OSError:
        return {"path": str(p.resolve()), "bytes": None, "mtime_ns": None}


def _finite(x: Any) -> Any:
    """JSON-safe: non-finite floats as text."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def run_item(job: Dict[str, Any]) -> Dict[str, Any]:
    """Match one item and write its files; returns its record. Any failure becomes an error record.

    ``job``: ``item`` (a :class:`BatchItem` as a dict), ``settings`` (the match keywords),
    ``out`` (the batch folder), ``key`` (the record's identity for resuming).
    """
    from .io import atomic_write_text, save_audio

    item, settings, out = job["item"], job["settings"], Path(job["out"])
    items = out / "items"
    record: Dict[str, Any] = {"format": ITEM_FORMAT, "version": FORMAT_VERSION, **job["key"], "started": _now()}
    t0 = time.perf_counter()
    try:
        from .matching import match
        from .params import SAMPLE_RATE
        from .preset import Preset

        kw = dict(settings)
        if kw.get("init") not in (None, "mean", "predicted"):
            kw["init"] = Preset.resolve(kw["init"])
        res = match(item["dry"], item["reference"], SAMPLE_RATE, progress=False, name=item["name"], **kw)
        audio, preset = items / f"{item['name']}.wav", items / f"{item['name']}.preset.json"
        inputs = [item["dry"], item["reference"]]
        save_audio(audio, res.audio, res.sample_rate, inputs=inputs)
        res.preset.source = f"vocalfx match-batch {Path(item['dry']).name} -> {Path(item['reference']).name}"
        res.preset.to_json(preset, inputs=inputs)
        record.update(
            status="ok",
            output=audio.name,
            preset=preset.name,
            stats=res.stats.to_dict(),
            history_loss=[h["loss"] for h in res.history],
        )
    except Exception as e:  # noqa: BLE001 - one item's failure, whatever it is, must not stop the batch
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        kind = "" if isinstance(e, VocalfxError) else f"{type(e).__name__}: "
        record.update(status="error", error=f"{kind}{text}" or type(e).__name__)
    record.update(seconds=time.perf_counter() - t0, finished=_now())
    atomic_write_text(items / f"{item['name']}.json", json.dumps(_finite(record), indent=1) + "\n")
    return record


# ----------------------------------------------------------------------------------------------
# The batch (runs here)


def _read(path: Path) -> Optional[Dict[str, Any]]:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return d if isinstance(d, dict) else None


def _norm(x: Any) -> Any:
    return json.loads(json.dumps(x, sort_keys=True))


def _settings(base: Dict[str, Any], item: BatchItem) -> Dict[str, Any]:
    merged = {**base, **item.options}
    return {k: merged[k] for k in sorted(merged) if merged[k] is not None}


def match_batch(
    items: Sequence[BatchItem],
    out: Any,
    *,
    settings: Optional[Dict[str, Any]] = None,
    engine: str = "local",
    jobs: int = 1,
    threads: Optional[int] = None,
    ray_address: Optional[str] = None,
    retry_failed: bool = False,
    progress: bool = True,
    command: str = "",
) -> BatchResult:
    """Match every item, resuming from the items already finished in ``out``.

    Args:
        items: from :func:`load_pairs` or :func:`folder_items`.
        out: the output folder (module docstring), created if missing.
        settings: :func:`vocalfx.match` keywords for every item (:data:`ITEM_OPTIONS`); an item's
            own options override them.
        engine, jobs, threads, ray_address: where the items run (:func:`vocalfx.engine.run_tasks`).
        retry_failed: recompute items that ended with an error.
        progress: a progress bar over items on stderr.
        command: the command line, for the record.

    Raises:
        BatchError: bad settings, an output folder of another kind, or an item in it made with other
            settings; a worker that died (finished items stay).
    """
    from tqdm.auto import tqdm

    from .engine import EngineError, check_engine, run_tasks
    from .io import atomic_write_text
    from .matching import MatchError, check_steering

    settings = dict(settings or {})
    bad = sorted(set(settings) - set(ITEM_OPTIONS))
    if bad:
        raise BatchError(f"unknown match settings: {', '.join(bad)}")
    try:
        check_engine(engine, jobs, threads, ray_address)
        for it in items:
            s = _settings(settings, it)
            check_steering(s.get("groups"), s.get("strength", 1.0), s.get("level"))
    except (EngineError, MatchError) as e:
        raise BatchError(str(e)) from None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BatchError(f"{out}: exists and is not a folder")
    (out / "items").mkdir(parents=True, exist_ok=True)
    meta_path = out / "batch.json"
    meta = (
        _read(meta_path)
        if meta_path.exists()
        else {"format": BATCH_FORMAT, "version": FORMAT_VERSION, "invocations": []}
    )
    if meta is None or meta.get("format") != BATCH_FORMAT:
        raise BatchError(f"{meta_path}: not a vocalfx batch file; choose an empty or new output folder")

    pending, skipped = _plan(items, settings, out, retry_failed)
    record = {
        "command": command,
        "started": _now(),
        "engine": engine,
        "ray_address": ray_address,
        "jobs": jobs,
        "threads": threads,
        "items": len(items),
        "pending": len(pending),
        "interrupted": False,
    }
    meta["invocations"].append(record)
    atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
    bar = tqdm(
        total=len(pending), desc="match-batch", unit="item", disable=not progress or not pending, dynamic_ncols=True
    )
    counts = {"computed": 0, "failed": 0}

    def done(i: int, rec: Dict[str, Any]) -> None:
        counts["computed"] += 1
        counts["failed"] += rec.get("status") != "ok"
        bar.set_postfix_str(f"{rec.get('name')} {rec.get('status')}", refresh=False)
        bar.update(1)

    t0 = time.perf_counter()
    try:
        run_tasks(run_item, pending, engine=engine, jobs=jobs, threads=threads, ray_address=ray_address, on_done=done)
    except KeyboardInterrupt:
        record["interrupted"] = True
        raise
    except EngineError as e:
        raise BatchError(str(e)) from None
    finally:
        bar.close()
        record.update(finished=_now(), wall_seconds=time.perf_counter() - t0, **counts)
        atomic_write_text(meta_path, json.dumps(meta, indent=1) + "\n")
        summary, errors = _write_summary(out, items)
    return BatchResult(
        out=out,
        computed=counts["computed"],
        failed=counts["failed"],
        skipped=skipped,
        seconds=time.perf_counter() - t0,
        summary=summary,
        errors=errors,
    )


def _plan(items: Sequence[BatchItem], settings: Optional[Dict[str, Any]], out: Path, retry_failed: bool):
    """``(pending jobs, items skipped)``: an item with a finished record of the same inputs and settings is skipped.

    Raises:
        BatchError: an item's record was made from other inputs or settings.
    """
    pending, skipped = [], 0
    for it in items:
        key = {
            "name": it.name,
            "dry": _file_key(it.dry),
            "reference": _file_key(it.reference),
            "settings": _settings(settings, it),
        }
        rec = _read(out / "items" / f"{it.name}.json")
        if rec is not None and rec.get("format") == ITEM_FORMAT:
            if _norm({k: rec.get(k) for k in key}) != _norm(key):
                raise BatchError(
                    f"{out / 'items' / (it.name + '.json')} was made from other inputs or settings "
                    f"({ {k: rec.get(k) for k in ('dry', 'reference', 'settings')} }); use another output folder, "
                    "or delete that item's files to recompute it"
                )
            if rec.get("status") == "ok" or not retry_failed:
                skipped += 1
                continue
        item = {"name": it.name, "dry": it.dry, "reference": it.reference}
        pending.append({"item": item, "settings": key["settings"], "out": str(out), "key": key})
    return pending, skipped


SUMMARY_COLUMNS = (
    "name",
    "status",
    "dry",
    "reference",
    "output",
    "preset",
    "seconds",
    "loss",
    "initial_loss",
    "output_lufs",
    "output_peak_dbfs",
    "level_gain_db",
    "error",
)


def _write_summary(out: Path, items: Sequence[BatchItem]):
    from .io import atomic_write_text

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
    w.writeheader()
    errors = []
    for it in items:
        rec = _read(out / "items" / f"{it.name}.json") or {"status": "pending"}
        rep = rec.get("stats") or {}
        row = {
            "name": it.name,
            "dry": it.dry,
            "reference": it.reference,
            "status": rec.get("status"),
            "output": rec.get("output", ""),
            "preset": rec.get("preset", ""),
            "error": rec.get("error", ""),
            "seconds": f"{rec['seconds']:.2f}" if isinstance(rec.get("seconds"), float) else "",
        }
        for k in ("loss", "initial_loss", "output_lufs", "output_peak_dbfs", "level_gain_db"):
            v = rep.get(k)
            row[k] = f"{v:.4f}" if isinstance(v, float) else (v if v is not None else "")
        w.writerow(row)
        if rec.get("status") != "ok":
            errors.append(f"{it.name}: {rec.get('error') or rec.get('status')}")
    path = out / "summary.csv"
    atomic_write_text(path, buf.getvalue())
    return path, errors
