"""What every fault shares: an undo registered before the fault acts, run exactly once.

Each fault is a context manager. The undo goes on the fault's own stack first
(so a half-applied fault is still undone) and, when a caller passes
``undo_stack``, on the game day's stack as well, so Ctrl-C, SIGTERM or an
exception anywhere still unwinds it. A failed undo raises ``FaultUndoError``
saying what is still broken and how to fix it by hand.

When a game day has an active durable record (``pgproof.faults.record``), a fault
that passes ``durable=(kind, data)`` is written there before it acts and struck
off only after its undo succeeded, so ``pgproof gameday recover`` can undo it
after the runner was killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from pgproof.faults import record


class FaultUndoError(RuntimeError):
    """A fault could not be undone: the target is still degraded until fixed by hand."""

    def __init__(self, message: str, broken: str = "", fix: str = "") -> None:
        super().__init__(message)
        self.broken, self.fix = broken, fix


class Undo:
    """Idempotent undo: safe to register both on the fault's own stack and the caller's."""

    def __init__(self, action: Callable[[], object], broken: str, fix: str) -> None:
        self.action, self.broken, self.fix, self.done = action, broken, fix, False
        self.after: list[Callable[[], None]] = []  # run once the undo succeeded

    def __call__(self) -> None:
        if self.done:
            return
        try:
            self.action()
        except Exception as e:
            raise FaultUndoError(f"undo failed ({e}); still broken: {self.broken}. "
                                 f"Fix by hand: {self.fix}", self.broken, self.fix) from e
        self.done = True
        for cb in self.after:
            with contextlib.suppress(Exception):  # the undo itself worked; recover re-runs it harmlessly
                cb()


@contextlib.contextmanager
def fault(undo: Undo, act: Callable[[], object],
          undo_stack: contextlib.ExitStack | None = None,
          durable: tuple[str, dict[str, Any]] | None = None) -> Iterator[None]:
    rec = record.active()
    if rec is not None and durable is not None:
        fid = rec.add_fault(durable[0], durable[1], undo.broken, undo.fix)  # on disk before act()
        undo.after.append(lambda: rec.remove_fault(fid))
    if undo_stack is not None:
        undo_stack.callback(undo)
    with contextlib.ExitStack() as own:
        own.callback(undo)  # registered first: runs even if act() fails half-way or is interrupted
        act()
        yield
