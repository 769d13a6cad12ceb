"""AWS-layer judges for the security controls (TLS, NET, AUTH, ENC).

Each ``judge_<control>(inv, th)`` is pure: it reads an ``AwsInventory`` and returns
sentences (what was found, where, what the spec wants); empty means compliant.
A field the target does not report raises ``CannotVerify`` - detected from the
data (field absent, API missing), never from knowing the target is an emulator.
The resilience judges (AUDIT, BAK, HA, MON, MNT) live in ``checks.aws_ops``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from pgproof.catalogue.build import reads
from pgproof.checks.aws_util import ON, dbid, param_problems, primary, private_cidr, verdict
from pgproof.probes.aws_inventory import AwsInventory
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, NotApplicable

TLS_ORDER = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
WORLD = {"0.0.0.0/0", "::/0"}
Judge = Callable[[AwsInventory, Thresholds], list[str]]


@reads("DescribeDBInstances, DescribeDBParameters (every page), DescribeDBClusterParameters, "
       "DescribeEngineDefault(Cluster)Parameters",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `ssl_min_protocol_version`; "
       "`DBInstanceIdentifier`; cluster `DBClusterParameterGroup` (the effective value: instance "
       "group where AWS lets it override, then the cluster group, then the engine default; see "
       "docs/aws-fields.md)",
       "no parameter group: cannot verify; parameters not readable: cannot verify; parameter "
       "without a `ParameterValue` (RDS omits it when unset): fail \"is not set\"; set in no group "
       "and the engine default unreadable: cannot verify")
def judge_tls1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """The parameter group pins ssl_min_protocol_version at the spec's minimum or newer."""
    floor = TLS_ORDER.index(th.tls_min_version)
    return param_problems(
        inv, "ssl_min_protocol_version",
        lambda v: v in TLS_ORDER and TLS_ORDER.index(v) >= floor,
        f"{th.tls_min_version} or newer")


@reads("as TLS-1",
       "`DBParameterGroups` → `DBParameterGroupName`; parameter `rds.force_ssl`; "
       "`DBInstanceIdentifier`; cluster `DBClusterParameterGroup` (as TLS-1)",
       "as TLS-1 (an unset `rds.force_ssl` fails)")
def judge_tls2(inv: AwsInventory, th: Thresholds) -> list[str]:
    """rds.force_ssl=1 makes RDS refuse plaintext connections."""
    return param_problems(inv, "rds.force_ssl", lambda v: v.lower() in ON, "1")


@reads("DescribeDBInstances, DescribeCertificates",
       "`CACertificateIdentifier`, `CertificateDetails` → `ValidTill` (instance), `ValidTill` (CA,"
       " inventory `certificates`); `DBInstanceIdentifier`",
       "no CA identifier, no `CertificateDetails.ValidTill`, or no certificate record (the API "
       "missing): cannot verify, unless a deprecated or expiring CA already fails it")
def judge_tls4(inv: AwsInventory, th: Thresholds, now: datetime | None = None) -> list[str]:
    """CA identifier not deprecated; server and CA certificates valid long enough."""
    problems, gaps = [], []
    soon = (now or datetime.now(UTC)) + timedelta(days=th.cert_min_days)
    cas: dict[str, list[str]] = {}
    for inst in inv.instances:
        ca = inst.get("CACertificateIdentifier")
        if ca is None:
            gaps.append(f"{dbid(inst)}: no CACertificateIdentifier reported")
        else:
            cas.setdefault(ca, []).append(inst["DBInstanceIdentifier"])
        till = (inst.get("CertificateDetails") or {}).get("ValidTill")
        if till is None:
            gaps.append(f"{dbid(inst)}: server certificate expiry not reported "
                        f"(CertificateDetails.ValidTill absent)")
        elif till < soon:
            problems.append(f"{dbid(inst)}: the server certificate expires {till:%Y-%m-%d}; "
                            f"the spec wants >= {th.cert_min_days} days left")
    for ca, users in cas.items():
        where = f"CA {ca} (used by {', '.join(users)})"
        if ca in th.deprecated_ca_ids:
            problems.append(f"{where} is deprecated; the spec wants a current CA such as "
                            f"rds-ca-rsa2048-g1")
        cert = inv.certificates.get(ca)
        if cert is None:
            gaps.append(f"{where}: expiry unknown "
                        f"({inv.missing.get('certificates', 'DescribeCertificates: no record')})")
        elif cert.get("ValidTill") and cert["ValidTill"] < soon:
            problems.append(f"{where} expires {cert['ValidTill']:%Y-%m-%d}; the spec wants "
                            f">= {th.cert_min_days} days left")
    return verdict(problems, gaps)


