"""BAK-1..BAK-5: retention, point-in-time recovery, geo copies, archive, deletion protection."""

from __future__ import annotations

import pytest

from pgproof.checks import aws_ops as aws_checks
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("BAK-1")
def test_retention_within_bounds(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-1"))


@control("BAK-2")
def test_point_in_time_recovery_fresh(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak2(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-2"))


@control("BAK-3")
def test_cross_region_copies(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak3(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-3"))


@control("BAK-4")
def test_long_term_archive(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak4(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-4"))


@control("BAK-5")
def test_deletion_protection(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_bak5(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "BAK-5"))
