"""MON-4 alarm drill: the lab's moto bridge (alarm actions), the drill end to end on the lab,
mutations, SIGKILL + recover."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from labcli import lab_cli_env as _env

from pgproof.faults import aws_alarm
from pgproof.faults.aws_alarm import AwsConn
from pgproof.faults.record import FaultRecord
from pgproof.gameday import alarm_drill
from pgproof.lab.aws_twin import AwsTwin, lab_files
from pgproof.lab.state import LabState
from pgproof.report.history import append_gameday
from pgproof.target import Target

REPO = Path(__file__).resolve().parent.parent


# -- the bridge, in-process moto ----------------------------------------------------------------
@pytest.mark.slow
def test_bridge_publishes_on_transitions_with_actions_enabled_only(monkeypatch: pytest.MonkeyPatch,
                                                                   tmp_path: Path) -> None:
    """The one bridge module the lab's moto runs (also the failover/SG bridge) publishes alarm actions."""
    from moto import mock_aws
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.rds import models as rds_models
    from moto.rds.responses import RDSResponse

    from pgproof.lab import aws_bridge

    for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(k, v)
    # restored after the test: other in-process moto tests get plain moto back
    monkeypatch.setattr(CloudWatchBackend, "set_alarm_state", CloudWatchBackend.set_alarm_state)
    monkeypatch.setattr(RDSResponse, "reboot_db_instance", RDSResponse.reboot_db_instance)
    for seam in ("authorize_security_group_ingress", "revoke_security_group_ingress"):
        monkeypatch.setattr(SecurityGroupBackend, seam, getattr(SecurityGroupBackend, seam))
    monkeypatch.setattr(rds_models.Event, "EVENT_MAP", dict(rds_models.Event.EVENT_MAP))
    bridge = aws_bridge.Bridge(tmp_path, 0)  # no lab here: the RDS/SG seams stay inactive
    aws_bridge.install(bridge)
    aws_bridge.install(bridge)  # idempotent: one wrap, one message per transition
    with mock_aws():
        ec2 = boto3.client("ec2", region_name="us-east-1")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        sg = ec2.create_security_group(GroupName="db", Description="db", VpcId=vpc)["GroupId"]
        perm = [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                 "IpRanges": [{"CidrIp": "10.9.1.0/24"}]}]
        ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perm)  # SG seam, no lab
        ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=perm)
        assert not bridge.cut
        kw = {"region_name": "us-east-1"}
        sns, sqs, cw = (boto3.client(s, **kw) for s in ("sns", "sqs", "cloudwatch"))  # type: ignore[call-overload]
        topic = sns.create_topic(Name="t")["TopicArn"]
        cw.put_metric_alarm(AlarmName="a", Namespace="AWS/RDS", MetricName="CPUUtilization",
                            Period=60, EvaluationPeriods=1, Statistic="Average", Threshold=1.0,
                            ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic],
                            OKActions=[topic])
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        qarn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=qarn)

        def bodies() -> list[str]:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for m in got.get("Messages", []):
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            return [m["Body"] for m in got.get("Messages", [])]

        cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="drill")
        got = bodies()
        assert len(got) == 1 and alarm_drill.is_alarm_notification(got[0], "a")
        assert json.loads(json.loads(got[0])["Message"])["OldStateValue"] == "OK"
        cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="again")  # no transition
        assert bodies() == []
        cw.set_alarm_state(AlarmName="a", StateValue="OK", StateReason="back")  # OKActions
        got = bodies()
        assert len(got) == 1 and not alarm_drill.is_alarm_notification(got[0], "a")
        cw.disable_alarm_actions(AlarmNames=["a"])
        cw.set_alarm_state(AlarmName="a", StateValue="ALARM", StateReason="disabled")
        assert bodies() == []


