"""Every bad input a user measured: one sentence naming it, exit 2, no report left behind.

Each test runs the real CLI (or pytest over ``suites/``) in a subprocess, because
what the user sees - stderr, the exit code, the report directory - is the point.
Servers are real: a Python HTTP server on the "PostgreSQL" port, a standalone
PostgreSQL 15, moto's HTTP server for AWS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgproof import preflight, procs
from pgproof.errors import UserError
from pgproof.lab.standalone import Standalone, standalone_postgres
from pgproof.target import ConfigError, load_target, parse_target

REPO = Path(__file__).resolve().parent.parent
PGPROOF = Path(sys.executable).parent / "pgproof"
UNSET_PW = "PGPROOF_TEST_NEVER_SET_PW"
PG = {"writer": {"host": "127.0.0.1", "port": 1}, "user": "auditor"}  # port 1: refused, not bad


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PGPROOF_TARGET", "PGPROOF_CONFIG", "PGPASSWORD", "AWS_ENDPOINT_URL",
                        "AWS_PROFILE", UNSET_PW)}
    return {**env, **extra}


def run(args: list[str], cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=clean_env(**env))


def pgproof(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return run([str(PGPROOF), *args], cwd, **env)


def write_config(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def one_error(r: subprocess.CompletedProcess) -> str:
    """Exit 2, nothing on stdout but at most the plan, and exactly one stderr line."""
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    return lines[0]


def no_reports(base: Path) -> None:
    assert not base.exists() or not any(base.iterdir()), list(base.rglob("*"))


def check(cfg: Path, target: str, tmp: Path, **env: str) -> subprocess.CompletedProcess:
    return pgproof("check", "--target", target, "--config", str(cfg), "--reports",
                   str(tmp / "reports"), cwd=tmp, **env)


# -- a CA file that is not a certificate -----------------------------------------------------
@pytest.mark.slow
def test_ca_file_that_is_not_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("this is not a certificate\n")
    cfg = write_config(tmp_path / "pgproof.toml", """
[targets.staging.postgres]
user = "auditor"
sslrootcert = "ca.pem"
writer = { host = "127.0.0.1", port = 1 }
""")
    line = one_error(check(cfg, "staging", tmp_path))
    assert line == (f"pgproof: {cfg}: targets.staging.postgres.sslrootcert: sslrootcert "
                    f"{tmp_path / 'ca.pem'} is not a PEM certificate file (no readable "
                    "'-----BEGIN CERTIFICATE-----' block): point it at the CA certificate")
    no_reports(tmp_path / "reports")


# -- a port that speaks HTTP -----------------------------------------------------------------
@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    """A real HTTP server (python -m http.server) where PostgreSQL should be."""
    (port,) = procs.free_ports(1)
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")
    try:
        procs.wait_until(lambda: procs.port_open("127.0.0.1", port), 30, "http.server", "listening")
        yield port
    finally:
        proc.kill()
        proc.wait()


def http_config(tmp: Path, port: int) -> Path:
    return write_config(tmp / "pgproof.toml", f"""
[targets.web.postgres]
user = "auditor"
writer = {{ host = "127.0.0.1", port = {port} }}
""")


def test_http_port_is_named_within_two_seconds(tmp_path: Path, http_port: int) -> None:
    target = load_target("web", http_config(tmp_path, http_port))
    started = time.monotonic()
    with pytest.raises(UserError) as err:
        preflight.check(target)
    elapsed = time.monotonic() - started
    assert str(err.value) == (f"targets.web.postgres.writer: port {http_port} on 127.0.0.1 "
                              "speaks HTTP, not PostgreSQL (check the port)")
    assert elapsed < 2.0, f"named after {elapsed:.2f} s"


@pytest.mark.slow
def test_http_port_on_check_and_pytest(tmp_path: Path, http_port: int) -> None:
    cfg = http_config(tmp_path, http_port)
    started = time.monotonic()
    line = one_error(check(cfg, "web", tmp_path))
    wall = time.monotonic() - started
    assert line == (f"pgproof: targets.web.postgres.writer: port {http_port} on 127.0.0.1 speaks "
                    "HTTP, not PostgreSQL (check the port)")
    assert wall < 15, wall  # the old behaviour: 13.9 s of timeouts, then ten error verdicts
    no_reports(tmp_path / "reports")
    r = run([sys.executable, "-m", "pytest", str(REPO / "suites"), "--target", "web",
             "--pgproof-config", str(cfg), "--reports", str(tmp_path / "reports"), "-q"], tmp_path)
    assert r.returncode == 2
    assert f"port {http_port} on 127.0.0.1 speaks HTTP, not PostgreSQL" in r.stderr
    assert "junit.xml" not in r.stdout + r.stderr and "report.html" not in r.stdout + r.stderr
    no_reports(tmp_path / "reports")


# -- password_env naming an unset variable ---------------------------------------------------
@pytest.fixture(scope="module")
def pg() -> Iterator[Standalone]:
    with standalone_postgres() as server:
        yield server


@pytest.mark.slow
def test_unset_password_env_is_named_once(tmp_path: Path, pg: Standalone) -> None:
    cfg = write_config(tmp_path / "pgproof.toml", f"""
