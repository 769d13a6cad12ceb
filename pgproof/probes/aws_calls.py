"""The describe calls behind ``pgproof.probes.aws.gather``, one small function per fact family.

Each ``_task`` fills its own fields of the inventory, so the tasks can run in
parallel without locks. Expected absences (no lifecycle, secret not found)
become empty facts; APIs the endpoint lacks become ``inv.missing`` entries.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Protocol

from botocore.exceptions import ClientError

from pgproof.probes.aws_inventory import (
    AwsInventory,
    BucketFact,
    _code,
    _optional,
    _pages,
    password_length,
)
from pgproof.target import Aws
from pgproof.verdict import Unreachable


class _Ctx(Protocol):
    """What a call needs from the probe's context (``pgproof.probes.aws._Ctx``)."""

    cfg: Aws
    endpoint: str

    def client(self, service: str, region: str | None = None, once: bool = False) -> Any: ...

Task = Callable[[], None]


def _described(record: dict[str, Any] | None, what: str) -> dict[str, Any]:
    """A record ``primary`` described before any task runs (the tasks read it, never set it)."""
    if record is None:
        raise RuntimeError(f"the {what} was read before ``primary`` described it")
    return record


def _fact(response: dict[str, Any]) -> dict[str, Any]:
    """A whole response kept as a record, minus the transport metadata."""
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def primary(ctx: _Ctx, inv: AwsInventory) -> None:
    """The primary (or the cluster writer) and its replicas; everything else hangs off them."""
    rds, cfg = ctx.client("rds"), ctx.cfg
    inv.endpoint = ctx.endpoint = cfg.endpoint_url or rds.meta.endpoint_url
    member_ids: list[str] = []
    writer_id = cfg.db_instance_id
    if cfg.db_cluster_id:
        try:
            inv.cluster = rds.describe_db_clusters(DBClusterIdentifier=cfg.db_cluster_id)["DBClusters"][0]
        except ClientError as exc:
            if _code(exc) != "DBClusterNotFoundFault":
                raise
            raise Unreachable(f"DB cluster {cfg.db_cluster_id} does not exist in region "
                              f"{cfg.region} at {inv.endpoint}.") from None
        members = inv.cluster.get("DBClusterMembers", [])
        writer_id = writer_id or next((m["DBInstanceIdentifier"] for m in members
                                       if m.get("IsClusterWriter")), None)
        member_ids = [m["DBInstanceIdentifier"] for m in members
                      if m["DBInstanceIdentifier"] != writer_id]
    if not writer_id:
        raise Unreachable("the [aws] section names neither db_instance_id nor a DB cluster "
                          "with a writer, so there is no database to describe.")
    try:
        inv.primary = rds.describe_db_instances(DBInstanceIdentifier=writer_id)["DBInstances"][0]
    except ClientError as exc:
        if _code(exc) != "DBInstanceNotFound":
            raise
        raise Unreachable(f"DB instance {writer_id} does not exist in region {cfg.region} "
                          f"at {inv.endpoint}.") from None
    replica_ids = member_ids + [r for r in inv.primary.get("ReadReplicaDBInstanceIdentifiers", [])
                                if not r.startswith("arn:")]
    if replica_ids:
        inv.replicas = _pages(rds, "describe_db_instances", "DBInstances",
                              Filters=[{"Name": "db-instance-id", "Values": replica_ids}])


def first_wave(ctx: _Ctx, inv: AwsInventory) -> list[Task]:
    """Independent tasks; each needs only the instances (and cluster) already described."""
    tasks: list[Task] = [lambda: _parameters(ctx, inv)]
    tasks += [lambda: _snapshots(ctx, inv), lambda: _network(ctx, inv), lambda: _security_groups(ctx, inv),
              lambda: _kms(ctx, inv), lambda: _secret(ctx, inv), lambda: _alarms(ctx, inv),
              lambda: _logs(ctx, inv), lambda: _backup(ctx, inv), lambda: _capabilities(ctx, inv)]
    if inv.cluster is not None:
        tasks += [lambda: _cluster_snapshots(ctx, inv), lambda: _global_cluster(ctx, inv)]
    if inv.replicas:
        tasks.append(lambda: _replica_lag(ctx, inv))
    if ctx.cfg.db_proxy_name:
        tasks.append(lambda: _proxy(ctx, inv))
    if ctx.cfg.backup_bucket:
        tasks.append(lambda: _bucket(ctx, inv))
    return tasks


