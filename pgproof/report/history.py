"""Drift between scheduled runs: which controls changed verdict since the previous run.

Only controls both runs selected are compared: a partial run (``--control``,
``-k``, ``-m``, a subset of files) says nothing about the controls it left out,
so a full run after it shows no spurious "not-selected -> pass".

Game days share ``history.jsonl`` (``"kind": "gameday"``, with the scenario and its
verdicts) so the index can show every run; drift only ever compares checks with
checks, because a game day judges other controls (HA-2, CH-LAT) by other means.
A line without ``kind`` is a check (lines written before game days joined).

A check that is no verdict of its target - interrupted (a signal, Ctrl-C), stopped
early (``-x``, ``--maxfail``), or run while a game day's fault was left on the target -
is recorded and shown, but drift never compares it: its "not-checked" controls say
nothing about drift, and a leftover fault's failures describe the fault.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgproof import fsio

NOT_SELECTED = "not-selected"
CHECK, GAMEDAY = "check", "gameday"
LATEST = {CHECK: "latest-check", GAMEDAY: "latest-gameday"}


@dataclass(frozen=True)
class Change:
    control: str
    before: str
    after: str


def kind(run: Mapping[str, Any]) -> str:
    return str(run.get("kind") or CHECK)


def all_runs(history: Path) -> list[dict]:  # type: ignore[type-arg]
    """Every line, oldest first; a torn last line (a run killed mid-write) is skipped, not fatal."""
    if not history.exists():
        return []
    rows = []
    for line in history.read_text().splitlines():
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def runs(history: Path, target: str, of: str | None = CHECK) -> list[dict]:  # type: ignore[type-arg]
    """Runs of ``target`` of one kind (default: checks, what drift compares; None: every kind)."""
    return [r for r in all_runs(history)
            if r.get("target") == target and (of is None or kind(r) == of)]


def _rank(verdict: str) -> int:
    order = ("fail", "error", "cannot-verify", "inherited", "skip", "pass")
    return order.index(verdict) if verdict in order else len(order)


def append_gameday(out: Path, journal: Mapping[str, Any]) -> dict[str, Any]:
    """One history line for a finished game day: scenario, overall verdict, per-control verdicts."""
    verdicts: dict[str, str] = {}  # a control judged once per item (MON-4: per alarm) keeps its worst
    for v in journal.get("verdicts") or []:
        if isinstance(v, dict) and v.get("id"):
            cid, new = str(v["id"]), str(v.get("verdict"))
            old = verdicts.get(cid)
            verdicts[cid] = new if old is None or _rank(new) < _rank(old) else old
    summary: dict[str, int] = {}
    for v in verdicts.values():
        summary[v] = summary.get(v, 0) + 1
    ended = journal.get("ended_at") or journal.get("started_at")
    at = (dt.datetime.fromtimestamp(float(ended), dt.UTC) if isinstance(ended, int | float)
          else dt.datetime.now(dt.UTC)).isoformat()
    line = {"at": at, "target": str(journal.get("target") or "?"), "dir": out.name,
            "kind": GAMEDAY, "scenario": str(journal.get("scenario") or "?"),
            "verdict": str(journal.get("verdict") or "incomplete"), "partial": False,
            "selected": list(verdicts), "summary": summary, "verdicts": verdicts}
    fsio.append_line(out.parent / "history.jsonl", json.dumps(line))
    return line


def point_kind_latest(base: Path, d: Path, of: str) -> Path:
    """``reports/latest-check`` or ``latest-gameday`` -> ``d``, swapped atomically.

    ``reports/latest`` stays the newest run of any kind (what it always meant);
    these two let a link or a script ask for one kind without guessing."""
    link = base / LATEST[of]
    tmp = base / f".{LATEST[of]}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(d.name)
    tmp.replace(link)
    return link


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


def incomplete(run: Mapping[str, Any]) -> str | None:
    """Why drift must skip this run (None: a complete verdict of the controls it selected)."""
    if run.get("interrupted"):
        return f"interrupted by {run.get('interrupted_by') or 'a signal'}"
    if run.get("stopped_early"):
        return f"stopped early ({run['stopped_early']})"
    if run.get("orphaned_fault"):
        return "run while a game day's fault was left on the target"
    return None


def comparable(history: Path, target: str) -> list[dict]:  # type: ignore[type-arg]
    """The checks of ``target`` that drift compares: every complete one, oldest first."""
    return [r for r in runs(history, target) if incomplete(r) is None]


def drift(history: Path, target: str) -> tuple[dict | None, dict | None, list[Change]]:  # type: ignore[type-arg]
    """(previous run, latest run, changed controls among those both selected) for ``target``.

    Only complete checks count: an interrupted, stopped-early or fault-polluted run is skipped."""
    rs = comparable(history, target)
    if len(rs) < 2:
        return (rs[-2] if len(rs) > 1 else None), (rs[-1] if rs else None), []
    prev, last = rs[-2], rs[-1]
    return prev, last, changes(prev, last)


def changes(prev: Mapping[str, Any], last: Mapping[str, Any]) -> list[Change]:
    """Controls both runs selected whose verdict differs, in first-seen order."""
    both, _ = compared(dict(prev), dict(last))
    pv, lv = prev.get("verdicts", {}), last.get("verdicts", {})
    return [Change(c, pv.get(c, "absent"), lv.get(c, "absent"))
            for c in both if pv.get(c) != lv.get(c)]
