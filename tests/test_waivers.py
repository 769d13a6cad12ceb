"""Waivers: validated as bad input, judged by date, shown as waived (never pass) everywhere.

Bad waivers go through the real CLI (one sentence, exit 2, no report). The judging and the
writers run on per-control results and are checked against the same published schemas as
tests/test_outputs.py. End to end: a lab mutation makes AUTH-4 fail, a config file defines
a target pointing at the lab with a valid waiver (exit 0, waived) and an expired one
(exit 1, "waiver expired on ...").
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator
from labcli import lab_target_as, lab_waived
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from sarif_kit.validate import validation_errors

from pgproof.lab import mutations
from pgproof.lab.state import LabState
from pgproof.report import asff, ocsf, sarif
from pgproof.report.findings import Run
from pgproof.report.results import CheckResult, aggregate, apply_waivers, exit_code
from pgproof.target import parse_target
from pgproof.verdict import Verdict
from pgproof.waivers import Waiver

REPO = Path(__file__).resolve().parent.parent
AUTH4_CHECK = "suites/test_controls.py::test_control[AUTH-4-source]"
TODAY = dt.date(2026, 6, 1)


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    return subprocess.run([sys.executable, "-m", "pgproof.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=300, env={**clean, **env})


# --- bad input: one sentence naming the field, exit 2, nothing written ---------------------

TARGET = '[targets.t.postgres]\nwriter = { host = "127.0.0.1", port = 1 }\nuser = "x"\n'
GOOD = {"control": '"AUTH-4"', "justification": '"legacy app until CHG-1"',
        "owner": '"dba@example.com"', "expires": "2099-01-01"}


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"justification": None}, "justification", "Field required"),
    ({"owner": None}, "owner", "Field required"),
    ({"justification": '"  "'}, "justification", "must not be empty"),
    ({"expires": '"2027-02-30"'}, "expires", "valid date"),
    ({"expires": '"next year"'}, "expires", "valid date"),
    ({"control": '"NOPE-1"'}, "control", "unknown control ID 'NOPE-1'"),
    ({"control": '"HA-2"'}, "control", "HA-2 is a game-day control"),
    ({"check": '"test_no_credentials_in_source"'}, "check", "not a test node id"),
    ({"check": '"suites/test_controls.py::test_control"'}, "check", "names every control's check"),
    ({"check": f'"{AUTH4_CHECK}"'}, "", "exactly one of 'control'"),
    ({"control": None}, "", "exactly one of 'control'"),
    ({"reason": '"x"'}, "reason", "unknown field"),
])
def test_bad_waiver_is_one_sentence_exit_2(tmp_path: Path, change: dict[str, str | None],
                                          field: str, words: str) -> None:
    fields = {**GOOD, **change}
    body = "".join(f"{k} = {v}\n" for k, v in fields.items() if v is not None)
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(TARGET + "[[targets.t.waivers]]\n" + body)
    reports = tmp_path / "reports"
    r = _cli("check", "--target", "t", "--config", str(cfg), "--reports", str(reports),
             PGPROOF_CONFIG=str(cfg))
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert f"targets.t.waivers.0{'.' + field if field else ''}: " in lines[0], lines[0]
    assert words in lines[0], lines[0]
    assert not reports.exists() or not any(reports.iterdir())


# --- judging: valid waives, expired does not, nothing else changes ------------------------

def _w(**kw: Any) -> Waiver:
    return Waiver.model_validate({"justification": "accepted until the migration",
                                  "owner": "dba@example.com", "expires": "2026-12-31", **kw})


def test_a_check_waiver_names_the_item_of_an_installed_wheel_too() -> None:
    """pytest collects the wheel's suites as ".../site-packages/pgproof/suites/...": the same
    "suites/..." node id names it, and nothing whose file merely ends alike."""
    w = _w(check="suites/test_controls.py::test_control[ENC-1-host]")
    installed = "venv/lib/python3.11/site-packages/pgproof/suites/test_controls.py::test_control"
    assert w.matches(["ENC-1"], installed + "[ENC-1-host]")
    assert w.matches(["ENC-1"], "suites/test_controls.py::test_control[ENC-1-host]")
    assert not w.matches(["ENC-1"], installed + "[ENC-1-aws]")
    assert not w.matches(["ENC-1"], "mysuites/test_controls.py::test_control[ENC-1-host]")


def _checks() -> list[CheckResult]:
    return [CheckResult(AUTH4_CHECK, ["AUTH-4"], Verdict.FAIL, "app/db.py:3: DSN with password"),
            CheckResult("suites/test_tls.py::test_versions[writer]", ["TLS-1"], Verdict.FAIL,
                        "accepts TLSv1.0"),
            CheckResult("suites/test_tls.py::test_versions[reader]", ["TLS-1"], Verdict.PASS, ""),
            CheckResult("suites/test_backups.py::test_retention_within_bounds", ["BAK-1"],
                        Verdict.ERROR, "could not check: refused"),
            CheckResult("suites/test_network.py::test_not_publicly_accessible", ["NET-1"],
                        Verdict.PASS, "private")]


def _judge(waivers: list[Waiver], today: dt.date = TODAY) -> tuple[dict[str, Any], list[str]]:
    controls = aggregate(_checks(), ["AUTH-4", "TLS-1", "BAK-1", "NET-1"])
    warnings = apply_waivers(controls, waivers, today)
    return {c.id: c for c in controls}, warnings


def test_valid_waiver_waives_only_failures_and_counts_as_compliant() -> None:
    by, warnings = _judge([_w(control="AUTH-4"), _w(check="suites/test_tls.py::test_versions"),
                           _w(control="BAK-1")])
    assert by["AUTH-4"].verdict == "waived" and by["TLS-1"].verdict == "waived"
    assert [ch["verdict"] for ch in by["TLS-1"].checks] == ["waived", "pass"]
    assert by["AUTH-4"].checks[0]["waiver"]["justification"] == "accepted until the migration"
    assert by["AUTH-4"].checks[0]["evidence"] == "app/db.py:3: DSN with password"  # kept
    assert by["BAK-1"].verdict == "error" and "waiver" not in by["BAK-1"].checks[0]
    assert by["NET-1"].verdict == "pass" and warnings == []
    assert exit_code([by["AUTH-4"], by["TLS-1"], by["NET-1"]]) == 0


def test_expired_waiver_leaves_the_failure_and_says_so() -> None:
    by, _ = _judge([_w(control="AUTH-4", expires="2026-06-01")])  # expires today: expired
    assert by["AUTH-4"].verdict == "fail"
    note = by["AUTH-4"].checks[0]["waiver"]["note"]
    assert note.startswith("waiver expired on 2026-06-01")
    assert exit_code(list(by.values())) == 1
    by, _ = _judge([_w(control="AUTH-4", expires="2026-06-01")], dt.date(2026, 5, 31))
    assert by["AUTH-4"].verdict == "waived"  # the day before it expires


def test_a_valid_waiver_wins_over_an_expired_one_and_unmatched_ones_warn() -> None:
    by, warnings = _judge([_w(control="AUTH-4", expires="2020-01-01"), _w(check=AUTH4_CHECK),
                           _w(check="suites/test_x.py::test_gone"), _w(control="MON-1")])
    assert by["AUTH-4"].verdict == "waived"
    assert by["AUTH-4"].checks[0]["waiver"]["subject"] == f"check {AUTH4_CHECK}"
    assert warnings == [
        "waiver for check suites/test_x.py::test_gone (owner dba@example.com) matches no check "
        "in this run",
        "waiver for control MON-1 (owner dba@example.com) matches no control in this run"]


def _waived_run(tmp_path: Path) -> Run:
    target = parse_target("staging", {
        "postgres": {"writer": {"host": "db.internal", "port": 5432}, "user": "pgproof"},
        "aws": {"region": "eu-west-1", "db_instance_id": "prod-db"},
        "waivers": [{"control": "AUTH-4", "justification": "accepted until the migration",
                     "owner": "dba@example.com", "expires": "2099-01-01"},
                    {"check": "suites/test_tls.py::test_versions[writer]",
                     "justification": "old client", "owner": "x", "expires": "2020-01-01"}]},
        str(tmp_path / "pgproof.toml"))
    controls = aggregate(_checks(), ["AUTH-4", "TLS-1", "BAK-1", "NET-1"])
    apply_waivers(controls, target.waivers, TODAY)
    return Run("staging", "r1", dt.datetime(2026, 6, 1, tzinfo=dt.UTC), controls, target, "1.0")


def test_sarif_suppresses_a_waived_result_and_stays_valid(tmp_path: Path) -> None:
    log = sarif.build(_waived_run(tmp_path))
    assert validation_errors(log) == []
    results = {r["ruleId"]: r for r in log["runs"][0]["results"]}
    assert results["AUTH-4"]["suppressions"] == [{
        "kind": "external", "status": "accepted", "justification": "accepted until the migration",
        "properties": {"owner": "dba@example.com", "expires": "2099-01-01",
                       "waiver": "control AUTH-4"}}]
    assert "suppressions" not in results["TLS-1"]
    assert "waiver expired on 2020-01-01" in results["TLS-1"]["message"]["text"]


def test_ocsf_marks_a_waived_finding_suppressed(tmp_path: Path) -> None:
    findings = ocsf.build(_waived_run(tmp_path))
    for f in findings:
        DetectionFinding.model_validate(f)
    by = {(f["metadata"]["event_code"], f["unmapped"]["check"]): f for f in findings}
    auth4 = by[("AUTH-4", AUTH4_CHECK)]
    assert (auth4["status"], auth4["status_id"], auth4["status_code"]) == ("Suppressed", 3, "FAIL")
    assert "accepted until the migration" in auth4["status_detail"]
    tls = by[("TLS-1", "suites/test_tls.py::test_versions[writer]")]
    assert (tls["status"], tls["status_id"]) == ("New", 1)
    assert "waiver expired on 2020-01-01" in tls["status_detail"]


def test_asff_workflow_suppressed_with_the_justification(tmp_path: Path) -> None:
    findings = asff.build(_waived_run(tmp_path), "123456789012", "eu-west-1")
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    report = ParamValidator().validate({"Findings": findings}, shape)
    assert not report.has_errors(), report.generate_report()
    by = {f["Compliance"]["SecurityControlId"]: f for f in findings}
    assert by["AUTH-4"]["Workflow"] == {"Status": "SUPPRESSED"}
    assert by["AUTH-4"]["Compliance"]["Status"] == "FAILED"
    assert "accepted until the migration" in by["AUTH-4"]["Note"]["Text"]
    assert by["TLS-1"]["Workflow"] == {"Status": "NEW"}
    assert "waiver expired on 2020-01-01" in by["TLS-1"]["Description"]
    assert "Workflow" not in by["NET-1"]


# --- end to end on the lab ----------------------------------------------------------------

def _lab_config(lab: LabState, path: Path, waivers: list[dict[str, str]]) -> Path:
    """A pgproof.toml whose target ``waived`` is the lab's own target plus ``waivers``."""
    dated = [{k: dt.date.fromisoformat(v) if k == "expires" else v for k, v in w.items()}
             for w in waivers]
    path.write_text(lab_target_as(lab, "waived", waivers=dated))
    return path


