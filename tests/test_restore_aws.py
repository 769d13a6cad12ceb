"""The AWS restore drill path and chaos.snapshot_before, against in-process moto.

Calls only: which API calls are made with which parameters, that the scratch
instance gets the source's subnet group, security groups and KMS key and is
deleted with no final snapshot (also by ``gameday recover`` after a crash).
Timing is only meaningful on real AWS (a restore takes minutes there).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from pgproof.faults import record, snapshot
from pgproof.faults.aws import AwsDriver
from pgproof.gameday import restore_aws
from pgproof.gameday.journal import Journal
from pgproof.gameday.recover import recover
from pgproof.gameday.safety import ChaosRefused
from pgproof.lab import aws_twin
from pgproof.target import Target, parse_target

REGION = "us-east-1"
PG = {"writer": {"host": "db.invalid", "port": 5432}, "user": "pgproof", "connect_timeout": 1}


def aws_target(twin: aws_twin.AwsTwin, **chaos: Any) -> Target:
    return parse_target("moto", {"postgres": PG, "aws": {"region": REGION, **twin.aws_section()},
                                 "chaos": {"allowed": True, "driver": "aws", **chaos}}, "test")


@pytest.fixture
def twin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[aws_twin.AwsTwin]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("PGPROOF_FAULTS_DIR", str(tmp_path / "faults"))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        yield aws_twin.provision(clients=aws_twin.connect(REGION), with_proxy=False)


def _spy(client: Any, *operations: str) -> list[tuple[str, dict[str, Any]]]:
    calls: list[tuple[str, dict[str, Any]]] = []
    for op in operations:
        client.meta.events.register(f"before-call.rds.{op}",
                                    lambda params, op=op, **_: calls.append((op, dict(params["body"]))))
    return calls


@pytest.mark.slow
def test_restore_drill_calls_restore_wait_probe_delete(twin: aws_twin.AwsTwin,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    target = aws_target(twin)
    rds = restore_aws._client(restore_aws._where(target))
    monkeypatch.setattr(restore_aws, "_client", lambda data: rds)  # one client: its calls are spied
    calls = _spy(rds, "RestoreDBInstanceToPointInTime", "DeleteDBInstance", "ModifyDBInstance")
    src = rds.describe_db_instances(DBInstanceIdentifier=twin.db_instance_id)["DBInstances"][0]
    rec = record.FaultRecord.create(target, "restore-pitr-abc123", "restore-pitr", None)
    j = Journal("restore-pitr-abc123", "moto", "restore-pitr", "", "aws", {})
    seen: dict[str, Any] = {}
    real_probe = restore_aws._probe

    def probe(target: Target, j: Journal, inst: dict[str, Any]) -> dict[str, Any]:
        seen["recorded"] = [f["kind"] for f in record.FaultRecord.load(target).faults]  # type: ignore[union-attr]
        seen["inst"] = inst
        return real_probe(target, j, inst)  # the real login attempt (moto has no database)

    monkeypatch.setattr(restore_aws, "_probe", probe)
    t = datetime.now(UTC)
    out = restore_aws.drill(target, j, t, rec, wait_timeout_s=5, poll_s=0.05)
    # moto copies the source's deletion protection despite DeletionProtection=False: lifted on the
    # scratch instance only, then deleted again.
    assert [c[0] for c in calls] == ["RestoreDBInstanceToPointInTime", "DeleteDBInstance",
                                     "ModifyDBInstance", "DeleteDBInstance"]
    assert {c[1]["DBInstanceIdentifier"] for c in calls[1:]} == {"pgproof-restore-abc123"}
    body = calls[0][1]
    assert body["SourceDBInstanceIdentifier"] == twin.db_instance_id
    assert body["TargetDBInstanceIdentifier"] == "pgproof-restore-abc123"
    assert body["DBSubnetGroupName"] == src["DBSubnetGroup"]["DBSubnetGroupName"]
    assert [v for k, v in body.items() if k.startswith("VpcSecurityGroupIds")] == \
        [g["VpcSecurityGroupId"] for g in src["VpcSecurityGroups"]]
    assert body["DBParameterGroupName"] == src["DBParameterGroups"][0]["DBParameterGroupName"]
    assert body["PubliclyAccessible"] == "false" and body["DeletionProtection"] == "false"
    assert body["RestoreTime"].startswith(t.strftime("%Y-%m-%dT%H:%M"))
    assert calls[-1][1]["SkipFinalSnapshot"] == "true" and calls[-1][1]["DeleteAutomatedBackups"] == "true"
    assert seen["recorded"] == ["rds_restore_scratch"]  # recorded before the instance existed
    assert all(v["same"] for v in out["aws"].values()), out["aws"]
    assert out["aws"]["kms_key"]["scratch"] == src["KmsKeyId"]
    assert "did not accept a login" in out["restore_error"]  # moto endpoints take no connection
    assert "deleted (no final snapshot)" in out["scratch"]["deleted"]
    ids = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]]
    assert "pgproof-restore-abc123" not in ids and rec.faults == []
    from pgproof.gameday import restore_probe

    v = restore_probe.judge(out, 300, 900)
    assert v["verdict"] == "fail" and "impossible" in v["evidence"]


def test_wait_restorable_reads_latest_restorable_time(twin: aws_twin.AwsTwin) -> None:
    target = aws_target(twin)
    ok, detail = restore_aws.wait_restorable(target, datetime(2000, 1, 1, tzinfo=UTC), 1)
    assert ok and "past T" in detail
    ok, detail = restore_aws.wait_restorable(target, datetime(2999, 1, 1, tzinfo=UTC), 0.2)
    assert not ok and "not past T" in detail


def test_recover_deletes_an_orphaned_rds_scratch_instance(twin: aws_twin.AwsTwin) -> None:
    target = aws_target(twin)
    rds = restore_aws._client(restore_aws._where(target))
    rds.restore_db_instance_to_point_in_time(SourceDBInstanceIdentifier=twin.db_instance_id,
                                             TargetDBInstanceIdentifier="pgproof-restore-dead01",
                                             UseLatestRestorableTime=True)
    rec = record.FaultRecord.create(target, "restore-pitr-dead01", "restore-pitr", None)
    rec.add_fault(restore_aws.KIND, {**restore_aws._where(target), "id": "pgproof-restore-dead01"},
                  "RDS scratch instance pgproof-restore-dead01", "delete it")
    rec.data["owner"] = {"pid": 1, "start": -1}  # its runner was SIGKILLed
    rec.save()
    lines: list[str] = []
    assert recover(target, echo=lines.append) == 0, lines
    assert any("pgproof-restore-dead01 deleted" in line for line in lines), lines
    ids = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]]
    assert "pgproof-restore-dead01" not in ids and record.FaultRecord.load(target) is None
    assert restore_aws.delete_recorded({**restore_aws._where(target), "id": "pgproof-restore-dead01"},
                                       poll_s=0.01).endswith("already gone")


# -- chaos.snapshot_before ------------------------------------------------------------------------
@pytest.mark.slow
def test_snapshot_before_is_taken_and_journaled_before_the_fault(twin: aws_twin.AwsTwin,
                                                                 tmp_path: Path) -> None:
    from pgproof.gameday import run as gameday

    target = aws_target(twin, snapshot_before=True)
    plan: list[str] = []
    gameday.run(target, "force-failover", reports=tmp_path, dry_run=True, echo=plan.append)
    assert any("snapshot" in line for line in plan)
    # moto has no database: the run takes its snapshot, then fails at the first SQL, before the fault.
    j, out = gameday.run(target, "force-failover", reports=tmp_path, echo=lambda _: None)
    assert out is not None and j.snapshot and j.snapshot["kind"] == "rds-snapshot"
    rds = AwsDriver(target).rds
    [snap] = rds.describe_db_snapshots(DBSnapshotIdentifier=j.snapshot["id"])["DBSnapshots"]
    assert snap["DBInstanceIdentifier"] == twin.db_instance_id and snap["Status"] == "available"
    doc = json.loads((out / "journal.json").read_text())
    assert doc["snapshot"]["id"] == j.snapshot["id"]
    phases = [e["phase"] for e in doc["events"]]
    assert "snapshot" in phases and "fault" not in phases
    assert j.fault == {}  # nothing injected


def test_snapshot_before_refuses_when_the_snapshot_fails(twin: aws_twin.AwsTwin, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from pgproof.gameday import run as gameday

    target = aws_target(twin, snapshot_before=True)
    rds = AwsDriver(target).rds
    rds.create_db_snapshot(DBSnapshotIdentifier="pgproof-before-taken", DBInstanceIdentifier=twin.db_instance_id)
    monkeypatch.setattr(snapshot, "snapshot_id", lambda run_id: "pgproof-before-taken")  # a clash
    calls = _spy(rds, "RebootDBInstance")
    with pytest.raises(ChaosRefused) as err:
        gameday.run(target, "force-failover", reports=tmp_path / "r", echo=lambda _: None)
    msg = str(err.value)
    assert msg.startswith("the snapshot before the fault failed on target 'moto'") and "\n" not in msg
    assert "AlreadyExists" in msg or "already exists" in msg
    assert not (tmp_path / "r").exists() and record.FaultRecord.load(target) is None and calls == []


def test_snapshot_on_a_driver_without_one_is_refused(twin: aws_twin.AwsTwin) -> None:
    from pgproof.faults.ssh import SshDriver

    with pytest.raises(ChaosRefused, match="ssh driver cannot take a snapshot"):
        snapshot.take(aws_target(twin), SshDriver.__new__(SshDriver), "r1")


@pytest.mark.slow
def test_snapshot_waits_until_available(twin: aws_twin.AwsTwin) -> None:
    d = AwsDriver(aws_target(twin), wait_timeout_s=5, poll_s=0.01)
    t0 = time.monotonic()
    snap = snapshot.take(d.target, d, "force-failover-1234abcd")
    assert snap["id"] == "pgproof-before-force-failover-1234abcd" and time.monotonic() - t0 < 60


def test_restore_pitr_bad_input_is_one_sentence(tmp_path: Path) -> None:
    import subprocess
    import sys

    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.self.postgres]\nuser = "auditor"\nwriter = { host = "127.0.0.1", port = 1 }\n'
                   '[targets.self.chaos]\nallowed = true\ndriver = "ssh"\n')
    for extra, want in ((["--archive-wait", "0"], "--archive-wait takes a positive number"),
                        (["--archive-wait", "5", "--dry-run"], "only applies to restore-pitr")):
        scen = "latency" if "--dry-run" in extra else "restore-pitr"
        r = subprocess.run([sys.executable, "-m", "pgproof.cli", "gameday", scen, "--target", "self",
                            "--config", str(cfg), "--reports", str(tmp_path / "r"), *extra],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and want in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "r").exists()
