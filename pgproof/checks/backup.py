"""Judges of the backup layer: the tool's own info and the archiver view against the thresholds."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pgproof.exact import exact
from pgproof.probes.backup import ArchiverFacts, BackupFacts
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, Unreachable


def _where(f: BackupFacts) -> str:
    return f"{f.tool} stanza {f.stanza} on {f.host}"


def _full_backups(f: BackupFacts) -> list[dict[str, Any]]:
    return [b for b in f.backups if b.get("type") == "full" and not b.get("error")]


def judge_bak1(f: BackupFacts, th: Thresholds) -> list[str]:
    """Retention in days within the window: from the tool's effective retention setting."""
    lo, hi = th.backup_retention_min_days, th.backup_retention_max_days
    kind, value = f.options.get("repo-retention-full-type"), f.options.get("repo-retention-full")
    if value is None:
        return [f"{_where(f)}: repo1-retention-full is not set, so backups are never expired; the "
                f"spec wants {lo}-{hi} days"]
    if kind == "time":
        days = float(value)
    else:
        fulls = _full_backups(f)
        if len(fulls) < int(value):
            raise CannotVerify(f"{_where(f)}: retention keeps {value} full backups (count) and "
                               f"{len(fulls)} exist, so the window in days is not known yet")
        days = (datetime.now(UTC).timestamp() - fulls[0]["timestamp"]["stop"]) / 86400
    if not lo <= days <= hi:
        return [f"{_where(f)}: full backups are kept {days:.3g} days (repo1-retention-full="
                f"{value}, type {kind}); the spec wants {lo}-{hi} days"]
    return []


def _age_s(a: ArchiverFacts, t: datetime | None) -> float | None:
    return None if t is None else (a.now - t).total_seconds()


def judge_bak2_archiving(a: ArchiverFacts, th: Thresholds) -> list[str]:
    """WAL reaches the repository within the RPO, and the archiver is not failing.

    Exposure is bounded by the oldest completed segment still waiting (``.ready``) and
    by archive_timeout for the segment being written; the bare age of the last
    archived WAL would fail an idle server that has nothing left to archive.
    """
    rpo = exact(th.rpo_minutes) * 60  # 0.1 min is 6 s, not 6.000000000000001
    where = f"{a.endpoint} (pg_stat_archiver)"
    if a.archive_mode not in ("on", "always"):
        return [f"{where}: archive_mode is {a.archive_mode}, so no WAL is archived and there is "
                f"no point-in-time recovery; the spec wants RPO <= {th.rpo_minutes:g} min"]
    if a.last_archived_time is None and (a.failed_count or not 0 < a.archive_timeout_s <= rpo):
        return [f"{where}: no WAL segment has been archived yet ({a.failed_count} failed "
                f"attempts); the spec wants RPO <= {th.rpo_minutes:g} min"]
    # Nothing archived, nothing failed and archive_timeout within the RPO: a server just
    # promoted (or idle since it started) owes nothing yet; what waits is judged below.
    problems = []
    if (a.last_failed_time is not None and a.last_archived_time is not None
            and a.last_failed_time > a.last_archived_time):
        problems.append(f"{where}: archiving is failing: {a.last_failed_wal} failed at "
                        f"{a.last_failed_time:%H:%M:%S} after the last success "
                        f"({a.last_archived_wal} at {a.last_archived_time:%H:%M:%S}); the spec "
                        f"wants WAL archived within {th.rpo_minutes:g} min")
    if a.oldest_ready is not None and a.oldest_ready[1] > rpo:
        problems.append(f"{where}: WAL segment {a.oldest_ready[0]} has waited "
                        f"{a.oldest_ready[1] / 60:.1f} min to be archived; the spec wants RPO <= "
                        f"{th.rpo_minutes:g} min")
    if a.ready_error is not None and not problems:
        raise Unreachable(f"{where}: segments waiting to be archived are not visible "
                          f"({a.ready_error}); or grant pg_monitor to the auditor role")
    if not 0 < a.archive_timeout_s <= rpo:
        age = _age_s(a, a.last_archived_time) or 0
        if age > rpo:
            problems.append(f"{where}: archive_timeout is {a.archive_timeout_s} s, so writes may "
                            f"wait in an unfinished segment, and the last WAL was archived "
                            f"{age / 60:.1f} min ago; the spec wants RPO <= {th.rpo_minutes:g} min "
                            f"(set archive_timeout <= the RPO)")
    return problems


