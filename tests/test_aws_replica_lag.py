"""HA-5's AWS layer: CloudWatch's replica lag per reader, judged exactly at the threshold.

In-process moto: the twin (RDS instance with a read replica, or Aurora with a reader)
publishes its readers' lag as RDS does; the tests add datapoints and read the verdict
through the real probe (GetMetricStatistics) and the real judge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws
from moto.core.authorization import enable_iam_authentication

from pgproof.checks.aws_ops import judge_ha5
from pgproof.lab import aws_twin
from pgproof.lab.aws_mutations import AWS_MUTATIONS
from pgproof.probes.aws import AwsInventory, gather
from pgproof.target import Aws, Thresholds
from pgproof.verdict import CannotVerify, NotApplicable

# Each twin (in-process moto) takes 5-20 s to provision on the loaded machine: the lab tier.
pytestmark = pytest.mark.slow

REGION = "us-east-1"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    with mock_aws():
        yield


def _twin(aurora: bool = False) -> tuple[aws_twin.AwsClients, aws_twin.AwsTwin]:
    clients = aws_twin.connect(REGION)
    return clients, aws_twin.provision(clients=clients, aurora=aurora, with_proxy=False,
                                       **({"name": "pgproof-aurora"} if aurora else {}))


def _lag(c: aws_twin.AwsClients, rid: str, value: float, metric: str = "ReplicaLag") -> None:
    c.cloudwatch.put_metric_data(Namespace="AWS/RDS", MetricData=[{
        "MetricName": metric, "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": rid}],
        "Timestamp": datetime.now(UTC) - timedelta(seconds=30), "Value": value}])


def _judge(t: aws_twin.AwsTwin, th: Thresholds | None = None) -> list[str]:
    """The verdict's problems; cannot-verify fails the test (pytest would read it as a skip)."""
    try:
        return judge_ha5(gather(Aws(**t.aws_section())), th or Thresholds())
    except CannotVerify as exc:
        pytest.fail(f"HA-5 cannot verify: {exc}")


def test_healthy_twin_passes_and_lag_above_the_threshold_fails(aws_env: None) -> None:
    c, t = _twin()
    assert _judge(t) == []
    _lag(c, t.replica_ids[0], 30.5)
    [problem] = _judge(t)
    assert problem == (f"db-instance {t.replica_ids[0]}: ReplicaLag reached 30.5 s in the last "
                       "300 s; the spec wants at most 30 s")


def test_lag_exactly_at_the_threshold_passes(aws_env: None) -> None:
    c, t = _twin()
    _lag(c, t.replica_ids[0], 30.0)
    assert _judge(t) == []
    assert _judge(t, Thresholds(replica_lag_max_s=29.999)) != []


def test_aurora_milliseconds_are_converted(aws_env: None) -> None:
    """30000 ms is 30 s: at the threshold; 30001 ms is beyond it."""
    c, t = _twin(aurora=True)
    assert _judge(t) == []
    _lag(c, t.replica_ids[0], 30000.0, "AuroraReplicaLag")
    assert _judge(t) == []
    _lag(c, t.replica_ids[0], 30001.0, "AuroraReplicaLag")
    [problem] = _judge(t)
    assert "AuroraReplicaLag reached 30.001 s" in problem


def test_no_datapoint_in_the_window_cannot_verify(aws_env: None) -> None:
    c, t = _twin()
    inv = gather(Aws(**t.aws_section()))
    rid = t.replica_ids[0]
    assert inv.replica_lag[rid]["Datapoints"]  # the twin published some
    inv.replica_lag[rid]["Datapoints"] = []
    with pytest.raises(CannotVerify, match=f"{rid}: CloudWatch has no ReplicaLag datapoint in "
                                           "the last 300 s"):
        judge_ha5(inv, Thresholds())