def test_history_keeps_the_worst_verdict_of_a_control_judged_per_alarm(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    j = {"target": "t", "scenario": "alarm-drill", "verdict": "fail", "ended_at": 1.0,
         "verdicts": [{"id": "MON-4", "verdict": v} for v in ("pass", "fail", "pass")]}
    assert append_gameday(out, j)["verdicts"] == {"MON-4": "fail"}


@pytest.mark.slow
def test_aws_only_target_is_not_refused_for_want_of_postgres(tmp_path: Path) -> None:
    """The drill needs only [aws] (a CI runner outside the VPC); other game days need [postgres]."""
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.ci]\nenvironment = "staging"\n[targets.ci.aws]\nregion = "us-east-1"\n'
                   'endpoint_url = "http://127.0.0.1:9"\n[targets.ci.chaos]\nallowed = true\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")

    def cli(scenario: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "pgproof.cli", "gameday", scenario, "--target",
                               "ci", "--config", str(cfg), "--dry-run"], capture_output=True,
                              text=True, env=env, cwd=REPO, timeout=120)

    drill, kill = cli("alarm-drill"), cli("kill-primary")
    assert "no [postgres] section" not in drill.stderr, drill.stderr  # refused later: no API at :9
    assert kill.returncode == 2 and "no [postgres] section" in kill.stderr, kill.stderr


# -- on the lab ---------------------------------------------------------------------------------
def _cli(lab: LabState, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgproof.cli", *args], capture_output=True,
                          text=True, env=_env(lab), cwd=REPO, timeout=timeout)


@pytest.fixture()
def conn(lab_target: Target) -> AwsConn:
    assert lab_target.aws is not None
    return AwsConn.of(lab_target.aws)


@pytest.fixture()
def twin(lab: LabState) -> AwsTwin:
    return AwsTwin.load(lab_files(lab.state_dir)[1])


def _alarm(conn: AwsConn, name: str) -> dict[str, Any]:
    return conn.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]


def _drill_queues(conn: AwsConn) -> list[str]:
    return conn.client("sqs").list_queues(QueueNamePrefix="pgproof-drill-").get("QueueUrls", [])


def _topic_endpoints(conn: AwsConn, topic: str) -> list[str]:
    subs = conn.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    return sorted(s["Endpoint"] for s in subs)


def _assert_clean(conn: AwsConn, twin: AwsTwin) -> None:
    assert _drill_queues(conn) == []
    assert _topic_endpoints(conn, twin.sns_topic_arn) == [twin.alarm_email]
    for name in twin.alarm_names:
        a = _alarm(conn, name)
        assert a["StateValue"] == "OK" and a["StateReason"] != aws_alarm.DRILL_REASON, a


def test_drill_on_the_lab_delivers_every_alarm_and_leaves_nothing(lab_target: Target, conn: AwsConn,
                                                                   twin: AwsTwin, tmp_path: Path) -> None:
    j, out = alarm_drill.run(lab_target, reports=tmp_path, echo=lambda _: None)
    assert out is not None and j.verdict == "pass", j.verdicts
    assert sorted(v["evidence"].split(":")[0] for v in j.verdicts) == sorted(twin.alarm_names)
    assert all(v["id"] == "MON-4" and "delivered in" in v["evidence"] for v in j.verdicts)
    assert all(r["delivered_s"] is not None and r["delivered_s"] < 60 for r in j.measurements["alarms"])
    assert j.steady_state_after and j.steady_state_after["ok"], j.steady_state_after
    assert {p.name for p in out.iterdir()} >= {"journal.json", "report.md", "report.html"}
    md = (out / "report.md").read_text()
    assert "MON-4" in md and "delivered in" in md
    assert "only real AWS proves the delivery latency" in md  # the twin says what it proves
    line = json.loads((tmp_path / "history.jsonl").read_text().splitlines()[-1])
    assert line["scenario"] == "alarm-drill" and line["verdicts"] == {"MON-4": "pass"}
    assert FaultRecord.load(lab_target) is None
    _assert_clean(conn, twin)


@contextlib.contextmanager
def _actions_disabled(conn: AwsConn, name: str) -> Iterator[None]:
    cw = conn.client("cloudwatch")
    cw.disable_alarm_actions(AlarmNames=[name])
    try:
        yield
    finally:
        cw.enable_alarm_actions(AlarmNames=[name])


