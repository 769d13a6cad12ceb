"""An aws-driver game day on ``lab-aurora``: ``failover_db_cluster`` through the bridge.

The twin's moto server turns the Aurora cluster's failover into a real Patroni
failover of the lab (pgproof/lab/aws_bridge.py) and reports it with cluster
events, so the game day is judged on real writes through the AWS driver only.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pgproof.faults.aws import AwsDriver
from pgproof.gameday import alarm_drill
from pgproof.gameday import run as gameday
from pgproof.lab.aws_twin import AwsTwin, lab_files
from pgproof.lab.driver import LabDriver
from pgproof.lab.state import LabState
from pgproof.target import Target, load_target

pytestmark = pytest.mark.stage("gameday")

FAST = {"baseline_s": 3, "users": 4}


@pytest.fixture(scope="module")
def aurora(lab: LabState) -> Target:
    if not lab.aws_aurora:
        pytest.skip("the lab runs without its AWS twin (lab up --no-aws)")
    return load_target("lab-aurora", config=Path("/nonexistent"), lab_file=lab.target_file)


def _as_lab(target: Target) -> Target:
    return target.model_copy(update={"chaos": target.chaos.model_copy(update={"driver": "lab"})})


def _wait_lab_steady(target: Target, timeout: float = 90) -> None:
    """The next game day starts from a synchronously replicating cluster (the standby may lag)."""
    driver = LabDriver(_as_lab(target))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.steady()[0]:
            return
        time.sleep(0.5)
    pytest.fail(f"lab not steady {timeout:.0f} s after the cluster failover: {driver.steady()[1]}")


def test_alarm_drill_delivers_the_clusters_aurora_alarms(aurora: Target, lab: LabState,
                                                        tmp_path: Path) -> None:
    """MON-4 on lab-aurora: the drill forces Aurora's alarms (every member's FreeLocalStorage,
    the reader's AuroraReplicaLag) and each is delivered through its topic."""
    twin = AwsTwin.load(lab_files(lab.state_dir, aurora=True)[1])
    j, out = alarm_drill.run(aurora, reports=tmp_path, echo=lambda _: None)
    assert out is not None and j.verdict == "pass", j.verdicts
    drilled = {v["evidence"].split(":")[0] for v in j.verdicts}
    members = [twin.db_instance_id, *twin.replica_ids]
    assert {f"{m}-local-storage-low" for m in members} <= drilled, drilled
    assert any(f"{m}-replica-lag" in drilled for m in members), drilled
    assert drilled <= set(twin.alarm_names), drilled


def test_force_failover_is_failover_db_cluster(aurora: Target, tmp_path: Path) -> None:
    d = AwsDriver(aurora)
    assert d.cluster_id and d.steady()[0], d.steady()[1]
    since = time.time()
    writer_before = d.leader()
    lead_before = LabDriver(_as_lab(aurora)).leader()
    j, out = gameday.run(aurora, "force-failover", reports=tmp_path, echo=print, **FAST)  # type: ignore[arg-type]
    assert out is not None and (out / "journal.json").exists()
    assert {v["id"]: v["verdict"] for v in j.verdicts} == {"CH-FORCE": "pass"}, j.verdicts
    assert j.measurements["ledger"]["lost"] == 0
    assert d.leader() != writer_before, "the cluster's writer member did not change"
    assert LabDriver(_as_lab(aurora)).leader() != lead_before, "Patroni did not fail over"
    msgs = [e["message"] for e in d.events(since)]
    assert "Started cross AZ failover to a reader DB instance." in msgs, msgs
    assert "Completed failover to DB instance." in msgs, msgs
    assert j.measurements["promotion"]["rds_event_at"], j.measurements["promotion"]
    _wait_lab_steady(aurora)
