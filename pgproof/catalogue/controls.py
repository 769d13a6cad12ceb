"""The entries: every control pgproof checks today, in report order.

Layers are what the suites and scenarios really look at (tests/test_controls.py
holds them to that).
A control without a check is deliberately absent: a report must not list what nothing proves.
Framework references cite the IDs listed (with their sources) in catalogue/frameworks.py;
tests/test_frameworks.py holds every citation to that list. A compliance control without a
HIPAA citation says why (``unmapped_reason``).
"""

from __future__ import annotations

from pgproof.catalogue.model import Control, Kind, Severity

# Severity per control: what a failure exposes, not this run's verdict. Where Security Hub
# rates the matching FSBP control, the same label (RDS.2 critical, RDS.13 high, RDS.3 medium,
# RDS.5 medium, RDS.6 low, RDS.8 low); the rest by the same yardstick: data readable or
# writable by others high/critical, weakened defence in depth medium, hygiene low.
SEVERITIES: dict[str, Severity] = {
    "TLS-1": "high", "TLS-2": "high", "TLS-3": "medium", "TLS-4": "medium", "TLS-5": "medium",
    "TLS-6": "high", "TLS-7": "high",
    "NET-1": "critical", "NET-2": "high", "NET-3": "high", "NET-4": "medium", "NET-5": "high",
    "AUTH-1": "high", "AUTH-2": "medium", "AUTH-3": "high", "AUTH-4": "high", "AUTH-5": "medium",
    "AUTHZ-1": "medium", "ENC-1": "medium", "ENC-2": "medium", "ENC-3": "medium",
    "AUDIT-1": "medium", "BAK-1": "medium", "BAK-2": "high", "BAK-3": "low", "BAK-4": "low",
    "BAK-5": "low", "HA-1": "medium", "HA-5": "medium", "POOL-1": "low", "MON-1": "medium",
    "MON-2": "low", "MON-3": "low", "MNT-1": "high",
    "HA-2": "high", "HA-3": "critical", "HA-4": "medium", "HA-6": "medium", "CH-LAT": "medium",
    "CH-PART": "critical", "BAK-6": "high", "CH-FORCE": "high", "MON-4": "medium",
}


def _c(cid: str, title: str, requirement: str, layers: str, remediation: str,
       thresholds: str = "", kind: Kind = "compliance", unmapped_reason: str = "",
       **frameworks: tuple[str, ...]) -> Control:
    return Control(cid, title, requirement, kind, tuple(layers.split()), remediation,
                   tuple(thresholds.split()), dict(frameworks), unmapped_reason,
                   SEVERITIES[cid])  # a control without a severity fails at import


# HIPAA Security Rule citations used by several controls.
TRANSMISSION = ("164.312(e)(1)", "164.312(e)(2)(ii)")
NETWORK = ("164.312(a)(1)", "164.312(e)(1)")
PASSWORDS = ("164.312(d)", "164.308(a)(5)(ii)(D)")
BACKUP = ("164.308(a)(7)(ii)(A)",)
RESILIENCE = ("164.308(a)(7)(i)", "164.308(a)(7)(ii)(B)", "164.308(a)(7)(ii)(D)")

