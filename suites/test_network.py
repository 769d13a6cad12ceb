"""NET-1..NET-5: not public, private subnets, tight security groups, private endpoint."""

from __future__ import annotations

import pytest

from pgproof.checks import aws as aws_checks
from pgproof.checks import live
from pgproof.expect import expect
from pgproof.probes import network
from pgproof.target import Target

control = pytest.mark.control


@control("NET-1")
def test_not_publicly_accessible(aws_inventory, target: Target) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_net1(aws_inventory, target.thresholds))


@control("NET-2")
def test_subnets_have_no_internet_route(aws_inventory, target: Target) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_net2(aws_inventory, target.thresholds))


@control("NET-3")
def test_security_groups_tight(aws_inventory, target: Target) -> None:  # type: ignore[no-untyped-def]
    expect(aws_checks.judge_net3(aws_inventory, target.thresholds))


@control("NET-4")
def test_endpoint_resolves_private(target: Target, evidence) -> None:  # type: ignore[no-untyped-def]
    facts = network.resolve(target.postgres.writer.host)
    expect(live.judge_net4(facts), evidence, f"{facts.host} -> {', '.join(facts.addresses)}")


@control("NET-5")
def test_reachable_only_from_app_hosts(target: Target) -> None:
    from pgproof.verdict import NotApplicable

    if not target.hosts:
        raise NotApplicable("no app hosts or outside vantage point configured (target.hosts)")
    import testinfra

    ep = target.postgres.writer
    problems = []
    for url in target.hosts:
        host = testinfra.get_host(url)
        if not host.run("timeout 3 bash -c '</dev/tcp/%s/%s'", ep.host, str(ep.port)).succeeded:
            problems.append(f"app host {url} cannot reach {ep.host}:{ep.port} (NET-5)")
    expect(problems)
