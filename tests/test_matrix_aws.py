"""The mutation matrix, AWS-twin half: each mutation of the AWS twin alone fails exactly its
controls (tests/test_matrix.py holds the lab mutations; split so xdist runs both at once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from matrixlib import assert_fails_exactly, healthy_run, twin_mutations

from pgproof.lab.state import LabState

pytestmark = pytest.mark.stage("matrix")


@pytest.fixture(scope="module")
def healthy(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return healthy_run(lab, tmp_path_factory.mktemp("healthy"))


@pytest.mark.parametrize("name", twin_mutations())
def test_twin_mutation_fails_exactly_its_controls(name: str, lab: LabState,
                                                  healthy: dict[str, str], tmp_path: Path) -> None:
    assert_fails_exactly(name, lab, healthy, tmp_path)
