"""The backup layer's facts: the backup tool's own JSON info, its retention, and pg_stat_archiver.

Observes only: ``pgbackrest info`` and ``help`` read the repository and its
config, the archiver view is a read-only SQL query as the auditor role.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pgproof.probes import commands
from pgproof.probes.postgres import connect
from pgproof.target import Target
from pgproof.target_backup import Backup
from pgproof.verdict import TimedOut, Unreachable

RETENTION_OPTIONS = ("repo-retention-full-type", "repo-retention-full")

ARCHIVER_SQL = """
SELECT current_setting('archive_mode'),
       (SELECT setting::int FROM pg_settings WHERE name = 'archive_timeout'),
       a.archived_count, a.last_archived_wal, a.last_archived_time,
       a.failed_count, a.last_failed_wal, a.last_failed_time, now()
FROM pg_stat_archiver a
"""
# Completed segments still waiting for the archiver (needs pg_monitor): their age is RPO exposure.
READY_SQL = """
SELECT name, extract(epoch FROM now() - modification)
FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready' ORDER BY modification LIMIT 1
"""


@dataclass
class ArchiverFacts:
    endpoint: str
    archive_mode: str
    archive_timeout_s: int
    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    now: datetime  # the server's clock: ages are computed against it, not ours
    oldest_ready: tuple[str, float] | None  # (segment, seconds waiting); None: nothing waiting
    ready_error: str | None = None  # why the archive_status directory could not be listed


@dataclass
class BackupFacts:
    tool: str
    stanza: str
    host: str
    info: dict[str, Any]  # the stanza's entry in `pgbackrest info --output=json`
    options: dict[str, str | None]  # effective retention options as the tool states them
    archiver: ArchiverFacts | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def repos(self) -> list[dict[str, Any]]:
        return list(self.info.get("repo") or [])

    @property
    def backups(self) -> list[dict[str, Any]]:
        return list(self.info.get("backup") or [])


def _run(cfg: Backup, args: str, limit_s: float = 60.0) -> str:
    """One ``pgbackrest`` command, killed at ``limit_s`` (``timeouts.subprocess_s``)."""
    cmd = f"{cfg.command} --stanza={cfg.stanza} {args}"
    try:
        out = commands.host(cfg.host, limit_s, f"`{cfg.tool} {args}`").run(cmd)
    except TimedOut:
        raise
    except Exception as exc:  # noqa: BLE001 - ssh/backend failures are "could not check"
        raise Unreachable(f"cannot run the backup tool on {cfg.host}: {exc}") from None
    if out.rc != 0:
        msg = (out.stderr or out.stdout).strip().splitlines()
        raise Unreachable(f"`{cfg.tool} {args}` on {cfg.host} exited {out.rc}: "
                          f"{msg[-1] if msg else 'no output'}")
    return str(out.stdout)


def _option(text: str) -> str | None:
    """The value pgbackrest's help reports for an option: ``current:``, else its ``default:``."""
    for key in ("current", "default"):
        m = re.search(rf"^{key}: (.+)$", text, re.M)
        if m:
            return m.group(1).strip()
    return None


def tool_facts(cfg: Backup, limit_s: float = 60.0) -> BackupFacts:
    doc = json.loads(_run(cfg, "--output=json info", limit_s) or "[]")
    entry = next((s for s in doc if s.get("name") == cfg.stanza), None)
    if entry is None:
        raise Unreachable(f"{cfg.tool} on {cfg.host} knows no stanza {cfg.stanza!r} "
                          f"(found: {', '.join(s.get('name', '?') for s in doc) or 'none'})")
    options = {o: _option(_run(cfg, f"help expire {o}", limit_s)) for o in RETENTION_OPTIONS}
    return BackupFacts(cfg.tool, cfg.stanza, cfg.host, entry, options)


def archiver_facts(target: Target) -> ArchiverFacts:
    import psycopg

    ep = target.require_postgres("the backup probe").writer
    with connect(target) as conn:
        row = conn.execute(ARCHIVER_SQL).fetchone()
        ready, ready_error = None, None
        try:
            r = conn.execute(READY_SQL).fetchone()
            ready = (r[0], float(r[1])) if r else None
        except psycopg.errors.InsufficientPrivilege as exc:
            ready_error = str(exc).strip()
    assert row is not None
    return ArchiverFacts(f"{ep.host}:{ep.port}", row[0], int(row[1]), int(row[2]), row[3], row[4],
                         int(row[5]), row[6], row[7], row[8], ready, ready_error)


def gather(target: Target) -> BackupFacts:
    assert target.backup is not None
    facts = tool_facts(target.backup, target.timeouts.subprocess_s)
    facts.archiver = archiver_facts(target)
    return facts
