"""The failover clock: a probe that writes a tiny row every 50 ms and times the outage (HA-2).

A plain thread in the test process (no gevent), on its own connection to the
same endpoint the application uses, reconnecting after every error with a
short connect timeout. Timestamps are ``time.time()`` epoch seconds so they
line up with log lines of Patroni, HAProxy and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import median
from typing import Any

import psycopg

from pgproof.load.schema import CLOCK_TABLE, ensure_clock_table, fail_fast


@dataclass(frozen=True)
class Probe:
    """One write attempt: when it was sent, when the commit was acknowledged (None: it failed)."""

    seq: int
    t_sent: float
    t_acked: float | None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.t_acked is not None


@dataclass(frozen=True)
class Rto:
    """Recovery time after a fault, with the uncertainty that comes with the number.

    rto_s: first acknowledged write that started after the fault, its ack time
    minus the fault instant (None: no write succeeded after the fault).
    resolution_s: how far off rto_s may be: the gap between that write and the
    attempt before it, plus that write's own latency.
    last_ack_before / first_ack_after: the outage window seen by the clock.
    first_fail_sent: when the first failed write after the fault was sent; the outage began
    between last_ack_before and it, which bounds how far off outage_s may be.
    """

    fault_at: float
    rto_s: float | None
    resolution_s: float | None
    last_ack_before: float | None
    first_ack_after: float | None
    failed_writes: int
    first_fail_sent: float | None = None

    @property
    def recovered(self) -> bool:
        return self.rto_s is not None

    @property
    def outage_s(self) -> float | None:
        if self.last_ack_before is None or self.first_ack_after is None:
            return None
        return self.first_ack_after - self.last_ack_before

    @property
    def outage_resolution_s(self) -> float | None:
        """How far off outage_s may be: the recovery side's resolution plus the gap between the
        last acknowledged write and the first failed one (where the outage began)."""
        if self.outage_s is None or self.resolution_s is None:
            return None
        start = (self.first_fail_sent - self.last_ack_before
                 if self.first_fail_sent is not None and self.last_ack_before is not None else 0.0)
        return self.resolution_s + max(0.0, start)

    def sentence(self, budget_s: float = 60) -> str:
        if self.rto_s is None:
            return f"no write was acknowledged after the fault (HA-2 wants one within {budget_s:g} s)"
        return (f"writes succeeded again {self.rto_s:.2f} s after the fault (+/- "
                f"{self.resolution_s:.3f} s; HA-2 wants < {budget_s:g} s at <= 0.1 s resolution)")


class FailoverClock:
    """Write ``(run_id, seq, t)`` every ``interval`` s through ``conninfo``; keep every attempt.

    A write that has no answer after ``write_timeout`` s is cut and counted as
    failed: through a pooler a write would otherwise wait in its queue for the
    whole outage and the clock would see nothing until it is over.
    """

    def __init__(self, conninfo: Mapping[str, Any], interval: float = 0.05,
                 connect_timeout: float = 1, run_id: str | None = None,
                 write_timeout: float = 1.0) -> None:
        self.interval = interval
        self.write_timeout = write_timeout
        self.run_id = run_id or time.strftime("clock-%Y%m%dT%H%M%SZ", time.gmtime())
        # A probe stuck on a dead socket would blind the clock: fail in about a second.
        self._conninfo = fail_fast(conninfo, connect_timeout=connect_timeout,
                                   tcp_user_timeout=max(1000, int(connect_timeout * 1000)),
                                   keepalives_idle=1, keepalives_interval=1, keepalives_count=2,
                                   application_name="pgproof-clock")
        self._probes: list[Probe] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conn: psycopg.Connection[Any] | None = None
        self._inflight: tuple[float, int] | None = None  # (monotonic start, socket fd)
        self._timed_out = False

    def start(self) -> FailoverClock:
        """Create the table (raises if the endpoint is not healthy now), then tick in a thread."""
        ensure_clock_table(self._conninfo)
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._run, name="pgproof-failover-clock", daemon=True),
            threading.Thread(target=self._watchdog, name="pgproof-clock-watchdog", daemon=True)]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        self._close()

    def __enter__(self) -> FailoverClock:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def probes(self) -> list[Probe]:
        with self._lock:
            return list(self._probes)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _write(self, seq: int, t_sent: float) -> None:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._close()
            # No server-side prepares: a transaction-mode pooler hands the next statement to
            # another server connection ("prepared statement _pg3_0 already exists").
            self._conn = psycopg.connect(**self._conninfo, autocommit=True, prepare_threshold=None)
        with self._lock:
            self._inflight = (time.monotonic(), self._conn.pgconn.socket)
        try:
            self._conn.execute(f"INSERT INTO {CLOCK_TABLE} (run_id, seq, t) VALUES (%s, %s, %s)",
                               (self.run_id, seq, t_sent))
        finally:
            with self._lock:  # cleared before the connection can be closed: the fd stays ours
                self._inflight = None

    def _watchdog(self) -> None:
        """Cut a write that hangs (a pooler queueing it, a frozen server) so the clock keeps ticking.

        Shutting the socket down makes the blocked libpq call fail at once; the
        probe is recorded as failed and the next tick reconnects.
        """
        while not self._stop.wait(self.interval):
            with self._lock:
                inflight = self._inflight
                if inflight is None or time.monotonic() - inflight[0] < self.write_timeout:
                    continue
                with contextlib.suppress(OSError):
                    sock = socket.socket(fileno=os.dup(inflight[1]))
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                self._inflight, self._timed_out = None, True

    def _run(self) -> None:
        seq, next_at = 0, time.monotonic()
        while not self._stop.is_set():
            seq += 1
            t_sent = time.time()
            try:
                self._write(seq, t_sent)
                probe = Probe(seq, t_sent, time.time())
            except Exception as exc:  # the thread must outlive any error: record it, go on
                self._close()  # reconnect next tick, whatever the error was
                error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                if self._timed_out:
                    error = f"no answer within {self.write_timeout:g} s (cut by the watchdog)"
                probe = Probe(seq, t_sent, None, error)
            self._timed_out = False
            with self._lock:
                self._probes.append(probe)
            # Fixed cadence; after a slow attempt start the next one at once, never in a burst.
            next_at = max(next_at + self.interval, time.monotonic())
            self._stop.wait(next_at - time.monotonic())

    def resolution(self) -> float | None:
        """Steady-state resolution: median gap between attempts + 95th percentile write latency."""
        probes = self.probes
        gaps = [b.t_sent - a.t_sent for a, b in zip(probes, probes[1:], strict=False)]
        lat = sorted(p.t_acked - p.t_sent for p in probes if p.t_acked is not None)
        if not gaps or not lat:
            return None
        return median(gaps) + lat[max(0, int(round(0.95 * len(lat))) - 1)]

    def rto(self, fault_at: float) -> Rto:
        return compute_rto(self.probes, fault_at, self.interval)


def compute_rto(probes: list[Probe], fault_at: float, interval: float) -> Rto:
    """RTO from a list of probes (separate from the thread so it can be tested on its own).

    Writes may still succeed for a few ms after the fault instant, before the
    crash reaches the socket: recovery is the first success after the first
    failure. No failure at all means the fault never stopped writes.
    """
    probes = sorted(probes, key=lambda p: p.t_sent)
    after = [p for p in probes if p.t_sent >= fault_at]
    first_fail = next((p for p in after if not p.ok), None)
    edge = first_fail.t_sent if first_fail is not None else fault_at
    first_ok = next((p for p in after if p.ok and p.t_sent > edge), None)
    if first_fail is None:
        first_ok = next((p for p in after if p.ok), None)
    last_ack = max((p.t_acked for p in probes if p.t_acked is not None and p.t_acked <= edge),
                   default=None)
    failed = sum(1 for p in after if not p.ok and (first_ok is None or p.t_sent < first_ok.t_sent))
    fail_sent = first_fail.t_sent if first_fail is not None else None
    if first_ok is None or first_ok.t_acked is None:
        return Rto(fault_at, None, None, last_ack, None, failed, fail_sent)
    prev = [p.t_sent for p in probes if p.t_sent < first_ok.t_sent]
    gap = first_ok.t_sent - max(prev) if prev else interval
    resolution = max(gap, interval) + (first_ok.t_acked - first_ok.t_sent)
    return Rto(fault_at, first_ok.t_acked - fault_at, resolution, last_ack, first_ok.t_acked, failed,
               fail_sent)
