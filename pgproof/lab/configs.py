"""Render the lab's configuration files from its state: pure functions, no side effects."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from pgproof.lab import backup, bastion, topology
from pgproof.lab.state import NODES, LabState
from pgproof.procs import PG_BIN, SERVICE_USER

LO = "127.0.0.1"

# Patroni 4 raises ttl to >= 20 s; loop_wait + 2 * retry_timeout must stay <= ttl.
DCS = {"ttl": 20, "loop_wait": 2, "retry_timeout": 5, "maximum_lag_on_failover": 1048576,
       "synchronous_mode": True, "synchronous_mode_strict": False}

# CIS 5.5 (PRIV-4): every non-superuser login role has a connection limit (PostgreSQL does not
# apply one to superusers). app: the Locust users (load_users 10, --users up to 8 in the tests),
# PgBouncer's pools (default_pool_size 20 for each of its 2 databases), the failover clock and
# the health app, with headroom; pgproof: the auditor's few sequential sessions per run, several
# runs at once in the tests; replicator: max_wal_senders. Their sum stays below max_connections.
CONNECTION_LIMITS = {"app": 60, "pgproof": 20, "replicator": 10}

PG_HBA = [
    "local all postgres peer",
    "local all all scram-sha-256",
    "hostssl replication replicator 127.0.0.1/32 scram-sha-256",
    "hostssl all all 127.0.0.1/32 scram-sha-256",
]


def pg_hba(state: LabState) -> list[str]:
    """On vpc the app subnet may log in too (over TLS, with a password), nothing else."""
    extra = [f"hostssl all all {state.vpc['subnet']} scram-sha-256"] if topology.is_vpc(state) else []
    return PG_HBA + extra


def listen_hosts(state: LabState) -> str:
    """Client-facing listeners: loopback, plus the DB subnet address on vpc."""
    return LO + (f",{state.vpc['db_ip']}" if topology.is_vpc(state) else "")


# Cluster-wide settings live in Patroni's dynamic config (DCS) so a mutation can
# PATCH them; node-local ones (paths) stay in each node's file, which would win.
CLUSTER_PARAMETERS: dict[str, Any] = {
    "ssl": "on",
    "ssl_min_protocol_version": "TLSv1.2",
    "password_encryption": "scram-sha-256",
    # passwordcheck: CIS 5.6 (PRIV-5); a preload, so it is set at bootstrap only (a restart).
    # Every password the lab sets in plaintext (Patroni's postgres and replicator) satisfies it
    # (state.make_secrets); the others are sent as SCRAM verifiers, which it cannot inspect.
    # set_user: CIS 4.8 (PRIV-7; Debian's postgresql-15-set-user, scripts/setup.sh), created
    # in appdb with pgcrypto (CIS 6.11, ENC-4) by components.create_roles.
    "shared_preload_libraries": "pgaudit,passwordcheck,set_user",
    "pgaudit.log": "ddl,role",
    "log_connections": "on",
    "log_disconnections": "on",
    "log_min_duration_statement": 1000,
    "logging_collector": "on",
    # CIS 3.1.5 (LOG-20): a dated name, so the daily rotation opens a new file and
    # log_truncate_on_rotation only ever truncates a name that recurs (LabState.pg_log finds it).
    "log_filename": "postgresql-%Y%m%d.log",
    # CIS 3.1.x / 7.2 (LOG-*): every line says who, where and when (the driver's PG_PROMOTED
    # reads the leading "%m" in UTC); schema changes, errors and replication commands logged.
    "log_line_prefix": "%m [%p]: db=%d,user=%u,app=%a,client=%h ",
    "log_timezone": "UTC",
    "log_truncate_on_rotation": "on",
    "log_error_verbosity": "verbose",
    "log_statement": "ddl",
    "log_replication_commands": "on",
    "wal_level": "replica",
    "wal_log_hints": "on",
    "hot_standby": "on",
    "max_connections": 100,
    "max_wal_senders": 10,
    "max_replication_slots": 10,
    "shared_buffers": "64MB",
    # A process crash keeps the OS page cache, so fsync buys nothing in the lab but time.
    "fsync": "off",
    # Continuous archiving (pgBackRest, pgproof/lab/backup.py); the command is added per lab.
    "archive_mode": "on",
    "archive_timeout": backup.ARCHIVE_TIMEOUT_S,
}


# Extensions the lab creates in appdb: set_user (CIS 4.8) and pgcrypto (CIS 6.11).
APP_EXTENSIONS = ("set_user", "pgcrypto")


def pg_parameters(state: LabState, node: str) -> dict[str, Any]:
    nd = state.node_dir(node)
    return {
        "unix_socket_directories": str(nd),
        "ssl_cert_file": str(state.tls / "server.crt"),
        "ssl_key_file": str(nd / "server.key"),
        "log_directory": str(nd / "pglog"),
    }


def patroni_config(state: LabState, node: str, pw: dict[str, str]) -> dict[str, Any]:
    p = state.ports
    # verify-ca: the wrong-host certificate mutation must break clients, not replication.
    ssl = {"sslmode": "verify-ca", "sslrootcert": str(state.ca_file)}
    return {
        "scope": state.scope,
        "namespace": "/service/",
        "name": node,
        "restapi": {"listen": f"{LO}:{p[node + '_rest']}", "connect_address": f"{LO}:{p[node + '_rest']}"},
        # use_proxies: never bypass the Toxiproxy path by discovering etcd's own URLs.
        "etcd3": {"hosts": [f"{LO}:{p[node + '_etcd_proxy']}"], "use_proxies": True},
        "bootstrap": {
            "dcs": {**DCS, "postgresql": {"use_pg_rewind": True, "use_slots": True,
                                          "parameters": {**CLUSTER_PARAMETERS,
                                                         "archive_command": backup.archive_command(state)},
                                          "pg_hba": pg_hba(state)}},
            "initdb": [{"encoding": "UTF8"}, {"locale": "C.UTF-8"}, "data-checksums"],
        },
        "postgresql": {
            "listen": f"{listen_hosts(state)}:{p[node + '_pg']}",
            # Peers reach this node through its replication proxy, so a fault can cut it.
            "connect_address": f"{LO}:{p[node + '_repl_proxy']}",
            "data_dir": str(state.data_dir(node)),
            "bin_dir": str(PG_BIN),
            "pgpass": str(state.node_dir(node) / "pgpass"),
            "authentication": {
                "superuser": {"username": "postgres", "password": pw["postgres"], **ssl},
                "replication": {"username": "replicator", "password": pw["replicator"], **ssl},
            },
            "parameters": pg_parameters(state, node),
            "create_replica_methods": ["basebackup"],
            "basebackup": [{"checkpoint": "fast"}],
            "use_unix_socket": True,
        },
        "tags": {"nofailover": False, "noloadbalance": False},
    }


def toxiproxy_proxies(state: LabState) -> list[dict[str, Any]]:
    """Every path a fault may slow or cut: clients, node -> etcd, node -> node."""
    p, client = state.ports, topology.db_host(state)
    proxies = [
        {"name": "writer", "listen": f"{client}:{p['writer']}", "upstream": f"{LO}:{p['haproxy_writer']}"},
        {"name": "reader", "listen": f"{client}:{p['reader']}", "upstream": f"{LO}:{p['haproxy_reader']}"},
    ]
    for n in NODES:
        proxies += [
            {"name": f"{n}_pg", "listen": f"{LO}:{p[n + '_pg_proxy']}", "upstream": f"{LO}:{p[n + '_pg']}"},
            {"name": f"{n}_repl", "listen": f"{LO}:{p[n + '_repl_proxy']}", "upstream": f"{LO}:{p[n + '_pg']}"},
            {"name": f"{n}_etcd", "listen": f"{LO}:{p[n + '_etcd_proxy']}", "upstream": f"{LO}:{p['etcd_client']}"},
        ]
    return [{**x, "enabled": True} for x in proxies]


def etcd_argv(state: LabState) -> list[str]:
    c, pe = state.ports["etcd_client"], state.ports["etcd_peer"]
    return [
        "etcd", "--name", "lab", "--data-dir", str(state.run_dir / "etcd"),
        "--listen-client-urls", f"http://{LO}:{c}", "--advertise-client-urls", f"http://{LO}:{c}",
        "--listen-peer-urls", f"http://{LO}:{pe}", "--initial-advertise-peer-urls", f"http://{LO}:{pe}",
        "--initial-cluster", f"lab=http://{LO}:{pe}", "--initial-cluster-state", "new",
        "--initial-cluster-token", state.scope, "--heartbeat-interval", "100",
        "--election-timeout", "1000", "--log-level", "warn",
    ]


def haproxy_config(state: LabState) -> str:
    """Writer follows Patroni's leader (/primary), reader its replicas (/replica)."""
    p = state.ports

    def servers(check: str) -> str:
        return "\n".join(
            f"  server {n} {LO}:{p[n + '_pg_proxy']} check port {p[n + '_rest']}" for n in NODES
        ) + f"\n  option httpchk GET {check}\n  http-check expect status 200\n"

    return f"""global
  maxconn 1000
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  timeout check 1s
  default-server inter 250ms fall 2 rise 1 on-marked-down shutdown-sessions
listen writer
  bind {LO}:{p['haproxy_writer']}
{servers('/primary')}
listen reader
  bind {LO}:{p['haproxy_reader']}
  balance roundrobin
{servers('/replica')}"""


