"""One statement = one send, one wait, one read, the way pgbench drives libpq.

Why: psycopg's ``Connection.execute``/``commit`` spend tens of microseconds of
Python per statement (generators, the prepare cache, and under gevent a fresh
``select.poll`` emulation for every wait). At three statements a transaction
that kept a Locust process at ~0.5x pgbench while it took a whole core from
the database it measured. This drives psycopg's public libpq wrapper
(``psycopg.pq``) directly; the connection stays a psycopg connection (connect,
close, ``broken``) so reconnect logic and errors are psycopg's.

No gevent here: the caller passes how to wait for the socket (a per-connection
gevent io watcher in a Locust process, see ``pgproof.load.users``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import errors, pq

FATAL = pq.ExecStatus.FATAL_ERROR
SYNC = pq.ExecStatus.PIPELINE_SYNC
Waiter = Callable[[], None]
Statement = tuple[bytes, Sequence[bytes | None]]


class PipelineFailed(Exception):
    """The server refused statement ``index`` of a pipeline; the ones after it never ran."""

    def __init__(self, index: int, error: psycopg.Error) -> None:
        super().__init__(str(error))
        self.index, self.error = index, error


class Wire:
    """Statements on ``conn``'s libpq connection; each call returns the command tag (``b'COMMIT'``)."""

    def __init__(self, conn: psycopg.Connection[Any], wait_read: Waiter, wait_write: Waiter) -> None:
        self.pg = conn.pgconn
        self.encoding = conn.info.encoding
        self.wait_read, self.wait_write = wait_read, wait_write

    def prepare(self, name: bytes, sql: bytes) -> None:
        self.pg.send_prepare(name, sql)
        self._finish()

    def prepare_all(self, statements: dict[bytes, bytes]) -> None:
        for name, sql in statements.items():
            self.prepare(name, sql)

    def prepared(self, name: bytes, params: Sequence[bytes | None] = ()) -> bytes | None:
        """Bind + execute a statement prepared on this connection (pgbench ``-M prepared``)."""
        self.pg.send_query_prepared(name, params)
        return self._finish()

    def execute(self, sql: bytes, params: Sequence[bytes | None] = ()) -> bytes | None:
        """Parse + bind + execute an unnamed statement (pgbench ``-M extended``; safe behind poolers)."""
        self.pg.send_query_params(sql, params)
        return self._finish()

    def pipeline(self, statements: Sequence[Statement]) -> list[bytes | None]:
        """Send prepared ``statements`` and one Sync, then read every answer: one round trip.

        Why: a transaction's three round trips, each a wake-up of this process and
        of the server backend, cost more than the statements. The server runs them
        exactly as if sent one by one (an error skips the rest up to the Sync), so
        the ledger's outcome rules do not change; the caller learns which statement
        failed from ``PipelineFailed.index``. Needs libpq >= 14 (psycopg's wheel has it).
        """
        pg = self.pg
        if pg.pipeline_status == pq.PipelineStatus.OFF:
            pg.enter_pipeline_mode()
        for name, params in statements:
            pg.send_query_prepared(name, params)
        pg.pipeline_sync()
        while pg.flush():
            self.wait_write()
        tags: list[bytes | None] = []
        failed: tuple[int, pq.abc.PGresult] | None = None
        nones = 0
        while True:  # one result then None per statement, then the Sync's own result
            while pg.is_busy():
                self.wait_read()
                pg.consume_input()
            res = pg.get_result()
            if res is None:
                nones += 1
                if nones > 1:  # libpq has nothing more to give: the connection is gone
                    raise psycopg.OperationalError("the connection was lost mid-pipeline")
                continue
            nones = 0
            if res.status == SYNC:
                break
            if res.status == FATAL and failed is None:
                failed = (len(tags), res)
            tags.append(res.command_status)
        if failed is not None:
            raise PipelineFailed(failed[0], errors.error_from_result(failed[1],
                                                                     encoding=self.encoding))
        return tags

    def _finish(self) -> bytes | None:
        """Flush, wait for the whole answer, raise the server's error; the last command tag."""
        pg = self.pg
        while pg.flush():  # 1: the kernel buffer was full, more to send
            self.wait_write()
        error, tag = None, None
        while True:
            while pg.is_busy():
                self.wait_read()
                pg.consume_input()  # raises OperationalError when the connection is gone
            res = pg.get_result()
            if res is None:
                break
            if res.status == FATAL and error is None:
                error = res
            tag = res.command_status
        if error is not None:
            raise errors.error_from_result(error, encoding=self.encoding)
        return tag
