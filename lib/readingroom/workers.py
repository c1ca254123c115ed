"""Run a function over a stream of items elsewhere: in worker processes on
this machine, or on a Dask cluster. Results come back in the items' order,
with only a few items in flight so that memory stays bounded however long
the stream is; what the caller stores is therefore what one process would
store, in the same order.

Local processes are spawned, not forked: the parent may hold threads
(torch, faiss, DuckDB) that a fork would copy in the middle of their work.
The function must be importable (a module's top-level function, or a
functools.partial of one).
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

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from _bounded(pool, function, items, in_flight_per_worker * workers)


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
