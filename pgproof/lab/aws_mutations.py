"""Named misconfigurations of the AWS twin, each with the control IDs it must make fail.

A check that cannot fail is a defect: the mutation matrix applies each entry,
re-gathers, and expects exactly ``breaks`` to fail; ``heal`` puts back the
healthy value (the same one ``aws_twin`` provisions). Changes RDS cannot make
in place (storage encryption, KMS key, master username) recreate the primary
and its replica; those entries are ``moto_only`` - on a real account the same
fault means a snapshot-restore migration, not a toggle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pgproof.lab import aws_spec as spec
from pgproof.lab import aws_twin as tw
from pgproof.lab.aws_state import AwsTwin
from pgproof.lab.aws_twin import AwsClients

Step = Callable[[AwsClients, AwsTwin], None]


@dataclass(frozen=True)
class AwsMutation:
    name: str
    description: str
    breaks: frozenset[str]
    apply: Step
    heal: Step
    moto_only: bool = False
    # Heals only against in-process moto (no API deletes a CloudWatch datapoint): not offered
    # on the served lab twin, whose lag would stay for the 5-minute window after a heal.
    in_process_only: bool = False


# Settings a DB cluster owns (its members cannot set them): on the cluster shape the same
# mutation modifies the cluster, as a user of Aurora would have to.
CLUSTER_FIELDS = {"BackupRetentionPeriod", "DeletionProtection", "CloudwatchLogsExportConfiguration",
                  "MasterUserPassword"}


def _modify(**kw: object) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        on_cluster = {k: v for k, v in kw.items() if t.db_cluster_id and k in CLUSTER_FIELDS}
        if on_cluster:
            c.rds.modify_db_cluster(DBClusterIdentifier=t.db_cluster_id, ApplyImmediately=True,
                                    **on_cluster)
        rest = {k: v for k, v in kw.items() if k not in on_cluster}
        if rest:
            c.rds.modify_db_instance(DBInstanceIdentifier=t.db_instance_id, ApplyImmediately=True,
                                     **rest)
    return step


def _param(name: str, value: str) -> Step:
    """The parameter in the group that holds it: the DB cluster group on the cluster shape."""
    def step(c: AwsClients, t: AwsTwin) -> None:
        method = "pending-reboot" if name == "shared_preload_libraries" else "immediate"
        change = [{"ParameterName": name, "ParameterValue": value, "ApplyMethod": method}]
        if t.db_cluster_id:
            c.rds.modify_db_cluster_parameter_group(
                DBClusterParameterGroupName=t.cluster_parameter_group, Parameters=change)
        else:
            c.rds.modify_db_parameter_group(DBParameterGroupName=t.parameter_group, Parameters=change)
    return step


def _params(values: dict[str, str]) -> Step:
    """Several parameters in one change, as an operator edits a group."""
    def step(c: AwsClients, t: AwsTwin) -> None:
        for name, value in values.items():
            _param(name, value)(c, t)
    return step


def _log_exports(on: bool) -> Step:
    """Instance: ModifyDBInstance. Cluster: rebuilt without exports, because moto 5.2.5's
    ModifyDBCluster ignores CloudwatchLogsExportConfiguration (on AWS it is a modify)."""
    def step(c: AwsClients, t: AwsTwin) -> None:
        if not t.db_cluster_id:
            key = "EnableLogTypes" if on else "DisableLogTypes"
            _modify(CloudwatchLogsExportConfiguration={key: _EXPORTS})(c, t)
        elif on:
            _recreate()(c, t)
        else:
            _recreate(EnableCloudwatchLogsExports=[])(c, t)
    return step


def _multi_az(on: bool) -> Step:
    """Instance: the Multi-AZ flag. Cluster: the reader rebuilt in the writer's AZ (and back)."""
    def step(c: AwsClients, t: AwsTwin) -> None:
        if not t.db_cluster_id:
            _modify(MultiAZ=on)(c, t)
            return
        for rid in t.replica_ids:
            c.rds.delete_db_instance(DBInstanceIdentifier=rid, SkipFinalSnapshot=True)
            c.rds.create_db_instance(**spec.member_kwargs(t, rid, "b" if on else "a"))
    return step


