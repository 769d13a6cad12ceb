"""`pgproof doctor`: reachability and permissions per layer, against real servers.

A standalone PostgreSQL 15 with an auditor role that lacks grants (the doctor
names each with its GRANT), then with exactly those grants run (the doctor is
satisfied and the probe really reads everything); moto's HTTP server for the
AWS layer; local:// and a missing network namespace for hosts; the lab.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pgproof import procs
from pgproof.checks.postgres import judge_audit1
from pgproof.lab.standalone import Standalone, standalone_postgres
from pgproof.lab.state import LabState
from pgproof.probes import postgres
from pgproof.target import parse_target
from pgproof.verdict import Unreachable

PGPROOF = Path(sys.executable).parent / "pgproof"
REPO = Path(__file__).resolve().parent.parent
AUDITOR_PW = "doctor-auditor-pw-0123456789"


def doctor(cfg: Path | None, target: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    base.update({"PGPROOF_LAB_TARGET": "/nonexistent", "PGPROOF_TEST_DOCTOR_PW": AUDITOR_PW, **env})
    args = [str(PGPROOF), "doctor", "--target", target]
    if cfg is not None:
        args += ["--config", str(cfg)]
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=base, timeout=180)


def grants(out: str) -> list[str]:
    return [line[line.index("GRANT "):] for line in out.splitlines()
            if line.startswith("MISSING") and "GRANT " in line]


@pytest.fixture(scope="module")
def server() -> Iterator[Standalone]:
    with standalone_postgres() as pg:
        with psycopg.connect(**pg.conninfo(), autocommit=True) as c:
            c.execute(f"CREATE ROLE pgproof LOGIN PASSWORD '{AUDITOR_PW}'")
        yield pg


def _config(tmp: Path, pg: Standalone, **extra: str) -> Path:
    cfg = tmp / "pgproof.toml"
    lines = "".join(f"{k} = {v}\n" for k, v in extra.items())
    cfg.write_text(f"""[targets.box]
