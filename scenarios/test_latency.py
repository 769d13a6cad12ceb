"""CH-LAT: latency on the client path triggers no failover; p95 returns to baseline."""

from __future__ import annotations

import pytest

from scenarios.conftest import judge

pytestmark = pytest.mark.chaos


@pytest.mark.control("CH-LAT")
def test_latency_no_failover(run_scenario, evidence) -> None:  # type: ignore[no-untyped-def]
    judge(run_scenario("latency"), "CH-LAT", evidence)