def pgbouncer_ini(state: LabState, pool_size: int = 20) -> str:
    p, d = state.ports, state.run_dir / "pgbouncer"
    upstream = f"host={LO} port={p['haproxy_writer']}"
    return f"""[databases]
appdb = {upstream} dbname=appdb
postgres = {upstream} dbname=postgres

[pgbouncer]
listen_addr = {listen_hosts(state)}
listen_port = {p['pgbouncer']}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {d / 'userlist.txt'}
admin_users = pgbouncer_admin
stats_users = pgproof
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 500
server_idle_timeout = 60
server_check_query = select 1
server_check_delay = 10
server_connect_timeout = 3
server_login_retry = 1
ignore_startup_parameters = extra_float_digits,options
client_tls_sslmode = require
client_tls_protocols = tlsv1.2,tlsv1.3
client_tls_cert_file = {state.tls / 'server.crt'}
client_tls_key_file = {d / 'server.key'}
server_tls_sslmode = verify-ca
server_tls_protocols = tlsv1.2,tlsv1.3
server_tls_ca_file = {state.ca_file}
"""


def pgbouncer_userlist(pw: dict[str, str]) -> str:
    users = ("app", "pgproof", "pgbouncer_admin", "postgres")
    return "".join(f'"{u}" "{pw[u]}"\n' for u in users)


