"""A single throwaway PostgreSQL 15 server with TLS, for unit tests and benches.

Not the lab (no Patroni, no HA): just a real server in a temporary directory,
started in ~2 s, configurable through ``settings`` and ``hba``.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from pgproof import procs
from pgproof.lab import pki

DEFAULT_HBA = (
    "local all all trust\n"
    "hostssl all all 127.0.0.1/32 scram-sha-256\n"
)


@dataclass
class Standalone:
    host: str
    port: int
    user: str
    password: str
    ca: Path
    datadir: Path
    log: Path

    def conninfo(self, **kw: object) -> dict[str, object]:
        base: dict[str, object] = {
            "host": self.host, "port": self.port, "user": self.user, "password": self.password,
            "dbname": "postgres", "sslmode": "verify-full", "sslrootcert": str(self.ca),
        }
        base.update(kw)
        return base

    def pg_ctl(self, *args: str) -> None:
        subprocess.run(
            procs.as_service_user([str(procs.PG_BIN / "pg_ctl"), "-D", str(self.datadir), *args]),
            check=True, capture_output=True, env=procs.clean_env(),
        )

    def reconfigure(self, settings: dict[str, str] | None = None, hba: str | None = None) -> None:
        """Rewrite settings/hba and restart (some TLS settings need a restart)."""
        if settings:
            with (self.datadir / "postgresql.auto.conf").open("a") as fh:
                fh.writelines(f"{k} = '{v}'\n" for k, v in settings.items())
        if hba is not None:
            (self.datadir / "pg_hba.conf").write_text(hba)
        self.pg_ctl("restart", "-w", "-l", str(self.log))


@contextmanager
def standalone_postgres(settings: dict[str, str] | None = None, hba: str = DEFAULT_HBA,
                        cert_hosts: tuple[str, ...] = ("127.0.0.1", "localhost"),
                        cert_days: int = 365, cert_key: str = "ec") -> Iterator[Standalone]:
    """Run a TLS-enabled PostgreSQL on a free loopback port; remove it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="pgproof-pg-"))
    root.chmod(0o755)
    datadir, tls = root / "data", root / "tls"
    ca = pki.make_ca(tls)
    leaf = pki.issue_server_cert(ca, tls, hosts=cert_hosts, days=cert_days, key_type=cert_key)
    datadir.mkdir(mode=0o700)
    procs.chown_service(datadir, leaf.key, leaf.cert, root)
    password = secrets.token_urlsafe(18)
    pwfile = root / "pw"
    pwfile.write_text(password)
    procs.chown_service(pwfile)
    env = procs.clean_env()
    subprocess.run(
        procs.as_service_user([str(procs.PG_BIN / "initdb"), "-D", str(datadir), "-U", "postgres",
                               "--pwfile", str(pwfile), "-A", "scram-sha-256", "--no-sync"]),
        check=True, capture_output=True, env=env,
    )
    pwfile.unlink()
    (port,) = procs.free_ports(1)
    conf = {
        "port": str(port), "listen_addresses": "127.0.0.1", "unix_socket_directories": str(root),
        "ssl": "on", "ssl_cert_file": str(leaf.cert), "ssl_key_file": str(leaf.key),
        "ssl_min_protocol_version": "TLSv1.2", "password_encryption": "scram-sha-256",
        "fsync": "off", "shared_buffers": "32MB",
    }
    conf.update(settings or {})
    with (datadir / "postgresql.auto.conf").open("a") as fh:
        fh.writelines(f"{k} = '{v}'\n" for k, v in conf.items())
    (datadir / "pg_hba.conf").write_text(hba)
    server = Standalone("127.0.0.1", port, "postgres", password, ca.cert, datadir, root / "pg.log")
    procs.chown_service(root)
    try:
        server.pg_ctl("start", "-w", "-l", str(server.log))
        yield server
    finally:
        with suppress(subprocess.CalledProcessError):
            server.pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(root, ignore_errors=True)
