"""Start each lab component and wait until it is healthy (one function per component)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import psycopg
import requests
from psycopg import sql

from pgproof import procs
from pgproof.faults import patroni
from pgproof.lab import aws_twin, configs, supervised, topology
from pgproof.lab.scram import scram_verifier
from pgproof.lab.state import NODES, LabState

PATRONI = Path(os.environ.get("PGPROOF_PATRONI", "/opt/pgproof/patroni-4.1.5/bin/patroni"))
REQUIRED = {
    "etcd": ("etcd", "etcd-server"),
    "haproxy": ("haproxy", "haproxy"),
    "pgbouncer": ("pgbouncer", "pgbouncer"),
    "postgresql": (str(procs.PG_BIN / "postgres"), "postgresql-15"),
    "pgaudit": ("/usr/lib/postgresql/15/lib/pgaudit.so", "postgresql-15-pgaudit"),
    "set_user": ("/usr/lib/postgresql/15/lib/set_user.so", "postgresql-15-set-user"),
    "setpriv": ("setpriv", "util-linux"),
    "pgbackrest": ("pgbackrest", "pgbackrest"),
}


def check_prerequisites() -> None:
    """Fail before starting anything when a binary is missing, naming the package."""
    for component, (binary, package) in REQUIRED.items():
        found = Path(binary).exists() if binary.startswith("/") else shutil.which(binary)
        if not found:
            raise procs.ComponentError(
                component, f"{binary} not found: install Debian package {package} (run `make setup`)")
    if not PATRONI.exists():
        raise procs.ComponentError(
            "patroni", f"{PATRONI} not found: run `make setup` (builds the Patroni venv)")


def http_ok(url: str, timeout: float = 0.5) -> bool:
    try:
        return requests.get(url, timeout=timeout).status_code == 200
    except requests.RequestException:
        return False


def _spawn(state: LabState, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
    argv = topology.wrap(state, name, argv)  # vpc: inside its tier's namespace
    return procs.spawn(argv, state.log(name), state.pidfile(name), env or procs.clean_env())


def start_etcd(state: LabState) -> int:
    (state.run_dir / "etcd").mkdir(parents=True, exist_ok=True)
    (state.run_dir / "etcd").chmod(0o700)
    return _spawn(state, "etcd", configs.etcd_argv(state))


def wait_etcd(state: LabState, pid: int, timeout: float) -> None:
    url = f"http://127.0.0.1:{state.ports['etcd_client']}/health"
    procs.wait_until(lambda: http_ok(url), timeout, "etcd", "healthy", state.log("etcd"), pid)


def start_mgmt_bridge(state: LabState) -> int:
    """vpc: Patroni REST and the Toxiproxy API of the DB namespace on the root's loopback."""
    ports = [state.ports["toxiproxy"], *(state.ports[n + "_rest"] for n in NODES)]
    argv = [sys.executable, "-m", "pgproof.lab.mgmt_bridge", "--netns", state.vpc["db_ns"],
            *(a for p in ports for a in ("--port", str(p)))]
    return procs.spawn(argv, state.log("mgmt"), state.pidfile("mgmt"), procs.clean_env())


def start_toxiproxy(state: LabState) -> int | None:
    """Our Toxiproxy-API server, unless TOXIPROXY_URL names a real one."""
    external = os.environ.get("TOXIPROXY_URL")
    if external:
        state.toxiproxy_url, state.external_toxiproxy = external.rstrip("/"), True
        return None
    state.toxiproxy_url = f"http://127.0.0.1:{state.ports['toxiproxy']}"
    argv = [sys.executable, "-m", "pgproof.proxy.server",
            "--host", "127.0.0.1", "--port", str(state.ports["toxiproxy"])]
    return _spawn(state, "toxiproxy", argv, procs.clean_env(home="/tmp"))