[targets.staging.postgres]
user = "{pg.user}"
password_env = "{UNSET_PW}"
sslrootcert = "{pg.ca}"
writer = {{ host = "{pg.host}", port = {pg.port} }}
""")
    line = one_error(check(cfg, "staging", tmp_path, PGPASSFILE="/nonexistent"))
    assert line == (f"pgproof: targets.staging: no password: postgres.password_env names {UNSET_PW}, "
                    "which is not set in the environment, and the passfile /nonexistent "
                    f"(PGPASSFILE) does not exist (export {UNSET_PW}, or write the password to a "
                    "passfile named by postgres.passfile or PGPASSFILE)")
    no_reports(tmp_path / "reports")
    # With the variable set, the same config gets past the pre-flight (and logs in).
    target = load_target("staging", cfg)
    os.environ[UNSET_PW] = pg.password
    try:
        preflight.check(target)
    finally:
        del os.environ[UNSET_PW]


# -- game-day drivers ------------------------------------------------------------------------
@pytest.mark.slow
def test_ssh_driver_without_hosts_even_on_dry_run(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "pgproof.toml", """
[targets.self.postgres]
user = "auditor"
writer = { host = "127.0.0.1", port = 1 }
[targets.self.chaos]
allowed = true
driver = "ssh"
""")
    line = one_error(pgproof("gameday", "kill-primary", "--target", "self", "--config", str(cfg),
                             "--reports", str(tmp_path / "reports"), "--dry-run", cwd=tmp_path))
    sentence = ('pgproof: targets.self.hosts is empty: chaos.driver = "ssh" needs the database '
                'hosts, e.g. hosts = ["ssh://admin@db1", "ssh://admin@db2"]')
    assert line == sentence
    no_reports(tmp_path / "reports")
    r = run([sys.executable, "-m", "pytest", str(REPO / "scenarios"), "-m", "chaos", "--target",
             "self", "--pgproof-config", str(cfg), "--reports", str(tmp_path / "reports"), "-q"],
            tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 2 and sentence in out and "Traceback" not in out, out
    assert "junit.xml" not in out and "report.html" not in out
    no_reports(tmp_path / "reports")


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
def test_missing_rds_instance_in_a_game_day(tmp_path: Path, moto_url: str) -> None:
    cfg = write_config(tmp_path / "pgproof.toml", f"""
