"""BAK-6: a point-in-time restore into a scratch instance brings back exactly the rows up to T."""

from __future__ import annotations

import pytest

from scenarios.conftest import judge

pytestmark = pytest.mark.chaos


@pytest.mark.control("BAK-6")
def test_restore_to_a_point_in_time(run_scenario, evidence) -> None:  # type: ignore[no-untyped-def]
    judge(run_scenario("restore-pitr"), "BAK-6", evidence)
