"""findings.asff.json: AWS Security Finding Format, one finding per judged control.

Per control, not per check, so Security Hub keeps one finding per control and database
and can resolve it: the ``Id`` is stable across runs and unique per account, region,
database and control (``<resource ARN>/pgproof/<control>``: two targets of the same name
in one account, or one database name in two regions, never collide), a passing control is imported with
``Compliance.Status = PASSED`` (severity INFORMATIONAL), a failing one FAILED. The
control ID is in ``Compliance.SecurityControlId``, ``RelatedRequirements``, ``GeneratorId``
and ``ProductFields``. Field limits are the documented ones (Title 256, Description 1024).
A control a valid waiver covers stays FAILED with ``Workflow.Status = SUPPRESSED`` and the
justification as the finding's ``Note``; once the waiver expires the finding goes back to NEW.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.report.findings import Run, control, framework_refs
from pgproof.report.results import NOT_CHECKED, WAIVED, ControlResult
from pgproof.report.summary import evidence_line

SCHEMA_VERSION = "2018-10-08"
# WARNING: the check ran but cannot tell (cannot-verify); NOT_AVAILABLE: it could not run
# (error: unreachable) or does not apply (skip).
# An inherited control (the provider's on this platform) is NOT_AVAILABLE, never PASSED: the
# ProductFields' pgproof/Verdict and the Description say whose it is and where that is written.
COMPLIANCE = {"pass": "PASSED", "fail": "FAILED", WAIVED: "FAILED", "cannot-verify": "WARNING",
              "inherited": "NOT_AVAILABLE"}
# A failure carries the control's own severity (catalogue); a pass is INFORMATIONAL as Security
# Hub's own controls report passed findings; "could not check" MEDIUM (compliance unknown).
FAILED_VERDICTS = ("fail", WAIVED)
BASE_TYPE = "Software and Configuration Checks/Industry and Regulatory Standards"
TYPES = {"hipaa": f"{BASE_TYPE}/HIPAA Controls",
         "fsbp": "Software and Configuration Checks/AWS Security Best Practices"}


def product_arn(region: str, account: str) -> str:
    """The account's own default product: what BatchImportFindings accepts for custom findings."""
    return f"arn:aws:securityhub:{region}:{account}:product/{account}/default"


def _resource(run: Run, account: str, region: str) -> dict[str, Any]:
    res = run.cloud_resource()
    if res is not None and res.provider == "aws" and res.uid.startswith("arn:"):
        return {"Type": res.type, "Partition": "aws", "Region": res.region or region,
                "Id": res.uid, "Details": {"Other": {"Endpoint": run.endpoint()}}}
    return {"Type": "Other", "Partition": "aws", "Region": region,
            "Id": f"{account}/{region}/{run.endpoint()}"}


def finding_id(resource_id: str, control_id: str) -> str:
    """Unique per account, region and database (all in the resource ID) and control."""
    return f"{resource_id}/pgproof/{control_id}"[:512]


def _severity(c: ControlResult) -> str:
    entry = control(c.id)
    if c.verdict in FAILED_VERDICTS:
        return entry.severity.upper() if entry is not None else "HIGH"
    return "MEDIUM" if c.verdict == "error" else "INFORMATIONAL"


def _description(c: ControlResult) -> str:
    lines = [evidence_line({"evidence": "", **ch}) for ch in c.checks
             if ch["verdict"] != NOT_CHECKED]
    lines += list(c.layers_not_checked.values())  # a pass on one layer is not a pass on all
    text = "\n".join(lines) or f"{c.id}: {c.verdict}"
    return text if len(text) <= 1024 else text[:1021] + "..."


def _finding(run: Run, c: ControlResult, account: str, region: str) -> dict[str, Any]:
    entry = control(c.id)
    title = f"{c.id}: {c.title}"
    types = sorted({TYPES[k] for k in (entry.frameworks if entry else {}) if k in TYPES}
                   or {BASE_TYPE})
    resource = _resource(run, account, region)
    f: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": finding_id(resource["Id"], c.id),
        "ProductArn": product_arn(region, account),
        "ProductName": "pgproof", "CompanyName": "pgproof",
        "GeneratorId": f"pgproof-{c.id}",
        "AwsAccountId": account,
        "Types": types,
        "CreatedAt": run.iso(), "UpdatedAt": run.iso(),
        "Severity": {"Label": _severity(c)},
        "Title": title[:256],
        "Description": _description(c),
        "Resources": [resource],
        "Compliance": {"Status": COMPLIANCE.get(c.verdict, "NOT_AVAILABLE"),
                       "SecurityControlId": c.id,
                       "RelatedRequirements": [f"pgproof {c.id}", *framework_refs(c.id)][:32]},
        "ProductFields": {"pgproof/ControlId": c.id, "pgproof/Verdict": c.verdict,
                          "pgproof/Target": run.target_name, "pgproof/Run": run.run_id,
                          "ProviderName": "pgproof", "ProviderVersion": run.version},
        "RecordState": "ACTIVE",
    }
    for key, names in (("LayersChecked", c.layers_checked), ("LayersNotChecked", c.layers_not_checked)):
        if names:  # a pass on the AWS layer alone says so
            f["ProductFields"][f"pgproof/{key}"] = ", ".join(names)
    if c.waivers:
        f["Workflow"] = {"Status": "SUPPRESSED" if c.verdict == WAIVED else "NEW"}
        f["Note"] = {"Text": "; ".join(w["note"] for w in c.waivers)[:512],
                     "UpdatedBy": c.waivers[0]["owner"][:512], "UpdatedAt": run.iso()}
    if entry is not None:
        f["Remediation"] = {"Recommendation": {"Text": entry.remediation[:512]}}
    return f


def build(run: Run, account: str, region: str) -> list[dict[str, Any]]:
    if run.account is None:  # the ARNs need the account: the one these findings go to
        run = dataclasses.replace(run, account=account)
    return [_finding(run, c, account, region) for c in run.judged]


def write(d: Path, run: Run, account: str, region: str) -> Path:
    path = d / "findings.asff.json"
    fsio.write_text(path, fsio.json_text(build(run, account, region), 1))
    return path
