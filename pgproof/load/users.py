"""Locust users that drive PostgreSQL through psycopg and keep a write ledger.

Each user holds one connection and reconnects by itself after any error, so
a failover is survived without restarting the Locust process (HA-4). Every
transaction is reported to Locust's ``request`` event (request_type ``pg``).

Environment contract (set by ``pgproof.load.runner`` or by hand):

- ``PGPROOF_LOAD_CONNINFO``: JSON object of libpq keywords without the
  password, or ``{"writer": {...}, "pooler": {...}}`` keyed by endpoint.
  Unset: the target named by ``--target NAME`` / ``PGPROOF_TARGET``.
- ``PGPASSWORD`` or a ``passfile`` keyword: the password, read by libpq.
- ``PGPROOF_LOAD_ENDPOINT``: ``writer`` | ``pooler`` | ``reader`` (default:
  the user class's ``endpoint``; ``locustfiles/pooled.py`` says ``pooler``).
- ``PGPROOF_RUN_ID``: ledger run id (default ``adhoc-<UTC time>``; set it in
  distributed mode so all workers share one).
- ``PGPROOF_LEDGER_FILE`` / ``PGPROOF_STATS_FILE``: JSONL paths; each
  process writes ``<stem>.<pid><suffix>`` so master, workers and forks never
  share a file.
- ``PGPROOF_LOAD_PIPELINE=1``: a prepared transaction as one libpq pipeline
  (one round trip) instead of three (``bench/loadgen --mode pipeline``).
- ``PGPROOF_LOAD_PREPARE=0``: no prepared statements (what a transaction-mode
  pooler needs; ``bench/loadgen --mode extended`` compares against pgbench
  ``-M extended`` with it).
- ``PGPROOF_LOAD_WAIT`` (seconds between tasks, default 0) or
  ``PGPROOF_LOAD_RATE`` (tasks per second per user); ``PGPROOF_LOAD_CONNECT_TIMEOUT``
  (default 2 s).
"""

# Import order is load-bearing. This module is imported only inside a Locust
# process: importing ``locust`` patches the interpreter with gevent, and psycopg
# chooses its wait function (cooperative, or a blocking C loop) when it is first
# imported. So locust comes before psycopg, and the check below refuses a psycopg
# that would block the gevent hub (20 users would run like 1).
from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import gevent
import locust
import psycopg
import psycopg.waiting
from locust import User, constant, constant_throughput, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from pgproof.load.endpoints import LoadConfigError, endpoint_conninfo
from pgproof.load.record import recorder
from pgproof.load.schema import LEDGER_INSERT, WRITER_SEQUENCE, ensure_ledger_table, fail_fast
from pgproof.load.wire import PipelineFailed, Wire

if psycopg.waiting.wait is getattr(psycopg.waiting, "wait_c", None):
    raise ImportError(
        "psycopg was imported before gevent patched the interpreter (locust "
        f"{locust.__version__}): import pgproof.load.users only from a locustfile"
    )

RECONNECT_PAUSE_S = 0.1
DEFAULT_STOP_TIMEOUT_S = 5.0
ACKNOWLEDGED, FAILED, UNKNOWN = "acknowledged", "failed", "unknown"
# SQLSTATE classes that mean "the transaction was rolled back" when COMMIT returns them:
# data, integrity, transaction state (read-only), rollback (serialization, deadlock), syntax/access.
REJECTING_CLASSES = frozenset({"22", "23", "25", "40", "42"})
RUN_ID = os.environ.get("PGPROOF_RUN_ID") or time.strftime("adhoc-%Y%m%dT%H%M%SZ", time.gmtime())
PAYLOAD = "x" * 64
# The writer's statements as bytes for the wire (pgproof.load.wire): no per-transaction encoding.
# Prepared, all three are named like this (pgbench -M prepared prepares BEGIN and COMMIT too).
BEGIN, INSERT_SQL, COMMIT = (b"BEGIN", LEDGER_INSERT.replace("%s, %s, %s, %s", "$1, $2, $3, $4")
                             .encode(), b"COMMIT")
