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
from pgproof.report.findings import Run, config_file_of, repo_root
from pgproof.report.results import ControlResult
from pgproof.target import Target


def write(d: Path, target_name: str, target: Target | None,
          controls: list[ControlResult], config: Path | None = None,
          sarif_root: Path | None = None) -> list[Path]:
    """``config``: the --config given (None: the default lookup); ``sarif_root``: what SARIF
    paths are relative to (None: the working directory's git root)."""
    account = None
    if target is not None and target.aws is not None:
        from pgproof.report.security_hub import SecurityHubError, account_id

        try:
            account = account_id(target.aws, target.timeouts)
        except SecurityHubError as exc:
            print(f"pgproof: findings.asff.json not written: {exc}", file=sys.stderr)
    root = sarif_root.resolve() if sarif_root is not None else repo_root()
    run = Run(target_name, d.name, dt.datetime.now(dt.UTC), controls, target,
              account=account, config_file=config_file_of(target_name, config), repo_root=root)
    written = [sarif.write(d, run), ocsf.write(d, run)]
    if target is not None and target.aws is not None and account is not None:
        written.append(asff.write(d, run, account, target.aws.region))
    return written
