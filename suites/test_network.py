"""NET-1..NET-5: not public, private subnets, tight security groups, private endpoint."""

from __future__ import annotations

import pytest

from pgproof.checks import aws as aws_checks
from pgproof.checks import live
from pgproof.checks.aws_evidence import seen
from pgproof.expect import expect
from pgproof.probes import network
from pgproof.target import Target
from pgproof.verdict import NotApplicable

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
def test_endpoint_resolves_private(target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    facts = network.resolve(target.postgres.writer.host)
    expect(live.judge_net4(facts), evidence, f"{facts.host} -> {', '.join(facts.addresses)}")


@control("NET-5")
def test_reachable_only_from_app_hosts(target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    if not (target.app_hosts or target.outside_hosts):
        raise NotApplicable("no vantage points configured (app_hosts / outside_hosts)")
    ep = target.postgres.writer
    where = f"{ep.host}:{ep.port}"
    problems = [f"app host {u} cannot reach {where}; the spec wants the app tier to (NET-5)"
                for u in target.app_hosts if not network.reachable_from(u, ep.host, ep.port)]
    problems += [f"{where} is reachable from outside vantage point {u}; the spec wants it "
                 "unreachable from outside (NET-5)"
                 for u in target.outside_hosts if network.reachable_from(u, ep.host, ep.port)]
    expect(problems, evidence, f"{where}: reached from {target.app_hosts}, refused from "
           f"{target.outside_hosts}")
