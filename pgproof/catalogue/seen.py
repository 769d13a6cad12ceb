"""One-line evidence of what an AWS check looked at (a passing control carries it in reports).

Read from the inventory by attribute, so the catalogue needs no probe import.
"""

from __future__ import annotations

from typing import Any


def each(inv: Any, *fields: str) -> str:
    return "; ".join(f"{i.get('DBInstanceIdentifier')}: " + ", ".join(f"{f}={i.get(f)}" for f in fields)
                     for i in inv.instances)


def cluster(inv: Any, *fields: str) -> str:
    """The cluster's own record where it decides (storage, backups, logs), else each instance's."""
    c = inv.cluster
    if c is None:
        return each(inv, *fields)
    return f"{c.get('DBClusterIdentifier')}: " + ", ".join(f"{f}={c.get(f)}" for f in fields)


def kms(inv: Any) -> str:
    return "; ".join(f"key {k}: {v.get('KeyManager')}, {v.get('KeyState')}, rotation "
                     f"{v.get('RotationEnabled', v.get('KeyRotationEnabled'))}"
                     for k, v in inv.kms_keys.items())


def bucket(inv: Any) -> str:
    b = inv.bucket
    return f"bucket {inv.bucket_name}: " + ", ".join(sorted(k for k, v in b.items() if v)) if b else ""


def rotation(inv: Any) -> str:
    s = inv.secret or {}
    return (f"secret {inv.secret_id}: RotationEnabled={s.get('RotationEnabled')}, "
            f"rules={s.get('RotationRules')}")


def alarms(inv: Any) -> str:
    return f"{len(inv.alarms)} alarms: " + ", ".join(sorted(a.get("MetricName", "?") for a in inv.alarms))


def plans(inv: Any) -> str:
    return f"{len(inv.backup_plans)} backup plan(s); copy vaults: " + ", ".join(
        f"{k}={'exists' if v else 'missing'}" for k, v in inv.backup_vault_exists.items())


def replica_lag(inv: Any) -> str:
    """Each reader's worst CloudWatch lag in the window, in the metric's own unit."""
    out = []
    for rid, f in inv.replica_lag.items():
        worst = max((d["Maximum"] for d in f["Datapoints"]), default=None)
        out.append(f"{rid}: {f['MetricName']} max {worst} over {f['window_s']} s")
    return "; ".join(out) or "no readers"