@contextlib.contextmanager
def _action_topic_deleted(conn: AwsConn, twin: AwsTwin, name: str) -> Iterator[None]:
    """Point one alarm at a topic, then delete the topic (a dangling action); heal re-puts the spec."""
    from pgproof.lab.aws_spec import alarm_specs

    spec = next(s for s in alarm_specs(twin) if s["AlarmName"] == name)
    sns, cw = conn.client("sns"), conn.client("cloudwatch")
    doomed = sns.create_topic(Name="pgproof-test-doomed")["TopicArn"]
    cw.put_metric_alarm(**{**spec, "AlarmActions": [doomed]})
    sns.delete_topic(TopicArn=doomed)
    try:
        yield
    finally:
        cw.put_metric_alarm(**spec)


def test_mutations_fail_mon4_for_the_broken_alarm_only(lab_target: Target, conn: AwsConn,
                                                      twin: AwsTwin, tmp_path: Path) -> None:
    silent, dangling = twin.alarm_names[0], twin.alarm_names[1]
    with _actions_disabled(conn, silent), _action_topic_deleted(conn, twin, dangling):
        j, _ = alarm_drill.run(lab_target, reports=tmp_path, budget_s=4, echo=lambda _: None,
                               alarms=[silent, dangling, twin.alarm_names[2]])
    by = {v["evidence"].split(":")[0]: v for v in j.verdicts}
    assert j.verdict == "fail"
    assert by[silent]["verdict"] == "fail" and "not delivered within 4 s" in by[silent]["evidence"]
    assert "actions are disabled" in by[silent]["evidence"]
    assert by[dangling]["verdict"] == "fail" and "does not exist" in by[dangling]["evidence"]
    assert by[twin.alarm_names[2]]["verdict"] == "pass"
    assert json.loads((tmp_path / "history.jsonl").read_text().splitlines()[-1])["verdicts"] == {"MON-4": "fail"}
    _assert_clean(conn, twin)


def test_unknown_alarm_is_bad_input(lab: LabState, tmp_path: Path) -> None:
    r = _cli(lab, "gameday", "alarm-drill", "--target", "lab", "--reports", str(tmp_path),
             "--alarm", "no-such-alarm")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "alarm 'no-such-alarm' is not one of target 'lab'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_sigkill_mid_drill_then_recover_removes_queue_subscription_and_restores_state(
        lab: LabState, lab_target: Target, conn: AwsConn, twin: AwsTwin, tmp_path: Path) -> None:
    name = twin.alarm_names[0]
    with _actions_disabled(conn, name):  # nothing arrives: the drill waits its 60 s budget
        proc = subprocess.Popen([sys.executable, "-m", "pgproof.cli", "gameday", "alarm-drill",
                                 "--target", "lab", "--reports", str(tmp_path), "--alarm", name],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=_env(lab), cwd=REPO)
        seen = []
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            if "set to ALARM" in line:
                time.sleep(1.0)
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(30)
        assert proc.returncode == -signal.SIGKILL, "".join(seen)
        rec = FaultRecord.load(lab_target)
        assert rec is not None and not rec.owner_alive()
        assert [f["kind"] for f in rec.faults] == list(aws_alarm.KINDS)
        assert len(_drill_queues(conn)) == 1 and len(_topic_endpoints(conn, twin.sns_topic_arn)) == 2
        assert _alarm(conn, name)["StateValue"] == "ALARM"
        status = _cli(lab, "gameday", "alarm-drill", "--target", "lab", "--dry-run")
        assert status.returncode == 2 and "ORPHANED FAULT" in status.stderr, status.stderr

        r = _cli(lab, "gameday", "recover", "--target", "lab")
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"alarm {name} set back to OK" in r.stdout and "deleted" in r.stdout
    assert FaultRecord.load(lab_target) is None
    _assert_clean(conn, twin)
    journal = json.loads(next(tmp_path.glob("*-alarm-drill/journal.json")).read_text())
    assert journal["interrupted"] is True and journal["recovery"]["ok"] is True
    again = _cli(lab, "gameday", "recover", "--target", "lab")
    assert again.returncode == 0 and "nothing to recover" in again.stdout
