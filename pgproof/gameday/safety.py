"""Who may run chaos, and turning SIGTERM into the same unwinding as Ctrl-C."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from pgproof.target import Target


class ChaosRefused(Exception):
    """The target's policy forbids this game day; nothing was touched."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every registered undo runs."""


def check_policy(target: Target, i_mean_production: bool) -> None:
    if not target.chaos.allowed:
        raise ChaosRefused(
            f"target {target.name!r} does not allow chaos: set chaos.allowed = true in its config")
    hint = target.production_hint  # prod/prd/production/live in name, environment or a tag
    if hint and not i_mean_production:
        raise ChaosRefused(
            f"target {target.name!r} looks like production ({hint}); "
            "add --i-mean-production to run a game day against it")


@contextlib.contextmanager
def sigterm_unwinds() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(f"signal {signum}")

    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can own signal handlers
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
