"""Run a function over a stream of items elsewhere: in worker processes on
this machine, or on a Dask cluster. Results come back in the items' order,
with only a few items in flight so that memory stays bounded however long
the stream is; what the caller stores is therefore what one process would
store, in the same order.

Local processes are not forked from the parent: it may hold threads
(torch, faiss, DuckDB) that a fork would copy in the middle of their work.
Where the platform has it, they are forked from a fork server instead: a
fresh single-threaded process started once, which imports the function's
module once; each worker then starts in milliseconds, where a spawned one
imports the package anew (about 0.7 s of CPU each, measured; more than
splitting 2 MB of text takes). Elsewhere they are spawned. The function
must be importable (a module's top-level function, or a functools.partial
of one).
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager


def ordered_map(function: Callable, items: Iterable, workers: int = 1, executor=None,
                in_flight_per_worker: int = 2) -> Iterator:
    """function(item) for each item, in order: on `executor` (any
    concurrent.futures.Executor, e.g. a Dask client's), else in `workers`
    spawned processes, else (workers <= 1) in this process."""
    if executor is not None:
        yield from _bounded(executor, function, items, in_flight_per_worker * max(workers, 2))
        return
    if workers <= 1:
        yield from map(function, items)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=_context(function)) as pool:
        yield from _bounded(pool, function, items, in_flight_per_worker * workers)


def _context(function: Callable):
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Read when the server starts (the first pool of this process); later
    # functions' modules are imported by each worker.
    module = getattr(getattr(function, "func", function), "__module__", None)
    context.set_forkserver_preload(["__main__"] + ([module] if module else []))
    return context


def _bounded(executor, function, items, in_flight: int) -> Iterator:
    pending = deque()
    for item in items:
        pending.append(executor.submit(function, item))
        if len(pending) >= in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


@contextmanager
def cluster(address: str, timeout: float = 10):
    """(executor, number of workers, dashboard address) of the Dask
    scheduler at `address` (tcp://HOST:8786), for ordered_map. Needs the
    `cluster` extra: pip install 'readingroom[cluster]'."""
    try:
        from distributed import Client
    except ImportError as e:
        raise RuntimeError("--cluster needs Dask distributed: pip install 'readingroom[cluster]'") from e
    client = Client(address, set_as_default=False, timeout=timeout)
    try:
        workers = max(len(client.scheduler_info().get("workers", {})), 1)
        yield client.get_executor(pure=False), workers, client.dashboard_link
    finally:
        client.close()
