"""BAK-1..BAK-5, BAK-7: retention, point-in-time recovery, geo copies, archive, deletion protection,
and (CIS 8.2) pgBackRest installed and configured.

Three layers: the AWS API (RDS, AWS Backup), the Azure API, and the backup tool's own view
(``[backup]``: pgBackRest info and pg_stat_archiver).
"""

from __future__ import annotations

from typing import Any

from pgproof.catalogue import seen
from pgproof.catalogue.build import BACKUP, aws, azure, check, control
from pgproof.catalogue.runner import resolve


def _tool(b: Any, *_: Any) -> str:
    return f"{b.tool} {b.stanza}"


def wal_archiving(backup_facts: Any, th: Any) -> list[str]:
    """WAL reaches the archive within the RPO, with no failure since the last success."""
    return resolve("pgproof.checks.backup:judge_bak2_archiving")(  # type: ignore[no-any-return]
        backup_facts.archiver, th)


def _archiving(b: Any, _th: Any) -> str:
    a = b.archiver
    return (f"{a.endpoint}: archive_mode={a.archive_mode}, archived {a.archived_count} "
            f"(last {a.last_archived_wal} at {a.last_archived_time}), failed {a.failed_count} "
            f"(last at {a.last_failed_time}), archive_timeout={a.archive_timeout_s} s, "
            f"oldest waiting segment: {a.oldest_ready or 'none'}")


def _fulls(b: Any, _th: Any) -> str:
    fulls = [x["label"] for x in b.backups if x.get("type") == "full"]
    return f"{_tool(b)}: full backups {', '.join(fulls) or 'none'}"


CONTROLS = (
    control(
        "BAK-1", "Backup retention",
        "Automated backup retention (or the backup tool's full-backup retention) is between the "
        "minimum and maximum days.",
        "Set the backup retention period (pgBackRest: repo1-retention-full-type=time, "
        "repo1-retention-full) within the bounds.", severity="medium",
        thresholds="backup_retention_min_days backup_retention_max_days", hipaa=BACKUP,
        cis=("7.3",), fsbp=("RDS.11",),
        checks=(aws("aws_ops:judge_bak1", lambda i: seen.cluster(i, "BackupRetentionPeriod")),
                check("backup", "backup:judge_bak1", "backup_facts", "thresholds",
                      evidence=lambda b, _th: f"{_tool(b)}: retention-full="
                      f"{b.options.get('repo-retention-full')} "
                      f"({b.options.get('repo-retention-full-type')})"),
                azure("azure_ops:judge_bak1", props=("backup",)))),
    control(
        "BAK-2", "Point-in-time recovery",
        "The latest restorable time is within the RPO of now; self-managed: WAL is archived "
        "within the RPO with no failure since the last success, and the newest full backup is "
        "recent.",
        "Enable automated backups and make sure WAL archiving keeps up (archive_timeout <= the "
        "RPO; fix a failing archive_command); schedule full backups.", severity="high",
        thresholds="rpo_minutes full_backup_max_age_days",
        hipaa=(*BACKUP, "164.308(a)(7)(ii)(B)"), cis=("7.4",),
        checks=(aws("aws_ops:judge_bak2", lambda i: seen.each(i, "LatestRestorableTime")),
                check("backup", wal_archiving, "backup_facts", "thresholds", evidence=_archiving),
                check("backup", "backup:judge_bak2_full_backup", "backup_facts", "thresholds",
                      evidence=_fulls),
                azure("azure_ops:judge_bak2", props=("backup", "state")))),
    control(
        "BAK-3", "Geo-redundant copies",
        "Backups are replicated to another region, or an AWS Backup copy rule targets one; a "
        "backup tool's second repository is usable.",
        "Enable cross-region automated backup replication or add a copy rule to another region.",
        severity="low", hipaa=(*BACKUP, "164.308(a)(7)(ii)(B)"),
        checks=(aws("aws_ops:judge_bak3", lambda i: (
                    f"global database {i.global_cluster.get('GlobalClusterIdentifier')}; "
                    if i.global_cluster else "") + seen.plans(i)),
                check("backup", "backup:judge_bak3", "backup_facts",
                      evidence=lambda b: f"{_tool(b)}: repositories " + ", ".join(
                          f"repo{r.get('key')}" for r in b.repos)),
                azure("azure_ops:judge_bak3", props=("backup",)))),
    control(
        "BAK-4", "Long-term archive",
        "A lifecycle rule moves backups to Glacier-class storage and keeps them at least the "
        "archive threshold.",
        "Add a lifecycle rule (S3 or AWS Backup) that transitions to Glacier-class storage and "
        "keeps copies long enough.", severity="low", thresholds="archive_min_days",
        hipaa=BACKUP, fsbp=("S3.13",),
        checks=(aws("aws_ops:judge_bak4", lambda i: f"bucket {i.bucket_name} lifecycle: "
                    f"{i.bucket.get('lifecycle') or i.bucket.get('Lifecycle')}"),
                azure("azure_ops:judge_bak4",
                      seen=lambda inv: f"lifecycle {bool(inv.management_policy)}"))),
    control(
        "BAK-5", "Deletion protection",
        "Deletion protection is on for the primary.",
        "Modify the instance with --deletion-protection.", severity="low",
        hipaa=("164.312(c)(1)",), fsbp=("RDS.8",),
        checks=(aws("aws_ops:judge_bak5", lambda i: seen.cluster(i, "DeletionProtection")),
                azure("azure_ops:judge_bak5",
                      seen=lambda inv: f"locks {[lk.get('name') for lk in inv.locks]}"))),
    control(
        "BAK-7", "pgBackRest installed and configured",
        "pgBackRest answers for the target's stanza: the repository knows the stanza (status "
        "ok) and the database it backs up (CIS 8.2; on RDS, Aurora and Azure the provider's "
        "own backups are BAK-1..BAK-5's).",
        "Install pgBackRest (Debian: apt install pgbackrest), configure the repository and the "
        "stanza in pgbackrest.conf, run pgbackrest --stanza=<s> stanza-create and "
        "pgbackrest --stanza=<s> check; archive_command = 'pgbackrest --stanza=<s> "
        "archive-push %p'.",
        severity="medium", hipaa=BACKUP, cis=("8.2",),
        checks=(check("backup", "backup:judge_bak7", "backup_facts",
                      evidence=lambda b: f"{_tool(b)}: status "
                      f"{(b.info.get('status') or {}).get('message')}, database(s) "
                      f"{', '.join(str(d.get('version')) for d in b.info.get('db') or [])}"),)),
)
