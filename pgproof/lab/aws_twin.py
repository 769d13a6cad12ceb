"""The AWS half of the lab: a compliant RDS PostgreSQL 15 deployment built with boto3.

It runs against moto (in-process or ``moto_server``) so every AWS check has a
healthy baseline and, through ``aws_mutations``, a known way to fail. The
calls are the ones a real account would need, so the twin also documents the
intended shape. Ids come back as an ``AwsTwin`` for a target's ``[aws]`` table.
"""

from __future__ import annotations

import configparser
import json
import os
import secrets
import string
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from pgproof.lab.aws_spec import (
    AURORA_FAMILY,
    DB_PORT,
    LOG_RETENTION_DAYS,
    MASTER_USERNAME,
    PARAMETERS,
    PUBLIC_ACCESS_BLOCK,
    alarm_specs,
    backup_plan,
    bucket_lifecycle,
    cluster_kwargs,
    event_subscription_spec,
    member_kwargs,
    primary_kwargs,
    proxy_kwargs,
    replica_kwargs,
    secret_document,
)
from pgproof.lab.aws_state import AwsTwin
from pgproof.probes.aws import session as aws_session

RDS_NAME = "pgproof-lab"  # the twin's RDS instance (the lab-rds target); AURORA_NAME: its cluster
SERVICES = ("ec2", "rds", "kms", "secretsmanager", "cloudwatch", "sns", "logs", "s3", "backup", "iam")


@dataclass
class AwsClients:
    """One boto3 client per service the twin touches, plus Backup in the copy region."""

    region: str
    copy_region: str
    ec2: Any
    rds: Any
    kms: Any
    secretsmanager: Any
    cloudwatch: Any
    sns: Any
    logs: Any
    s3: Any
    backup: Any
    iam: Any
    backup_copy: Any


def other_region(region: str) -> str:
    return "us-west-2" if region != "us-west-2" else "us-east-1"


def connect(region: str, session: boto3.Session | None = None,
            endpoint_url: str | None = None, **made: Any) -> AwsClients:
    """Clients from ``session`` (default chain); ``AWS_ENDPOINT_URL`` is honoured by boto3.

    ``made`` passes clients already built (provision starts EC2 early).
    """
    session = session or aws_session(None, region)
    kw: dict[str, Any] = {"region_name": region}
    if endpoint_url:
        kw["endpoint_url"] = endpoint_url
    for svc in SERVICES:
        # botocore gzips a PutMetricData body over 10 KiB; moto_server checks the signature
        # on the body it has unzipped and refuses it (SignatureDoesNotMatch): send it plain.
        extra = {"config": Config(disable_request_compression=True)} if svc == "cloudwatch" else {}
        made.setdefault(svc, session.client(svc, **kw, **extra))
    copy_region = other_region(region)
    made["backup_copy"] = session.client("backup", **{**kw, "region_name": copy_region})
    return AwsClients(region=region, copy_region=copy_region, **made)


def random_password(length: int = 32) -> str:
    alphabet = string.ascii_letters + string.digits + "-_.~"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def create_secret(c: AwsClients, twin: AwsTwin, rotate: bool = True) -> None:
    """The master secret; rotation by schedule only (no Lambda: the twin cannot run one)."""
    twin.secret_arn = c.secretsmanager.create_secret(
        Name=twin.secret_id, KmsKeyId=twin.kms_key_arn, SecretString=secret_document(twin))["ARN"]
    if rotate:
        c.secretsmanager.rotate_secret(SecretId=twin.secret_id, RotateImmediately=False,
                                       RotationRules={"AutomaticallyAfterDays": 30})