hosts = ["local://"]
{lines}[targets.box.postgres]
user = "pgproof"
password_env = "PGPROOF_TEST_DOCTOR_PW"
sslrootcert = "{pg.ca}"
writer = {{ host = "{pg.host}", port = {pg.port} }}
""")
    return cfg


@pytest.mark.slow
def test_missing_grants_are_named_then_granted(server: Standalone, tmp_path: Path) -> None:
    cfg = _config(tmp_path, server)
    r = doctor(cfg, "box", tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert sorted(grants(r.stdout)) == sorted([
        "GRANT pg_read_all_settings TO pgproof;",
        "GRANT SELECT ON pg_hba_file_rules TO pgproof;",
        "GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO pgproof;",
        "GRANT pg_read_all_stats TO pgproof;"]), r.stdout  # TLS-7: the WAL senders' rows
    assert re.search(r"^ok +postgres +writer: login as pgproof to postgres over TLSv1\.[23], "
                     r"verified against ", r.stdout, re.M), r.stdout
    assert re.search(r"^ok +hosts +local://: reachable", r.stdout, re.M)
    assert re.search(r"^-- +aws +AWS layer not checked: target has no \[aws\] section", r.stdout, re.M)
    assert "data_directory" in r.stdout and "ENC-1 host layer" in r.stdout
    # The role as it is: the probe really cannot read what the doctor says is missing.
    os.environ["PGPROOF_TEST_DOCTOR_PW"] = AUDITOR_PW
    try:
        t = parse_target("box", {"postgres": {
            "writer": {"host": server.host, "port": server.port}, "user": "pgproof",
            "sslrootcert": str(server.ca), "password_env": "PGPROOF_TEST_DOCTOR_PW"}}, "t")
        before = postgres.gather(t)
        assert before.hba_rules is None and "data_directory" not in before.settings
        assert {"ssl_min_protocol_version", "shared_preload_libraries"} <= set(before.hidden)
        with pytest.raises(Unreachable, match=r"cannot read setting ssl_min_protocol_version .*"
                                              r"\(GRANT pg_read_all_settings TO pgproof;\)"):
            before.setting("ssl_min_protocol_version")  # could not check, never judged as ''
        with pytest.raises(Unreachable, match="shared_preload_libraries"):
            judge_audit1(before)
        with psycopg.connect(**server.conninfo(), autocommit=True) as c:
            for stmt in grants(r.stdout):
                c.execute(stmt)
        after = postgres.gather(t)
    finally:
        del os.environ["PGPROOF_TEST_DOCTOR_PW"]
    assert after.hba_rules and set(after.settings) == set(postgres.settings_read()) and not after.hidden
    ok = doctor(cfg, "box", tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "MISSING" not in ok.stdout and "every permission the SQL probes use" in ok.stdout


@pytest.mark.slow
def test_a_refused_query_is_an_error_naming_the_grant_never_a_fail(server: Standalone,
                                                                   tmp_path: Path) -> None:
    """A role without pg_monitor or the hba grants, as on a managed database: the controls
    whose facts it may not read are *error* (exit 2) with the exact GRANT, never fail."""
    with psycopg.connect(**server.conninfo(), autocommit=True) as c:
        c.execute(f"CREATE ROLE nomonitor LOGIN PASSWORD '{AUDITOR_PW}'")
    assert not psycopg.connect(**{**server.conninfo(), "user": "nomonitor",
                                  "password": AUDITOR_PW}).execute(
        "SELECT pg_has_role('nomonitor', 'pg_monitor', 'USAGE')").fetchone()[0]
    cfg = _config(tmp_path, server)
    cfg.write_text(cfg.read_text().replace('user = "pgproof"', 'user = "nomonitor"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env.update(PGPROOF_LAB_TARGET="/nonexistent", PGPROOF_TEST_DOCTOR_PW=AUDITOR_PW)
    r = subprocess.run([str(PGPROOF), "check", "--target", "box", "--config", str(cfg),
                        "--control", "TLS-2,AUTH-1,AUDIT-1", "--reports", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    by_id = {c["id"]: c for c in doc["controls"]}
    assert r.returncode == 2 and doc["exit_code"] == 2, r.stdout[-2000:] + r.stderr
    for cid in ("TLS-2", "AUTH-1"):  # both read pg_hba_file_rules
        sql = next(ch for ch in by_id[cid]["checks"] if ch["check"].endswith(f"[{cid}-sql]"))
        assert sql["verdict"] == "error", sql
        assert ("GRANT SELECT ON pg_hba_file_rules TO nomonitor; GRANT EXECUTE ON FUNCTION "
                "pg_hba_file_rules() TO nomonitor;") in sql["evidence"], sql
    audit = next(ch for ch in by_id["AUDIT-1"]["checks"] if ch["check"].endswith("[AUDIT-1-sql]"))
    assert audit["verdict"] == "error" and "GRANT pg_read_all_settings TO nomonitor;" in \
        audit["evidence"], audit  # shared_preload_libraries is hidden from it
    assert "fail" not in {c["verdict"] for c in doc["controls"]}


def test_unreachable_pieces_are_findings_not_crashes(server: Standalone, tmp_path: Path) -> None:
    cfg = _config(tmp_path, server, outside_hosts='["netns://pgproof-doctor-nosuch"]')
    text = cfg.read_text().replace(f"port = {server.port}", "port = 1")
    cfg.write_text(text)
    r = doctor(cfg, "box", tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stderr
    assert re.search(r"^MISSING +postgres +postgres\.writer 127\.0\.0\.1:1: ", r.stdout, re.M)
    assert re.search(r"^MISSING +hosts +netns://pgproof-doctor-nosuch: no such network namespace",
                     r.stdout, re.M), r.stdout


def test_bad_input_is_one_sentence_exit_2(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.staging.aws]\nregion = "eu-west-1"\n')
    r = doctor(cfg, "stagin", tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [
        f"pgproof: {cfg}: no target named 'stagin' (valid targets: "
        + r.stderr.split("(valid targets: ", 1)[1].strip()]
    assert "staging" in r.stderr


@pytest.fixture
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    (port,) = procs.free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.mark.slow
def test_aws_layer_caller_and_instance(moto_url: str, tmp_path: Path) -> None:
    import boto3

    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    rds = boto3.client("rds", region_name="eu-west-1", endpoint_url=moto_url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    rds.create_db_instance(DBInstanceIdentifier="app-db", Engine="postgres",
                           DBInstanceClass="db.t3.micro", AllocatedStorage=20,
                           MasterUsername="dbmaster", MasterUserPassword="x" * 20)
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(f'[targets.ci.aws]\nregion = "eu-west-1"\nendpoint_url = "{moto_url}"\n'
                   'db_instance_id = "app-db"\n'
                   f'[targets.gone.aws]\nregion = "eu-west-1"\nendpoint_url = "{moto_url}"\n'
                   'db_instance_id = "no-such-db"\n')
    r = doctor(cfg, "ci", tmp_path, **creds)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^ok +aws +http://127\.0\.0\.1:\d+: caller arn:aws:", r.stdout, re.M)
    assert re.search(r"^ok +aws +.*DB instance app-db is available", r.stdout, re.M), r.stdout
    assert re.search(r"^-- +sql +live SQL layer not checked: target has no \[postgres\] section "
                     r"\(AWS-only vantage point\)", r.stdout, re.M), r.stdout
    gone = doctor(cfg, "gone", tmp_path, **creds)
    assert gone.returncode == 1 and "DBInstanceNotFound" in gone.stdout, gone.stdout
    assert re.search(r"^MISSING +aws +AWS endpoint .* refused rds:DescribeDBInstances",
                     gone.stdout, re.M), gone.stdout


def test_probe_needs_match_the_probe_sql() -> None:
    """The doctor's permission list is the probe's: every catalog object its SQL names."""
    import ast

    tree = ast.parse((REPO / "pgproof/probes/postgres.py").read_text())
    sql = " ".join(c.value for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef)
                   for c in ast.walk(fn) if isinstance(c, ast.Constant) and isinstance(c.value, str))
    relations = set(re.findall(r"\bFROM (pg_\w+)", sql))
    functions = {f"{f}()" for f in re.findall(r"\b(pg_\w+)\(\)", sql)}
    assert relations == set(postgres.RELATIONS) and "pg_hba_file_rules" in relations
    # The pg_hba_file_rules view calls its function with the caller's rights (PostgreSQL 15).
    assert functions | {"pg_hba_file_rules()"} == set(postgres.FUNCTIONS)


def test_the_lab_is_ready(lab: LabState, tmp_path: Path) -> None:
    r = doctor(None, "lab", tmp_path, PGPROOF_LAB_TARGET=str(lab.target_file),
               PGPROOF_CONFIG="/nonexistent")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^ok +postgres +pooler admin console", r.stdout, re.M)
    assert re.search(r"^ok +aws +.*DB instance \S+ is available", r.stdout, re.M), r.stdout
    assert re.search(r"^ok +backup +pgbackrest on \S+: stanza \S+ answers info \([1-9]\d* "
                     r"backups\)", r.stdout, re.M), r.stdout  # the lab's pgBackRest layer


def test_a_database_the_auditor_may_not_enter_is_an_error_naming_the_grant(server: Standalone) -> None:
    """PRIV-2/PRIV-3 read every database's catalogs: one the auditor may not CONNECT to is
    neither passed nor failed but an error with the GRANT, and the doctor names that GRANT."""
    from pgproof.checks.priv import judge_priv2, judge_priv3
    from pgproof.doctor import privilege_findings
    from pgproof.probes import privileges

    with psycopg.connect(**server.conninfo(), autocommit=True) as c:
        c.execute("CREATE DATABASE pgproof_hr")
        c.execute("REVOKE CONNECT ON DATABASE pgproof_hr FROM PUBLIC")
    os.environ["PGPROOF_TEST_DOCTOR_PW"] = AUDITOR_PW
    try:
        t = parse_target("box", {"postgres": {
            "writer": {"host": server.host, "port": server.port}, "user": "pgproof",
            "sslrootcert": str(server.ca), "password_env": "PGPROOF_TEST_DOCTOR_PW"}}, "t")
        facts = privileges.gather(t)
        with postgres.connect(t) as conn:
            found = [f.text for f in privilege_findings(conn, "pgproof", "postgres")]
    finally:
        del os.environ["PGPROOF_TEST_DOCTOR_PW"]
        with psycopg.connect(**server.conninfo(), autocommit=True) as c:
            c.execute("DROP DATABASE pgproof_hr")
    grant = "GRANT CONNECT ON DATABASE pgproof_hr TO pgproof;"
    assert {d.name: d.read for d in facts.databases} == {
        "pgproof_hr": False, "postgres": True, "template1": True}
    for judge in (judge_priv2, judge_priv3):
        with pytest.raises(Unreachable, match=re.escape(grant)):
            judge(facts)
    assert any(line.endswith(grant) for line in found), found
