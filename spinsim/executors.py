"""Where independent work units run: locally (default) or on a Dask cluster.

An executor is a callable ``executor(tasks) -> iterable of results`` that yields each task's
result as it finishes, in any order (every result names its own task, e.g. ``field_index`` for
sweep rows). The *client* process alone writes the HDF5 file with its completion mask, so a
distributed run is interrupted and resumed exactly like a local one, and a worker lost
mid-task costs only its task: Dask reruns it (``retries``), and since every task is a pure
function of its arguments (counter-based RNG keyed by seed, replica, sweep, site) the rerun
gives the same numbers.

    from spinsim.phase import run_task
    ss.sweep(H, T, fields, out="s.h5", executor=dask_executor(run_task, scheduler="tcp://scheduler:8786"))
    spinsim sweep ... --executor dask --scheduler tcp://scheduler:8786

GPU workers: tasks carry ``backend="auto"`` unless the user fixes it, so each task runs on its
worker's GPU when that worker has one (``numba.cuda.is_available()``) and on its CPU otherwise.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator, Sequence

__all__ = ["EXECUTORS", "local_executor", "dask_executor", "make_executor"]

EXECUTORS = ("local", "dask")

Executor = Callable[[Sequence[Any]], Iterable[Any]]


def local_executor(fn: Callable[[Any], Any]) -> Executor:
    """Run ``fn`` on the tasks one after the other in this process."""
    def run(tasks: Sequence[Any]) -> Iterator[Any]:
        for t in tasks:
            yield fn(t)
    return run


def _client(client: Any = None, scheduler: str | None = None) -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ImportError("--executor dask needs dask.distributed: pip install 'dask[distributed]' "
                          "(or pip install 'spinsim[dask]')") from None
    if client is not None:
        return client
    if not scheduler:
        raise ValueError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786) or a Client")
    try:
        return Client(scheduler, timeout="20s")
    except OSError as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler!r}: {exc}") from None


def dask_executor(fn: Callable[[Any], Any], client: Any = None, scheduler: str | None = None,
                  retries: int = 3) -> Executor:
    """Run ``fn`` on the tasks as Dask futures (``client`` or a scheduler address).

    Results are yielded as they complete. A task whose worker dies is rescheduled by Dask; a
    task that raises is retried ``retries`` times and then its error is raised here (after the
    finished results have been yielded, so the client has already stored them).
    """
    c = _client(client, scheduler)

    def run(tasks: Sequence[Any]) -> Iterator[Any]:
        from distributed import as_completed

        if not tasks:
            return
        futures = c.map(fn, list(tasks), retries=retries, pure=False)
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            for f in futures:
                if not f.done():
                    f.cancel()
    return run


def make_executor(kind: str, fn: Callable[[Any], Any], scheduler: str | None = None,
                  client: Any = None) -> Executor | None:
    """The executor for ``--executor kind`` (``None`` for local: the callers' default)."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; allowed: {', '.join(map(repr, EXECUTORS))}")
    if kind == "local":
        if scheduler:
            raise ValueError("--scheduler is only meaningful with --executor dask")
        return None
    return dask_executor(fn, client=client, scheduler=scheduler)
