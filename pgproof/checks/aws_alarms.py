"""MON-1 on AWS: every alarm the spec lists exists, fires early enough, and pages a person.

"Pages a person" means an enabled alarm action on an SNS topic with at least one
confirmed subscription; an alarm without one is decoration. RDS events (failure,
failover, low storage, backups) are judged in ``aws_events``. Thresholds in
bytes or connections are derived from the instance (memory from EC2's
instance-type table, storage from AllocatedStorage, max_connections from the
parameter group or RDS's default formula).
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from pgproof.checks.aws_events import event_problems
from pgproof.checks.aws_util import param_groups, primary, verdict
from pgproof.exact import exact, integer_fires_above, integer_fires_below, share
from pgproof.probes.aws import AwsInventory
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
    cluster: str | None = None  # the writer's metrics may also be alarmed per DBClusterIdentifier
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
    storage = p.get("AllocatedStorage")
    maxc = _max_connections(inv)
    needs = [
        Need(f"CPU > {th.cpu_alarm_max_pct:g} %", "AWS/RDS", "CPUUtilization", pid, True,
             exact(th.cpu_alarm_max_pct)),
        Need(f"memory > {th.memory_alarm_max_pct:g} % used", "AWS/RDS", "FreeableMemory", pid, False,
             _free(mem, th.memory_alarm_max_pct), integer=True),
        Need(f"storage > {th.storage_alarm_max_pct:g} % used", "AWS/RDS", "FreeStorageSpace", pid,
             False, _free(storage * GIB if storage else None, th.storage_alarm_max_pct),
             integer=True),
        Need(f"connections near max ({th.connections_alarm_max_pct:g} % of "
             f"{maxc})" if maxc else "connections near max", "AWS/RDS", "DatabaseConnections",
             pid, True, share(maxc, th.connections_alarm_max_pct) if maxc else None, integer=True),
        Need("backup job failures", "AWS/Backup", "NumberOfBackupJobsFailed", None, True,
             Fraction(0), integer=True, vaults=_plan_vaults(inv)),
    ]
    if inv.cluster is not None:
        for need in needs:
            if need.instance == pid:
                need.cluster = inv.cluster["DBClusterIdentifier"]
    needs += [Need(f"replica lag > {th.replica_lag_max_s:g} s", "AWS/RDS", "ReplicaLag",
                   r["DBInstanceIdentifier"], True, exact(th.replica_lag_max_s))
              for r in inv.replicas]
    return needs, gaps


def _free(total: int | None, used_pct: float) -> Fraction | None:
    """Bytes free when ``used_pct`` percent of ``total`` is used, exactly."""
    return None if total is None else total - share(total, used_pct)


def _fmt(need: Need, value: float | Fraction) -> str:
    if need.metric in ("FreeableMemory", "FreeStorageSpace"):
        return f"{float(value) / GIB:.2f} GiB ({float(value):.0f} bytes)"
    return f"{float(value):g}"


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
    return any((d["Name"], d["Value"]) in {("DBInstanceIdentifier", need.instance),
                                            ("DBClusterIdentifier", need.cluster)}
               for d in alarm.get("Dimensions", []))


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


def judge_mon1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Each required alarm present, early enough, enabled, and routed to a subscribed topic."""
    needs, gaps = _needs(inv, th)
    problems = []
    for need in needs:
        where = f"db-instance {need.instance}" if need.instance else "AWS Backup"
        found = [a for a in inv.alarms if _matches(a, need)]
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
        out += [a for a in inv.alarms if _matches(a, need) and a not in out]
    return out
