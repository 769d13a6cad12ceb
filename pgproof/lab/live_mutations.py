"""Misconfigurations of the running lab (PostgreSQL via Patroni, PgBouncer, HAProxy, app).

Each ``break_*`` has a ``heal_*`` that restores exactly the healthy setting,
and each waits until the change is visible, so a check run right after sees it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import psycopg
import requests

from pgproof import procs
from pgproof.lab import components as c
from pgproof.lab import configs, pki
from pgproof.lab.state import NODES, LabState
from pgproof.probes.network import reachable_from
from pgproof.probes.tls_wire import NoTls, pinned_context, tls_handshake


def _sql(state: LabState, query: str, port: str = "haproxy_writer") -> Any:
    with psycopg.connect(**c.superuser_conninfo(state, port), autocommit=True) as conn:
        cur = conn.execute(query)
        row = cur.fetchone() if cur.description else None
        return row[0] if row else None


def _wait(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    procs.wait_until(check, timeout, "mutation", what, interval=0.2)


def patch_cluster(state: LabState, patch: dict[str, Any]) -> None:
    """PATCH Patroni's dynamic config (applied by every node on its next loop)."""
    leader = c.leader(state) or NODES[0]
    r = requests.patch(state.rest_url(leader) + "/config", json=patch, timeout=10)
    if r.status_code != 200:
        raise procs.ComponentError("patroni", f"PATCH /config failed: {r.status_code} {r.text}")


def set_parameters(state: LabState, params: dict[str, Any]) -> None:
    """Change cluster parameters and wait until every node shows them (``None`` = default)."""
    patch_cluster(state, {"postgresql": {"parameters": params}})
    expected = {k: configs.CLUSTER_PARAMETERS.get(k) if v is None else v for k, v in params.items()}

    def applied() -> bool:
        for node in NODES:
            for k, v in expected.items():
                if v is None:  # not a lab parameter: back to PostgreSQL's built-in default
                    query = f"SELECT setting = boot_val FROM pg_settings WHERE name = '{k}'"
                    if _sql(state, query, f"{node}_pg") is not True:
                        return False
                    continue
                got = _sql(state, f"SELECT setting FROM pg_settings WHERE name = '{k}'", f"{node}_pg")
                if str(got) != str(v):
                    return False
        return True

    _wait(applied, f"showing {expected} on every node")


def set_hba(state: LabState, lines: list[str]) -> None:
    patch_cluster(state, {"postgresql": {"pg_hba": lines}})
    want = ",".join(f"{ln.split()[0]}:{ln.split()[-1]}" for ln in lines)
    query = ("SELECT string_agg(type || ':' || auth_method, ',' ORDER BY line_number)"
             " FROM pg_hba_file_rules")
    _wait(lambda: all(_sql(state, query, f"{n}_pg") == want for n in NODES),
          "pg_hba.conf rewritten on every node")


def reissue_cert(state: LabState, hosts: tuple[str, ...], days: int, key_type: str = "ec") -> None:
    """New server certificate (same key paths) and a reload of every node.

    PgBouncer's key copy is replaced too (it is not reloaded), so the shared
    certificate and its key stay a pair whenever PgBouncer next reads them.
    """
    ca = pki.CertFiles(state.tls / "ca.crt", state.tls / "ca.key")
    leaf = pki.issue_server_cert(ca, state.tls, stem="server", hosts=hosts, days=days,
                                 key_type=key_type)
    pooler_key = state.run_dir / "pgbouncer" / "server.key"
    if pooler_key.exists():
        pooler_key.write_bytes(leaf.key.read_bytes())
        procs.chown_service(pooler_key)
    for node in NODES:
        dst = state.node_dir(node) / "server.key"
        dst.write_bytes(leaf.key.read_bytes())
        procs.chown_service(dst)
        requests.post(state.rest_url(node) + "/reload", timeout=10)
    # Reload is asynchronous: wait until every postmaster hands out the new leaf, or a
    # check run right after sees one node's old certificate (ci10's TLS-3 flake).
    want = ssl.PEM_cert_to_DER_cert(leaf.cert.read_text())
    _wait(lambda: all(_served_leaf(state.ports[f"{n}_pg"]) == want for n in NODES),
          "serving the reissued certificate on every node", timeout=30)


def _served_leaf(port: int) -> bytes | None:
    try:
        hs = tls_handshake("127.0.0.1", port, pinned_context("TLSv1.3"), None, 3)
    except (OSError, NoTls):
        return None
    return hs.chain_der[0] if hs.chain_der else None


def set_app_superuser(state: LabState, on: bool) -> None:
    _sql(state, f"ALTER ROLE app {'SUPERUSER' if on else 'NOSUPERUSER'}")