def create_database(c: AwsClients, twin: AwsTwin, **overrides: Any) -> None:
    """Primary and its read replicas, or the cluster and its members (mutations recreate them)."""
    if twin.db_cluster_id:
        ckw = {k: v for k, v in cluster_kwargs(twin, **overrides).items() if v is not None}
        if not ckw["StorageEncrypted"]:
            ckw.pop("KmsKeyId", None)
        c.rds.create_db_cluster(**ckw)
        for iid, az in zip([twin.db_instance_id, *twin.replica_ids], "ab", strict=True):
            c.rds.create_db_instance(**member_kwargs(twin, iid, az))
        return
    kw = {k: v for k, v in primary_kwargs(twin, **overrides).items() if v is not None}
    c.rds.create_db_instance(**kw)
    for rid in twin.replica_ids:
        rkw = replica_kwargs(twin, rid)
        if not kw["StorageEncrypted"]:
            rkw.pop("KmsKeyId")
        c.rds.create_db_instance_read_replica(**rkw)


def _network(ec2: Any, r: str, name: str) -> dict[str, Any]:
    tag = [{"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": name}]}]
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16", TagSpecifications=tag)["Vpc"]["VpcId"]
    private = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24",
                                 AvailabilityZone=f"{r}{az}")["Subnet"]["SubnetId"]
               for i, az in ((1, "a"), (2, "b"))]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.100.0/24",
                               AvailabilityZone=f"{r}a")["Subnet"]["SubnetId"]
    igw = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    private_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    for sn in private:
        ec2.associate_route_table(RouteTableId=private_rt, SubnetId=sn)
    public_rt = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=public_rt, DestinationCidrBlock="0.0.0.0/0", GatewayId=igw)
    ec2.associate_route_table(RouteTableId=public_rt, SubnetId=public)
    app_sg = ec2.create_security_group(GroupName=f"{name}-app", Description="app tier",
                                       VpcId=vpc)["GroupId"]
    db_sg = ec2.create_security_group(GroupName=f"{name}-db", Description="database",
                                      VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=db_sg, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": DB_PORT, "ToPort": DB_PORT,
        "UserIdGroupPairs": [{"GroupId": app_sg, "Description": "app tier"}]}])
    return {"vpc_id": vpc, "private_subnet_ids": private, "public_subnet_id": public,
            "igw_id": igw, "private_route_table_id": private_rt,
            "public_route_table_id": public_rt, "app_security_group_ids": [app_sg],
            "db_security_group_id": db_sg}


def _roles(c: AwsClients, name: str) -> tuple[str, str]:
    def role(rname: str, service: str) -> str:
        doc = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
        arn: str = c.iam.create_role(RoleName=rname, AssumeRolePolicyDocument=json.dumps(doc))["Role"]["Arn"]
        return arn
    return role(f"{name}-monitoring", "monitoring.rds.amazonaws.com"), role(f"{name}-proxy", "rds.amazonaws.com")