# pgbackrest info's status 99 ("other"): the tool could not read the repository (a timeout, a
# refused connection, a permission). That says nothing about the backups: could not check.
TOOL_COULD_NOT_READ = 99


def _could_not_read(f: BackupFacts, status: dict[str, Any], what: str) -> None:
    """Raise ``Unreachable`` when ``status`` says the tool could not read ``what``.

    The stanza's own message is just "other"; the repositories' say why."""
    if status.get("code") != TOOL_COULD_NOT_READ:
        return
    why = [str((r.get("status") or {}).get("message") or "").strip() for r in f.repos
           if (r.get("status") or {}).get("code") == TOOL_COULD_NOT_READ]
    why = [w for w in why if w] or [str(status.get("message") or "no message").strip()]
    raise Unreachable(f"{_where(f)}: the tool could not read {what}: {'; '.join(dict.fromkeys(why))}")


def judge_bak2_full_backup(f: BackupFacts, th: Thresholds, now: float | None = None) -> list[str]:
    """A restorable base backup exists and the newest full one is recent enough.

    A repository that did not answer (status 99, e.g. "timeout after 60000ms") is an
    error, never a failure: the backups may be fine."""
    status = f.info.get("status") or {}
    _could_not_read(f, status, "the repository")
    if status.get("code", 0) != 0:
        return [f"{_where(f)}: status {status.get('code')} ({status.get('message')}); the spec "
                f"wants a valid backup to recover from"]
    fulls = _full_backups(f)
    limit = th.full_backup_max_age_days
    if not fulls:
        return [f"{_where(f)}: no full backup in the repository; the spec wants one at most "
                f"{limit:g} days old"]
    newest = fulls[-1]
    age_s = exact(now if now is not None else datetime.now(UTC).timestamp()) - newest["timestamp"]["stop"]
    if age_s > exact(limit) * 86400:
        return [f"{_where(f)}: the newest full backup {newest['label']} is "
                f"{float(age_s) / 86400:.1f} days old; "
                f"the spec wants one at most {limit:g} days old"]
    return []


def judge_enc2(f: BackupFacts) -> list[str]:
    """Every repository is encrypted by the tool (client-side, before it leaves the host)."""
    repos = f.repos or [{"key": 1, "cipher": f.info.get("cipher")}]
    return [f"{_where(f)}: repo{r.get('key')} cipher is {r.get('cipher')!r}, so backups and WAL "
            f"are stored unencrypted; the spec wants encrypted backups (e.g. "
            f"repo{r.get('key')}-cipher-type=aes-256-cbc)"
            for r in repos if (r.get("cipher") or "none") == "none"]


def judge_bak3(f: BackupFacts) -> list[str]:
    """A second repository (another bucket/region) that holds backups as well."""
    repos = f.repos
    if len(repos) < 2:
        raise CannotVerify(f"{_where(f)} writes to one repository (repo1) only; a copy outside "
                           f"the tool (e.g. S3 cross-region replication of its bucket) is not "
                           f"visible to this layer")
    for r in repos:
        _could_not_read(f, r.get("status") or {}, f"repo{r.get('key')}")
    bad = [r for r in repos if (r.get("status") or {}).get("code", 0) != 0]
    return [f"{_where(f)}: repo{r['key']} status {r['status'].get('code')} "
            f"({r['status'].get('message')}); the spec wants every copy usable"
            for r in bad]


def judge_bak7(f: BackupFacts) -> list[str]:
    """CIS 8.2: pgBackRest is the backup tool and its stanza is configured: the repository
    knows the stanza (status ok) and the database it backs up. A repository that did not
    answer is an error, never a failure."""
    status = f.info.get("status") or {}
    _could_not_read(f, status, "the repository")
    problems = []
    if f.tool != "pgbackrest":
        problems.append(f"{_where(f)}: the backup tool is {f.tool}; the spec wants pgBackRest "
                        "installed and configured (CIS 8.2)")
    if status.get("code", 0) != 0:
        problems.append(f"{_where(f)}: status {status.get('code')} ({status.get('message')}): the "
                        "stanza is not configured in the repository; the spec wants pgbackrest "
                        "stanza-create run and the stanza ok (CIS 8.2)")
    elif not f.info.get("db"):
        problems.append(f"{_where(f)}: the stanza names no database; the spec wants it "
                        "configured for this cluster (CIS 8.2)")
    return problems
