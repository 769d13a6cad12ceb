"""HA-5 replica lag on the real lab, measured from the primary's WAL position.

Idle: after 60 s without a commit, the time since the last replayed commit is
over 60 s although nothing is behind, and must not be reported as lag. Behind:
WAL reaching the standby late while the primary writes, for longer than a small
threshold, must fail naming it. Both leave the cluster as they found it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import requests

from pgproof.checks.postgres import judge_ha5
from pgproof.lab import components as c
from pgproof.lab.state import LabState
from pgproof.probes import postgres as pg_probe
from pgproof.target import Target

pytestmark = pytest.mark.stage("suites")

IDLE_S = 60


def _su(lab: LabState, port: str) -> psycopg.Connection:
    return psycopg.connect(**c.superuser_conninfo(lab, port), autocommit=True)


def _standby_port(lab: LabState, target: Target) -> str:
    """The node behind the reader endpoint (a superuser session changes its replay)."""
    with _su(lab, "haproxy_reader") as conn:
        port = conn.execute("SELECT inet_server_port()").fetchone()[0]  # type: ignore[index]
    for name in ("node1_pg", "node2_pg"):
        with _su(lab, name) as conn:
            if conn.execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone() == (port, True):
                return name
    pytest.fail(f"no lab node in recovery answers behind the reader endpoint (port {port})")


def _idle_for(lab: LabState, port: str, seconds: float, budget: float) -> float:
    """Wait until the standby last replayed a commit ``seconds`` ago (nobody writing)."""
    deadline = time.monotonic() + budget
    with _su(lab, port) as conn:
        while True:
            idle = conn.execute("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())"
                                ).fetchone()[0]  # type: ignore[index]
            if idle is not None and idle >= seconds:
                return float(idle)
            if time.monotonic() > deadline:
                pytest.fail(f"the lab never stayed {seconds} s without a commit within {budget} s "
                            f"(last replayed commit {idle} s ago): something keeps writing")
            time.sleep(2)


def _write(lab: LabState, local: bool = False) -> None:
    with _su(lab, "haproxy_writer") as conn:
        if local:  # do not wait for a standby whose WAL is held back
            conn.execute("SET synchronous_commit = local")
        conn.execute("CREATE TABLE IF NOT EXISTS pgproof_lag_probe (t timestamptz)")
        conn.execute("INSERT INTO pgproof_lag_probe VALUES (now())")


def _ha5(target: Target, **th: Any) -> tuple[list[str], list[pg_probe.ReplicaFacts]]:
    t = target.model_copy(update={"thresholds": target.thresholds.model_copy(update=th)})
    facts = [pg_probe.replica_facts(t, r) for r in t.postgres.readers]
    f = pg_probe.PostgresFacts("writer", {}, None, [], None, {}, {}, facts)
    return judge_ha5(f, t.thresholds), facts


def test_idle_lab_has_no_replica_lag(lab: LabState, lab_target: Target) -> None:
    """60 s without a commit: no lag. Then one commit whose replay waits 3 s for a standby
    query's lock: the lag is those seconds, not the minute since the commit before it (what
    the old probe said whenever the standby's receive and replay positions differed)."""
    node = _standby_port(lab, lab_target)
    _write(lab)  # the table the standby query below reads
    idle = _idle_for(lab, node, IDLE_S, budget=240)
    problems, facts = _ha5(lab_target)
    # Caught up: 0, or a WAL record (e.g. a standby snapshot) replayed within a moment.
    assert problems == [] and all(f.lag_s is not None and f.lag_s < 1 for f in facts), (idle, facts)
    with _su(lab, node) as standby, _su(lab, "haproxy_writer") as primary:
        standby.autocommit = False
        standby.execute("SELECT count(*) FROM pgproof_lag_probe")  # holds AccessShareLock
        with primary.transaction():  # a WAL-logged AccessExclusiveLock: its replay must wait
            primary.execute("LOCK TABLE pgproof_lag_probe IN ACCESS EXCLUSIVE MODE")
        release = threading.Timer(3, standby.rollback)
        release.start()
        try:
            problems, facts = _ha5(lab_target)
        finally:
            release.join()
    assert problems == [], (problems, facts)
    assert all(f.lag_s is not None and 0 < f.lag_s < 15 for f in facts), facts


@contextmanager
def _wal_delayed(lab: LabState, node: str, ms: int) -> Iterator[None]:
    """Every WAL byte the standby ``node`` receives arrives ``ms`` late (a latency toxic on the
    lab's Toxiproxy path it streams through); removed in ``finally``."""
    from psycopg.conninfo import conninfo_to_dict

    with _su(lab, node) as conn:
        port = int(conninfo_to_dict(conn.execute("SELECT current_setting('primary_conninfo')"
                                                 ).fetchone()[0])["port"])  # type: ignore[index]
    api = lab.toxiproxy_url.rstrip("/")
    proxies = requests.get(f"{api}/proxies", timeout=10).json()
    proxy = next(n for n, p in proxies.items() if p["listen"].endswith(f":{port}"))
    name = "pgproof_test_replica_lag"
    requests.post(f"{api}/proxies/{proxy}/toxics", timeout=10, json={
        "name": name, "type": "latency", "stream": "downstream", "toxicity": 1.0,
        "attributes": {"latency": ms, "jitter": 0}}).raise_for_status()
    try:
        yield
    finally:
        requests.delete(f"{api}/proxies/{proxy}/toxics/{name}", timeout=10)


def test_standby_really_behind_fails_ha5(lab: LabState, lab_target: Target) -> None:
    """WAL reaching the standby 6 s late while the primary writes, with a 2 s threshold:
    HA-5 fails naming the reader and the lag.

    ``pg_wal_replay_pause()`` and ``recovery_min_apply_delay`` do not hold on this lab
    (Patroni resumes replay within a second; the delay was not applied), so the WAL
    stream itself is delayed. The writes commit locally: the standby is synchronous."""
    node = _standby_port(lab, lab_target)
    with _wal_delayed(lab, node, 6000):
        _write(lab, local=True)
        time.sleep(1)
        _write(lab, local=True)
        problems, facts = _ha5(lab_target, replica_lag_max_s=2)
    reader = lab_target.postgres.readers[0]
    assert len(problems) == 1, (problems, facts)
    assert f"reader {reader.host}:{reader.port} lags" in problems[0] and "HA-5" not in problems[0]
    assert facts[0].lag_s is not None and facts[0].lag_s > 2, facts
    # Toxic removed: caught up again, the cluster as it was.
    deadline = time.monotonic() + 60
    while _ha5(lab_target)[1][0].lag_s != 0.0:
        assert time.monotonic() < deadline, "the standby did not catch up after the delay was removed"
        time.sleep(1)