def provision(session: boto3.Session | None = None, region: str = "us-east-1",
              name: str = RDS_NAME, *, endpoint_url: str | None = None,
              password: str | None = None, alarm_email: str = "oncall@example.com",
              with_proxy: bool = True, clients: AwsClients | None = None,
              aurora: bool = False) -> AwsTwin:
    """Build the compliant deployment from nothing and return its ids.

    ``aurora``: an Aurora PostgreSQL cluster (writer + reader in two AZs, every parameter
    in the DB cluster parameter group, members on the default instance group) instead
    of an RDS instance with a read replica.

    The VPC is built on a second thread: a fresh moto_server spends ~1 s
    initialising EC2 on the first call, and everything up to the database
    (KMS, IAM, secret, S3, Backup, SNS, logs) does not need the network.
    """
    password = password or random_password()
    if len(password) < 16:
        raise ValueError("the master password must have at least 16 characters (AUTH-3)")
    with ThreadPoolExecutor(max_workers=1) as pool:
        if clients is None:
            session = session or aws_session(None, region)
            ec2 = session.client("ec2", region_name=region,
                                 **({"endpoint_url": endpoint_url} if endpoint_url else {}))
            network = pool.submit(_network, ec2, region, name)
            c = connect(region, session, endpoint_url, ec2=ec2)
        else:
            c = clients
            network = pool.submit(_network, c.ec2, c.region, name)
        twin = _foundation(c, name, password, alarm_email, with_proxy, aurora)
        for k, v in network.result().items():
            setattr(twin, k, v)
    c.rds.create_db_subnet_group(DBSubnetGroupName=twin.db_subnet_group,
                                 DBSubnetGroupDescription="private subnets, no internet route",
                                 SubnetIds=twin.private_subnet_ids)
    settings = [{"ParameterName": k, "ParameterValue": v,
                 "ApplyMethod": "pending-reboot" if k == "shared_preload_libraries" else "immediate"}
                for k, v in PARAMETERS.items()]
    if twin.db_cluster_id:
        c.rds.create_db_cluster_parameter_group(
            DBClusterParameterGroupName=twin.cluster_parameter_group,
            DBParameterGroupFamily=AURORA_FAMILY, Description="pgproof: TLS 1.2+, forced SSL, audit")
        c.rds.modify_db_cluster_parameter_group(
            DBClusterParameterGroupName=twin.cluster_parameter_group, Parameters=settings)
    else:
        c.rds.create_db_parameter_group(DBParameterGroupName=twin.parameter_group,
                                        DBParameterGroupFamily="postgres15",
                                        Description="pgproof: TLS 1.2+, forced SSL, audit")
        c.rds.modify_db_parameter_group(DBParameterGroupName=twin.parameter_group,
                                        Parameters=settings)
    create_database(c, twin)
    if twin.db_cluster_id:
        c.rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=twin.snapshot_id,
                                         DBClusterIdentifier=twin.db_cluster_id)
    else:
        c.rds.create_db_snapshot(DBSnapshotIdentifier=twin.snapshot_id,
                                 DBInstanceIdentifier=twin.db_instance_id)
    publish_replica_lag(c, twin, 0.0, ahead=LAG_AHEAD_MINUTES)
    for spec in alarm_specs(twin):
        c.cloudwatch.put_metric_alarm(**spec)
        twin.alarm_names.append(spec["AlarmName"])
    c.rds.create_event_subscription(**event_subscription_spec(twin))
    if twin.db_proxy_name:
        c.rds.create_db_proxy(**proxy_kwargs(twin))
        register_proxy(c, twin)
    return twin


# The healthy lag series runs this far ahead: RDS publishes a datapoint a minute, but nothing
# in moto emits metrics by itself, so the twin stores the lab's lifetime at provision time.
LAG_AHEAD_MINUTES = 48 * 60


def lag_publishers(c: AwsClients, twin: AwsTwin) -> list[str]:
    """The instances that publish replica lag, as RDS reports them now (not as saved).

    RDS: the primary's read replicas. Aurora: every member, the writer too: a failover turns
    the writer into a reader, and the twin cannot publish later (the lab's clock runs on).
    """
    if twin.db_cluster_id:
        cluster = c.rds.describe_db_clusters(DBClusterIdentifier=twin.db_cluster_id)["DBClusters"][0]
        return [m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", [])]
    primary = c.rds.describe_db_instances(DBInstanceIdentifier=twin.db_instance_id)["DBInstances"][0]
    return list(primary.get("ReadReplicaDBInstanceIdentifiers", []))


def publish_replica_lag(c: AwsClients, twin: AwsTwin, lag_s: float, minutes: int = 5,
                        ahead: int = 0, ids: list[str] | None = None) -> None:
    """What RDS publishes for each reader: one lag datapoint a minute, from ``minutes`` ago to
    ``ahead`` minutes from now (``ReplicaLag`` in s; ``AuroraReplicaLag`` in ms on Aurora).
    ``ids``: these instances instead of :func:`lag_publishers`."""
    aurora = twin.db_cluster_id is not None
    now = datetime.now(UTC) - timedelta(seconds=30)  # a datapoint lands after its minute
    for rid in lag_publishers(c, twin) if ids is None else ids:
        points = [{"MetricName": "AuroraReplicaLag" if aurora else "ReplicaLag",
                   "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": rid}],
                   "Timestamp": now + timedelta(minutes=m), "Value": lag_s * 1000 if aurora else lag_s,
                   "Unit": "Milliseconds" if aurora else "Seconds"} for m in range(1 - minutes, ahead + 1)]
        for i in range(0, len(points), 1000):  # PutMetricData takes at most 1000 datapoints
            c.cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=points[i:i + 1000])