PREPARED = {b"pgproof_begin": BEGIN, b"pgproof_insert": INSERT_SQL, b"pgproof_commit": COMMIT}
RUN_ID_B, PAYLOAD_B = RUN_ID.encode(), PAYLOAD.encode()
# PGPROOF_LOAD_PIPELINE=1 sends a prepared transaction as one pipeline (one round trip). Off by
# default: the pipelined writer saturates a 2-core lab's server, whose throughput after a failover
# (old primary rejoining) then stays under 90 % of the baseline for 40+ s, so HA-4 would judge
# the lab's spare CPU instead of the failover. Unnamed statements (poolers) are never pipelined.
PIPELINE = os.environ.get("PGPROOF_LOAD_PIPELINE") == "1"

log = logging.getLogger(__name__)
_env: Environment | None = None


def _wait_time() -> Any:
    rate = float(os.environ.get("PGPROOF_LOAD_RATE") or 0)
    return constant_throughput(rate) if rate > 0 else constant(
        float(os.environ.get("PGPROOF_LOAD_WAIT") or 0))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def _user_count(environment: Environment) -> int:
    return environment.runner.user_count if environment.runner is not None else 0


def _tick(environment: Environment) -> None:
    rec = recorder()
    rec.next_second = int(time.time()) + 1  # the current second is partial: skip it
    while True:
        now = time.time()
        gevent.sleep(math.floor(now) + 1.01 - now)
        rec.emit_seconds(int(time.time()), _user_count(environment))


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--target", default=os.environ.get("PGPROOF_TARGET", ""),
                        help="pgproof target to load when PGPROOF_LOAD_CONNINFO is unset")


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    global _env
    _env = environment
    if isinstance(environment.runner, WorkerRunner):
        return  # a worker may learn --target from its master later; it resolves lazily
    if not environment.stop_timeout:
        # Without it Locust kills users at the end of the run with COMMITs in flight,
        # and the ledger fills with needless "unknown" attempts.
        environment.stop_timeout = DEFAULT_STOP_TIMEOUT_S
    try:
        for cls in environment.user_classes:
            endpoint_conninfo(PostgresUser.endpoint_of(cls), _target_option(environment))
    except LoadConfigError as exc:
        sys.exit(f"pgproof load: {exc}")


def _target_option(environment: Environment | None) -> str | None:
    options = environment.parsed_options if environment is not None else None
    return getattr(options, "target", None) or None


@events.request.add_listener
def _on_request(response_time: float, exception: BaseException | None = None, **_: Any) -> None:
    recorder().request(response_time, exception is not None)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        return
    classes = environment.user_classes or [PostgresUser]
    try:
        ensure_ledger_table(fail_fast(endpoint_conninfo(
            PostgresUser.endpoint_of(classes[0]), _target_option(environment)), connect_timeout=5))
    except (psycopg.Error, LoadConfigError) as exc:  # users will report it as failures
        log.warning("pgproof load: could not ensure the ledger table: %s", _short(exc))
    rec = recorder()
    if rec.ticker is None:
        rec.ticker = gevent.spawn(_tick, environment)


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):  # workers only hold deltas
        recorder().final(environment)


@events.quit.add_listener
def _on_quit(**_: Any) -> None:
    """After users stopped: flush the last complete seconds and a final summary, close files."""
    rec = recorder()
    if rec.ticker is not None:
        rec.ticker.kill(block=False)
    if _env is not None:
        rec.emit_seconds(int(time.time()), _user_count(_env))
        if not isinstance(_env.runner, WorkerRunner):
            rec.final(_env)
    rec.close()


# ----------------------------------------------------------------------------- users


