"""framework-<key>.html and .json: one run read by requirement (HIPAA, CIS, AWS FSBP).

An auditor asks "is 164.312(e)(1) met?", not "did TLS-1 pass?". This report groups the
run's per-control results under every requirement of the framework, each mapped control
with its verdict, evidence and any waiver, and lists the requirements no control covers as
"not covered by pgproof" so silence is never mistaken for compliance. It is derived from
results.json (already scrubbed of secrets), so it cannot disagree with the other reports.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.catalogue.frameworks import FRAMEWORK_DEFS, Framework
from pgproof.catalogue.model import PLATFORMS, Platform
from pgproof.catalogue.platforms import applies
from pgproof.catalogue.registry import CATALOGUE
from pgproof.report.history import GAMEDAY, all_runs, kind
from pgproof.report.html import page, table
from pgproof.report.summary import evidence_line, pre_last_cell, pre_last_cells

NOT_COVERED = "not covered by pgproof"
NOT_CHECKED = "not checked in this run"
PARTIAL = "partial"
JUDGED = ["fail", "error", "waived", "cannot-verify", "inherited", "pass", "skip"]  # worst first
# How old a game day may be and still stand for its controls in a check's framework report;
# said in the report, so an auditor knows what "HA-2: PASS" rests on.
GAMEDAY_WINDOW_DAYS = 30


def _control(cid: str, result: dict[str, Any] | None, gameday: dict[str, Any] | None,
             window_days: int) -> dict[str, Any]:
    c = CATALOGUE[cid]
    if result is None and gameday is not None:
        return {"id": cid, "title": c.title, "kind": c.kind, "verdict": gameday["verdict"],
                "note": f"from game day {gameday['scenario']} at {gameday['at']} "
                        f"(run {gameday['dir']}), the newest of this target within "
                        f"{window_days} days",
                "checks": gameday["checks"], "waivers": []}
    if result is None:
        how = (f"a game-day control: no game day of this target judged it within {window_days} days "
               "(`pgproof gameday` proves it)" if c.kind == "gameday" else "not part of this run")
        return {"id": cid, "title": c.title, "kind": c.kind, "verdict": "not-run", "note": how,
                "checks": [], "waivers": []}
    return {"id": cid, "title": c.title, "kind": c.kind, "verdict": result["verdict"],
            "checks": result.get("checks", []), "waivers": result.get("waivers", [])}


def _when(value: object) -> dt.datetime | None:
    try:
        t = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def gameday_verdicts(base: Path, target: object, since: dt.datetime) -> dict[str, dict[str, Any]]:
    """Per game-day control: the newest judged verdict of ``target`` from game days that ended
    at or after ``since`` (history.jsonl under ``base``), with the evidence its journal gives."""
    out: dict[str, dict[str, Any]] = {}
    for run in all_runs(base / "history.jsonl"):
        at = _when(run.get("at"))
        if kind(run) != GAMEDAY or run.get("target") != target or at is None or at < since:
            continue
        evidence = _journal_evidence(base / str(run.get("dir")) / "journal.json")
        for cid, verdict in (run.get("verdicts") or {}).items():
            if cid not in CATALOGUE or verdict not in JUDGED:
                continue
            prev = out.get(cid)
            if prev is None or prev["_at"] <= at:
                checks = [{"check": f"gameday {run.get('scenario')}", "verdict": verdict,
                           "evidence": e} for e in evidence.get(cid, [])]
                out[cid] = {"_at": at, "at": at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                            "verdict": verdict, "scenario": run.get("scenario"),
                            "dir": run.get("dir"), "checks": checks}
    return out


def _journal_evidence(path: Path) -> dict[str, list[str]]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, list[str]] = {}
    for v in doc.get("verdicts") or [] if isinstance(doc, dict) else []:
        if isinstance(v, dict) and v.get("id"):
            out.setdefault(str(v["id"]), []).append(str(v.get("evidence") or ""))
    return out


def _status(controls: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """(status, unchecked IDs): a fail or error speaks for itself; otherwise a requirement with
    an unchecked control is partial, never PASS; a waived control counts as checked (it is a
    documented exception, shown as WAIVED)."""
    if not controls:
        return NOT_COVERED, []
    verdicts = {c["verdict"] for c in controls}
    unchecked = [c["id"] for c in controls if c["verdict"] not in JUDGED]
    worst = next((v for v in JUDGED if v in verdicts), None)
    if worst in ("fail", "error"):
        return worst, unchecked
    if len(unchecked) == len(controls):
        return NOT_CHECKED, unchecked
    if unchecked:
        return PARTIAL, unchecked
    return str(worst), unchecked


def build(key: str, results: dict[str, Any], gamedays: dict[str, dict[str, Any]] | None = None,
          window_days: int = GAMEDAY_WINDOW_DAYS) -> dict[str, Any]:
    """The grouped report as data, from a results.json document and the game-day verdicts
    (``gameday_verdicts``) that stand for the game-day controls a check does not run."""
    fw = FRAMEWORK_DEFS[key]
    gamedays = gamedays or {}
    by_id = {c["id"]: c for c in results.get("controls", [])}
    requirements = []
    for rid, title in fw.requirements.items():
        mapped = [c.id for c in CATALOGUE.values() if rid in c.frameworks.get(key, ())]
        controls = [_control(cid, by_id.get(cid), gamedays.get(cid), window_days) for cid in mapped]
        status, unchecked = _status(controls)
        n = len(controls) - len(unchecked)
        checked = f"{n} of {len(controls)} mapped controls"
        if unchecked:
            checked += f"; not checked: {', '.join(unchecked)}"
        requirements.append({"id": rid, "title": title, "status": status, "checked": checked,
                             "checked_count": n, "mapped_count": len(controls),
                             "unchecked": unchecked, "controls": controls})
    summary: dict[str, int] = {}
    for r in requirements:
        summary[str(r["status"])] = summary.get(str(r["status"]), 0) + 1
    unmapped = [{"id": c.id, "title": c.title,
                 "reason": c.unmapped_reason or f"no {fw.name} requirement maps to it"}
                for c in CATALOGUE.values() if c.kind == "compliance" and not c.frameworks.get(key)]
    doc_platform = results.get("platform")
    platform: Platform | None = doc_platform if doc_platform in PLATFORMS else None
    return {"framework": key, "name": fw.name, "version": fw.version, "source": fw.source,
            "target": results.get("target"), "generated_at": results.get("generated_at"),
            "platform": platform,
            "partial": results.get("partial", False), "summary": summary,
            **({"coverage": coverage(fw, requirements, platform)} if fw.recommendations else {}),
            "gameday_window_days": window_days,
            "gameday_runs": sorted({f"{g['scenario']} ({g['dir']})" for g in gamedays.values()}),
            "requirements": requirements, "controls_without_requirement": unmapped}


COVERAGE = ("automated", "inherited", "manual", "not applicable", "not covered")


def _kind_of(fw: Framework, req: dict[str, Any], platform: Platform | None) -> str:
    """Where a requirement stands: judged by mapped controls (automated), the provider's on this
    platform (inherited), not existing there (not applicable), for a person (manual: the
    benchmark's Manual items no control maps to), or an Automated item pgproof has no control
    for (not covered)."""
    ids = [c["id"] for c in req["controls"]]
    if ids:
        on = ({applies(CATALOGUE[i], platform).status for i in ids} if platform is not None
              else {"inherited" if c["verdict"] == "inherited" else "checked"
                    for c in req["controls"]})
        if on == {"inherited"}:
            return "inherited"
        if on == {"n/a"}:
            return "not applicable"
        return "automated"
    rec = fw.recommendations.get(req["id"])
    return "manual" if rec is not None and rec.assessment == "Manual" else "not covered"


def coverage(fw: Framework, requirements: list[dict[str, Any]],
             platform: Platform | None) -> dict[str, Any]:
    """Per section of the benchmark: its requirements by coverage kind, counted and listed
    (automated ones with their controls' verdicts), and the totals."""
    sections: dict[str, dict[str, Any]] = {}
    totals = dict.fromkeys(COVERAGE, 0)
    for req in requirements:
        sid = fw.section_of(req["id"])
        sec = sections.setdefault(sid, {"id": sid, "title": fw.sections.get(sid, ""),
                                        **{k: [] for k in COVERAGE}})
        kind_ = _kind_of(fw, req, platform)
        entry: dict[str, Any] = {"id": req["id"], "title": req["title"]}
        rec = fw.recommendations.get(req["id"])
        if rec is not None:
            entry.update(assessment=rec.assessment, level=rec.level)
        if req["controls"]:
            entry["controls"] = {c["id"]: c["verdict"] for c in req["controls"]}
        if kind_ == "inherited" and platform is not None:
            entry["why"] = "; ".join(dict.fromkeys(applies(CATALOGUE[i], platform).why
                                                   for i in entry.get("controls", {})))
        sec[kind_].append(entry)
        totals[kind_] += 1
    return {"platform": platform, "totals": totals,
            "sections": [{**s, "counts": {k: len(s[k]) for k in COVERAGE}}
                         for s in sections.values()]}


def _coverage_html(cov: dict[str, Any]) -> str:
    def listing(entries: list[dict[str, Any]]) -> str:
        out = []
        for e in entries:
            ctl = ", ".join(f"{k} {v.upper()}" for k, v in e.get("controls", {}).items())
            out.append(f"{e['id']} {e['title']}" + (f" [{ctl}]" if ctl else ""))
        return "\n".join(out)

    rows = [[f"{s['id']} {s['title']}", *[f"{s['counts'][k]}\n{listing(s[k])}".strip()
                                          for k in COVERAGE]] for s in cov["sections"]]
    rows.append(["total", *[str(cov["totals"][k]) for k in COVERAGE]])
    where = cov["platform"] or "unknown platform"
    return (f"<h2>Coverage by section ({html.escape(where)})</h2><p>Automated: the requirement "
            "is judged by the controls listed (their verdicts in this run). Inherited: the "
            "provider manages it on this platform (its source is in each control's reason). "
            "Manual: a Manual recommendation of the benchmark no control judges (a person must). "
            "Not applicable: it does not exist on this platform. Not covered: an Automated "
            "recommendation pgproof has no control for.</p>"
            + pre_last_cells(table(["Section", *[k.capitalize() for k in COVERAGE]], rows), 5))


def status_text(req: dict[str, Any]) -> str:
    """What the Status column says: a judged verdict upper-cased, "partial: N of M checked"."""
    s = str(req["status"])
    if s == PARTIAL:
        return f"partial: {req['checked_count']} of {req['mapped_count']} checked"
    return s.upper() if s in JUDGED else s


def _controls_cell(req: dict[str, Any]) -> str:
    if not req["controls"]:
        return "no pgproof control maps to this requirement"
    out = []
    for c in req["controls"]:
        out.append(f"{c['id']} {c['title']}: {c['verdict'].upper()}")
        if c.get("note"):
            out.append(f"  {c['note']}")
        out += ["  " + evidence_line({"evidence": "", **ch}).replace("\n", "\n  ")
                for ch in c["checks"]]
    return "\n".join(out)


def render(doc: dict[str, Any]) -> str:
    head = table(["Framework", "Version", "Source", "Target", "Run"],
                 [[doc["name"], doc["version"], doc["source"], str(doc["target"]),
                   str(doc["generated_at"])]])
    head += table(["Requirement status", "Requirements"],
                  [[k.upper() if k in JUDGED else k, str(v)] for k, v in doc["summary"].items()])
    head += (f"<p>A requirement is PASS only when every control mapped to it was checked and "
             f"passed; with any unchecked it is 'partial: N of M checked' and names them. "
             f"Game-day controls (HA-2, BAK-6, MON-4, ...) are taken from the newest game day of "
             f"this target that ended within {doc['gameday_window_days']} days before this run "
             f"(or after it): {html.escape(', '.join(doc['gameday_runs']) or 'none found')}.</p>")
    if doc["partial"]:
        head += ("<p class='warn'>Partial run: controls left out of it show as "
                 f"'{NOT_CHECKED}', which says nothing about the requirement.</p>")
    rows = [[r["id"], r["title"], status_text(r), r["checked"], _controls_cell(r)]
            for r in doc["requirements"]]
    body = pre_last_cell(table(["Requirement", "Title", "Status", "Checked", "Controls and evidence"], rows))
    extra = table(["Control", "Title", "Why it has no requirement here"],
                  [[c["id"], c["title"], c["reason"]] for c in doc["controls_without_requirement"]])
    cov = _coverage_html(doc["coverage"]) if doc.get("coverage") else ""
    return page(f"pgproof {doc['name']}: {doc['target']}",
                head + cov + "<h2>Requirements</h2>" + body
                + "<h2>Controls with no requirement in this framework</h2>" + extra)


def write(d: Path, key: str, window_days: int = GAMEDAY_WINDOW_DAYS) -> list[Path]:
    """framework-<key>.json and .html next to the run's results.json; game-day controls from
    the history of the reports folder the run directory sits in."""
    results = json.loads((d / "results.json").read_text())
    run_at = _when(results.get("generated_at")) or dt.datetime.now(dt.UTC)
    since = run_at - dt.timedelta(days=window_days)
    doc = build(key, results, gameday_verdicts(d.parent, results.get("target"), since), window_days)
    js, page_ = d / f"framework-{key}.json", d / f"framework-{key}.html"
    fsio.write_text(js, json.dumps(doc, indent=2))
    fsio.write_text(page_, render(doc))
    return [js, page_]
