"""HA-1 and HA-5: Multi-AZ, replicas read-only and fresh."""

from __future__ import annotations

import pytest

from pgproof.checks import aws_ops as aws_checks
from pgproof.checks import postgres as judge
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("HA-1")
def test_multi_az(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_ha1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "HA-1"))


@control("HA-5")
def test_replicas_read_only_and_fresh(pg_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(judge.judge_ha5(pg_facts, target.thresholds), evidence,
           "; ".join(f"{r.endpoint}: read-only, lag {r.lag_s}" for r in pg_facts.replicas))
