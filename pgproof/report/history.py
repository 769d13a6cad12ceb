"""Drift between scheduled runs: which controls changed verdict since the previous run.

Only controls both runs selected are compared: a partial run (``--control``,
``-k``, ``-m``, a subset of files) says nothing about the controls it left out,
so a full run after it shows no spurious "not-selected -> pass".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

NOT_SELECTED = "not-selected"


@dataclass(frozen=True)
class Change:
    control: str
    before: str
    after: str


def runs(history: Path, target: str) -> list[dict]:  # type: ignore[type-arg]
    if not history.exists():
        return []
    rows = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("target") == target]


def selected(run: dict) -> list[str]:  # type: ignore[type-arg]
    """Controls a history line selected (older lines without ``selected``: every listed one)."""
    verdicts = run.get("verdicts", {})
    ids = run["selected"] if "selected" in run else list(verdicts)
    return [c for c in ids if verdicts.get(c, NOT_SELECTED) != NOT_SELECTED]


def compared(prev: dict, last: dict) -> tuple[list[str], list[str]]:  # type: ignore[type-arg]
    """(controls both runs selected, controls only one of them did), in first-seen order."""
    a, b = selected(prev), selected(last)
    ids = list(dict.fromkeys([*prev.get("verdicts", {}), *last.get("verdicts", {}), *a, *b]))
    both = [c for c in ids if c in a and c in b]
    return both, [c for c in ids if c not in both and (c in a or c in b)]


def drift(history: Path, target: str) -> tuple[dict | None, dict | None, list[Change]]:  # type: ignore[type-arg]
    """(previous run, latest run, changed controls among those both selected) for ``target``."""
    rs = runs(history, target)
    if len(rs) < 2:
        return (rs[-2] if len(rs) > 1 else None), (rs[-1] if rs else None), []
    prev, last = rs[-2], rs[-1]
    both, _ = compared(prev, last)
    pv, lv = prev["verdicts"], last["verdicts"]
    changes = [Change(c, pv.get(c, "absent"), lv.get(c, "absent"))
               for c in both if pv.get(c) != lv.get(c)]
    return prev, last, changes
