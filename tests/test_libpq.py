"""libpq's conventions as libpq has them: PGSSLROOTCERT, PGSSLMODE, PGPASSFILE, service files.

Fast part: how a target is read with those variables and files. Lab part (end to
end through the command line): PGSSLROOTCERT instead of postgres.sslrootcert makes
doctor ready and TLS-3 pass; a service file naming the lab writer works as a target.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pgproof.errors import UserError
from pgproof.lab.state import LabState
from pgproof.probes.postgres import no_password
from pgproof.target import Target, load_target, parse_target

PGPROOF = Path(sys.executable).parent / "pgproof"


@pytest.fixture(autouse=True)
def _clean_pg_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PG* variable or home-directory file of the machine leaks into these tests."""
    for k in list(os.environ):
        if k.startswith("PG") and not k.startswith("PGPROOF"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def _fake_ca(tmp_path: Path) -> Path:
    """A real self-signed CA certificate (the target's loader checks it is PEM)."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-root")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = tmp_path / "root.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _target(postgres: dict[str, object], tmp_path: Path) -> Target:
    return parse_target("staging", {"postgres": postgres}, str(tmp_path / "pgproof.toml"))


WRITER = {"host": "db.example", "port": 5432}


def test_pgsslrootcert_is_the_ca(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = _fake_ca(tmp_path)
    monkeypatch.setenv("PGSSLROOTCERT", str(ca))
    t = _target({"writer": WRITER, "user": "auditor"}, tmp_path)
    assert t.postgres is not None and t.postgres.sslrootcert == ca and t.postgres.ca_file == ca
    info = t.conninfo()
    assert info["sslrootcert"] == str(ca) and info["sslmode"] == "verify-full"


def test_explicit_sslrootcert_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    ca = _fake_ca(tmp_path)
    monkeypatch.setenv("PGSSLROOTCERT", "/nonexistent/root.crt")
    t = _target({"writer": WRITER, "user": "a", "sslrootcert": str(ca)}, tmp_path)
    assert t.conninfo()["sslrootcert"] == str(ca)


def test_pgsslmode_and_system_trust_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PGSSLMODE", "verify-ca")
    t = _target({"writer": WRITER, "user": "a", "sslrootcert": "system"}, tmp_path)
    assert t.postgres is not None and t.postgres.ca_file is None
    assert t.conninfo()["sslrootcert"] == "system" and t.conninfo()["sslmode"] == "verify-ca"
    monkeypatch.setenv("PGSSLMODE", "disable")  # never weaker than require for pgproof's own login
    assert _target({"writer": WRITER, "user": "a"}, tmp_path).conninfo()["sslmode"] == "require"


def _service_file(path: Path, name: str, ca: Path, **extra: str) -> Path:
    lines = "".join(f"{k}={v}\n" for k, v in {"host": "db.example", "port": "6432", "dbname": "app",
                                               "user": "auditor", "sslrootcert": str(ca), **extra}.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# a libpq service file\n[other]\nhost=elsewhere\n\n[{name}]\n{lines}")
    return path


def test_service_fills_the_section(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = _fake_ca(tmp_path)
    monkeypatch.setenv("PGSERVICEFILE", str(_service_file(tmp_path / "svc.conf", "staging", ca)))
    t = _target({"service": "staging"}, tmp_path)
    pg = t.postgres
    assert pg is not None and (pg.writer.host, pg.writer.port, pg.writer.dbname) == ("db.example", 6432, "app")
    assert pg.user == "auditor" and pg.sslrootcert == ca
    info = t.conninfo()
    assert info["service"] == "staging" and info["sslmode"] == "verify-full" and info["dbname"] == "app"


def test_pgservice_and_the_user_and_system_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """~/.pg_service.conf first, then PGSYSCONFDIR/pg_service.conf; PGSERVICE names the service."""
    ca = _fake_ca(tmp_path)
    _service_file(tmp_path / "etc" / "pg_service.conf", "staging", ca, port="7000")
    monkeypatch.setenv("PGSYSCONFDIR", str(tmp_path / "etc"))
    monkeypatch.setenv("PGSERVICE", "staging")
    assert _target({}, tmp_path).postgres.writer.port == 7000  # type: ignore[union-attr]
    _service_file(tmp_path / "home" / ".pg_service.conf", "staging", ca, port="7001")
    assert _target({}, tmp_path).postgres.writer.port == 7001  # type: ignore[union-attr]


def test_unknown_service_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PGSERVICEFILE", str(tmp_path / "none.conf"))
    with pytest.raises(UserError) as err:
        _target({"service": "staging"}, tmp_path)
    msg = str(err.value)
    assert "service 'staging' is not defined" in msg and "none.conf" in msg and "\n" not in msg, msg


def test_missing_password_names_pgpassfile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text("other.host:5432:*:auditor:secret\n")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    msg = no_password(_target({"writer": WRITER, "user": "auditor"}, tmp_path))
    assert f"the passfile {passfile} (PGPASSFILE) has no entry" in msg and "secret" not in msg, msg
    monkeypatch.delenv("PGPASSFILE")
    msg = no_password(_target({"writer": WRITER, "user": "auditor"}, tmp_path))
    assert ".pgpass (libpq's default) does not exist" in msg and "PGPASSFILE" in msg, msg


# End to end on the lab ---------------------------------------------------------------------------

def _run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG"))}
    base.update({"PGPROOF_LAB_TARGET": "/nonexistent", "HOME": str(cwd), **env})
    return subprocess.run([str(PGPROOF), *args], capture_output=True, text=True, cwd=cwd, env=base,
                          timeout=300)


def _lab_config(lab: LabState, tmp_path: Path, postgres: str) -> Path:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(f"[targets.stage]\n[targets.stage.postgres]\n{postgres}")
    return cfg


def test_pgsslrootcert_end_to_end(lab: LabState, lab_target: Target, tmp_path: Path) -> None:
    pg = lab_target.postgres
    assert pg is not None
    cfg = _lab_config(lab, tmp_path, f'writer = {{ host = "{pg.writer.host}", port = {pg.writer.port} }}\n'
                      f'dbname = "{pg.writer.dbname}"\nuser = "{pg.user}"\npassfile = "{pg.passfile}"\n')
    without = _run(["doctor", "--target", "stage", "--config", str(cfg)], tmp_path)
    assert without.returncode == 1 and "TLS-3 cannot pass" in without.stdout, without.stdout
    ready = _run(["doctor", "--target", "stage", "--config", str(cfg)], tmp_path,
                 PGSSLROOTCERT=str(pg.sslrootcert))
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert f"verified against {pg.sslrootcert} (sslmode=verify-full)" in ready.stdout, ready.stdout
    check = _run(["check", "--target", "stage", "--config", str(cfg), "--control", "TLS-3",
                  "--reports", str(tmp_path / "reports")], tmp_path, PGSSLROOTCERT=str(pg.sslrootcert))
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]


def test_service_file_end_to_end(lab: LabState, lab_target: Target, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pg = lab_target.postgres
    assert pg is not None
    svc = tmp_path / "pg_service.conf"
    svc.write_text(f"[labwriter]\nhost={pg.writer.host}\nport={pg.writer.port}\n"
                   f"dbname={pg.writer.dbname}\nuser={pg.user}\nsslrootcert={pg.sslrootcert}\n"
                   f"passfile={pg.passfile}\n")
    cfg = _lab_config(lab, tmp_path, 'service = "labwriter"\n')
    monkeypatch.setenv("PGSERVICEFILE", str(svc))
    t = load_target("stage", config=cfg)
    assert t.postgres is not None and t.postgres.writer.port == pg.writer.port
    check = _run(["check", "--target", "stage", "--config", str(cfg), "--control", "TLS-1,TLS-3",
                  "--reports", str(tmp_path / "reports")], tmp_path, PGSERVICEFILE=str(svc))
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
