"""BAK-1..BAK-5: retention, point-in-time recovery, geo copies, archive, deletion protection.

Two layers: the AWS API (RDS, AWS Backup) and the backup tool's own view (``[backup]``).
"""

from __future__ import annotations

import pytest

from pgproof.checks import aws_ops as aws_checks
from pgproof.checks import backup as backup_judge
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("BAK-1")
def test_retention_within_bounds(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-1"))


@control("BAK-2")
def test_point_in_time_recovery_fresh(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak2(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-2"))


@control("BAK-3")
def test_cross_region_copies(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak3(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-3"))


@control("BAK-4")
def test_long_term_archive(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak4(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-4"))


@control("BAK-5")
def test_deletion_protection(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak5(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-5"))


# -- the backup layer: the tool's own info and the archiver (self-managed targets, the lab) ---

@control("BAK-1")
def test_backup_tool_retention(backup_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    o = backup_facts.options
    expect(backup_judge.judge_bak1(backup_facts, target.thresholds), evidence,
           f"{backup_facts.tool} {backup_facts.stanza}: retention-full="
           f"{o.get('repo-retention-full')} ({o.get('repo-retention-full-type')})")


@control("BAK-2")
def test_wal_archiving_within_rpo(backup_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    a = backup_facts.archiver
    expect(backup_judge.judge_bak2_archiving(a, target.thresholds), evidence,
           f"{a.endpoint}: archive_mode={a.archive_mode}, archived {a.archived_count} "
           f"(last {a.last_archived_wal} at {a.last_archived_time}), failed {a.failed_count} "
           f"(last at {a.last_failed_time}), archive_timeout={a.archive_timeout_s} s, "
           f"oldest waiting segment: {a.oldest_ready or 'none'}")


@control("BAK-2")
def test_recent_full_backup(backup_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    fulls = [b["label"] for b in backup_facts.backups if b.get("type") == "full"]
    expect(backup_judge.judge_bak2_full_backup(backup_facts, target.thresholds), evidence,
           f"{backup_facts.tool} {backup_facts.stanza}: full backups {', '.join(fulls) or 'none'}")


@control("BAK-3")
def test_backup_tool_second_repository(backup_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(backup_judge.judge_bak3(backup_facts), evidence,
           f"{backup_facts.tool} {backup_facts.stanza}: repositories "
           + ", ".join(f"repo{r.get('key')}" for r in backup_facts.repos))
