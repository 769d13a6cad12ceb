"""AUDIT-1: pgaudit loaded and logging, connections logged, logs exported with retention."""

from __future__ import annotations

import pytest

from pgproof.checks import aws_ops as aws_checks
from pgproof.checks import postgres as judge
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("AUDIT-1")
def test_pgaudit_and_connection_logging(pg_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(judge.judge_audit1(pg_facts), evidence,
           f"pgaudit.log={pg_facts.pgaudit_log}; log_connections="
           f"{pg_facts.settings.get('log_connections')}")


@control("AUDIT-1")
def test_logs_exported_with_retention(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_audit1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "AUDIT-1"))
