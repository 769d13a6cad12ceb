"""The describe calls behind ``pgproof.probes.aws.gather``, one small function per fact family.

Each ``_task`` fills its own fields of the inventory, so the tasks can run in
parallel without locks. Expected absences (no lifecycle, secret not found)
become empty facts; APIs the endpoint lacks become ``inv.missing`` entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from pgproof.probes.aws import AwsInventory, _code, _optional, _pages, password_length
from pgproof.verdict import Unreachable

if TYPE_CHECKING:
    from pgproof.probes.aws import _Ctx

Task = Callable[[], None]


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
    """Independent tasks; each needs only the instances already described."""
    groups = {g["DBParameterGroupName"] for i in inv.instances for g in i.get("DBParameterGroups", [])}
    tasks: list[Task] = [lambda g=g: _parameters(ctx, inv, g) for g in sorted(groups)]
    tasks += [lambda: _snapshots(ctx, inv), lambda: _network(ctx, inv), lambda: _security_groups(ctx, inv),
              lambda: _kms(ctx, inv), lambda: _secret(ctx, inv), lambda: _alarms(ctx, inv),
              lambda: _logs(ctx, inv), lambda: _backup(ctx, inv), lambda: _capabilities(ctx, inv)]
    if ctx.cfg.db_proxy_name:
        tasks.append(lambda: _proxy(ctx, inv))
    if ctx.cfg.backup_bucket:
        tasks.append(lambda: _bucket(ctx, inv))
    return tasks


def _parameters(ctx: _Ctx, inv: AwsInventory, group: str) -> None:
    params = _pages(ctx.client("rds"), "describe_db_parameters", "Parameters",
                    DBParameterGroupName=group)
    inv.parameters[group] = {p["ParameterName"]: p.get("ParameterValue") for p in params}


def _snapshots(ctx: _Ctx, inv: AwsInventory) -> None:
    rds, pid = ctx.client("rds"), inv.primary["DBInstanceIdentifier"]
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
    for inst in inv.instances:
        sg = inst.get("DBSubnetGroup") or {}
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
                                     "route_table_id": table and table["RouteTableId"],
                                     "routes": (table or {}).get("Routes", [])}


def _security_groups(ctx: _Ctx, inv: AwsInventory) -> None:
    ids = sorted({g["VpcSecurityGroupId"] for i in inv.instances for g in i.get("VpcSecurityGroups", [])})
    if ids:
        groups = _pages(ctx.client("ec2"), "describe_security_groups", "SecurityGroups", GroupIds=ids)
        inv.security_groups = {g["GroupId"]: g for g in groups}


def _kms(ctx: _Ctx, inv: AwsInventory) -> None:
    kms = ctx.client("kms")
    for key_id in sorted({i["KmsKeyId"] for i in inv.instances if i.get("KmsKeyId")}):
        meta = kms.describe_key(KeyId=key_id)["KeyMetadata"]
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
    managed = (inv.primary.get("MasterUserSecret") or {}).get("SecretArn")
    inv.secret_id = ctx.cfg.secret_id or managed
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


def _logs(ctx: _Ctx, inv: AwsInventory) -> None:
    prefix = ctx.cfg.log_group_prefix or f"/aws/rds/instance/{inv.primary['DBInstanceIdentifier']}"
    inv.log_group_prefix = prefix.rstrip("/")
    groups = _pages(ctx.client("logs"), "describe_log_groups", "logGroups", logGroupNamePrefix=prefix)
    inv.log_groups = {g["logGroupName"]: g for g in groups}


_BUCKET_CALLS = {
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
        sels = _optional(inv, "backup_selections", lambda pid=pid: _pages(
            once, "list_backup_selections", "BackupSelectionsList", BackupPlanId=pid))
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
    p = inv.primary
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
    for ca in sorted({i.get("CACertificateIdentifier") for i in inv.instances} - {None}):
        certs = _optional(inv, "certificates", lambda ca=ca: rds.describe_certificates(
            CertificateIdentifier=ca)["Certificates"])
        if certs:
            inv.certificates[ca] = certs[0]