def _values(params: list[dict[str, Any]]) -> tuple[dict[str, str | None], dict[str, str | None]]:
    return ({p["ParameterName"]: p.get("ParameterValue") for p in params},
            {p["ParameterName"]: p.get("Source") for p in params})


def _parameters(ctx: _Ctx, inv: AwsInventory) -> None:
    """Instance groups, the cluster group, and the engine defaults of their families.

    The engine defaults answer for a parameter no group sets (a PG16+ default of
    ``rds.force_ssl = 1`` counts); an endpoint without those APIs leaves them in
    ``missing`` and the judges say "cannot verify" rather than guess.
    """
    rds = ctx.client("rds")
    groups = sorted({g["DBParameterGroupName"] for i in inv.instances
                     for g in i.get("DBParameterGroups", [])})
    for group in groups:
        inv.parameters[group], inv.parameter_sources[group] = _values(
            _pages(rds, "describe_db_parameters", "Parameters", DBParameterGroupName=group))
        if group.startswith("default."):  # AWS names its default groups after their family
            inv.parameter_families[group] = group.removeprefix("default.")
            continue
        found = rds.describe_db_parameter_groups(DBParameterGroupName=group)["DBParameterGroups"]
        if found:
            inv.parameter_families[group] = found[0]["DBParameterGroupFamily"]
    cgroup = (inv.cluster or {}).get("DBClusterParameterGroup")
    if cgroup:
        inv.cluster_parameters, inv.cluster_parameter_sources = _values(
            _pages(rds, "describe_db_cluster_parameters", "Parameters",
                   DBClusterParameterGroupName=cgroup))
        found = rds.describe_db_cluster_parameter_groups(
            DBClusterParameterGroupName=cgroup)["DBClusterParameterGroups"]
        if found:
            inv.parameter_families[cgroup] = found[0]["DBParameterGroupFamily"]
    once = ctx.client("rds", once=True)
    for family in sorted({inv.parameter_families[g] for g in groups if g in inv.parameter_families}):
        got = _optional(inv, "engine_defaults", partial(
            _engine_defaults, once, "describe_engine_default_parameters", family))
        if got is not None:
            inv.engine_defaults[family] = got
    if cgroup and cgroup in inv.parameter_families:
        family = inv.parameter_families[cgroup]
        got = _optional(inv, "cluster_engine_defaults", lambda: _engine_defaults(
            once, "describe_engine_default_cluster_parameters", family))
        if got is not None:
            inv.cluster_engine_defaults[family] = got


def _engine_defaults(rds: Any, op: str, family: str) -> dict[str, str | None]:
    full = rds.get_paginator(op).paginate(DBParameterGroupFamily=family).build_full_result()
    return _values(full.get("EngineDefaults", {}).get("Parameters", []))[0]


def _snapshots(ctx: _Ctx, inv: AwsInventory) -> None:
    rds, pid = ctx.client("rds"), _described(inv.primary, "primary")["DBInstanceIdentifier"]
    inv.snapshots = _pages(rds, "describe_db_snapshots", "DBSnapshots", DBInstanceIdentifier=pid)
    for snap in inv.snapshots:
        if snap.get("SnapshotType") == "manual":
            sid = snap["DBSnapshotIdentifier"]
            res = rds.describe_db_snapshot_attributes(DBSnapshotIdentifier=sid)
            attrs = res["DBSnapshotAttributesResult"].get("DBSnapshotAttributes", [])
            inv.snapshot_restore[sid] = [v for a in attrs if a["AttributeName"] == "restore"
                                         for v in a.get("AttributeValues", [])]
    inv.automated_backups = _pages(rds, "describe_db_instance_automated_backups",
                                   "DBInstanceAutomatedBackups", DBInstanceIdentifier=pid)


def _cluster_snapshots(ctx: _Ctx, inv: AwsInventory) -> None:
    """Cluster snapshots (Aurora and Multi-AZ DB clusters keep theirs apart) and who may restore them."""
    rds, cid = ctx.client("rds"), _described(inv.cluster, "cluster")["DBClusterIdentifier"]
    inv.cluster_snapshots = _pages(rds, "describe_db_cluster_snapshots", "DBClusterSnapshots",
                                   DBClusterIdentifier=cid)
    for snap in inv.cluster_snapshots:
        if snap.get("SnapshotType") == "manual":
            sid = snap["DBClusterSnapshotIdentifier"]
            res = rds.describe_db_cluster_snapshot_attributes(DBClusterSnapshotIdentifier=sid)
            attrs = res["DBClusterSnapshotAttributesResult"].get("DBClusterSnapshotAttributes", [])
            inv.cluster_snapshot_restore[sid] = [v for a in attrs if a["AttributeName"] == "restore"
                                                 for v in a.get("AttributeValues", [])]


