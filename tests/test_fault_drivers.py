"""The aws and ssh fault drivers, each against the closest thing to its real target.

AWS: in-process moto. It proves which calls are made (a botocore hook records
them) and what moto does with them (Aurora failover moves the writer; a forced
Multi-AZ reboot changes nothing there). No timing is asserted: only real AWS has it.

SSH: the testinfra ``local://`` backend against a real standalone PostgreSQL,
so the kill is a real SIGKILL of a real postmaster and the undo a real start.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psycopg
import pytest
from moto import mock_aws

from pgproof import procs
from pgproof.faults.aws import AwsDriver
from pgproof.faults.base import FaultUndoError
from pgproof.faults.drivers import make_driver
from pgproof.faults.ssh import SshDriver
from pgproof.lab import aws_twin
from pgproof.lab.standalone import Standalone, standalone_postgres
from pgproof.target import Target, parse_target

REGION = "us-east-1"
PG = {"writer": {"host": "db.invalid", "port": 5432}, "user": "pgproof"}


def aws_target(**aws: Any) -> Target:
    return parse_target("moto", {"postgres": PG, "aws": {"region": REGION, **aws},
                                 "chaos": {"allowed": True, "driver": "aws"}}, "test")


def spy(driver: AwsDriver, operation: str) -> list[dict[str, Any]]:
    """Record the request body of every ``operation`` call the driver's client sends."""
    calls: list[dict[str, Any]] = []
    driver.rds.meta.events.register(f"before-call.rds.{operation}",
                                    lambda params, **_: calls.append(dict(params["body"])))
    return calls


