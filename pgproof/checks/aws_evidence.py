"""What an AWS check looked at, in one line: the evidence a passing control carries in reports."""

from __future__ import annotations

from collections.abc import Callable

from pgproof.checks.aws_util import settings
from pgproof.probes.aws import AwsInventory


def _each(inv: AwsInventory, *fields: str) -> str:
    return "; ".join(f"{i.get('DBInstanceIdentifier')}: " + ", ".join(f"{f}={i.get(f)}" for f in fields)
                     for i in inv.instances)


def _cluster(inv: AwsInventory, *fields: str) -> str:
    """The cluster's own record where it decides (storage, backups, logs), else each instance's."""
    c = inv.cluster
    if c is None:
        return _each(inv, *fields)
    return f"{c.get('DBClusterIdentifier')}: " + ", ".join(f"{f}={c.get(f)}" for f in fields)


def _kms(inv: AwsInventory) -> str:
    return "; ".join(f"key {k}: {v.get('KeyManager')}, {v.get('KeyState')}, rotation "
                     f"{v.get('RotationEnabled', v.get('KeyRotationEnabled'))}"
                     for k, v in inv.kms_keys.items())


def _bucket(inv: AwsInventory) -> str:
    b = inv.bucket
    return f"bucket {inv.bucket_name}: " + ", ".join(sorted(k for k, v in b.items() if v)) if b else ""


def _rotation(inv: AwsInventory) -> str:
    s = inv.secret or {}
    return (f"secret {inv.secret_id}: RotationEnabled={s.get('RotationEnabled')}, "
            f"rules={s.get('RotationRules')}")


def _alarms(inv: AwsInventory) -> str:
    return f"{len(inv.alarms)} alarms: " + ", ".join(sorted(a.get("MetricName", "?") for a in inv.alarms))


def _plans(inv: AwsInventory) -> str:
    return f"{len(inv.backup_plans)} backup plan(s); copy vaults: " + ", ".join(
        f"{k}={'exists' if v else 'missing'}" for k, v in inv.backup_vault_exists.items())


EVIDENCE: dict[str, Callable[[AwsInventory], str]] = {
    "TLS-1": lambda i: settings(i, "ssl_min_protocol_version"),
    "TLS-2": lambda i: settings(i, "rds.force_ssl"),
    "TLS-4": lambda i: _each(i, "CACertificateIdentifier"),
    "TLS-6": lambda i: f"proxy {(i.proxy or {}).get('DBProxyName')}: RequireTLS="
                       f"{(i.proxy or {}).get('RequireTLS')}",
    "NET-1": lambda i: _each(i, "PubliclyAccessible"),
    "NET-2": lambda i: f"{len(i.subnet_routes)} DB subnets checked: no internet route",
    "NET-3": lambda i: f"{len(i.security_groups)} security groups; app groups {i.app_security_group_ids}",
    "AUTH-2": _rotation,
    "AUTH-3": lambda i: f"secret {i.secret_id}: password length {i.secret_password_length}",
    "AUTH-5": lambda i: _each(i, "MasterUsername"),
    "ENC-1": lambda i: _cluster(i, "StorageEncrypted") + "; " + _kms(i),
    "ENC-2": lambda i: f"{len(i.snapshots)} snapshots, {len(i.cluster_snapshots)} cluster snapshots, "
                       f"{len(i.automated_backups)} automated backups encrypted; none shared with all",
    "ENC-3": _bucket,
    "AUDIT-1": lambda i: _cluster(i, "EnabledCloudwatchLogsExports") + "; log groups: " + ", ".join(
        f"{k} ({v.get('retentionInDays')} d)" for k, v in i.log_groups.items()),
    "BAK-1": lambda i: _cluster(i, "BackupRetentionPeriod"),
    "BAK-2": lambda i: _each(i, "LatestRestorableTime"),
    "BAK-3": lambda i: (f"global database {i.global_cluster.get('GlobalClusterIdentifier')}; "
                        if i.global_cluster else "") + _plans(i),
    "BAK-4": lambda i: f"bucket {i.bucket_name} lifecycle: {i.bucket.get('lifecycle') or i.bucket.get('Lifecycle')}",
    "BAK-5": lambda i: _cluster(i, "DeletionProtection"),
    "HA-1": lambda i: _each(i, "MultiAZ", "AvailabilityZone"),
    "MON-1": _alarms,
    "MON-2": lambda i: _each(i, "MonitoringInterval"),
    "MNT-1": lambda i: _each(i, "EngineVersion", "AutoMinorVersionUpgrade"),
}


def seen(inv: AwsInventory, control: str) -> str:
    """Never raises: evidence is a courtesy, the verdict comes from the judge."""
    try:
        return EVIDENCE[control](inv)
    except Exception:  # noqa: BLE001
        return ""


