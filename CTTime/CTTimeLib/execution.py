"""Execution: a run's cases as independent tasks, inline, in local processes or on a Dask cluster.

Every case goes through ``process_case``: look it up in the result cache, else extract it (keeping each finished
lesion) and store it. ``Runner.run`` yields results in completion order with their index, so the caller can put
them back in case order: the output does not depend on the number of workers or where they run.
"""

import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context

from .cache import CaseCache, case_key
from .errors import Cancelled, CTTimeError

_LOCAL = threading.local()  # one pyradiomics extractor per thread and parameter file


@dataclass(frozen=True)
class Settings:
    """What a worker needs besides the case: the parameter file, the cache folder (None: no cache) and the
    run's shared cache-key context."""

    parameter_file: str
    cache_dir: object = None
    context: object = None


@dataclass
class CaseResult:
    rows: list
    cached: bool
    seconds: float


def use_extractor(extractor):
    """Let tasks run in this thread reuse an extractor already built (the inline, one-worker case)."""
    if not hasattr(_LOCAL, "extractors"):
        _LOCAL.extractors = {}
    _LOCAL.extractors[extractor.parameter_file] = extractor


def _extractor(parameter_file):
    from .extraction import FeatureExtractor

    extractors = getattr(_LOCAL, "extractors", None)
    if extractors is None or parameter_file not in extractors:
        use_extractor(FeatureExtractor(parameter_file))
    return _LOCAL.extractors[parameter_file]


def absolute(case):
    """The case with absolute paths (workers may run in another folder)."""
    return replace(case, image=os.path.abspath(case.image), segmentation=os.path.abspath(case.segmentation))


def process_case(case, settings, cancelled=None):
    """The raw rows of one case, from the cache when its inputs have not changed (``cancelled``: only when run in
    the calling process)."""
    from .pipeline import case_meta, extract_case

    start = time.perf_counter()
    meta = case_meta(case)
    store = None
    if settings.cache_dir:
        try:
            store = CaseCache(settings.cache_dir, case_key(case, settings.context))
        except OSError:  # an input is missing: extract_case reports it
            store = None
    cached = store.rows() if store else None
    if cached is not None:
        return CaseResult([dict(meta, **row) for row in cached], True, time.perf_counter() - start)

    def strip(row):
        return {k: v for k, v in row.items() if k not in meta}

    finished = store.finished_lesions() if store else {}
    rows = extract_case(case, _extractor(settings.parameter_file), cancelled=cancelled, done=finished,
                        on_row=(lambda row: store.add_lesion(strip(row))) if store else None)
    if store:
        store.store([strip(row) for row in rows])
    return CaseResult(rows, False, time.perf_counter() - start)


def one_ahead(function, items):
    """Futures of ``function(item)`` for each item, in order; each item's call runs in a background thread while
    the caller works on the item before it (for work that releases Python's lock, such as SimpleITK filters).
    Closing the generator cancels what has not started."""
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        ahead = []
        for item in items:
            ahead.append(pool.submit(function, item))
            if len(ahead) == 2:
                yield ahead.pop(0)
        yield from ahead
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check(cancelled):
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

    def run(self, function, items, cancelled=None):
        """Yield ``(index, result, error)`` for ``function(item)`` of every item, in completion order;
        ``error`` is the exception of a task that crashed (its worker died, ran out of memory...), else None."""
        items = list(items)
        if self.scheduler:
            yield from self._on_dask(function, items, cancelled)
        elif self.in_this_process(len(items)):
            for index, item in enumerate(items):
                _check(cancelled)
                yield index, function(item), None
        else:
            yield from self._in_processes(function, items, cancelled)

    def _in_processes(self, function, items, cancelled):
        if self._pool is None:  # spawn: a forked copy of a process running ITK or Dask threads can deadlock
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"))
        futures = {self._pool.submit(function, item): index for index, item in enumerate(items)}
        try:
            for future in as_completed(futures):
                _check(cancelled)
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
                _check(cancelled)
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
