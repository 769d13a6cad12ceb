"""AWS-layer judges for the resilience controls: AUDIT-1, BAK-1..5, HA-1, MON-1, MON-2, MNT-1.

Same contract as ``checks.aws``: pure functions of an ``AwsInventory`` and the
target's ``Thresholds``; problems as sentences; ``CannotVerify`` only when a
missing fact, not a found problem, stands between us and a verdict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatch
from fractions import Fraction
from typing import Any

from pgproof.catalogue.build import reads
from pgproof.checks.aws_util import ON, dbid, not_cluster_member, param_problems, primary, verdict
from pgproof.exact import duration, exact
from pgproof.probes.aws_inventory import AwsInventory
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, NotApplicable

GLACIER_CLASSES = {"GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"}


@reads("DescribeDBParameters, DescribeDBInstances, DescribeLogGroups",
       "parameters `shared_preload_libraries` (contains `pgaudit`), `pgaudit.log`, "
       "`log_connections`, `log_disconnections`; `EnabledCloudwatchLogsExports` contains "
       "`postgresql` (real RDS omits the key when nothing is exported: treated as empty); log "
       "group `retentionInDays`; `DBParameterGroups` → `DBParameterGroupName`; "
       "`DBInstanceIdentifier`; on a cluster the cluster's `EnabledCloudwatchLogsExports` and log "
       "group `/aws/rds/cluster/<id>`; `DBClusterIdentifier`, `DBClusterParameterGroup`",
       "unset parameter: fail; no log export or no log group: fail; no `retentionInDays`: fail "
       "(kept forever)")
def judge_audit1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """pgaudit and connection logging set in the parameter group; logs exported with retention."""
    p = primary(inv)
    problems: list[str] = []
    gaps: list[str] = []
    for name, ok, wants in [
        ("shared_preload_libraries", lambda v: "pgaudit" in v.replace(" ", "").split(","),
         "pgaudit loaded"),
        ("pgaudit.log", lambda v: v.strip().lower() not in ("", "none"), "a pgaudit.log class list"),
        ("log_connections", lambda v: v.lower() in ON, "1"),
        ("log_disconnections", lambda v: v.lower() in ON, "1"),
    ]:
        try:
            problems += param_problems(inv, name, ok, wants)
        except CannotVerify as exc:
            gaps.append(str(exc))
    # A cluster exports its members' logs (the member records report none on Aurora).
    for inst in [inv.cluster] if inv.cluster else inv.instances:
        where = f"db-cluster {inst['DBClusterIdentifier']}" if inv.cluster else dbid(inst)
        if "postgresql" not in inst.get("EnabledCloudwatchLogsExports", []):
            problems.append(f"{where}: the postgresql log is not exported to CloudWatch "
                            f"(EnabledCloudwatchLogsExports {inst.get('EnabledCloudwatchLogsExports', [])}); "
                            f"the spec wants it exported with a retention")
    group = f"{inv.log_group_prefix or '/aws/rds/instance/' + p['DBInstanceIdentifier']}/postgresql"
    lg = inv.log_groups.get(group)
    if lg is None:
        problems.append(f"log group {group} does not exist; the spec wants the postgresql log "
                        f"exported to it with a retention")
    elif not lg.get("retentionInDays"):
        problems.append(f"log group {group}: no retention (kept forever, unmanaged); the spec "
                        f"wants a retention period set")
    return verdict(problems, gaps)


@reads("DescribeDBInstances or DescribeDBClusters",
       "`BackupRetentionPeriod` (the cluster's when one is configured); `DBClusterIdentifier`, "
       "`DBInstanceIdentifier`",
       "absent: cannot verify")
def judge_bak1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Automated backup retention within the spec's window."""
    rec = inv.cluster or primary(inv)
    where = f"db-cluster {rec['DBClusterIdentifier']}" if inv.cluster else dbid(rec)
    days = rec.get("BackupRetentionPeriod")
    if days is None:
        raise CannotVerify(f"{where}: BackupRetentionPeriod not reported")
    lo, hi = th.backup_retention_min_days, th.backup_retention_max_days
    if not lo <= days <= hi:
        return [f"{where}: BackupRetentionPeriod is {days} days; the spec wants {lo}-{hi} days"]
    return []