class PostgresUser(User):
    """One connection per user, re-established after any error (never restart the process)."""

    abstract = True
    endpoint = "writer"
    autocommit = True
    # psycopg prepares a statement after 5 runs; None turns that off for poolers in
    # transaction mode, where a prepared statement may land on another server connection.
    prepare_threshold: int | None = 5
    wait_time = _wait_time()

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.conn: psycopg.Connection[Any] | None = None

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if os.environ.get("PGPROOF_LOAD_PREPARE") == "0":
            cls.prepare_threshold = None

    @staticmethod
    def endpoint_of(user_class: type[User]) -> str:
        """``PGPROOF_LOAD_ENDPOINT`` wins over the class default, so one locustfile serves all."""
        return os.environ.get("PGPROOF_LOAD_ENDPOINT") or str(getattr(user_class, "endpoint", "writer"))

    def conninfo(self) -> dict[str, Any]:
        info = endpoint_conninfo(self.endpoint_of(type(self)), _target_option(self.environment))
        timeout = float(os.environ.get("PGPROOF_LOAD_CONNECT_TIMEOUT") or 2)
        return fail_fast(info, connect_timeout=timeout,
                         application_name=f"pgproof-load-{type(self).__name__}")

    def on_stop(self) -> None:
        self.drop()

    def on_connect(self, conn: psycopg.Connection[Any]) -> None:
        """Hook run on every new connection before it is used."""

    def connection(self) -> psycopg.Connection[Any] | None:
        """The live connection, or a new one; ``None`` (failure reported) while the server is away."""
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return self.conn
        self.drop()
        t0 = time.perf_counter()
        conn = None
        try:
            conn = psycopg.connect(**self.conninfo(), autocommit=self.autocommit,
                                   prepare_threshold=self.prepare_threshold)
            self.on_connect(conn)
        except psycopg.Error as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            self.report("connect", t0, exc)
            self.pause()
            return None
        self.conn = conn
        return conn

    def pause(self) -> None:
        """After an error: no tight loop of refusals (a pooler answers errors in microseconds)."""
        gevent.sleep(RECONNECT_PAUSE_S * random.uniform(0.5, 1.5))

    def drop(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # closing a dead socket may fail; it is gone
                conn.close()

    def report(self, name: str, t0: float, exc: BaseException | None = None) -> None:
        self.environment.events.request.fire(
            request_type="pg", name=name, response_time=(time.perf_counter() - t0) * 1000,
            response_length=0, exception=exc, context={})

    def query(self, name: str, sql: str, params: tuple[Any, ...] = ()) -> None:
        """Run one read statement and report it; drop the connection on any error."""
        conn = self.connection()
        if conn is None:
            return
        t0 = time.perf_counter()
        try:
            conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            self.drop()
            self.report(name, t0, exc)
            self.pause()
        else:
            self.report(name, t0)


class LedgerWriter(PostgresUser):
    """Inserts one ledger row per commit and records each attempt's fate (HA-3).

    acknowledged: COMMIT answered OK. failed: error before COMMIT was sent, or
    the server answered COMMIT with a rollback (nothing can have landed).
    unknown: COMMIT was in flight and the answer never came (broken connection,
    or a pooler relaying a crash); the row may or may not be there, so it is
    never counted as lost.

    The transaction is pgbench's: BEGIN; INSERT; COMMIT. Prepared (the
    default) they are three round trips (pgbench ``-M prepared``), or one libpq
    pipeline with ``PGPROOF_LOAD_PIPELINE=1`` (pgbench's ``\\startpipeline``).
    Unnamed (``prepare_threshold`` None, poolers) they are three round trips
    (``-M extended``). All go out on the lean wire (``pgproof.load.wire``),
    waited for on a per-connection gevent io watcher.
    psycopg runs in autocommit so it never adds its own BEGIN.
    """

    autocommit = True

    def on_start(self) -> None:
        self.writer_id: int | None = None
        self.seq = 0
        self.wire: Wire | None = None
        self.watchers: tuple[Any, ...] = ()
        self.pipelined = False

    def on_connect(self, conn: psycopg.Connection[Any]) -> None:
        if self.writer_id is None:
            row = conn.execute(f"SELECT nextval('{WRITER_SEQUENCE}')").fetchone()
            self.writer_id = int(row[0])  # type: ignore[index]
        hub = gevent.get_hub()
        fd = conn.pgconn.socket
        read, write = self.watchers = (hub.loop.io(fd, 1), hub.loop.io(fd, 2))
        self.wire = Wire(conn, lambda: hub.wait(read), lambda: hub.wait(write))
        if self.prepare_threshold is not None:
            self.wire.prepare_all(PREPARED)
        self.pipelined = self.prepare_threshold is not None and PIPELINE

    def drop(self) -> None:
        watchers, self.watchers, self.wire = self.watchers, (), None
        for w in watchers:  # before the socket closes: libev must not watch a recycled fd
            w.close()
        super().drop()

    @task
    def write(self) -> None:
        conn = self.connection()
        wire = self.wire
        if conn is None or wire is None or self.writer_id is None:
            return
        self.seq += 1
        params = (RUN_ID_B, b"%d" % self.writer_id, b"%d" % self.seq, PAYLOAD_B)
        t_start, t0 = time.time(), time.perf_counter()
        status, phase = FAILED, "insert"
        exc: BaseException | None = None
        send: Callable[..., bytes | None]  # (sql or statement name, params=()) -> command tag
        if self.prepare_threshold is None:
            send, (begin, insert, commit) = wire.execute, (BEGIN, INSERT_SQL, COMMIT)
        else:
            send, (begin, insert, commit) = wire.prepared, tuple(PREPARED)
        try:
            if self.pipelined:
                phase = "commit"  # all three leave together: a lost answer is an open outcome
                try:
                    tag = wire.pipeline(((begin, ()), (insert, params), (commit, ())))[2]
                except PipelineFailed as failed:
                    if failed.index < 2:  # COMMIT was skipped by the server: nothing landed
                        phase = "insert"
                    raise failed.error from None
            else:
                send(begin)
                send(insert, params)
                phase = "commit"
                tag = send(commit)
            if tag != b"COMMIT":  # COMMIT of an aborted transaction says ROLLBACK
                raise psycopg.errors.InFailedSqlTransaction("COMMIT answered ROLLBACK")
            status = ACKNOWLEDGED
        except psycopg.Error as err:
            exc = err
            if phase == "commit" and not _commit_rejected(conn, err):
                status = UNKNOWN
            self.drop()  # also leaves a replica or a half-dead pooler link behind
        except BaseException as err:  # killed (stop timeout) mid-flight: record, then die
            exc = err
            status = UNKNOWN if phase == "commit" else FAILED
            self.drop()
            raise
        finally:
            recorder().attempt(RUN_ID, self.writer_id, self.seq, status, t_start, time.time(),
                               _short(exc) if exc is not None else None)
            if exc is None or isinstance(exc, Exception):  # a kill is no database failure
                self.report("ledger insert", t0, exc)
        if exc is not None:
            self.pause()


def _commit_rejected(conn: psycopg.Connection[Any], err: psycopg.Error) -> bool:
    """True only when the server answered COMMIT with a definite rollback.

    A broken socket, or a connection-class error relayed by a pooler that
    stays up (PgBouncer: 08P01 "server conn crashed?"), leaves the outcome open.
    """
    state = err.sqlstate or ""
    return not (conn.broken or conn.closed) and state[:2] in REJECTING_CLASSES


class ReadMix(PostgresUser):
    """Short reads: a ping, the newest ledger rows of this run, a catalog scan."""

    @task(5)
    def ping(self) -> None:
        self.query("select 1", "SELECT 1")

    @task(3)
    def ledger_tail(self) -> None:
        self.query("ledger tail",
                   "SELECT writer_id, seq FROM pgproof_ledger WHERE run_id = %s"
                   " ORDER BY writer_id DESC, seq DESC LIMIT 10", (RUN_ID,))

    @task(1)
    def catalog(self) -> None:
        self.query("catalog", "SELECT count(*) FROM pg_class")
