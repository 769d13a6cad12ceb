"""The mutation matrix, AWS-twin half: AWS-twin-only mutations through the served twin and the
real entry point (tests/test_matrix.py holds the lab mutations; split so xdist runs both at once).

Every AWS mutation is judged in-process on the same twin shape by
tests/test_aws.py::TestTwin::test_mutation_matrix (fails exactly its controls, nothing else
moves, heal restores the verdicts and the state). Here one mutation per AWS service or path
the twin's mutations take runs through ``pytest suites --target lab``: the served twin, the
whole target (live layers too) and results.json. The other 22 served runs repeated the
in-process assertions at ~6-10 s each of CI.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from matrixlib import assert_fails_exactly, healthy_run, twin_mutations

from pgproof.lab.aws_mutations import AWS_MUTATIONS
from pgproof.lab.state import LabState

pytestmark = pytest.mark.stage("matrix")

THROUGH_THE_ENTRY_POINT = (
    "publicly-accessible", "backups-off",   # RDS instance attributes
    "kms-key-disabled",                     # KMS
    "bucket-public",                        # S3
    "sg-open-world", "public-subnet-route",  # EC2 security group, route table
    "missing-alarms", "alarm-without-subscriber",  # CloudWatch, SNS
    "rotation-off",                         # Secrets Manager
    "log-retention-off",                    # CloudWatch Logs
    "proxy-tls-off",                        # RDS Proxy
    "no-cross-region-copy",                 # AWS Backup
)


@pytest.fixture(scope="module")
def healthy(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return healthy_run(lab, tmp_path_factory.mktemp("healthy"))


def test_every_twin_mutation_is_judged_in_process() -> None:
    """The served cases are a sample: the in-process matrix of test_aws.py runs every one."""
    assert set(THROUGH_THE_ENTRY_POINT) <= set(twin_mutations()) <= set(AWS_MUTATIONS)


@pytest.mark.parametrize("name", THROUGH_THE_ENTRY_POINT)
def test_twin_mutation_fails_exactly_its_controls(name: str, lab: LabState,
                                                  healthy: dict[str, str], tmp_path: Path) -> None:
    assert_fails_exactly(name, lab, healthy, tmp_path)
