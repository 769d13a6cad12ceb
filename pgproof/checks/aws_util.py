"""Small helpers shared by the AWS judges (``checks.aws`` and ``checks.aws_ops``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from pgproof.probes.aws import AwsInventory
from pgproof.verdict import CannotVerify

ON = {"1", "on", "true", "yes"}
PRIVATE_V4 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
PRIVATE_V6 = ipaddress.ip_network("fc00::/7")


def verdict(problems: list[str], gaps: list[str]) -> list[str]:
    """A definite problem wins; otherwise an unprovable fact makes the control unverifiable."""
    if problems:
        return problems
    if gaps:
        raise CannotVerify("; ".join(gaps))
    return []


def primary(inv: AwsInventory) -> dict[str, Any]:
    if inv.primary is None:
        raise CannotVerify("the inventory holds no primary DB instance")
    return inv.primary


def not_cluster_member(inv: AwsInventory, settings: str) -> None:
    """A cluster member's instance record does not carry ``settings`` (the cluster's): say so.

    Recorded real responses: every instance of a Multi-AZ DB cluster reports ``MultiAZ``
    false and ``DeletionProtection`` false; the cluster record holds the real values.
    """
    p = primary(inv)
    cid = p.get("DBClusterIdentifier")
    if inv.cluster is None and cid:
        raise CannotVerify(f"{dbid(p)} is a member of DB cluster {cid}, whose record holds "
                           f"{settings}; name the cluster in the target (aws.db_cluster_id = "
                           f"\"{cid}\") to judge it")


def dbid(inst: dict[str, Any]) -> str:
    return f"db-instance {inst['DBInstanceIdentifier']}"


def param_groups(inv: AwsInventory) -> list[tuple[str, str, dict[str, str | None] | None]]:
    """(group, "used by ..." phrase, its parameters or None if not read) for every instance."""
    users: dict[str, list[str]] = {}
    for inst in inv.instances:
        for g in inst.get("DBParameterGroups", []):
            users.setdefault(g["DBParameterGroupName"], []).append(inst["DBInstanceIdentifier"])
    return [(g, f"parameter group {g} (used by {', '.join(ids)})", inv.parameters.get(g))
            for g, ids in users.items()]


def param_problems(inv: AwsInventory, name: str, ok: Any, wants: str, control: str) -> list[str]:
    """One sentence per parameter group whose ``name`` is unset or fails ``ok(value)``."""
    problems, gaps = [], []
    groups = param_groups(inv)
    if not groups:
        raise CannotVerify(f"no DB parameter group is attached to the instances ({control})")
    for _, where, params in groups:
        if params is None:
            gaps.append(f"{where}: parameters could not be read")
            continue
        value = params.get(name)
        if value is None:
            problems.append(f"{where}: {name} is not set; the spec wants {wants} ({control})")
        elif not ok(value):
            problems.append(f"{where}: {name} is {value!r}; the spec wants {wants} ({control})")
    return verdict(problems, gaps)


def private_cidr(cidr: str) -> bool:
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version == 6:
        return net.subnet_of(PRIVATE_V6)
    return any(net.subnet_of(p) for p in PRIVATE_V4)