def restart_haproxy(state: LabState, reader_check: str) -> None:
    pid = procs.read_pid(state.pidfile("haproxy"))
    if pid:
        procs.stop_pid(pid, timeout=3)
    cfg = state.run_dir / "haproxy.cfg"
    cfg.write_text(configs.haproxy_config(state).replace("GET /replica", f"GET {reader_check}"))
    new = procs.spawn(["haproxy", "-db", "-f", str(cfg)], state.log("haproxy"),
                      state.pidfile("haproxy"), procs.clean_env())
    want = reader_check == "/replica"

    def routed() -> bool:
        return _sql(state, "SELECT pg_is_in_recovery()", "haproxy_reader") is want

    procs.wait_until(lambda: c.writer_accepts_sql(state) and routed(), 20, "haproxy",
                     f"routing the reader to {reader_check}", state.log("haproxy"), new)


def pgbouncer_setting(state: LabState, pool_size: int = 20, server_tls: str = "verify-ca") -> None:
    ini = c.write_pgbouncer_config(state, state.secrets(), pool_size)
    ini.write_text(ini.read_text().replace("server_tls_sslmode = verify-ca",
                                           f"server_tls_sslmode = {server_tls}"))
    admin: dict[str, Any] = {"host": "127.0.0.1", "port": state.ports["pgbouncer"], "dbname": "pgbouncer",
             "user": "pgbouncer_admin", "passfile": str(state.passfile), "sslmode": "require",
             "connect_timeout": 3}
    with psycopg.connect(**admin, autocommit=True, prepare_threshold=None) as conn:
        conn.cursor().execute("RELOAD", prepare=False)


def restart_health(state: LabState, sslmode: str) -> None:
    pid = procs.read_pid(state.pidfile("health"))
    if pid:
        procs.stop_pid(pid, timeout=3)
    new = c.start_health(state, sslmode)
    procs.wait_until(lambda: procs.port_open("127.0.0.1", state.ports["health"]), 10,
                     "health app", "listening", state.log("health"), new)


def write_source_literal(state: LabState, present: bool) -> None:
    f = app_source(state) / "settings_local.py"
    if present:
        # A fake credential shaped like a real leak; it opens nothing.
        f.write_text('DATABASE_URL = "postgresql://app:' + "leaked-" + 'Example123@db.internal/appdb"\n')
    else:
        f.unlink(missing_ok=True)


def app_source(state: LabState) -> Any:
    """The lab app's source tree for AUTH-4: credentials come from the environment."""
    d = state.run_dir / "app-src"
    if not d.exists():
        d.mkdir(parents=True)
        (d / "settings.py").write_text(
            'import os\n\nDATABASE_URL = os.environ["DATABASE_URL"]  # from Secrets Manager\n')
    return d


EXPOSE = ("expose_host", "expose_ns")


