"""A control inherited on the target's platform reads `inherited` end to end, on the real lab.

A plug-in control (one module, registered like any other) judges a SQL fact and says it is the
provider's on RDS. Checked against the lab as it is (self-managed) it passes; against the same
lab stated as `platform = "rds"` it reads `inherited` in results.json, summary.html, junit.xml,
SARIF, OCSF, ASFF-free runs' drift and the CIS framework report, and the exit code stays 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof.lab.state import LabState

pytestmark = pytest.mark.stage("suites")

REPO = Path(__file__).resolve().parent.parent
WORDS = ("Amazon RDS only allows the following value for log_line_prefix (https://docs.aws."
         "amazon.com/AmazonRDS/latest/UserGuide/USER_LogAccess.Concepts.PostgreSQL.html)")
PLUGIN = f'''\
"""ZZ-IN: a SQL-judged control the provider owns on RDS (a test of the inherited verdict)."""

from pgproof.catalogue.build import check, control, inherited


def prefix_named(pg_facts):
    return [] if pg_facts.role else ["no role"]


CONTROLS = (control(
    "ZZ-IN", "Provider-owned log prefix (test)", "The log prefix names who and where.",
    "Nothing to do on RDS.", severity="low", hipaa=("164.312(b)",), cis=("3.1.24",),
    checks=(check("sql", prefix_named, "pg_facts", evidence=lambda f: f"role {{f.role}}"),),
    platforms={{"rds": inherited({WORDS!r})}}),)
'''


def _plugin(tmp: Path) -> Path:
    plug = tmp / "plug"
    (plug / "zz_inherited-0.dist-info").mkdir(parents=True)
    (plug / "zz_inherited.py").write_text(PLUGIN)
    (plug / "zz_inherited-0.dist-info" / "METADATA").write_text("Name: zz-inherited\nVersion: 0\n")
    (plug / "zz_inherited-0.dist-info" / "entry_points.txt").write_text(
        "[pgproof.controls]\nzz = zz_inherited\n")
    return plug


def _check(target_file: Path, reports: Path, plug: Path, *extra: str
           ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env.update(PGPROOF_LAB_TARGET=str(target_file), PGPROOF_CONFIG="/nonexistent",
               PYTHONPATH=str(plug))
    return subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", "lab",
                           "--control", "ZZ-IN,TLS-1", "--reports", str(reports), *extra],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def test_an_inherited_control_reads_inherited_in_every_output(lab: LabState, tmp_path: Path) -> None:
    plug, reports = _plugin(tmp_path), tmp_path / "reports"
    text = lab.target_file.read_text()
    assert 'platform = "self-managed"' in text  # the lab says what it is
    r = _check(lab.target_file, reports, plug)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    first = json.loads((reports / "latest" / "results.json").read_text())
    verdicts = {c["id"]: c["verdict"] for c in first["controls"]}
    assert verdicts["ZZ-IN"] == "pass" and first["platform"] == "self-managed", verdicts

    as_rds = tmp_path / "target-rds.toml"
    as_rds.write_text(text.replace('platform = "self-managed"', 'platform = "rds"'))
    r = _check(as_rds, reports, plug, "--framework", "cis")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr  # inherited is no failure
    d = reports / "latest"
    doc = json.loads((d / "results.json").read_text())
    zz = next(c for c in doc["controls"] if c["id"] == "ZZ-IN")
    assert doc["platform"] == "rds" and zz["verdict"] == "inherited", zz
    assert "Amazon RDS only allows" in zz["checks"][0]["evidence"]
    assert next(c for c in doc["controls"] if c["id"] == "TLS-1")["verdict"] == "pass"
    assert "INHERITED" in r.stdout and "ZZ-IN" in r.stdout  # the terminal's control lines
    assert "<td>INHERITED</td>" in (d / "summary.html").read_text()
    junit = (d / "junit.xml").read_text()
    assert "test_control[ZZ-IN-sql]" in junit and "inherited: on rds: Amazon RDS" in junit
    notes = json.loads((d / "results.sarif").read_text())["runs"][0]["invocations"][0][
        "toolExecutionNotifications"]
    assert any(n["descriptor"]["id"] == "ZZ-IN" and n["level"] == "note" for n in notes)
    ocsf = {f["metadata"]["event_code"]: f for f in json.loads((d / "findings.ocsf.json").read_text())}
    assert ocsf["ZZ-IN"]["status_code"] == "INHERITED"
    cis = json.loads((d / "framework-cis.json").read_text())
    req = next(q for q in cis["requirements"] if q["id"] == "3.1.24")
    assert {c["id"]: c["verdict"] for c in req["controls"]}["ZZ-IN"] == "inherited"
    drift = subprocess.run([sys.executable, "-m", "pgproof.cli", "drift", "--target", "lab",
                            "--reports", str(reports)], capture_output=True, text=True,
                           cwd=REPO, timeout=120,
                           env={**os.environ, "PGPROOF_LAB_TARGET": str(as_rds),
                                "PGPROOF_CONFIG": "/nonexistent", "PYTHONPATH": str(plug)})
    assert "ZZ-IN" in drift.stdout and "inherited" in drift.stdout, drift.stdout + drift.stderr
