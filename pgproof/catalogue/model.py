"""The shape of a catalogue entry and the vocabularies it uses (layers, frameworks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["compliance", "gameday"]
# How bad a failure of the control is, whatever this run's verdict: OCSF severity_id 1-5 and
# the ASFF label of a failed finding read it (the names are OCSF's and Security Hub's).
Severity = Literal["informational", "low", "medium", "high", "critical"]
SEVERITY_IDS: dict[str, int] = {"informational": 1, "low": 2, "medium": 3, "high": 4, "critical": 5}

# What each layer is: the vocabulary of ``Control.layers``.
LAYERS: dict[str, str] = {
    "tls": "live TLS handshakes and a plaintext startup at every client endpoint",
    "sql": "a live SQL session: server settings, pg_hba rules, roles, replicas, a verify-full login",
    "aws": "the AWS API (RDS, EC2, KMS, Secrets Manager, CloudWatch, S3, Backup describe calls)",
    "azure": "the Azure APIs (flexible server, network, Key Vault, Storage and Blob, Monitor, locks)",
    "pooler": "the PgBouncer admin console (SHOW CONFIG)",
    "health": "the application's HTTP health endpoint",
    "dns": "name resolution of the writer endpoint",
    "vantage": "TCP reachability from app hosts and outside vantage points (testinfra)",
    "host": "the database hosts over testinfra (block devices under the data directory)",
    "backup": "the backup tool's own JSON info (pgbackrest info, retention) and pg_stat_archiver",
    "source": "a scan of the configured application source tree",
    "clock": "the failover clock: a write every 50 ms through the writer endpoint",
    "ledger": "the write ledger: every acknowledged load write looked up on the new primary",
    "load": "Locust throughput, latency and error counts per second",
    "cluster": "the cluster's own view (Patroni leader, timeline, sync standby; RDS events)",
    "split-brain": "a direct write to the old primary after the new one is promoted",
    "restore": "a point-in-time restore into a scratch instance, probed and deleted (markers, login, TLS)",
    "sns-delivery": "a temporary SQS subscriber on each alarm's SNS topic, receiving what "
                    "set_alarm_state(ALARM) makes CloudWatch send",
}

FRAMEWORKS = ("hipaa", "cis", "fsbp")


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    requirement: str
    kind: Kind
    layers: tuple[str, ...]
    remediation: str
    thresholds: tuple[str, ...] = ()
    # Framework references, e.g. {"fsbp": ("RDS.3",)}; IDs are in catalogue/frameworks.py.
    frameworks: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Why a control has no HIPAA citation (an auditor must not guess whether it was forgotten).
    unmapped_reason: str = ""
    severity: Severity = "medium"

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "title": self.title, "requirement": self.requirement,
                "kind": self.kind, "severity": self.severity, "layers": list(self.layers),
                "thresholds": list(self.thresholds), "remediation": self.remediation,
                "frameworks": {k: list(self.frameworks.get(k, ())) for k in FRAMEWORKS},
                "unmapped_reason": self.unmapped_reason}
