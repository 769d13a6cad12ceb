"""NET-1..NET-5: not public, private subnets, tight security groups, private endpoint, reachable
only from the app tier; each control with its checks per layer."""

from __future__ import annotations

from typing import Any

from pgproof.catalogue import seen
from pgproof.catalogue.build import NETWORK, aws, azure, check, control


def reachable_only_from_app_hosts(vantage_reach: dict[str, bool], target: Any) -> list[str]:
    """Every app host reaches the writer; no outside vantage point does."""
    ep = target.require_postgres("NET-5").writer
    where = f"{ep.host}:{ep.port}"
    return ([f"app host {u} cannot reach {where}; the spec wants the app tier to"
             for u in target.app_hosts if not vantage_reach[u]]
            + [f"{where} is reachable from outside vantage point {u}; the spec wants it "
               "unreachable from outside" for u in target.outside_hosts if vantage_reach[u]])


def _reach(_reach: Any, target: Any) -> str:
    ep = target.require_postgres("NET-5").writer
    return (f"{ep.host}:{ep.port}: reached from {target.app_hosts}, refused from "
            f"{target.outside_hosts}")


CONTROLS = (
    control(
        "NET-1", "Not publicly accessible",
        "PubliclyAccessible is false on the primary and every replica.",
        "Modify the instances with --no-publicly-accessible.",
        severity="critical", hipaa=NETWORK, fsbp=("RDS.2",),
        checks=(aws("aws:judge_net1", lambda i: seen.each(i, "PubliclyAccessible")),
                azure("azure:judge_net1", props=("network",)))),
    control(
        "NET-2", "Private subnets",
        "No subnet of the DB subnet group routes 0.0.0.0/0 or ::/0 to an internet gateway in its "
        "effective route table.",
        "Put the DB subnet group on subnets whose route tables send default routes to a NAT or "
        "nowhere, never to an internet gateway.",
        severity="high", hipaa=NETWORK,
        checks=(aws("aws:judge_net2",
                    lambda i: f"{len(i.subnet_routes)} DB subnets checked: no internet route"),
                azure("azure:judge_net2", props=("network",)))),
    control(
        "NET-3", "Tight security groups",
        "The database port is open only to app-tier security groups or private CIDRs, never to "
        "0.0.0.0/0, ::/0 or all ports.",
        "Replace open ingress rules with rules that reference the app tier's security group.",
        severity="high", hipaa=NETWORK, fsbp=("EC2.18", "EC2.19"),
        checks=(aws("aws:judge_net3", lambda i: f"{len(i.security_groups)} security groups; "
                                                f"app groups {i.app_security_group_ids}"),
                azure("azure:judge_net3", seen=lambda inv: f"{len(inv.firewall_rules)} firewall "
                                                           f"rules, nsgs {sorted(inv.nsgs)}"))),
    control(
        "NET-4", "Private endpoint",
        "The writer endpoint resolves to private addresses only.",
        "Use the private endpoint (private hosted zone / private DNS) and no public address.",
        severity="medium", hipaa=NETWORK,
        checks=(check("dns", "live:judge_net4", "dns_facts",
                      evidence=lambda d: f"{d.host} -> {', '.join(d.addresses)}"),
                azure("azure:judge_net4", props=("network",)))),
    control(
        "NET-5", "Unreachable from outside",
        "A connection from an outside vantage point fails; from an app host it succeeds.",
        "Close the path from outside (security groups, NACLs, firewall) while keeping the app "
        "tier's route.",
        severity="high", hipaa=NETWORK,
        checks=(check("vantage", reachable_only_from_app_hosts, "vantage_reach", "target",
                      evidence=_reach),)),
)