def _ingress(perm: dict[str, Any]) -> tuple[Step, Step]:
    def add(c: AwsClients, t: AwsTwin) -> None:
        c.ec2.authorize_security_group_ingress(GroupId=t.db_security_group_id, IpPermissions=[_fill(perm, t)])

    def remove(c: AwsClients, t: AwsTwin) -> None:
        c.ec2.revoke_security_group_ingress(GroupId=t.db_security_group_id, IpPermissions=[_fill(perm, t)])
    return add, remove


def _fill(perm: dict[str, Any], t: AwsTwin) -> dict[str, Any]:
    if perm.get("UserIdGroupPairs") == "app":
        return {**perm, "UserIdGroupPairs": [{"GroupId": g} for g in t.app_security_group_ids]}
    return perm


def _recreate(**overrides: object) -> Step:
    """Delete replica and primary, then build them again with ``overrides`` (moto only)."""
    def step(c: AwsClients, t: AwsTwin) -> None:
        for rid in [*t.replica_ids, t.db_instance_id]:
            if not t.db_cluster_id:
                c.rds.modify_db_instance(DBInstanceIdentifier=rid, DeletionProtection=False,
                                         ApplyImmediately=True)
            c.rds.delete_db_instance(DBInstanceIdentifier=rid, SkipFinalSnapshot=True,
                                     DeleteAutomatedBackups=True)
        if t.db_cluster_id:
            _recreate_cluster_prelude(c, t)
        tw.create_database(c, t, **overrides)
        if t.db_cluster_id:
            c.rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=t.snapshot_id,
                                             DBClusterIdentifier=t.db_cluster_id)
        if t.db_proxy_name:
            tw.register_proxy(c, t)
    return step


def _recreate_cluster_prelude(c: AwsClients, t: AwsTwin) -> None:
    """The cluster and its snapshots go too (a new cluster starts with new snapshots)."""
    c.rds.modify_db_cluster(DBClusterIdentifier=t.db_cluster_id, DeletionProtection=False,
                            ApplyImmediately=True)
    # Automated ones too: moto keeps them after the cluster, named per minute, and a
    # cluster recreated in the same minute would collide with its own.
    snaps = c.rds.describe_db_cluster_snapshots(DBClusterIdentifier=t.db_cluster_id)["DBClusterSnapshots"]
    for snap in snaps:
        c.rds.delete_db_cluster_snapshot(DBClusterSnapshotIdentifier=snap["DBClusterSnapshotIdentifier"])
    c.rds.delete_db_cluster(DBClusterIdentifier=t.db_cluster_id, SkipFinalSnapshot=True)


def _route(table: str, add: bool) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        rt = getattr(t, table) if table != "main" else _main_table(c, t)
        if add:
            c.ec2.create_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=t.igw_id)
        else:
            c.ec2.delete_route(RouteTableId=rt, DestinationCidrBlock="0.0.0.0/0")
    return step


def _main_table(c: AwsClients, t: AwsTwin) -> str:
    tables = c.ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [t.vpc_id]},
                                                  {"Name": "association.main", "Values": ["true"]}])
    table_id: str = tables["RouteTables"][0]["RouteTableId"]
    return table_id


def _main_fallback_break(c: AwsClients, t: AwsTwin) -> None:
    """First DB subnet loses its explicit association and falls back to a public main table."""
    _route("main", True)(c, t)
    tables = c.ec2.describe_route_tables(RouteTableIds=[t.private_route_table_id])["RouteTables"]
    assoc = next(a["RouteTableAssociationId"] for a in tables[0]["Associations"]
                 if a.get("SubnetId") == t.private_subnet_ids[0])
    c.ec2.disassociate_route_table(AssociationId=assoc)


def _main_fallback_heal(c: AwsClients, t: AwsTwin) -> None:
    c.ec2.associate_route_table(RouteTableId=t.private_route_table_id, SubnetId=t.private_subnet_ids[0])
    _route("main", False)(c, t)


