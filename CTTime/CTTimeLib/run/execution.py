"""Execution: independent tasks run inline, in local processes or on a Dask cluster.

``Runner.run`` yields results in completion order with their index, so the caller can put them back in order: the
output does not depend on the number of workers or where they run. ``prefetch`` overlaps work in threads.
"""

import contextlib
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from multiprocessing import get_context

from ..core.errors import Cancelled, CTTimeError


def prefetch(function, items, threads=1):
    """Futures of ``function(item)`` for each item, in order; the next ``threads`` items' calls run in background
    threads while the caller works on the item before them (for work that releases Python's lock, such as
    SimpleITK filters). Closing the generator cancels what has not started."""
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        ahead = []
        for item in items:
            ahead.append(pool.submit(function, item))
            if len(ahead) == threads + 1:
                yield ahead.pop(0)
        yield from ahead
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def check_cancelled(cancelled):
    """Raise Cancelled when ``cancelled()`` says so."""
    if cancelled is not None and cancelled():
        raise Cancelled()


class Runner:
    """Where tasks run: this process (``workers`` 1), a pool of local processes, or a Dask cluster
    (``scheduler``, tcp://host:port). Use as a context manager; the pool or the connection is made on first use
    and kept for every ``run`` until the block ends."""

    def __init__(self, workers=1, scheduler=None):
        self.workers, self.scheduler = workers, scheduler
        self._pool = self._client = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)  # running tasks finish and keep their lesions
        if self._client is not None:
            self._client.close()

    def in_this_process(self, count):
        """True when ``count`` tasks run here, one after the other."""
        return not self.scheduler and (self.workers <= 1 or count <= 1)

    def run(self, function, items, cancelled=None, threads=1):
        """Yield ``(index, result, error)`` for ``function(item)`` of every item, in completion order;
        ``error`` is the exception of a task that crashed (its worker died, ran out of memory...), else None.
        In this process, ``threads`` > 1 overlaps that many items in threads (for work that runs outside Python's
        lock and may run in several threads at once)."""
        items = list(items)
        if self.scheduler:
            yield from self._on_dask(function, items, cancelled)
        elif self.in_this_process(len(items)) and threads > 1:
            with contextlib.closing(prefetch(function, items, threads)) as results:
                for index, future in enumerate(results):
                    check_cancelled(cancelled)
                    yield index, future.result(), None
        elif self.in_this_process(len(items)):
            for index, item in enumerate(items):
                check_cancelled(cancelled)
                yield index, function(item), None
        else:
            yield from self._in_processes(function, items, cancelled)

    def _in_processes(self, function, items, cancelled):
        if self._pool is None:  # spawn: a forked copy of a process running ITK or Dask threads can deadlock
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"))
        futures = {self._pool.submit(function, item): index for index, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                check_cancelled(cancelled)
                error = future.exception()
                yield futures[future], None if error else future.result(), error
        finally:
            for future in futures:
                future.cancel()

    def _on_dask(self, function, items, cancelled):
        if self._client is None:
            self._client = _connect(self.scheduler)
        from distributed import as_completed as dask_completed

        futures = self._client.map(function, items, pure=False)
        index = {future.key: number for number, future in enumerate(futures)}
        try:
            for future in dask_completed(futures):
                check_cancelled(cancelled)
                error = future.exception()
                yield index[future.key], None if error else future.result(), error
        finally:
            self._client.cancel(futures)


def _connect(scheduler):
    try:
        from distributed import Client
    except ImportError:
        raise CTTimeError("--scheduler needs Dask: pip install 'dask[distributed]'.", "input") from None
    try:
        return Client(scheduler, timeout="10s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise CTTimeError(f"Cannot reach the Dask scheduler {scheduler}: {exc}. Start it with `dask scheduler` "
                          "and check the address.", "input") from None
