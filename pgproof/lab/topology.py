"""The vpc topology: a private DB subnet and an app subnet, each its own network namespace.

``db`` holds etcd, Toxiproxy, the Patroni nodes, HAProxy, PgBouncer, the pgBackRest
scheduler and the subnet's S3 endpoint (a socat to the root's S3 TLS front); ``app``
holds the health app and an OpenSSH bastion. One veth pair joins them in a
benchmarking range (198.18.0.0/15) that exists only inside these namespaces.
The runner stays in the root namespace with no route to either: the root gets an
``unreachable`` route for the lab's /24, so a direct attempt fails at once and
no packet for that range ever leaves the machine. The bastion's port reaches the
root namespace over a unix-socket bridge (both namespaces share the filesystem),
so the root namespace needs no address in the range at all.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pgproof.lab import netns
from pgproof.lab.state import LabState

TOPOLOGIES = ("loopback", "vpc")
RANGE = ipaddress.IPv4Network("198.18.0.0/16")
# Which tier each process belongs to (everything else, e.g. moto, stays in the root namespace).
DB_TIER = ("etcd", "toxiproxy", "node1", "node2", "haproxy", "pgbouncer", "backup", "s3_endpoint")
APP_TIER = ("health", "sshd", "bastion_ns")


def is_vpc(state: LabState) -> bool:
    return state.topology == "vpc"


def names(state: LabState) -> dict[str, str]:
    """Namespace and veth names, derived from the scope so `down` finds them after a crash."""
    digest = state.scope.removeprefix("pgproof-")
    return {"db_ns": f"{state.scope}-db", "app_ns": f"{state.scope}-app",
            "veth_db": f"pv{digest[:8]}d", "veth_app": f"pv{digest[:8]}a"}


def _free_subnet(state: LabState) -> ipaddress.IPv4Network:
    """A /24 of the range that no route in the root namespace uses yet (labs run side by side)."""
    subnets = list(RANGE.subnets(new_prefix=24))
    start = int(state.scope.removeprefix("pgproof-")[:4], 16) % len(subnets)
    for i in range(len(subnets)):
        net = subnets[(start + i) % len(subnets)]
        if not netns.ip("route", "show", str(net), check=False).stdout.strip():
            return net
    raise netns.NetnsError(f"no free /24 left in {RANGE}")


def plan(state: LabState) -> dict[str, str]:
    net = _free_subnet(state)
    hosts = list(net.hosts())
    return {**names(state), "subnet": str(net), "app_ip": str(hosts[0]), "db_ip": str(hosts[1]),
            "route": ""}


def create(state: LabState) -> None:
    """Both namespaces, the veth between them, and the root's unreachable route (recorded)."""
    v = state.vpc
    prefix = v["subnet"].split("/")[1]
    netns.add(v["db_ns"])
    netns.add(v["app_ns"])
    netns.ip("link", "add", v["veth_db"], "type", "veth", "peer", "name", v["veth_app"])
    for end, ns, addr in ((v["veth_db"], v["db_ns"], v["db_ip"]),
                          (v["veth_app"], v["app_ns"], v["app_ip"])):
        netns.ip("link", "set", end, "netns", ns)
        netns.ip("-n", ns, "addr", "add", f"{addr}/{prefix}", "dev", end)
        netns.ip("-n", ns, "link", "set", end, "up")
    netns.ip("route", "add", "unreachable", v["subnet"])
    v["route"] = v["subnet"]
    state.save()


def remove(state: LabState) -> None:
    """Undo ``create``; safe to call on a half-made or already removed topology."""
    n = {**names(state), **state.vpc}
    for ns in (n["db_ns"], n["app_ns"]):
        netns.remove(ns)
    netns.ip("link", "del", n["veth_db"], check=False)  # only if it never left the root
    if state.vpc.get("route"):
        netns.ip("route", "del", "unreachable", state.vpc["route"], check=False)


def ns_of(state: LabState, component: str) -> str | None:
    """The namespace a component runs in (None: the root namespace)."""
    if not is_vpc(state):
        return None
    if component in DB_TIER:
        return state.vpc["db_ns"]
    if component in APP_TIER:
        return state.vpc["app_ns"]
    return None


def wrap(state: LabState, component: str, argv: list[str]) -> list[str]:
    ns = ns_of(state, component)
    return netns.exec_argv(ns, argv) if ns else argv


def db(state: LabState) -> Any:
    """Context: the calling thread inside the DB namespace (a no-op on loopback)."""
    return netns.inside(state.vpc.get("db_ns") if is_vpc(state) else None)


def app(state: LabState) -> Any:
    return netns.inside(state.vpc.get("app_ns") if is_vpc(state) else None)


def db_host(state: LabState) -> str:
    """Where clients reach the DB tier: its subnet address on vpc, loopback otherwise."""
    return state.vpc["db_ip"] if is_vpc(state) else "127.0.0.1"


def app_host(state: LabState) -> str:
    return state.vpc["app_ip"] if is_vpc(state) else "127.0.0.1"