def _snapshot_public(add: bool) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        key = "ValuesToAdd" if add else "ValuesToRemove"
        if t.db_cluster_id:
            c.rds.modify_db_cluster_snapshot_attribute(DBClusterSnapshotIdentifier=t.snapshot_id,
                                                       AttributeName="restore", **{key: ["all"]})
            return
        c.rds.modify_db_snapshot_attribute(DBSnapshotIdentifier=t.snapshot_id,
                                           AttributeName="restore", **{key: ["all"]})
    return step


def _recreate_secret(rotate: bool) -> Step:
    """The secret gets a new ARN, so the proxy that authenticates with it is rebuilt too."""
    def step(c: AwsClients, t: AwsTwin) -> None:
        c.secretsmanager.delete_secret(SecretId=t.secret_id, ForceDeleteWithoutRecovery=True)
        tw.create_secret(c, t, rotate=rotate)
        if t.db_proxy_name:
            _proxy(True)(c, t)
    return step


def _password(short: bool) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        pw = "Short-pw-42" if short else t.password
        _modify(MasterUserPassword=pw)(c, t)
        c.secretsmanager.put_secret_value(SecretId=t.secret_id,
                                          SecretString=spec.secret_document(t, pw))
    return step


def _alarms_delete(c: AwsClients, t: AwsTwin) -> None:
    c.cloudwatch.delete_alarms(AlarmNames=list(t.alarm_names))


def _alarms_create(c: AwsClients, t: AwsTwin) -> None:
    for alarm in spec.alarm_specs(t):
        c.cloudwatch.put_metric_alarm(**alarm)


def _storage_alarms_delete(c: AwsClients, t: AwsTwin) -> None:
    c.cloudwatch.delete_alarms(AlarmNames=[a["AlarmName"] for a in spec.alarm_specs(t)
                                           if a["MetricName"] in spec.STORAGE_METRICS])


def _events_delete(c: AwsClients, t: AwsTwin) -> None:
    c.rds.delete_event_subscription(SubscriptionName=spec.event_subscription_spec(t)["SubscriptionName"])


def _events_create(c: AwsClients, t: AwsTwin) -> None:
    c.rds.create_event_subscription(**spec.event_subscription_spec(t))


def _unsubscribe(c: AwsClients, t: AwsTwin) -> None:
    subs = c.sns.list_subscriptions_by_topic(TopicArn=t.sns_topic_arn)["Subscriptions"]
    for s in subs:
        c.sns.unsubscribe(SubscriptionArn=s["SubscriptionArn"])


def _subscribe(c: AwsClients, t: AwsTwin) -> None:
    c.sns.subscribe(TopicArn=t.sns_topic_arn, Protocol="email", Endpoint=t.alarm_email)


def _copy_vault(present: bool) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        if present:
            c.backup_copy.create_backup_vault(BackupVaultName=t.backup_copy_vault)
        else:
            c.backup_copy.delete_backup_vault(BackupVaultName=t.backup_copy_vault)
    return step


def _lifecycle(expire: int | None) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        conf = spec.bucket_lifecycle() if expire is None else {"Rules": [{
            "ID": "archive", "Status": "Enabled", "Filter": {"Prefix": ""},
            "Expiration": {"Days": expire}}]}
        c.s3.put_bucket_lifecycle_configuration(Bucket=t.backup_bucket, LifecycleConfiguration=conf)
    return step


def _bucket_public(c: AwsClients, t: AwsTwin) -> None:
    c.s3.delete_public_access_block(Bucket=t.backup_bucket)
    c.s3.put_bucket_acl(Bucket=t.backup_bucket, ACL="public-read")


def _bucket_private(c: AwsClients, t: AwsTwin) -> None:
    c.s3.put_bucket_acl(Bucket=t.backup_bucket, ACL="private")
    c.s3.put_public_access_block(Bucket=t.backup_bucket,
                                 PublicAccessBlockConfiguration=spec.PUBLIC_ACCESS_BLOCK)


