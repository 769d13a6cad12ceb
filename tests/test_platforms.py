"""Where controls apply (per platform), a target's platform, CIS profiles, the `inherited` verdict
in every output, and the CIS framework report's coverage by section.

No lab: the applicability table and the outputs are pure functions of the catalogue and a
run's results; the CLI refusals run the real command line.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pgproof.catalogue import platforms
from pgproof.catalogue.build import check, control, inherited, not_applicable
from pgproof.catalogue.frameworks import CIS, FRAMEWORK_DEFS
from pgproof.catalogue.model import PLATFORMS
from pgproof.catalogue.profiles import UnknownProfile, controls_of, raised_thresholds
from pgproof.catalogue.registry import CATALOGUE, of_kind
from pgproof.probes.grants import denied_sentence, grant_for
from pgproof.report import asff, framework, history, ocsf, sarif, summary
from pgproof.report import results as res
from pgproof.report.findings import Run
from pgproof.target import ConfigError, parse_target
from pgproof.verdict import Verdict

PGPROOF = [sys.executable, "-m", "pgproof.cli"]
RDS_WORDS = ("Amazon RDS only allows the following value for log_line_prefix: %t:%r:%u@%d:[%p]: "
             "(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"
             "USER_LogAccess.Concepts.PostgreSQL.html)")


def _judge(*_: Any) -> list[str]:
    return []


PREFIX = control("ZZ-P", "Log lines name who, where, when (test)", "log_line_prefix has them.",
                 "Set it.", severity="low", hipaa=("164.312(b)",), cis=("3.1.24",),
                 checks=(check("sql", _judge, "pg_facts"),),
                 platforms={"rds": inherited(RDS_WORDS), "aurora": inherited(RDS_WORDS),
                            "azure": not_applicable("tested elsewhere")})
HOSTONLY = control("ZZ-H", "Socket private (test)", "The socket is 0770.", "chmod.",
                   severity="low", unmapped_reason="it is a test of the platform table",
                   checks=(check("host", _judge, "host_facts"),))


# --- the applicability table ----------------------------------------------------------------
def test_stated_exceptions_win_and_elsewhere_the_layers_that_exist_check() -> None:
    assert platforms.applies(PREFIX, "rds").status == "inherited"
    assert platforms.applies(PREFIX, "rds").why == RDS_WORDS
    assert platforms.applies(PREFIX, "azure").text() == "n/a: tested elsewhere"
    on_self = platforms.applies(PREFIX, "self-managed")
    assert (on_self.status, on_self.layers) == ("checked", ("sql",))
    # a host-only control has no layer on a managed platform: n/a, with the provider's words
    rds = platforms.applies(HOSTONLY, "rds")
    assert rds.status == "n/a" and "no access to the host OS" in rds.why and "https://" in rds.why
    assert platforms.applies(HOSTONLY, "self-managed").layers == ("host",)


def test_every_catalogue_control_has_a_said_status_on_every_platform() -> None:
    for row in platforms.table(list(CATALOGUE.values())):
        for a in row:
            assert a.status in ("checked", "inherited", "n/a"), a
            assert (a.status == "checked") == bool(a.layers), a
            assert a.status == "checked" or len(a.why.split()) >= 4, a  # a reason is a sentence
            if a.status == "inherited":  # the provider's words come with where they are written
                assert "http" in a.why, f"{a.control} on {a.platform}: inherited needs its source"
    # sql and tls exist everywhere, a cloud API only on its cloud, hosts only self-managed
    on = platforms.LAYERS_ON
    assert on["sql"] == on["tls"] == frozenset(PLATFORMS)
    assert on["aws"] == {"rds", "aurora"} and on["azure"] == {"azure"}
    assert on["host"] == on["backup"] == {"self-managed"}


@pytest.mark.parametrize(("extra", "platform"), [
    ({"aws": {"region": "eu-west-1", "db_cluster_id": "c"}}, "aurora"),
    ({"aws": {"region": "eu-west-1", "db_instance_id": "i"}}, "rds"),
    ({"aws": {"region": "eu-west-1", "db_tags": {"team": "x"}}}, "rds"),
    ({"azure": {"subscription_id": "00000000-0000-0000-0000-000000000000",
                "resource_group": "g", "server_name": "pg-one"}}, "azure"),
    ({}, "self-managed"),
    ({"platform": "azure", "aws": {"region": "eu-west-1", "db_instance_id": "i"}}, "azure"),
])
def test_a_targets_platform_is_stated_or_derived(extra: dict[str, Any], platform: str) -> None:
    data = {"postgres": {"writer": {"host": "127.0.0.1", "port": 5432}, "user": "u"}, **extra}
    assert parse_target("t", data, "pgproof.toml").runs_on == platform


def test_a_bad_platform_is_one_sentence() -> None:
    data = {"platform": "heroku", "postgres": {"writer": {"host": "h", "port": 5432}, "user": "u"}}
    with pytest.raises(ConfigError) as err:
        parse_target("t", data, "pgproof.toml")
    text = str(err.value)
    assert "\n" not in text and "targets.t.platform" in text and "heroku" in text
    assert "self-managed" in text


@pytest.mark.slow
def test_cli_platform_table_and_refusals(tmp_path: Path) -> None:
    r = subprocess.run([*PGPROOF, "controls", "--platform", "rds"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.splitlines()[0].split()[:2] == ["ID", "ON"], r.stderr
    assert f"{len(CATALOGUE)} controls on rds:" in r.stdout
    assert any(line.split()[:3] == ["TLS-1", "checked", "tls,"] for line in r.stdout.splitlines())
    j = json.loads(subprocess.run([*PGPROOF, "controls", "--platform", "self-managed", "--format",
                                   "json"], capture_output=True, text=True, timeout=120).stdout)
    assert j["platform"] == "self-managed" and len(j["controls"]) == len(CATALOGUE)
    bad = subprocess.run([*PGPROOF, "controls", "--platform", "heroku"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.t]\nplatform = "heroku"\n[targets.t.postgres]\n'
                   'writer = { host = "127.0.0.1", port = 1 }\nuser = "x"\n')
    r = subprocess.run([*PGPROOF, "check", "--target", "t", "--config", str(cfg), "--reports",
                        str(tmp_path / "reports")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "platform" in r.stderr and not (tmp_path / "reports" / "latest").exists()
    prof = subprocess.run([*PGPROOF, "check", "--target", "t", "--config", str(cfg), "--profile",
                           "cis-level9"], capture_output=True, text=True, timeout=120)
    assert prof.returncode == 2 and prof.stderr.count("\n") == 1, prof.stderr
    assert "unknown profile 'cis-level9'" in prof.stderr


# --- profiles ---------------------------------------------------------------------------------
def test_cis_profiles_select_the_controls_citing_cis() -> None:
    citing = [c for c in of_kind("compliance") if CATALOGUE[c].frameworks.get("cis")]
    assert citing and controls_of("cis-level1") == citing
    assert controls_of("CIS-Level2") == citing  # level 2 includes level 1; CIS PG has no L2 item
    assert {r.level for r in CIS.recommendations.values()} == {1}
    with pytest.raises(UnknownProfile, match="pgproof knows cis-level1, cis-level2"):
        controls_of("hipaa")


# --- the CIS list -------------------------------------------------------------------------------
def test_the_cis_list_is_the_benchmark() -> None:
    assert len(CIS.requirements) == 71 and set(CIS.recommendations) == set(CIS.requirements)
    auto = [r for r, rec in CIS.recommendations.items() if rec.assessment == "Automated"]
    assert len(auto) == 43
    assert "4.10" not in CIS.requirements  # pgdsat's public-schema check, not CIS 17
    assert CIS.requirements["6.9"] == "Ensure that TLSv1.3, or later, is configured"
    assert CIS.recommendations["7.4"].profile == "PostgreSQL on Linux"
    assert CIS.recommendations["5.4"].assessment == "Manual"
    assert {CIS.section_of(r) for r in CIS.requirements} == {str(n) for n in range(1, 9)}
    assert all(CIS.sections.get(CIS.section_of(r)) for r in CIS.requirements)


# --- the inherited verdict through every output ---------------------------------------------
def _run(tmp_path: Path) -> tuple[list[res.ControlResult], Path]:
    checks = [res.CheckResult("suites/test_controls.py::test_control[TLS-1-sql]", ["TLS-1"],
                              Verdict.PASS, "TLSv1.3", layers=["sql"]),
              res.CheckResult("suites/test_controls.py::test_control[AUDIT-1-sql]", ["AUDIT-1"],
                              Verdict.INHERITED, f"inherited: on rds: {RDS_WORDS}", layers=["sql"])]
    controls = res.aggregate(checks, ["TLS-1", "AUDIT-1"])
    d = tmp_path / "run"
    d.mkdir()
    res.write(d, "t", controls, {"platform": "rds"})
    return controls, d


def test_inherited_is_never_pass_nor_a_failure_and_every_output_says_it(tmp_path: Path) -> None:
    controls, d = _run(tmp_path)
    audit = next(c for c in controls if c.id == "AUDIT-1")
    assert audit.verdict == "inherited" and audit.layers[0] == {"layer": "sql", "verdict": "inherited"}
    assert res.exit_code(controls) == 0
    doc = json.loads((d / "results.json").read_text())
    assert doc["summary"] == {"pass": 1, "inherited": 1} and doc["platform"] == "rds"
    assert doc["exit_code"] == 0
    page = summary.render("t", "now", controls)
    assert "<td>INHERITED</td>" in page and "Amazon RDS only allows" in page
    assert any(line.startswith("INHERITED") and "AUDIT-1" in line
               for line in summary.terminal_lines(controls))
    run = Run("t", "run", dt.datetime.now(dt.UTC), controls)
    notes = sarif.build(run)["runs"][0]["invocations"][0]["toolExecutionNotifications"]
    assert any(n["descriptor"]["id"] == "AUDIT-1" and n["level"] == "note" for n in notes)
    assert not [r for r in sarif.build(run)["runs"][0]["results"] if r["ruleId"] == "AUDIT-1"]
    found = {f["metadata"]["event_code"]: f for f in ocsf.build(run)}
    assert found["AUDIT-1"]["status_code"] == "INHERITED" and found["AUDIT-1"]["status_id"] == 99
    assert found["TLS-1"]["status_code"] == "PASS"
    asf = {f["Compliance"]["SecurityControlId"]: f for f in asff.build(run, "123456789012", "eu-west-1")}
    assert asf["AUDIT-1"]["Compliance"]["Status"] == "NOT_AVAILABLE"
    assert asf["AUDIT-1"]["ProductFields"]["pgproof/Verdict"] == "inherited"
    line = history.all_runs(d.parent / "history.jsonl")[-1]
    assert line["verdicts"]["AUDIT-1"] == "inherited"
    before = {**line, "verdicts": {**line["verdicts"], "AUDIT-1": "pass"}}
    assert [(c.control, c.before, c.after) for c in history.changes(before, line)] == [
        ("AUDIT-1", "pass", "inherited")]  # drift sees pass -> inherited as a change


def test_cis_report_coverage_by_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(CATALOGUE, "ZZ-P", PREFIX)
    controls, d = _run(tmp_path)
    doc = json.loads((d / "results.json").read_text())
    doc["controls"].append({"id": "ZZ-P", "title": PREFIX.title, "verdict": "inherited",
                            "checks": [{"check": "x", "verdict": "inherited", "evidence": "e"}]})
    built = framework.build("cis", doc)
    cov = built["coverage"]
    assert cov["platform"] == "rds" and sum(cov["totals"].values()) == 71
    by_id = {s["id"]: s for s in cov["sections"]}
    assert list(by_id) == [str(n) for n in range(1, 9)]
    logging = by_id["3"]
    inh = {e["id"]: e for e in logging["inherited"]}
    assert "Amazon RDS only allows" in inh["3.1.24"]["why"]  # ZZ-P: the provider's, on rds
    auto = {e["id"]: e for e in logging["automated"]}
    assert auto["3.2"]["controls"]["AUDIT-1"] == "inherited"  # checked on rds, judged this run
    cited = {r for c in CATALOGUE.values() for r in c.frameworks.get("cis", ())}
    kinds = {e["id"]: k for s in cov["sections"] for k in framework.COVERAGE for e in s[k]}
    for rid, rec in CIS.recommendations.items():
        if rid not in cited:  # no control: a person's (Manual) or pgproof's gap (Automated)
            assert kinds[rid] == ("manual" if rec.assessment == "Manual" else "not covered"), rid
    assert all(s["counts"][k] == len(s[k]) for s in cov["sections"] for k in framework.COVERAGE)
    # Every Automated CIS 17 recommendation is some control's: none is left "not covered".
    assert not [e["id"] for s in cov["sections"] for e in s["not covered"]]
    page = framework.render(built)
    assert "Coverage by section (rds)" in page and "Not covered" in page
    assert "coverage" not in framework.build("hipaa", doc)  # HIPAA has no assessment/levels
    assert FRAMEWORK_DEFS["cis"].version == "v1.0.0"


# --- a refused query names its grant ------------------------------------------------------------
@pytest.mark.parametrize(("message", "grant"), [
    ("permission denied for view pg_hba_file_rules",
     "GRANT SELECT ON pg_hba_file_rules TO auditor; "
     "GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO auditor;"),
    ("permission denied for function pg_ls_dir", "GRANT EXECUTE ON FUNCTION pg_ls_dir(text) TO auditor;"),
    ("permission denied for function pg_ls_archive_statusdir",
     "GRANT EXECUTE ON FUNCTION pg_ls_archive_statusdir() TO auditor;"),
    ('must be superuser or have privileges of pg_read_all_settings to examine "data_directory"',
     "GRANT pg_read_all_settings TO auditor;"),
    ("permission denied for table pg_authid", "GRANT SELECT ON pg_authid TO auditor;"),
    ("permission denied for schema audit", "GRANT USAGE ON SCHEMA audit TO auditor;"),
])
def test_a_refusal_names_the_exact_grant(message: str, grant: str) -> None:
    assert grant_for(message, "auditor") == grant
    assert denied_sentence(message, "auditor", "db:5432").endswith(f"run: {grant}")
    assert grant_for("must be superuser to do this", "x") is None
    assert "no grant gives this" in denied_sentence("must be superuser to do this", "x", "db:5432")
    assert grant_for("permission denied for view v", "Audit Role").endswith('TO "Audit Role";')


def test_every_automated_cis_recommendation_is_cited_by_a_control() -> None:
    """The issue's "done when": no automatable CIS item left without a control; the Manual
    ones a person judges (their own coverage kind)."""
    cited = {r for c in CATALOGUE.values() if c.kind == "compliance"
             for r in c.frameworks.get("cis", ())}
    missing = [rid for rid, rec in CIS.recommendations.items()
               if rec.assessment == "Automated" and rid not in cited]
    assert missing == [], f"Automated CIS recommendations no control cites: {missing}"


def test_cis_profiles_raise_the_tls_minimum_to_1_3_and_never_lower_it() -> None:
    """CIS 17 v1.0.0 6.9 (TLS 1.3 minimum) is TLS-1 at tls_min_version TLSv1.3 under the CIS
    profiles; the default spec's TLSv1.2 stays for a plain run."""
    from pgproof.checks.tls import judge_min_protocol_setting
    from pgproof.target import Thresholds

    assert "6.9" in CATALOGUE["TLS-1"].frameworks["cis"] and "TLS-1" in controls_of("cis-level1")
    for name in ("cis-level1", "cis-level2", " CIS-Level1 "):
        assert raised_thresholds(name, {"tls_min_version": "TLSv1.2"}) == {"tls_min_version": "TLSv1.3"}
        assert raised_thresholds(name, {"tls_min_version": "TLSv1.3"}) == {}
    assert raised_thresholds("unknown", {"tls_min_version": "TLSv1.2"}) == {}
    default, cis = Thresholds(), Thresholds(tls_min_version="TLSv1.3")
    assert default.tls_min_version == "TLSv1.2"
    assert judge_min_protocol_setting("TLSv1.2", default) == []
    assert judge_min_protocol_setting("TLSv1.3", cis) == []  # the boundary passes
    [p] = judge_min_protocol_setting("TLSv1.2", cis)  # one step below fails
    assert "TLSv1.3 or newer" in p


