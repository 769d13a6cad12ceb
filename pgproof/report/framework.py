"""framework-<key>.html and .json: one run read by requirement (HIPAA, CIS, AWS FSBP).

An auditor asks "is 164.312(e)(1) met?", not "did TLS-1 pass?". This report groups the
run's per-control results under every requirement of the framework, each mapped control
with its verdict, evidence and any waiver, and lists the requirements no control covers as
"not covered by pgproof" so silence is never mistaken for compliance. It is derived from
results.json (already scrubbed of secrets), so it cannot disagree with the other reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.catalogue import CATALOGUE
from pgproof.catalogue.frameworks import FRAMEWORK_DEFS
from pgproof.report.html import page, table
from pgproof.report.summary import evidence_line, pre_last_cell

NOT_COVERED = "not covered by pgproof"
NOT_CHECKED = "not checked in this run"
JUDGED = ["fail", "error", "waived", "cannot-verify", "pass", "skip"]  # worst first


def _control(cid: str, result: dict[str, Any] | None) -> dict[str, Any]:
    c = CATALOGUE[cid]
    if result is None:
        how = ("a game-day control: `pgproof gameday` proves it" if c.kind == "gameday"
               else "not part of this run")
        return {"id": cid, "title": c.title, "kind": c.kind, "verdict": "not-run", "note": how,
                "checks": [], "waivers": []}
    return {"id": cid, "title": c.title, "kind": c.kind, "verdict": result["verdict"],
            "checks": result.get("checks", []), "waivers": result.get("waivers", [])}


def build(key: str, results: dict[str, Any]) -> dict[str, Any]:
    """The grouped report as data, from a results.json document."""
    fw = FRAMEWORK_DEFS[key]
    by_id = {c["id"]: c for c in results.get("controls", [])}
    requirements = []
    for rid, title in fw.requirements.items():
        mapped = [c.id for c in CATALOGUE.values() if rid in c.frameworks.get(key, ())]
        controls = [_control(cid, by_id.get(cid)) for cid in mapped]
        verdicts = {c["verdict"] for c in controls}
        judged = [c for c in controls if c["verdict"] in JUDGED]
        status = (NOT_COVERED if not mapped else
                  next((v for v in JUDGED if v in verdicts), NOT_CHECKED))
        requirements.append({"id": rid, "title": title, "status": status,
                             "checked": f"{len(judged)} of {len(controls)} mapped controls",
                             "controls": controls})
    summary: dict[str, int] = {}
    for r in requirements:
        summary[r["status"]] = summary.get(r["status"], 0) + 1
    unmapped = [{"id": c.id, "title": c.title,
                 "reason": c.unmapped_reason or f"no {fw.name} requirement maps to it"}
                for c in CATALOGUE.values() if c.kind == "compliance" and not c.frameworks.get(key)]
    return {"framework": key, "name": fw.name, "version": fw.version, "source": fw.source,
            "target": results.get("target"), "generated_at": results.get("generated_at"),
            "partial": results.get("partial", False), "summary": summary,
            "requirements": requirements, "controls_without_requirement": unmapped}


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
    if doc["partial"]:
        head += ("<p class='warn'>Partial run: controls left out of it show as "
                 f"'{NOT_CHECKED}', which says nothing about the requirement.</p>")
    rows = [[r["id"], r["title"], r["status"].upper() if r["status"] in JUDGED else r["status"],
             r["checked"], _controls_cell(r)] for r in doc["requirements"]]
    body = pre_last_cell(table(["Requirement", "Title", "Status", "Checked", "Controls and evidence"], rows))
    extra = table(["Control", "Title", "Why it has no requirement here"],
                  [[c["id"], c["title"], c["reason"]] for c in doc["controls_without_requirement"]])
    return page(f"pgproof {doc['name']}: {doc['target']}",
                head + "<h2>Requirements</h2>" + body
                + "<h2>Controls with no requirement in this framework</h2>" + extra)


def write(d: Path, key: str) -> list[Path]:
    """framework-<key>.json and .html next to the run's results.json."""
    doc = build(key, json.loads((d / "results.json").read_text()))
    js, page_ = d / f"framework-{key}.json", d / f"framework-{key}.html"
    fsio.write_text(js, json.dumps(doc, indent=2))
    fsio.write_text(page_, render(doc))
    return [js, page_]
