"""The whole run's time limit (``timeouts.run_s``): a scheduled run ends and reports, whatever hangs.

Each probe has its own limit; this one bounds their sum. Once the run has lasted
``run_s``, a check still running is interrupted (SIGALRM, in the main thread, only
while a check's setup or call runs) and every check not yet started is an error
"run time limit N s exceeded": never pass, never fail. The run still finishes,
writes its reports and exits 2 (could not check) unless a control failed before.

PYTEST_DONT_REWRITE: product code that pgproof.pytest_plugin imports before pytest could rewrite
it (pytest otherwise warns "Module already imported so cannot be rewritten" on every run).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Generator
from types import FrameType

import pytest

from pgproof import interrupts
from pgproof.pytest_targets import get_target
from pgproof.target import Target
from pgproof.verdict import Unreachable

_STARTED = pytest.StashKey[float]()
_OVERRUN = pytest.StashKey[int]()
_FULL_TRACE = {"on": False}  # pytest_keyboard_interrupt is given no config


class RunLimitExceeded(Unreachable):
    """The run reached ``timeouts.run_s``: this check did not finish (or did not start)."""

    def __init__(self, run_s: float, started: bool) -> None:
        self.run_s = run_s
        when = "while this check ran" if started else "before this check started"
        super().__init__(f"run time limit {run_s:g} s exceeded (timeouts.run_s) {when}")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STARTED] = time.monotonic()
    _FULL_TRACE["on"] = bool(config.getoption("fulltrace", False))
    config.stash[_OVERRUN] = 0


def _run_s(item: pytest.Item) -> float | None:
    """The limit for a control check of a loaded target (None: not a check, or no target yet)."""
    if item.get_closest_marker("control") is None:
        return None
    return get_target(item.config).timeouts.run_s


def _remaining(item: pytest.Item) -> tuple[float, float] | None:
    """(run_s, seconds left) for a control check; None when no limit applies."""
    run_s = _run_s(item)
    if run_s is None:
        return None
    return run_s, run_s - (time.monotonic() - item.config.stash[_STARTED])


def time_left(config: pytest.Config, target: Target) -> float:
    """Seconds left of ``target``'s ``timeouts.run_s`` for this run (may be negative)."""
    return target.timeouts.run_s - (time.monotonic() - config.stash[_STARTED])


def _phase(item: pytest.Item) -> Generator[None, None, None]:
    """Refuse to start after the limit; interrupt the phase when the limit passes during it."""
    left = _remaining(item)
    if left is None:
        return (yield)
    run_s, remaining = left
    if remaining <= 0:
        item.config.stash[_OVERRUN] += 1
        raise RunLimitExceeded(run_s, started=False)
    if threading.current_thread() is not threading.main_thread():
        return (yield)  # signals reach the main thread only; the probes' own limits still hold

    def expire(signum: int, frame: FrameType | None) -> None:
        item.config.stash[_OVERRUN] += 1
        raise RunLimitExceeded(run_s, started=True)

    earlier, _ = signal.getitimer(signal.ITIMER_REAL)
    if earlier and earlier <= remaining:  # an alarm already armed fires first (pytest-timeout)
        return (yield)
    previous = signal.signal(signal.SIGALRM, expire)
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, remaining)
    try:
        return (yield)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if earlier:  # give the other alarm back what it had left
            signal.setitimer(signal.ITIMER_REAL, max(0.001, earlier - (time.monotonic() - t0)))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _phase(item))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    return (yield from _phase(item))


@pytest.hookimpl(tryfirst=True)
def pytest_keyboard_interrupt(excinfo: pytest.ExceptionInfo[BaseException]) -> None:
    """Ctrl-C answers within 2 s: mark it (the CLI then exits without tearing every module
    down), and unless ``--full-trace`` keep only the frame pytest prints: its terminal
    reporter renders every frame with its arguments first (~1 s on a loaded machine)."""
    if not excinfo.errisinstance(KeyboardInterrupt):  # pytest.exit (bad input): not an interrupt
        return
    interrupts.mark()
    shown = excinfo.traceback.filter(excinfo)  # what pytest would print: no hidden frames
    if shown and not _FULL_TRACE["on"]:
        excinfo.traceback = shown[-1:]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    n = config.stash.get(_OVERRUN, 0)
    if n:
        terminalreporter.write_line(f"pgproof: run time limit exceeded (timeouts.run_s): {n} "
                                    "check(s) did not finish and are errors")
