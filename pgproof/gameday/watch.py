"""Open verdicts, and the loop that keeps load running until each one is decided.

A recovery is only a fact once it has held: throughput back at 90 % of the
baseline (HA-4), p95 back near its baseline (CH-LAT), steady state again
(HA-6). Each is a ``Condition`` that opens when it could start (writes back,
fault undone), is met at the start of a window that held ``window_s``
consecutive seconds, and is given up once its budget has run out. The runner
stops the load only when no condition is open, so no verdict is decided on
whatever seconds happened to be recorded before a fixed sleep ran out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pgproof.gameday import metrics
from pgproof.gameday.journal import Journal

STATS_LAG_S = 10.0  # per-second stats reach their file within ~1 s; give up on silence after this
POLL_S = 0.5


@dataclass
class Condition:
    """One recovery that must hold for ``window_s`` seconds within ``budget_s`` of ``start_at``."""

    name: str  # load | p95 | heal
    what: str  # the sentence of what must hold, e.g. "ok req/s >= 407 (90 % of 452)"
    window_s: int
    budget_s: float
    start_at: float | None = None  # when recovery could begin: writes back, fault undone
    since: str = ""  # what start_at is: "writes returned", "the undo"
    met_at: float | None = None  # start of the window that held
    held_s: float | None = None
    decided_at: float | None = None
    ok: bool | None = None
    note: str = ""

    @property
    def open(self) -> bool:
        return self.decided_at is None

    @property
    def deadline(self) -> float | None:
        return None if self.start_at is None else self.start_at + self.budget_s

    def after_start_s(self) -> float | None:
        return None if self.met_at is None or self.start_at is None else self.met_at - self.start_at

    def meet(self, at: float, held: float, now: float) -> None:
        self.met_at, self.held_s, self.decided_at, self.ok = at, held, now, True

    def give_up(self, now: float, note: str) -> None:
        self.decided_at, self.ok, self.note = now, False, note

    def sentence(self) -> str:
        """"recovered after X s, held Y s" or "not recovered within B s" (or why it never could)."""
        if self.ok:
            return (f"recovered {self.after_start_s():.1f} s after {self.since}, "
                    f"held {self.held_s:.0f} s")
        if self.open:
            return f"not decided: the run ended while waiting ({self.note or 'interrupted'})"
        if self.start_at is None:
            return f"not recovered: {self.note}"
        return f"not recovered within {self.budget_s:.0f} s of {self.since}" + \
            (f" ({self.note})" if self.note else "")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "deadline": self.deadline, "sentence": self.sentence()}


def judge_series(c: Condition, values: Sequence[tuple[float, float | None]],
                 good: Callable[[float | None], bool], broken: Callable[[float | None], bool],
                 now: float, dips: int = 1) -> None:
    """Decide ``c`` from per-second values if the data allows; leave it open otherwise."""
    if not c.open:
        return
    deadline = c.deadline
    if deadline is None:
        c.give_up(now, c.note or "it could not start")
        return
    eligible = [(t, v) for t, v in values if t >= c.start_at and t < deadline + c.window_s]  # type: ignore[operator]
    t = metrics.sustained(eligible, good, broken, c.window_s, dips)
    if t is not None and t <= deadline:
        c.meet(t, float(c.window_s), now)
        return
    last = max((t for t, _ in values), default=None)
    if last is not None and last + 1 >= deadline + c.window_s:
        c.give_up(now, "")
    elif now > deadline + c.window_s + STATS_LAG_S:
        c.give_up(now, "no per-second load stats arrived")


class Streak:
    """A sampled yes/no condition (steady state): met once consecutive yes samples span the window."""

    def __init__(self, c: Condition) -> None:
        self.c, self.samples = c, 0
        self.since_ok: float | None = None

    def sample(self, ok: bool, detail: str, now: float) -> None:
        c, deadline = self.c, self.c.deadline
        if not c.open or deadline is None:
            return
        if ok:
            self.since_ok = now if self.since_ok is None else self.since_ok
            self.samples += 1
        else:
            self.since_ok, self.samples = None, 0
        start = self.since_ok
        if start is not None and start <= deadline and now - start >= c.window_s and self.samples >= 3:
            c.meet(start, now - start, now)
        elif (start is None and now > deadline) or (start is not None and start > deadline):
            c.give_up(now, f"last check: {detail}")


def watch(j: Journal, conditions: Sequence[Condition], series_checks: dict[str, tuple[
          Callable[[], Sequence[tuple[float, float | None]]], Callable[[float | None], bool],
          Callable[[float | None], bool]]], steady: Callable[[], tuple[bool, str]] | None,
          heal: Streak | None) -> None:
    """Poll until every condition is decided; journal each decision as it happens."""
    pending = [c for c in conditions if c.open]
    while pending:
        now = time.time()
        for c in pending:
            if c.name in series_checks:
                values, good, broken = series_checks[c.name]
                judge_series(c, values(), good, broken, now)
        if heal is not None and heal.c.open and steady is not None:
            ok, detail = steady()
            heal.sample(ok, detail, time.time())
        for c in pending:
            if not c.open:
                j.event("watch", f"{c.name}: {c.sentence()}", c.what)
        pending = [c for c in pending if c.open]
        if pending:
            time.sleep(POLL_S)
