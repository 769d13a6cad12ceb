"""SQL facts from one session per endpoint: settings, hba rules, TLS of the session, roles, replicas."""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import waiting

from pgproof.libpq import passfile_in_use
from pgproof.probes import tls
from pgproof.target import Endpoint, Target
from pgproof.verdict import TimedOut, Unreachable

SETTINGS = (
    "server_version", "server_version_num", "ssl", "ssl_min_protocol_version", "ssl_ciphers",
    "password_encryption", "shared_preload_libraries", "log_connections", "log_disconnections",
    "log_min_duration_statement", "max_connections", "synchronous_standby_names",
    "synchronous_commit", "data_directory", "listen_addresses", "ssl_key_file",
    "data_checksums", "hba_file",
)

# What the queries below touch, for ``pgproof doctor``'s permission check (tests/test_doctor.py
# holds this list to the SQL in this file). Settings outside a plain role's view need
# pg_read_all_settings (data_directory, ssl_key_file); PostgreSQL 15 revokes the hba view and
# its function from PUBLIC; TEMP is what the replica write probe tries.
RELATIONS = ("pg_settings", "pg_hba_file_rules", "pg_stat_ssl", "pg_roles", "pg_stat_replication")
FUNCTIONS = ("pg_hba_file_rules()", "pg_backend_pid()", "pg_is_in_recovery()",
             "pg_current_wal_lsn()", "pg_last_wal_replay_lsn()")


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
    lag_s: float | None  # None: not measured (not a standby)
    how: str = ""  # how the lag was measured, for the evidence


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


class BoundedCursor(psycopg.Cursor[Any]):
    """The server's own ``statement_timeout`` (set to the same limit) reads as that limit."""

    def execute(self, *args: Any, **kw: Any) -> BoundedCursor:
        try:
            return super().execute(*args, **kw)
        except psycopg.errors.QueryCanceled as exc:
            if "statement timeout" not in str(exc):
                raise
            conn = self.connection
            assert isinstance(conn, BoundedConnection)
            raise TimedOut(f"SQL statement on {conn.where}", conn.limit_s,
                           "statement_s") from None


class BoundedConnection(psycopg.Connection[Any]):
    """A session in which every wait for the server has a deadline (``timeouts.statement_s``).

    A path that accepts bytes and then swallows them (a blackholing proxy or firewall)
    defeats TCP keepalives, ``tcp_user_timeout`` and the server's ``statement_timeout``
    alike: only the client can notice. An interrupt (Ctrl-C, the run's time limit) hangs
    up at once, where psycopg would first send a cancel request and wait up to 5 s + 5 s
    over a path that may be the one not answering; the server's own statement_timeout
    (the same limit, ``options``) ends a statement left running.
    """

    limit_s: float = 30.0
    where: str = "the server"

    def bound(self, limit_s: float, where: str) -> BoundedConnection:
        """Set the statement limit and the name the TimedOut sentence gives the server."""
        self.limit_s, self.where = limit_s, where
        self.cursor_factory = BoundedCursor
        return self

    def wait(self, gen: Generator[Any, Any, Any], interval: float = 0.1,
             timeout: float | None = None) -> Any:
        limit = self.limit_s if timeout is None else min(timeout, self.limit_s)
        try:
            return waiting.wait(gen, self.pgconn.socket, interval=interval, timeout=limit)
        except psycopg.errors.OperationalError as exc:
            if type(exc).__name__ != "_WaitTimeout":  # psycopg's internal deadline exception
                raise
            self.pgconn.finish()  # the session is in an unknown state: nothing more goes on it
            raise TimedOut(f"SQL statement on {self.where}", self.limit_s, "statement_s") from None
        except BaseException as exc:  # Ctrl-C, or the run's time limit (pytest_limits)
            if not isinstance(exc, Exception) or isinstance(exc, Unreachable):
                self.pgconn.finish()  # interrupted mid-answer: the session is unusable
            raise


