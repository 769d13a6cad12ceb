"""SQL facts from one session per endpoint: settings, hba rules, TLS of the session, roles, replicas."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg

from pgproof.target import Endpoint, Target
from pgproof.verdict import Unreachable

SETTINGS = (
    "server_version", "server_version_num", "ssl", "ssl_min_protocol_version", "ssl_ciphers",
    "password_encryption", "shared_preload_libraries", "log_connections", "log_disconnections",
    "log_min_duration_statement", "max_connections", "synchronous_standby_names",
    "synchronous_commit", "data_directory", "listen_addresses", "ssl_key_file",
)

# What the queries below touch, for ``pgproof doctor``'s permission check (tests/test_doctor.py
# holds this list to the SQL in this file). Settings outside a plain role's view need
# pg_read_all_settings (data_directory, ssl_key_file); PostgreSQL 15 revokes the hba view and
# its function from PUBLIC; TEMP is what the replica write probe tries.
RELATIONS = ("pg_settings", "pg_hba_file_rules", "pg_stat_ssl", "pg_roles")
FUNCTIONS = ("pg_hba_file_rules()", "pg_backend_pid()", "pg_is_in_recovery()",
             "pg_last_wal_receive_lsn()", "pg_last_wal_replay_lsn()",
             "pg_last_xact_replay_timestamp()")


@dataclass
class HbaRule:
    line: int
    type: str
    database: list[str]
    user: list[str]
    address: str | None
    auth_method: str
    error: str | None = None


@dataclass
class RoleFacts:
    name: str
    superuser: bool
    createrole: bool
    createdb: bool
    bypassrls: bool
    replication: bool


@dataclass
class ReplicaFacts:
    endpoint: str
    in_recovery: bool
    write_refused: bool
    write_error: str
    lag_s: float | None


@dataclass
class PostgresFacts:
    endpoint: str
    settings: dict[str, str]
    pgaudit_log: str | None
    hba_rules: list[HbaRule] | None  # None: not readable with the probe's role
    hba_error: str | None
    session_ssl: dict[str, Any]
    roles: dict[str, RoleFacts]
    replicas: list[ReplicaFacts] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)  # SETTINGS the role may not read
    role: str = ""

    def setting(self, name: str) -> str:
        """A setting's value; one the role may not read is "could not check", never "".

        PostgreSQL hides some settings (ssl_min_protocol_version, ssl_ciphers,
        shared_preload_libraries, data_directory) from roles outside pg_read_all_settings:
        judging the empty string would fail a compliant server."""
        if name in self.hidden:
            raise Unreachable(f"role {self.role} cannot read setting {name} on {self.endpoint} "
                              f"(GRANT pg_read_all_settings TO {self.role};)")
        return self.settings.get(name, "")


def connect(target: Target, endpoint: Endpoint | None = None, **kw: Any) -> psycopg.Connection:
    """Connect or raise Unreachable with one sentence naming the endpoint and the cause.

    A certificate that does not match the host name is TLS-3's finding; the
    settings are still read over a chain-verified (verify-ca) session so the
    other controls keep their verdicts instead of all turning into errors.
    """
    info = target.conninfo(endpoint, **kw)
    try:
        return psycopg.connect(**info, autocommit=True)
    except psycopg.OperationalError as exc:
        if info.get("sslmode") == "verify-full" and "does not match host name" in str(exc):
            return connect(target, endpoint, **{**kw, "sslmode": "verify-ca"})
        detail = error_summary(exc)
        if "certificate verify failed" in detail:
            detail += _certificate_reason(info)
        if "no password supplied" in detail and "password" not in info:
            detail = no_password(target)
        raise Unreachable(f"cannot log in to {info['host']}:{info['port']} as {info['user']}: "
                          f"{detail}") from None


def no_password(target: Target) -> str:
    """libpq's 'fe_sendauth: no password supplied' never names where the password should be."""
    pg = target.postgres
    where = f"passfile {pg.passfile} has no entry for it" if pg.passfile else "no passfile is set"
    return (f"no password: postgres.password_env names {pg.password_env}, which is not set in "
            f"the environment, and {where} (export {pg.password_env} or set postgres.passfile)")


def _certificate_reason(info: dict[str, Any]) -> str:
    """libpq only says 'verify failed': ask our own TLS probe why (expired, unknown CA, ...)."""
    from pathlib import Path

    from pgproof.probes import tls

    try:
        ca = Path(info["sslrootcert"]) if info.get("sslrootcert") else None
        facts = tls.probe_endpoint(info["host"], int(info["port"]), ca)
    except Exception:  # noqa: BLE001 - the login error stands on its own
        return ""
    return f" ({facts.chain_error})" if facts.chain_error else ""


def error_summary(exc: Exception) -> str:
    """libpq's cause without its 'connection to server at ... failed:' preamble."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    first = text.splitlines()[0]
    return first.rsplit(" failed: ", 1)[-1].replace("FATAL:  ", "").strip()


def _one(conn: psycopg.Connection, query: str, *args: Any) -> Any:
    row = conn.execute(query, args or None).fetchone()
    return row[0] if row else None


def gather(target: Target) -> PostgresFacts:
    ep = target.require_postgres("the live SQL layer").writer
    with connect(target) as conn:
        info_user = str(_one(conn, "SELECT current_user"))
        rows = conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                            (list(SETTINGS),)).fetchall()
        settings = {n: s for n, s in rows}
        audit = _one(conn, "SELECT setting FROM pg_settings WHERE name = 'pgaudit.log'")
        hba: list[HbaRule] | None = None
        hba_error = None
        try:
            hba = [HbaRule(r[0], r[1], list(r[2] or []), list(r[3] or []), r[4], r[5], r[6])
                   for r in conn.execute(
                       "SELECT line_number, type, database, user_name, address, auth_method, error"
                       " FROM pg_hba_file_rules ORDER BY line_number")]
        except psycopg.errors.InsufficientPrivilege as exc:
            hba_error = str(exc).strip()
        ssl_row = conn.execute(
            "SELECT ssl, version, cipher, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        ).fetchone()
        session_ssl = dict(zip(("ssl", "version", "cipher", "bits"), ssl_row or (), strict=False))
        roles = {}
        names = [n for n in {target.postgres.app_role, target.postgres.user} if n]
        for r in conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication"
            " FROM pg_roles WHERE rolname = ANY(%s)", (names,)):
            roles[r[0]] = RoleFacts(*r)
    replicas = [replica_facts(target, r) for r in target.postgres.readers]
    hidden = [s for s in SETTINGS if s not in settings]
    return PostgresFacts(f"{ep.host}:{ep.port}", settings, audit, hba, hba_error, session_ssl,
                         roles, replicas, hidden, info_user)


def replica_facts(target: Target, ep: Endpoint) -> ReplicaFacts:
    """Recovery state, lag, and whether a write is refused (attempted in a rolled-back txn)."""
    with connect(target, ep) as conn:
        in_recovery = bool(_one(conn, "SELECT pg_is_in_recovery()"))
        lag = _one(conn, "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()"
                         " THEN 0 ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
                         " END")
        refused, error = False, ""
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("CREATE TEMP TABLE pgproof_write_probe (x int)")
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            refused, error = True, str(exc).strip()
        except psycopg.Error as exc:  # refused for another reason: says nothing about read-only
            error = str(exc).strip()
    return ReplicaFacts(f"{ep.host}:{ep.port}", in_recovery, refused, error,
                        None if lag is None else float(lag))
