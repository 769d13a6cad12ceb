"""PgBouncer's running configuration from its admin console (``SHOW CONFIG``)."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from pgproof.probes.postgres import BoundedConnection, error_summary
from pgproof.target import Target
from pgproof.verdict import NotApplicable, TimedOut, Unreachable


@dataclass
class PoolerFacts:
    endpoint: str
    config: dict[str, str]


def gather(target: Target) -> PoolerFacts:
    ep = target.require_postgres("the pooler probe").pooler_admin
    if ep is None:
        raise NotApplicable("no pooler_admin endpoint configured for this target")
    info = target.conninfo(ep)
    try:
        # The admin console speaks the simple protocol only: no prepared statements.
        with BoundedConnection.connect(**info, autocommit=True, prepare_threshold=None) as conn:
            conn.bound(target.timeouts.statement_s, f"{ep.host}:{ep.port}")
            cur = conn.cursor()
            cur.execute("SHOW CONFIG", prepare=False)
            rows = cur.fetchall()
    except psycopg.OperationalError as exc:
        if "timeout expired" in str(exc):
            raise TimedOut(f"SQL connect to the pooler admin console {ep.host}:{ep.port}",
                           target.connect_limit_s, "connect_s") from None
        raise Unreachable(f"cannot reach the pooler admin console {ep.host}:{ep.port}: "
                          f"{error_summary(exc)}") from None
    return PoolerFacts(f"{ep.host}:{ep.port}", {r[0]: str(r[1]) for r in rows})
