"""``lab-aurora`` end to end: the live lab judged through the AWS twin's Aurora cluster shape.

The same real entry point as the mutation matrix (``pytest suites --target lab-aurora``
in a subprocess, verdicts from results.json): the healthy cluster target must give
the instance target's verdicts (HA-1 may do better: the cluster reports its members'
AZs, where moto's instance lacks ``SecondaryAvailabilityZone``), and AWS-layer mutations,
applied to the cluster, must fail exactly their controls: a sample here through the served
twin, every one in-process in tests/test_aurora.py (the same judges and assertions).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof.catalogue.registry import CATALOGUE
from pgproof.lab import aws_spec, aws_twin
from pgproof.lab.aws_mutations import AWS_MUTATIONS
from pgproof.lab.aws_twin import AwsTwin
from pgproof.lab.state import LabState

pytestmark = pytest.mark.stage("matrix")

REPO = Path(__file__).resolve().parent.parent
PGPROOF = Path(sys.executable).parent / "pgproof"
# Where the cluster shape may judge better than the instance shape on moto (see module doc).
BETTER_ON_CLUSTER = {"HA-1": ("cannot-verify", "pass")}


def run_suites(lab: LabState, reports: Path, target: str, *args: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env["PGPROOF_LAB_TARGET"] = str(lab.target_file)
    env["PGPROOF_CONFIG"] = "/nonexistent/pgproof.toml"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites"), "--target", target, "--reports",
         str(reports), "-q", "-p", "no:cacheprovider", "--tb=no", *args],
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
    # where the catalogue states that RDS and Aurora differ (a setting RDS fixes, a role
    # Aurora does not have), the verdicts may differ: RDS's side must then be "inherited"
    stated = {cid for cid, c in CATALOGUE.items()
              if c.platforms.get("rds") != c.platforms.get("aurora")}
    differ = {c: (rds.get(c), v) for c, v in healthy.items() if rds.get(c) != v}
    assert all(BETTER_ON_CLUSTER.get(c) == pair or (c in stated and "inherited" in pair)
               for c, pair in differ.items()), \
        f"lab-aurora differs from lab-rds (instance, cluster): {differ}"
    assert set(healthy.values()) <= {"pass", "cannot-verify", "skip", "inherited"}, healthy


def _evidence(reports: Path, cid: str) -> str:
    controls = json.loads((reports / "latest" / "results.json").read_text())["controls"]
    return json.dumps([c for c in controls if c["id"] == cid])


def test_mon1_on_the_metrics_aurora_publishes(aurora_lab: LabState, tmp_path: Path) -> None:
    """The healthy cluster alarms on FreeLocalStorage and AuroraReplicaLag and passes MON-1;
    without its FreeLocalStorage alarms MON-1 fails, naming that metric (on main the twin
    alarmed on FreeStorageSpace/ReplicaLag, which Aurora never publishes)."""
    saved = AwsTwin.load(aws_twin.lab_files(aurora_lab.state_dir, aurora=True)[1])
    metrics = {a["MetricName"] for a in aws_spec.alarm_specs(saved)}
    assert {"FreeLocalStorage", "AuroraReplicaLag"} <= metrics, metrics
    assert not metrics & {"FreeStorageSpace", "ReplicaLag"}, metrics
    healthy = run_suites(aurora_lab, tmp_path / "healthy", "lab-aurora", "--control", "MON-1")
    assert healthy["MON-1"] == "pass", _evidence(tmp_path / "healthy", "MON-1")
    m = AWS_MUTATIONS["storage-alarm-missing"]
    aws_twin.run_lab_mutation(aurora_lab, m, "apply", aurora=True)
    try:
        reports = tmp_path / "broken"
        assert run_suites(aurora_lab, reports, "lab-aurora", "--control", "MON-1")["MON-1"] == "fail"
    finally:
        aws_twin.run_lab_mutation(aurora_lab, m, "heal", aurora=True)
    text = (reports / "latest" / "results.json").read_text()
    for member in (saved.db_instance_id, *saved.replica_ids):
        assert f"db-instance {member}: no CloudWatch alarm on AWS/RDS FreeLocalStorage" in text, text


def test_lab_break_shape_aurora_breaks_the_cluster_twin(aurora_lab: LabState, tmp_path: Path) -> None:
    """`pgproof lab break NAME --shape aurora` changes lab-aurora's cluster, not lab-rds's
    instance; `pgproof lab heal` heals the same twin. A live-only mutation is refused."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(PGPROOF), "lab", *args, "--lab-dir", str(aurora_lab.state_dir)],
                              env=env, capture_output=True, text=True, timeout=180)

    r = cli("break", "superuser-app", "--shape", "aurora")
    assert r.returncode == 2 and "changes only the live lab" in r.stderr, (r.stdout, r.stderr)
    assert not (aurora_lab.state_dir / "mutation.json").exists()
    r = cli("break", "deletion-protection-off", "--shape", "aurora")
    assert r.returncode == 0 and "to lab-aurora's cluster" in r.stdout, (r.stdout, r.stderr)
    try:
        broken = run_suites(aurora_lab, tmp_path / "aurora", "lab-aurora", "--control", "BAK-5")
        rds = run_suites(aurora_lab, tmp_path / "rds", "lab-rds", "--control", "BAK-5")
    finally:
        healed = cli("heal")
    assert healed.returncode == 0 and "healed deletion-protection-off" in healed.stdout, healed
    assert (broken["BAK-5"], rds["BAK-5"]) == ("fail", "pass")
    assert run_suites(aurora_lab, tmp_path / "healed", "lab-aurora", "--control", "BAK-5")[
        "BAK-5"] == "pass"


