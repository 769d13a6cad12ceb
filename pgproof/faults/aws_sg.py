"""Partition on AWS: a security-group blackhole between the app tier and the database.

RDS offers no network fault of its own, but the DB's security groups decide
who may connect. The fault finds the ingress rules that admit the app tier on
the DB port (a rule naming one of the app security groups, or a CIDR that
overlaps an app CIDR), revokes exactly those, and re-authorizes exactly what
it revoked. Rules are handled one source at a time, so undo and the
before/after comparison are rule by rule. The revoked rules are in the durable
record before the revoke, so ``pgproof gameday recover`` can put them back.

Real AWS caveat: security groups are stateful; revoking a rule stops new
connections at once, but an already tracked connection may survive until it
goes idle. A pool that keeps connections open sees the cut later than one that
reconnects. AWS FIS ``aws:network:disrupt-connectivity`` (subnet NACLs) cuts
established flows too; moto's FIS only stores experiments without acting, so
it is not implemented here.
"""

from __future__ import annotations

import ipaddress
from typing import Any

Rule = dict[str, Any]  # one IpPermission with exactly one source


def split(perms: list[dict[str, Any]]) -> list[Rule]:
    """Security-group IpPermissions as single-source rules (the unit of revoke and of comparison)."""
    out: list[Rule] = []
    for p in perms:
        base = {"IpProtocol": p.get("IpProtocol")}
        if p.get("IpProtocol") not in ("-1", -1):
            base.update(FromPort=p.get("FromPort"), ToPort=p.get("ToPort"))
        for key, fields in (("UserIdGroupPairs", ("GroupId", "Description")),
                            ("IpRanges", ("CidrIp", "Description")),
                            ("Ipv6Ranges", ("CidrIpv6", "Description")),
                            ("PrefixListIds", ("PrefixListId", "Description"))):
            for src in p.get(key) or []:
                out.append({**base, key: [{f: src[f] for f in fields if src.get(f) is not None}]})
    return out


def key(rule: Rule) -> str:
    """A stable identity for comparing rule sets (descriptions included: undo must restore them)."""
    import json

    return json.dumps(rule, sort_keys=True)


def snapshot(ec2: Any, group_ids: list[str]) -> list[str]:
    """Every ingress rule of ``group_ids``, one per source, sorted: the before/after evidence."""
    groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
    return sorted(f"{g['GroupId']} {key(r)}" for g in groups for r in split(g.get("IpPermissions", [])))


def covers_port(rule: Rule, port: int) -> bool:
    if rule.get("IpProtocol") in ("-1", -1):
        return True
    if str(rule.get("IpProtocol")) not in ("tcp", "6"):
        return False
    lo, hi = rule.get("FromPort"), rule.get("ToPort")
    return lo is not None and hi is not None and int(lo) <= port <= int(hi)


def _overlaps(cidr: str, app_cidrs: list[str]) -> bool:
    try:
        net = ipaddress.ip_network(cidr, strict=False)
        return any(net.overlaps(ipaddress.ip_network(a, strict=False)) for a in app_cidrs
                   if ipaddress.ip_network(a, strict=False).version == net.version)
    except ValueError:
        return False


def admitting(perms: list[dict[str, Any]], port: int, app_groups: list[str],
              app_cidrs: list[str]) -> list[Rule]:
    """The rules of ``perms`` that let the app tier reach ``port`` (by SG id or overlapping CIDR)."""
    out = []
    for r in split(perms):
        if not covers_port(r, port):
            continue
        pairs, v4, v6 = r.get("UserIdGroupPairs"), r.get("IpRanges"), r.get("Ipv6Ranges")
        if (pairs and pairs[0].get("GroupId") in app_groups
                or v4 and _overlaps(v4[0]["CidrIp"], app_cidrs)
                or v6 and _overlaps(v6[0]["CidrIpv6"], app_cidrs)):
            out.append(r)
    return out


def find(ec2: Any, group_ids: list[str], port: int, app_groups: list[str],
         app_cidrs: list[str]) -> list[dict[str, Any]]:
    """[{group_id, rule}] for every DB security group rule admitting the app tier."""
    groups = ec2.describe_security_groups(GroupIds=group_ids)["SecurityGroups"]
    return [{"group_id": g["GroupId"], "rule": r}
            for g in groups for r in admitting(g.get("IpPermissions", []), port, app_groups, app_cidrs)]


def revoke(ec2: Any, rules: list[dict[str, Any]]) -> None:
    for r in rules:
        ec2.revoke_security_group_ingress(GroupId=r["group_id"], IpPermissions=[r["rule"]])


def authorize(ec2: Any, rules: list[dict[str, Any]]) -> list[str]:
    """Put ``rules`` back; a rule already present is fine (idempotent). Returns what was restored."""
    from botocore.exceptions import ClientError

    done = []
    for r in rules:
        try:
            ec2.authorize_security_group_ingress(GroupId=r["group_id"], IpPermissions=[r["rule"]])
            done.append(f"{r['group_id']} {key(r['rule'])}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidPermission.Duplicate":
                raise
    return done


def source(rule: Rule) -> str:
    """The one source of a split rule: an SG id, a CIDR or a prefix list."""
    src = (rule.get("UserIdGroupPairs") or rule.get("IpRanges") or rule.get("Ipv6Ranges")
           or rule.get("PrefixListIds") or [{}])[0]
    return str(src.get("GroupId") or src.get("CidrIp") or src.get("CidrIpv6")
               or src.get("PrefixListId") or "?")


def describe(rules: list[dict[str, Any]]) -> str:
    parts = []
    for r in rules:
        rule = r["rule"]
        who = source(rule)
        ports = ("all" if rule.get("IpProtocol") in ("-1", -1)
                 else f"{rule.get('IpProtocol')}/{rule.get('FromPort')}-{rule.get('ToPort')}")
        parts.append(f"{r['group_id']} {ports} from {who}")
    return "; ".join(parts)