def register_proxy(c: AwsClients, twin: AwsTwin) -> None:
    """The proxy fronts the instance, or the cluster (whose writer moves at failover)."""
    target = ({"DBClusterIdentifiers": [twin.db_cluster_id]} if twin.db_cluster_id
              else {"DBInstanceIdentifiers": [twin.db_instance_id]})
    c.rds.register_db_proxy_targets(DBProxyName=twin.db_proxy_name, **target)


def _foundation(c: AwsClients, name: str, password: str, alarm_email: str,
                with_proxy: bool, aurora: bool = False) -> AwsTwin:
    """Everything the database needs except the network: key, roles, secret, storage, paging."""
    key = c.kms.create_key(Description=f"{name} storage, backups, secrets",
                           KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    c.kms.enable_key_rotation(KeyId=key["KeyId"])
    c.kms.create_alias(AliasName=f"alias/{name}", TargetKeyId=key["KeyId"])
    monitoring_role, proxy_role = _roles(c, name)
    twin = AwsTwin(
        region=c.region, copy_region=c.copy_region, vpc_id="", private_subnet_ids=[],
        public_subnet_id="", private_route_table_id="", public_route_table_id="", igw_id="",
        app_security_group_ids=[], db_security_group_id="",
        kms_key_id=key["KeyId"], kms_key_arn=key["Arn"],
        db_subnet_group=f"{name}-private", parameter_group=f"{name}-pg15",
        db_instance_id=f"{name}-1" if aurora else name,
        replica_ids=[f"{name}-2"] if aurora else [f"{name}-replica-1"],
        snapshot_id=f"{name}-baseline",
        log_group_prefix=f"/aws/rds/{'cluster' if aurora else 'instance'}/{name}",
        secret_id=f"{name}/master",
        db_cluster_id=name if aurora else None,
        cluster_parameter_group=f"{name}-apg15" if aurora else "",
        master_username=MASTER_USERNAME, sns_topic_arn="", alarm_email=alarm_email, alarm_names=[],
        backup_bucket=f"{name}-backups-{c.region}", backup_vault=f"{name}-vault",
        backup_copy_vault=f"{name}-vault-dr", backup_copy_vault_arn="", backup_plan_id="",
        monitoring_role_arn=monitoring_role, proxy_role_arn=proxy_role,
        db_proxy_name=f"{name}-proxy" if with_proxy else None, password=password,
    )
    create_secret(c, twin)
    for suffix in ("postgresql", "upgrade"):
        group = f"{twin.log_group_prefix}/{suffix}"
        c.logs.create_log_group(logGroupName=group)
        c.logs.put_retention_policy(logGroupName=group, retentionInDays=LOG_RETENTION_DAYS)
    twin.sns_topic_arn = c.sns.create_topic(Name=f"{name}-alarms")["TopicArn"]
    c.sns.subscribe(TopicArn=twin.sns_topic_arn, Protocol="email", Endpoint=alarm_email)
    _backups(c, twin)
    return twin


def _backups(c: AwsClients, twin: AwsTwin) -> None:
    s3, b = c.s3, twin.backup_bucket
    if c.region == "us-east-1":
        s3.create_bucket(Bucket=b)
    else:
        s3.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": c.region})
    s3.put_public_access_block(Bucket=b, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
    s3.put_bucket_encryption(Bucket=b, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                               "KMSMasterKeyID": twin.kms_key_arn},
        "BucketKeyEnabled": True}]})
    s3.put_bucket_versioning(Bucket=b, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration=bucket_lifecycle())
    c.backup.create_backup_vault(BackupVaultName=twin.backup_vault,
                                 EncryptionKeyArn=twin.kms_key_arn)
    twin.backup_copy_vault_arn = c.backup_copy.create_backup_vault(
        BackupVaultName=twin.backup_copy_vault)["BackupVaultArn"]
    twin.backup_plan_id = c.backup.create_backup_plan(BackupPlan=backup_plan(twin))["BackupPlanId"]


