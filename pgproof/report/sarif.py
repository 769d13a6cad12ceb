"""results.sarif (SARIF 2.1.0): one rule per control, one result per failing check.

A failure a valid waiver covers is still a result, with ``suppressions[]`` (external,
accepted, the justification, owner and expiry), so code scanning shows it as dismissed for
a reason instead of hiding it; a failure whose waiver expired says so in its message.

GitHub code scanning shows an alert at the ``artifactLocation.uri`` of a result's first
location, so a finding about a live endpoint points at the config file actually used
(``--config``, ``$PGPROOF_CONFIG``, or the lab's ``.pgproof/lab/target.toml``), relative
to the repository root (the working directory's git root, or ``--sarif-root``), at the
line of its ``[targets.<name>]`` section, and names the endpoint as a
``logicalLocation``; a finding in the application's source (AUTH-4) points at that file
and line under ``SRCROOT``. ``partialFingerprints.primaryLocationLineHash`` is pgproof's
own, per target, control, resource and check, so alerts neither merge nor duplicate when
the config file is edited. ``automationDetails.id`` is ``pgproof-<target>/<run>``: code
scanning's category is the part before the last ``/``, ``pgproof-<target>``; an id in the
file wins over the upload action's ``category``, so the example workflow passes the same.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.catalogue import registry as catalogue
from pgproof.report.findings import Check, Run, control, framework_refs
from pgproof.report.results import NOT_CHECKED

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
CONFIG_URI = "pgproof.toml"  # when the file that defines the target is not known
INFORMATION_URI = "https://pypi.org/project/pgproof/"
HELP_URI = INFORMATION_URI  # rule help: the project page (its README links docs/controls.md)


def category(target: str) -> str:
    """The code-scanning category of a target's results (automationDetails.id up to its '/')."""
    return f"pgproof-{target}"


def section_line(path: Path, target: str) -> int:
    """1-based line of ``[targets.<target>]`` (or its first ``[targets.<target>.x]`` table);
    1 for a file that is one target (the lab's target.toml) or when no header names it."""
    name = re.escape(target)
    head = re.compile(rf"^\s*\[\s*targets\s*\.\s*(\"{name}\"|'{name}'|{name})\s*[\].]")
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return 1
    return next((i for i, line in enumerate(lines, 1) if head.match(line)), 1)


def config_location(run: Run) -> tuple[dict[str, Any], str | None]:
    """(physicalLocation of the target's definition, a warning when it cannot be relative)."""
    f = run.config_file
    if f is None:
        return {"artifactLocation": {"uri": CONFIG_URI}}, (
            f"the file defining target {run.target_name!r} is not known: results point at "
            f"{CONFIG_URI}")
    region = {"startLine": section_line(f, run.target_name)}
    root = run.repo_root
    if root is not None and f.is_relative_to(root.resolve()):
        uri = f.relative_to(root.resolve()).as_posix()
        return {"artifactLocation": {"uri": uri}, "region": region}, None
    return {"artifactLocation": {"uri": f.as_uri()}, "region": region}, (
        f"{f} is outside the repository root ({root or 'no git work tree; see --sarif-root'}): "
        "code scanning cannot show results at an absolute path")


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
        "helpUri": HELP_URI,
        "defaultConfiguration": {"level": "error"},
        "properties": {"layers": list(c.layers), "thresholds": list(c.thresholds),
                       "frameworks": frameworks, "kind": c.kind, "severity": c.severity,
                       "tags": ["compliance", "postgresql", *framework_refs(cid)]},
    }


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


def _line_hash(*parts: str) -> str:
    """``<16 hex>:1``, the shape GitHub computes; ours is per finding, not per line text."""
    return f"{_fingerprint(*parts)[:16]}:1"


def _results(run: Run, check: Check, rule_index: int,
             where: dict[str, Any]) -> list[dict[str, Any]]:
    """One result per finding sentence that names a file, else one for the whole check."""
    cloud = run.cloud_resource()
    resource = cloud.uid if cloud is not None else run.endpoint()
    logical = {"name": run.endpoint(), "fullyQualifiedName": f"{run.target_name}/{resource}",
               "kind": "resource"}
    base = {"ruleId": check.control, "ruleIndex": rule_index, "level": "error", "kind": "fail",
            "properties": {"check": check.nodeid, "target": run.target_name}}
    located = check.file_locations()
    if located:
        return [{**base, "message": {"text": text},
                 "locations": [{"physicalLocation": {
                     "artifactLocation": {"uri": loc.uri, "uriBaseId": "SRCROOT"},
                     "region": {"startLine": loc.line}}}],
                 "partialFingerprints": {
                     "pgproof/v1": _fingerprint(check.control, run.target_name, loc.uri,
                                                str(loc.line)),
                     "primaryLocationLineHash": _line_hash(check.control, run.target_name,
                                                           resource, loc.uri, str(loc.line))}}
                for loc, text in located]
    text = "\n".join(check.sentences()) or f"{check.name} failed"
    return [{**base, "message": {"text": text},
             "locations": [{"physicalLocation": where, "logicalLocations": [logical]}],
             "partialFingerprints": {
                 "pgproof/v1": _fingerprint(check.control, run.target_name, check.nodeid),
                 "primaryLocationLineHash": _line_hash(check.control, run.target_name, resource,
                                                       check.nodeid)}}]


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
    where, warning = config_location(run)
    for ch in run.checks():
        if ch.verdict in ("fail", "waived"):
            results += [_waived(r, ch) for r in _results(run, ch, index[ch.control], where)]
        elif ch.verdict == "error":  # could not check: say so, a clean log must not hide it
            notes.append({"level": "error", "message": {"text": ch.message or "could not check"},
                          "descriptor": {"id": ch.control},
                          "properties": {"check": ch.nodeid}})
        elif ch.verdict == "inherited":  # the provider's on this platform: no result, but said
            notes.append({"level": "note", "message": {"text": f"{ch.control} {ch.message}"},
                          "descriptor": {"id": ch.control},
                          "properties": {"check": ch.nodeid, "verdict": "inherited"}})
    failed = bool(notes)
    if warning and results:
        notes.append({"level": "warning", "message": {"text": warning}})
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
                            "semanticVersion": run.version, "informationUri": INFORMATION_URI,
                            "rules": [_rule(cid) for cid in ids]}},
        "automationDetails": {"id": f"{category(run.target_name)}/{run.run_id}"},
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
    fsio.write_text(path, fsio.json_text(build(run), 4))  # a result per line
    return path
