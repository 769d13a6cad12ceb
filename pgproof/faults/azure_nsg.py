"""Partition on Azure: one NSG deny rule between the app subnet and the database subnet.

A flexible server with VNet integration lives in a delegated subnet; that
subnet's network security group decides who reaches it. The fault adds exactly
one inbound rule, ``Deny`` TCP from the app subnet's prefix to the DB ports,
at the smallest free priority (evaluated first; ARM allows 100..4096), and only
if that priority precedes every rule that admits the app tier, or the deny
would change nothing. Its resource id is in the durable record before the PUT,
so ``pgproof gameday recover`` can delete it; undo deletes that one rule and
nothing else, and the NSG's rules are compared before and after.

Rule evaluation follows Microsoft's documented NSG semantics ("How network
security groups filter network traffic"): inbound rules (custom and default)
in ascending priority, the first whose protocol, source, destination and port
match decides. The lab's twin bridge uses the same function to decide whether
the lab's client path is cut, so the twin cuts exactly when real Azure would.

Real Azure caveat: NSG flows are stateful and a rule change takes effect in
seconds, not instantly; an established connection may survive until it idles.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from pgproof.probes.network import subnet_of

DB_PORTS = (5432, 6432)  # PostgreSQL and the server's built-in PgBouncer (fixed on Azure)
PRIORITIES = range(100, 4097)  # SecurityRule priority bounds (Microsoft.Network, securityRule.priority)
RULE_PREFIX = "pgproof-partition-"
# Service tags that stand for "anything in the virtual network / anywhere".
ANY = {"*", "any", "internet"}
VNET = {"virtualnetwork"}


def props(rule: dict[str, Any]) -> dict[str, Any]:
    return {**(rule.get("properties") or {}), "name": rule.get("name")}


def inbound(nsg: dict[str, Any]) -> list[dict[str, Any]]:
    """Custom and default inbound rules as flat dicts, in evaluation order (ascending priority)."""
    p = nsg.get("properties") or {}
    every = [props(r) for r in (p.get("securityRules") or []) + (p.get("defaultSecurityRules") or [])]
    return sorted((r for r in every if r.get("direction") == "Inbound"),
                  key=lambda r: int(r.get("priority") or 65535))


def _net(prefix: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(prefix, strict=False)
    except ValueError:
        return None


def _prefix_matches(rule_prefixes: list[str], flow: str, in_vnet: bool) -> bool:
    """Does a rule's address prefix cover the whole ``flow`` prefix (a CIDR)?"""
    f = _net(flow)
    for p in rule_prefixes:
        low = p.lower()
        if low in ANY or (low in VNET and in_vnet):
            return True
        n = _net(p)
        if n is not None and f is not None and subnet_of(f, n):
            return True
    return False


def _port_matches(rule: dict[str, Any], port: int) -> bool:
    ranges = [rule.get("destinationPortRange")] + list(rule.get("destinationPortRanges") or [])
    for r in (str(x).strip() for x in ranges if x):
        if r == "*":
            return True
        lo, _, hi = r.partition("-")
        if lo.isdigit() and int(lo) <= port <= int(hi or lo):
            return True
    return False


def _sources(rule: dict[str, Any], side: str) -> list[str]:
    return [s for s in [rule.get(f"{side}AddressPrefix")] + list(rule.get(f"{side}AddressPrefixes") or [])
            if s]


def matches(rule: dict[str, Any], src: str, dst: str, port: int) -> bool:
    """Rule applies to TCP from prefix ``src`` to prefix ``dst`` on ``port`` (both in the VNet)."""
    return (str(rule.get("protocol", "*")).lower() in ("*", "tcp")
            and _prefix_matches(_sources(rule, "source"), src, True)
            and _prefix_matches(_sources(rule, "destination"), dst, True)
            and _port_matches(rule, port))


def decision(nsg: dict[str, Any], src: str, dst: str, port: int) -> dict[str, Any] | None:
    """The first inbound rule that decides the flow (None: no rule matches, which ARM never has)."""
    return next((r for r in inbound(nsg) if matches(r, src, dst, port)), None)


def admits(nsg: dict[str, Any], src: str, dst: str, port: int) -> bool:
    rule = decision(nsg, src, dst, port)
    return rule is not None and rule.get("access") == "Allow"


def free_priority(nsg: dict[str, Any], src: str, dst: str) -> tuple[int | None, str]:
    """(smallest free inbound priority that precedes every rule admitting ``src``, why not)."""
    rules = [r for r in inbound(nsg) if int(r.get("priority") or 65535) <= PRIORITIES[-1]]
    used = {int(r["priority"]) for r in rules if r.get("priority") is not None}
    admitting = [r for r in rules if r.get("access") == "Allow"
                 and any(matches(r, src, dst, p) for p in DB_PORTS)]
    first = min((int(r["priority"]) for r in admitting), default=PRIORITIES[-1] + 1)
    free = next((p for p in PRIORITIES if p < first and p not in used), None)
    if free is None:
        who = next(r for r in admitting if int(r["priority"]) == first)
        return None, (f"rule {who['name']} admits the app tier at priority {first} and no free "
                      f"priority from {PRIORITIES[0]} precedes it: a deny rule would change nothing")
    return free, ""


def deny_rule(name: str, src: str, dst: str, priority: int) -> dict[str, Any]:
    """SecurityRules_CreateOrUpdate body (Microsoft.Network stable, securityRule properties)."""
    return {"properties": {
        "description": "pgproof game day partition: removed by the game day or `pgproof gameday recover`",
        "protocol": "Tcp", "sourceAddressPrefix": src, "sourcePortRange": "*",
        "destinationAddressPrefix": dst, "destinationPortRanges": [str(p) for p in DB_PORTS],
        "access": "Deny", "priority": priority, "direction": "Inbound"}}


def snapshot(nsg: dict[str, Any]) -> list[str]:
    """Every custom rule of the NSG (name + properties, provisioning state aside), sorted."""
    out = []
    for r in (nsg.get("properties") or {}).get("securityRules") or []:
        p = {k: v for k, v in (r.get("properties") or {}).items() if k != "provisioningState"}
        out.append(json.dumps({"name": r.get("name"), "properties": p}, sort_keys=True))
    return sorted(out)


def describe(rule: dict[str, Any]) -> str:
    p = rule.get("properties") or {}
    return (f"{p.get('access')} {p.get('protocol')} {p.get('sourceAddressPrefix')} -> "
            f"{p.get('destinationAddressPrefix')}:{','.join(p.get('destinationPortRanges') or [])} "
            f"at priority {p.get('priority')}")