@reads("DescribeDBProxies",
       "`DBProxyName`, `RequireTLS`",
       "no proxy configured: not applicable; proxy not found: fail; `RequireTLS` absent: cannot "
       "verify")
def judge_tls6(inv: AwsInventory, th: Thresholds) -> list[str]:
    """An RDS Proxy in front of the database must require TLS from clients."""
    if not inv.proxy_configured:
        raise NotApplicable("no RDS Proxy is configured for this target (aws.db_proxy_name)")
    if inv.proxy is None:
        return ["the configured RDS Proxy was not found; the spec wants it to exist "
                "with RequireTLS on"]
    name = inv.proxy["DBProxyName"]
    if "RequireTLS" not in inv.proxy:
        raise CannotVerify(f"db-proxy {name}: RequireTLS is not reported")
    if inv.proxy["RequireTLS"] is not True:
        return [f"db-proxy {name}: RequireTLS is off, so clients may connect in plaintext; "
                f"the spec wants RequireTLS on"]
    return []


@reads("DescribeDBInstances",
       "`PubliclyAccessible`; `DBInstanceIdentifier`",
       "absent: cannot verify")
def judge_net1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Neither the primary nor any replica has a public endpoint."""
    problems, gaps = [], []
    cluster = inv.cluster or {}
    for inst in inv.instances:
        if inst.get("PubliclyAccessible") is None and cluster.get("PubliclyAccessible") is not None:
            inst = {**inst, "PubliclyAccessible": cluster["PubliclyAccessible"]}  # Multi-AZ DB cluster
        if inst.get("PubliclyAccessible") is None:
            gaps.append(f"{dbid(inst)}: PubliclyAccessible not reported")
        elif inst["PubliclyAccessible"]:
            problems.append(f"{dbid(inst)}: PubliclyAccessible is true; the spec wants "
                            f"false on the primary and every replica")
    return verdict(problems, gaps)


@reads("DescribeDBInstances (`DBSubnetGroup`), DescribeRouteTables",
       "inventory `routes`, `route_table_id`, `explicit` (explicit association, else the VPC main "
       "table); route `DestinationCidrBlock`, `DestinationIpv6CidrBlock`, `GatewayId`",
       "no DB subnet group on any instance: cannot verify; no route table at all (not even a main "
       "one): fail")
def judge_net2(inv: AwsInventory, th: Thresholds) -> list[str]:
    """No DB subnet's effective route table sends 0.0.0.0/0 or ::/0 to an internet gateway."""
    if not inv.subnet_routes:
        raise CannotVerify("neither the DB instances nor a DB cluster report a DB subnet group, "
                           "so no subnet to inspect")
    problems = []
    for subnet, rt in sorted(inv.subnet_routes.items()):
        if rt["route_table_id"] is None:
            problems.append(f"subnet {subnet}: no route table found (not even a VPC main "
                            f"table); the spec wants a private route table")
            continue
        how = "explicitly associated" if rt["explicit"] else "the VPC main table"
        for r in rt["routes"]:
            dest = r.get("DestinationCidrBlock") or r.get("DestinationIpv6CidrBlock")
            gw = r.get("GatewayId") or ""
            if dest in WORLD and gw.startswith("igw-"):
                problems.append(f"subnet {subnet} of the DB subnet group: route table "
                                f"{rt['route_table_id']} ({how}) sends {dest} to internet gateway "
                                f"{gw}; the spec wants no internet route in DB subnets")
    return problems


