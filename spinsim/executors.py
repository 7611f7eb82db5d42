"""Where independent work units run: here (default), on any ``concurrent.futures.Executor``, or
on a Dask cluster through a ``distributed.Client``.

Every ``executor=`` argument of spinsim (``spinsim.sweep``, the distributed ablation) accepts

* ``None``: the tasks run one after the other in this process;
* a :class:`concurrent.futures.Executor` (``ProcessPoolExecutor``, ``ThreadPoolExecutor``, an
  ``mpi4py.futures.MPIPoolExecutor`` ...): one ``submit`` per task;
* a Dask ``distributed.Client``: ``client.map`` with ``retries`` (a worker lost mid-task costs
  only that task);
* a *runner*: any callable ``runner(tasks) -> iterable of results`` (the form the first versions
  of spinsim took, still accepted).

:func:`as_runner` turns any of them into a runner that yields each task's result as it finishes,
in any order (every result names its own task, e.g. ``field_index`` for sweep rows). The *client*
process alone writes the HDF5 file with its completion mask, so a distributed run is interrupted
and resumed exactly like a local one; every task is a pure function of its arguments
(counter-based RNG keyed by seed, replica, sweep, site), so a rerun task gives the same numbers.

    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(4) as pool:
        ss.sweep(H, T, fields, out="s.h5", executor=pool)
    from distributed import Client
    ss.sweep(H, T, fields, out="s.h5", executor=Client("tcp://scheduler:8786"))
    spinsim sweep ... --executor dask --scheduler tcp://scheduler:8786

GPU workers: tasks carry ``backend="auto"`` unless the user fixes it, so each task runs on its
worker's GPU when that worker has one (``numba.cuda.is_available()``) and on its CPU otherwise.
"""
from __future__ import annotations

import concurrent.futures as cf
from typing import Any, Callable, Iterable, Iterator, Sequence

__all__ = ["EXECUTORS", "Runner", "as_runner", "is_dask_client", "local_executor", "dask_executor",
           "futures_executor", "make_executor"]

EXECUTORS = ("local", "dask")

#: ``runner(tasks) -> iterable of results`` in completion order
Runner = Callable[[Sequence[Any]], Iterable[Any]]


def local_executor(fn: Callable[[Any], Any]) -> Runner:
    """Run ``fn`` on the tasks one after the other in this process."""
    def run(tasks: Sequence[Any]) -> Iterator[Any]:
        for t in tasks:
            yield fn(t)
    return run


def futures_executor(fn: Callable[[Any], Any], executor: cf.Executor) -> Runner:
    """Run ``fn`` on the tasks with a :class:`concurrent.futures.Executor` (one ``submit`` each),
    yielding results as they complete. Futures not yet started are cancelled when the consumer
    stops early (an interrupt): finished results have been yielded, so the caller has stored them.
    A task that raises re-raises here."""
    def run(tasks: Sequence[Any]) -> Iterator[Any]:
        futures = [executor.submit(fn, t) for t in tasks]
        try:
            for fut in cf.as_completed(futures):
                yield fut.result()
        finally:
            for f in futures:
                f.cancel()
    return run


def is_dask_client(obj: Any) -> bool:
    """Whether ``obj`` is a ``distributed.Client`` (False when dask.distributed is not installed)."""
    try:
        from distributed import Client
    except ImportError:
        return False
    return isinstance(obj, Client)


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
                  retries: int = 3) -> Runner:
    """Run ``fn`` on the tasks as Dask futures (``client`` or a scheduler address).

    Results are yielded as they complete. A task whose worker dies is rescheduled by Dask; a
    task that raises is retried ``retries`` times and then its error is raised here (after the
    finished results have been yielded, so the client has already stored them). Passing the
    ``Client`` itself as ``executor=`` does the same (:func:`as_runner`).
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


def as_runner(executor: Any, fn: Callable[[Any], Any]) -> Runner:
    """The runner that applies ``fn`` to tasks on ``executor`` (see the module docstring).

    ``executor``: None, a ``concurrent.futures.Executor``, a Dask ``Client`` or a runner callable
    (used as it is: it must apply ``fn`` itself). Raises TypeError for anything else, naming it.
    """
    if executor is None:
        return local_executor(fn)
    if isinstance(executor, cf.Executor):
        return futures_executor(fn, executor)
    if is_dask_client(executor):
        return dask_executor(fn, client=executor)
    if callable(executor):
        return executor
    raise TypeError(f"executor must be None, a concurrent.futures.Executor, a dask.distributed Client or a "
                    f"callable runner(tasks) -> results; got {type(executor).__name__}")


def make_executor(kind: str, fn: Callable[[Any], Any], scheduler: str | None = None,
                  client: Any = None) -> Runner | None:
    """The runner for the CLI's ``--executor kind`` (``None`` for local: the callers' default)."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; allowed: {', '.join(map(repr, EXECUTORS))}")
    if kind == "local":
        if scheduler:
            raise ValueError("--scheduler is only meaningful with --executor dask")
        return None
    return dask_executor(fn, client=client, scheduler=scheduler)