def _bucket_encryption(on: bool) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        if not on:
            c.s3.delete_bucket_encryption(Bucket=t.backup_bucket)
            return
        c.s3.put_bucket_encryption(Bucket=t.backup_bucket, ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {
                "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": t.kms_key_arn}, "BucketKeyEnabled": True}]})
    return step


def _versioning(status: str) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        c.s3.put_bucket_versioning(Bucket=t.backup_bucket, VersioningConfiguration={"Status": status})
    return step


def _log_retention(on: bool) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        group = f"{t.log_group_prefix}/postgresql"
        if on:
            c.logs.put_retention_policy(logGroupName=group, retentionInDays=spec.LOG_RETENTION_DAYS)
        else:
            c.logs.delete_retention_policy(logGroupName=group)
    return step


def _kms(method: str) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        getattr(c.kms, method)(KeyId=t.kms_key_id)
    return step


def _proxy(require_tls: bool) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        c.rds.delete_db_proxy(DBProxyName=t.db_proxy_name)
        c.rds.create_db_proxy(**spec.proxy_kwargs(t, require_tls=require_tls))
        tw.register_proxy(c, t)
    return step


def _monitoring(on: bool) -> Step:
    def step(c: AwsClients, t: AwsTwin) -> None:
        kw = {"MonitoringInterval": 60, "MonitoringRoleArn": t.monitoring_role_arn} if on else {
            "MonitoringInterval": 0}
        _modify(**kw)(c, t)
    return step


# A lag well above the default 30 s threshold (the matrix runs with the default thresholds).
LAGGING_S = 120.0


def _lag_publish(c: AwsClients, t: AwsTwin) -> None:
    tw.publish_replica_lag(c, t, LAGGING_S, minutes=1)


def _lag_retract(c: AwsClients, t: AwsTwin) -> None:
    """CloudWatch has no call that deletes a datapoint: in-process moto's store is edited.

    Against a served twin this process holds no such store; the heal says so rather than
    return as if healed (the lag would stay in every check for the 5-minute window).
    """
    from moto.cloudwatch.models import cloudwatch_backends  # the lab extra; in-process only

    limit = LAGGING_S * (1000 if t.db_cluster_id else 1)
    lag_metrics = {"ReplicaLag", "AuroraReplicaLag"}
    found = False
    for account in cloudwatch_backends.values():
        backend = account.get(t.region) if hasattr(account, "get") else None
        if backend is None:
            continue
        lag = [d for d in backend.metric_data if d.namespace == "AWS/RDS" and d.name in lag_metrics]
        found = found or bool(lag)
        backend.metric_data = [d for d in backend.metric_data
                               if not (d.namespace == "AWS/RDS" and d.name in lag_metrics
                                       and getattr(d, "value", 0) >= limit)]
    if not found:
        raise RuntimeError("replica-lagging cannot heal here: this process holds no in-process "
                           "moto CloudWatch store with the twin's replica lag (a served twin "
                           "keeps the lagging datapoints for the 5-minute window)")


_EXPORTS = ["postgresql", "upgrade"]
_WORLD4 = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
           "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "pgproof mutation"}]}
_WORLD6 = {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
           "Ipv6Ranges": [{"CidrIpv6": "::/0", "Description": "pgproof mutation"}]}
_ALL_PORTS = {"IpProtocol": "-1", "UserIdGroupPairs": "app"}
_ENC_KEY = {"StorageEncrypted": True}


def _m(name: str, description: str, breaks: str, apply: Step, heal: Step,
       moto_only: bool = False, in_process_only: bool = False) -> AwsMutation:
    return AwsMutation(name, description, frozenset(breaks.split()), apply, heal, moto_only,
                       in_process_only)