def statement_timeout_option(target: Target) -> str:
    """libpq ``options`` making the server end a statement at the same limit as the client."""
    return f"-c statement_timeout={int(target.timeouts.statement_s * 1000)}"


def connect(target: Target, endpoint: Endpoint | None = None, **kw: Any) -> BoundedConnection:
    """Connect or raise Unreachable with one sentence naming the endpoint and the cause.

    A certificate that does not match the host name is TLS-3's finding; the
    settings are still read over a chain-verified (verify-ca) session so the
    other controls keep their verdicts instead of all turning into errors.
    Connect and every statement are bounded (``timeouts.connect_s``, ``statement_s``).
    """
    info = target.conninfo(endpoint, **kw)
    info.setdefault("options", statement_timeout_option(target))
    where = f"{info['host']}:{info['port']}"
    try:
        conn = BoundedConnection.connect(**info, autocommit=True)
    except psycopg.OperationalError as exc:
        if info.get("sslmode") == "verify-full" and "does not match host name" in str(exc):
            return connect(target, endpoint, **{**kw, "sslmode": "verify-ca"})
        if "timeout expired" in str(exc):  # libpq's and psycopg's words for connect_timeout
            raise TimedOut(f"SQL connect to {where} as {info['user']}", target.connect_limit_s,
                           "connect_s") from None
        detail = error_summary(exc)
        if "certificate verify failed" in detail:
            detail += _certificate_reason(info)
        if "no password supplied" in detail and "password" not in info:
            detail = no_password(target)
        raise Unreachable(f"cannot log in to {info['host']}:{info['port']} as {info['user']}: "
                          f"{detail}") from None
    return conn.bound(target.timeouts.statement_s, where)


def no_password(target: Target) -> str:
    """libpq's 'fe_sendauth: no password supplied' never names where the password should be."""
    pg = target.require_postgres("a login")
    path, why = passfile_in_use(pg.passfile)
    where = (f"the passfile {path} ({why}) has no entry for it" if path.is_file()
             else f"the passfile {path} ({why}) does not exist")
    service = f", service {pg.service} gives none" if pg.service else ""
    return (f"no password: postgres.password_env names {pg.password_env}, which is not set in "
            f"the environment{service}, and {where} (export {pg.password_env}, or write the "
            f"password to a passfile named by postgres.passfile or PGPASSFILE)")


def _certificate_reason(info: dict[str, Any]) -> str:
    """libpq only says 'verify failed': ask our own TLS probe why (expired, unknown CA, ...)."""
    from pathlib import Path

    try:
        ca = Path(info["sslrootcert"]) if info.get("sslrootcert") not in (None, "system") else None
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
        pg = target.require_postgres("the live SQL layer")
        names = [n for n in {pg.app_role, pg.user} if n]
        for r in conn.execute(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication"
            " FROM pg_roles WHERE rolname = ANY(%s)", (names,)):
            roles[r[0]] = RoleFacts(*r)
    replicas = [replica_facts(target, r) for r in pg.readers]
    hidden = [s for s in SETTINGS if s not in settings]
    return PostgresFacts(f"{ep.host}:{ep.port}", settings, audit, hba, hba_error, session_ssl,
                         roles, replicas, hidden, info_user)


LAG_POLL_S = 0.2


