"""TLS-7's facts: how each replication connection is encrypted, seen from both ends.

On the primary, ``pg_stat_replication`` joined to ``pg_stat_ssl`` (the auditor
needs pg_monitor for other sessions' rows); on standbys, the ``sslmode`` their
``primary_conninfo`` asks for (pg_read_all_settings, part of pg_monitor).
Passwords in a conninfo are never kept: only its sslmode and target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pgproof.probes.postgres import connect
from pgproof.target import Endpoint, Target

REPLICATION_SQL = """
SELECT r.pid, r.application_name, host(r.client_addr), r.state, s.ssl, s.version, s.cipher
FROM pg_stat_replication r LEFT JOIN pg_stat_ssl s ON s.pid = r.pid ORDER BY r.pid
"""
# RDS and Aurora: replication is the provider's (storage-level or hidden rdsrepladmin sessions).
MANAGED_SQL = """
SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'aurora_version') THEN 'Aurora'
            WHEN current_setting('rds.extensions', true) IS NOT NULL
              OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_superuser') THEN 'RDS'
       END
"""


@dataclass
class WalSender:
    pid: int
    application_name: str
    client_addr: str | None
    state: str
    ssl: bool | None  # None: pg_stat_ssl shows no row for it (not permitted to see)
    version: str | None
    cipher: str | None


@dataclass
class Standby:
    endpoint: str
    sslmode: str | None  # None: primary_conninfo not readable
    upstream: str  # host:port of the conninfo, for the message
    error: str | None = None


@dataclass
class ReplicationFacts:
    primary: str
    managed: str | None  # "RDS" / "Aurora": the provider's replication, not observable here
    senders: list[WalSender] = field(default_factory=list)
    standbys: list[Standby] = field(default_factory=list)


def _standby(target: Target, ep: Endpoint) -> Standby | None:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    where = f"{ep.host}:{ep.port}"
    with connect(target, ep) as conn:
        if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:  # type: ignore[index]
            return None
        try:
            raw = conn.execute("SELECT current_setting('primary_conninfo')").fetchone()[0]  # type: ignore[index]
        except psycopg.errors.InsufficientPrivilege as exc:
            return Standby(where, None, "?", str(exc).strip())
    parsed = conninfo_to_dict(raw or "")
    # libpq's default sslmode is "prefer": it falls back to plaintext.
    return Standby(where, str(parsed.get("sslmode", "prefer")),
                   f"{parsed.get('host', '?')}:{parsed.get('port', '5432')}")


def gather(target: Target) -> ReplicationFacts:
    pg = target.require_postgres("the replication probe")
    ep = pg.writer
    with connect(target) as conn:
        managed = conn.execute(MANAGED_SQL).fetchone()[0]  # type: ignore[index]
        facts = ReplicationFacts(f"{ep.host}:{ep.port}", managed)
        if managed:
            return facts
        facts.senders = [WalSender(*r) for r in conn.execute(REPLICATION_SQL)]
    for node in pg.nodes or pg.readers:
        s = _standby(target, node)
        if s is not None:
            facts.standbys.append(s)
    return facts
