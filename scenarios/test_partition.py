"""CH-PART: a partitioned primary is replaced in budget and refuses writes afterwards."""

from __future__ import annotations

import pytest

from scenarios.conftest import judge

pytestmark = pytest.mark.chaos


@pytest.mark.control("CH-PART")
def test_partitioned_primary_replaced_without_split_brain(run_scenario, evidence) -> None:  # type: ignore[no-untyped-def]
    judge(run_scenario("partition"), "CH-PART", evidence)
