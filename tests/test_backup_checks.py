"""The backup-layer and TLS-7 judges on facts shaped like the tools report them, and [backup] parsing.

The live counterparts (the lab, its mutations) are in test_backup_lab.py and the matrix.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pgproof.checks import backup as judge
from pgproof.checks.replication import judge_tls7
from pgproof.probes.backup import ArchiverFacts, BackupFacts, _option
from pgproof.probes.replication import ReplicationFacts, Standby, WalSender
from pgproof.target import ConfigError, Thresholds, parse_target
from pgproof.verdict import CannotVerify, NotApplicable, Unreachable

TH = Thresholds()
NOW = datetime.now(UTC)


def _backup(label: str, days_ago: float, kind: str = "full") -> dict[str, Any]:
    stop = (NOW - timedelta(days=days_ago)).timestamp()
    return {"label": label, "type": kind, "timestamp": {"start": stop - 10, "stop": stop}}


def facts(retention: tuple[str | None, str | None] = ("time", "7"), cipher: str = "aes-256-cbc",
          backups: list[dict[str, Any]] | None = None, repos: int = 1,
          status: int = 0) -> BackupFacts:
    info = {"name": "main", "status": {"code": status, "message": "ok" if not status else "error"},
            "repo": [{"key": k + 1, "cipher": cipher, "status": {"code": 0, "message": "ok"}}
                     for k in range(repos)],
            "backup": [_backup("F1", 1)] if backups is None else backups}
    return BackupFacts("pgbackrest", "main", "ssh://db1", info,
                       {"repo-retention-full-type": retention[0], "repo-retention-full": retention[1]})


def archiver(**kw: Any) -> ArchiverFacts:
    base: dict[str, Any] = dict(
        endpoint="db1:5432", archive_mode="on", archive_timeout_s=60, archived_count=10,
        last_archived_wal="000000010000000000000009", last_archived_time=NOW - timedelta(minutes=30),
        failed_count=0, last_failed_wal=None, last_failed_time=None, now=NOW, oldest_ready=None)
    return ArchiverFacts(**{**base, **kw})


def test_bak1_time_retention_window() -> None:
    assert judge.judge_bak1(facts(("time", "7")), TH) == []
    assert judge.judge_bak1(facts(("time", "30")), TH) == []
    [msg] = judge.judge_bak1(facts(("time", "3")), TH)
    assert "kept 3 days" in msg and "7-30 days" in msg and "BAK-1" not in msg
    assert "31 days" in judge.judge_bak1(facts(("time", "31")), TH)[0]
    assert "never expired" in judge.judge_bak1(facts(("count", None)), TH)[0]


def test_bak1_count_retention_needs_enough_backups_to_know_the_days() -> None:
    with pytest.raises(CannotVerify, match="keeps 4 full backups"):
        judge.judge_bak1(facts(("count", "4")), TH)
    weekly = [_backup(f"F{i}", d) for i, d in enumerate((21, 14, 7, 0.1))]
    assert judge.judge_bak1(facts(("count", "4"), backups=weekly), TH) == []
    daily = [_backup(f"F{i}", d) for i, d in enumerate((3, 2, 1, 0.1))]
    assert "kept 3 days" in judge.judge_bak1(facts(("count", "4"), backups=daily), TH)[0]


def test_bak2_archiving_idle_server_passes_failing_archiver_fails() -> None:
    # Idle for 30 min with archive_timeout 60 s and nothing waiting: nothing is at risk.
    assert judge.judge_bak2_archiving(archiver(), TH) == []
    [msg] = judge.judge_bak2_archiving(
        archiver(failed_count=3, last_failed_wal="00000001000000000000000A",
                 last_failed_time=NOW - timedelta(seconds=5)), TH)
    assert "archiving is failing" in msg and "00000001000000000000000A" in msg
    # An old failure followed by a success is history, not a finding.
    assert judge.judge_bak2_archiving(archiver(last_failed_time=NOW - timedelta(hours=1)), TH) == []


def test_bak2_archiving_waiting_segment_timeout_and_mode() -> None:
    [msg] = judge.judge_bak2_archiving(archiver(oldest_ready=("00000001000000000000000B", 400.0)), TH)
    assert "has waited 6.7 min" in msg
    assert judge.judge_bak2_archiving(archiver(oldest_ready=("X", 100.0)), TH) == []
    assert "archive_timeout is 0 s" in judge.judge_bak2_archiving(archiver(archive_timeout_s=0), TH)[0]
    assert judge.judge_bak2_archiving(
        archiver(archive_timeout_s=0, last_archived_time=NOW - timedelta(minutes=1)), TH) == []
    assert "archive_mode is off" in judge.judge_bak2_archiving(archiver(archive_mode="off"), TH)[0]
    never = {"last_archived_time": None, "archived_count": 0}
    assert "no WAL segment has been archived" in judge.judge_bak2_archiving(
        archiver(**never, failed_count=2, last_failed_time=NOW), TH)[0]
    assert "no WAL segment has been archived" in judge.judge_bak2_archiving(
        archiver(**never, archive_timeout_s=0), TH)[0]
    # Just promoted: nothing archived or failed yet, archive_timeout bounds the exposure.
    assert judge.judge_bak2_archiving(archiver(**never), TH) == []
    assert "has waited 6.7 min" in judge.judge_bak2_archiving(
        archiver(**never, oldest_ready=("00000002000000000000000B", 400.0)), TH)[0]
    # A refused query is "could not check" (error) naming the grant, never cannot-verify or fail.
    with pytest.raises(Unreachable, match="pg_monitor"):
        judge.judge_bak2_archiving(archiver(ready_error="permission denied"), TH)


def test_bak2_full_backup_recent_valid() -> None:
    assert judge.judge_bak2_full_backup(facts(), TH) == []
    assert "8.0 days old" in judge.judge_bak2_full_backup(facts(backups=[_backup("F", 8)]), TH)[0]
    incr_only = [_backup("F", 9), _backup("I", 0.1, "incr")]
    assert "F is 9.0 days old" in judge.judge_bak2_full_backup(facts(backups=incr_only), TH)[0]
    assert "no full backup" in judge.judge_bak2_full_backup(facts(backups=[]), TH)[0]
    assert "status 2" in judge.judge_bak2_full_backup(facts(status=2), TH)[0]


def test_enc2_and_bak3() -> None:
    assert judge.judge_enc2(facts()) == []
    [msg] = judge.judge_enc2(facts(cipher="none"))
    assert "repo1 cipher is 'none'" in msg and "ENC-2" not in msg
    with pytest.raises(CannotVerify, match="one repository"):
        judge.judge_bak3(facts())
    two = facts(repos=2)
    assert judge.judge_bak3(two) == []
    two.info["repo"][1]["status"] = {"code": 3, "message": "missing stanza path"}
    assert "repo2 status 3 (missing stanza path)" in judge.judge_bak3(two)[0]


def test_pgbackrest_help_option_parsing() -> None:
    text = "Full backup retention count/time.\n\ncurrent: 7\n\ndeprecated name: retention-full\n"
    assert _option(text) == "7"
    assert _option("Retention type.\n\ndefault: count\n") == "count"
    assert _option("no value here\n") is None


def _sender(ssl: bool | None = True, version: str | None = "TLSv1.3") -> WalSender:
    return WalSender(101, "node2", "127.0.0.1", "streaming", ssl, version, "TLS_AES_256_GCM_SHA384")


def test_tls7_both_ends() -> None:
    ok = ReplicationFacts("db1:5432", None, [_sender()], [Standby("db2:5432", "verify-full", "db1:5432")])
    assert judge_tls7(ok, TH) == []
    plain = ReplicationFacts("db1:5432", None, [_sender(False, None)], [Standby("db2:5432", "prefer", "db1:5432")])
    problems = judge_tls7(plain, TH)
    assert len(problems) == 2
    assert "pid 101 (node2 from 127.0.0.1) is not encrypted" in problems[0]
    assert "sslmode=prefer, which allows plaintext" in problems[1]
    old = ReplicationFacts("db1:5432", None, [_sender(True, "TLSv1.1")])
    assert "uses TLSv1.1; the spec wants TLSv1.2+" in judge_tls7(old, TH)[0]


def test_tls7_managed_none_and_hidden() -> None:
    with pytest.raises(NotApplicable, match="RDS: replication .* managed by the provider"):
        judge_tls7(ReplicationFacts("rds:5432", "RDS"), TH)
    with pytest.raises(NotApplicable, match="no replication connection"):
        judge_tls7(ReplicationFacts("db1:5432", None), TH)
    with pytest.raises(Unreachable, match="grant pg_monitor"):
        judge_tls7(ReplicationFacts("db1:5432", None, [_sender(None, None)]), TH)
    with pytest.raises(Unreachable, match="pg_read_all_settings"):
        judge_tls7(ReplicationFacts("db1:5432", None, [], [Standby("db2", None, "?", "denied")]), TH)


def test_backup_section_parsed_and_bad_tool_is_one_sentence() -> None:
    pg = {"writer": {"host": "db1", "port": 5432}, "user": "pgproof"}
    t = parse_target("db", {"postgres": pg, "backup": {"stanza": "main", "host": "ssh://db1",
                                                      "command": "sudo -u postgres pgbackrest"}}, "x.toml")
    assert t.backup is not None and t.backup.tool == "pgbackrest" and t.backup.host == "ssh://db1"
    with pytest.raises(ConfigError) as err:
        parse_target("db", {"postgres": pg, "backup": {"stanza": "main", "tool": "barman"}}, "x.toml")
    assert str(err.value).startswith("x.toml: targets.db.backup.tool: Input should be 'pgbackrest'")
    assert "\n" not in str(err.value)


# -- BAK-7 (CIS 8.2): pgBackRest installed and its stanza configured ------------------------------
def test_bak7_configured_stanza_passes_and_each_missing_part_fails() -> None:
    ok = facts()
    ok.info["db"] = [{"id": 1, "system-id": 7, "version": "15"}]
    assert judge.judge_bak7(ok) == []
    missing = facts(status=1)
    missing.info["status"]["message"] = "missing stanza path"
    [p] = judge.judge_bak7(missing)
    assert "status 1 (missing stanza path)" in p and "stanza-create" in p and "CIS 8.2" in p
    nodb = facts()  # status ok but no database recorded for the stanza: one step short
    [p] = judge.judge_bak7(nodb)
    assert "names no database" in p
    other = BackupFacts("barman", "main", "ssh://db1", ok.info, ok.options)
    [p] = judge.judge_bak7(other)
    assert "the backup tool is barman; the spec wants pgBackRest" in p


def test_bak7_a_repository_that_did_not_answer_is_an_error_not_a_failure() -> None:
    f = facts(status=judge.TOOL_COULD_NOT_READ)
    f.info["repo"][0]["status"] = {"code": judge.TOOL_COULD_NOT_READ, "message": "timeout after 60000ms"}
    with pytest.raises(Unreachable, match="timeout after 60000ms"):
        judge.judge_bak7(f)
