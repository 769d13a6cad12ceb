"""MON-1..MON-3: alarms that page, deep monitoring, the health endpoint contract."""

from __future__ import annotations

import pytest

from pgproof.checks import aws_ops as aws_checks
from pgproof.checks import live
from pgproof.checks import postgres as judge
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("MON-1")
def test_alarms_with_subscribers(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_mon1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "MON-1"))


@control("MON-2")
def test_enhanced_monitoring_and_insights(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_mon2(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "MON-2"))


@control("MON-2")
def test_slow_query_logging(pg_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(judge.judge_mon2_slow_query(pg_facts), evidence,
           f"log_min_duration_statement={pg_facts.settings.get('log_min_duration_statement')}")


@control("MON-3")
def test_health_endpoint_contract(health_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(live.judge_mon3(health_facts), evidence, f"{health_facts.url}: {health_facts.body}")
