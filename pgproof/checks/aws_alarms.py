"""MON-1 on AWS: every alarm the spec lists exists, fires early enough, and pages a person.

"Pages a person" means an enabled alarm action on an SNS topic with at least one
confirmed subscription; an alarm without one is decoration. RDS events (failure,
failover, low storage, backups) are judged in ``aws_events``. Thresholds in
bytes or connections are derived from the instance (memory from EC2's
instance-type table, storage from AllocatedStorage, max_connections from the
parameter group or RDS's default formula).

Which metrics a deployment publishes depends on its engine (AWS "CloudWatch metrics for
Amazon Aurora"): an RDS instance and a Multi-AZ DB cluster (engine ``postgres``) publish
``FreeStorageSpace`` and ``ReplicaLag`` (seconds); Aurora PostgreSQL publishes neither. Its
cluster volume grows by itself; what fills up is each instance's local storage
(``FreeLocalStorage``, whose size no API reports, so only its presence and paging are
judged), and its readers publish ``AuroraReplicaLag`` in milliseconds (the writer
``AuroraReplicaLagMaximum``, the largest over its readers).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pgproof.catalogue.build import reads
from pgproof.checks.aws_events import event_problems
from pgproof.checks.aws_util import param_groups, primary, verdict
from pgproof.exact import exact, integer_fires_above, integer_fires_below, share
from pgproof.probes.aws_inventory import AwsInventory
from pgproof.target import Thresholds

GIB = 1024**3
RDS_CONN_DIVISOR = 9531392  # RDS default max_connections = LEAST(DBInstanceClassMemory/9531392, 5000)


@dataclass
class Need:
    """The spec: the alarm must fire for every metric value above (or below) ``limit``.

    ``integer``: the metric only takes whole values (bytes, connections, jobs), so an
    alarm at 1288490188.8000002 bytes fires exactly where one at 1288490188.8 does."""

    what: str
    namespace: str
    metric: str
    instance: str | None
    above: bool
    limit: Fraction | None
    integer: bool = False
    # A cluster's metrics may also be alarmed per DBClusterIdentifier, alone or with the Role
    # (WRITER/READER) of the instance the need is for.
    cluster: str | None = None
    role: str = "WRITER"
    unit: str = ""
    # Another metric that answers the same need (Aurora: the writer's AuroraReplicaLagMaximum
    # covers every reader's AuroraReplicaLag).
    alt: Need | None = None
    # Backup job failures: the vaults of the target's backup plans. An alarm on another
    # vault pages for another database; one without a vault dimension counts every job.
    vaults: frozenset[str] = frozenset()


def _max_connections(inv: AwsInventory) -> int | None:
    for _, _, params in param_groups(inv):
        value = (params or {}).get("max_connections")
        if value and value.isdigit():
            return int(value)
    if inv.instance_memory_bytes:
        return min(inv.instance_memory_bytes // RDS_CONN_DIVISOR, 5000)
    return None


def _needs(inv: AwsInventory, th: Thresholds) -> tuple[list[Need], list[str]]:
    p = primary(inv)
    pid, mem, gaps = p["DBInstanceIdentifier"], inv.instance_memory_bytes, []
    if mem is None:
        gaps.append(f"instance memory of {p.get('DBInstanceClass')} unknown "
                    f"({inv.missing.get('instance_memory', 'not read')}), so the FreeableMemory "
                    f"and DatabaseConnections thresholds cannot be judged")
    maxc = _max_connections(inv)
    cid = (inv.cluster or {}).get("DBClusterIdentifier")
    needs = [
        Need(f"CPU > {th.cpu_alarm_max_pct:g} %", "AWS/RDS", "CPUUtilization", pid, True,
             exact(th.cpu_alarm_max_pct), cluster=cid),
        Need(f"memory > {th.memory_alarm_max_pct:g} % used", "AWS/RDS", "FreeableMemory", pid, False,
             _free(mem, th.memory_alarm_max_pct), integer=True, cluster=cid),
        *_storage_needs(inv, th, pid, cid),
        Need(f"connections near max ({th.connections_alarm_max_pct:g} % of "
             f"{maxc})" if maxc else "connections near max", "AWS/RDS", "DatabaseConnections",
             pid, True, share(maxc, th.connections_alarm_max_pct) if maxc else None, integer=True,
             cluster=cid),
        Need("backup job failures", "AWS/Backup", "NumberOfBackupJobsFailed", None, True,
             Fraction(0), integer=True, vaults=_plan_vaults(inv)),
    ]
    lag = f"replica lag > {th.replica_lag_max_s:g} s"
    if _aurora(inv):
        # AuroraReplicaLag is in milliseconds; the writer's maximum over its readers also answers.
        ms = exact(th.replica_lag_max_s) * 1000
        needs += [Need(lag, "AWS/RDS", "AuroraReplicaLag", r["DBInstanceIdentifier"], True, ms,
                       cluster=cid, role="READER", unit="ms",
                       alt=Need(lag, "AWS/RDS", "AuroraReplicaLagMaximum", pid, True, ms,
                                cluster=cid, unit="ms"))
                  for r in inv.replicas]
    else:
        needs += [Need(lag, "AWS/RDS", "ReplicaLag", r["DBInstanceIdentifier"], True,
                       exact(th.replica_lag_max_s), cluster=cid, role="READER", unit="s")
                  for r in inv.replicas]
    return needs, gaps


def _aurora(inv: AwsInventory) -> bool:
    """Aurora PostgreSQL: the cluster's engine, or the writer's when no cluster is named."""
    return inv.aurora or str(primary(inv).get("Engine", "")).startswith("aurora")


def _storage_needs(inv: AwsInventory, th: Thresholds, pid: str, cid: str | None) -> list[Need]:
    """Free storage: the writer's allocated volume (RDS, Multi-AZ DB cluster), or on Aurora
    every instance's local storage (the cluster volume grows by itself)."""
    what = f"storage > {th.storage_alarm_max_pct:g} % used"
    if _aurora(inv):
        return [Need(f"local storage running out ({what}; the local storage size is not "
                     f"reported, so the threshold is not judged)", "AWS/RDS", "FreeLocalStorage",
                     i["DBInstanceIdentifier"], False, None, integer=True, cluster=cid,
                     role="WRITER" if i is inv.primary else "READER")
                for i in inv.instances]
    storage = primary(inv).get("AllocatedStorage") or (inv.cluster or {}).get("AllocatedStorage")
    return [Need(what, "AWS/RDS", "FreeStorageSpace", pid, False,
                 _free(storage * GIB if storage else None, th.storage_alarm_max_pct),
                 integer=True, cluster=cid)]