@reads("DescribeDBInstances or DescribeDBClusters",
       "`BackupRetentionPeriod` (0 = no PITR: fail), `LatestRestorableTime`; "
       "`DBInstanceIdentifier`",
       "`LatestRestorableTime` absent (real cluster members and instances without backups omit "
       "it): cannot verify")
def judge_bak2(inv: AwsInventory, th: Thresholds, now: datetime | None = None) -> list[str]:
    """Point-in-time recovery reaches to within the RPO of now."""
    p = primary(inv)
    if not (inv.cluster or p).get("BackupRetentionPeriod"):
        return [f"{dbid(p)}: automated backups are off (retention 0), so there is no "
                f"point-in-time recovery; the spec wants PITR within {th.rpo_minutes:g} min"]
    latest = (inv.cluster or p).get("LatestRestorableTime")
    if latest is None:
        raise CannotVerify(f"{dbid(p)}: LatestRestorableTime not reported")
    lag = (now or datetime.now(UTC)) - latest
    if lag > duration(minutes=th.rpo_minutes):
        return [f"{dbid(p)}: latest restorable time is {lag.total_seconds() / 60:.1f} min ago; "
                f"the spec wants "
                f"<= {th.rpo_minutes:g} min"]
    return []


def _selects(selection: dict[str, Any], inst: dict[str, Any]) -> bool:
    """A Backup selection covers an instance (``DBInstanceArn``) or a cluster (``DBClusterArn``)."""
    arn = inst.get("DBInstanceArn") or inst.get("DBClusterArn", "")
    if any(fnmatch(arn, r) or r == "*" for r in selection.get("Resources", [])):
        return True
    tags = {t["Key"]: t["Value"] for t in inst.get("TagList", [])}
    return any(tags.get(c.get("ConditionKey")) == c.get("ConditionValue")
               for c in selection.get("ListOfTags", []))


def _rid(rec: dict[str, Any]) -> str:
    return dbid(rec) if "DBInstanceIdentifier" in rec else f"db-cluster {rec['DBClusterIdentifier']}"


def _global_elsewhere(inv: AwsInventory) -> bool:
    """The cluster is in an Aurora global database with an available member in another region."""
    gc = inv.global_cluster
    if not gc or gc.get("Status", "available") != "available":
        return False
    regions = {arn.split(":")[3] for m in gc.get("GlobalClusterMembers", [])
               if (arn := m.get("DBClusterArn", "")).count(":") >= 4}
    return bool(regions - {inv.region})


@reads("DescribeDBInstances, ListBackupPlans, GetBackupPlan, DescribeBackupVault, "
       "ListBackupSelections, GetBackupSelection, DescribeGlobalClusters",
       "`DBInstanceAutomatedBackupsReplications`; plan `BackupPlan` → `BackupPlanName`, `Rules` → "
       "`CopyActions` → `DestinationBackupVaultArn`, `BackupPlanId`, `DeletionDate`; selection "
       "`Resources`, `ListOfTags` → `ConditionKey`, `ConditionValue` against `DBInstanceArn` and "
       "`TagList` → `Key`, `Value` (inventory `backup_selections`); `DBInstanceIdentifier`; global"
       " cluster `GlobalClusterMembers` → `DBClusterArn`, `Status` (a member in another region "
       "counts); selection covering `DBClusterArn`; `DBClusterIdentifier`",
       "no replication and no copy rule: fail; copy rule whose selections cannot be listed: cannot"
       " verify")
