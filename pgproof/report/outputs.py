"""The files other tools read, written next to results.json after every compliance run.

results.sarif (GitHub code scanning), findings.ocsf.json (SIEMs, as Prowler emits),
findings.asff.json (Security Hub; only for a target with an [aws] section, because an
ASFF finding belongs to an AWS account and region).
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from pgproof.report import asff, ocsf, sarif
from pgproof.report.findings import Run
from pgproof.report.results import ControlResult
from pgproof.target import Target


def write(d: Path, target_name: str, target: Target | None,
          controls: list[ControlResult]) -> list[Path]:
    run = Run(target_name, d.name, dt.datetime.now(dt.UTC), controls, target)
    written = [sarif.write(d, run), ocsf.write(d, run)]
    if target is not None and target.aws is not None:
        from pgproof.report.security_hub import SecurityHubError, account_id

        try:
            account = account_id(target.aws, target.timeouts)
        except SecurityHubError as exc:
            print(f"pgproof: findings.asff.json not written: {exc}", file=sys.stderr)
        else:
            written.append(asff.write(d, run, account, target.aws.region))
    return written