def _free(total: int | None, used_pct: float) -> Fraction | None:
    """Bytes free when ``used_pct`` percent of ``total`` is used, exactly."""
    return None if total is None else total - share(total, used_pct)


def _fmt(need: Need, value: float | Fraction) -> str:
    if need.metric in ("FreeableMemory", "FreeStorageSpace", "FreeLocalStorage"):
        return f"{float(value) / GIB:.2f} GiB ({float(value):.0f} bytes)"
    return f"{float(value):g}" + (f" {need.unit}" if need.unit else "")


def _late(need: Need, op: str, t: float) -> bool:
    """Whether an alarm at threshold ``t`` misses a value the spec wants it to fire for."""
    assert need.limit is not None
    if need.integer:
        fires = integer_fires_above if need.above else integer_fires_below
        return not fires(op, t, need.limit)
    return exact(t) > need.limit if need.above else exact(t) < need.limit


def _plan_vaults(inv: AwsInventory) -> frozenset[str]:
    """The vaults the target's backup plans write to (empty: no plan known)."""
    return frozenset(rule["TargetBackupVaultName"] for plan in inv.backup_plans
                     for rule in plan.get("BackupPlan", {}).get("Rules", [])
                     if rule.get("TargetBackupVaultName"))


def _matches(alarm: dict[str, Any], need: Need) -> bool:
    if alarm.get("Namespace") != need.namespace or alarm.get("MetricName") != need.metric:
        return False
    if need.instance is None:
        vaults = {d["Value"] for d in alarm.get("Dimensions", []) if d["Name"] == "BackupVaultName"}
        return not (need.vaults and vaults) or bool(vaults & need.vaults)
    dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
    if dims.get("DBInstanceIdentifier") == need.instance:
        return True
    # Per cluster: every instance's metric together, or those of the need's Role only.
    return need.cluster is not None and dims.get("DBClusterIdentifier") == need.cluster \
        and dims.get("Role", need.role) == need.role


def _answers(alarm: dict[str, Any], need: Need) -> bool:
    """Whether ``alarm`` watches the need's metric, or the alternative metric that covers it."""
    return _matches(alarm, need) or (need.alt is not None and _matches(alarm, need.alt))


