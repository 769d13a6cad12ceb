"""The catalogue's checks as pytest items: ``suites/test_controls.py::test_control[ID-layer]``.

One item per control and layer (a fleet target: per database too, ``[ID-aws-region/db]``),
each marked ``control(ID)`` so ``--control``, ``-m``, ``-k``, waivers and every report treat it
as any other check. Its inputs are the layer fixtures the control's judges name, asked for at
set-up, so a layer the target does not configure is "not checked" and a probe that cannot
answer is an error, as for a hand-written test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pgproof.catalogue import runner
from pgproof.catalogue.registry import CATALOGUE
from pgproof.catalogue.runner import Unit
from pgproof.expect import expect
from pgproof.pytest_fixtures import fleet_ids, fleet_inventory
from pgproof.target import Target
from pgproof.verdict import Inherited, NotApplicable


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "control_unit" not in metafunc.fixturenames:
        return
    params = []
    for u in runner.units(CATALOGUE.values()):
        marks = [pytest.mark.control(u.control)]
        dbs = fleet_ids(metafunc.config) if "aws_inventory" in u.inputs else []
        params += [pytest.param(u, db, id=f"{u.id}-{db}", marks=marks) for db in dbs]
        if not dbs:
            params.append(pytest.param(u, None, id=u.id, marks=marks))
    metafunc.parametrize(("control_unit", "database"), params)


def unit_of(item: pytest.Item) -> Unit | None:
    """The registry unit an item runs (None: a hand-written check)."""
    callspec = getattr(item, "callspec", None)
    u = callspec.params.get("control_unit") if callspec else None
    return u if isinstance(u, Unit) else None


@pytest.fixture
def control_inputs(control_unit: Unit, database: str | None, target: Target,
                   request: pytest.FixtureRequest) -> dict[str, Any]:
    """The unit's inputs by name, in the order its judges list them; none is gathered for a
    control stated inherited (the provider's) or n/a on the target's platform.

    Only the control's stated exceptions decide here: a layer that does not exist on a
    platform is simply not configured by such a target (not checked), and one a target does
    configure is judged (the lab: a self-managed cluster beside a twin of the AWS API)."""
    platform = target.runs_on
    said = CATALOGUE[control_unit.control].platforms.get(platform)
    if said is not None and said.status == "inherited":
        raise Inherited(f"on {platform}: {said.why}")
    if said is not None and said.status == "n/a":
        raise NotApplicable(f"on {platform}: {said.why}")
    values: dict[str, Any] = {"target": target, "thresholds": target.thresholds}
    for name in control_unit.inputs:
        if name in values:
            continue
        if name == "aws_inventory" and database is not None:
            values[name] = fleet_inventory(request.config, target, database)
        else:
            values[name] = request.getfixturevalue(name)
    return values


def run_unit(unit: Unit, values: dict[str, Any], evidence: Callable[[str], None]) -> None:
    """Fail with the judges' sentences (each tagged with the control ID), or record evidence."""
    __tracebackhide__ = True
    problems = runner.judge(unit, values)
    expect(problems, evidence, "" if problems else runner.evidence(unit, values))