@pytest.fixture
def moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[aws_twin.AwsTwin]:
    """The compliant twin (Multi-AZ primary + replica) in in-process moto."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        yield aws_twin.provision(clients=aws_twin.connect(REGION), with_proxy=False)


@pytest.mark.slow
def test_aws_instance_forced_failover(moto: aws_twin.AwsTwin) -> None:
    d = make_driver(aws_target(**moto.aws_section()))
    assert isinstance(d, AwsDriver)
    ok, detail = d.steady()
    assert ok, detail
    assert "control-plane" in detail and "MultiAZ=True" in detail
    assert d.leader() == f"{REGION}a"
    assert d.timeline() == 0
    assert d.active_faults() == []
    assert d.versions()["engine"] == "postgres"
    calls = spy(d, "RebootDBInstance")
    stack = ExitStack()
    with stack, d.kill_primary(undo_stack=stack):  # kill_primary on AWS = forced failover
        pass
    assert calls == [{"Action": "RebootDBInstance", "Version": "2014-10-31",
                      "DBInstanceIdentifier": moto.db_instance_id, "ForceFailover": "true"}]
    events = d.events(0)
    assert isinstance(events, list) and all({"at", "message", "source"} <= e.keys() for e in events)
    # moto emits no failover event and does not move the instance: nothing is invented.
    assert d.promotion_times(d.leader() or "", 0) == {"rds_event_at": None,
                                                      "rds_failover_started_at": None}
    assert d.leader() == f"{REGION}a" and d.timeline() == 0


def test_aws_unsupported_faults_say_so(moto: aws_twin.AwsTwin) -> None:
    d = AwsDriver(aws_target(**moto.aws_section()))
    for call in (lambda: d.synchronous(False), lambda: d.node_conninfo("x"), d.crash_postmaster):
        with pytest.raises(NotImplementedError, match=r"\w+ \w+"):
            call()
    with pytest.raises(RuntimeError, match="client-path proxy"):  # latency needs app_path first
        d.latency(200)


def test_aws_undo_fails_loudly_when_not_available(moto: aws_twin.AwsTwin,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    d = AwsDriver(aws_target(**moto.aws_section()), wait_timeout_s=0.2, poll_s=0.05)
    monkeypatch.setattr(d, "_status", lambda: "rebooting")
    assert d.active_faults() == [f"DB instance {moto.db_instance_id} is 'rebooting', not 'available'"]
    with pytest.raises(FaultUndoError) as err, d.force_failover():
        pass
    assert "describe-db-instances" in err.value.fix and "rebooting" in str(err.value)


def test_aws_aurora_failover_moves_the_writer(moto: aws_twin.AwsTwin) -> None:
    rds = aws_twin.connect(REGION).rds
    rds.create_db_cluster(DBClusterIdentifier="aurora", Engine="aurora-postgresql",
                          EngineVersion="15.4", MasterUsername="pgadmin",
                          MasterUserPassword="a-long-enough-password")
    for name in ("aurora-1", "aurora-2"):
        rds.create_db_instance(DBInstanceIdentifier=name, DBClusterIdentifier="aurora",
                               Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    d = make_driver(aws_target(db_cluster_id="aurora"))
    ok, detail = d.steady()
    assert ok, detail
    before = d.leader()
    assert before in ("aurora-1", "aurora-2")
    calls = spy(d, "FailoverDBCluster")
    with d.force_failover():
        pass
    other = "aurora-2" if before == "aurora-1" else "aurora-1"
    assert calls == [{"Action": "FailoverDBCluster", "Version": "2014-10-31",
                      "DBClusterIdentifier": "aurora", "TargetDBInstanceIdentifier": other}]
    assert d.leader() == other
    assert d.steady()[0] and d.active_faults() == []
    assert isinstance(d.events(0), list)
    assert d.versions()["engine"] == "aurora-postgresql"


# -- ssh ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg() -> Iterator[Standalone]:
    with standalone_postgres() as server:
        yield server


@pytest.fixture
def ssh_target(pg: Standalone, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv("PGPROOF_TEST_SSH_PW", pg.password)
    os_user = procs.SERVICE_USER if procs.running_as_root() else getpass.getuser()
    return parse_target("local-ssh", {
        "hosts": ["local://"],
        "tags": {"pgdata": str(pg.datadir), "pg_ctl_log": str(pg.log), "os_user": os_user,
                 "sudo": "false", "pg_bin": str(procs.PG_BIN)},
        "postgres": {"writer": {"host": pg.host, "port": pg.port}, "user": pg.user,
                     "password_env": "PGPROOF_TEST_SSH_PW", "sslrootcert": str(pg.ca),
                     "connect_timeout": 2},
        "chaos": {"allowed": True, "driver": "ssh"}}, "test")


def answers(target: Target) -> bool:
    try:
        with psycopg.connect(**target.conninfo()) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError:
        return False


@pytest.mark.slow
def test_ssh_observes_the_local_server(ssh_target: Target) -> None:
    d = make_driver(ssh_target)
    assert isinstance(d, SshDriver)
    assert d.leader() == "local"
    assert d.timeline() == 1
    assert d.steady(require_sync=False)[0]
    ok, detail = d.steady()
    assert not ok and "no synchronous standby" in detail  # one node cannot be synchronous
    assert d.active_faults() == []
    for call in (d.partition_primary, d.force_failover,
                 lambda: d.synchronous(False), lambda: d.node_conninfo("local")):
        with pytest.raises(NotImplementedError):
            call()


def _select_s(conn: psycopg.Connection[Any]) -> float:
    t = time.monotonic()
    conn.execute("SELECT 1").fetchone()
    return time.monotonic() - t


def test_ssh_latency_on_the_client_path(ssh_target: Target) -> None:
    """A Toxiproxy beside the client, verify-full through it; its toxic and process are undone."""
    d = make_driver(ssh_target)
    app = ssh_target.conninfo()
    assert app["sslmode"] == "verify-full"
    with d.app_path("latency", app) as via:
        assert via["hostaddr"] == "127.0.0.1" and via["host"] == app["host"]
        proxy = d._client_proxy
        with psycopg.connect(**via, autocommit=True) as conn:
            before = min(_select_s(conn) for _ in range(3))
            with d.latency(200, 0):
                slow = min(_select_s(conn) for _ in range(3))
            after = min(_select_s(conn) for _ in range(3))
    assert slow >= 0.2 > before and after < 0.2, (before, slow, after)
    assert proxy is not None and proxy.pid is not None and not procs.pid_alive(proxy.pid)
    with pytest.raises(RuntimeError, match="client-path proxy"):  # only inside app_path
        d.latency(200)


def test_ssh_kill_primary_and_undo(ssh_target: Target, pg: Standalone) -> None:
    d = make_driver(ssh_target)
    pm = int((pg.datadir / "postmaster.pid").read_text().split()[0])
    with d.kill_primary():
        assert not procs.pid_alive(pm)
        assert not procs.port_open(pg.host, pg.port)
        assert d.active_faults() == ["local: PostgreSQL not running"]
        assert d.leader() is None
    assert procs.port_open(pg.host, pg.port) and answers(ssh_target)
    assert d.active_faults() == [] and d.leader() == "local"


def test_ssh_undo_runs_when_the_block_raises(ssh_target: Target, pg: Standalone) -> None:
    d = make_driver(ssh_target)
    stack = ExitStack()
    with pytest.raises(RuntimeError, match="boom"), stack, d.stop_primary(undo_stack=stack):
        assert not procs.port_open(pg.host, pg.port)
        raise RuntimeError("boom")
    assert answers(ssh_target) and d.active_faults() == []
    assert os.path.exists(pg.datadir / "postmaster.pid")


@pytest.mark.slow
def test_gameday_refuses_scenarios_the_driver_cannot_run(moto: aws_twin.AwsTwin,
                                                         tmp_path: Path) -> None:
    """Before anything starts: no replication switch on RDS, no SG blackhole without an app tier."""
    from pgproof.gameday import run as gameday
    from pgproof.gameday.safety import ChaosRefused

    target = aws_target(db_instance_id=moto.db_instance_id)
    for scenario, why in (("kill-primary-async", "not switchable"),
                          ("partition", "app_security_group_ids or chaos.app_cidrs")):
        with pytest.raises(ChaosRefused, match=f"scenario {scenario} cannot run.*{why}"):
            gameday.run(target, scenario, reports=tmp_path)
    assert not list(tmp_path.iterdir())
    from pgproof.faults.aws import AwsDriver
    from pgproof.faults.drivers import cannot
    from pgproof.lab.driver import LabDriver

    assert cannot(AwsDriver.__new__(AwsDriver), "latency") is None  # client-path Toxiproxy
    assert cannot(AwsDriver.__new__(AwsDriver), "crash_postmaster")
    assert cannot(AwsDriver.__new__(AwsDriver), "force_failover") is None
    assert cannot(LabDriver.__new__(LabDriver), "partition_primary") is None


# -- the FaultDriver protocol -------------------------------------------------------------------
def _fault_driver_classes() -> list[type]:
    import importlib

    from pgproof.faults.drivers import DRIVERS

    out = []
    for spec in DRIVERS.values():
        module, cls = spec.split(":")
        out.append(getattr(importlib.import_module(module), cls))
    return out


def test_every_driver_implements_the_protocol_or_says_why_not() -> None:
    """A required member left to the protocol's bodiless stub would answer None at run time;
    an optional capability the driver does not override must be declared in UNSUPPORTED."""
    from pgproof.faults.protocol import FAULTS, FaultDriver

    required = ("steady", "leader", "timeline", "versions", "active_faults", "node_conninfo",
                "synchronous", "undo_recorded", *FAULTS)
    for cls in _fault_driver_classes():
        assert FaultDriver in cls.__mro__, f"{cls.__name__} does not subclass FaultDriver"
        for member in required:
            owner = next(k for k in cls.__mro__ if member in vars(k))
            assert owner is not FaultDriver, f"{cls.__name__}.{member} is not implemented"
        if cls.snapshot is FaultDriver.snapshot:
            assert "snapshot" in cls.UNSUPPORTED, f"{cls.__name__} neither snapshots nor says why"


def test_snapshot_is_asked_of_the_driver_not_its_name(moto: aws_twin.AwsTwin) -> None:
    """chaos.snapshot_before used to branch on ``driver.name == "aws" / "lab"``: a driver under
    another name (here the AWS driver registered as "aws-staging") was refused although it can
    take one. Now the driver's own ``snapshot`` decides; the RDS snapshot really exists."""
    from pgproof.faults import snapshot

    class StagingDriver(AwsDriver):
        name = "aws-staging"

    target = aws_target(db_instance_id=moto.db_instance_id)
    d = StagingDriver(target)
    got = snapshot.take(target, d, "r1")
    assert got["id"] == "pgproof-before-r1" and got["kind"] == "rds-snapshot"
    snaps = d.rds.describe_db_snapshots(DBSnapshotIdentifier="pgproof-before-r1")["DBSnapshots"]
    assert snaps[0]["DBInstanceIdentifier"] == moto.db_instance_id