def _lab_check(lab: LabState, cfg: Path, reports: Path) -> tuple[subprocess.CompletedProcess[str],
                                                                  Path]:
    r = _cli("check", "--target", "waived", "--config", str(cfg), "--reports", str(reports),
             "--framework", "hipaa", PGPROOF_LAB_TARGET=str(lab.target_file),
             PGPROOF_CONFIG=str(cfg))
    return r, (reports / "latest").resolve()


@pytest.fixture(scope="module")
def source_dsn(lab: LabState) -> Iterator[LabState]:
    """The lab with a password DSN in the app's source: AUTH-4 fails, nothing else changes."""
    mutations.apply(lab.state_dir, "source-dsn")
    try:
        yield lab
    finally:
        mutations.heal(lab.state_dir)


def _auth4(run_dir: Path) -> dict[str, Any]:
    doc = json.loads((run_dir / "results.json").read_text())
    return next(c for c in doc["controls"] if c["id"] == "AUTH-4")


def test_lab_valid_waiver_exit_0_and_waived_everywhere(source_dsn: LabState, tmp_path: Path) -> None:
    cfg = _lab_config(source_dsn, tmp_path / "pgproof.toml", [
        {"control": "AUTH-4", "justification": "fixture app, rotated in CHG-42",
         "owner": "dba@example.com", "expires": "2099-01-01"},
        {"check": "suites/test_x.py::test_gone", "justification": "stale", "owner": "ops",
         "expires": "2099-01-01"}])
    r, d = _lab_check(source_dsn, cfg, tmp_path / "reports")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    auth4 = _auth4(d)
    assert auth4["verdict"] == "waived", auth4
    assert auth4["checks"][0]["check"] == AUTH4_CHECK
    assert auth4["checks"][0]["waiver"]["justification"] == "fixture app, rotated in CHG-42"
    assert "DSN with password" in auth4["checks"][0]["evidence"]  # the failure is still shown
    assert "WAIVED" in r.stdout and "fixture app, rotated in CHG-42" in r.stdout
    assert "warning: waiver for check suites/test_x.py::test_gone (owner ops) matches no check" \
        in r.stdout
    doc = json.loads((d / "results.json").read_text())
    assert doc["exit_code"] == 0 and doc["summary"]["waived"] == 1 + len(lab_waived(source_dsn))
    assert len(doc["waiver_warnings"]) == 1
    html = (d / "summary.html").read_text()
    assert "WAIVED" in html and "fixture app, rotated in CHG-42" in html and "test_gone" in html
    sarif_doc = json.loads((d / "results.sarif").read_text())
    assert validation_errors(sarif_doc) == []
    res = [x for x in sarif_doc["runs"][0]["results"] if x["ruleId"] == "AUTH-4"]
    assert res and all(x["suppressions"][0]["justification"] == "fixture app, rotated in CHG-42"
                       for x in res)
    ocsf_doc = json.loads((d / "findings.ocsf.json").read_text())
    assert {f["status"] for f in ocsf_doc if f["metadata"]["event_code"] == "AUTH-4"} == {"Suppressed"}
    asff_doc = json.loads((d / "findings.asff.json").read_text())
    assert next(f for f in asff_doc if f["Compliance"]["SecurityControlId"] == "AUTH-4"
                )["Workflow"] == {"Status": "SUPPRESSED"}
    # Jenkins' xUnit schema allows properties on the suite only: waiver:<classname>::<test>.
    props = [p.get("value", "") for p in ET.parse(d / "junit.xml").getroot().iter("property")
             if p.get("name", "").startswith("waiver:")]
    assert props and props[0].startswith("AUTH-4: valid: waived until 2099-01-01 by dba@example.com")
    fw = json.loads((d / "framework-hipaa.json").read_text())
    req = next(x for x in fw["requirements"] if x["id"] == "164.312(d)")
    assert req["status"] == "waived"
    assert next(c for c in req["controls"] if c["id"] == "AUTH-4")["checks"][0]["waiver"]
    assert (d / "framework-hipaa.html").stat().st_size > 0
    assert "hipaa report:" in r.stdout


