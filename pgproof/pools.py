"""Thread pools for probes that stop waiting when their block ends by an exception.

``with ThreadPoolExecutor()`` waits for every running task on the way out, also on Ctrl-C or
when one endpoint already raised: a probe stuck on a silent peer then holds the whole run
until its own limit. Each task here has its own time limit, so on an exception the pool is
left to finish in the background (tasks not started are cancelled) and Ctrl-C answers at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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


def background(fn: Callable[[], T], name: str) -> Future[T]:
    """Run ``fn`` in a daemon thread now; its result or exception waits in the future.

    A daemon: a run that ends (or is interrupted) before asking never waits for it; ``fn``
    keeps its own time limits, as every probe does."""
    fut: Future[T] = Future()

    def run() -> None:
        try:
            fut.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to whoever asks for the result
            fut.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return fut
