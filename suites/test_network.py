"""NET-1..NET-5: not public, private subnets, tight security groups, private endpoint."""

from __future__ import annotations

import pytest

from pgproof.checks import aws as aws_checks
from pgproof.checks import live
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.target import Target

control = pytest.mark.control


@control("NET-1")
def test_not_publicly_accessible(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_net1(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "NET-1"))


@control("NET-2")
def test_subnets_have_no_internet_route(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_net2(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "NET-2"))


@control("NET-3")
def test_security_groups_tight(aws_inventory, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_net3(aws_inventory, target.thresholds), evidence,
           seen(aws_inventory, "NET-3"))


@control("NET-4")
def test_endpoint_resolves_private(dns_facts, evidence) -> None:  # type: ignore[no-untyped-def]
    expect(live.judge_net4(dns_facts), evidence,
           f"{dns_facts.host} -> {', '.join(dns_facts.addresses)}")


@control("NET-5")
def test_reachable_only_from_app_hosts(vantage_reach, target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    ep = target.require_postgres("NET-5").writer
    where = f"{ep.host}:{ep.port}"
    problems = [f"app host {u} cannot reach {where}; the spec wants the app tier to (NET-5)"
                for u in target.app_hosts if not vantage_reach[u]]
    problems += [f"{where} is reachable from outside vantage point {u}; the spec wants it "
                 "unreachable from outside (NET-5)"
                 for u in target.outside_hosts if vantage_reach[u]]
    expect(problems, evidence, f"{where}: reached from {target.app_hosts}, refused from "
           f"{target.outside_hosts}")
