"""Drift between scheduled runs: which controls changed verdict since the previous run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


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


def drift(history: Path, target: str) -> tuple[dict | None, dict | None, list[Change]]:  # type: ignore[type-arg]
    """(previous run, latest run, changed controls) for ``target``."""
    rs = runs(history, target)
    if len(rs) < 2:
        return (rs[-2] if len(rs) > 1 else None), (rs[-1] if rs else None), []
    prev, last = rs[-2], rs[-1]
    ids = list(dict.fromkeys([*prev["verdicts"], *last["verdicts"]]))
    changes = [Change(c, prev["verdicts"].get(c, "absent"), last["verdicts"].get(c, "absent"))
               for c in ids if prev["verdicts"].get(c) != last["verdicts"].get(c)]
    return prev, last, changes