def _application_name(conn: psycopg.Connection) -> str | None:
    """The name this standby gives the primary (primary_conninfo application_name, else cluster_name)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        raw = _one(conn, "SELECT current_setting('primary_conninfo')") or ""
        name = conninfo_to_dict(raw).get("application_name") or _one(
            conn, "SELECT current_setting('cluster_name')")
    except psycopg.Error:
        return None
    return str(name) if name else None


def replica_lag(target: Target, replica: psycopg.Connection, wait_s: float) -> tuple[float | None, str]:
    """(seconds, how) this standby is behind the primary, zero when it has replayed all WAL.

    The time since the last replayed commit is no lag measure: on an idle primary it grows
    without any lag. Here the primary's ``pg_current_wal_lsn()``
    is read first; a standby that has replayed it is caught up. Otherwise the lag is the
    primary's ``replay_lag`` for that standby and, as a floor, how long the standby takes
    to replay the WAL that existed when we looked (waiting up to ``wait_s``).
    """
    with connect(target) as primary:
        if _one(primary, "SELECT pg_is_in_recovery()"):
            ep = target.require_postgres("replica lag").writer
            raise Unreachable(f"the writer endpoint {ep.host}:"
                              f"{ep.port} is in recovery: no primary to "
                              f"measure replica lag against")
        written = _one(primary, "SELECT pg_current_wal_lsn()::text")
        # The primary's view of each standby; other sessions' rows need pg_read_all_stats.
        senders = primary.execute("SELECT application_name, extract(epoch FROM replay_lag)"
                                  " FROM pg_stat_replication").fetchall()
    def replayed() -> Any:
        return _one(replica, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", written)

    caught_up = replayed()
    if caught_up is None:  # e.g. Aurora: readers share the storage and replay no WAL stream
        return None, "the reader reports no WAL replay position, so its lag cannot be read here"
    if caught_up:
        return 0.0, f"replayed the primary's WAL position {written}"
    name = _application_name(replica)
    mine = [r for r in senders if r[0] == name] if name else []
    reported = float(mine[0][1]) if mine and mine[0][1] is not None else None
    start = time.monotonic()
    while (waited := time.monotonic() - start) < wait_s:
        if replayed():
            break
        time.sleep(LAG_POLL_S)
    else:
        waited = time.monotonic() - start
        lag = max(waited, reported or 0.0)
        return lag, (f"had not replayed the primary's WAL position {written} after {waited:.1f} s"
                     + (f"; the primary reports replay_lag {reported:.1f} s for {name}"
                        if reported is not None else ""))
    lag = max(waited, reported or 0.0)
    return lag, (f"replayed the primary's WAL position {written} after {waited:.1f} s"
                 + (f"; replay_lag {reported:.1f} s for {name}" if reported is not None else ""))


def replica_facts(target: Target, ep: Endpoint) -> ReplicaFacts:
    """Recovery state, lag, and whether a write is refused (attempted in a rolled-back txn)."""
    with connect(target, ep) as conn:
        in_recovery = bool(_one(conn, "SELECT pg_is_in_recovery()"))
        lag, how = (replica_lag(target, conn, target.thresholds.replica_lag_max_s + 1)
                    if in_recovery else (None, ""))
        refused, error = False, ""
        try:
            with conn.transaction(force_rollback=True):
                conn.execute("CREATE TEMP TABLE pgproof_write_probe (x int)")
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            refused, error = True, str(exc).strip()
        except psycopg.Error as exc:  # refused for another reason: says nothing about read-only
            error = str(exc).strip()
    return ReplicaFacts(f"{ep.host}:{ep.port}", in_recovery, refused, error, lag, how)


def verify_full_login(conninfo: dict[str, Any], timeout: int = 5,
                      statement_s: float = 30.0) -> str | None:
    """Log in with ``sslmode=verify-full`` (TLS-3 as a client sees it): None on success, else the error.

    A login that times out says nothing about the certificate: ``TimedOut``, never an error string."""
    kw = {"connect_timeout": timeout, **conninfo, "sslmode": "verify-full"}
    try:
        with BoundedConnection.connect(**kw) as conn:
            conn.bound(statement_s, f"{kw['host']}:{kw['port']}")
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        if "timeout expired" in str(exc):
            raise TimedOut(f"SQL connect to {kw['host']}:{kw['port']} (sslmode=verify-full)",
                           float(kw["connect_timeout"]), "connect_s") from None
        return str(exc).strip() or type(exc).__name__
    return None
