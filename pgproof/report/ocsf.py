"""findings.ocsf.json: OCSF Detection Findings (class 2004), one per judged check.

Shaped as Prowler emits them (``prowler/lib/outputs/ocsf``, built on py-ocsf-models):
a JSON array, ``status_code`` carrying the check's verdict, the database as the resource
(its ARN or Azure resource ID as ``uid``, the account or subscription in ``cloud.account``;
the endpoint in ``resources[].data``) and ``unmapped`` for what OCSF has no field for (the
control's framework references, thresholds). Severity is the control's own (catalogue),
whatever the verdict, as Prowler does with its checks' metadata. Passing checks are
findings too, so a SIEM sees them resolve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.catalogue.model import SEVERITY_IDS
from pgproof.report.findings import Check, Run, control, framework_refs

OCSF_VERSION = "1.5.0"  # the version py-ocsf-models 0.10 (Prowler's model) implements
CLASS_UID, CATEGORY_UID, ACTIVITY_CREATE = 2004, 2, 1
# status_id: 1 New (open), 3 Suppressed (a failure a valid waiver accepts), 4 Resolved
# (compliant), 99 Other (could not judge). A waived check still failed: status_code FAIL.
# An inherited check (the provider's on this platform) is 99 Other, status_code INHERITED.
STATUS = {"fail": (1, "New"), "waived": (3, "Suppressed"), "pass": (4, "Resolved"),
          "inherited": (99, "Other")}


def _finding(run: Run, ch: Check, t: int) -> dict[str, Any]:
    c = control(ch.control)
    failed = "fail" if ch.verdict == "waived" else ch.verdict
    severity = c.severity if c is not None else "medium"
    sev_id, sev = SEVERITY_IDS[severity], severity.capitalize()
    st_id, st = STATUS.get(ch.verdict, (99, "Other"))
    text = "; ".join([*ch.sentences(), *([ch.waiver["note"]] if ch.waiver else [])]) or ch.verdict
    cloud = run.cloud_resource()
    doc: dict[str, Any] = {
        "message": text,
        "activity_id": ACTIVITY_CREATE, "activity_name": "Create",
        "category_uid": CATEGORY_UID, "category_name": "Findings",
        "class_uid": CLASS_UID, "class_name": "Detection Finding",
        "type_uid": CLASS_UID * 100 + ACTIVITY_CREATE, "type_name": "Detection Finding: Create",
        "severity_id": sev_id, "severity": sev,
        "status_id": st_id, "status": st, "status_code": failed.upper(), "status_detail": text,
        "time": t, "time_dt": run.iso(),
        "finding_info": {
            "uid": f"pgproof-{run.target_name}-{ch.control}-{ch.nodeid}",
            "title": f"{ch.control}: {c.title if c else 'unknown control'}",
            "desc": c.requirement if c else "",
            "types": ["compliance", ch.control],
            "created_time": t, "created_time_dt": run.iso(),
        },
        "metadata": {
            "event_code": ch.control,
            "product": {"uid": "pgproof", "name": "pgproof", "vendor_name": "pgproof",
                        "version": run.version},
            "profiles": ["datetime"] + (["cloud"] if cloud else []),
            "version": OCSF_VERSION,
        },
        "resources": [_resource(run, ch)],
        "unmapped": {"check": ch.nodeid, "target": run.target_name, "run": run.run_id,
                     "compliance": framework_refs(ch.control),
                     "layers": list(c.layers) if c else [],
                     "layers_not_checked": run.not_checked().get(ch.control, {}),
                     "thresholds": list(c.thresholds) if c else []},
    }
    if ch.waiver is not None:
        doc["unmapped"]["waiver"] = ch.waiver
    if c is not None:
        doc["remediation"] = {"desc": c.remediation}
    if cloud is not None:
        doc["cloud"] = {"provider": cloud.provider, **({"region": cloud.region} if cloud.region else {}),
                        **({"account": {"uid": cloud.account, "name": cloud.account,
                                        "type": "AWS Account" if cloud.provider == "aws"
                                        else "Azure AD Account",
                                        "type_id": 10 if cloud.provider == "aws" else 6}}
                           if cloud.account else {})}
    return doc


def _resource(run: Run, ch: Check) -> dict[str, Any]:
    """The database: its ARN / Azure resource ID when it has one, else the endpoint."""
    cloud = run.cloud_resource()
    data: dict[str, Any] = {"endpoint": run.endpoint()}
    if cloud is not None:
        res: dict[str, Any] = {"uid": cloud.uid, "name": cloud.name, "type": cloud.type,
                               "cloud_partition": "aws" if cloud.provider == "aws" else None,
                               "region": cloud.region, "group": {"name": "postgresql"}}
        res = {k: v for k, v in res.items() if v is not None}
    else:
        res = {"uid": run.endpoint(), "name": run.target_name, "type": "PostgreSQL",
               "group": {"name": "postgresql"}}
    located = ch.file_locations()
    if located:
        data["files"] = [f"{loc.uri}:{loc.line}" for loc, _ in located]
    res["data"] = data
    return res


def build(run: Run) -> list[dict[str, Any]]:
    t = int(run.generated_at.timestamp() * 1000)  # OCSF timestamps are epoch milliseconds
    return [_finding(run, ch, t) for ch in run.checks()]


def write(d: Path, run: Run) -> Path:
    path = d / "findings.ocsf.json"
    fsio.write_text(path, fsio.json_text(build(run), 1))  # a finding per line
    return path