def populate_toxiproxy(state: LabState, pid: int | None, timeout: float) -> None:
    procs.wait_until(lambda: http_ok(state.toxiproxy_url + "/version"), timeout, "toxiproxy",
                     "answering on " + state.toxiproxy_url, state.log("toxiproxy"), pid)
    r = requests.post(state.toxiproxy_url + "/populate", json=configs.toxiproxy_proxies(state),
                      timeout=5)
    if r.status_code not in (200, 201):
        raise procs.ComponentError("toxiproxy", f"populate failed: {r.status_code} {r.text}",
                                   state.log("toxiproxy"))


def remove_proxies(state: LabState) -> None:
    """On a shared (external) Toxiproxy, remove the proxies this lab created."""
    for proxy in configs.toxiproxy_proxies(state):
        try:
            requests.delete(f"{state.toxiproxy_url}/proxies/{proxy['name']}", timeout=3)
        except requests.RequestException:
            return


def prepare_node(state: LabState, node: str, pw: dict[str, str]) -> None:
    nd = state.node_dir(node)
    (nd / "pglog").mkdir(parents=True, exist_ok=True)
    shutil.copy(state.tls / "server.key", nd / "server.key")
    (nd / "server.key").chmod(0o600)
    cfg = nd / "patroni.yml"
    cfg.write_text(json.dumps(configs.patroni_config(state, node, pw), indent=1))
    cfg.chmod(0o600)
    procs.chown_service(nd, nd / "pglog", nd / "server.key", cfg)
    state.home.mkdir(mode=0o700, exist_ok=True)
    procs.chown_service(state.home)


def patroni_argv(state: LabState, node: str) -> list[str]:
    return procs.as_service_user([str(PATRONI), str(state.node_dir(node) / "patroni.yml")])


def start_patroni(state: LabState, node: str) -> int:
    """Patroni for ``node``: its own process, or its supervisord program (``--supervisor``)."""
    if state.supervisor:
        return supervised.start_node(state, node)
    return _spawn(state, node, patroni_argv(state, node), procs.clean_env(home=str(state.home)))


def start_supervisor(state: LabState, timeout: float) -> int:
    return supervised.start_daemon(state, {n: patroni_argv(state, n) for n in NODES}, timeout)


def _rest(state: LabState) -> list[str]:
    return [state.rest_url(n) for n in NODES]


def cluster(state: LabState) -> dict[str, Any]:
    """Patroni's /cluster view from whichever node answers."""
    return patroni.cluster(_rest(state))


def leader(state: LabState) -> str | None:
    return patroni.leader(_rest(state))


def sync_standby_streaming(state: LabState) -> bool:
    return patroni.healthy(_rest(state))[0]


def superuser_conninfo(state: LabState, port_name: str = "haproxy_writer") -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": state.ports[port_name], "user": "postgres",
            "passfile": str(state.passfile), "dbname": "postgres", "sslmode": "verify-ca",
            "sslrootcert": str(state.ca_file), "connect_timeout": 2}


def writer_accepts_sql(state: LabState) -> bool:
    with psycopg.connect(**superuser_conninfo(state), autocommit=True) as conn:
        return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone() == (True,)


def create_roles(state: LabState, pw: dict[str, str]) -> None:
    """The app's role and database, and pgproof's own read-only auditor role."""
    with psycopg.connect(**superuser_conninfo(state), autocommit=True) as conn:
        for role, extra in (("app", ""), ("pgproof", " IN ROLE pg_monitor")):
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} CONNECTION LIMIT {}" + extra).format(
                sql.Identifier(role), sql.Literal(scram_verifier(pw[role])),
                sql.Literal(configs.CONNECTION_LIMITS[role])))
        # Patroni created the replication role at bootstrap; CIS 5.5 wants a limit on it too.
        conn.execute(sql.SQL("ALTER ROLE replicator CONNECTION LIMIT {}").format(
            sql.Literal(configs.CONNECTION_LIMITS["replicator"])))
        conn.execute("CREATE DATABASE appdb OWNER app")
    # Catalog views are per database: grant where the auditor connects.
    with psycopg.connect(**{**superuser_conninfo(state), "dbname": "appdb"}, autocommit=True) as conn:
        conn.execute("GRANT SELECT ON pg_hba_file_rules TO pgproof")
        conn.execute("GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO pgproof")
        for ext in configs.APP_EXTENSIONS:  # CIS 4.8 (PRIV-7) and 6.11 (ENC-4)
            conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))


