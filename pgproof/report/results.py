"""Per-control results: aggregate check verdicts per layer, write results.json and the history line.

Each check observes one or more layers (``pgproof.layers``). A layer the target
does not configure is "not checked" with the reason; a control is judged on the
layers that were checked, and zero layers checked is never a pass.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.catalogue import registry as catalogue
from pgproof.verdict import Verdict
from pgproof.waivers import Waiver, decide, unmatched

# The run directories this process wrote, newest last: `pgproof check` reads its own run here,
# never reports/latest-check, which a run beside it may have moved meanwhile.
RUNS_WRITTEN: list[Path] = []

# Worst first: one failing check makes the control fail.
# A control is only as verified as its least verified layer: a layer the target cannot
# show makes the whole control "cannot-verify", never a plain pass.
SEVERITY = [Verdict.FAIL, Verdict.ERROR, Verdict.CANNOT_VERIFY, Verdict.INHERITED, Verdict.PASS,
            Verdict.SKIP]
NOT_CHECKED = Verdict.NOT_CHECKED.value  # selected, but no layer checked (not configured, -x)
NOT_SELECTED = "not-selected"  # left out of a partial run: says nothing about the control
WAIVED = "waived"  # a failure accepted by a valid waiver: compliant for the exit code, never "pass"
# Control verdict from its checks' verdicts once waivers are applied (worst first).
WORST = ["fail", "error", WAIVED, "cannot-verify", "inherited", "pass", "skip"]
INHERITED = Verdict.INHERITED.value  # the provider's on this platform: compliant for the code, never "pass"


@dataclass
class CheckResult:
    nodeid: str
    controls: list[str]
    verdict: Verdict
    message: str = ""
    duration_s: float = 0.0
    layers: list[str] = field(default_factory=list)  # empty: every layer of its controls
    reasons: dict[str, str] = field(default_factory=dict)  # not-checked or n/a on the platform: layer -> why
    database: str | None = None  # a fleet's "region/id": the check judged that database only


@dataclass
class ControlResult:
    id: str
    title: str
    verdict: str
    checks: list[dict[str, Any]] = field(default_factory=list)
    waivers: list[dict[str, str]] = field(default_factory=list)  # what a waiver did, per check
    # One row per layer: {"layer", "verdict", "reason"} (reason only where not checked).
    layers: list[dict[str, str]] = field(default_factory=list)
    layers_checked: list[str] = field(default_factory=list)
    layers_not_checked: dict[str, str] = field(default_factory=dict)


def _worst(checks: Iterable[CheckResult]) -> str | None:
    """The worst verdict among checks that looked (not-checked ones say nothing)."""
    seen = {c.verdict for c in checks}
    return next((v.value for v in SEVERITY if v in seen), None)


CLOUD_LAYERS = ("aws", "azure")


def by_layer(cid: str, checks: list[CheckResult], selected: bool = True) -> list[dict[str, str]]:
    """Per-layer verdicts of one control: the catalogue's layers first, then any other seen."""
    names = list(catalogue.CATALOGUE[cid].layers) if cid in catalogue.CATALOGUE else []
    names += [n for c in checks for n in c.layers if n not in names]
    rows = []
    for name in names:
        mine = [c for c in checks if name in c.layers or not c.layers]
        verdict = _worst(mine)
        if verdict is not None:
            row = {"layer": name, "verdict": verdict}
            if verdict == Verdict.SKIP.value and all(c.reasons.get(name) for c in mine):
                row["reason"] = mine[0].reasons[name]  # n/a on the platform: never looked at
            rows.append(row)
            continue
        reasons = [c.reasons.get(name) or c.message for c in mine
                   if c.verdict is Verdict.NOT_CHECKED and (c.message or c.reasons)]
        why = (reasons[0] if reasons else f"{name} layer not checked: "
               + ("no check of it ran (deselected, or the run stopped early)" if selected
                  else "control not selected in this run"))
        rows.append({"layer": name, "verdict": NOT_CHECKED, "reason": why})
    # Cloud layers are alternatives: a target is on AWS or on Azure, so once one cloud's layer
    # was checked the other's absence is not a gap in this control's evidence.
    if any(r["layer"] in CLOUD_LAYERS and r["verdict"] != NOT_CHECKED for r in rows):
        rows = [r for r in rows if not (r["layer"] in CLOUD_LAYERS and r["verdict"] == NOT_CHECKED)]
    return rows


