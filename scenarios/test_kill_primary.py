"""HA-2/3/4/6: crash the primary under load (synchronous replication)."""

from __future__ import annotations

import pytest

from scenarios.conftest import judge

pytestmark = pytest.mark.chaos


@pytest.fixture(scope="module")
def journal(run_scenario):  # type: ignore[no-untyped-def]
    return run_scenario("kill-primary")


@pytest.mark.control("HA-2")
def test_failover_within_budget(journal, evidence) -> None:  # type: ignore[no-untyped-def]
    judge(journal, "HA-2", evidence)


@pytest.mark.control("HA-3")
def test_no_acknowledged_write_lost(journal, evidence) -> None:  # type: ignore[no-untyped-def]
    judge(journal, "HA-3", evidence)


@pytest.mark.control("HA-4")
def test_load_recovers_without_restart(journal, evidence) -> None:  # type: ignore[no-untyped-def]
    judge(journal, "HA-4", evidence)


@pytest.mark.control("HA-6")
def test_cluster_heals(journal, evidence) -> None:  # type: ignore[no-untyped-def]
    judge(journal, "HA-6", evidence)