# What the served twin can break and heal: an in-process-only heal (replica-lagging: no
# CloudWatch call deletes a datapoint) left its 120 s lag on the server, and HA-5 failed in
# every case of the next 5 minutes. tests/test_aurora.py runs those on the cluster shape.
SERVED = sorted(n for n, m in AWS_MUTATIONS.items() if not m.in_process_only)
# Through the served twin and the real entry point, one mutation per path the cluster shape
# takes: its cluster parameter group, its security group, a cluster attribute. Every other
# AWS mutation is judged on the same cluster shape in-process, with the same assertions
# (fails exactly its controls, nothing else moves, heal restores):
# tests/test_aurora.py::test_twin_cluster_mutation. 37 served runs cost ~4-10 min of CI.
THROUGH_THE_ENTRY_POINT = ("tls-min-1.0", "sg-open-world", "unencrypted-storage")


def test_served_twin_refuses_an_in_process_only_mutation(aurora_lab: LabState,
                                                         tmp_path: Path) -> None:
    """replica-lagging cannot heal on moto_server: refused before it changes anything, and
    both lab targets' HA-5 stays a pass in both layers (CloudWatch's lag of the readers)."""
    m = AWS_MUTATIONS["replica-lagging"]
    assert m.in_process_only and "replica-lagging" not in SERVED
    for aurora in (True, False):
        with pytest.raises(ValueError, match="heals only against in-process moto"):
            aws_twin.run_lab_mutation(aurora_lab, m, "apply", aurora=aurora)
    for target in ("lab-aurora", "lab-rds"):
        reports = tmp_path / target
        assert run_suites(aurora_lab, reports, target, "--control", "HA-5")["HA-5"] == "pass", \
            _evidence(reports, "HA-5")
        [ha5] = json.loads(_evidence(reports, "HA-5"))
        assert {la["layer"]: la["verdict"] for la in ha5["layers"]} == {
            "sql": "pass", "aws": "pass"}, ha5


def test_every_served_mutation_is_judged_on_the_cluster_in_process() -> None:
    """The served cases below are a sample: test_aurora.py runs every one of them."""
    assert set(THROUGH_THE_ENTRY_POINT) <= set(SERVED) <= set(AWS_MUTATIONS)


@pytest.mark.parametrize("name", THROUGH_THE_ENTRY_POINT)
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
