"""`pgproof check` on the lab: reports, exit codes, no secrets, clear errors for bad access."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pgproof.controls import CONTROLS
from pgproof.lab.standalone import standalone_postgres
from pgproof.lab.state import LabState
from pgproof.probes import postgres
from pgproof.target import Target, parse_target
from pgproof.verdict import Unreachable

pytestmark = pytest.mark.stage("suites")

REPO = Path(__file__).resolve().parent.parent


def _check(lab: LabState, reports: Path, config: Path | None = None,
           target: str = "lab") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env.update(PGPROOF_LAB_TARGET=str(lab.target_file),
               PGPROOF_CONFIG=str(config or "/nonexistent"))
    return subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", target,
                           "--reports", str(reports)], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=180)


def test_check_writes_reports_without_secrets(lab: LabState, tmp_path: Path) -> None:
    r = _check(lab, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    latest = tmp_path / "latest"
    doc = json.loads((latest / "results.json").read_text())
    ids = [c["id"] for c in doc["controls"]]
    assert set(CONTROLS) <= set(ids)
    assert all(c["checks"] and c["title"] for c in doc["controls"] if c["verdict"] != "not-checked")
    for name in ("junit.xml", "report.html", "results.json", "summary.html"):
        assert (latest / name).stat().st_size > 0
    assert (tmp_path / "history.jsonl").read_text().count("\n") == 1
    secrets = list(lab.secrets().values())
    for f in [*latest.iterdir(), tmp_path / "history.jsonl"]:
        text = f.read_text(errors="replace")
        leaked = [s[:4] + "..." for s in secrets if s in text]
        assert not leaked, f"{f.name} contains lab secrets {leaked}"
    assert "TLS-1" in r.stdout and "report:" in r.stdout


def _variant(lab: LabState, tmp_path: Path, **postgres_overrides: object) -> Path:
    """A pgproof.toml with one target derived from the lab's, changed where given."""
    import tomllib

    data = tomllib.loads(lab.target_file.read_text())
    data["postgres"].update(postgres_overrides)
    data.pop("aws", None)
    lines = ["[targets.variant]", 'tags = { env = "lab" }', "[targets.variant.postgres]"]
    for k, v in data["postgres"].items():
        lines.append(f"{k} = {json.dumps(v)}" if not isinstance(v, dict | list) else
                     f"{k} = {_toml(v)}")
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text("\n".join(lines) + "\n")
    return cfg


def _toml(v: object) -> str:
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return json.dumps(v)


def test_wrong_credentials_is_could_not_check(lab: LabState, tmp_path: Path) -> None:
    pw = tmp_path / "pgpass"
    pw.write_text("*:*:*:pgproof:wrong-password\n")
    pw.chmod(0o600)
    r = _check(lab, tmp_path / "r", _variant(lab, tmp_path, passfile=str(pw)), "variant")
    assert r.returncode == 2, r.stdout[-2000:]
    doc = json.loads((tmp_path / "r" / "latest" / "results.json").read_text())
    errors = [ch["evidence"] for c in doc["controls"] for ch in c["checks"] if ch["verdict"] == "error"]
    assert any("password authentication failed" in e and "as pgproof" in e for e in errors), errors


def test_unreachable_host_is_named(lab_target: Target) -> None:
    t = lab_target.model_copy(update={"postgres": lab_target.postgres.model_copy(
        update={"writer": lab_target.postgres.writer.model_copy(update={"port": 1})})})
    t0 = time.monotonic()
    with pytest.raises(Unreachable, match=r"cannot log in to 127\.0\.0\.1:1 as pgproof: .*refused"):
        postgres.gather(t)
    assert time.monotonic() - t0 < 10


def test_expired_certificate_is_named(tmp_path: Path) -> None:
    with standalone_postgres(cert_days=0) as pg:
        time.sleep(1.1)
        os.environ["PGPROOF_TEST_PW"] = pg.password
        try:
            t = parse_target("expired", {"postgres": {
                "writer": {"host": pg.host, "port": pg.port}, "user": "postgres",
                "sslrootcert": str(pg.ca), "password_env": "PGPROOF_TEST_PW"}}, "test")
            with pytest.raises(Unreachable, match="certificate has expired"):
                postgres.gather(t)
        finally:
            del os.environ["PGPROOF_TEST_PW"]


_WATCH = '''
import json, os, threading
import pytest
from pgproof import pytest_fixtures

SEEN = {"checks": 0, "probe_threads": [], "early": None}

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    SEEN["checks"] += 1
    SEEN["probe_threads"] += [t.name for t in threading.enumerate() if t.name.startswith("pgproof-probe")]
    if SEEN["early"] is None:
        key = getattr(pytest_fixtures, "_EARLY", None)
        early = item.config.stash.get(key, {}) if key is not None else {}
        SEEN["early"] = {n: f.done() for n, f in early.items()}

def pytest_unconfigure(config):
    with open(os.environ["WATCH_OUT"], "w") as f:
        json.dump(SEEN, f)
'''


def test_probes_answer_before_the_first_check_and_no_probe_runs_beside_the_checks(
        lab: LabState, tmp_path: Path) -> None:
    """Every probe of the run started before the first check and had answered by then, and no
    probe thread was alive while any check ran (botocore reading os.environ beside pytest's
    PYTEST_CURRENT_TEST churn raised KeyError once); the verdicts are the usual ones."""
    (tmp_path / "watch_probes.py").write_text(_WATCH)
    out = tmp_path / "seen.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    env.update(PGPROOF_LAB_TARGET=str(lab.target_file), PGPROOF_CONFIG="/nonexistent",
               PYTHONPATH=str(tmp_path), WATCH_OUT=str(out))
    r = subprocess.run([sys.executable, "-m", "pgproof.cli", "check", "--target", "lab",
                        "--reports", str(tmp_path / "reports"), "--", "-p", "watch_probes"],
                       capture_output=True, text=True, env=env, cwd=REPO, timeout=180)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    seen = json.loads(out.read_text())
    assert seen["checks"] > 50
    assert not seen["probe_threads"], f"probe threads alive while checks ran: {seen['probe_threads']}"
    early = seen["early"]
    assert {"pg_facts", "tls_facts", "aws_inventory", "host_facts", "priv_facts"} <= set(early), early
    assert all(early.values()), f"probes still running when the first check started: {early}"