def expose_writer(state: LabState, on: bool) -> None:
    """Make the writer reachable from the outside namespace (a socat bridge over a unix socket).

    The namespace shares our filesystem, so a listener inside it can reach the writer
    without any routed address: the lab's stand-in for a database opened to the internet.
    """
    for name in EXPOSE:
        pid = procs.read_pid(state.pidfile(name))
        if pid:
            procs.stop_pid(pid, timeout=2)
        state.pidfile(name).unlink(missing_ok=True)
    sock = state.run_dir / "expose.sock"
    sock.unlink(missing_ok=True)
    if not on:
        return
    if not state.netns:
        raise procs.ComponentError("mutation", "no outside network namespace in this lab")
    port = state.ports["writer"]
    env = procs.clean_env(home="/tmp")
    procs.spawn(["socat", f"UNIX-LISTEN:{sock},fork,mode=600", f"TCP:127.0.0.1:{port}"],
                state.log("expose"), state.pidfile("expose_host"), env)
    procs.wait_until(sock.exists, 5, "mutation", "bridge socket created", state.log("expose"))
    procs.spawn(["ip", "netns", "exec", state.netns, "socat",
                 f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr", f"UNIX-CONNECT:{sock}"],
                state.log("expose"), state.pidfile("expose_ns"), env)
    procs.wait_until(lambda: reachable_from(f"netns://{state.netns}", "127.0.0.1", port), 5,
                     "mutation", "writer reachable from the outside namespace", state.log("expose"))


def _sql_in(state: LabState, dbname: str, query: str) -> None:
    """A statement as the superuser in one database (catalogs such as pg_proc are per database)."""
    with psycopg.connect(**{**c.superuser_conninfo(state), "dbname": dbname}, autocommit=True) as conn:
        conn.execute(query)


EXTRA_ADMIN = "pgproof_extra_admin"
SECDEF_FUNCTION = "public.pgproof_secdef_probe()"


def extra_admin(state: LabState, on: bool) -> None:
    """PRIV-1: one more login role with CREATEDB (a connection limit, so PRIV-4 stays healthy)."""
    _sql(state, f"CREATE ROLE {EXTRA_ADMIN} LOGIN CREATEDB CONNECTION LIMIT 2" if on
         else f"DROP ROLE IF EXISTS {EXTRA_ADMIN}")


def secdef_function(state: LabState, on: bool) -> None:
    """PRIV-2: a SECURITY DEFINER function in appdb, PUBLIC-executable (the default), no search_path."""
    _sql_in(state, "appdb", f"CREATE FUNCTION {SECDEF_FUNCTION} RETURNS int LANGUAGE sql "
            "SECURITY DEFINER AS 'SELECT 1'" if on else f"DROP FUNCTION IF EXISTS {SECDEF_FUNCTION}")


def public_schema_create(state: LabState, on: bool) -> None:
    """PRIV-3: PUBLIC may create in appdb's public schema (the pre-PostgreSQL-15 default)."""
    _sql_in(state, "appdb", "GRANT CREATE ON SCHEMA public TO PUBLIC" if on
            else "REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def app_connection_limit(state: LabState, limit: int) -> None:
    """PRIV-4: the app role's CONNECTION LIMIT (-1: none)."""
    _sql(state, f"ALTER ROLE app CONNECTION LIMIT {int(limit)}")


def replicator_superuser(state: LabState, on: bool) -> None:
    """PRIV-6: the role the standbys stream as becomes a superuser."""
    _sql(state, f"ALTER ROLE replicator {'SUPERUSER' if on else 'NOSUPERUSER'}")


# -- the database host (HOST-2, HOST-3): only this lab's own files and processes -----------

def psql_history(state: LabState, on: bool) -> None:
    """A psql history in the lab account's home (``state.home``, the nodes' HOME)."""
    hist = state.home / ".psql_history"
    if on:
        hist.write_text("SELECT 1;\n")
        procs.chown_service(hist)
        hist.chmod(0o600)
    else:
        hist.unlink(missing_ok=True)


CLIENT = "pgpassword-client"
OPEN_UMASK = "umask-open-client"


def _account_process(state: LabState, name: str, on: bool, umask: str = "077",
                     **env: str) -> None:
    """A long sleep run by the lab's database account, its command line naming the lab's
    directory (so the lab target's ``processes=`` scope sees it), or stopped again."""
    if on:
        argv = procs.as_service_user(["python3", "-c", "import time; time.sleep(3600)",
                                      str(state.run_dir / name)], umask=umask)
        procs.spawn(argv, state.log(name), state.pidfile(name),
                    procs.clean_env(home=str(state.home), **env))
        return
    pid = procs.read_pid(state.pidfile(name))
    if pid is not None:
        procs.stop_pid(pid)
    state.pidfile(name).unlink(missing_ok=True)


def pgpassword_process(state: LabState, on: bool) -> None:
    """A client of the lab account with PGPASSWORD in its environment (a dummy value: the host
    probe reports where PGPASSWORD is, never what it holds)."""
    _account_process(state, CLIENT, on, PGPASSWORD="lab-mutation-dummy")


def open_umask_process(state: LabState, on: bool) -> None:
    """A process of the lab account with umask 0022: what it creates is world-readable."""
    _account_process(state, OPEN_UMASK, on, umask="022")


def hba_mode(state: LabState, mode: int) -> None:
    """Every node's pg_hba.conf to ``mode`` (0o644 breaks HOST-3; 0o600 is the lab's own)."""
    for node in NODES:
        (state.data_dir(node) / "pg_hba.conf").chmod(mode)


# -- CIS 3.1.4 / 3.1.5 (LOG-19, LOG-20): node-local log placement, by ALTER SYSTEM --------------

def log_files_misplaced(state: LabState, on: bool) -> None:
    """log_directory is node-local (each node's Patroni file), so ALTER SYSTEM on every node
    (postgresql.auto.conf wins over Patroni's postgresql.conf): the PostgreSQL defaults
    log_directory = 'log' (inside PGDATA) and a fixed log_filename; RESET heals."""
    stmts = (["ALTER SYSTEM SET log_directory = 'log'",
              "ALTER SYSTEM SET log_filename = 'postgresql.log'"] if on else
             ["ALTER SYSTEM RESET log_directory", "ALTER SYSTEM RESET log_filename"])
    for node in NODES:
        for q in (*stmts, "SELECT pg_reload_conf()"):
            _sql(state, q, f"{node}_pg")
    want = {n: ("log", "postgresql.log") if on else
            (str(state.node_dir(n) / "pglog"), configs.CLUSTER_PARAMETERS["log_filename"])
            for n in NODES}

    def applied() -> bool:
        return all((_sql(state, "SELECT current_setting('log_directory')", f"{n}_pg"),
                    _sql(state, "SELECT current_setting('log_filename')", f"{n}_pg")) == want[n]
                   for n in NODES)

    _wait(applied, f"log_directory/log_filename {'at the defaults' if on else 'back'} on every node")


def app_extension(state: LabState, name: str, on: bool) -> None:
    """PRIV-7 / ENC-4: an extension of appdb dropped (``on``) or created again."""
    _sql_in(state, "appdb", f"DROP EXTENSION IF EXISTS {name}" if on
            else f"CREATE EXTENSION IF NOT EXISTS {name}")


PG_MAJOR = procs.PG_BIN.parent.name  # the lab's PostgreSQL major version ("15")


def pg_version_file(state: LabState, node: str, version: str) -> None:
    """HOST-6 (CIS 1.4): the node's PG_VERSION rewritten in place (owner and mode kept). The
    running server read it at start only; Patroni re-reads it only on a configuration change,
    which no check makes."""
    with (state.data_dir(node) / "PG_VERSION").open("r+") as f:
        f.seek(0)
        f.write(f"{version}\n")
        f.truncate()