def _global_cluster(ctx: _Ctx, inv: AwsInventory) -> None:
    """The Aurora global database this cluster belongs to, if any (BAK-3's geo-redundancy)."""
    arn = _described(inv.cluster, "cluster").get("DBClusterArn")
    once = ctx.client("rds", once=True)
    found = _optional(inv, "global_clusters", lambda: _pages(
        once, "describe_global_clusters", "GlobalClusters"))
    for gc in found or []:
        if any(m.get("DBClusterArn") == arn for m in gc.get("GlobalClusterMembers", [])):
            inv.global_cluster = gc


def _proxy(ctx: _Ctx, inv: AwsInventory) -> None:
    try:
        inv.proxy = ctx.client("rds").describe_db_proxies(
            DBProxyName=ctx.cfg.db_proxy_name)["DBProxies"][0]
    except ClientError as exc:
        if _code(exc) != "DBProxyNotFoundFault":
            raise


def _network(ctx: _Ctx, inv: AwsInventory) -> None:
    """Effective route table per DB subnet: the explicit association, else the VPC's main table."""
    ec2 = ctx.client("ec2")
    by_vpc: dict[str, set[str]] = {}
    records = [i.get("DBSubnetGroup") or {} for i in inv.instances]
    name = (inv.cluster or {}).get("DBSubnetGroup")  # a cluster names its group (moto's members do not)
    if name:
        records += ctx.client("rds").describe_db_subnet_groups(
            DBSubnetGroupName=name)["DBSubnetGroups"][:1]
    for sg in records:
        by_vpc.setdefault(sg.get("VpcId", ""), set()).update(
            s["SubnetIdentifier"] for s in sg.get("Subnets", []))
    for vpc, subnets in by_vpc.items():
        tables = _pages(ec2, "describe_route_tables", "RouteTables",
                        Filters=[{"Name": "vpc-id", "Values": [vpc]}])
        explicit = {a["SubnetId"]: t for t in tables for a in t.get("Associations", [])
                    if a.get("SubnetId")}
        main = next((t for t in tables for a in t.get("Associations", []) if a.get("Main")), None)
        for sn in sorted(subnets):
            table = explicit.get(sn, main)
            inv.subnet_routes[sn] = {"vpc_id": vpc, "explicit": sn in explicit,
                                     "route_table_id": table["RouteTableId"] if table else None,
                                     "routes": (table or {}).get("Routes", [])}


def _security_groups(ctx: _Ctx, inv: AwsInventory) -> None:
    ids = sorted({g["VpcSecurityGroupId"] for i in [*inv.instances, *([inv.cluster] if inv.cluster else [])]
                  for g in i.get("VpcSecurityGroups", [])})
    if ids:
        groups = _pages(ctx.client("ec2"), "describe_security_groups", "SecurityGroups", GroupIds=ids)
        inv.security_groups = {g["GroupId"]: g for g in groups}


def _kms(ctx: _Ctx, inv: AwsInventory) -> None:
    kms = ctx.client("kms")
    records = [*inv.instances, *([inv.cluster] if inv.cluster else [])]
    for key_id in sorted({i["KmsKeyId"] for i in records if i.get("KmsKeyId")}):
        try:
            meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
        except ClientError as exc:  # a key in another account, or a placeholder id: ENC-1 says so
            if _code(exc) != "NotFoundException":
                raise
            continue
        fact: dict[str, Any] = {**meta, "Aliases": [], "RotationEnabled": None}
        aliases = _pages(kms, "list_aliases", "Aliases", KeyId=meta["KeyId"])
        # Only this key's aliases: an unfiltered answer (every alias of the account, some with
        # no TargetKeyId) must not name another service's key (recorded real responses).
        fact["Aliases"] = [a["AliasName"] for a in aliases if a.get("TargetKeyId") == meta["KeyId"]]
        try:
            fact["RotationEnabled"] = kms.get_key_rotation_status(KeyId=meta["KeyId"])["KeyRotationEnabled"]
        except ClientError as exc:
            if _code(exc) not in {"KMSInvalidStateException", "UnsupportedOperationException"}:
                raise
        inv.kms_keys[key_id] = fact


