"""The restore drill on RDS: ``restore_db_instance_to_point_in_time`` into a scratch instance.

The scratch instance gets the source's subnet group, security groups and parameter
group (so ``rds.force_ssl`` is the same), is not public and not Multi-AZ, and
inherits the source's KMS key (the API has no key parameter for an instance
restore; the drill checks that the key is the same). It is recorded in the fault
record before the call and deleted with ``SkipFinalSnapshot`` (and its automated
backups), waited for, always. Calls are tested against moto; timing only means
something on real AWS, where a restore takes minutes.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pgproof.faults import record
from pgproof.faults.aws import CLIENT_CONFIG
from pgproof.gameday import restore_probe as rp
from pgproof.gameday.journal import Journal
from pgproof.gameday.safety import ChaosRefused
from pgproof.probes.aws import session
from pgproof.target import Postgres, Target

KIND = "rds_restore_scratch"
POLL_S = 15.0


def _client(data: dict[str, Any]) -> Any:
    kw: dict[str, Any] = {"config": CLIENT_CONFIG}
    if data.get("endpoint_url"):
        kw["endpoint_url"] = data["endpoint_url"]
    return session(data.get("profile"), data["region"], data.get("credentials_file")).client("rds", **kw)


def _where(target: Target) -> dict[str, Any]:
    aws = target.aws
    if aws is None or not aws.db_instance_id:
        raise ChaosRefused(f"restore-pitr on AWS needs targets.{target.name}.aws.db_instance_id "
                           "(an Aurora cluster restore is not built yet)")
    return {"region": aws.region, "endpoint_url": aws.endpoint_url, "profile": aws.profile,
            "credentials_file": str(aws.credentials_file) if aws.credentials_file else None}


def wait_restorable(target: Target, t: datetime, timeout: float) -> tuple[bool, str]:
    """RDS can restore to T once its latest restorable time has passed T (WAL uploaded ~5 min)."""
    rds = _client(_where(target))
    deadline = time.monotonic() + timeout
    latest = None
    while True:
        inst = rds.describe_db_instances(DBInstanceIdentifier=target.aws.db_instance_id)["DBInstances"][0]  # type: ignore[union-attr]
        latest = inst.get("LatestRestorableTime")
        if latest is not None and latest >= t:
            return True, f"latest restorable time {latest.isoformat()} is past T"
        if time.monotonic() >= deadline:
            return False, f"latest restorable time {latest} not past T within {timeout:.0f} s"
        time.sleep(min(POLL_S, max(0.1, deadline - time.monotonic())))


def scratch_id(run_id: str) -> str:
    return f"pgproof-restore-{run_id.rsplit('-', 1)[-1]}"[:63]


def drill(target: Target, j: Journal, t: datetime, rec: record.FaultRecord | None,
          wait_timeout_s: float = 3600, poll_s: float = POLL_S) -> dict[str, Any]:
    """Restore, wait, probe through the target's vantage point, delete; the drill's measurements."""
    where = _where(target)
    rds = _client(where)
    src_id = target.aws.db_instance_id  # type: ignore[union-attr]
    src = rds.describe_db_instances(DBInstanceIdentifier=src_id)["DBInstances"][0]
    ident = scratch_id(j.run_id)
    data = {**where, "id": ident}
    fid = rec.add_fault(KIND, data, f"RDS scratch instance {ident} restored from {src_id}",
                        f"aws rds delete-db-instance --db-instance-identifier {ident} "
                        "--skip-final-snapshot --delete-automated-backups") if rec else None
    out: dict[str, Any] = {"scratch": {"id": ident}}
    try:
        kw: dict[str, Any] = {
            "SourceDBInstanceIdentifier": src_id, "TargetDBInstanceIdentifier": ident,
            "RestoreTime": t, "DBInstanceClass": src["DBInstanceClass"], "MultiAZ": False,
            "PubliclyAccessible": False, "DeletionProtection": False,
            "VpcSecurityGroupIds": [g["VpcSecurityGroupId"] for g in src.get("VpcSecurityGroups", [])],
            "Tags": [{"Key": "pgproof", "Value": "restore-drill"}]}
        if src.get("DBSubnetGroup"):
            kw["DBSubnetGroupName"] = src["DBSubnetGroup"]["DBSubnetGroupName"]
        if src.get("DBParameterGroups"):
            kw["DBParameterGroupName"] = src["DBParameterGroups"][0]["DBParameterGroupName"]
        rds.restore_db_instance_to_point_in_time(**kw)
        j.event("restore", f"restore_db_instance_to_point_in_time -> {ident}", f"T {t.isoformat()}")
        inst = _wait(rds, ident, wait_timeout_s, poll_s)
        if inst is None:
            out["restore_error"] = f"{ident} not available within {wait_timeout_s:.0f} s"
            return out
        out["aws"] = same = _same_as_source(src, inst)
        if not all(v["same"] for v in same.values()):
            out["restore_error"] = "scratch instance differs from its source: " + ", ".join(
                f"{k} {v['scratch']} vs {v['source']}" for k, v in same.items() if not v["same"])
            return out
        out.update(_probe(target, j, inst))
    except Exception as exc:  # noqa: BLE001 - a failed restore is BAK-6's finding, said in a sentence
        out.setdefault("restore_error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    finally:
        done = delete_recorded(data, wait_timeout_s, poll_s)
        out["scratch"]["deleted"] = done
        j.event("cleanup", "scratch instance deleted", done)
        if rec is not None and fid:
            rec.remove_fault(fid)
    return out


def _wait(rds: Any, ident: str, timeout: float, poll_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inst = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
        if inst.get("DBInstanceStatus") == "available":
            return inst  # type: ignore[no-any-return]
        time.sleep(poll_s)
    return None


def _same_as_source(src: dict[str, Any], inst: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def sgs(d: dict[str, Any]) -> list[str]:
        return sorted(g["VpcSecurityGroupId"] for g in d.get("VpcSecurityGroups", []))

    facts = {"kms_key": (src.get("KmsKeyId"), inst.get("KmsKeyId")),
             "storage_encrypted": (src.get("StorageEncrypted"), inst.get("StorageEncrypted")),
             "subnet_group": ((src.get("DBSubnetGroup") or {}).get("DBSubnetGroupName"),
                              (inst.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")),
             "security_groups": (sgs(src), sgs(inst)),
             "publicly_accessible": (False, bool(inst.get("PubliclyAccessible")))}
    return {k: {"source": a, "scratch": b, "same": a == b} for k, (a, b) in facts.items()}


def _probe(target: Target, j: Journal, inst: dict[str, Any]) -> dict[str, Any]:
    """Log in to the scratch instance's endpoint from here (the target's vantage point)."""
    ep = inst.get("Endpoint") or {}
    host, port = ep.get("Address"), ep.get("Port")
    app = target.conninfo(user=_pg(target).app_role or _pg(target).user, host=host, port=port,
                          sslmode="require")
    admin = target.conninfo(host=host, port=port, sslmode="require")
    try:
        probe = rp.probe(app, admin, target.conninfo(), j.run_id, target.thresholds.tls_min_version)
    except Exception as exc:  # noqa: BLE001
        return {"restore_error": f"restored instance {host}:{port} did not accept a login: "
                                 f"{str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else exc}"}
    probe["private"] = "not public; subnet group and security groups as the source's"
    return {"probe": probe, "verified_at": time.monotonic()}


def delete_recorded(data: dict[str, Any], timeout: float = 3600, poll_s: float = POLL_S) -> str:
    """Delete the scratch instance with no final snapshot and wait until it is gone; idempotent."""
    from botocore.exceptions import ClientError

    rds, ident = _client(data), data["id"]
    for attempt in range(2):
        try:
            rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True,
                                   DeleteAutomatedBackups=True)
            break
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if "NotFound" in code:
                return f"RDS instance {ident} already gone"
            if "InvalidDBInstanceState" in code:  # already deleting: wait for it below
                break
            if attempt == 0 and "deletion protection" in str(exc).lower():
                # Restored with DeletionProtection=False; if it still got protection (moto copies
                # the source's), lift it on this scratch instance only, then delete.
                rds.modify_db_instance(DBInstanceIdentifier=ident, DeletionProtection=False,
                                       ApplyImmediately=True)
                continue
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rds.describe_db_instances(DBInstanceIdentifier=ident)
        except ClientError as exc:
            if "NotFound" in str(exc.response.get("Error", {}).get("Code", "")):
                return f"RDS instance {ident} deleted (no final snapshot)"
            raise
        time.sleep(poll_s)
    raise TimeoutError(f"RDS instance {ident} still exists {timeout:.0f} s after delete_db_instance")


def _pg(target: Target) -> Postgres:
    return target.require_postgres("the restore drill")  # markers and probes log in to PostgreSQL
