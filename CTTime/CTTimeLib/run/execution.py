"""Execution: independent tasks run inline, in local processes or on a Dask cluster.

``Runner.run`` yields results in completion order with their index, so the caller can put them back in order: the
output does not depend on the number of workers or where they run. ``prefetch`` overlaps work in threads.

A local worker process that dies (killed, out of memory, crashed) breaks Python's process pool: the pool is built
again and the tasks it was running are run again, each alone; a task whose worker dies while it runs alone is
reported as ``WorkerDied`` and costs no other task. When the run is interrupted (Ctrl-C, SIGTERM, an error), the
workers are stopped at once; they ignore Ctrl-C themselves and die with the process that started them.
"""

import contextlib
import os
import signal
import sys
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from ..core.errors import Cancelled, CTTimeError

_POLL_SECONDS = 0.5  # how often a run waiting for its workers looks at ``cancelled``


class WorkerDied(Exception):
    """The worker process running a task died, again when the task ran alone."""


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

    def __exit__(self, exc_type, *exc_info):
        if self._pool is not None:
            if exc_type is not None:  # interrupted or failed: stop the workers now (finished lesions are cached)
                _stop_workers(self._pool)
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
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

    def _new_pool(self):
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        # spawn: a forked copy of a process running ITK or Dask threads can deadlock
        self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                         initializer=_start_worker, initargs=(os.getpid(),))

    def _in_processes(self, function, items, cancelled):
        """Keep at most ``workers`` tasks in flight, so those a dead worker took down are known (see the module)."""
        if self._pool is None:
            self._new_pool()
        waiting, suspects, running = deque(range(len(items))), deque(), {}
        try:
            while waiting or suspects or running:
                check_cancelled(cancelled)
                if suspects and not running:  # a task in flight when a worker died runs alone
                    index = suspects.popleft()
                    running[self._pool.submit(function, items[index])] = (index, True)
                alone = any(suspect for _, suspect in running.values())
                while not suspects and not alone and waiting and len(running) < self.workers:
                    index = waiting.popleft()
                    running[self._pool.submit(function, items[index])] = (index, False)
                done, _ = wait(running, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                broken = any(isinstance(future.exception(), BrokenProcessPool) for future in done)
                finished = [future for future in running if future.done() and not isinstance(
                    future.exception(), BrokenProcessPool)] if broken else done
                for future in finished:
                    index, _ = running.pop(future)
                    error = future.exception()
                    yield index, None if error else future.result(), error
                if broken:  # the pool is unusable: every task still in it died with it
                    lost = list(running.values())
                    running.clear()
                    self._new_pool()
                    if len(lost) == 1 and lost[0][1]:
                        yield lost[0][0], None, WorkerDied("the worker process died")
                    else:
                        suspects.extend(index for index, _ in lost)
        finally:
            for future in running:
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


def _start_worker(parent):
    """In each worker process: leave Ctrl-C to the main process, and die with it (Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the main process died before the line above
            os._exit(1)


def _stop_workers(pool):
    """Terminate a process pool's workers (they are idle or extracting; their finished lesions are cached)."""
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.terminate()
