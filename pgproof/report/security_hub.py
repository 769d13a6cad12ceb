"""Send ASFF findings to AWS Security Hub (``pgproof check --to-security-hub``).

Uses the target's own AWS settings (profile, credentials file, endpoint) so the
findings land in the account pgproof just checked. ``BatchImportFindings`` takes at
most 100 findings a call and reports per-finding failures in the response instead of
raising: every failure is surfaced, none is dropped.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pgproof.target import Aws, Target
from pgproof.target_timeouts import Timeouts

BATCH = 100
_CONFIG = Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 3})


class SecurityHubError(Exception):
    """Security Hub (or STS) refused or could not be reached; phrased for the user."""


@dataclass
class ImportResult:
    imported: int = 0
    failed: list[dict[str, Any]] = field(default_factory=list)


def _client(aws: Aws, service: str, limits: Timeouts | None = None) -> Any:
    from pgproof.probes.aws import session  # the probes' session: same credentials chain

    kw = {"endpoint_url": aws.endpoint_url} if aws.endpoint_url else {}
    config = _CONFIG if limits is None else Config(
        connect_timeout=limits.sdk_connect_s, read_timeout=limits.sdk_read_s,
        retries={"mode": "standard", "max_attempts": limits.sdk_attempts})
    return session(aws.profile, aws.region, aws.credentials_file).client(
        service, config=config, **kw)


def account_id(aws: Aws, limits: Timeouts | None = None) -> str:
    """The account the target's credentials belong to (STS GetCallerIdentity).

    ``limits``: the target's SDK time limits (a run's reports must not wait longer than
    its probes did on an API that stopped answering)."""
    try:
        return str(_client(aws, "sts", limits).get_caller_identity()["Account"])
    except (BotoCoreError, ClientError) as exc:
        raise SecurityHubError(f"could not tell the AWS account of region {aws.region} "
                               f"(sts GetCallerIdentity): {exc}") from None


def import_findings(aws: Aws, findings: list[dict[str, Any]]) -> ImportResult:
    """BatchImportFindings in batches of 100; boto3 validates each against the ASFF model."""
    hub = _client(aws, "securityhub")
    out = ImportResult()
    for i in range(0, len(findings), BATCH):
        try:
            resp = hub.batch_import_findings(Findings=findings[i:i + BATCH])
        except (BotoCoreError, ClientError) as exc:
            raise SecurityHubError(f"Security Hub in {aws.region} refused the findings: {exc}") from None
        out.imported += int(resp.get("SuccessCount", 0))
        out.failed += resp.get("FailedFindings", [])
    return out


def send_run(target: Target, run_dir: Path) -> bool:
    """Import a run's findings.asff.json; False (after saying why on stderr) if any failed."""
    path = run_dir / "findings.asff.json"
    if target.aws is None or not path.exists():
        print(f"pgproof: --to-security-hub: {path} was not written (see the message above)",
              file=sys.stderr)
        return False
    try:
        result = import_findings(target.aws, json.loads(path.read_text()))
    except SecurityHubError as exc:
        print(f"pgproof: --to-security-hub: {exc}", file=sys.stderr)
        return False
    print(f"security hub: imported {result.imported} findings into {target.aws.region}"
          + (f"; {len(result.failed)} failed" if result.failed else ""))
    for f in result.failed[:5]:
        print(f"pgproof: security hub refused {f.get('Id')}: {f.get('ErrorCode')} "
              f"{f.get('ErrorMessage')}", file=sys.stderr)
    return not result.failed
