"""Layers by vantage point: AWS-only, live-only and both, each judged on the layers it can see.

Real processes throughout: moto's HTTP server provisioned like the lab's twin,
a standalone PostgreSQL 15, the lab; the suites run through the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from twins import aws_only_config, toml_value

from pgproof import layers
from pgproof.catalogue.registry import CATALOGUE
from pgproof.lab.standalone import standalone_postgres
from pgproof.lab.state import LabState
from pgproof.report import results as res
from pgproof.target import ConfigError, parse_target
from pgproof.verdict import Verdict as V

PGPROOF = Path(sys.executable).parent / "pgproof"
REPO = Path(__file__).resolve().parent.parent
NO_PG = "target has no [postgres] section (AWS-only vantage point)"
NO_AWS = "AWS layer not checked: target has no [aws] section"
NO_HOSTS = "host layer not checked: no [[hosts]] configured"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "PG")) or k.startswith("PGPROOF_TEST")}
    return {**env, "PGPROOF_LAB_TARGET": "/nonexistent", **extra}


def check(cfg: Path, target: str, tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess[str],
                                                                  dict[str, Any]]:
    r = subprocess.run([str(PGPROOF), "check", "--target", target, "--config", str(cfg),
                        "--reports", str(tmp / "reports")], capture_output=True, text=True,
                       cwd=tmp, env=_env(**env), timeout=300)
    f = tmp / "reports" / "latest" / "results.json"
    assert f.exists(), r.stdout[-3000:] + r.stderr[-2000:]
    return r, json.loads(f.read_text())


def controls(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in doc["controls"]}


# -- the target model ------------------------------------------------------------------------
@pytest.mark.slow
def test_every_section_is_optional_but_one_is_needed(tmp_path: Path) -> None:
    assert parse_target("ci", {"aws": {"region": "eu-west-1"}}, "t").postgres is None
    assert parse_target("box", {"hosts": ["local://"]}, "t").aws is None
    with pytest.raises(ConfigError, match=r"^t: targets\.none configures nothing to check: add a "
                                          r"\[postgres\] section .* an \[aws\] section .* or hosts$"):
        parse_target("none", {"environment": "staging"}, "t")
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.none]\nenvironment = "staging"\n')
    r = subprocess.run([str(PGPROOF), "check", "--target", "none", "--config", str(cfg),
                        "--reports", str(tmp_path / "reports")], capture_output=True, text=True,
                       cwd=tmp_path, env=_env(), timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "configures nothing to check" in r.stderr and not (tmp_path / "reports").exists()


@pytest.mark.slow
def test_game_day_on_an_aws_only_target_is_one_sentence(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.ci.aws]\nregion = "eu-west-1"\n[targets.ci.chaos]\nallowed = true\n')
    r = subprocess.run([str(PGPROOF), "gameday", "kill-primary", "--target", "ci", "--config",
                        str(cfg), "--dry-run"], capture_output=True, text=True, cwd=tmp_path,
                       env=_env(), timeout=120)
    assert r.returncode == 2 and r.stderr.strip() == (
        "pgproof: target 'ci' has no [postgres] section, and a game day needs a database endpoint")


def test_reasons_name_the_missing_section() -> None:
    aws_only = parse_target("ci", {"aws": {"region": "eu-west-1"}}, "t")
    assert layers.why_not(aws_only, "sql") == f"live SQL layer not checked: {NO_PG}"
    assert layers.why_not(aws_only, "tls") == f"live TLS layer not checked: {NO_PG}"
    assert layers.why_not(aws_only, "aws") is None
    live = parse_target("box", {"postgres": {"writer": {"host": "h", "port": 5432}, "user": "u"}}, "t")
    assert layers.why_not(live, "sql") is None and layers.why_not(live, "aws").startswith(NO_AWS)
    assert layers.why_not(live, "host").startswith(NO_HOSTS)
    assert "managed" not in layers.why_not(live, "host")


# -- per-layer aggregation -------------------------------------------------------------------
def _c(cid: str, v: V, *ls: str, msg: str = "") -> res.CheckResult:
    return res.CheckResult(f"s::{cid}::{'-'.join(ls)}", [cid], v, msg or f"saw {v}", 0, list(ls))


def test_a_control_is_judged_on_the_layers_that_were_checked() -> None:
    out = {c.id: c for c in res.aggregate([
        _c("ENC-1", V.PASS, "aws"), _c("ENC-1", V.NOT_CHECKED, "host", msg="host: none"),
        _c("TLS-5", V.NOT_CHECKED, "tls", msg="tls: none"),
        _c("TLS-1", V.NOT_CHECKED, "tls", msg="tls: none"), _c("TLS-1", V.FAIL, "aws"),
        _c("TLS-3", V.PASS, "tls", "sql")], ["ENC-1", "TLS-5", "TLS-1", "TLS-3"])}
    assert out["ENC-1"].verdict == "pass" and out["ENC-1"].layers_checked == ["aws"]
    assert out["ENC-1"].layers_not_checked == {"host": "host: none"}
    assert out["TLS-5"].verdict == res.NOT_CHECKED  # zero layers checked is never a pass
    assert out["TLS-1"].verdict == "fail" and out["TLS-1"].layers_checked == ["aws"]
    assert set(out["TLS-1"].layers_not_checked) == {"tls", "sql"}
    assert "no check of it ran" in out["TLS-1"].layers_not_checked["sql"]
    assert out["TLS-3"].layers_checked == ["tls", "sql"] and not out["TLS-3"].layers_not_checked
    assert res.exit_code(list(out.values())) == 1


# -- an AWS-only run against the twin --------------------------------------------------------
@pytest.fixture
def twin_config(tmp_path: Path) -> Iterator[Path]:
    """moto's HTTP server provisioned like the lab's twin; a target with [aws] only."""
    with aws_only_config(tmp_path) as cfg:
        yield cfg


@pytest.mark.slow
def test_aws_only_run_judges_every_aws_layer_and_errors_nowhere(twin_config: Path,
                                                                tmp_path: Path) -> None:
    r, doc = check(twin_config, "ci", tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    checks = [ch for c in doc["controls"] for ch in c["checks"]]
    aws_checks = [ch for ch in checks if ch["layers"] == ["aws"]]
    assert len(aws_checks) >= 20
    assert {ch["verdict"] for ch in aws_checks} <= {"pass", "cannot-verify", "skip"}, aws_checks
    assert not [ch for ch in checks if ch["verdict"] in ("error", "fail")]
    live = [ch for ch in checks if {"sql", "tls", "dns"} & set(ch["layers"])]
    # an AWS-only target is RDS: a control the provider manages there is inherited, unprobed
    inherited = {cid for cid, c in CATALOGUE.items()
                 if c.platforms.get("rds") and c.platforms["rds"].status == "inherited"}
    # ...and one that does not exist there (LOG-21..23: RDS has no syslog) is not applicable
    absent = {cid for cid, c in CATALOGUE.items()
              if c.platforms.get("rds") and c.platforms["rds"].status == "n/a"}

    def cid_of(ch: dict[str, Any]) -> str:
        return str(ch["check"]).split("[")[1].rsplit("-", 1)[0]

    odd = [ch for ch in live
           if not ((ch["verdict"] == "not-checked" and NO_PG in ch["evidence"])
                   or (ch["verdict"] == "not-checked" and "host" in ch["layers"]
                       and ch["evidence"].startswith(NO_HOSTS))
                   or (ch["verdict"] == "inherited" and cid_of(ch) in inherited)
                   or (ch["verdict"] == "skip" and cid_of(ch) in absent
                       and ch["evidence"].startswith("not applicable: on rds")))]
    assert live and not odd, odd
    by_id = controls(doc)
    for cid, c in by_id.items():
        want = [x for x in CATALOGUE[cid].layers if x == "aws"]
        assert c["layers_checked"] == want, (cid, c["layers"])
        if cid in absent:  # n/a on RDS: nothing probed, and the layer's row says why
            assert c["verdict"] == "skip", (cid, c)
            assert all(r["reason"].startswith("not applicable: on rds: ") for r in c["layers"]), c
        assert c["verdict"] != "pass" or want, cid  # nothing checked is never a pass
    enc1 = by_id["ENC-1"]
    assert enc1["verdict"] == "pass" and enc1["layers_not_checked"]["host"].startswith(NO_HOSTS)
    assert by_id["TLS-3"]["layers_not_checked"] == {  # one check, two layers, each its reason
        "tls": f"live TLS layer not checked: {NO_PG}", "sql": f"live SQL layer not checked: {NO_PG}"}
    assert by_id["TLS-5"]["verdict"] == "not-checked"
    assert by_id["TLS-5"]["layers_not_checked"] == {"tls": f"live TLS layer not checked: {NO_PG}"}
    assert "TLS-1    Server accepts TLS 1.2+ only  [checked: aws; not checked: tls, sql]" in r.stdout
    assert f"live SQL layer not checked: {NO_PG}" in r.stdout
    html = (tmp_path / "reports" / "latest" / "summary.html").read_text()
    assert "checked: aws (pass)" in html and f"live SQL layer not checked: {NO_PG}" in html


# -- a live-only run against a plain PostgreSQL 15 -------------------------------------------
def _live_config(tmp: Path, pg: Any, hosts: list[str]) -> Path:
    cfg = tmp / "pgproof.toml"
    cfg.write_text(f"""[targets.box]
