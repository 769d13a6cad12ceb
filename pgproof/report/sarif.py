"""results.sarif (SARIF 2.1.0): one rule per control, one result per failing check.

A failure a valid waiver covers is still a result, with ``suppressions[]`` (external,
accepted, the justification, owner and expiry), so code scanning shows it as dismissed for
a reason instead of hiding it; a failure whose waiver expired says so in its message.

GitHub code scanning needs a ``physicalLocation.artifactLocation.uri`` on every result,
so a finding about a live endpoint points at the file that defines the target
(``pgproof.toml``) and names the endpoint as a ``logicalLocation``; a finding in the
application's source (AUTH-4) points at that file and line under ``SRCROOT``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pgproof import catalogue, fsio
from pgproof.report.findings import Check, Run, control, framework_refs
from pgproof.report.results import NOT_CHECKED

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
CONFIG_URI = "pgproof.toml"  # where a target is defined, relative to the repository root


def _rule(cid: str) -> dict[str, Any]:
    c = control(cid)
    if c is None:
        return {"id": cid, "name": cid, "shortDescription": {"text": "unknown control"}}
    frameworks = {k: list(c.frameworks.get(k, ())) for k in catalogue.FRAMEWORKS}
    return {
        "id": c.id,
        "name": c.id.replace("-", ""),
        "shortDescription": {"text": c.title},
        "fullDescription": {"text": c.requirement},
        "help": {"text": c.remediation, "markdown": f"**Fix:** {c.remediation}"},
        "defaultConfiguration": {"level": "error"},
        "properties": {"layers": list(c.layers), "thresholds": list(c.thresholds),
                       "frameworks": frameworks, "kind": c.kind,
                       "tags": ["compliance", "postgresql", *framework_refs(cid)]},
    }


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _results(run: Run, check: Check, rule_index: int) -> list[dict[str, Any]]:
    """One result per finding sentence that names a file, else one for the whole check."""
    logical = {"name": run.endpoint(), "fullyQualifiedName": f"{run.target_name}/{run.endpoint()}",
               "kind": "resource"}
    base = {"ruleId": check.control, "ruleIndex": rule_index, "level": "error", "kind": "fail",
            "properties": {"check": check.nodeid, "target": run.target_name}}
    located = check.file_locations()
    if located:
        return [{**base, "message": {"text": text},
                 "locations": [{"physicalLocation": {
                     "artifactLocation": {"uri": loc.uri, "uriBaseId": "SRCROOT"},
                     "region": {"startLine": loc.line}}}],
                 "partialFingerprints": {"pgproof/v1": _fingerprint(
                     check.control, run.target_name, loc.uri, str(loc.line))}}
                for loc, text in located]
    text = "\n".join(check.sentences()) or f"{check.name} failed"
    return [{**base, "message": {"text": text},
             "locations": [{"physicalLocation": {"artifactLocation": {"uri": CONFIG_URI}},
                            "logicalLocations": [logical]}],
             "partialFingerprints": {"pgproof/v1": _fingerprint(
                 check.control, run.target_name, check.nodeid)}}]


def _waived(result: dict[str, Any], check: Check) -> dict[str, Any]:
    """Add what a waiver did: a suppression while it is valid, a sentence once it expired."""
    w = check.waiver
    if w is None:
        return result
    result["properties"] = {**result["properties"], "waiver": w}
    if w["status"] == "valid":
        result["suppressions"] = [{"kind": "external", "status": "accepted",
                                   "justification": w["justification"],
                                   "properties": {"owner": w["owner"], "expires": w["expires"],
                                                  "waiver": w["subject"]}}]
    else:
        result["message"] = {"text": f"{result['message']['text']}\n{w['note']}"}
    return result


def build(run: Run) -> dict[str, Any]:
    ids = [c.id for c in run.judged]
    index = {cid: i for i, cid in enumerate(ids)}
    results: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for ch in run.checks():
        if ch.verdict in ("fail", "waived"):
            results += [_waived(r, ch) for r in _results(run, ch, index[ch.control])]
        elif ch.verdict == "error":  # could not check: say so, a clean log must not hide it
            notes.append({"level": "error", "message": {"text": ch.message or "could not check"},
                          "descriptor": {"id": ch.control},
                          "properties": {"check": ch.nodeid}})
    failed = bool(notes)
    for c in run.controls:  # zero layers checked: not a clean pass, say so (not an error)
        if c.verdict == NOT_CHECKED:
            why = "; ".join(c.layers_not_checked.values()) or "no layer checked"
            notes.append({"level": "warning", "message": {"text": f"{c.id} not checked: {why}"},
                          "descriptor": {"id": c.id}})
    invocation: dict[str, Any] = {"executionSuccessful": not failed,
                                  "endTimeUtc": run.iso(),
                                  "toolExecutionNotifications": notes}
    run_doc: dict[str, Any] = {
        "tool": {"driver": {"name": "pgproof", "version": run.version,
                            "semanticVersion": run.version,
                            "rules": [_rule(cid) for cid in ids]}},
        "automationDetails": {"id": f"pgproof/{run.target_name}/{run.run_id}"},
        "invocations": [invocation],
        "results": results,
        "properties": {"target": run.target_name, "endpoint": run.endpoint(),
                       "layersNotChecked": run.not_checked()},
    }
    tree = run.target.source_tree if run.target is not None else None
    if tree is not None:
        run_doc["originalUriBaseIds"] = {"SRCROOT": {"uri": Path(tree).resolve().as_uri() + "/"}}
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [run_doc]}


def write(d: Path, run: Run) -> Path:
    path = d / "results.sarif"
    fsio.write_text(path, json.dumps(build(run), indent=2))
    return path
