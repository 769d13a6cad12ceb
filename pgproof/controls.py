"""The control catalogue of SPEC.md: every ID a report must show, checked or not."""

from __future__ import annotations

CONTROLS: dict[str, str] = {
    "TLS-1": "Server accepts TLS 1.2+ only",
    "TLS-2": "Plaintext refused",
    "TLS-3": "Certificate verifies",
    "TLS-4": "Certificate not near expiry",
    "TLS-5": "Strong crypto",
    "TLS-6": "Pooler keeps TLS",
    "NET-1": "Not publicly accessible",
    "NET-2": "Private subnets",
    "NET-3": "Tight security groups",
    "NET-4": "Private endpoint",
    "NET-5": "Unreachable from outside",
    "AUTH-1": "Strong auth method",
    "AUTH-2": "Managed, rotated secret",
    "AUTH-3": "Strong password",
    "AUTH-4": "No credentials in code",
    "AUTH-5": "Not the default admin",
    "AUTHZ-1": "Least privilege",
    "ENC-1": "Encrypted at rest",
    "ENC-2": "Encrypted, private backups",
    "ENC-3": "Backup storage locked",
    "AUDIT-1": "Audit logging",
    "BAK-1": "Backup retention",
    "BAK-2": "Point-in-time recovery",
    "BAK-3": "Geo-redundant copies",
    "BAK-4": "Long-term archive",
    "BAK-5": "Deletion protection",
    "HA-1": "Multi-AZ",
    "HA-5": "Replicas read-only, fresh",
    "POOL-1": "Pooler configured",
    "MON-1": "Alarms that page",
    "MON-2": "Deep monitoring",
    "MON-3": "Health endpoint",
    "MNT-1": "Patched engine",
}

SCENARIOS: dict[str, str] = {
    "HA-2": "Failover completes within the RTO budget",
    "HA-3": "No acknowledged write lost",
    "HA-4": "Load recovers without restarting clients",
    "HA-6": "The cluster heals",
    "CH-LAT": "Latency on the client path triggers no failover",
    "CH-PART": "Partitioned primary is replaced, no split brain",
    "CH-FORCE": "Control-plane failover as HA-2 and HA-3",
}

ALL = {**CONTROLS, **SCENARIOS}


def title(control_id: str) -> str:
    return ALL.get(control_id, "unknown control")
