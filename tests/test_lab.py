"""The lab is real: Patroni HA with sync replication, TLS everywhere, pooling, health, AWS twin."""

from __future__ import annotations

import time

import psycopg
import pytest
import requests

from pgproof.lab import components
from pgproof.lab.state import NODES, LabState
from pgproof.probes import tls
from pgproof.target import Endpoint, Target

pytestmark = pytest.mark.stage("lab")


def _client_endpoints(t: Target) -> dict[str, Endpoint]:
    pg = t.postgres
    eps = {"writer": pg.writer, "pooler": pg.pooler, **{f"reader{i}": r for i, r in enumerate(pg.readers)}}
    eps.update({f"node{i + 1}": n for i, n in enumerate(pg.nodes)})
    return {k: v for k, v in eps.items() if v is not None}


def test_patroni_has_leader_and_streaming_sync_standby(lab: LabState) -> None:
    members = components.cluster(lab)["members"]
    roles = sorted((m["role"], m["state"]) for m in members)
    assert roles == [("leader", "running"), ("sync_standby", "streaming")], members


def test_write_on_writer_is_readable_on_reader(lab_target: Target) -> None:
    t = lab_target
    marker = f"lab-{time.time_ns()}"
    with psycopg.connect(**t.conninfo(user="app"), autocommit=True) as w:
        w.execute("CREATE TABLE IF NOT EXISTS lab_probe (v text)")
        w.execute("INSERT INTO lab_probe VALUES (%s)", (marker,))
        assert w.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
    with psycopg.connect(**t.conninfo(t.postgres.readers[0], user="app"), autocommit=True) as r:
        assert r.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if r.execute("SELECT 1 FROM lab_probe WHERE v = %s", (marker,)).fetchone():
                break
            time.sleep(0.05)
        else:
            pytest.fail("row written on the writer never appeared on the reader")


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_tls_versions_accepted_at_every_client_endpoint(lab_target: Target, version: str) -> None:
    for name, ep in _client_endpoints(lab_target).items():
        info = lab_target.conninfo(ep, user="app", dbname="appdb", ssl_min_protocol_version=version,
                                   ssl_max_protocol_version=version)
        with psycopg.connect(**info) as conn:
            assert conn.pgconn.ssl_in_use, name
    # The raw probe pins each version on its own handshake: 1.2 and 1.3 accepted, 1.0/1.1 refused.
    for name, ep in _client_endpoints(lab_target).items():
        facts = tls.probe_endpoint(ep.host, ep.port, lab_target.postgres.sslrootcert)
        assert facts.versions[version].outcome == "accepted", (name, facts.versions)
        assert {facts.versions[v].outcome for v in ("TLSv1", "TLSv1.1")} == {"refused"}, name


def test_plaintext_rejected_at_every_client_endpoint(lab_target: Target) -> None:
    for name, ep in _client_endpoints(lab_target).items():
        with pytest.raises(psycopg.OperationalError) as err:
            psycopg.connect(**lab_target.conninfo(ep, user="app", dbname="appdb", sslmode="disable"))
        text = str(err.value).lower()
        assert "no encryption" in text or "ssl" in text, f"{name}: {err.value}"


def test_health_endpoint_answers_through_pgbouncer(lab_target: Target) -> None:
    assert lab_target.health_url
    body = requests.get(lab_target.health_url, timeout=5).json()
    assert body["status"] == "healthy"
    db = body["database"]
    assert db["connected"] is True and db["ssl"] is True
    assert db["version"].startswith("15.")
    assert isinstance(db["active_connections"], int) and body["response_time_ms"] > 0


def _pooler_admin(t: Target) -> psycopg.Connection:
    assert t.postgres.pooler_admin
    return psycopg.connect(**t.conninfo(t.postgres.pooler_admin), autocommit=True,
                           prepare_threshold=None)


def test_pgbouncer_pools_and_follows_switchover(lab: LabState, lab_target: Target) -> None:
    t = lab_target
    assert t.postgres.pooler
    info = t.conninfo(t.postgres.pooler, user="app", dbname="appdb")
    clients = [psycopg.connect(**info, autocommit=True, prepare_threshold=None) for _ in range(30)]
    try:
        before = {c.execute("SELECT inet_server_port()").fetchone()[0] for c in clients}  # type: ignore[index]
        with _pooler_admin(t) as admin:
            pools = [r for r in admin.execute("SHOW POOLS").fetchall() if r[0] == "appdb"]
        assert pools, "no appdb pool in SHOW POOLS"
        # 30 clients in transaction mode share far fewer server connections (<= pool size 20).
        with _pooler_admin(t) as admin:
            servers = [r for r in admin.execute("SHOW SERVERS").fetchall() if r[2] == "appdb"]
        assert 0 < len(servers) <= 20, servers
        old = components.leader(lab)
        new = next(n for n in NODES if n != old)
        r = requests.post(lab.rest_url(old) + "/switchover", json={"leader": old, "candidate": new},
                          timeout=30)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        after: set[int] = set()
        while time.monotonic() < deadline:
            try:
                row = clients[0].execute("SELECT inet_server_port(), pg_is_in_recovery()").fetchone()
                if row and row[1] is False and row[0] not in before:
                    after = {row[0]}
                    break
            except psycopg.OperationalError:
                clients[0] = psycopg.connect(**info, autocommit=True, prepare_threshold=None)
            time.sleep(0.2)
        assert after, f"pgbouncer still routes to the old primary on port {before}"
        assert components.leader(lab) == new
    finally:
        for c in clients:
            c.close()
    components_wait_sync(lab)


def components_wait_sync(lab: LabState, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if components.sync_standby_streaming(lab):
            return
        time.sleep(0.2)
    pytest.fail("cluster did not return to a streaming sync standby")


def test_latency_toxic_on_writer_path_delays_a_query(lab: LabState, lab_target: Target) -> None:
    url = lab.toxiproxy_url + "/proxies/writer/toxics"
    with psycopg.connect(**lab_target.conninfo(user="app"), autocommit=True) as conn:
        t0 = time.perf_counter()
        conn.execute("SELECT 1")
        base = time.perf_counter() - t0
        r = requests.post(url, json={"name": "lab_latency", "type": "latency",
                                     "attributes": {"latency": 300, "jitter": 0}}, timeout=5)
        assert r.status_code == 200, r.text
        try:
            t0 = time.perf_counter()
            conn.execute("SELECT 1")
            slow = time.perf_counter() - t0
        finally:
            assert requests.delete(url + "/lab_latency", timeout=5).status_code == 204
    assert base < 0.1 and slow >= 0.3, (base, slow)


@pytest.mark.parametrize("locustfile", ["ledger.py", "pooled.py", "readmix.py"])
def test_locustfiles_run_on_their_own_against_the_target(lab: LabState, locustfile: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env.update(PGPROOF_LAB_TARGET=str(lab.target_file), PGPROOF_CONFIG="/nonexistent")
    r = subprocess.run([sys.executable, "-m", "locust", "-f", str(repo / "locustfiles" / locustfile),
                        "--headless", "-u", "3", "-r", "3", "--run-time", "10s", "--only-summary",
                        "--target", "lab"], capture_output=True, text=True, env=env, timeout=120)
    total = [ln for ln in (r.stdout + r.stderr).splitlines() if "Aggregated" in ln and "%" in ln]
    assert total, r.stdout[-2000:] + r.stderr[-2000:]
    requests_, failures = total[0].split()[1], total[0].split()[2]
    assert int(requests_) > 0 and failures.startswith("0("), total[0]