def aggregate(results: Iterable[CheckResult], scope: Iterable[str] | None = None,
              selected: Iterable[str] | None = None) -> list[ControlResult]:
    """One entry per control in ``scope``: the worst verdict of its checked layers, not-checked
    (no layer checked), or not-selected (``scope`` defaults to every compliance control;
    ``selected`` to all of it)."""
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
        is_chosen = chosen is None or cid in chosen
        verdict = _worst(checks) or (NOT_CHECKED if is_chosen else NOT_SELECTED)
        rows = by_layer(cid, checks, is_chosen)
        out.append(ControlResult(
            cid, catalogue.title(cid), verdict,
            [{"check": c.nodeid, "verdict": c.verdict.value, "evidence": c.message,
              "layers": list(c.layers), **({"database": c.database} if c.database else {})}
             for c in checks],
            layers=rows,  # an inherited layer was not looked at: neither checked nor a gap
            layers_checked=[r["layer"] for r in rows
                            if r["verdict"] not in (NOT_CHECKED, INHERITED) and "reason" not in r],
            layers_not_checked={r["layer"]: r["reason"] for r in rows
                                if r["verdict"] == NOT_CHECKED}))
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
            _rejudge_layers(c)
    return unmatched(waivers, seen)


def _rejudge_layers(c: ControlResult) -> None:
    """After waivers: each checked layer takes the worst of its checks' verdicts again, so a
    layer whose only failure is waived reads ``waived`` (never ``pass``)."""
    for row in c.layers:
        if row["verdict"] == NOT_CHECKED:
            continue
        seen = {ch["verdict"] for ch in c.checks
                if row["layer"] in ch.get("layers", ()) or not ch.get("layers")}
        row["verdict"] = next((v for v in WORST if v in seen), row["verdict"])


def exit_code(controls_: list[ControlResult]) -> int:
    """0 compliant, 1 non-compliant, 2 could not check: a scheduler can tell them apart.

    Only selected controls count: not-selected (and not-checked) never change the code, except
    that a run in which no selected control had any layer checked is 2, never compliant; a
    control waived by a valid waiver counts as compliant (an expired waiver leaves it failing)."""
    verdicts = {c.verdict for c in controls_}
    if Verdict.FAIL in verdicts:
        return 1
    if Verdict.ERROR in verdicts:
        return 2
    if verdicts - {NOT_SELECTED} == {NOT_CHECKED}:  # zero layers checked is never a pass
        return 2
    return 0


def run_code(controls_: list[ControlResult], interrupted: bool = False,
             stopped_early: str | None = None, orphaned_fault: str | None = None) -> int:
    """The run's exit code: its controls' code, unless the run is no verdict of the target.

    Interrupted (a signal, a KeyboardInterrupt) or run beside a fault left on the target: 2.
    Stopped early (``-x``, ``--maxfail``): 1 if a control failed (a failure stays a failure),
    else 2, never 0: the checks that did not run might have failed."""
    if interrupted or orphaned_fault:
        return 2
    code = exit_code(controls_)
    return 2 if stopped_early and code == 0 else code