def _issues(alarm: dict[str, Any], need: Need, inv: AwsInventory) -> list[str]:
    out = []
    op, t = alarm.get("ComparisonOperator", ""), alarm.get("Threshold")
    if need.above != op.startswith("GreaterThan"):
        out.append(f"compares {op}")
    elif need.limit is not None and t is not None and _late(need, op, t):
        out.append(f"{op} {_fmt(need, t)} fires later than the spec's "
                   f"{'>' if need.above else '<'} {_fmt(need, need.limit)}")
    if alarm.get("ActionsEnabled") is False:
        out.append("actions are disabled")
    topics = [a for a in alarm.get("AlarmActions", []) if ":sns:" in a]
    if not topics:
        out.append("has no SNS alarm action")
    elif not any(s.get("SubscriptionArn", "").startswith("arn:")
                 for t in topics for s in inv.topic_subscriptions.get(t, [])):
        out.append(f"its topic {', '.join(x.split(':')[-1] for x in topics)} has no confirmed subscriber")
    return out


@reads("DescribeAlarms, ListSubscriptionsByTopic, DescribeInstanceTypes, DescribeDBParameters, "
       "DescribeEventSubscriptions",
       "alarm `Namespace`, `MetricName`, `Dimensions` → `Name`, `Value` (`DBInstanceIdentifier`; "
       "on a cluster also `DBClusterIdentifier`, alone or with `Role` `WRITER`/`READER`), "
       "`ComparisonOperator`, `Threshold`, `ActionsEnabled`, `AlarmActions`, `AlarmName`; "
       "subscription `SubscriptionArn` (confirmed = an ARN); the cluster's (else the writer's) "
       "`Engine`: `aurora-postgresql` wants `FreeLocalStorage` on every member (threshold not "
       "judged: no API reports the local storage size) and `AuroraReplicaLag` per reader in "
       "milliseconds (or the writer's `AuroraReplicaLagMaximum`), an RDS instance or Multi-AZ DB "
       "cluster (`postgres`) `FreeStorageSpace` on the writer and `ReplicaLag` per reader in "
       "seconds; `AllocatedStorage` (the writer's, else the cluster's), `DBInstanceClass` "
       "(inventory `instance_memory`), parameter `max_connections` (a number, else RDS's formula "
       "from memory); `DBParameterGroups` → `DBParameterGroupName`; `DBInstanceIdentifier`, "
       "`DBClusterIdentifier`; backup plans `BackupPlan` → `Rules` → `TargetBackupVaultName` (a "
       "backup-failure alarm with a `BackupVaultName` dimension must name one of them); inventory "
       "`event_subscriptions`: subscription `CustSubscriptionId`, `SourceType` "
       "(`db-instance`/`db-cluster`), `SourceIdsList` (empty = every source), "
       "`EventCategoriesList` (empty = every category), `Enabled`, `Status` (`active`), "
       "`SnsTopicArn` (a topic with a confirmed subscriber)",
       "no alarm for a metric: fail; instance memory unknown (DescribeInstanceTypes missing): "
       "cannot verify for the memory and connection thresholds unless another alarm already fails;"
       " no subscription covering failure, failover, low storage, backup and recovery for this "
       "database to a subscribed topic: fail; DescribeEventSubscriptions refused: cannot verify")
def judge_mon1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Each required alarm present, early enough, enabled, and routed to a subscribed topic."""
    needs, gaps = _needs(inv, th)
    problems = []
    for need in needs:
        where = f"db-instance {need.instance}" if need.instance else "AWS Backup"
        found = [a for a in inv.alarms if _answers(a, need)]
        if not found:
            problems.append(f"{where}: no CloudWatch alarm on {need.namespace} {need.metric}; the "
                            f"spec wants an alarm for {need.what} that pages someone")
            continue
        verdicts = {a["AlarmName"]: _issues(a, need, inv) for a in found}
        if not any(not v for v in verdicts.values()):
            name, why = next(iter(verdicts.items()))
            problems.append(f"{where}: alarm {name}: {'; '.join(why)}; the spec wants an alarm for "
                            f"{need.what} with an action whose SNS topic has a subscriber")
    events, unknown = event_problems(inv)
    return verdict(problems + events, gaps + unknown)


def drill_alarms(inv: AwsInventory, th: Thresholds) -> list[dict[str, Any]]:
    """Every alarm that answers one of MON-1's needs: what ``gameday alarm-drill`` forces (MON-4)."""
    needs, _ = _needs(inv, th)
    out: list[dict[str, Any]] = []
    for need in needs:
        out += [a for a in inv.alarms if _answers(a, need) and a not in out]
    return out
