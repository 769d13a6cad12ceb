"""The mutation matrix's shared steps: a suites run against the lab, and one mutation judged.

The matrix is split over modules (lab mutations in tests/test_matrix.py, AWS-twin-only ones in
tests/test_matrix_aws.py) so that xdist runs them on separate labs at the same time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof.lab import mutations
from pgproof.lab.state import LabState

REPO = Path(__file__).resolve().parent.parent


def run_suites(lab: LabState, reports: Path, *extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env["PGPROOF_LAB_TARGET"] = str(lab.target_file)
    env["PGPROOF_CONFIG"] = "/nonexistent/pgproof.toml"
    r = subprocess.run(
        [sys.executable, "-m", "pytest", str(REPO / "suites"), "--target", "lab", "--reports",
         str(reports), "-q", "-p", "no:cacheprovider", "--tb=no", *extra],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    latest = reports / "latest" / "results.json"
    assert latest.exists(), r.stdout[-2000:] + r.stderr[-2000:]
    doc = json.loads(latest.read_text())
    return {c["id"]: c["verdict"] for c in doc["controls"]}


def healthy_run(lab: LabState, reports: Path) -> dict[str, str]:
    """The healthy lab's verdicts, once its first full backup is there."""
    from pgproof.lab import backup

    backup.wait_ready(lab)  # the first full backup runs in the background after `lab up`
    return run_suites(lab, reports)


def lab_mutations() -> list[str]:
    return sorted(n for n, m in mutations.catalogue().items() if m.live_break is not None)


def twin_mutations() -> list[str]:
    return sorted(n for n, m in mutations.catalogue().items() if m.live_break is None)


def assert_fails_exactly(name: str, lab: LabState, healthy: dict[str, str], tmp_path: Path) -> None:
    """Mutation ``name`` fails exactly its controls, and no other control's verdict moves."""
    m = mutations.catalogue()[name]
    if m.live_break is None and not lab.aws:
        pytest.skip("AWS twin not running")
    mutations.apply(lab.state_dir, name)
    try:
        broken = run_suites(lab, tmp_path)
    finally:
        mutations.heal(lab.state_dir)
    failed = {c for c, v in broken.items() if v == "fail"}
    assert failed == set(m.breaks), f"{name}: expected {sorted(m.breaks)} to fail, got {sorted(failed)}"
    changed = {c: (healthy[c], v) for c, v in broken.items()
               if c not in m.breaks and v != healthy.get(c)}
    assert not changed, f"{name}: other controls changed: {changed}"