# -- the lab's use of the twin --------------------------------------------------------------
LAB_PROFILE = "pgproof-lab"
LAB_REGION = "us-east-1"
BACKUP_PROFILE = "pgproof-lab-backup"  # pgBackRest's key: S3 only (it sits in postgres's config)
# IAM users the twin is started with; the lab's twin refuses every request not signed by one.
LAB_USERS = {LAB_PROFILE: {"Effect": "Allow", "Action": "*", "Resource": "*"},
             BACKUP_PROFILE: {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}}


AURORA_NAME = "pgproof-aurora"


def lab_files(state_dir: Path, aurora: bool = False) -> tuple[Path, Path]:
    """(the twin's access keys, saved twin) beside the lab state; both 0600, owner only."""
    twin = "aws-aurora-twin.json" if aurora else "aws-twin.json"
    return state_dir / "aws-credentials", state_dir / twin


def write_lab_credentials(path: Path) -> None:
    """Fresh random access keys, one profile per ``LAB_USERS`` entry, in a 0600 file.

    Why real keys for an emulator: the lab's moto server enforces IAM authentication
    (``lab/aws_bridge.py``), so these keys are what stands between a local user and the
    master secret the twin holds. They exist only in this file and in the twin process.
    """
    alphabet = string.ascii_uppercase + string.digits
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        for profile in LAB_USERS:
            key_id = "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16))
            fh.write(f"[{profile}]\naws_access_key_id = {key_id}\n"
                     f"aws_secret_access_key = {secrets.token_urlsafe(30)}\n")
    tmp.replace(path)


def lab_credentials(path: Path, profile: str = LAB_PROFILE) -> tuple[str, str]:
    """(access key id, secret access key) of ``profile`` in the lab's credentials file."""
    cp = configparser.ConfigParser()
    if not cp.read(path) or profile not in cp:
        raise FileNotFoundError(f"{path} has no [{profile}] keys: run `pgproof lab up` again")
    return cp[profile]["aws_access_key_id"], cp[profile]["aws_secret_access_key"]


def provision_lab(state: Any, endpoint_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Provision both twin shapes on the lab's moto server: the ``[aws]`` tables of
    ``lab-rds`` (an RDS instance) and ``lab-aurora`` (an Aurora cluster), in that order.

    The cluster's secret is the twin's own (``aws.secret_id``), not a ManageMasterUserPassword
    one: the lab's password must be the one Patroni runs with, and the AUTH mutations
    rewrite it. The RDS-managed secret path is proven in tests/test_aurora.py.
    """
    creds = lab_files(state.state_dir)[0]
    region = LAB_REGION
    sess = aws_session(LAB_PROFILE, region, creds)
    sections = []
    for aurora in (False, True):
        twin = provision(sess, region=region, endpoint_url=endpoint_url,
                         password=state.secrets()["postgres"], aurora=aurora,
                         name=AURORA_NAME if aurora else RDS_NAME)
        twin.save(lab_files(state.state_dir, aurora)[1])
        sections.append({**twin.aws_section(endpoint_url=endpoint_url), "profile": LAB_PROFILE,
                         "credentials_file": str(creds)})
    return sections[0], sections[1]


def run_lab_mutation(state: Any, mutation: Any, action: str, aurora: bool = False) -> None:
    """Apply or heal one AWS mutation on the lab's twin (the twin may change: save it).

    ``aurora``: on the Aurora cluster shape (``lab-aurora``) instead of the RDS instance.
    A mutation that heals only in-process is refused: on the served twin its heal would
    leave the mutation in place (and every later check judging it).
    """
    if getattr(mutation, "in_process_only", False):
        raise ValueError(f"the AWS mutation {mutation.name} heals only against in-process moto, "
                         "not on the lab's served twin")
    creds, saved = lab_files(state.state_dir, aurora)
    twin = AwsTwin.load(saved)
    clients = connect(twin.region, aws_session(LAB_PROFILE, twin.region, creds),
                      endpoint_url=state.aws.get("endpoint_url"))
    (mutation.apply if action == "apply" else mutation.heal)(clients, twin)
    twin.save(saved)