def _vantage(state: LabState) -> tuple[list[str], list[str]]:
    """NET-5's vantage points: on vpc the app namespace must reach the writer, the runner not."""
    outside = ["netns://" + state.netns] if state.netns else []
    if topology.is_vpc(state):
        return ["netns://" + state.vpc["app_ns"]], ["local://", *outside]
    return ["local://"], outside


def db_hosts(state: LabState) -> list[str]:
    """The ``lab`` target's database hosts: one ``local://`` per node, naming what a real host
    has in its own place (PGDATA, the account, its home) and, since several labs share this
    machine, only this lab's processes (``processes=``). No systemd unit starts the nodes."""
    return ["local://?" + urlencode({"name": n, "pgdata": str(state.data_dir(n)),
                                     "os_user": SERVICE_USER, "home": str(state.home),
                                     "unit": "none", "processes": str(state.run_dir),
                                     "pg_bin": str(PG_BIN)}, safe="/")
            for n in NODES]


def lab_waivers(today: dt.date | None = None) -> list[str]:
    """What the lab cannot meet because it shares one unencrypted, non-FIPS Debian machine
    with other labs: the machine-wide facts are judged read-only and waived here, with why."""
    expires = (today or dt.date.today()) + dt.timedelta(days=30)
    waivers = [
        ("check", "suites/test_controls.py::test_control[ENC-1-host]",
         "the lab's data directories sit on this machine's unencrypted disk; encryption at rest "
         "is proven on the AWS twin (ENC-1 aws) and the host judge by its unit tests"),
        ("control", "HOST-5",
         "FIPS mode is machine-wide (kernel and OpenSSL); the lab shares a Debian machine "
         "without it and may not change it"),
    ]
    out: list[str] = []
    for key, subject, why in waivers:
        out += ["", "[[waivers]]", f"{key} = {json.dumps(subject)}",
                f"justification = {json.dumps(why)}", 'owner = "pgproof lab"',
                f"expires = {expires.isoformat()}"]
    return out


