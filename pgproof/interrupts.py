"""Ctrl-C answers promptly: whether a run was interrupted, and an exit that does not linger.

After an interrupt the process has said what it had to (reports, the one sentence);
tearing down every imported module (boto3, pydantic, pytest...) then costs about a
second of CPU on a loaded machine, which is what separates "answers within 2 s" from
not. ``exit_now`` runs the exit handlers (the bastion tunnel's close), flushes, and leaves.

SIGINT, SIGTERM and SIGHUP as one orderly interruption, so a stopped run never reads
compliant: Python turns only SIGINT into ``KeyboardInterrupt``; SIGTERM (a scheduler's stop,
``kill``) and SIGHUP (an ssh session dropping) kill the process where it stands: no report saying so,
a half-made run directory. Here all three raise :class:`Interrupted`, a ``KeyboardInterrupt``,
so pytest finishes its reporting and every ``finally`` runs, and the first one is remembered
(which signal, when) for results.json. A signal the parent chose to ignore (``nohup``, a
background job's SIGINT) stays ignored.

While ``raising`` is off (reports are being written) a first signal is only recorded: the run
has finished its checks, and a report torn in the middle of a file is worse than one second's
wait; a second signal raises all the same.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

_state = {"interrupted": False}


def mark() -> None:
    """Record that this process was interrupted (pytest's KeyboardInterrupt hook, the CLI)."""
    _state["interrupted"] = True


def interrupted() -> bool:
    return _state["interrupted"]


def exit_now(code: int) -> NoReturn:
    """Exit with ``code`` after the exit handlers and a flush, skipping module teardown."""
    atexit._run_exitfuncs()  # what interpreter shutdown would run first
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing more to say there
            stream.flush()
    os._exit(code)

SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


class Interrupted(KeyboardInterrupt):
    """A termination signal raised like Ctrl-C; ``signame`` says which."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


@dataclass(frozen=True)
class Interruption:
    """What stopped a run and when (seconds since the epoch)."""

    by: str
    at: float

    def when(self) -> str:
        return dt.datetime.fromtimestamp(self.at, dt.UTC).isoformat()

    def as_dict(self) -> dict[str, Any]:
        return {"interrupted": True, "interrupted_by": self.by, "interrupted_at": self.when()}

    def clock(self) -> str:
        return f"{dt.datetime.fromtimestamp(self.at, dt.UTC):%H:%M:%S} UTC"


def describe(exc: BaseException) -> str:
    """``SIGTERM`` for a signal, else the exception's name and message (KeyboardInterrupt ...)."""
    if isinstance(exc, Interrupted):
        return exc.signame
    text = str(exc)
    return type(exc).__name__ + (f": {text}" if text else "")


class Catcher:
    """Handlers for SIGINT/SIGTERM/SIGHUP that record the first signal and raise Interrupted."""

    def __init__(self) -> None:
        self.first: Interruption | None = None
        self.raising = True
        self._previous: dict[int, Any] = {}

    def install(self) -> Catcher:
        """Take over each signal not ignored; off the main thread (no handlers there) a no-op."""
        if threading.current_thread() is not threading.main_thread():
            return self
        for name in SIGNALS:
            sig = getattr(signal, name)
            current = signal.getsignal(sig)
            if current == signal.SIG_IGN:  # nohup / a background job: the caller's choice
                continue
            self._previous[sig] = current
            signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def note(self, by: str) -> Interruption:
        """Record an interruption not seen as a signal here (a KeyboardInterrupt in a probe)."""
        if self.first is None:
            self.first = Interruption(by, time.time())
        return self.first

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        again = self.first is not None
        self.note(name)
        mark()
        if self.raising or again:  # a second signal while reports are written: stop anyway
            raise Interrupted(name)
