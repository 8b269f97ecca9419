"""One way to run data work in worker processes: calls in order, a bounded number in flight.

Used by the store build (``data.triplets``), the file checks (``data.checks``) and the scale
tree generator (``data.synthetic.scale_tree``).
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

__all__ = ["ordered_in_processes"]


def ordered_in_processes(
    fn: Callable[..., Any], calls: Iterable[tuple], workers: int, in_flight: int
) -> Iterator[Any]:
    """``fn(*args)`` for every ``args`` of ``calls``, results in the order of ``calls``, run by
    ``workers`` spawned processes with at most ``in_flight`` calls submitted and not yet
    yielded (memory bounded whatever the number of calls). Closing the iterator early stops
    the processes at once (pending calls cancelled). ``fn`` must be importable (picklable)."""
    # spawn, not fork: the parent may hold threads (GDAL, TensorFlow) a fork would copy
    # mid-lock; workers import only the modules ``fn`` needs
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    pending: deque[Future] = deque()
    try:
        for args in calls:
            pending.append(pool.submit(fn, *args))
            if len(pending) >= in_flight:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