def start_haproxy(state: LabState) -> int:
    cfg = state.run_dir / "haproxy.cfg"
    cfg.write_text(configs.haproxy_config(state))
    return _spawn(state, "haproxy", ["haproxy", "-db", "-f", str(cfg)])


def start_pgbouncer(state: LabState, pw: dict[str, str], pool_size: int = 20) -> int:
    d = state.run_dir / "pgbouncer"
    d.mkdir(parents=True, exist_ok=True)
    shutil.copy(state.tls / "server.key", d / "server.key")
    (d / "server.key").chmod(0o600)
    write_pgbouncer_config(state, pw, pool_size)
    ulist = d / "userlist.txt"
    ulist.write_text(configs.pgbouncer_userlist(pw))
    ulist.chmod(0o600)
    procs.chown_service(d, d / "server.key", ulist)
    argv = procs.as_service_user(["pgbouncer", str(d / "pgbouncer.ini")])
    return _spawn(state, "pgbouncer", argv, procs.clean_env(home=str(state.home)))


def write_pgbouncer_config(state: LabState, pw: dict[str, str], pool_size: int = 20) -> Path:
    ini = state.run_dir / "pgbouncer" / "pgbouncer.ini"
    ini.write_text(configs.pgbouncer_ini(state, pool_size))
    procs.chown_service(ini)
    return ini


def start_health(state: LabState, sslmode: str = "verify-full") -> int:
    conninfo = {"host": topology.db_host(state), "port": state.ports["pgbouncer"], "dbname": "appdb",
                "user": "app", "passfile": str(state.passfile), "sslmode": sslmode,
                "sslrootcert": str(state.ca_file), "connect_timeout": 3}
    f = state.run_dir / "health.json"
    f.write_text(json.dumps(conninfo))
    argv = [sys.executable, "-m", "pgproof.lab.health_app", "--host", topology.app_host(state),
            "--port", str(state.ports["health"]),
            "--conninfo-file", str(f)]
    return _spawn(state, "health", argv, procs.clean_env(home="/tmp"))


def health_url(state: LabState) -> str:
    return f"http://{topology.app_host(state)}:{state.ports['health']}/api/health/database"


def start_moto(state: LabState) -> int:
    """moto_server with the lab bridged in (RDS failover -> Patroni, DB SG ingress -> client path,
    CloudWatch alarm actions -> SNS): one process, ``pgproof.lab.aws_bridge``.

    Fresh access keys first: the twin serves only requests signed with them (owner-only file).
    """
    creds, _ = aws_twin.lab_files(state.state_dir)
    aws_twin.write_lab_credentials(creds)
    argv = [sys.executable, "-m", "pgproof.lab.aws_bridge", "--state-dir", str(state.state_dir),
            "--credentials", str(creds), "-H", "127.0.0.1", "-p", str(state.ports["moto"])]
    return _spawn(state, "moto", argv, procs.clean_env(home="/tmp"))


def make_outside_netns(state: LabState) -> str:
    """An empty network namespace (only its own loopback): a vantage point outside the VPC.

    Returns "" where namespaces cannot be made (not root): NET-5 then has no outside view.
    """
    import subprocess

    name = f"{state.scope}-out"
    remove_netns(name)
    for cmd in (["ip", "netns", "add", name], ["ip", "-n", name, "link", "set", "lo", "up"]):
        if subprocess.run(cmd, capture_output=True).returncode != 0:
            remove_netns(name)
            return ""
    return name


def remove_netns(name: str) -> None:
    import subprocess

    subprocess.run(["ip", "netns", "del", name], capture_output=True)