def run_dir(base: Path, target: str, suffix: str = "") -> Path:
    """A new directory of its own, even when another run of the same target starts this second."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{target}" + (f"-{suffix}" if suffix else "")
    base.mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        d = base / (name if n == 1 else f"{name}.{n}")
        try:
            d.mkdir()
        except FileExistsError:
            continue
        return d
    raise FileExistsError(f"{base / name}: 999 run directories of this second already exist")


def point_latest(base: Path, d: Path) -> None:
    link = base / "latest"
    tmp = base / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(d.name)
    tmp.replace(link)


# What makes a run no verdict of its target (results.json and its history line carry them).
INCOMPLETE_KEYS = ("interrupted", "interrupted_by", "interrupted_at", "stopped_early",
                   "orphaned_fault")


def write(d: Path, target: str, controls_: list[ControlResult], meta: dict[str, object],
          partial: bool = False) -> Path:
    """results.json plus one history line, both saying which controls the run selected.

    A run is partial when a control is not-selected, or when ``partial`` says some check of
    a selected control was left out (``-k`` picked one of its layers), or when it stopped
    before every check ran. ``meta`` may say why the run is no verdict (``interrupted`` with
    ``interrupted_by``/``interrupted_at``, ``stopped_early``, ``orphaned_fault``): the exit
    code then follows :func:`run_code`, and drift skips the run."""
    summary: dict[str, int] = {}
    for c in controls_:
        summary[c.verdict] = summary.get(c.verdict, 0) + 1
    chosen = [c.id for c in controls_ if c.verdict != NOT_SELECTED]
    meta = {"interrupted": False, "stopped_early": None, "orphaned_fault": None, **meta}
    partial = partial or len(chosen) < len(controls_) or bool(meta["interrupted"]
                                                              or meta["stopped_early"])
    code = run_code(controls_, bool(meta["interrupted"]), meta["stopped_early"],  # type: ignore[arg-type]
                    meta["orphaned_fault"])  # type: ignore[arg-type]
    doc = {"target": target, "generated_at": dt.datetime.now(dt.UTC).isoformat(), **meta,
           "partial": partial, "selected": chosen,
           "summary": summary, "exit_code": code,
           "controls": [asdict(c) for c in controls_]}
    rows = matrix(controls_)  # a fleet run: which database fails what
    if rows:
        doc["fleet"] = {"databases": len(rows), "matrix": rows}
    path = d / "results.json"
    fsio.write_text(path, fsio.json_text(doc, 4))  # a check, a fleet row per line
    history = d.parent / "history.jsonl"
    fsio.append_line(history, json.dumps({"at": doc["generated_at"], "target": target, "dir": d.name,
                                          "partial": partial, "selected": chosen, "summary": summary,
                                          "exit_code": code,
                                          **{k: meta[k] for k in INCOMPLETE_KEYS if meta.get(k)},
                                          "verdicts": {c.id: c.verdict for c in controls_}}))
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
            fsio.write_text(p, cleaned)


# A fleet's database x control matrix (results.json "fleet", summary, report/fleet.py renders
# it): with 200 databases a control's single verdict says nothing about which one to fix.
RANK = {v: i for i, v in enumerate([*WORST, "not-checked"])}


def matrix(controls_: list[ControlResult]) -> list[dict[str, Any]]:
    """One row per database: its worst verdict, counts, and each control's verdict on it."""
    rows: dict[str, dict[str, str]] = {}
    for c in controls_:
        for ch in c.checks:
            db = ch.get("database")
            if not db:
                continue
            cur = rows.setdefault(db, {}).get(c.id)
            v = ch["verdict"]
            if cur is None or RANK.get(v, 99) < RANK.get(cur, 99):
                rows[db][c.id] = v
    out: list[dict[str, Any]] = []
    for db, verdicts in rows.items():
        counts: dict[str, int] = {}
        for v in verdicts.values():
            counts[v] = counts.get(v, 0) + 1
        worst = min(verdicts.values(), key=lambda v: RANK.get(v, 99))
        out.append({"database": db, "worst": worst, "counts": counts, "controls": verdicts})
    out.sort(key=lambda r: (RANK.get(r["worst"], 99), -r["counts"].get(r["worst"], 0), r["database"]))
    return out