ENTRIES: tuple[Control, ...] = (
    _c("TLS-1", "Server accepts TLS 1.2+ only",
       "Handshakes pinned to TLS 1.0 or 1.1 are refused by the server at every client endpoint, "
       "1.2 or 1.3 are accepted, ssl_min_protocol_version is at least TLSv1.2, and the RDS "
       "parameter group says so.", "tls sql aws azure",
       "Set ssl_min_protocol_version = 'TLSv1.2' (RDS: in the DB parameter group) and reload.",
       "tls_min_version", hipaa=TRANSMISSION, cis=("6.8",)),
    _c("TLS-2", "Plaintext refused",
       "A plaintext startup is refused, no host/hostnossl pg_hba rule accepts connections, and "
       "rds.force_ssl = 1.", "tls sql aws azure",
       "Use only hostssl rules in pg_hba.conf; on RDS set rds.force_ssl = 1.",
       hipaa=TRANSMISSION, cis=("5.4", "6.8")),
    _c("TLS-3", "Certificate verifies",
       "The server certificate chains to the configured CA bundle, its name matches the endpoint, "
       "and an sslmode=verify-full login works.", "tls sql",
       "Issue the server certificate from the CA clients trust, with the endpoint's DNS name "
       "or address in its subjectAltName.",
       hipaa=("164.312(e)(1)", "164.312(d)"), cis=("6.8",)),
    _c("TLS-4", "Certificate not near expiry",
       "Leaf and CA certificates stay valid for at least the threshold; the RDS CA identifier "
       "is not deprecated.", "tls aws azure",
       "Renew the certificate before the threshold; on RDS move the instance to a current CA "
       "(e.g. rds-ca-rsa2048-g1).", "cert_min_days deprecated_ca_ids",
       hipaa=("164.312(e)(1)",)),
    _c("TLS-5", "Strong crypto",
       "The server accepts no anonymous, NULL, EXPORT, RC4, DES, 3DES or MD5 suite at any TLS "
       "version (enumerated one class at a time, as a scanner does), key exchange is forward "
       "secret, and the leaf key is at least 2048-bit RSA or 256-bit EC.", "tls",
       "Restrict ssl_ciphers to forward-secret AEAD suites (e.g. 'HIGH:!aNULL:!MD5:!3DES') and "
       "use a 2048-bit RSA or P-256 key.", "tls_require_forward_secrecy",
       hipaa=(*TRANSMISSION, "164.312(e)(2)(i)"), cis=("6.10",)),
    _c("TLS-6", "Pooler keeps TLS",
       "PgBouncer requires TLS from clients and to the server; an RDS Proxy has RequireTLS on.",
       "pooler aws",
       "Set client_tls_sslmode and server_tls_sslmode to require (or verify-full) in PgBouncer; "
       "enable RequireTLS on the RDS Proxy.", hipaa=TRANSMISSION),
    _c("TLS-7", "Replication encrypted",
       "Every replication connection on the primary uses TLS at the minimum version or higher, "
       "and every standby's primary_conninfo requires TLS; on RDS and Aurora replication is "
       "managed by the provider, which is stated.", "sql",
       "Use hostssl rules for replication, and sslmode=verify-full (or verify-ca/require) in the "
       "replication connection settings (Patroni: authentication.replication.sslmode).",
       "tls_min_version", hipaa=TRANSMISSION, cis=("7.5",)),
    _c("NET-1", "Not publicly accessible",
       "PubliclyAccessible is false on the primary and every replica.", "aws azure",
       "Modify the instances with --no-publicly-accessible.", hipaa=NETWORK, fsbp=("RDS.2",)),
    _c("NET-2", "Private subnets",
       "No subnet of the DB subnet group routes 0.0.0.0/0 or ::/0 to an internet gateway in its "
       "effective route table.", "aws azure",
       "Put the DB subnet group on subnets whose route tables send default routes to a NAT or "
       "nowhere, never to an internet gateway.", hipaa=NETWORK),
    _c("NET-3", "Tight security groups",
       "The database port is open only to app-tier security groups or private CIDRs, never to "
       "0.0.0.0/0, ::/0 or all ports.", "aws azure",
       "Replace open ingress rules with rules that reference the app tier's security group.",
       hipaa=NETWORK, fsbp=("EC2.18", "EC2.19")),
    _c("NET-4", "Private endpoint",
       "The writer endpoint resolves to private addresses only.", "dns azure",
       "Use the private endpoint (private hosted zone / private DNS) and no public address.",
       hipaa=NETWORK),
    _c("NET-5", "Unreachable from outside",
       "A connection from an outside vantage point fails; from an app host it succeeds.",
       "vantage",
       "Close the path from outside (security groups, NACLs, firewall) while keeping the app "
       "tier's route.", hipaa=NETWORK),
    _c("AUTH-1", "Strong auth method",
       "password_encryption = scram-sha-256 and no trust, md5 or password pg_hba rule.", "sql",
       "Set password_encryption = scram-sha-256, reset passwords, and use scram-sha-256 in every "
       "pg_hba rule.", hipaa=PASSWORDS, cis=("5.4",)),
    _c("AUTH-2", "Managed, rotated secret",
       "The master secret lives in Secrets Manager with rotation on, at most every threshold "
       "days.", "aws azure",
       "Manage the master password in Secrets Manager and enable rotation within the interval.",
       "secret_rotation_max_days", hipaa=PASSWORDS,
       fsbp=("SecretsManager.1", "SecretsManager.4")),
    _c("AUTH-3", "Strong password",
       "Where the secret may be read, the password is at least the threshold length.", "aws",
       "Rotate to a generated password of at least the minimum length.", "min_password_length",
       hipaa=PASSWORDS, cis=("5.6",)),
    _c("AUTH-4", "No credentials in code",
       "The configured source tree holds no DSN with a password and no password literal.",
       "source",
       "Remove the literals, rotate the exposed credentials, and read secrets from the "
       "environment or Secrets Manager.", hipaa=PASSWORDS),
    _c("AUTH-5", "Not the default admin",
       "The master username is not a default name (postgres, admin, ...).", "aws azure",
       "Create the instance with a custom master username (it cannot be renamed in place: "
       "restore into a new instance).", "forbidden_admin_names", hipaa=("164.312(a)(1)",),
       fsbp=("RDS.25",)),
    _c("AUTHZ-1", "Least privilege",
       "The application role is not superuser and has no CREATEROLE, CREATEDB or BYPASSRLS.",
       "sql",
       "ALTER ROLE <app> NOSUPERUSER NOCREATEROLE NOCREATEDB NOBYPASSRLS; grant only what the "
       "app needs.", hipaa=("164.312(a)(1)", "164.308(a)(4)(i)"), cis=("4.3",)),
    _c("ENC-1", "Encrypted at rest",
       "Storage is encrypted with an enabled customer-managed KMS key with rotation on; "
       "self-managed: the data directory sits on an encrypted device.", "aws host azure",
       "Encrypt with a customer-managed KMS key with rotation (RDS: restore an encrypted "
       "snapshot copy); self-managed: put the data directory on LUKS.",
       hipaa=("164.312(a)(2)(iv)",), fsbp=("RDS.3",)),
    _c("ENC-2", "Encrypted, private backups",
       "Snapshots and automated backups are encrypted and no snapshot is shared with all; "
       "a backup tool's repositories are encrypted (cipher not none).",
       "aws backup",
       "Copy unencrypted snapshots with a KMS key, delete the originals, and remove the 'all' "
       "restore attribute; set repo1-cipher-type=aes-256-cbc on a new pgBackRest repository.",
       hipaa=("164.312(a)(2)(iv)", *BACKUP), fsbp=("RDS.1", "RDS.4")),
    _c("ENC-3", "Backup storage locked",
       "The backup bucket has default KMS encryption, public access fully blocked, and "
       "versioning.", "aws azure",
       "Set default SSE-KMS encryption, all four public-access-block settings, and versioning "
       "on the bucket.", hipaa=("164.312(a)(2)(iv)", *BACKUP), fsbp=("S3.8",)),
    _c("AUDIT-1", "Audit logging",
       "pgaudit is loaded and logging, log_connections and log_disconnections are on, and the "
       "logs are exported to CloudWatch with a retention.", "sql aws azure",
       "Load pgaudit (shared_preload_libraries), set pgaudit.log, enable connection logging, "
       "and export the postgresql log with a retention.",
       hipaa=("164.312(b)", "164.308(a)(1)(ii)(D)", "164.308(a)(5)(ii)(C)"),
       cis=("3.1.20", "3.1.21", "3.2"), fsbp=("RDS.9",)),
    _c("BAK-1", "Backup retention",
       "Automated backup retention (or the backup tool's full-backup retention) is between the "
       "minimum and maximum days.", "aws backup azure",
       "Set the backup retention period (pgBackRest: repo1-retention-full-type=time, "
       "repo1-retention-full) within the bounds.",
       "backup_retention_min_days backup_retention_max_days", hipaa=BACKUP, cis=("7.3",),
       fsbp=("RDS.11",)),
    _c("BAK-2", "Point-in-time recovery",
       "The latest restorable time is within the RPO of now; self-managed: WAL is archived "
       "within the RPO with no failure since the last success, and the newest full backup is "
       "recent.", "aws backup azure",
       "Enable automated backups and make sure WAL archiving keeps up (archive_timeout <= the "
       "RPO; fix a failing archive_command); schedule full backups.",
       "rpo_minutes full_backup_max_age_days", hipaa=(*BACKUP, "164.308(a)(7)(ii)(B)"),
       cis=("7.4",)),
    _c("BAK-3", "Geo-redundant copies",
       "Backups are replicated to another region, or an AWS Backup copy rule targets one; a "
       "backup tool's second repository is usable.", "aws backup azure",
       "Enable cross-region automated backup replication or add a copy rule to another region.",
       hipaa=(*BACKUP, "164.308(a)(7)(ii)(B)")),
    _c("BAK-4", "Long-term archive",
       "A lifecycle rule moves backups to Glacier-class storage and keeps them at least the "
       "archive threshold.", "aws azure",
       "Add a lifecycle rule (S3 or AWS Backup) that transitions to Glacier-class storage and "
       "keeps copies long enough.", "archive_min_days", hipaa=BACKUP, fsbp=("S3.13",)),
    _c("BAK-5", "Deletion protection",
       "Deletion protection is on for the primary.", "aws azure",
       "Modify the instance with --deletion-protection.", hipaa=("164.312(c)(1)",),
       fsbp=("RDS.8",)),
    _c("HA-1", "Multi-AZ",
       "Multi-AZ is on and the standby's availability zone differs from the primary's.", "aws azure",
       "Modify the instance with --multi-az.",
       hipaa=("164.308(a)(7)(i)", "164.308(a)(7)(ii)(C)"), fsbp=("RDS.5",)),
    _c("HA-5", "Replicas read-only, fresh",
       "Every replica refuses writes and lags less than the threshold.", "sql",
       "Investigate replica lag (I/O, long queries, network) and never promote a replica by "
       "hand while it serves reads.", "replica_lag_max_s",
       hipaa=("164.312(c)(1)", "164.308(a)(7)(i)")),
    _c("POOL-1", "Pooler configured",
       "The pooler's pool size is as specified, an idle timeout is set, and health checks are "
       "on.", "pooler",
       "Set default_pool_size, server_idle_timeout and server_check_delay in PgBouncer.",
       "pool_size", unmapped_reason="pool sizing and idle timeouts are capacity settings; no "
       "Security Rule standard asks for them (availability under failover is HA-1 to HA-6)"),
    _c("MON-1", "Alarms that page",
       "Alarms exist for CPU, memory, storage, connections near max, replica lag and backup "
       "failures, each with an action whose topic has a subscriber; on AWS an RDS event "
       "subscription covers failure, failover, low storage and backup/recovery events to a "
       "subscribed topic.", "aws azure",
       "Create the CloudWatch alarms at the thresholds with an SNS action whose topic has a "
       "confirmed subscriber (on Aurora PostgreSQL on FreeLocalStorage per instance and "
       "AuroraReplicaLag, in milliseconds, instead of FreeStorageSpace and ReplicaLag), and "
       "an RDS event subscription (db-instance or db-cluster) for "
       "the failure, failover, low storage, backup and recovery categories to that topic.",
       "cpu_alarm_max_pct memory_alarm_max_pct storage_alarm_max_pct connections_alarm_max_pct "
       "replica_lag_max_s", hipaa=("164.308(a)(6)(ii)", "164.308(a)(1)(ii)(D)")),
    _c("MON-2", "Deep monitoring",
       "Enhanced Monitoring and Performance Insights are on and slow-query logging is set.",
       "aws sql azure",
       "Enable Enhanced Monitoring and Performance Insights and set "
       "log_min_duration_statement.", hipaa=("164.308(a)(1)(ii)(D)",), fsbp=("RDS.6",)),
    _c("MON-3", "Health endpoint",
       "GET /api/health/database returns connection status, version, SSL on, active "
       "connections and response time.", "health",
       "Serve the health endpoint with every field, over a TLS connection to the database.",
       unmapped_reason="an application health endpoint is an operational probe; no Security "
       "Rule standard asks for one"),
    _c("MNT-1", "Patched engine",
       "The engine is PostgreSQL of the expected major version and automatic minor upgrades "
       "are on.", "sql aws azure",
       "Upgrade to a supported minor and enable auto minor version upgrade.", "engine_major",
       hipaa=("164.308(a)(1)(ii)(B)",), cis=("1.5",), fsbp=("RDS.13",)),
    # Game days: they change the target and run from scenarios/ or `pgproof gameday`.
    _c("HA-2", "Failover completes within the RTO budget",
       "After the primary is killed under load, writes succeed again on a new primary within "
       "the RTO budget, measured at <= 100 ms resolution.", "clock",
       "Shorten failure detection (Patroni ttl/loop_wait; RDS: Multi-AZ) and make clients "
       "reconnect on error.", "rto_budget_s", kind="gameday", hipaa=RESILIENCE),
    _c("HA-3", "No acknowledged write lost",
       "Every write acknowledged before or during the failover is on the new primary.",
       "ledger",
       "Use synchronous replication (synchronous_mode / Multi-AZ) so no commit is acknowledged "
       "before a standby has it.", kind="gameday", hipaa=(*RESILIENCE, "164.312(c)(1)")),
    _c("HA-4", "Load recovers without restarting clients",
       "Throughput returns to the recovery ratio of its pre-fault median without restarting "
       "clients.", "load",
       "Make the pool and clients reconnect and retry instead of holding dead connections.",
       "load_recovery_ratio recovery_sustain_s recovery_budget_s", kind="gameday",
       hipaa=("164.308(a)(7)(ii)(D)",)),
    _c("HA-6", "The cluster heals",
       "The old primary rejoins or a new standby appears, and steady state holds again.",
       "cluster",
       "Enable pg_rewind (use_pg_rewind) or automatic replica re-creation.",
       "recovery_sustain_s recovery_budget_s", kind="gameday",
       hipaa=RESILIENCE),
    _c("CH-LAT", "Latency on the client path triggers no failover",
       "Latency on the client path triggers no failover, errors stay within budget, and p95 "
       "returns to baseline after the fault is removed.", "load cluster",
       "Raise client and health-check timeouts above the expected latency; keep failover "
       "detection off the client path.", "latency_error_budget p95_recovery_factor recovery_sustain_s recovery_budget_s",
       kind="gameday", hipaa=("164.308(a)(7)(ii)(D)",)),
    _c("CH-PART", "Partitioned primary is replaced, no split brain",
       "A primary cut off from clients and the cluster is replaced within the RTO budget and "
       "accepts no write after the new one is promoted.", "clock split-brain",
       "Make the old primary demote itself when it loses the consensus store (Patroni does; "
       "check watchdog and synchronous settings).", "rto_budget_s", kind="gameday",
       hipaa=(*RESILIENCE, "164.312(c)(1)")),
    _c("BAK-6", "Restore proven",
       "A point-in-time restore drill under load restores to T into a scratch instance that "
       "brings back every acknowledged row up to T and none after (measured RPO within the "
       "budget), accepts a login over TLS, is as private as its source, and is ready within "
       "the restore budget; the scratch instance is deleted.", "restore",
       "Keep WAL archiving healthy and base backups restorable (test restores regularly); "
       "shorten restore time with more frequent full or incremental backups.",
       "rpo_minutes restore_budget_s tls_min_version", kind="gameday",
       hipaa=("164.308(a)(7)(ii)(A)", "164.308(a)(7)(ii)(B)", "164.308(a)(7)(ii)(D)")),
    _c("CH-FORCE", "Control-plane failover as HA-2 and HA-3",
       "A failover through the control plane meets the RTO budget and loses no acknowledged "
       "write.", "clock ledger",
       "As HA-2 and HA-3: fast detection, reconnecting clients, synchronous replication.",
       "rto_budget_s", kind="gameday", hipaa=(*RESILIENCE, "164.312(c)(1)")),
    _c("MON-4", "Alarms deliver",
       "Each MON-1 alarm, forced into ALARM, delivers its notification through its SNS topic to "
       "a subscriber within the delivery budget.", "aws sns-delivery",
       "Fix the alarm's action (enabled, pointing at an existing topic) and the topic's "
       "subscriptions and access policy until a forced alarm arrives.",
       "alarm_delivery_budget_s", kind="gameday",
       hipaa=("164.308(a)(6)(ii)", "164.308(a)(1)(ii)(D)")),
)
