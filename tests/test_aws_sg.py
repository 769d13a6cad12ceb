"""The security-group blackhole (aws driver partition) against in-process moto: exactly the app
tier's rules are revoked, the same rules come back (compared rule by rule), the revoked rules are
on disk before the revoke, and ``recover`` re-authorizes them after the runner is gone."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from pgproof.faults import aws_sg, record
from pgproof.faults.aws import AwsDriver
from pgproof.gameday.recover import recover
from pgproof.lab import aws_twin
from pgproof.target import Target, parse_target

REGION = "us-east-1"


@pytest.fixture
def twin(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[aws_twin.AwsTwin]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("PGPROOF_FAULTS_DIR", str(tmp_path / "faults"))
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(k, "testing")
    with mock_aws():
        yield aws_twin.provision(clients=aws_twin.connect(REGION), with_proxy=False)


def _target(twin: aws_twin.AwsTwin, **chaos: Any) -> Target:
    return parse_target("rds-staging", {
        "postgres": {"writer": {"host": "db.invalid", "port": 5432}, "user": "pgproof"},
        "aws": {"region": REGION, **twin.aws_section()},
        "chaos": {"allowed": True, "driver": "aws", **chaos}}, "test")


def _extra_rules(d: AwsDriver, twin: aws_twin.AwsTwin) -> None:
    """Rules the blackhole must leave alone: another port, another CIDR; and one it must take."""
    d.ec2.authorize_security_group_ingress(GroupId=twin.db_security_group_id, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "UserIdGroupPairs": [{"GroupId": twin.app_security_group_ids[0]}]},
        {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
         "IpRanges": [{"CidrIp": "10.9.0.0/16", "Description": "vpn"},
                      {"CidrIp": "10.42.100.0/24", "Description": "app subnet"}]}])


@pytest.mark.slow
def test_blackhole_revokes_exactly_the_app_rules_and_restores_them(twin: aws_twin.AwsTwin,
                                                                   tmp_path: Path) -> None:
    t = _target(twin, app_cidrs=["10.42.100.16/28"], duration_s=60)
    d = AwsDriver(t)
    _extra_rules(d, twin)
    groups = d.db_security_groups()[0]
    before = aws_sg.snapshot(d.ec2, groups)
    rec = record.FaultRecord.create(t, "r1", "partition", None)
    with record.activate(rec), d.partition_primary():
        during = aws_sg.snapshot(d.ec2, groups)
        on_disk = record.FaultRecord.load(t)
        assert on_disk is not None and on_disk.faults[0]["kind"] == "sg_ingress_revoked"
    gone = sorted(set(before) - set(during))
    assert len(gone) == 2 and set(during) < set(before)
    assert any(twin.app_security_group_ids[0] in g and "5432" in g for g in gone)
    assert any("10.42.100.0/24" in g for g in gone)  # overlaps the app CIDR
    assert not any("10.9.0.0/16" in g or '"FromPort": 22' in g for g in gone)
    assert aws_sg.snapshot(d.ec2, groups) == before  # rule by rule, descriptions included
    assert record.FaultRecord.load(t).faults == []  # type: ignore[union-attr]
    assert rec.close()


@pytest.mark.slow
def test_blackhole_heals_itself_after_the_hold(twin: aws_twin.AwsTwin) -> None:
    d = AwsDriver(_target(twin, duration_s=0.5))
    groups = d.db_security_groups()[0]
    before = aws_sg.snapshot(d.ec2, groups)
    with d.partition_primary():
        assert aws_sg.snapshot(d.ec2, groups) != before
        deadline = time.monotonic() + 15
        while aws_sg.snapshot(d.ec2, groups) != before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert aws_sg.snapshot(d.ec2, groups) == before  # restored by the timer, inside the block
    assert aws_sg.snapshot(d.ec2, groups) == before  # the undo is idempotent


@pytest.mark.slow
def test_recover_reauthorizes_what_a_dead_runner_revoked(twin: aws_twin.AwsTwin) -> None:
    t = _target(twin)
    d = AwsDriver(t)
    groups = d.db_security_groups()[0]
    before = aws_sg.snapshot(d.ec2, groups)
    rules = d.app_rules()
    rec = record.FaultRecord.create(t, "r1", "partition", None)
    rec.add_fault("sg_ingress_revoked", {"rules": rules}, "ingress revoked", "authorize")
    aws_sg.revoke(d.ec2, rules)  # what the runner did before it was SIGKILLed
    rec.data["owner"] = {"pid": 1, "start": -1}  # not the live PID 1: the owner is gone
    rec.save()
    lines: list[str] = []
    assert recover(t, echo=lines.append) == 0, lines
    assert aws_sg.snapshot(d.ec2, groups) == before
    assert any("re-authorized 1 ingress rule" in x for x in lines), lines
    # Idempotent: the rules are already back.
    assert d.undo_recorded("sg_ingress_revoked", {"rules": rules}) == \
        "every recorded ingress rule is already in place"


@pytest.mark.slow
def test_no_rule_admitting_the_app_tier_is_refused_before_anything_changes(
        twin: aws_twin.AwsTwin) -> None:
    d = AwsDriver(_target(twin))
    aws_sg.revoke(d.ec2, d.app_rules())
    before = aws_sg.snapshot(d.ec2, d.db_security_groups()[0])
    with pytest.raises(RuntimeError, match="admits the app tier on port 5432: nothing to revoke"):
        d.partition_primary()
    assert aws_sg.snapshot(d.ec2, d.db_security_groups()[0]) == before
