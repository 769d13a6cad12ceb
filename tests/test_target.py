"""Bad input gets one clear message that names the problem, before any test runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof.load.runner import load_env
from pgproof.target import ConfigError, load_target, parse_target

REPO = Path(__file__).resolve().parent.parent
GOOD = {"postgres": {"writer": {"host": "db.internal", "port": 5432}, "user": "auditor"}}
PG = GOOD["postgres"]


def test_valid_target_and_defaults() -> None:
    t = parse_target("staging", GOOD, "pgproof.toml")
    assert t.thresholds.backup_retention_min_days == 7 and t.chaos.allowed is False
    assert t.conninfo()["sslmode"] == "require" and "password" not in t.conninfo()


def test_load_rate_paces_the_load_users_and_zero_does_not() -> None:
    """chaos.load_rate reaches Locust as PGPROOF_LOAD_RATE (constant_throughput per user)."""
    assert parse_target("staging", GOOD, "pgproof.toml").chaos.load_rate == 0 and load_env(0) == {}
    t = parse_target("staging", {**GOOD, "chaos": {"load_rate": 12.5}}, "pgproof.toml")
    assert load_env(t.chaos.load_rate) == {"PGPROOF_LOAD_RATE": "12.5"}
    with pytest.raises(ConfigError, match="targets.staging.chaos.load_rate"):
        parse_target("staging", {**GOOD, "chaos": {"load_rate": -1}}, "pgproof.toml")


def test_wrong_field_names_path_and_expectation() -> None:
    bad = {**GOOD, "chaos": {"alowed": True}, "thresholds": {"pool_size": "twenty"}}
    with pytest.raises(ConfigError) as err:
        parse_target("staging", bad, "pgproof.toml")
    msg = str(err.value)
    assert "targets.staging.chaos.alowed: unknown field" in msg
    assert "targets.staging.thresholds.pool_size:" in msg and "'twenty'" in msg


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    data = {"postgres": {**GOOD["postgres"], "sslrootcert": str(tmp_path / "nope.pem")}}
    with pytest.raises(ConfigError, match="sslrootcert file not found"):
        parse_target("staging", data, "pgproof.toml")


def test_broken_toml_and_unknown_target(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text("[targets.staging\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_target("staging", cfg)
    cfg.write_text('[targets.staging.postgres]\nuser = "a"\nwriter = { host = "h", port = 1 }\n')
    lab_file = tmp_path / "lab.toml"  # a running lab's target file: lab is a valid target too
    lab_file.write_text("")
    with pytest.raises(ConfigError, match=r"no target named 'prod' \(valid targets: lab, staging\)"):
        load_target("prod", cfg, lab_file=lab_file)


@pytest.mark.slow
def test_pytest_stops_before_any_test_with_one_message(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.staging.postgres]\nuser = "a"\nwriter = { host = "h", port = "x" }\n')
    r = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "suites"), "--target", "staging",
                        "--pgproof-config", str(cfg), "--no-reports", "-q"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 2
    out = r.stdout + r.stderr
    assert "targets.staging.postgres.writer.port" in out
    assert "passed" not in out and "failed" not in out


def test_check_with_unknown_target_writes_no_report(tmp_path: Path) -> None:
    lab_file = tmp_path / "lab.toml"
    lab_file.write_text("")
    env = {**os.environ, "PGPROOF_LAB_TARGET": str(lab_file)}
    env.pop("PGPROOF_TARGET", None)
    r = subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", "nope",
                        "--config", str(tmp_path / "pgproof.toml"), "--reports", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=tmp_path, timeout=60, env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"pgproof: no target named 'nope': {tmp_path / 'pgproof.toml'} does not exist "
        "(valid targets: lab; copy pgproof.example.toml to pgproof.toml to add yours)"]
    assert not (tmp_path / "r").exists()


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    from pgproof.lab import pki

    conf_dir = tmp_path / "conf"
    ca = pki.make_ca(conf_dir / "tls")
    (conf_dir / "pgproof.toml").write_text("""
[targets.staging]
source_tree = "src"
[targets.staging.postgres]
user = "auditor"
sslrootcert = "tls/ca.crt"
passfile = "pgpass"
writer = { host = "127.0.0.1", port = 1 }
[targets.staging.aws]
region = "eu-west-1"
credentials_file = "aws/credentials"
""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cwd = Path.cwd()
    os.chdir(elsewhere)
    try:
        t = load_target("staging", Path("../conf/pgproof.toml"))
    finally:
        os.chdir(cwd)
    assert t.postgres.sslrootcert == ca.cert.resolve()
    assert t.postgres.passfile == conf_dir.resolve() / "pgpass"
    assert t.aws is not None and t.aws.credentials_file == conf_dir.resolve() / "aws/credentials"
    assert t.source_tree == conf_dir.resolve() / "src"
    assert t.conninfo()["sslrootcert"] == str(ca.cert.resolve())


@pytest.mark.parametrize(("extra", "hint"), [
    ({"environment": "PRD"}, "environment 'PRD' says 'prd'"),
    ({"tags": {"stage": "Live"}}, "tags.stage 'Live' says 'live'"),
    ({"tags": {"env": "eu-PRODUCTION-1"}}, "tags.env 'eu-PRODUCTION-1' says 'production'"),
    ({"name": "Prod2"}, "name 'Prod2' says 'prod2'"),
    ({"chaos": {"production": True}}, "chaos.production = true"),
])
def test_production_words_in_name_environment_and_tags(extra: dict, hint: str) -> None:
    data = {"postgres": PG, **{k: v for k, v in extra.items() if k != "name"}}
    assert parse_target(extra.get("name", "staging"), data, "test").production_hint == hint


def test_not_production() -> None:
    data = {"postgres": PG, "environment": "staging", "tags": {"team": "products", "x": "alive"}}
    assert parse_target("preprod-copy", data, "test").production_hint is None
