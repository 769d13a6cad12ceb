"""Who may run chaos, and turning SIGTERM, SIGHUP and the other termination signals into the
same unwinding as Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from types import FrameType

from pgproof.target import Target


class ChaosRefused(Exception):
    """The target's policy forbids this game day; nothing was touched."""


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP, ...), raised like Ctrl-C so every registered undo runs."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        self.signum = int(signum)
        super().__init__(f"signal {self.signum}")

    @property
    def signame(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        """What a shell reports for a process this signal ended: 128 + its number (SIGHUP 129)."""
        return 128 + self.signum


# Every signal whose default action ends the process and that can be caught: an ssh session
# dropping sends SIGHUP, a scheduler SIGTERM, a user's Ctrl-\ SIGQUIT. SIGINT is Python's own.
UNWIND_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)


def signal_name(exc: BaseException) -> str:
    """``SIGHUP`` for a ``Terminated``, ``SIGINT`` for Ctrl-C (what the journal records)."""
    return exc.signame if isinstance(exc, Terminated) else "SIGINT"


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
    """While inside: each of ``UNWIND_SIGNALS`` raises ``Terminated`` (the undo runs, like Ctrl-C).

    SIGHUP with a terminal on stdout/stderr means the terminal is gone: writing to it would fail
    (EIO) in the middle of the undo, so those streams go to /dev/null first."""
    def handler(signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            _detach_from_terminal()
        raise Terminated(signum)

    import threading

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread can own signal handlers
        return
    previous = {sig: signal.signal(sig, handler) for sig in UNWIND_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _detach_from_terminal() -> None:
    for fd in (1, 2):
        with contextlib.suppress(OSError):
            if os.isatty(fd):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)
