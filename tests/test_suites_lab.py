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
