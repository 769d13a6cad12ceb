"""Misconfigurations of the lab's backups and replication, each with its exact undo.

Each waits until what the probes read has changed (the archiver's failure, the
tool's reported retention or cipher, a plaintext walsender), so a check run
right after sees it. Mutations change what the tool reports, not the data: the
slowest (a repository without a cipher) takes one small full backup.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import requests

from pgproof import procs
from pgproof.lab import backup
from pgproof.lab import components as c
from pgproof.lab import live_mutations as lm
from pgproof.lab.configs import PG_HBA
from pgproof.lab.state import NODES, LabState

FAILING_ARCHIVE_COMMAND = "/bin/false"
ARCHIVER = "SELECT last_archived_time, last_failed_time FROM pg_stat_archiver"


def _archiver(state: LabState) -> tuple[Any, Any]:
    with psycopg.connect(**c.superuser_conninfo(state), autocommit=True) as conn:
        row = conn.execute(ARCHIVER).fetchone()
    assert row is not None
    return row[0], row[1]


def _nudge(state: LabState) -> None:
    """Write and switch WAL so the archiver has a finished segment to act on now."""
    with psycopg.connect(**c.superuser_conninfo(state), autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pgproof_archive_nudge (at timestamptz)")
        conn.execute("INSERT INTO pgproof_archive_nudge VALUES (now())")
        conn.execute("SELECT pg_switch_wal()")


def _wait_archiver(state: LabState, failing: bool, timeout: float = 90) -> None:
    def seen() -> bool:
        ok, bad = _archiver(state)
        if failing:
            return bad is not None and (ok is None or bad > ok)
        _nudge(state)
        return ok is not None and (bad is None or ok > bad)

    if failing:
        _nudge(state)
    procs.wait_until(seen, timeout, "mutation",
                     "archiving failing" if failing else "archiving succeeding again", interval=2)


def archive_failing(state: LabState, on: bool) -> None:
    cmd = FAILING_ARCHIVE_COMMAND if on else backup.archive_command(state)
    lm.set_parameters(state, {"archive_command": cmd})
    _wait_archiver(state, failing=on)


def retention(state: LabState, days: int) -> None:
    backup.write_config(state, retention_days=days)


def repository_cipher(state: LabState, on: bool) -> None:
    """Off: a repository without a cipher, with a fresh full backup; on: back to the encrypted one.

    WAL archived meanwhile went to the plaintext repository, a gap in the encrypted one's
    chain: healing takes a new full backup there so point-in-time restores work again.
    """
    backup.wait_ready(state)
    if on:
        backup.write_config(state)
    else:
        backup.write_config(state, cipher=False, repo_path=backup.PLAIN_REPO_PATH)
    backup.full_backup(state, c.leader(state) or NODES[0])


def stanza_missing(state: LabState, on: bool) -> None:
    """BAK-7 (CIS 8.2): pgBackRest pointed at a repository where no stanza-create ran (the
    stanza is not configured); WAL archiving fails there too. Heal: the lab's repository again,
    and archiving succeeding again before the next check."""
    backup.wait_ready(state)
    if on:
        backup.write_config(state, repo_path=backup.NO_STANZA_REPO_PATH)
    else:
        backup.write_config(state)
        _wait_archiver(state, failing=False)


# -- TLS-7: replication in plaintext through the replication proxy -------------------------

PLAINTEXT_REPLICATION_HBA = [*PG_HBA, "host replication replicator 127.0.0.1/32 scram-sha-256"]


def _replication_sslmode(state: LabState, sslmode: str) -> None:
    for node in NODES:
        cfg = state.node_dir(node) / "patroni.yml"
        doc = json.loads(cfg.read_text())
        doc["postgresql"]["authentication"]["replication"]["sslmode"] = sslmode
        cfg.write_text(json.dumps(doc, indent=1))
        requests.post(state.rest_url(node) + "/reload", timeout=10)


def _senders_ssl(state: LabState) -> list[bool]:
    with psycopg.connect(**c.superuser_conninfo(state), autocommit=True) as conn:
        return [r[0] for r in conn.execute(
            "SELECT s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)"
            " WHERE r.state = 'streaming'")]


def replication_plaintext(state: LabState, on: bool) -> None:
    if on:
        lm.set_hba(state, PLAINTEXT_REPLICATION_HBA)
        _replication_sslmode(state, "disable")
    else:
        _replication_sslmode(state, "verify-ca")
    want = not on
    procs.wait_until(lambda: (s := _senders_ssl(state)) != [] and all(x is want for x in s), 60,
                     "mutation", f"standbys streaming with ssl={want}", interval=0.5)
    if not on:
        lm.set_hba(state, PG_HBA)
    procs.wait_until(lambda: c.sync_standby_streaming(state), 60, "mutation",
                     "a synchronous standby streaming again", interval=0.5)
