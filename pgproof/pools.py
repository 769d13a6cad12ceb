"""Thread pools for probes that stop waiting when their block ends by an exception.

``with ThreadPoolExecutor()`` waits for every running task on the way out, also on Ctrl-C or
when one endpoint already raised: a probe stuck on a silent peer then holds the whole run
until its own limit. Each task here has its own time limit, so on an exception the pool is
left to finish in the background (tasks not started are cancelled) and Ctrl-C answers at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


@contextmanager
def threads(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A pool of ``workers`` threads: waited for on success, not on an exception."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)