def _rule_problems(sg: str, rule: dict[str, Any], port: int, apps: set[str]) -> tuple[list[str], list[str]]:
    proto = str(rule.get("IpProtocol"))
    lo, hi = rule.get("FromPort", -1), rule.get("ToPort", -1)
    every = proto == "-1" or (proto in ("tcp", "6") and lo <= 1 and hi >= 65535)
    if not every and not (proto in ("tcp", "6") and lo <= port <= hi):
        return [], []
    span = "all traffic" if proto == "-1" else f"{proto} {lo}-{hi}"
    where = f"security group {sg}: {span}"
    problems, gaps = [], []
    sources = [r["CidrIp"] for r in rule.get("IpRanges", [])] + [
        r["CidrIpv6"] for r in rule.get("Ipv6Ranges", [])]
    for cidr in sources:
        if cidr in WORLD:
            problems.append(f"{where} is open to {cidr}; the spec wants port {port} open only "
                            f"to app-tier security groups or private CIDRs")
        elif not private_cidr(cidr):
            problems.append(f"{where} is open to public range {cidr}; the spec wants only "
                            f"app-tier security groups or private CIDRs")
    for pair in rule.get("UserIdGroupPairs", []):
        gid = pair.get("GroupId")
        if apps and gid not in apps and gid != sg:
            problems.append(f"{where} is open to security group {gid}, which is not an "
                            f"app-tier group ({', '.join(sorted(apps))})")
    for pl in rule.get("PrefixListIds", []):
        gaps.append(f"{where}: prefix list {pl.get('PrefixListId')} cannot be judged")
    if every and (sources or rule.get("UserIdGroupPairs") or rule.get("PrefixListIds")):
        problems.append(f"{where} opens every port; the spec wants only the DB port {port}")
    return problems, gaps


@reads("DescribeDBInstances, DescribeSecurityGroups",
       "`VpcSecurityGroups` → `VpcSecurityGroupId`; port from `Endpoint` → `Port`, else "
       "`DbInstancePort` (real RDS reports 0 there), else 5432; `IpPermissions` → `IpProtocol`, "
       "`FromPort`, `ToPort`, `IpRanges` → `CidrIp`, `Ipv6Ranges` → `CidrIpv6`, `UserIdGroupPairs`"
       " → `GroupId`, `PrefixListIds` → `PrefixListId`; `DBInstanceIdentifier`",
       "no security groups reported: cannot verify; a group that could not be described: cannot "
       "verify; a prefix list: cannot verify (its CIDRs are not read)")
def judge_net3(inv: AwsInventory, th: Thresholds) -> list[str]:
    """DB port reachable only from app-tier groups or private CIDRs; no world, no all-ports."""
    p = primary(inv)
    port = ((inv.cluster or {}).get("Port") or (p.get("Endpoint") or {}).get("Port")
            or p.get("DbInstancePort") or 5432)
    apps = set(inv.app_security_group_ids)
    problems, gaps = [], []
    records = [*inv.instances, *([inv.cluster] if inv.cluster else [])]
    ids = sorted({g["VpcSecurityGroupId"] for i in records for g in i.get("VpcSecurityGroups", [])})
    if not ids:
        raise CannotVerify(f"{dbid(p)}: no VPC security groups reported")
    for sg in ids:
        group = inv.security_groups.get(sg)
        if group is None:
            gaps.append(f"security group {sg} could not be described")
            continue
        for rule in group.get("IpPermissions", []):
            more, unknown = _rule_problems(sg, rule, port, apps)
            problems += more
            gaps += unknown
    return verdict(problems, gaps)


