"""Where independent tasks run: this process, a pool of local worker processes, or Ray.

``vocalfx eval`` (one task per track, or per cell on Ray) and ``vocalfx match-batch`` (one task
per item) hand their tasks to :func:`run_tasks`. A task is a module-level function and one
picklable argument; it writes its own result files atomically, so the engine only has to run it,
report that it ended, and stop cleanly when asked to. An interrupted run therefore loses only the
tasks in progress, whichever engine ran them.

- ``local`` with ``jobs == 1``: in this process (the torch thread count is set only when
  ``threads`` is given, and put back afterwards).
- ``local`` with ``jobs > 1``: ``jobs`` worker processes (``spawn``), each with ``threads`` torch
  threads; a worker exits when this process dies, so an orphan never writes results that a
  re-run is computing as well.
- ``ray``: one Ray task per task, each asking for ``threads`` CPUs. Without ``ray_address`` a
  local Ray instance with ``jobs * threads`` CPUs is started for the call and shut down after it;
  with ``ray_address`` (``"auto"`` or ``HOST:PORT``) the tasks go to that cluster, whose nodes need
  vocalfx installed and the input and output folders at the same paths (``docs/guide/batch.md``).
  Ray is an optional extra: ``pip install 'vocalfx[ray]'``.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import threading
import time
from typing import Any, Callable, Optional, Sequence

from .errors import VocalfxError

__all__ = ["ENGINES", "EngineError", "run_tasks", "check_engine"]

#: Engine names of ``--engine``.
ENGINES = ("local", "ray")

Task = Callable[[Any], Any]


class EngineError(VocalfxError):
    """A task could not be run: an unknown engine, Ray missing, a worker process that died."""


def check_engine(engine: str, jobs: int, threads: Optional[int], ray_address: Optional[str] = None) -> None:
    """Check the engine settings before any work starts.

    Raises:
        EngineError: an unknown engine, ``jobs`` or ``threads`` below 1, an address without Ray,
            or Ray not installed.
    """
    if engine not in ENGINES:
        raise EngineError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if jobs < 1:
        raise EngineError(f"jobs must be at least 1, got {jobs}")
    if threads is not None and threads < 1:
        raise EngineError(f"threads must be at least 1, got {threads}")
    if ray_address and engine != "ray":
        raise EngineError("a Ray address is only used with the ray engine")
    if engine == "ray":
        _import_ray()


def _import_ray():
    try:
        import ray
    except ImportError:
        raise EngineError("the ray engine needs Ray: pip install 'vocalfx[ray]'") from None
    return ray


def run_tasks(
    fn: Task,
    tasks: Sequence[Any],
    *,
    engine: str = "local",
    jobs: int = 1,
    threads: Optional[int] = None,
    ray_address: Optional[str] = None,
    prepare: Optional[Callable[[], None]] = None,
    on_done: Optional[Callable[[int, Any], None]] = None,
    poll: Optional[Callable[[], None]] = None,
) -> None:
    """Run ``fn(task)`` for every task; ``on_done(index, result)`` is called here as each ends.

    Args:
        fn: a module-level function (it is sent to worker processes by name).
        tasks: its arguments, each picklable.
        engine: ``"local"`` or ``"ray"`` (module docstring).
        jobs: worker processes (local) or, for a Ray instance started here, CPUs / threads.
        threads: torch threads per task (default 1 in workers; in this process unchanged).
        ray_address: a running Ray cluster (``"auto"``, ``HOST:PORT``); ``None`` starts one.
        prepare: called once in each worker (and here with ``jobs == 1``) before its first task,
            e.g. to load eval method plugins; picklable (a module-level function or a partial of one).
        on_done: called in this process with the task's index and ``fn``'s return value.
        poll: called about once a second while tasks run (e.g. to follow result files).

    Raises:
        EngineError: bad settings, or a worker or Ray task died (results already written stay).
        Exception: whatever ``fn`` raises when it runs in this process.
    """
    check_engine(engine, jobs, threads, ray_address)
    if not tasks:
        return
    done = on_done or (lambda i, r: None)
    if engine == "ray":
        _run_ray(fn, tasks, jobs, threads or 1, ray_address, prepare, done, poll)
    elif jobs == 1:
        _run_here(fn, tasks, threads, prepare, done)
    else:
        _run_pool(fn, tasks, jobs, threads or 1, prepare, done, poll)


def _run_here(fn: Task, tasks: Sequence[Any], threads: Optional[int], prepare, done) -> None:
    import torch

    if prepare is not None:
        prepare()
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        for i, t in enumerate(tasks):
            done(i, fn(t))
    finally:
        torch.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------
# Local worker processes


def _init_worker(threads: int, prepare) -> None:
    import torch

    torch.set_num_threads(max(1, int(threads)))
    if prepare is not None:
        prepare()
    _exit_with_parent()


def _exit_with_parent(interval_s: float = 2.0) -> None:
    """End this worker when its parent dies (e.g. SIGKILL) instead of letting it finish its task."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(interval_s)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="vocalfx-parent-watch", daemon=True).start()