environment = "staging"
hosts = {toml_value(hosts)}
[targets.box.postgres]
user = "postgres"
password_env = "PGPROOF_TEST_BOX_PW"
sslrootcert = "{pg.ca}"
writer = {{ host = "{pg.host}", port = {pg.port} }}
""")
    return cfg


@pytest.mark.slow
def test_live_only_run_against_plain_postgres(tmp_path: Path) -> None:
    with standalone_postgres() as pg:
        r, doc = check(_live_config(tmp_path, pg, []), "box", tmp_path,
                       PGPROOF_TEST_BOX_PW=pg.password)
        by_id = controls(doc)
        checks = [ch for c in doc["controls"] for ch in c["checks"]]
        assert not [ch for ch in checks if ch["verdict"] == "error"], r.stdout[-3000:]
        for ch in checks:
            if "aws" in ch["layers"]:
                assert ch["verdict"] == "not-checked" and ch["evidence"].startswith(NO_AWS)
            if {"sql", "tls"} & set(ch["layers"]) and "AUTHZ-1" not in ch["check"] \
                    and "host" not in ch["layers"]:  # a host check needs [[hosts]] (ENC-1 below)
                assert ch["verdict"] in ("pass", "fail", "cannot-verify", "skip"), ch
        assert by_id["AUTHZ-1"]["verdict"] == "not-checked"  # no app_role: nothing to judge
        assert "no postgres.app_role configured" in by_id["AUTHZ-1"]["layers_not_checked"]["sql"]
        assert by_id["NET-1"]["verdict"] == "not-checked"  # AWS-only control, no [aws]
        assert by_id["TLS-1"]["layers_checked"] == ["tls", "sql"]
        assert by_id["TLS-1"]["layers_not_checked"]["aws"].startswith(NO_AWS)
        enc1 = by_id["ENC-1"]
        assert enc1["verdict"] == "not-checked", enc1
        assert enc1["layers_not_checked"]["host"].startswith(NO_HOSTS)
        assert "managed service" not in json.dumps(doc)
        # Self-managed: with the host configured, ENC-1's host layer is judged on this machine.
        (tmp_path / "reports").rename(tmp_path / "first")
        r, doc = check(_live_config(tmp_path, pg, ["local://"]), "box", tmp_path,
                       PGPROOF_TEST_BOX_PW=pg.password)
        enc1 = controls(doc)["ENC-1"]
        assert enc1["layers_checked"] == ["host"], enc1
        host_check = next(ch for ch in enc1["checks"] if ch["layers"] == ["host"])
        assert host_check["verdict"] in ("pass", "fail") and str(pg.datadir) in host_check["evidence"]


# -- both together: the lab ------------------------------------------------------------------
def test_lab_run_checks_live_and_aws_layers(lab: LabState, tmp_path: Path) -> None:
    r = subprocess.run([str(PGPROOF), "check", "--target", "lab", "--reports",
                        str(tmp_path / "reports")], capture_output=True, text=True, cwd=tmp_path,
                       env=_env(PGPROOF_LAB_TARGET=str(lab.target_file),
                                PGPROOF_CONFIG="/nonexistent"), timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    doc = json.loads((tmp_path / "reports" / "latest" / "results.json").read_text())
    by_id = controls(doc)
    assert by_id["TLS-1"]["layers_checked"] == ["tls", "sql", "aws"]
    assert by_id["TLS-1"]["layers_not_checked"] == {}
    # the lab judges its nodes as local:// hosts; their disk is this machine's (a lab waiver)
    assert by_id["ENC-1"]["layers_checked"] == ["aws", "host"]
    assert by_id["ENC-1"]["layers_not_checked"] == {} and by_id["ENC-1"]["verdict"] == "waived"
    assert "[checked: tls, sql, aws]" in r.stdout


def test_the_lab_and_a_plain_server_checked_side_by_side(lab: LabState, tmp_path: Path) -> None:
    """`pgproof check --target lab --target box`: two live databases, one xdist worker each."""
    with standalone_postgres() as pg:
        cfg = _live_config(tmp_path, pg, [])
        r = subprocess.run([str(PGPROOF), "check", "--target", "lab", "--target", "box", "--config",
                            str(cfg), "--reports", str(tmp_path / "reports"), "--control",
                            "TLS-1,TLS-3"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                           env=_env(PGPROOF_LAB_TARGET=str(lab.target_file),
                                    PGPROOF_TEST_BOX_PW=pg.password))
    (index,) = (tmp_path / "reports").glob("targets-*.json")
    doc = json.loads(index.read_text())
    by = {t["target"]: t for t in doc["targets"]}
    assert set(by) == {"lab", "box"}, r.stdout[-3000:] + r.stderr[-2000:]
    runs = {name: json.loads((Path(t["dir"]) / "results.json").read_text()) for name, t in by.items()}
    lab_tls1, box_tls1 = (controls(runs[n])["TLS-1"] for n in ("lab", "box"))
    assert lab_tls1["layers_checked"] == ["tls", "sql", "aws"], lab_tls1
    assert box_tls1["layers_checked"] == ["tls", "sql"], box_tls1  # the plain server has no [aws]
    assert lab_tls1["verdict"] == "pass", lab_tls1
    assert runs["lab"]["target"] == "lab" and runs["box"]["target"] == "box"
    assert Path(by["lab"]["dir"]) != Path(by["box"]["dir"])
    assert r.returncode == doc["exit_code"] == max(t["exit_code"] for t in doc["targets"]), doc


@pytest.mark.slow
def test_scenarios_on_an_aws_only_target_stop_with_one_sentence(twin_config: Path,
                                                                tmp_path: Path) -> None:
    cfg = twin_config.read_text().replace("[targets.ci.aws]", '[targets.ci.chaos]\nallowed = true\n'
                                          'driver = "aws"\n[targets.ci.aws]')
    twin_config.write_text(cfg)
    r = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "scenarios/test_force_failover.py"),
                        "--target", "ci", "--pgproof-config", str(twin_config), "-q",
                        "-p", "no:cacheprovider", "--reports", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=180)
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert ("target 'ci' has no [postgres] section, and a game day needs a database endpoint"
            in r.stdout + r.stderr)
    assert "AttributeError" not in r.stdout + r.stderr