def _secret(ctx: _Ctx, inv: AwsInventory) -> None:
    """The configured secret, else the one RDS manages (cluster's first: Aurora members have none)."""
    managed = ((inv.cluster or {}).get("MasterUserSecret") or {}).get("SecretArn") or (
        _described(inv.primary, "primary").get("MasterUserSecret") or {}).get("SecretArn")
    inv.secret_id = ctx.cfg.secret_id or managed
    inv.secret_from_api = not ctx.cfg.secret_id and bool(managed)
    if not inv.secret_id:
        return
    sm = ctx.client("secretsmanager")
    try:
        inv.secret = _fact(sm.describe_secret(SecretId=inv.secret_id))
    except ClientError as exc:
        if _code(exc) != "ResourceNotFoundException":
            raise
        return
    try:
        inv.secret_password_length = password_length(
            sm.get_secret_value(SecretId=inv.secret_id).get("SecretString"))
    except ClientError as exc:
        inv.missing["secret_password"] = f"GetSecretValue was refused ({_code(exc)})"
        return
    if inv.secret_password_length is None:
        inv.missing["secret_password"] = "the secret has no readable password field"


def _alarms(ctx: _Ctx, inv: AwsInventory) -> None:
    alarms = _pages(ctx.client("cloudwatch"), "describe_alarms", "MetricAlarms")
    inv.alarms = [a for a in alarms if a.get("Namespace") in ("AWS/RDS", "AWS/Backup")]
    inv.event_subscriptions = _optional(inv, "event_subscriptions", lambda: _pages(
        ctx.client("rds"), "describe_event_subscriptions", "EventSubscriptionsList"))
    topics = sorted({t for a in inv.alarms for t in a.get("AlarmActions", []) if ":sns:" in t}
                    | {e["SnsTopicArn"] for e in inv.event_subscriptions or [] if e.get("SnsTopicArn")})
    sns = ctx.client("sns")
    for topic in topics:
        try:
            inv.topic_subscriptions[topic] = _pages(sns, "list_subscriptions_by_topic",
                                                    "Subscriptions", TopicArn=topic)
        except ClientError as exc:
            if _code(exc) != "NotFound":
                raise
            inv.topic_subscriptions[topic] = []


# How far back HA-5 looks at CloudWatch's replica lag, and the period of each Maximum.
LAG_WINDOW_S = 300
LAG_PERIOD_S = 60


def lag_metric(inv: AwsInventory) -> str:
    """Aurora readers publish ``AuroraReplicaLag`` (ms); RDS read replicas and Multi-AZ DB
    cluster readers ``ReplicaLag`` (s) (AWS's CloudWatch metrics for Aurora and for RDS)."""
    return "AuroraReplicaLag" if inv.aurora else "ReplicaLag"


def _replica_lag(ctx: _Ctx, inv: AwsInventory) -> None:
    """Each reader's lag Maximum per minute over the last window: one call per reader."""
    cw, metric = ctx.client("cloudwatch"), lag_metric(inv)
    end = datetime.now(UTC)
    for r in inv.replicas:
        rid = r["DBInstanceIdentifier"]
        got = cw.get_metric_statistics(
            Namespace="AWS/RDS", MetricName=metric, StartTime=end - timedelta(seconds=LAG_WINDOW_S),
            EndTime=end, Period=LAG_PERIOD_S, Statistics=["Maximum"],
            Dimensions=[{"Name": "DBInstanceIdentifier", "Value": rid}])
        inv.replica_lag[rid] = {"MetricName": metric, "window_s": LAG_WINDOW_S,
                                "Datapoints": got.get("Datapoints", [])}


def default_log_prefix(inv: AwsInventory) -> str:
    """Where RDS exports logs: per cluster for Aurora/Multi-AZ DB clusters, else per instance."""
    if inv.cluster is not None:
        return f"/aws/rds/cluster/{inv.cluster['DBClusterIdentifier']}"
    return f"/aws/rds/instance/{_described(inv.primary, 'primary')['DBInstanceIdentifier']}"


def _logs(ctx: _Ctx, inv: AwsInventory) -> None:
    prefix = ctx.cfg.log_group_prefix or default_log_prefix(inv)
    inv.log_group_prefix = prefix.rstrip("/")
    groups = _pages(ctx.client("logs"), "describe_log_groups", "logGroups", logGroupNamePrefix=prefix)
    inv.log_groups = {g["logGroupName"]: g for g in groups}