def _rotation_days(secret: dict[str, Any]) -> Fraction | None:
    """The rotation interval in days, exactly: rate(2170 hours) is 90.4 days, not 90."""
    days = (secret.get("RotationRules") or {}).get("AutomaticallyAfterDays")
    if days:
        return Fraction(int(days))
    expr = (secret.get("RotationRules") or {}).get("ScheduleExpression", "")
    m = re.fullmatch(r"rate\((\d+) (day|days|hour|hours)\)", expr)
    if m:
        return Fraction(int(m[1]), 24) if m[2].startswith("hour") else Fraction(int(m[1]))
    return None


@reads("DescribeSecret, DescribeDBClusters (`MasterUserSecret`)",
       "`RotationEnabled` (absent = never set to rotate = off), `RotationRules` → "
       "`AutomaticallyAfterDays` or `ScheduleExpression` (`rate(...)`), `Name`; "
       "`DBInstanceIdentifier`; `OwningService` (an RDS-managed secret); the ARN from the "
       "cluster's, else the instance's `MasterUserSecret`; `DBClusterIdentifier`",
       "no secret configured and no RDS-managed secret: fail; secret not found: fail; rotation on "
       "but no readable interval (a real secret with a Lambda and no `RotationRules`): cannot "
       "verify; an RDS-managed secret without `RotationEnabled`: cannot verify")
def judge_auth2(inv: AwsInventory, th: Thresholds) -> list[str]:
    """The master secret lives in Secrets Manager and rotates at least every N days."""
    if inv.secret_id is None:
        owner = (f"db-cluster {inv.cluster['DBClusterIdentifier']}" if inv.cluster
                 else dbid(primary(inv)))
        return [f"{owner}: no master secret in Secrets Manager (aws.secret_id unset and no "
                f"MasterUserSecret: ManageMasterUserPassword off); the spec wants a managed, "
                f"rotated secret"]
    if inv.secret is None:
        return [f"secret {inv.secret_id} was not found; the spec wants the master secret in "
                f"Secrets Manager with rotation on"]
    name = inv.secret.get("Name", inv.secret_id)
    rds_owned = inv.secret_from_api or inv.secret.get("OwningService") == "rds"
    if rds_owned and "RotationEnabled" not in inv.secret:
        # RDS sets rotation (every 7 days by default) on the secrets it manages and
        # Secrets Manager reports it; an answer without it shows nothing either way.
        raise CannotVerify(f"secret {name} is managed by RDS (MasterUserSecret), but its rotation "
                           f"settings (RotationEnabled, RotationRules) are not reported")
    # Secrets Manager omits RotationEnabled for a secret never set to rotate.
    if not inv.secret.get("RotationEnabled"):
        return [f"secret {name}: rotation is off; the spec wants rotation on, every "
                f"<= {th.secret_rotation_max_days} days"]
    days = _rotation_days(inv.secret)
    if days is None:
        raise CannotVerify(f"secret {name}: rotation schedule {inv.secret.get('RotationRules')} "
                           f"cannot be read as an interval")
    if days > th.secret_rotation_max_days:
        return [f"secret {name}: rotates every {float(days):g} days; the spec wants <= "
                f"{th.secret_rotation_max_days} days"]
    return []


@reads("GetSecretValue",
       "inventory `secret_password` (length of the `password` key, never the value); `Name`",
       "no secret, or GetSecretValue refused (a read-only auditor role): cannot verify")
