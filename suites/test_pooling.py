"""POOL-1: the pooler's size, idle timeout and health checks."""

from __future__ import annotations

import pytest

from pgproof.checks import live
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("POOL-1")
def test_pgbouncer_pool_configured(pooler_facts, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    c = pooler_facts.config
    expect(live.judge_pool1_pgbouncer(pooler_facts, target.thresholds), evidence,
           f"default_pool_size={c.get('default_pool_size')}, server_idle_timeout="
           f"{c.get('server_idle_timeout')}, server_check_delay={c.get('server_check_delay')}")
