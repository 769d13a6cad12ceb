"""MNT-1: PostgreSQL 15.x with automatic minor upgrades."""

from __future__ import annotations

import pytest

from pgproof.checks import aws_ops as aws_checks
from pgproof.checks import postgres as judge
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("MNT-1")
def test_engine_version(pg_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(judge.judge_mnt1(pg_facts, target.thresholds), evidence,
           f"server_version={pg_facts.settings.get('server_version')}")


@control("MNT-1")
def test_auto_minor_upgrade(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_mnt1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "MNT-1"))