@pytest.mark.slow
def test_pytest_suites_profile_selects_the_cis_controls(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.t.postgres]\nwriter = { host = "127.0.0.1", port = 1 }\nuser = "x"\n')
    base = [sys.executable, "-m", "pytest", "suites", "--target", "t", "--pgproof-config",
            str(cfg), "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            "--no-reports"]
    repo = Path(__file__).resolve().parent.parent
    r = subprocess.run([*base, "--profile", "cis-level1"], capture_output=True, text=True,
                       cwd=repo, timeout=180)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    ids = {line.split("[", 1)[1].rsplit("-", 1)[0] for line in r.stdout.splitlines()
           if "test_control[" in line}
    assert ids == set(controls_of("cis-level1")), ids
    both = subprocess.run([*base, "--profile", "cis-level2", "--control", "TLS-*,POOL-1"],
                          capture_output=True, text=True, cwd=repo, timeout=180)
    got = {line.split("[", 1)[1].rsplit("-", 1)[0] for line in both.stdout.splitlines()
           if "test_control[" in line}
    assert got and got == {c for c in controls_of("cis-level2") if c.startswith("TLS-")}, got
    bad = subprocess.run([*base, "--profile", "level1"], capture_output=True, text=True,
                         cwd=repo, timeout=180)
    assert bad.returncode == 2 and "pgproof: --profile: unknown profile 'level1'" in \
        bad.stdout + bad.stderr