@pytest.mark.parametrize("aurora", [False, True], ids=["rds", "aurora"])
def test_a_reader_without_published_lag_cannot_verify_through_the_probe(aws_env: None,
                                                                        aurora: bool) -> None:
    """A real reader CloudWatch has nothing for (just created): unknown, not a pass."""
    c, t = _twin(aurora)
    if aurora:
        c.rds.create_db_instance(DBInstanceIdentifier="late-reader", DBClusterIdentifier=t.db_cluster_id,
                                 Engine="aurora-postgresql", DBInstanceClass="db.r6g.large")
    else:
        c.rds.create_db_instance_read_replica(DBInstanceIdentifier="late-reader",
                                              SourceDBInstanceIdentifier=t.db_instance_id)
    metric = "AuroraReplicaLag" if aurora else "ReplicaLag"
    with pytest.raises(CannotVerify, match=f"late-reader: CloudWatch has no {metric} datapoint "
                                           "in the last 300 s, so its lag is unknown"):
        judge_ha5(gather(Aws(**t.aws_section())), Thresholds())


def test_the_writer_a_failover_demotes_has_its_lag(aws_env: None) -> None:
    """After an Aurora failover the old writer is a reader: the twin published its series
    too, so HA-5 still judges it (not cannot-verify) and still fails when it lags."""
    c, t = _twin(aurora=True)
    c.rds.failover_db_cluster(DBClusterIdentifier=t.db_cluster_id,
                              TargetDBInstanceIdentifier=t.replica_ids[0])
    inv = gather(Aws(**t.aws_section()))
    assert [r["DBInstanceIdentifier"] for r in inv.replicas] == [t.db_instance_id]
    assert _judge(t) == []
    AWS_MUTATIONS["replica-lagging"].apply(c, t)
    [problem] = _judge(t)
    assert problem.startswith(f"db-instance {t.db_instance_id}: AuroraReplicaLag reached 120 s")


def test_no_readers_is_not_applicable() -> None:
    inv = AwsInventory(region=REGION, endpoint="x", primary={"DBInstanceIdentifier": "solo"})
    with pytest.raises(NotApplicable, match="no read replica or cluster reader"):
        judge_ha5(inv, Thresholds())


@pytest.mark.parametrize("aurora", [False, True], ids=["rds", "aurora"])
def test_the_lagging_mutation_breaks_and_heals(aws_env: None, aurora: bool) -> None:
    c, t = _twin(aurora)
    m = AWS_MUTATIONS["replica-lagging"]
    assert m.breaks == {"HA-5"}
    m.apply(c, t)
    assert [p.split(": ", 1)[1].split(" in ")[0] for p in _judge(t)] == [
        f"{'AuroraReplicaLag' if aurora else 'ReplicaLag'} reached 120 s"] * len(t.replica_ids)
    m.heal(c, t)
    assert _judge(t) == []


def test_the_lagging_heal_refuses_where_it_cannot_heal() -> None:
    """Outside in-process moto (the served lab twin) the heal would change nothing: it says
    so instead of returning as if healed; the lab refuses the mutation before applying it."""
    m = AWS_MUTATIONS["replica-lagging"]
    t = aws_twin.AwsTwin.__new__(aws_twin.AwsTwin)
    t.db_cluster_id, t.region = None, REGION
    with pytest.raises(RuntimeError, match="replica-lagging cannot heal here"):
        m.heal(aws_twin.connect(REGION), t)
    with pytest.raises(ValueError, match="replica-lagging heals only against in-process moto"):
        aws_twin.run_lab_mutation(object(), m, "apply", aurora=True)


def test_the_twins_lag_series_passes_a_signature_check(aws_env: None) -> None:
    """The lab's served twin checks signatures: a gzipped PutMetricData body (botocore zips
    over 10 KiB) was refused with SignatureDoesNotMatch, so ``lab up`` failed."""
    iam = aws_twin.connect(REGION).iam
    iam.create_user(UserName="lab")
    iam.put_user_policy(UserName="lab", PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="lab")["AccessKey"]
    session = boto3.Session(aws_access_key_id=key["AccessKeyId"],
                            aws_secret_access_key=key["SecretAccessKey"], region_name=REGION)
    c = aws_twin.connect(REGION, session)
    t = aws_twin.AwsTwin.__new__(aws_twin.AwsTwin)
    t.db_cluster_id = None
    with enable_iam_authentication():
        aws_twin.publish_replica_lag(c, t, 0.0, ahead=aws_twin.LAG_AHEAD_MINUTES, ids=["reader-1"])
