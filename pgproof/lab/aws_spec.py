"""The healthy shape of the AWS twin: the exact arguments provisioning and healing both use.

Kept apart from ``aws_twin`` so a mutation's ``heal`` restores precisely what
``provision`` built (one source of truth), and so the numbers are easy to audit
against the controls' thresholds (docs/controls.md).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pgproof.lab.aws_state import AwsTwin

ENGINE_VERSION = "15.10"
INSTANCE_CLASS = "db.m5.large"
INSTANCE_MEMORY_BYTES = 8 * 1024**3
ALLOCATED_GIB = 100
MASTER_USERNAME = "pgproof_admin"
DB_PORT = 5432
LOG_RETENTION_DAYS = 30
PARAMETERS = {
    "rds.force_ssl": "1",
    "ssl_min_protocol_version": "TLSv1.2",
    "shared_preload_libraries": "pg_stat_statements,pgaudit",
    "pgaudit.log": "ddl,role,write",
    "log_connections": "1",
    "log_disconnections": "1",
    "log_min_duration_statement": "1000",
    "password_encryption": "scram-sha-256",
    # CIS 3.1.14-3.1.23, 3.1.25, 7.2 (LOG-*): a hardened group states each value (PostgreSQL's
    # defaults fail log_error_verbosity, log_statement and log_replication_commands).
    "log_min_messages": "warning",
    "log_min_error_statement": "error",
    "debug_print_parse": "0",
    "debug_print_rewritten": "0",
    "debug_print_plan": "0",
    "debug_pretty_print": "1",
    "log_error_verbosity": "verbose",
    "log_hostname": "0",
    "log_statement": "ddl",
    "log_replication_commands": "1",
}


def primary_kwargs(twin: AwsTwin, **overrides: Any) -> dict[str, Any]:
    """CreateDBInstance arguments of the healthy primary (mutations recreate from these)."""
    kw: dict[str, Any] = {
        "DBInstanceIdentifier": twin.db_instance_id,
        "DBInstanceClass": INSTANCE_CLASS,
        "Engine": "postgres",
        "EngineVersion": ENGINE_VERSION,
        "AllocatedStorage": ALLOCATED_GIB,
        "StorageType": "gp3",
        "MasterUsername": twin.master_username,
        "MasterUserPassword": twin.password,
        "DBSubnetGroupName": twin.db_subnet_group,
        "VpcSecurityGroupIds": [twin.db_security_group_id],
        "DBParameterGroupName": twin.parameter_group,
        "Port": DB_PORT,
        "MultiAZ": True,
        "AvailabilityZone": f"{twin.region}a",
        "PubliclyAccessible": False,
        "StorageEncrypted": True,
        "KmsKeyId": twin.kms_key_arn,
        "BackupRetentionPeriod": 7,
        "PreferredBackupWindow": "03:00-03:30",
        "PreferredMaintenanceWindow": "sun:04:00-sun:04:30",
        "DeletionProtection": True,
        "EnableCloudwatchLogsExports": ["postgresql", "upgrade"],
        "AutoMinorVersionUpgrade": True,
        "MonitoringInterval": 60,
        "MonitoringRoleArn": twin.monitoring_role_arn,
        "EnablePerformanceInsights": True,
        "PerformanceInsightsRetentionPeriod": 7,
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
        "CopyTagsToSnapshot": True,
        "Tags": [{"Key": "pgproof", "Value": "lab"}],
    }
    kw.update(overrides)
    return kw


# The Aurora shape (``lab-aurora``): what AWS documents for Aurora PostgreSQL. Every parameter
# sits in the DB cluster parameter group; the members stay on the engine's default instance
# group, so the judges must read the cluster group to pass (issue 19).
AURORA_ENGINE_VERSION = "15.10"
AURORA_FAMILY = "aurora-postgresql15"
AURORA_INSTANCE_CLASS = "db.t3.large"  # 8 GiB, like INSTANCE_CLASS: same alarm thresholds
AURORA_LOCAL_STORAGE_FLOOR = 2 * 1024**3  # FreeLocalStorage alarm: bytes free (see alarm_specs)
# The free-storage metric of each shape (the storage-alarm-missing mutation deletes its alarms).
STORAGE_METRICS = ("FreeStorageSpace", "FreeLocalStorage")


def cluster_kwargs(twin: AwsTwin, **overrides: Any) -> dict[str, Any]:
    """CreateDBCluster arguments of the healthy Aurora cluster (mutations recreate from these)."""
    kw: dict[str, Any] = {
        "DBClusterIdentifier": twin.db_cluster_id,
        "Engine": "aurora-postgresql",
        "EngineVersion": AURORA_ENGINE_VERSION,
        "MasterUsername": twin.master_username,
        "MasterUserPassword": twin.password,
        "DBSubnetGroupName": twin.db_subnet_group,
        "VpcSecurityGroupIds": [twin.db_security_group_id],
        "DBClusterParameterGroupName": twin.cluster_parameter_group,
        "Port": DB_PORT,
        "StorageEncrypted": True,
        "KmsKeyId": twin.kms_key_arn,
        "BackupRetentionPeriod": 7,
        "PreferredBackupWindow": "03:00-03:30",
        "PreferredMaintenanceWindow": "sun:04:00-sun:04:30",
        "DeletionProtection": True,
        "EnableCloudwatchLogsExports": ["postgresql"],
        "CopyTagsToSnapshot": True,
        "Tags": [{"Key": "pgproof", "Value": "lab"}],
    }
    kw.update(overrides)
    return kw


def member_kwargs(twin: AwsTwin, instance_id: str, az: str) -> dict[str, Any]:
    """CreateDBInstance arguments of one Aurora member (writer first, then the reader)."""
    return {
        "DBInstanceIdentifier": instance_id,
        "DBClusterIdentifier": twin.db_cluster_id,
        "Engine": "aurora-postgresql",
        "DBInstanceClass": AURORA_INSTANCE_CLASS,
        "AvailabilityZone": f"{twin.region}{az}",
        "PubliclyAccessible": False,
        "AutoMinorVersionUpgrade": True,
        "MonitoringInterval": 60,
        "MonitoringRoleArn": twin.monitoring_role_arn,
        "EnablePerformanceInsights": True,
        "CACertificateIdentifier": "rds-ca-rsa2048-g1",
    }


def replica_kwargs(twin: AwsTwin, replica_id: str) -> dict[str, Any]:
    return {
        "DBInstanceIdentifier": replica_id,
        "SourceDBInstanceIdentifier": twin.db_instance_id,
        "DBInstanceClass": INSTANCE_CLASS,
        "AvailabilityZone": f"{twin.region}b",
        "PubliclyAccessible": False,
        "DBParameterGroupName": twin.parameter_group,
        "VpcSecurityGroupIds": [twin.db_security_group_id],
        "KmsKeyId": twin.kms_key_arn,
        "AutoMinorVersionUpgrade": True,
        "MonitoringInterval": 60,
        "MonitoringRoleArn": twin.monitoring_role_arn,
        "EnablePerformanceInsights": True,
    }


def secret_document(twin: AwsTwin, password: str | None = None) -> str:
    return json.dumps({"username": twin.master_username, "password": password or twin.password,
                       "engine": "postgres", "port": DB_PORT,
                       "dbInstanceIdentifier": twin.db_instance_id})


def proxy_kwargs(twin: AwsTwin, require_tls: bool = True) -> dict[str, Any]:
    return {
        "DBProxyName": twin.db_proxy_name,
        "EngineFamily": "POSTGRESQL",
        "Auth": [{"AuthScheme": "SECRETS", "SecretArn": twin.secret_arn, "IAMAuth": "DISABLED"}],
        "RoleArn": twin.proxy_role_arn,
        "VpcSubnetIds": list(twin.private_subnet_ids),
        "VpcSecurityGroupIds": [twin.db_security_group_id],
        "RequireTLS": require_tls,
        "IdleClientTimeout": 1800,
    }


EVENT_CATEGORIES = ["failure", "failover", "low storage", "backup", "recovery"]


def event_subscription_spec(twin: AwsTwin) -> dict[str, Any]:
    """CreateEventSubscription arguments: the RDS events MON-1 wants paged, to the alarm topic."""
    # A cluster's events follow the cluster (its writer member changes at failover).
    kind, ident = (("db-cluster", twin.db_cluster_id) if twin.db_cluster_id
                   else ("db-instance", twin.db_instance_id))
    return {"SubscriptionName": f"{ident}-events", "SnsTopicArn": twin.sns_topic_arn,
            "SourceType": kind, "SourceIds": [ident],
            "EventCategories": list(EVENT_CATEGORIES), "Enabled": True}


def alarm_specs(twin: AwsTwin) -> list[dict[str, Any]]:
    """PutMetricAlarm arguments for every alarm MON-1 asks for, thresholds as in docs/controls.md.

    Aurora publishes other metrics than an RDS instance: each member's ``FreeLocalStorage``
    instead of ``FreeStorageSpace`` (the cluster volume grows by itself), and
    ``AuroraReplicaLag`` in milliseconds instead of ``ReplicaLag`` in seconds.
    """
    # A cluster's writer moves at failover: its alarms follow the cluster, as AWS suggests.
    db = ([{"Name": "DBClusterIdentifier", "Value": twin.db_cluster_id}] if twin.db_cluster_id
          else [{"Name": "DBInstanceIdentifier", "Value": twin.db_instance_id}])
    base = {"Period": 300, "EvaluationPeriods": 1, "Statistic": "Average",
            "AlarmActions": [twin.sns_topic_arn], "OKActions": [twin.sns_topic_arn],
            "ActionsEnabled": True, "TreatMissingData": "breaching"}
    n = twin.db_instance_id
    # On a cluster every member may be the reader after a failover: each has its lag alarm.
    members = [twin.db_instance_id, *twin.replica_ids] if twin.db_cluster_id else twin.replica_ids
    specs = [
        {"AlarmName": f"{n}-cpu-high", "Namespace": "AWS/RDS", "MetricName": "CPUUtilization",
         "Dimensions": db, "Threshold": 80.0, "ComparisonOperator": "GreaterThanThreshold"},
        {"AlarmName": f"{n}-memory-low", "Namespace": "AWS/RDS", "MetricName": "FreeableMemory",
         "Dimensions": db, "Threshold": float(math.ceil(INSTANCE_MEMORY_BYTES * 0.15)),
         "ComparisonOperator": "LessThanThreshold"},
        {"AlarmName": f"{n}-connections-high", "Namespace": "AWS/RDS",
         "MetricName": "DatabaseConnections", "Dimensions": db,
         "Threshold": float(int(INSTANCE_MEMORY_BYTES / 9531392 * 0.8)),
         "ComparisonOperator": "GreaterThanThreshold"},
        {"AlarmName": f"{n}-backup-failed", "Namespace": "AWS/Backup",
         "MetricName": "NumberOfBackupJobsFailed",
         "Dimensions": [{"Name": "BackupVaultName", "Value": twin.backup_vault}],
         "Threshold": 1.0, "ComparisonOperator": "GreaterThanOrEqualToThreshold",
         "Statistic": "Sum", "TreatMissingData": "notBreaching"},
    ]
    aurora = twin.db_cluster_id is not None  # the twin's cluster shape is Aurora
    if aurora:
        # No API reports a member's local storage size: a fixed floor of free bytes.
        specs[2:2] = [{"AlarmName": f"{m}-local-storage-low", "Namespace": "AWS/RDS",
                       "MetricName": "FreeLocalStorage", "Dimensions": _instance(m),
                       "Threshold": float(AURORA_LOCAL_STORAGE_FLOOR),
                       "ComparisonOperator": "LessThanThreshold"} for m in members]
    else:
        specs[2:2] = [{"AlarmName": f"{n}-storage-low", "Namespace": "AWS/RDS",
                       "MetricName": "FreeStorageSpace", "Dimensions": db,
                       "Threshold": float(math.ceil(ALLOCATED_GIB * 1024**3 * 0.20)),
                       "ComparisonOperator": "LessThanThreshold"}]
    for rid in members:
        specs.append({"AlarmName": f"{rid}-replica-lag", "Namespace": "AWS/RDS",
                      "MetricName": "AuroraReplicaLag" if aurora else "ReplicaLag",
                      "Dimensions": _instance(rid), "Threshold": 30000.0 if aurora else 30.0,
                      "ComparisonOperator": "GreaterThanThreshold"})
    return [{**base, **s} for s in specs]


def _instance(instance_id: str) -> list[dict[str, str]]:
    return [{"Name": "DBInstanceIdentifier", "Value": instance_id}]


def backup_plan(twin: AwsTwin, copy: bool = True) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "RuleName": "daily", "TargetBackupVaultName": twin.backup_vault,
        "ScheduleExpression": "cron(0 3 * * ? *)",
        "Lifecycle": {"MoveToColdStorageAfterDays": 90, "DeleteAfterDays": 365},
    }
    if copy:
        rule["CopyActions"] = [{"DestinationBackupVaultArn": twin.backup_copy_vault_arn,
                                "Lifecycle": {"DeleteAfterDays": 365}}]
    return {"BackupPlanName": f"{twin.db_instance_id}-plan", "Rules": [rule]}


def bucket_lifecycle(expire_days: int = 365) -> dict[str, Any]:
    return {"Rules": [{
        "ID": "archive", "Status": "Enabled", "Filter": {"Prefix": ""},
        "Transitions": [{"Days": 90, "StorageClass": "GLACIER"}],
        "Expiration": {"Days": expire_days},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 365},
    }]}


PUBLIC_ACCESS_BLOCK = {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                       "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