[targets.rds.postgres]
user = "auditor"
writer = {{ host = "127.0.0.1", port = 1 }}
[targets.rds.aws]
region = "eu-west-1"
endpoint_url = "{moto_url}"
db_instance_id = "nosuch-db"
[targets.rds.chaos]
allowed = true
driver = "aws"
""")
    for extra in (["--dry-run"], []):
        r = pgproof("gameday", "force-failover", "--target", "rds", "--config", str(cfg),
                    "--reports", str(tmp_path / "reports"), *extra, cwd=tmp_path,
                    AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        assert one_error(r) == ("pgproof: targets.rds.aws.db_instance_id: DB instance nosuch-db "
                                f"does not exist in region eu-west-1 at {moto_url}")
        assert "DBInstanceNotFound" not in r.stdout + r.stderr
        no_reports(tmp_path / "reports")


# -- production guard ------------------------------------------------------------------------
@pytest.mark.slow
def test_gameday_refuses_environment_prd(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "pgproof.toml", """
[targets.payments]
environment = "PRD"
[targets.payments.postgres]
user = "auditor"
writer = { host = "127.0.0.1", port = 1 }
[targets.payments.chaos]
allowed = true
""")
    line = one_error(pgproof("gameday", "kill-primary", "--target", "payments", "--config", str(cfg),
                             "--reports", str(tmp_path / "reports"), "--dry-run", cwd=tmp_path))
    assert line == ("pgproof: refused: target 'payments' looks like production (environment 'PRD' "
                    "says 'prd'); add --i-mean-production to run a game day against it")
    no_reports(tmp_path / "reports")


@pytest.mark.slow
def test_gameday_workers_must_be_a_small_whole_number(tmp_path: Path) -> None:
    for bad in ("x", "-1", "2.5", "65"):
        line = one_error(pgproof("gameday", "kill-primary", "--workers", bad, "--dry-run",
                                 "--reports", str(tmp_path / "reports"), cwd=tmp_path))
        assert line == ("pgproof: --workers takes a whole number of Locust worker processes from 0 "
                        f"to 64 (0: one process), got '{bad}'")
    line = one_error(pgproof("gameday", "recover", "--workers", "2", cwd=tmp_path))
    assert line == "pgproof: --workers only applies to the failover scenarios under load, not recover"
    no_reports(tmp_path / "reports")


@pytest.mark.slow
def test_gameday_refuses_more_workers_than_users(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "pgproof.toml", """
[targets.staging.postgres]
user = "auditor"
writer = { host = "127.0.0.1", port = 1 }
[targets.staging.chaos]
allowed = true
""")
    line = one_error(pgproof("gameday", "kill-primary", "--target", "staging", "--config", str(cfg),
                             "--users", "2", "--workers", "3", "--dry-run",
                             "--reports", str(tmp_path / "reports"), cwd=tmp_path))
    assert line == ("pgproof: --workers 3 is more than the 2 Locust users: every worker needs at "
                    "least one user (raise --users or lower --workers)")
    no_reports(tmp_path / "reports")


# -- the CLI ---------------------------------------------------------------------------------
def test_version(tmp_path: Path) -> None:
    import importlib.metadata as md

    r = pgproof("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"pgproof {md.version('pgproof')}"


@pytest.mark.slow
def test_lab_break_without_a_name(tmp_path: Path) -> None:
    assert one_error(pgproof("lab", "break", "--lab-dir", str(tmp_path / "lab"), cwd=tmp_path)) == (
        "pgproof: pgproof lab break needs a mutation name; `pgproof lab mutations` lists them")


def _lab_listed(lab_file: Path | None = None) -> str:
    from pgproof.target import valid_targets

    return ", ".join(valid_targets([], lab_file))


@pytest.mark.slow
def test_pgproof_target_env_is_honoured_and_the_flag_wins(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "pgproof.toml", """
[targets.staging.postgres]
user = "auditor"
writer = { host = "127.0.0.1", port = 1 }
""")
    nolab = str(tmp_path / "no-lab.toml")
    valid = ", ".join(filter(None, [_lab_listed(Path(nolab)), "staging"]))
    for cmd in (["check", "--config", str(cfg)], ["gameday", "kill-primary", "--config", str(cfg),
                                                  "--dry-run"]):
        r = pgproof(*cmd, "--reports", str(tmp_path / "reports"), cwd=tmp_path,
                    PGPROOF_TARGET="nosuch", PGPROOF_LAB_TARGET=nolab)
        assert one_error(r) == f"pgproof: {cfg}: no target named 'nosuch' (valid targets: {valid})"
        r = pgproof(*cmd, "--target", "other", "--reports", str(tmp_path / "reports"),
                    cwd=tmp_path, PGPROOF_TARGET="nosuch", PGPROOF_LAB_TARGET=nolab)
        assert "no target named 'other'" in one_error(r)
    r = pgproof("drift", "--reports", str(tmp_path / "reports"), cwd=tmp_path,
                PGPROOF_TARGET="nosuch", PGPROOF_CONFIG=str(cfg), PGPROOF_LAB_TARGET=nolab)
    assert one_error(r) == f"pgproof: no target named 'nosuch' (valid targets: {valid})"
    no_reports(tmp_path / "reports")


@pytest.mark.slow
def test_drift_of_an_unknown_target(tmp_path: Path) -> None:
    nolab = str(tmp_path / "no-lab.toml")
    r = pgproof("drift", "--target", "nosuch", "--reports", str(tmp_path / "reports"),
                cwd=tmp_path, PGPROOF_LAB_TARGET=nolab)
    assert one_error(r) == ("pgproof: no target named 'nosuch' (valid targets: "
                            f"{_lab_listed(Path(nolab)) or 'none'})")


@pytest.mark.slow
def test_unknown_target_lists_lab_when_it_is_up(tmp_path: Path) -> None:
    lab_file = write_config(tmp_path / "lab.toml", "# stands in for a running lab's target file\n")
    cfg = write_config(tmp_path / "pgproof.toml", """
