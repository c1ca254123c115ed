"""Run a function over a stream of items in worker processes, results in
the items' order, with only a few items in flight so that memory stays
bounded however long the stream is.

Processes are spawned, not forked: the parent may hold threads (torch,
faiss, DuckDB) that a fork would copy in the middle of their work. The
function must be importable (a module's top-level function).
"""
from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator


def ordered_map(function: Callable, items: Iterable, workers: int, in_flight_per_worker: int = 2) -> Iterator:
    """function(item) for each item, in order; in this process when
    workers <= 1."""
    if workers <= 1:
        yield from map(function, items)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = deque()
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) >= in_flight_per_worker * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
