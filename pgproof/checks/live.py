"""Judges for the pooler, the health endpoint, the network, source trees and hosts."""

from __future__ import annotations

from pgproof.probes.health import HealthFacts
from pgproof.probes.host import HostFacts
from pgproof.probes.network import ResolveFacts, is_private
from pgproof.probes.pooler import PoolerFacts
from pgproof.probes.source import Literal
from pgproof.target import Thresholds

TLS_MODES = {"require", "verify-ca", "verify-full"}


def judge_tls6_pgbouncer(f: PoolerFacts) -> list[str]:
    return [
        f"pooler {f.endpoint}: {key} is {f.config.get(key)!r}; the spec wants TLS required on "
        f"the {side} side"
        for key, side in (("client_tls_sslmode", "client"), ("server_tls_sslmode", "server"))
        if f.config.get(key) not in TLS_MODES
    ]


def judge_pool1_pgbouncer(f: PoolerFacts, th: Thresholds) -> list[str]:
    c, problems = f.config, []
    if c.get("default_pool_size") != str(th.pool_size):
        problems.append(f"pooler {f.endpoint}: default_pool_size is {c.get('default_pool_size')}; "
                        f"the spec wants {th.pool_size}")
    if int(c.get("server_idle_timeout", "0") or 0) <= 0:
        problems.append(f"pooler {f.endpoint}: server_idle_timeout is not set")
    if not c.get("server_check_query") or int(c.get("server_check_delay", "0") or 0) <= 0:
        problems.append(f"pooler {f.endpoint}: server health checks are off (server_check_query "
                        f"{c.get('server_check_query')!r}, delay {c.get('server_check_delay')})")
    return problems


def judge_mon3(f: HealthFacts) -> list[str]:
    where = f"health endpoint {f.url}"
    if f.status_code != 200 or f.body is None:
        return [f"{where} answered HTTP {f.status_code}; the spec wants 200 with a JSON body"]
    db = f.body.get("database") or {}
    problems = []
    if db.get("connected") is not True:
        problems.append(f"{where}: connection status is {db.get('connected')!r}")
    if not str(db.get("version", "")):
        problems.append(f"{where}: no server version reported")
    if db.get("ssl") is not True:
        problems.append(f"{where}: SSL reported as {db.get('ssl')!r}; the spec wants SSL on")
    if not isinstance(db.get("active_connections"), int):
        problems.append(f"{where}: active connections missing")
    if not isinstance(f.body.get("response_time_ms"), int | float):
        problems.append(f"{where}: response time missing")
    return problems


def judge_net4(f: ResolveFacts) -> list[str]:
    public = [a for a in f.addresses if not is_private(a)]
    return [f"endpoint {f.host} resolves to public address(es) {', '.join(public)}; the spec "
            "wants private addresses only"] if public else []


def judge_auth4(found: list[Literal]) -> list[str]:
    return [f"{x.path}:{x.line}: {x.kind} in source; the spec wants credentials from a secret "
            "store or the environment" for x in found]


def judge_host(f: HostFacts) -> list[str]:
    problems = []
    if f.data_dir_mode is not None and f.data_dir_mode & 0o077:
        problems.append(f"{f.host}: data directory {f.data_dir} has mode {f.data_dir_mode:o}; "
                        "the spec wants 700")
    if f.key_mode is not None and f.key_mode & 0o077:
        problems.append(f"{f.host}: server key {f.key_file} has mode {f.key_mode:o}; the spec "
                        "wants 600")
    if "crypt" not in f.data_device_types:
        problems.append(f"{f.host}: data directory {f.data_dir} is not on an encrypted block "
                        f"device (device chain: {' > '.join(f.data_device_types) or 'unknown'})")
    return problems