def test_lab_expired_waiver_exit_1_and_says_expired(source_dsn: LabState, tmp_path: Path) -> None:
    cfg = _lab_config(source_dsn, tmp_path / "pgproof.toml", [
        {"check": AUTH4_CHECK, "justification": "fixture app", "owner": "dba@example.com",
         "expires": "2020-01-01"}])
    r, d = _lab_check(source_dsn, cfg, tmp_path / "reports")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    auth4 = _auth4(d)
    assert auth4["verdict"] == "fail"
    assert auth4["checks"][0]["waiver"]["note"].startswith("waiver expired on 2020-01-01")
    assert "waiver expired on 2020-01-01" in r.stdout
    assert "waiver expired on 2020-01-01" in (d / "summary.html").read_text()
    others = {c["verdict"] for c in json.loads((d / "results.json").read_text())["controls"]
              if c["id"] != "AUTH-4" and c["id"] not in lab_waived(source_dsn)}
    assert "fail" not in others and "waived" not in others


def test_a_waived_failure_reads_waived_on_its_layer_too() -> None:
    """Per-layer rows are re-judged after waivers: never 'pass', never still 'fail'."""
    checks = [CheckResult("suites/test_tls.py::test_versions", ["TLS-1"], Verdict.FAIL, "TLSv1.0", 0,
                          ["tls"]),
              CheckResult("suites/test_tls.py::test_rds", ["TLS-1"], Verdict.PASS, "ok", 0, ["aws"])]
    by = {c.id: c for c in aggregate(checks, ["TLS-1"])}
    apply_waivers(list(by.values()), [_w(control="TLS-1")], dt.date(2026, 5, 1))
    rows = {r["layer"]: r["verdict"] for r in by["TLS-1"].layers}
    assert by["TLS-1"].verdict == "waived" and rows["tls"] == "waived" and rows["aws"] == "pass"
    assert rows["sql"] == "not-checked"
