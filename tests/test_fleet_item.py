"""A fleet's control item: every database judged on its own inventory, the item the worst.

No moto, no lab: judges over plain dicts, so each way a database can end (fail, could not
be described, cannot verify, not applicable, pass) is pinned with its per-database verdict
and the item's message. tests/test_fleet.py runs the same path end to end on moto."""

from __future__ import annotations

from typing import Any

import pytest

from pgproof.catalogue.model import Check
from pgproof.catalogue.runner import Unit
from pgproof.pytest_units import PerDatabase, check_id, judge_fleet
from pgproof.verdict import CannotVerify, NotApplicable, Unreachable, Verdict


def public(inv: dict[str, Any]) -> list[str]:
    if inv.get("gap"):
        raise CannotVerify(f"{inv['name']}: PubliclyAccessible not reported")
    if inv.get("proxy") is False:
        raise NotApplicable("no RDS Proxy configured")
    return [f"db-instance {inv['name']}: PubliclyAccessible is true"] if inv.get("public") else []


def seen(inv: dict[str, Any]) -> str:
    return f"{inv['name']}: private"


UNIT = Unit("NET-1", "aws", (Check("aws", public, ("aws_inventory",), evidence=seen),))


def run(inventories: dict[str, Any]) -> tuple[PerDatabase, list[str], BaseException | None]:
    per_db = PerDatabase(inventories)
    recorded: list[str] = []
    try:
        judge_fleet(UNIT, {"aws_inventory": per_db}, per_db, recorded.append)
    except BaseException as exc:  # noqa: BLE001 - pytest.fail raises an OutcomeException
        return per_db, recorded, exc
    return per_db, recorded, None


def test_fleet_item_fails_listing_each_failing_database_and_keeps_one_verdict_each() -> None:
    per_db, recorded, exc = run({
        "us-east-1/a": {"name": "a"}, "us-east-1/b": {"name": "b", "public": True},
        "eu-west-1/c": Unreachable("DescribeDBInstances c: AccessDenied"),
        "eu-west-1/d": {"name": "d", "public": True}})
    assert isinstance(exc, pytest.fail.Exception) and not recorded
    lines = str(exc).splitlines()
    assert lines == ["2 of 4 databases fail:",
                     "us-east-1/b: db-instance b: PubliclyAccessible is true (NET-1)",
                     "eu-west-1/d: db-instance d: PubliclyAccessible is true (NET-1)",
                     "1 of 4 databases could not be checked:",
                     "eu-west-1/c: DescribeDBInstances c: AccessDenied"]
    got = {j.database: (j.verdict, j.message) for j in per_db.judged}
    assert got == {"us-east-1/a": (Verdict.PASS, "a: private"),
                   "us-east-1/b": (Verdict.FAIL, "db-instance b: PubliclyAccessible is true (NET-1)"),
                   "eu-west-1/c": (Verdict.ERROR, "could not check: DescribeDBInstances c: AccessDenied"),
                   "eu-west-1/d": (Verdict.FAIL, "db-instance d: PubliclyAccessible is true (NET-1)")}


def test_fleet_item_without_failures_takes_the_worst_of_the_rest() -> None:
    _, _, exc = run({"r/a": {"name": "a"}, "r/b": Unreachable("timed out")})
    assert isinstance(exc, Unreachable) and "r/b: timed out" in str(exc)  # an error, never a pass
    _, _, exc = run({"r/a": {"name": "a"}, "r/b": {"name": "b", "gap": True}})
    assert isinstance(exc, CannotVerify) and "r/b: b: PubliclyAccessible not reported" in str(exc)
    _, _, exc = run({"r/a": {"name": "a", "proxy": False}, "r/b": {"name": "b", "proxy": False}})
    assert isinstance(exc, NotApplicable)


def test_fleet_item_passes_with_evidence_when_every_database_passes() -> None:
    per_db, recorded, exc = run({"r/a": {"name": "a"}, "r/b": {"name": "b", "proxy": False}})
    assert exc is None
    assert recorded == ["1 of 2 databases pass, 1 not applicable (each database's evidence: "
                        "results.json, fleet matrix)"]
    assert [j.verdict for j in per_db.judged] == [Verdict.PASS, Verdict.SKIP]


def test_a_databases_check_name_is_the_per_database_item_it_replaces() -> None:
    """Waivers, SARIF fingerprints and history keep matching the names they matched."""
    assert check_id("suites/test_controls.py::test_control[NET-1-aws]", "us-east-1/db-7") == \
        "suites/test_controls.py::test_control[NET-1-aws-us-east-1/db-7]"
