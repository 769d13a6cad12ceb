"""CH-FORCE: failover through the control plane meets HA-2 and HA-3."""

from __future__ import annotations

import pytest

from scenarios.conftest import judge

pytestmark = pytest.mark.chaos


@pytest.mark.control("CH-FORCE")
def test_control_plane_failover(run_scenario, evidence) -> None:  # type: ignore[no-untyped-def]
    judge(run_scenario("force-failover"), "CH-FORCE", evidence)
