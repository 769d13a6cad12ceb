"""Tables the load and the failover clock write to, and connection settings that fail fast.

Shared by the Locust process and the test process, so it imports neither locust
nor gevent (psycopg only; in a Locust process gevent has patched before this
module is reached).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

LEDGER_TABLE = "pgproof_ledger"
WRITER_SEQUENCE = "pgproof_writer_id_seq"
CLOCK_TABLE = "pgproof_clock"

LEDGER_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} ("
    " run_id text NOT NULL, writer_id integer NOT NULL, seq bigint NOT NULL,"
    " payload text NOT NULL, written_at timestamptz NOT NULL DEFAULT clock_timestamp(),"
    " PRIMARY KEY (run_id, writer_id, seq))",
    # Writer ids come from the database so they are unique across Locust processes and hosts.
    f"CREATE SEQUENCE IF NOT EXISTS {WRITER_SEQUENCE} AS integer CYCLE",
)
CLOCK_DDL = (
    f"CREATE TABLE IF NOT EXISTS {CLOCK_TABLE} ("
    " run_id text NOT NULL, seq bigint NOT NULL, t double precision NOT NULL,"
    " PRIMARY KEY (run_id, seq))",
)
LEDGER_INSERT = (
    f"INSERT INTO {LEDGER_TABLE} (run_id, writer_id, seq, payload) VALUES (%s, %s, %s, %s)"
)

# A dead peer must surface as an error in seconds, not after TCP's ~15 min retry budget:
# a partition (CH-PART) would otherwise freeze a user or the clock with a COMMIT in flight.
FAIL_FAST = {
    "keepalives": 1, "keepalives_idle": 2, "keepalives_interval": 1, "keepalives_count": 3,
    "tcp_user_timeout": 5000,
}


def fail_fast(conninfo: Mapping[str, Any], connect_timeout: float | None = None,
              **overrides: Any) -> dict[str, Any]:
    """``conninfo`` plus keepalive/TCP timeouts (caller's values win) and a short connect timeout."""
    kw = {**FAIL_FAST, **conninfo}
    if connect_timeout is not None:
        kw["connect_timeout"] = max(1, round(connect_timeout))
    kw.update(overrides)
    return kw


def _ensure(conninfo: Mapping[str, Any], table: str, ddl: tuple[str, ...],
            grant_to: str | None, grants: tuple[str, ...]) -> None:
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:  # type: ignore[index]
            # Creating only when missing lets a least-privilege role run against tables an
            # admin created; the advisory lock serialises concurrent creators (one per process).
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (table,))
                for stmt in ddl:
                    conn.execute(stmt)
        if grant_to:
            ident = sql.Identifier(grant_to)
            for stmt in grants:
                conn.execute(sql.SQL(stmt).format(ident))


def ensure_ledger_table(conninfo: Mapping[str, Any], grant_to: str | None = None) -> None:
    """Create the ledger table and writer-id sequence if missing; optionally grant them to a role."""
    _ensure(conninfo, LEDGER_TABLE, LEDGER_DDL, grant_to, (
        f"GRANT SELECT, INSERT ON {LEDGER_TABLE} TO {{}}",
        f"GRANT USAGE, SELECT ON SEQUENCE {WRITER_SEQUENCE} TO {{}}",
    ))


def ensure_clock_table(conninfo: Mapping[str, Any], grant_to: str | None = None) -> None:
    """Create the failover clock's table if missing; optionally grant it to a role."""
    _ensure(conninfo, CLOCK_TABLE, CLOCK_DDL, grant_to, (
        f"GRANT SELECT, INSERT ON {CLOCK_TABLE} TO {{}}",
    ))