[targets.staging.postgres]
user = "auditor"
writer = { host = "127.0.0.1", port = 1 }
""")
    with pytest.raises(ConfigError) as err:
        load_target("nosuch", cfg, lab_file=lab_file)
    assert str(err.value) == f"{cfg}: no target named 'nosuch' (valid targets: lab, staging)"
    r = check(cfg, "nosuch", tmp_path, PGPROOF_LAB_TARGET=str(lab_file))
    assert one_error(r) == f"pgproof: {cfg}: no target named 'nosuch' (valid targets: lab, staging)"
    r = pgproof("drift", "--target", "nosuch", "--reports", str(tmp_path / "reports"), cwd=tmp_path,
                PGPROOF_CONFIG=str(cfg), PGPROOF_LAB_TARGET=str(lab_file))
    assert one_error(r) == "pgproof: no target named 'nosuch' (valid targets: lab, staging)"


@pytest.mark.slow
def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    """`pgproof lab mutations | head`: the reader is gone before we write."""
    p = subprocess.Popen([str(PGPROOF), "lab", "mutations"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=tmp_path, env=clean_env())
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141
    assert err == ""
    r = subprocess.run(f"{PGPROOF} lab mutations | head -1", shell=True, capture_output=True,
                       text=True, cwd=tmp_path, env=clean_env(), timeout=60)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1 and r.stderr == ""


# -- pytest and its report folder ------------------------------------------------------------
@pytest.mark.slow
def test_pytest_announces_no_report_it_removes(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "pgproof.toml", """
[targets.staging.postgres]
user = "auditor"
writer = { host = "127.0.0.1", port = "x" }
[targets.ok.postgres]
user = "auditor"
writer = { host = "127.0.0.1", port = 1 }
""")
    base = tmp_path / "reports"
    for target, extra, code in (("staging", [], 2), ("nosuch", [], 2), ("ok", ["-k", "nomatch"], 5)):
        r = run([sys.executable, "-m", "pytest", str(REPO / "suites"), "--target", target,
                 "--pgproof-config", str(cfg), "--reports", str(base), "-q", *extra], tmp_path)
        out = r.stdout + r.stderr
        assert r.returncode == code, out
        assert "generated xml file" not in out and "Generated html report" not in out, out
        assert "Traceback" not in out
        no_reports(base)
    assert "targets.staging.postgres.writer.port: Input should be a valid integer" in (
        run([sys.executable, "-m", "pytest", str(REPO / "suites"), "--target", "staging",
             "--pgproof-config", str(cfg), "--reports", str(base), "-q"], tmp_path).stderr)


@pytest.mark.slow
def test_free_port_refusing_connections_is_not_bad_input() -> None:
    """Unreachable is 'could not check' (a verdict), never 'speaks something else'."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        target = parse_target("down", {"postgres": {**PG, "writer": {"host": "127.0.0.1",
                                                                     "port": port}}}, "test")
        preflight.check(target)
