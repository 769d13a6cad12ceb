"""``pgproof check --target lab-azure``: the live cluster judged with live and Azure layers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof.catalogue.registry import judges
from pgproof.lab.state import LabState

JUDGES = judges("azure")
pytestmark = pytest.mark.stage("suites")

REPO = Path(__file__).resolve().parent.parent


def test_lab_azure_judges_every_azure_control(lab: LabState, tmp_path: Path) -> None:
    if not lab.azure:
        pytest.skip("lab started without the Azure twin (--cloud azure|both)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "PG"))}
    env.update(PGPROOF_LAB_TARGET=str(lab.target_file), PGPROOF_CONFIG="/nonexistent/pgproof.toml")
    r = subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", "lab-azure",
                        "--reports", str(tmp_path)], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=240)
    doc = json.loads(next(tmp_path.glob("*/results.json")).read_text())
    azure = {c["id"]: [k["verdict"] for k in c["checks"] if k["check"].endswith("-azure]")]
             for c in doc["controls"]}
    assert {cid for cid, v in azure.items() if v} == set(JUDGES), r.stdout[-2000:]
    bad = {cid: v for cid, v in azure.items() if v and v != ["pass"] and cid != "TLS-4"}
    assert not bad, bad
    assert azure["TLS-4"] == ["cannot-verify"]
    live = {c["id"]: [k["verdict"] for k in c["checks"] if not k["check"].endswith("-azure]")]
            for c in doc["controls"]}
    assert "pass" in live["TLS-1"] and "pass" in live["AUDIT-1"]  # live layers judged alongside
