"""Small helpers shared by the AWS judges (``checks.aws`` and ``checks.aws_ops``)."""

from __future__ import annotations

import ipaddress
from typing import Any

from pgproof.probes.aws_inventory import AwsInventory
from pgproof.probes.network import subnet_of
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


# Aurora PostgreSQL parameters that live only in the DB cluster parameter group: the
# engine's default instance group does not carry them, and an instance group cannot
# override them (AWS "Amazon Aurora PostgreSQL parameters": cluster-level vs instance-level).
# Every other parameter is instance-level or both; a value the instance group sets wins.
# On a Multi-AZ DB cluster (engine "postgres") every parameter is taken from the cluster group.
CLUSTER_LEVEL = frozenset({
    "rds.force_ssl", "ssl", "ssl_min_protocol_version", "ssl_max_protocol_version", "ssl_ciphers",
    "password_encryption", "rds.accepted_password_auth_method",
})
# Sources that mean "AWS's value, nobody set it": a user-set value elsewhere takes precedence.
ENGINE_SOURCES = {"engine-default", "system"}


def param_groups(inv: AwsInventory) -> list[tuple[str, str, dict[str, str | None] | None]]:
    """(group, "used by ..." phrase, its parameters or None if not read) for every instance."""
    users: dict[str, list[str]] = {}
    for inst in inv.instances:
        for g in inst.get("DBParameterGroups", []):
            users.setdefault(g["DBParameterGroupName"], []).append(inst["DBInstanceIdentifier"])
    return [(g, f"parameter group {g} (used by {', '.join(ids)})", inv.parameters.get(g))
            for g, ids in users.items()]


def instance_level(inv: AwsInventory, name: str) -> bool:
    """Whether an instance parameter group may set ``name`` on this deployment."""
    if inv.cluster is None:
        return True
    return inv.aurora and name not in CLUSTER_LEVEL


def effective(inv: AwsInventory, inst: dict[str, Any], name: str) -> tuple[str | None, str]:
    """(value, where it comes from) of ``name`` on ``inst``: value None means set nowhere.

    Order: a value the instance group sets (where AWS lets it), a value the DB cluster
    group sets, an engine value listed in either group, then the engine default of the
    group's family. Raises ``CannotVerify`` when a place that could answer was not read.
    """
    groups = [g["DBParameterGroupName"] for g in inst.get("DBParameterGroups", [])]
    cgroup = (inv.cluster or {}).get("DBClusterParameterGroup")
    places: list[tuple[str, dict[str, str | None], dict[str, str | None]]] = []
    if instance_level(inv, name):
        for g in groups:
            if inv.parameters.get(g) is None:
                raise CannotVerify(f"parameter group {g}: parameters could not be read")
            places.append((f"parameter group {g}", inv.parameters[g], inv.parameter_sources.get(g, {})))
    if inv.cluster is not None and cgroup:
        if inv.cluster_parameters is None:
            raise CannotVerify(f"DB cluster parameter group {cgroup}: parameters could not be read")
        places.append((f"DB cluster parameter group {cgroup}", inv.cluster_parameters,
                       inv.cluster_parameter_sources))
    if not places:
        raise CannotVerify(f"{dbid(inst)}: no parameter group attached, so {name} is unknown")
    for engine in (False, True):
        for where, values, sources in places:
            if values.get(name) is not None and (sources.get(name) in ENGINE_SOURCES) == engine:
                return values[name], where + (" (engine value)" if engine else "")
    value, where = _engine_default(inv, name, groups if instance_level(inv, name) else [], cgroup)
    if value is None:
        where = ", ".join(w for w, _, _ in places) + " or the engine default"
    return value, where


def _engine_default(inv: AwsInventory, name: str, groups: list[str],
                    cgroup: str | None) -> tuple[str | None, str]:
    """The engine default of the families involved; unreadable defaults make the value unknown."""
    lookups = [(inv.engine_defaults, inv.parameter_families.get(g), "engine_defaults") for g in groups]
    if inv.cluster is not None and cgroup:
        lookups.append((inv.cluster_engine_defaults, inv.parameter_families.get(cgroup),
                        "cluster_engine_defaults"))
    unknown = []
    for table, family, fact in lookups:
        if family is None or family not in table:
            unknown.append(f"the engine default{' of ' + family if family else ''} could not be read "
                           f"({inv.missing.get(fact, 'family unknown')})")
        elif table[family].get(name) is not None:
            return table[family][name], f"engine default of {family}"
    if unknown:
        raise CannotVerify(f"{name} is set in no parameter group and " + "; ".join(unknown))
    return None, ""


def param_problems(inv: AwsInventory, name: str, ok: Any, wants: str,
                   builtin: str | None = None) -> list[str]:
    """One sentence per place whose effective ``name`` is unset or fails ``ok(value)``.

    ``builtin``: PostgreSQL's own default, judged where no group and no engine default sets
    the parameter (RDS lists such a parameter without a value); without it, unset fails."""
    problems, gaps = [], []
    if not inv.instances:
        raise CannotVerify(f"no DB instance to read {name} for")
    found: dict[tuple[str | None, str], list[str]] = {}
    for inst in inv.instances:
        try:
            value, where = effective(inv, inst, name)
        except CannotVerify as exc:
            gaps.append(str(exc))
            continue
        if value is None and builtin is not None:
            value, where = builtin, "PostgreSQL's default (set in no parameter group)"
        found.setdefault((value, where), []).append(
            dbid(inst) if builtin is not None else inst["DBInstanceIdentifier"])
    for (value, where), ids in found.items():
        place = f"{where} (used by {', '.join(ids)})"
        if value is None:
            problems.append(f"{name} is not set in {place}; the spec wants {wants}")
        elif not ok(value):
            problems.append(f"{place}: {name} is {value!r}; the spec wants {wants}")
    return verdict(problems, sorted(set(gaps)))


def settings(inv: AwsInventory, *names: str) -> str:
    """Evidence: each parameter's effective value and where it comes from, per instance group."""
    out: dict[str, list[str]] = {}
    for name in names:
        for inst in inv.instances:
            try:
                value, where = effective(inv, inst, name)
            except CannotVerify:
                value, where = "unknown", "unread"
            line = f"{name}={value} ({where})"
            out.setdefault(line, []).append(inst["DBInstanceIdentifier"])
    return "; ".join(f"{ids[0] if len(ids) == 1 else ', '.join(ids)}: {line}" for line, ids in out.items())


def private_cidr(cidr: str) -> bool:
    net = ipaddress.ip_network(cidr, strict=False)
    return any(subnet_of(net, p) for p in [*PRIVATE_V4, PRIVATE_V6])