def target_toml(state: LabState, driver: str = "lab", cloud: str = "aws",
                tags: dict[str, str] | None = None, hosts: list[str] | None = None,
                waivers: bool = False) -> str:
    """The lab's target file; ``driver = "aws"`` is ``lab-rds``: the same lab, driven through its
    AWS twin (``cloud = "aws-aurora"``: its Aurora cluster, ``lab-aurora``); ``cloud = "azure"`` swaps the [aws] twin section for the [azure] one (``lab-azure``),
    ``cloud = "none"`` has neither; ``driver = "ssh"`` with ``tags`` and ``hosts`` is ``lab-ssh``.
    The lab and lab-ssh state ``platform = "self-managed"``: what they are, whatever twin is beside."""
    p, host, vpc = state.ports, topology.db_host(state), topology.is_vpc(state)

    def ep(port: int, **kw: str) -> str:
        extra = "".join(f', {k} = "{v}"' for k, v in kw.items())
        return f'{{ host = "{host}", port = {port}{extra} }}'

    app_hosts, outside_hosts = _vantage(state)
    lines = [
        "# Generated by `pgproof lab up`; do not edit. Secrets live in the passfile, not here.",
        "tags = { " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in (tags or {"env": "lab"}).items())
        + " }",
        *([f"hosts = {json.dumps(hosts)}"] if hosts else []),
        # The lab itself is a Patroni cluster the customer runs (its [aws] section is a twin of
        # the control plane); lab-rds/lab-aurora/lab-azure derive rds/aurora/azure from their ids.
        *(['platform = "self-managed"'] if driver in ("lab", "ssh") else []),
        f'health_url = "http://{topology.app_host(state)}:{p["health"]}/api/health/database"',
        f'source_tree = "{state.run_dir / "app-src"}"',
        f"app_hosts = {json.dumps(app_hosts)}",
        f"outside_hosts = {json.dumps(outside_hosts)}",
        "",
        "[postgres]",
        'user = "pgproof"',
        'dbname = "appdb"',
        'app_role = "app"',
        f'passfile = "{state.passfile}"',
        f'sslrootcert = "{state.ca_file}"',
        *([f"via = {json.dumps(bastion.via(state))}"] if vpc else []),
        f'writer = {ep(p["writer"], dbname="appdb")}',
        f'readers = [{ep(p["reader"], dbname="appdb")}]',
        f'pooler = {ep(p["pgbouncer"], dbname="appdb")}',
        f'pooler_admin = {ep(p["pgbouncer"], dbname="pgbouncer", user="pgbouncer_admin")}',
        "nodes = [" + ", ".join(ep(p[n + "_pg"], dbname="appdb") for n in NODES) + "]",
        "",
        "[thresholds]",
        # PRIV-1 (CIS 4.3): the replication-only role CIS 7.1 asks for is an intended holder
        # of REPLICATION; the bootstrap superuser (postgres) is always allowed.
        'admin_roles = ["replicator"]',
        "",
        "[chaos]",
        "allowed = true",  # vpc: faults through the management bridge, load and clock via the bastion
        f'driver = "{driver}"',
        # Paced (8 users: ~400 writes/s, a fifth of what they reach unpaced): the lab's game
        # days judge the failover, not the spare CPU of a 2-core machine shared with other labs.
        "load_rate = 50",
        "",
        "[lab]",
        f'state_dir = "{state.state_dir}"',
    ]
    if cloud == "azure":
        lines += ["", "[azure]"] + [f"{k} = {json.dumps(v)}" for k, v in state.azure.items()]
    elif state.aws and cloud in ("aws", "aws-aurora"):
        section = state.aws_aurora if cloud == "aws-aurora" else state.aws
        lines += ["", "[aws]"] + [f"{k} = {json.dumps(v)}" for k, v in section.items() if v is not None]
    lines += backup.target_section(state)
    if waivers:
        lines += lab_waivers()
    return "\n".join(lines) + "\n"