def _run_pool(fn: Task, tasks: Sequence[Any], jobs: int, threads: int, prepare, done, poll) -> None:
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(
        max_workers=min(jobs, len(tasks)), mp_context=ctx, initializer=_init_worker, initargs=(threads, prepare)
    )
    futures = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
    try:
        remaining = set(futures)
        while remaining:
            finished, remaining = cf.wait(remaining, timeout=1.0, return_when=cf.FIRST_COMPLETED)
            if poll is not None:
                poll()
            for f in finished:
                try:
                    result = f.result()
                except cf.process.BrokenProcessPool:
                    raise EngineError(
                        f"a worker process died while running task {futures[f] + 1} of {len(tasks)} (out of memory?); "
                        "finished results are kept: run the same command again to continue"
                    ) from None
                done(futures[f], result)
    except BaseException:
        # Stop now: cancel the queued tasks and end the running ones (their finished results are
        # on disk). ProcessPoolExecutor has no public way to end running workers before 3.14.
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


# ----------------------------------------------------------------------------------------------
# Ray


_PREPARED = set()


def _ray_task(fn: Task, task: Any, threads: int, prepare) -> Any:
    """One task in a Ray worker: its thread count, and ``prepare`` once per worker process."""
    import torch

    torch.set_num_threads(threads)
    key = repr(prepare)
    if prepare is not None and key not in _PREPARED:
        prepare()
        _PREPARED.add(key)
    return fn(task)


def _run_ray(
    fn: Task, tasks: Sequence[Any], jobs: int, threads: int, address: Optional[str], prepare, done, poll
) -> None:
    ray = _import_ray()
    started = False
    if not ray.is_initialized():
        options = {"include_dashboard": False, "log_to_driver": False}
        try:
            if address:
                ray.init(address=address, **options)
            else:
                # Ray runs its workers at niceness 15 by default, so that any other load on the
                # machine starves them (measured: 7x slower beside two busy processes); a local
                # instance started for vocalfx runs them like local worker processes.
                ray.init(num_cpus=jobs * threads, _system_config={"worker_niceness": 0}, **options)
                started = True
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = f"at {address}" if address else "(local instance)"
            raise EngineError(
                f"cannot start or reach Ray {where}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
            ) from None
    remote = ray.remote(num_cpus=threads, max_retries=0)(_ray_task)
    refs = {remote.remote(fn, t, threads, prepare): i for i, t in enumerate(tasks)}
    remaining = list(refs)
    try:
        while remaining:
            finished, remaining = ray.wait(remaining, num_returns=1, timeout=1.0)
            if poll is not None:
                poll()
            for r in finished:
                try:
                    result = ray.get(r)
                except ray.exceptions.RayError as e:
                    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    raise EngineError(
                        f"Ray task {refs[r] + 1} of {len(tasks)} failed ({type(e).__name__}: {first}); "
                        "finished results are kept: run the same command again to continue"
                    ) from None
                done(refs[r], result)
    except BaseException:
        for r in remaining:
            ray.cancel(r, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