def judge_auth3(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Master password length, where the secret may be read (the value is never reported)."""
    if inv.secret is None:
        raise CannotVerify("no master secret could be read, so the password length is unknown")
    if inv.secret_password_length is None:
        raise CannotVerify(f"secret {inv.secret.get('Name')}: "
                           f"{inv.missing.get('secret_password', 'password not readable')}")
    if inv.secret_password_length < th.min_password_length:
        return [f"secret {inv.secret.get('Name')}: the master password has "
                f"{inv.secret_password_length} characters; the spec wants >= "
                f"{th.min_password_length}"]
    return []


@reads("DescribeDBInstances, DescribeDBClusters",
       "`MasterUsername` (primary, and the cluster when one is configured); "
       "`DBInstanceIdentifier`, `DBClusterIdentifier`",
       "absent: cannot verify")
def judge_auth5(inv: AwsInventory, th: Thresholds) -> list[str]:
    """The master user is not a well-known default name attackers try first."""
    problems = []
    for rec, where in [(primary(inv), dbid(primary(inv)))] + (
            [(inv.cluster, f"db-cluster {inv.cluster['DBClusterIdentifier']}")] if inv.cluster else []):
        user = rec.get("MasterUsername")
        if user is None:
            raise CannotVerify(f"{where}: MasterUsername not reported")
        if user.lower() in th.forbidden_admin_names:
            problems.append(f"{where}: master username is {user!r}; the spec wants a name other "
                            f"than {', '.join(th.forbidden_admin_names)}")
    return problems


def _rid(rec: dict[str, Any]) -> str:
    """A DB instance or DB cluster record, named as the sentences name it."""
    if "DBInstanceIdentifier" in rec:
        return dbid(rec)
    return f"db-cluster {rec['DBClusterIdentifier']}"


@reads("DescribeDBInstances, DescribeKey, ListAliases, GetKeyRotationStatus",
       "`StorageEncrypted`, `KmsKeyId`; key `KeyId`, `KeyManager`, `KeyState`, `Aliases` (only "
       "aliases whose `TargetKeyId` is this key), `RotationEnabled`; `DBInstanceIdentifier`; on a "
       "cluster the cluster's `StorageEncrypted`, `KmsKeyId`; `DBClusterIdentifier`",
       "`StorageEncrypted` absent or false: fail; key not describable: cannot verify; rotation "
       "status not readable: cannot verify")
def judge_enc1(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Storage encrypted with an enabled, rotating, customer-managed KMS key."""
    problems, gaps = [], []
    # A cluster's storage is the cluster's (one volume): judge the cluster record, not each member.
    for inst in [inv.cluster] if inv.cluster else inv.instances:
        if "StorageEncrypted" not in inst:
            gaps.append(f"{_rid(inst)}: StorageEncrypted not reported")
            continue
        if inst.get("StorageEncrypted") is not True:
            problems.append(f"{_rid(inst)}: StorageEncrypted is false; the spec wants storage "
                            f"encrypted with a customer-managed KMS key")
            continue
        key_id = inst.get("KmsKeyId")
        key = inv.kms_keys.get(key_id or "")
        if key is None:
            gaps.append(f"{_rid(inst)}: KMS key {key_id} could not be described")
            continue
        aws_alias = [a for a in key["Aliases"] if a.startswith("alias/aws/")]
        if key.get("KeyManager") == "AWS" or aws_alias:
            which = aws_alias[0] if aws_alias else key["KeyId"]
            problems.append(f"{_rid(inst)}: storage key {which} is AWS-managed; the spec wants a "
                            f"customer-managed key")
            continue
        if key.get("KeyState") != "Enabled":
            problems.append(f"{_rid(inst)}: KMS key {key['KeyId']} is {key.get('KeyState')}; the "
                            f"spec wants it enabled")
        if key.get("RotationEnabled") is None:
            gaps.append(f"KMS key {key['KeyId']}: rotation status not readable")
        elif not key["RotationEnabled"]:
            problems.append(f"{_rid(inst)}: KMS key {key['KeyId']} has rotation off; the spec "
                            f"wants automatic key rotation on")
    return verdict(problems, gaps)


@reads("DescribeDBSnapshots, DescribeDBSnapshotAttributes, DescribeDBInstanceAutomatedBackups, "
       "DescribeDBClusterSnapshots, DescribeDBClusterSnapshotAttributes",
       "snapshot `DBSnapshotIdentifier`, `SnapshotType`, `Encrypted`, restore attribute values "
       "(`all` = public); automated backup `Encrypted`, `DBInstanceIdentifier`; cluster snapshot "
       "`DBClusterSnapshotIdentifier`, `SnapshotType`, `StorageEncrypted`, restore attribute "
       "values",
       "a snapshot without `Encrypted`: fail (not proven encrypted); an automated backup without "
       "`Encrypted` and no automated snapshot that reports it: cannot verify; cluster snapshot "
       "without `StorageEncrypted`: cannot verify")
def judge_enc2(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Every snapshot and automated backup is encrypted; no snapshot restorable by ``all``."""
    problems, gaps = [], []
    for snap in inv.snapshots:
        sid = snap["DBSnapshotIdentifier"]
        kind = snap.get("SnapshotType", "snapshot")
        if snap.get("Encrypted") is not True:
            problems.append(f"{kind} snapshot {sid}: not encrypted; the spec wants every "
                            f"snapshot encrypted")
        if "all" in inv.snapshot_restore.get(sid, []):
            problems.append(f"{kind} snapshot {sid}: restore attribute includes 'all' (public); "
                            f"the spec wants no snapshot shared publicly")
    for snap in inv.cluster_snapshots:
        sid = snap["DBClusterSnapshotIdentifier"]
        kind = snap.get("SnapshotType", "snapshot")
        if "StorageEncrypted" not in snap:
            gaps.append(f"{kind} cluster snapshot {sid}: encryption not reported")
        elif snap["StorageEncrypted"] is not True:
            problems.append(f"{kind} cluster snapshot {sid}: not encrypted; the spec wants every "
                            f"snapshot encrypted")
        if "all" in inv.cluster_snapshot_restore.get(sid, []):
            problems.append(f"{kind} cluster snapshot {sid}: restore attribute includes 'all' "
                            f"(public); the spec wants no snapshot shared publicly")
    covered = {s.get("DBInstanceIdentifier") for s in inv.snapshots
               if s.get("SnapshotType") == "automated" and "Encrypted" in s}
    for ab in inv.automated_backups:
        where = f"automated backup of {ab.get('DBInstanceIdentifier')}"
        if "Encrypted" in ab:
            if not ab["Encrypted"]:
                problems.append(f"{where}: not encrypted; the spec wants automated backups "
                                f"encrypted")
        elif ab.get("DBInstanceIdentifier") not in covered:
            gaps.append(f"{where}: encryption not reported")
    return verdict(problems, gaps)


@reads("GetBucketEncryption, GetPublicAccessBlock, GetBucketVersioning",
       "inventory `exists`, `encryption` → `Rules` → `ApplyServerSideEncryptionByDefault` → "
       "`SSEAlgorithm`; `public_access_block` → `BlockPublicAcls`, `IgnorePublicAcls`, "
       "`BlockPublicPolicy`, `RestrictPublicBuckets`; `versioning`",
       "no bucket configured: not applicable; bucket missing: fail; no encryption configuration, "
       "no public access block, or versioning never enabled: fail")
def judge_enc3(inv: AwsInventory, th: Thresholds) -> list[str]:
    """Backup bucket: default KMS encryption, public access fully blocked, versioning on."""
    if not inv.bucket_name:
        raise NotApplicable("no backup bucket is configured for this target (aws.backup_bucket)")
    b, where = inv.bucket, f"s3 bucket {inv.bucket_name}"
    if not b.get("exists"):
        return [f"{where} does not exist; the spec wants a locked backup bucket"]
    problems = []
    algos = [r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm")
             for r in (b.get("encryption") or {}).get("Rules", [])]
    if not any(a in ("aws:kms", "aws:kms:dsse") for a in algos):
        found = ", ".join(a for a in algos if a) or "none configured"
        problems.append(f"{where}: default encryption is {found}; the spec wants SSE-KMS")
    pab = b.get("public_access_block")
    off = [k for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                       "RestrictPublicBuckets") if not (pab or {}).get(k)]
    if off:
        problems.append(f"{where}: public access block {'absent' if pab is None else 'has ' + ', '.join(off) + ' off'}; "
                        f"the spec wants all four settings on")
    if b.get("versioning") != "Enabled":
        problems.append(f"{where}: versioning is {b.get('versioning') or 'never enabled'}; the "
                        f"spec wants it Enabled")
    return problems