_BUCKET_CALLS: dict[BucketFact, tuple[str, str, str | None]] = {
    "encryption": ("get_bucket_encryption", "ServerSideEncryptionConfiguration",
                   "ServerSideEncryptionConfigurationNotFoundError"),
    "public_access_block": ("get_public_access_block", "PublicAccessBlockConfiguration",
                            "NoSuchPublicAccessBlockConfiguration"),
    "versioning": ("get_bucket_versioning", "Status", None),
    "lifecycle": ("get_bucket_lifecycle_configuration", "Rules", "NoSuchLifecycleConfiguration"),
}


def _bucket(ctx: _Ctx, inv: AwsInventory) -> None:
    s3, name = ctx.client("s3"), ctx.cfg.backup_bucket
    for fact, (op, key, absent) in _BUCKET_CALLS.items():
        try:
            inv.bucket[fact] = getattr(s3, op)(Bucket=name).get(key)
        except ClientError as exc:
            if _code(exc) == "NoSuchBucket":
                inv.bucket = {"exists": False}
                return
            if _code(exc) != absent:
                raise
            inv.bucket[fact] = None
    inv.bucket["exists"] = True


def _backup(ctx: _Ctx, inv: AwsInventory) -> None:
    """Plans (with their copy destinations checked in their own regions) and their selections."""
    bk = ctx.client("backup")
    ids = [ctx.cfg.backup_plan_id] if ctx.cfg.backup_plan_id else [
        p["BackupPlanId"] for p in _pages(bk, "list_backup_plans", "BackupPlansList")]
    for pid in ids:
        try:
            inv.backup_plans.append(_fact(bk.get_backup_plan(BackupPlanId=pid)))
        except ClientError as exc:
            if _code(exc) != "ResourceNotFoundException":
                raise
    once = ctx.client("backup", once=True)
    for plan in inv.backup_plans:
        for rule in plan["BackupPlan"].get("Rules", []):
            for action in rule.get("CopyActions", []):
                arn = action["DestinationBackupVaultArn"]
                if arn not in inv.backup_vault_exists:
                    inv.backup_vault_exists[arn] = _vault_exists(ctx, arn)
        pid = plan["BackupPlanId"]
        sels = _optional(inv, "backup_selections", partial(
            _pages, once, "list_backup_selections", "BackupSelectionsList", BackupPlanId=pid))
        if sels is not None:
            inv.backup_selections[pid] = [
                bk.get_backup_selection(BackupPlanId=pid, SelectionId=s["SelectionId"])["BackupSelection"]
                for s in sels]


def _vault_exists(ctx: _Ctx, arn: str) -> bool:
    region, name = arn.split(":")[3], arn.split(":")[-1]
    try:
        ctx.client("backup", region).describe_backup_vault(BackupVaultName=name)
        return True
    except ClientError as exc:
        if _code(exc) not in {"ResourceNotFoundException", "AccessDeniedException"}:
            raise
        return False


def _capabilities(ctx: _Ctx, inv: AwsInventory) -> None:
    """Facts from APIs some endpoints lack: instance memory, engine version status, CA expiry."""
    p = _described(inv.primary, "primary")
    ec2 = ctx.client("ec2", once=True)
    itype = p["DBInstanceClass"].removeprefix("db.")
    types = _optional(inv, "instance_memory", lambda: ec2.describe_instance_types(
        InstanceTypes=[itype])["InstanceTypes"])
    if types:
        inv.instance_memory_bytes = types[0]["MemoryInfo"]["SizeInMiB"] * 1024 * 1024
    elif types is not None:
        inv.missing["instance_memory"] = f"no EC2 instance type {itype}"
    rds = ctx.client("rds", once=True)
    versions = _optional(inv, "engine_versions", lambda: rds.describe_db_engine_versions(
        Engine=p["Engine"], EngineVersion=p["EngineVersion"])["DBEngineVersions"])
    if versions:
        inv.engine_version_info = versions[0]
    elif versions is not None:
        inv.missing["engine_versions"] = f"no record of {p['Engine']} {p['EngineVersion']}"
    cas: set[str] = {i["CACertificateIdentifier"] for i in inv.instances
                     if i.get("CACertificateIdentifier") is not None}
    for ca in sorted(cas):
        certs = _optional(inv, "certificates", partial(_certificates, rds, ca))
        if certs:
            inv.certificates[ca] = certs[0]


def _certificates(rds: Any, ca: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = rds.describe_certificates(CertificateIdentifier=ca)["Certificates"]
    return found