def judge_bak3(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Backups leave the region: RDS backup replication, or a Backup copy rule that covers the DB."""
    p = primary(inv)
    if p.get("DBInstanceAutomatedBackupsReplications"):
        return []
    if _global_elsewhere(inv):
        return []
    p = inv.cluster or p  # a cluster is what Backup selects and what a global database copies
    problems, gaps, good = [], [], []
    for plan in inv.backup_plans:
        name = plan["BackupPlan"].get("BackupPlanName", plan["BackupPlanId"])
        if plan.get("DeletionDate"):
            problems.append(f"backup plan {name} is deleted; the spec wants a live plan with a "
                            f"copy rule to another region")
            continue
        remote = [a["DestinationBackupVaultArn"] for r in plan["BackupPlan"].get("Rules", [])
                  for a in r.get("CopyActions", [])
                  if a["DestinationBackupVaultArn"].split(":")[3] != inv.region]
        for arn in remote:
            if inv.backup_vault_exists.get(arn):
                good.append(plan)
            else:
                problems.append(f"backup plan {name}: copy rule targets {arn}, which does not "
                                f"exist; the spec wants copies landing in another region")
    if not good:
        return problems or [f"{_rid(p)}: no cross-region backup replication{', no global database' if inv.cluster else ''} and no AWS Backup "
                            f"copy rule to another region; the spec wants geo-redundant copies"]
    covered = False
    for plan in good:
        sels = inv.backup_selections.get(plan["BackupPlanId"])
        if sels is None:
            why = inv.missing.get("backup_selections", "selections not read")
            gaps.append(f"backup plan {plan['BackupPlanId']} has a cross-region copy rule, but "
                        f"which resources it selects is unknown ({why})")
        elif any(_selects(s, p) for s in sels):
            covered = True
    if covered:
        return []
    if not gaps:
        problems.append(f"{_rid(p)}: no backup plan with a cross-region copy rule selects this "
                        f"{'cluster' if inv.cluster else 'instance'}; the spec wants its backups copied to another region")
    return verdict(problems, gaps)


@reads("GetBucketLifecycleConfiguration, else GetBackupPlan",
       "bucket `lifecycle` rules: `Status`, `Transitions` → `StorageClass`, `Expiration` → `Days`,"
       " `ID`; else plan `BackupPlan` → `Rules` → `RuleName`, `Lifecycle` → "
       "`MoveToColdStorageAfterDays`, `DeleteAfterDays`, `BackupPlanId`",
       "no lifecycle configuration: fail; neither a bucket nor a plan: cannot verify")
def judge_bak4(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Backups move to Glacier-class storage and are kept >= archive_min_days."""
    keep = th.archive_min_days
    if inv.bucket_name:
        where = f"s3 bucket {inv.bucket_name}"
        rules = [r for r in (inv.bucket.get("lifecycle") or []) if r.get("Status") == "Enabled"]
        if not rules:
            return [f"{where}: no enabled lifecycle rule; the spec wants backups moved to "
                    f"Glacier-class storage and kept >= {keep} days"]
        problems = []
        if not any(t.get("StorageClass") in GLACIER_CLASSES for r in rules for t in r.get("Transitions", [])):
            problems.append(f"{where}: no lifecycle transition to a Glacier class; the spec wants "
                            f"backups archived to Glacier-class storage")
        for r in rules:
            days = (r.get("Expiration") or {}).get("Days")
            if days is not None and days < keep:
                problems.append(f"{where}: lifecycle rule {r.get('ID', '?')} deletes objects after "
                                f"{days} days; the spec wants them kept >= {keep} days")
        return problems
    problems = []
    for plan in inv.backup_plans:
        for r in plan["BackupPlan"].get("Rules", []):
            life, where = r.get("Lifecycle") or {}, f"backup plan {plan['BackupPlanId']} rule {r.get('RuleName')}"
            if not life.get("MoveToColdStorageAfterDays"):
                problems.append(f"{where}: no move to cold storage; the spec wants Glacier-class archive")
            if life.get("DeleteAfterDays") is not None and life["DeleteAfterDays"] < keep:
                problems.append(f"{where}: deletes after {life['DeleteAfterDays']} days; the spec "
                                f"wants >= {keep} days")
    if not inv.backup_plans:
        raise CannotVerify("no backup bucket and no backup plan configured, so no archive to inspect")
    return problems


@reads("DescribeDBInstances or DescribeDBClusters",
       "`DeletionProtection` (the cluster's when one is configured); `DBClusterIdentifier`, "
       "`DBInstanceIdentifier`",
       "absent (records before 2018 lack it): cannot verify; a cluster member named without "
       "`aws.db_cluster_id` (its own `DeletionProtection` is false on real clusters): cannot "
       "verify, naming the cluster")
def judge_bak5(inv: AwsInventory, th: Thresholds) -> list[str]:
    """The primary (and its cluster) cannot be deleted by one API call."""
    not_cluster_member(inv, "DeletionProtection")
    rec = inv.cluster or primary(inv)
    where = f"db-cluster {rec['DBClusterIdentifier']}" if inv.cluster else dbid(rec)
    if "DeletionProtection" not in rec:
        raise CannotVerify(f"{where}: DeletionProtection not reported")
    if not rec["DeletionProtection"]:
        return [f"{where}: DeletionProtection is off; the spec wants it on for the primary"]
    return []


@reads("DescribeDBInstances, DescribeDBClusters",
       "instance `MultiAZ`, `SecondaryAvailabilityZone`, `AvailabilityZone`; with a cluster: every"
       " member's `AvailabilityZone`; `DBClusterIdentifier`, `DBInstanceIdentifier`",
       "`MultiAZ` absent: fail (not proven); Multi-AZ on but `SecondaryAvailabilityZone` absent "
       "(moto): cannot verify; a cluster member named without `aws.db_cluster_id` (real Multi-AZ "
       "DB cluster members all report `MultiAZ` false): cannot verify, naming the cluster")
def judge_ha1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Multi-AZ on, and the standby really sits in another AZ."""
    if inv.cluster:
        # A cluster is Multi-AZ when its members sit in more than one AZ (Aurora derives its
        # MultiAZ flag from that; a Multi-AZ DB cluster's readers are in two other AZs).
        azs: set[str] = {m["AvailabilityZone"] for m in inv.instances
                         if m.get("AvailabilityZone") is not None}
        cid = inv.cluster["DBClusterIdentifier"]
        if not azs:
            raise CannotVerify(f"db-cluster {cid}: no member reports an AvailabilityZone")
        if len(azs) < 2:
            return [f"db-cluster {cid}: instances in {len(azs)} AZ(s) {sorted(azs)}; "
                    f"the spec wants a standby in another AZ"]
        return []
    not_cluster_member(inv, "the Multi-AZ layout (its members and their AZs)")
    p = primary(inv)
    if p.get("MultiAZ") is not True:
        return [f"{dbid(p)}: MultiAZ is off; the spec wants a Multi-AZ standby"]
    second = p.get("SecondaryAvailabilityZone")
    if second is None:
        raise CannotVerify(f"{dbid(p)}: MultiAZ is on but SecondaryAvailabilityZone is not "
                           f"reported, so the standby's AZ cannot be compared")
    if second == p.get("AvailabilityZone"):
        return [f"{dbid(p)}: standby AZ {second} equals the primary's; the spec wants them to differ"]
    return []


@reads("DescribeDBInstances, DescribeDBClusters, GetMetricStatistics (one per reader: `AWS/RDS`, "
       "dimension `DBInstanceIdentifier`, statistic `Maximum`, period 60 s, the last 300 s)",
       "the readers' `DBInstanceIdentifier` (read replicas, or the cluster's members other than "
       "the writer); inventory `replica_lag` per reader: `MetricName` (`AuroraReplicaLag` in "
       "milliseconds on Aurora, else `ReplicaLag` in seconds), `window_s`, `Datapoints` → "
       "`Maximum` (the worst one is compared exactly with `replica_lag_max_s`: at the threshold "
       "passes)",
       "no reader: not applicable; no datapoint in the window (a new reader, metrics not "
       "published): cannot verify, naming the reader and the metric")
def judge_ha5(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Every reader's CloudWatch lag (its Maximum over the probe's window) within the threshold.

    Compared exactly: Aurora's ``AuroraReplicaLag`` is in milliseconds, ``ReplicaLag`` in
    seconds; a Maximum exactly at ``replica_lag_max_s`` passes. No datapoint is no answer.
    """
    if not inv.replicas:
        raise NotApplicable("the deployment has no read replica or cluster reader, so there "
                            "is no replica lag to judge")
    limit = exact(th.replica_lag_max_s)
    problems, gaps = [], []
    for r in inv.replicas:
        rid = r["DBInstanceIdentifier"]
        fact = inv.replica_lag.get(rid)
        if fact is None:
            gaps.append(f"{dbid(r)}: its replica lag metric was not read")
            continue
        metric, window = fact["MetricName"], fact["window_s"]
        values = [exact(d["Maximum"]) for d in fact["Datapoints"] if d.get("Maximum") is not None]
        if not values:
            gaps.append(f"{dbid(r)}: CloudWatch has no {metric} datapoint in the last {window} s, "
                        f"so its lag is unknown")
            continue
        worst = max(values)
        lag_s = worst / 1000 if metric == "AuroraReplicaLag" else worst
        if lag_s > limit:
            problems.append(f"{dbid(r)}: {metric} reached {_secs(lag_s)} s in the last {window} s; "
                            f"the spec wants at most {th.replica_lag_max_s:g} s")
    return verdict(problems, gaps)


def _secs(x: Fraction) -> str:
    return f"{float(x):g}"


@reads("DescribeDBInstances, DescribeDBParameters",
       "`MonitoringInterval`, `EnhancedMonitoringResourceArn`, `PerformanceInsightsEnabled`; "
       "parameter `log_min_duration_statement`; `DBParameterGroups` → `DBParameterGroupName`; "
       "`DBInstanceIdentifier`; cluster `DBClusterParameterGroup` (as TLS-1)",
       "`MonitoringInterval` or `PerformanceInsightsEnabled` absent, or an interval without its "
       "resource ARN: cannot verify; unset parameter: fail")
def judge_mon2(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Enhanced Monitoring and Performance Insights on; slow-query logging set."""
    problems, gaps = [], []
    for inst in inv.instances:
        interval = inst.get("MonitoringInterval")
        if interval is None:
            gaps.append(f"{dbid(inst)}: MonitoringInterval not reported")
        elif interval <= 0:
            problems.append(f"{dbid(inst)}: Enhanced Monitoring is off (MonitoringInterval 0); "
                            f"the spec wants it on")
        elif not inst.get("EnhancedMonitoringResourceArn"):
            gaps.append(f"{dbid(inst)}: MonitoringInterval is {interval} s but "
                        f"EnhancedMonitoringResourceArn is not reported")
        if "PerformanceInsightsEnabled" not in inst:
            gaps.append(f"{dbid(inst)}: PerformanceInsightsEnabled not reported")
        elif not inst["PerformanceInsightsEnabled"]:
            problems.append(f"{dbid(inst)}: Performance Insights is off; the spec wants it on")
    try:
        problems += param_problems(inv, "log_min_duration_statement",
                                   lambda v: v.strip().lstrip("-").isdigit() and int(v) >= 0,
                                   "slow-query logging on (a value >= 0 ms)")
    except CannotVerify as exc:
        gaps.append(str(exc))
    return verdict(problems, gaps)


@reads("DescribeDBInstances, DescribeDBEngineVersions",
       "`EngineVersion`, `AutoMinorVersionUpgrade`, `Engine`; version `Status` (inventory "
       "`engine_versions` when missing); `DBInstanceIdentifier`",
       "`AutoMinorVersionUpgrade` absent: fail; no engine-version record: cannot verify")
def judge_mnt1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Engine major as specified, on a supported minor, with auto minor upgrades on."""
    problems, gaps = [], []
    for inst in inv.instances:
        ver = inst.get("EngineVersion", "")
        if ver.split(".")[0] != str(th.engine_major):
            problems.append(f"{dbid(inst)}: engine version {ver}; the spec wants "
                            f"PostgreSQL {th.engine_major}.x")
        if inst.get("AutoMinorVersionUpgrade") is not True:
            problems.append(f"{dbid(inst)}: AutoMinorVersionUpgrade is off; the spec wants "
                            f"automatic minor upgrades on")
    info = inv.engine_version_info
    p = primary(inv)
    if info is None:
        why = inv.missing.get("engine_versions", "no record returned")
        gaps.append(f"whether {p.get('Engine')} {p.get('EngineVersion')} is a supported minor is "
                    f"unknown ({why})")
    elif info.get("Status", "available") != "available":
        problems.append(f"{dbid(p)}: engine {p.get('EngineVersion')} has status {info['Status']}; "
                        f"the spec wants a supported minor version")
    return verdict(problems, gaps)
