"""Per-control results: aggregate check verdicts, write results.json and the history line."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgproof import catalogue
from pgproof.verdict import Verdict
from pgproof.waivers import Waiver, decide, unmatched

# Worst first: one failing check makes the control fail.
# A control is only as verified as its least verified layer: a layer the target cannot
# show makes the whole control "cannot-verify", never a plain pass.
SEVERITY = [Verdict.FAIL, Verdict.ERROR, Verdict.CANNOT_VERIFY, Verdict.PASS, Verdict.SKIP]
NOT_CHECKED = "not-checked"  # selected, but no check produced a verdict (aborted run, -x)
NOT_SELECTED = "not-selected"  # left out of a partial run: says nothing about the control
WAIVED = "waived"  # a failure accepted by a valid waiver: compliant for the exit code, never "pass"
# Control verdict from its checks' verdicts once waivers are applied (worst first).
WORST = ["fail", "error", WAIVED, "cannot-verify", "pass", "skip"]


@dataclass
class CheckResult:
    nodeid: str
    controls: list[str]
    verdict: Verdict
    message: str = ""
    duration_s: float = 0.0
    database: str | None = None  # a fleet's "region/id": the check judged that database only


@dataclass
class ControlResult:
    id: str
    title: str
    verdict: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    waivers: list[dict[str, str]] = field(default_factory=list)  # what a waiver did, per check


def aggregate(results: Iterable[CheckResult], scope: Iterable[str] | None = None,
              selected: Iterable[str] | None = None) -> list[ControlResult]:
    """One entry per control in ``scope``: the worst verdict of its checks, not-checked, or
    not-selected (``scope`` defaults to every compliance control; ``selected`` to all of it)."""
    scope = list(catalogue.of_kind("compliance") if scope is None else scope)
    chosen = None if selected is None else set(selected)
    by_id: dict[str, list[CheckResult]] = {}
    extra: list[str] = []
    for r in results:
        for cid in r.controls:
            by_id.setdefault(cid, []).append(r)
            if cid not in scope and cid not in extra:
                extra.append(cid)
    out = []
    for cid in [*scope, *extra]:
        checks = by_id.get(cid, [])
        verdicts = {c.verdict for c in checks}
        unchecked = NOT_CHECKED if chosen is None or cid in chosen else NOT_SELECTED
        verdict = next((v.value for v in SEVERITY if v in verdicts), unchecked)
        out.append(ControlResult(cid, catalogue.title(cid), verdict, [
            {"check": c.nodeid, "verdict": c.verdict.value, "evidence": c.message,
             **({"database": c.database} if c.database else {})} for c in checks]))
    return out


def apply_waivers(controls_: list[ControlResult], waivers: list[Waiver],
                  today: dt.date) -> list[str]:
    """Turn each failing check a valid waiver covers into ``waived`` (with its justification),
    mark the ones an expired waiver would have covered, and recompute the control verdicts.

    Returns one warning sentence per waiver that matches nothing in this run."""
    if not waivers:
        return []
    seen: list[tuple[list[str], str]] = []
    for c in controls_:
        for ch in c.checks:
            seen.append(([c.id], ch["check"]))
            if ch["verdict"] != Verdict.FAIL.value:
                continue
            d = decide(waivers, [c.id], ch["check"], today)
            if d is None:
                continue
            ch["waiver"] = d.as_dict()
            if d.status == "valid":
                ch["verdict"] = WAIVED
            if ch["waiver"] not in c.waivers:
                c.waivers.append(ch["waiver"])
        if c.waivers:
            c.verdict = next(v for v in WORST if v in {ch["verdict"] for ch in c.checks})
    return unmatched(waivers, seen)


def exit_code(controls_: list[ControlResult]) -> int:
    """0 compliant, 1 non-compliant, 2 could not check: a scheduler can tell them apart.

    Only selected controls count: not-selected (and not-checked) never change the code; a
    control waived by a valid waiver counts as compliant (an expired waiver leaves it failing)."""
    verdicts = {c.verdict for c in controls_}
    if Verdict.FAIL in verdicts:
        return 1
    if Verdict.ERROR in verdicts:
        return 2
    return 0


def run_dir(base: Path, target: str, suffix: str = "") -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{target}" + (f"-{suffix}" if suffix else "")
    d = base / name
    n = 1
    while d.exists():
        n += 1
        d = base / f"{name}.{n}"
    d.mkdir(parents=True)
    return d


def point_latest(base: Path, d: Path) -> None:
    link = base / "latest"
    tmp = base / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(d.name)
    tmp.replace(link)


def write(d: Path, target: str, controls_: list[ControlResult], meta: dict[str, object],
          partial: bool = False) -> Path:
    """results.json plus one history line, both saying which controls the run selected.

    A run is partial when a control is not-selected, or when ``partial`` says some check of
    a selected control was left out (``-k`` picked one of its layers)."""
    summary: dict[str, int] = {}
    for c in controls_:
        summary[c.verdict] = summary.get(c.verdict, 0) + 1
    chosen = [c.id for c in controls_ if c.verdict != NOT_SELECTED]
    partial = partial or len(chosen) < len(controls_)
    doc = {"target": target, "generated_at": dt.datetime.now(dt.UTC).isoformat(), **meta,
           "partial": partial, "selected": chosen,
           "summary": summary, "exit_code": exit_code(controls_),
           "controls": [asdict(c) for c in controls_]}
    from pgproof.report.fleet import matrix  # a fleet run: which database fails what

    rows = matrix(controls_)
    if rows:
        doc["fleet"] = {"databases": len(rows), "matrix": rows}
    path = d / "results.json"
    path.write_text(json.dumps(doc, indent=2))
    history = d.parent / "history.jsonl"
    with history.open("a") as fh:
        fh.write(json.dumps({"at": doc["generated_at"], "target": target, "dir": d.name,
                             "partial": partial, "selected": chosen, "summary": summary,
                             "verdicts": {c.id: c.verdict for c in controls_}}) + "\n")
    return path


def scrub(paths: Iterable[Path], secrets: Iterable[str]) -> None:
    """Replace every known secret in the written reports: defence in depth, not the only guard."""
    words = [s for s in secrets if s and len(s) >= 4]
    if not words:
        return
    for p in paths:
        if not p.is_file():
            continue
        text = p.read_text(errors="replace")
        cleaned = text
        for w in words:
            cleaned = cleaned.replace(w, "********")
        if cleaned != text:
            p.write_text(cleaned)
