"""Run methods over a corpus: one result cell per track x method, resumable, optionally in parallel.

Output folder layout::

    OUT/run.json                      protocol, options and one record per invocation (wall time, machine)
    OUT/cells/<track>/<method>.json   one finished cell: metrics, predicted vector, method info
    OUT/results.csv                   one row per track x method (rebuilt from the cells)
    OUT/summary.md, OUT/summary.csv   mean and median per metric and method (rebuilt from the cells)

A cell file is written atomically when its method has finished on its track, so an interrupted
run loses at most the cells in progress; running the same command again skips every finished
cell (checked against the cell's stored settings) and computes the rest. A cell that failed
(``"status": "error"``) is kept as finished unless ``retry_failed`` is set.

Work is distributed by track (a track's methods share its preparation and, for ``nn-emb``, the
collection renders); with ``jobs > 1`` tracks run in ``jobs`` worker processes (``spawn``), each
with ``threads`` torch threads (default 1); with ``engine="ray"`` every cell is a Ray task
(:mod:`vocalfx.engine`).
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import platform
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from ..errors import VocalfxError
from ..params import SAMPLE_RATE
from .cells import CELL_FORMAT, FORMAT_VERSION, METRICS, RUN_FORMAT, cell_path, jsonable, write_cell
from .context import EvalContext
from .corpus import Corpus, EvalError, TrackData, TrackSpec, check_vector, prepare_track, render_vector
from .registry import Method, MethodOptions, load_plugin, parse_methods
from .tables import write_reports

__all__ = ["evaluate", "score", "EvalResult", "METRICS", "CELL_FORMAT", "cell_path"]


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def score(track: TrackData, vector: Any) -> Dict[str, float]:
    """Score a predicted preset: render the whole dry track with it and compare with the whole wet.

    Returns:
        ``{"mss_lr", "mldr_lr", "mss_ms", "mldr_ms", "pmse"}`` (:mod:`vocalfx.metrics`, float32 audio;
        ``pmse`` is NaN for a track without a true preset).

    Raises:
        EvalError: the prediction is not 130 finite values or renders non-finite audio.
    """
    from ..metrics import mldr, mss, pmse

    v = check_vector(vector, track.name)
    pred = render_vector(track.dry, v)
    if not torch.isfinite(pred).all():
        raise EvalError(f"{track.name}: the predicted preset renders non-finite audio")
    p, t = pred.unsqueeze(0), track.wet.unsqueeze(0)
    with torch.no_grad():
        out = {
            "mss_lr": float(mss(p, t, SAMPLE_RATE)),
            "mldr_lr": float(mldr(p, t, SAMPLE_RATE)),
            "mss_ms": float(mss(p, t, SAMPLE_RATE, mid_side=True)),
            "mldr_ms": float(mldr(p, t, SAMPLE_RATE, mid_side=True)),
        }
    out["pmse"] = float(pmse(v, track.true_vector)) if track.true_vector is not None else math.nan
    return out


@dataclass
class EvalResult:
    """What :func:`evaluate` did.

    Attributes:
        out: the output folder.
        computed: cells computed by this call; ``failed``: of which ended with an error.
        skipped: cells already finished before this call.
        seconds: wall time of this call (s).
        table: the summary as markdown (also in ``out/summary.md``).
    """

    out: Path
    computed: int
    failed: int
    skipped: int
    seconds: float
    table: str
    errors: List[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Worker side


_CONTEXTS: Dict[str, EvalContext] = {}


def _context(options: MethodOptions) -> EvalContext:
    key = json.dumps(options.to_dict(), sort_keys=True, default=str)
    if key not in _CONTEXTS:
        _CONTEXTS[key] = EvalContext(options)
    return _CONTEXTS[key]


def run_track(
    spec: TrackSpec,
    method_specs: Sequence[str],
    configs: Dict[str, Dict[str, Any]],
    options: MethodOptions,
    out: Path,
    protocol: Dict[str, Any],
    run_id: str,
    on_cell: Optional[Callable[[str, str, str], None]] = None,
) -> Dict[str, int]:
    """Prepare one track and run the given methods on it, writing a cell after each.

    Returns:
        ``{"computed": n, "failed": m}``.
    """
    context = _context(options)
    methods: List[Method] = []
    for s in method_specs:
        (m,) = parse_methods([s], options)
        methods.append(m)
    context.start_track(methods)
    base = {
        "format": CELL_FORMAT,
        "version": FORMAT_VERSION,
        "track": spec.name,
        "track_key": spec.key(),
        "protocol": protocol,
        "run_id": run_id,
    }
    counts = {"computed": 0, "failed": 0}

    def finish(method: Method, cell: Dict[str, Any]) -> None:
        cell = {**base, "method": method.name, "config": configs[method.name], **cell, "finished": _now()}
        write_cell(out, cell)
        counts["computed"] += 1
        counts["failed"] += cell["status"] != "ok"
        if on_cell is not None:
            on_cell(spec.name, method.name, cell["status"])

    t0 = time.perf_counter()
    try:
        track = prepare_track(
            spec,
            chunk_seconds=protocol["chunk_seconds"],
            lufs=protocol["lufs"],
            reference_codec=protocol.get("reference_codec"),
        )
    except EvalError as e:
        for m in methods:
            finish(m, {"status": "error", "error": str(e), "stage": "prepare"})
        return counts
    prep_s = time.perf_counter() - t0
    for m in methods:
        t1 = time.perf_counter()
        try:
            pred = m.predict(track, context)
            t2 = time.perf_counter()
            metrics = score(track, pred.vector)
            t3 = time.perf_counter()
        except (VocalfxError, ValueError) as e:
            finish(m, {"status": "error", "error": str(e), "stage": "predict/score", "track_info": track.info()})
            continue
        finish(
            m,
            {
                "status": "ok",
                "metrics": metrics,
                "vector": check_vector(pred.vector, track.name).tolist(),
                "info": pred.info,
                "track_info": {**track.info(), "notes": track.notes},
                "seconds": {
                    "prepare": prep_s,
                    "predict": t2 - t1 if pred.seconds is None else float(pred.seconds),
                    "predict_wall": t2 - t1,
                    "score": t3 - t2,
                },
            },
        )
    return counts


def _run_track_job(job: Dict[str, Any]) -> Dict[str, int]:
    return run_track(**job)


def _load_plugins(plugins: Sequence[str]) -> None:
    for p in plugins:
        load_plugin(p)


# ----------------------------------------------------------------------------------------------
# Main side


def _machine() -> Dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        load = None
    from .._version import __version__

    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "vocalfx": __version__,
    }


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _norm(x: Any) -> Any:
    """JSON round trip, so that configs compare as they are stored."""
    return json.loads(json.dumps(jsonable(x), sort_keys=True))


def _load_run(out: Path, protocol: Dict[str, Any]) -> Dict[str, Any]:
    path = out / "run.json"
    if not path.exists():
        return {
            "format": RUN_FORMAT,
            "version": FORMAT_VERSION,
            "protocol": protocol,
            "corpus": None,
            "invocations": [],
        }
    run = _read_json(path)
    if not isinstance(run, dict) or run.get("format") != RUN_FORMAT:
        raise EvalError(f"{path}: not a vocalfx eval run file; choose an empty or new --out folder")
    if _norm(run.get("protocol")) != _norm(protocol):
        diff = {
            k: (run.get("protocol", {}).get(k), protocol[k])
            for k in protocol
            if _norm(run.get("protocol", {}).get(k)) != _norm(protocol[k])
        }
        detail = "; ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise EvalError(f"{out} holds results of a different protocol ({detail}); use another --out folder")
    return run


def _save_run(out: Path, run: Dict[str, Any]) -> None:
    from ..io import atomic_write_text

    atomic_write_text(out / "run.json", json.dumps(jsonable(run), indent=1) + "\n")


def evaluate(
    corpus: Corpus,
    methods: Sequence[Method],
    out: os.PathLike,
    *,
    options: Optional[MethodOptions] = None,
    jobs: int = 1,
    threads: Optional[int] = None,
    engine: str = "local",
    ray_address: Optional[str] = None,
    retry_failed: bool = False,
    progress: bool = True,
    plugins: Sequence[str] = (),
    command: str = "",
) -> EvalResult:
    """Run ``methods`` on every track of ``corpus``, resuming from the cells already in ``out``.

    Args:
        corpus: from :func:`~vocalfx.evaluation.load_corpus`.
        methods: from :func:`~vocalfx.evaluation.parse_methods` (with the same ``options``).
        out: output folder (created if missing; see the module docstring for its layout).
        options: the :class:`MethodOptions` the methods were parsed with.
        jobs: worker processes; 1 runs in this process (with ``engine="local"``). With
            ``engine="ray"`` and no ``ray_address``: the CPUs of the local Ray instance.
        threads: torch threads per worker (default 1 when ``jobs > 1`` or on Ray; unchanged when
            ``jobs == 1`` locally).
        engine: ``"local"`` (this process or a process pool, one task per track) or ``"ray"``
            (one Ray task per cell; :mod:`vocalfx.engine`). Cells are the same either way.
        ray_address: a running Ray cluster (``"auto"``, ``HOST:PORT``); ``None`` starts a local one.
        retry_failed: recompute cells that finished with an error.
        progress: show a progress bar on stderr.
        plugins: method plugin modules to import in worker processes.
        command: the command line, recorded in ``run.json`` and the summary.

    Returns:
        An :class:`EvalResult`; the tables are in ``out/summary.md``, ``out/results.csv``.

    Raises:
        EvalError: ``out`` holds results made with a different protocol or method settings, or a
            worker process died.
    """
    from tqdm.auto import tqdm

    from ..engine import EngineError, check_engine

    options = options or MethodOptions()
    try:
        check_engine(engine, jobs, threads, ray_address)
    except EngineError as e:
        raise EvalError(str(e)) from None
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise EvalError(f"{out}: exists and is not a folder")
    protocol = corpus.protocol()
    out.mkdir(parents=True, exist_ok=True)
    run = _load_run(out, protocol)
    run["corpus"] = str(corpus.root)
    run["presets"] = corpus.presets_source

    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise EvalError(f"duplicate method names: {names}")
    context = EvalContext(options)
    configs = {m.name: _norm(m.config(context)) for m in methods}
    for enc in sorted({m.encoder for m in methods if hasattr(m, "encoder")}):
        context.encoder(enc)  # fail now (unknown encoder, missing checkpoint), not in a worker

    pending, skipped = _plan(corpus, methods, configs, out, protocol, retry_failed)
    run_id = uuid.uuid4().hex[:12]
    record = _invocation(run_id, command, engine, ray_address, jobs, threads, names, options, pending)
    run["invocations"].append(record)
    _save_run(out, run)

    t0 = time.perf_counter()
    total = record["cells_pending"]
    specs = {s.name: s for s in corpus.tracks}

    def job(name: str) -> Dict[str, Any]:
        return {
            "spec": specs[name],
            "method_specs": [m.spec for m in pending[name]],
            "configs": configs,
            "options": options,
            "out": out,
            "protocol": protocol,
            "run_id": run_id,
        }

    bar = tqdm(total=total, desc="eval", unit="cell", disable=not progress or total == 0, dynamic_ncols=True)
    try:
        if (jobs == 1 and engine == "local") or not pending:
            _run_here(pending, job, threads, bar)
        else:
            _run_engine(pending, job, engine, jobs, threads or 1, ray_address, plugins, out, bar)
    except KeyboardInterrupt:
        record["interrupted"] = True
        raise
    finally:
        bar.close()
        counts = _count_cells(out, pending, run_id)  # from the files: right after an interruption too
        record.update(
            finished=_now(),
            wall_seconds=time.perf_counter() - t0,
            cells_computed=counts["computed"],
            cells_failed=counts["failed"],
        )
        _save_run(out, run)

    table, errors = write_reports(out, corpus, methods, run)
    from ..report import write_eval_report  # OUT/summary.html (tables and figures) next to summary.md

    write_eval_report(out)
    seconds = time.perf_counter() - t0
    return EvalResult(out, counts["computed"], counts["failed"], skipped, seconds, table=table, errors=errors)


def _plan(corpus: Corpus, methods: Sequence[Method], configs, out: Path, protocol, retry_failed: bool):
    """Which cells are finished and which are pending: ``({track: [methods]}, cells skipped)``.

    Raises:
        EvalError: a finished cell was computed with other settings or on other data.
    """
    pending: Dict[str, List[Method]] = {}
    skipped = 0
    for spec in corpus.tracks:
        for m in methods:
            if m.needs_true_preset and spec.preset is None:
                continue
            path = cell_path(out, spec.name, m.name)
            cell = _read_json(path) if path.exists() else None
            if cell is not None and cell.get("format") == CELL_FORMAT:
                if _norm(cell.get("config")) != configs[m.name]:
                    raise EvalError(
                        f"{path} was computed with other settings ({cell.get('config')}; now {configs[m.name]}); "
                        "use another --out folder, or delete that method's cells to recompute them"
                    )
                if _norm(cell.get("track_key")) != _norm(spec.key()) or _norm(cell.get("protocol")) != _norm(protocol):
                    raise EvalError(
                        f"{path} was computed on other data (track {cell.get('track_key')}, "
                        f"protocol {cell.get('protocol')}; now {spec.key()}, {protocol}); use another --out folder"
                    )
                if cell.get("status") == "ok" or not retry_failed:
                    skipped += 1
                    continue
            pending.setdefault(spec.name, []).append(m)
    return pending, skipped


def _invocation(run_id, command, engine, ray_address, jobs, threads, names, options, pending) -> Dict[str, Any]:
    """The record of one invocation, as ``run.json`` keeps it."""
    record = {
        "run_id": run_id,
        "command": command,
        "started": _now(),
        "finished": None,
        "wall_seconds": None,
        "engine": engine,
        "ray_address": ray_address,
        "jobs": jobs,
        "threads": threads if threads is not None else (1 if jobs > 1 else torch.get_num_threads()),
        "methods": names,
        "options": options.to_dict(),
        "cells_pending": sum(len(v) for v in pending.values()),
        "cells_computed": 0,
        "cells_failed": 0,
        "interrupted": False,
        "machine": _machine(),
    }
    return record


def _run_here(pending: Dict[str, List[Method]], job, threads: Optional[int], bar) -> None:
    """The pending tracks in this process. The thread count is the caller's: set only when asked
    for, and put back afterwards."""
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)

    def on_cell(track: str, method: str, status: str) -> None:
        bar.set_postfix_str(f"{track} {method} {status}", refresh=False)
        bar.update(1)

    try:
        for name in pending:
            run_track(**job(name), on_cell=on_cell)
    finally:
        torch.set_num_threads(previous_threads)


def _count_cells(out: Path, pending: Dict[str, List[Method]], run_id: str) -> Dict[str, int]:
    """Cells written by invocation ``run_id``, and how many of them failed."""
    counts = {"computed": 0, "failed": 0}
    for track, methods in pending.items():
        for m in methods:
            cell = _read_json(cell_path(out, track, m.name))
            if cell is not None and cell.get("run_id") == run_id:
                counts["computed"] += 1
                counts["failed"] += cell.get("status") != "ok"
    return counts


def _run_engine(pending, job, engine, jobs, threads, ray_address, plugins, out, bar) -> None:
    """Tracks (local workers) or cells (Ray) as engine tasks; the bar follows the cell files as they appear."""
    from ..engine import run_tasks

    watch = {cell_path(out, t, m.name): _mtime(cell_path(out, t, m.name)) for t, ms in pending.items() for m in ms}
    if engine == "ray":  # one task per cell: a cluster spreads them wider than tracks
        tasks = [{**job(t), "method_specs": [m.spec]} for t, ms in pending.items() for m in ms]
    else:
        tasks = [job(t) for t in pending]
    run_tasks(
        _run_track_job,
        tasks,
        engine=engine,
        jobs=jobs,
        threads=threads,
        ray_address=ray_address,
        prepare=functools.partial(_load_plugins, tuple(plugins)),
        poll=lambda: _poll(watch, bar),
    )
    _poll(watch, bar)


def _mtime(path: Path) -> Optional[int]:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _poll(watch: Dict[Path, Optional[int]], bar) -> None:
    for path in list(watch):
        if _mtime(path) != watch[path]:
            del watch[path]
            bar.set_postfix_str(f"{path.parent.name} {path.stem}", refresh=False)
            bar.update(1)
