"""``lab-aurora`` end to end: the live lab judged through the AWS twin's Aurora cluster shape.

The same real entry point as the mutation matrix (``pytest suites --target lab-aurora``
in a subprocess, verdicts from results.json): the healthy cluster target must give
the instance target's verdicts (HA-1 may do better: the cluster reports its members'
AZs, where moto's instance lacks ``SecondaryAvailabilityZone``), and every AWS-layer
mutation, applied to the cluster, must fail exactly its controls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof.lab import aws_twin
from pgproof.lab.aws_mutations import AWS_MUTATIONS
from pgproof.lab.state import LabState

pytestmark = pytest.mark.stage("matrix")

REPO = Path(__file__).resolve().parent.parent
# Where the cluster shape may judge better than the instance shape on moto (see module doc).
BETTER_ON_CLUSTER = {"HA-1": ("cannot-verify", "pass")}


def run_suites(lab: LabState, reports: Path, target: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env["PGPROOF_LAB_TARGET"] = str(lab.target_file)
    env["PGPROOF_CONFIG"] = "/nonexistent/pgproof.toml"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites"), "--target", target, "--reports",
         str(reports), "-q", "-p", "no:cacheprovider", "--tb=no"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    latest = reports / "latest" / "results.json"
    assert latest.exists(), f"{target}: no results.json\n" + r.stdout[-2000:] + r.stderr[-2000:]
    return {c["id"]: c["verdict"] for c in json.loads(latest.read_text())["controls"]}


@pytest.fixture(scope="module")
def aurora_lab(lab: LabState) -> LabState:
    if not lab.aws_aurora:
        pytest.skip("the lab runs without its AWS twin (lab up --no-aws)")
    return lab


@pytest.fixture(scope="module")
def healthy(aurora_lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return run_suites(aurora_lab, tmp_path_factory.mktemp("aurora-healthy"), "lab-aurora")


def test_lab_aurora_target_names_the_cluster(aurora_lab: LabState) -> None:
    text = aurora_lab.target_file.with_name("target-lab-aurora.toml").read_text()
    assert f'db_cluster_id = "{aws_twin.AURORA_NAME}"' in text and "db_instance_id" not in text


def test_healthy_cluster_matches_the_instance_shape(aurora_lab: LabState, healthy: dict[str, str],
                                                    tmp_path: Path) -> None:
    rds = run_suites(aurora_lab, tmp_path, "lab-rds")
    differ = {c: (rds.get(c), v) for c, v in healthy.items() if rds.get(c) != v}
    assert all(BETTER_ON_CLUSTER.get(c) == pair for c, pair in differ.items()), \
        f"lab-aurora differs from lab-rds (instance, cluster): {differ}"
    assert set(healthy.values()) <= {"pass", "cannot-verify", "skip"}, healthy


@pytest.mark.parametrize("name", sorted(AWS_MUTATIONS))
def test_cluster_mutation_fails_exactly_its_controls(name: str, aurora_lab: LabState,
                                                     healthy: dict[str, str], tmp_path: Path) -> None:
    m = AWS_MUTATIONS[name]
    aws_twin.run_lab_mutation(aurora_lab, m, "apply", aurora=True)
    try:
        broken = run_suites(aurora_lab, tmp_path, "lab-aurora")
    finally:
        aws_twin.run_lab_mutation(aurora_lab, m, "heal", aurora=True)
    failed = {c for c, v in broken.items() if v == "fail"}
    assert failed == set(m.breaks), f"{name} on the cluster: expected {sorted(m.breaks)} to fail, " \
                                    f"got {sorted(failed)}"
    changed = {c: (healthy[c], v) for c, v in broken.items()
               if c not in m.breaks and v != healthy.get(c)}
    assert not changed, f"{name} on the cluster: other controls changed: {changed}"