_CATALOGUE = [
    _m("public-subnet-route", "the private route table gains 0.0.0.0/0 -> internet gateway", "NET-2",
       _route("private_route_table_id", True), _route("private_route_table_id", False)),
    _m("main-table-fallback", "a DB subnet loses its explicit association; the VPC main table "
       "it falls back to routes to the internet gateway", "NET-2",
       _main_fallback_break, _main_fallback_heal),
    _m("sg-open-world", "the DB security group opens 5432 to 0.0.0.0/0", "NET-3", *_ingress(_WORLD4)),
    _m("sg-open-ipv6", "the DB security group opens 5432 to ::/0", "NET-3", *_ingress(_WORLD6)),
    _m("sg-all-ports", "the DB security group allows all traffic from the app tier", "NET-3",
       *_ingress(_ALL_PORTS)),
    _m("publicly-accessible", "the primary gets a public endpoint", "NET-1",
       _modify(PubliclyAccessible=True), _modify(PubliclyAccessible=False)),
    _m("unencrypted-storage", "primary and replica rebuilt without storage encryption; their "
       "automated backups are then unencrypted too", "ENC-1 ENC-2",
       _recreate(StorageEncrypted=False, KmsKeyId=None), _recreate(), moto_only=True),
    _m("aws-managed-key", "primary and replica rebuilt on the AWS-managed key alias/aws/rds",
       "ENC-1", _recreate(KmsKeyId="alias/aws/rds"), _recreate(), moto_only=True),
    _m("kms-rotation-off", "automatic rotation of the storage key is disabled", "ENC-1",
       _kms("disable_key_rotation"), _kms("enable_key_rotation")),
    _m("kms-key-disabled", "the storage key is disabled", "ENC-1", _kms("disable_key"), _kms("enable_key")),
    _m("public-snapshot", "the manual snapshot is shared with 'all'", "ENC-2",
       _snapshot_public(True), _snapshot_public(False)),
    _m("retention-3", "backup retention cut to 3 days", "BAK-1",
       _modify(BackupRetentionPeriod=3), _modify(BackupRetentionPeriod=7)),
    _m("retention-35", "backup retention raised to 35 days", "BAK-1",
       _modify(BackupRetentionPeriod=35), _modify(BackupRetentionPeriod=7)),
    _m("backups-off", "automated backups switched off (retention 0): no PITR", "BAK-1 BAK-2",
       _modify(BackupRetentionPeriod=0), _modify(BackupRetentionPeriod=7)),
    _m("no-cross-region-copy", "the copy rule's destination vault in the other region is gone "
       "(moto has no UpdateBackupPlan, so the rule itself cannot be edited)", "BAK-3",
       _copy_vault(False), _copy_vault(True)),
    _m("lifecycle-30", "bucket lifecycle deletes after 30 days, no Glacier transition", "BAK-4",
       _lifecycle(30), _lifecycle(None)),
    _m("deletion-protection-off", "deletion protection removed from the primary", "BAK-5",
       _modify(DeletionProtection=False), _modify(DeletionProtection=True)),
    _m("multi-az-off", "the primary loses its Multi-AZ standby", "HA-1",
       _multi_az(False), _multi_az(True)),
    _m("rotation-off", "the master secret no longer rotates (recreated without rotation: "
       "CancelRotateSecret needs a rotation Lambda)", "AUTH-2",
       _recreate_secret(False), _recreate_secret(True)),
    _m("short-password", "master password reset to 11 characters", "AUTH-3",
       _password(True), _password(False)),
    _m("default-admin-name", "primary rebuilt with master user 'postgres'", "AUTH-5",
       _recreate(MasterUsername="postgres"), _recreate(), moto_only=True),
    _m("missing-alarms", "every CloudWatch alarm of the twin deleted", "MON-1",
       _alarms_delete, _alarms_create),
    _m("storage-alarm-missing", "the free-storage alarms deleted (FreeStorageSpace on an RDS "
       "instance, every member's FreeLocalStorage on Aurora)", "MON-1",
       _storage_alarms_delete, _alarms_create),
    _m("alarm-without-subscriber", "the alarm topic loses its only subscription", "MON-1",
       _unsubscribe, _subscribe),
    _m("no-event-subscription", "the RDS event subscription (failure, failover, low storage, "
       "backup, recovery) is deleted", "MON-1", _events_delete, _events_create),
    _m("replica-lagging", "CloudWatch reports every reader's lag at 120 s (ReplicaLag; "
       "AuroraReplicaLag 120000 ms on Aurora)", "HA-5", _lag_publish, _lag_retract,
       in_process_only=True),
    _m("force-ssl-off", "rds.force_ssl=0 in the parameter group", "TLS-2",
       _param("rds.force_ssl", "0"), _param("rds.force_ssl", "1")),
    _m("tls-min-1.0", "ssl_min_protocol_version=TLSv1 in the parameter group", "TLS-1",
       _param("ssl_min_protocol_version", "TLSv1"), _param("ssl_min_protocol_version", "TLSv1.2")),
    _m("ca-deprecated", "the primary is moved to the deprecated CA rds-ca-2019", "TLS-4",
       _modify(CACertificateIdentifier="rds-ca-2019"),
       _modify(CACertificateIdentifier="rds-ca-rsa2048-g1")),
    _m("proxy-tls-off", "the RDS Proxy is rebuilt with RequireTLS off", "TLS-6",
       _proxy(False), _proxy(True)),
    _m("bucket-public", "backup bucket: public access block removed, ACL public-read", "ENC-3",
       _bucket_public, _bucket_private),
    _m("bucket-unencrypted", "backup bucket default encryption removed", "ENC-3",
       _bucket_encryption(False), _bucket_encryption(True)),
    _m("versioning-suspended", "backup bucket versioning suspended", "ENC-3",
       _versioning("Suspended"), _versioning("Enabled")),
    _m("log-exports-off", "postgresql/upgrade logs no longer exported to CloudWatch", "AUDIT-1",
       _log_exports(False), _log_exports(True)),
    _m("log-retention-off", "the postgresql log group keeps logs forever (no retention)", "AUDIT-1",
       _log_retention(False), _log_retention(True)),
    _m("pgaudit-off", "pgaudit dropped from shared_preload_libraries", "AUDIT-1",
       _param("shared_preload_libraries", "pg_stat_statements"),
       _param("shared_preload_libraries", spec.PARAMETERS["shared_preload_libraries"])),
    _m("monitoring-off", "Enhanced Monitoring switched off (interval 0)", "MON-2",
       _monitoring(False), _monitoring(True)),
    _m("slow-log-off", "log_min_duration_statement=-1 (no slow-query log)", "MON-2",
       _param("log_min_duration_statement", "-1"),
       _param("log_min_duration_statement", spec.PARAMETERS["log_min_duration_statement"])),
    _m("log-quiet", "logging turned down in the parameter group: log_min_messages=error, "
       "log_min_error_statement=fatal, log_error_verbosity=terse, log_statement=none, "
       "log_replication_commands=0", "LOG-6 LOG-7 LOG-12 LOG-15 LOG-18",
       _params({"log_min_messages": "error", "log_min_error_statement": "fatal",
                "log_error_verbosity": "terse", "log_statement": "none",
                "log_replication_commands": "0"}),
       _params({k: spec.PARAMETERS[k] for k in ("log_min_messages", "log_min_error_statement",
                                                "log_error_verbosity", "log_statement",
                                                "log_replication_commands")})),
    _m("log-debug", "debug_print_parse/rewritten/plan=1 and debug_pretty_print=0 in the "
       "parameter group", "LOG-8 LOG-9 LOG-10 LOG-11",
       _params({"debug_print_parse": "1", "debug_print_rewritten": "1", "debug_print_plan": "1",
                "debug_pretty_print": "0"}),
       _params({k: spec.PARAMETERS[k] for k in ("debug_print_parse", "debug_print_rewritten",
                                                "debug_print_plan", "debug_pretty_print")})),
    _m("log-hostname-on", "log_hostname=1 in the parameter group", "LOG-13",
       _param("log_hostname", "1"), _param("log_hostname", spec.PARAMETERS["log_hostname"])),
    _m("auto-minor-off", "automatic minor version upgrades switched off", "MNT-1",
       _modify(AutoMinorVersionUpgrade=False), _modify(AutoMinorVersionUpgrade=True)),
]

AWS_MUTATIONS: dict[str, AwsMutation] = {m.name: m for m in _CATALOGUE}
