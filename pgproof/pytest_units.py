"""The catalogue's checks as pytest items: ``suites/test_controls.py::test_control[ID-layer]``.

One item per control and layer, each marked ``control(ID)`` so ``--control``, ``-m``, ``-k``,
waivers and every report treat it as any other check. Its inputs are the layer fixtures the
control's judges name, asked for at set-up, so a layer the target does not configure is "not
checked" and a probe that cannot answer is an error, as for a hand-written test.

A fleet target (``db_instance_id``/``db_tags`` selecting many RDS databases) keeps one item
per control and layer too: its AWS-layer item judges every selected database, fails if any
database fails (the failures listed per database), and hands the plugin one verdict per
database, so results.json, the fleet matrix, SARIF, OCSF and ASFF still carry one result per
database (named ``test_control[ID-aws-region/db]``, as a per-database item would be). Why: at
200 databases, one pytest item per database and check cost more than all the judging.

PYTEST_DONT_REWRITE: product code that pgproof.pytest_plugin imports before pytest could rewrite
it (pytest otherwise warns "Module already imported so cannot be rewritten" on every run).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from pgproof.catalogue import runner
from pgproof.catalogue.registry import CATALOGUE
from pgproof.catalogue.runner import Unit
from pgproof.expect import expect
from pgproof.pytest_fixtures import PROBES, fleet_ids, fleet_inventories, gather_early
from pgproof.pytest_limits import time_left
from pgproof.pytest_targets import get_target
from pgproof.report.results import SEVERITY
from pgproof.target import Target
from pgproof.verdict import (
    CannotVerify,
    Inherited,
    NotApplicable,
    NotOnPlatform,
    Unreachable,
    Verdict,
)

EVERY_DATABASE = "*"  # the ``database`` parameter of a fleet item: it judges each selected one
FLEET_INPUT = "aws_inventory"  # the input that is per database on a fleet target


@dataclass(frozen=True)
class Judged:
    """One database's verdict within a fleet item: what its own check result carries."""

    database: str
    verdict: Verdict
    message: str
    duration_s: float


@dataclass
class PerDatabase:
    """A fleet item's AWS input: each database's inventory (or why it could not be described);
    ``run_unit`` judges them one by one into ``judged``."""

    inventories: Mapping[str, Any]
    judged: list[Judged] = field(default_factory=list)


FLEET_JUDGED = pytest.StashKey[PerDatabase]()  # on a fleet item: the plugin reads its verdicts


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "control_unit" not in metafunc.fixturenames:
        return
    fleet = bool(fleet_ids(metafunc.config))
    params = []
    for u in runner.units(CATALOGUE.values()):
        db = EVERY_DATABASE if fleet and FLEET_INPUT in u.inputs else None
        params.append(pytest.param(u, db, id=u.id, marks=[pytest.mark.control(u.control)]))
    metafunc.parametrize(("control_unit", "database"), params)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session):  # type: ignore[no-untyped-def]
    """The catalogue's checks: their probes start together before the first check (see
    ``pytest_fixtures.gather_early``), so a run waits for the slowest probe, not their sum."""
    config = session.config
    units = [unit_of(item) for item in session.items]
    opt = config.option
    if (units and all(units) and not session.testsfailed and not opt.collectonly
            and not getattr(opt, "setupplan", False) and not getattr(opt, "setuponly", False)):
        target = get_target(config)
        gather_early(config, target, probes_of([u for u in units if u is not None], target),
                     max(0.0, time_left(config, target)))
    return (yield)


def probes_of(units: list[Unit], target: Target) -> set[str]:
    """The probes these checks will ask for on ``target``: none for a control stated inherited
    or n/a on its platform (``control_inputs`` asks nothing there), and on a fleet not the
    per-database inventory (``fleet_inventories`` gathers that)."""
    fleet = target.aws is not None and target.aws.is_fleet
    out: set[str] = set()
    for u in units:
        said = CATALOGUE[u.control].platforms.get(target.runs_on)
        if said is not None and said.status in ("inherited", "n/a"):
            continue
        out.update(n for n in u.inputs if n in PROBES and not (fleet and n == FLEET_INPUT))
    return out


def unit_of(item: pytest.Item) -> Unit | None:
    """The registry unit an item runs (None: a hand-written check)."""
    callspec = getattr(item, "callspec", None)
    u = callspec.params.get("control_unit") if callspec else None
    return u if isinstance(u, Unit) else None


def check_id(nodeid: str, database: str) -> str:
    """The check name of one database's result: ``...test_control[ENC-1-aws-us-east-1/db-7]``."""
    return f"{nodeid[:-1]}-{database}]" if nodeid.endswith("]") else f"{nodeid}[{database}]"


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
        raise NotOnPlatform(f"on {platform}: {said.why}")
    values: dict[str, Any] = {"target": target, "thresholds": target.thresholds}
    for name in control_unit.inputs:
        if name in values:
            continue
        if name == FLEET_INPUT and database == EVERY_DATABASE:
            per_db = PerDatabase(fleet_inventories(request.config, target))
            request.node.stash[FLEET_JUDGED] = per_db
            values[name] = per_db
        else:
            values[name] = request.getfixturevalue(name)
    return values


def run_unit(unit: Unit, values: dict[str, Any], evidence: Callable[[str], None]) -> None:
    """Fail with the judges' sentences (each tagged with the control ID), or record evidence.

    A fleet item: every database judged on its own inventory; the item takes the worst."""
    __tracebackhide__ = True
    per_db = values.get(FLEET_INPUT)
    if isinstance(per_db, PerDatabase):
        judge_fleet(unit, values, per_db, evidence)
        return
    problems = runner.judge(unit, values)
    expect(problems, evidence, "" if problems else runner.evidence(unit, values))


def judge_one(unit: Unit, values: Mapping[str, Any]) -> tuple[Verdict, str]:
    """One database's verdict and message, worded as a per-database item's report was."""
    try:
        problems = runner.judge(unit, values)
    except CannotVerify as exc:
        return Verdict.CANNOT_VERIFY, f"cannot verify on this target: {exc}"
    except NotApplicable as exc:
        return Verdict.SKIP, f"not applicable: {exc}"
    except Unreachable as exc:
        return Verdict.ERROR, f"could not check: {exc}"
    if problems:
        return Verdict.FAIL, "\n".join(problems)
    return Verdict.PASS, runner.evidence(unit, values)


def judge_fleet(unit: Unit, values: Mapping[str, Any], per_db: PerDatabase,
                evidence: Callable[[str], None]) -> None:
    """Judge each database, then end as the worst of them: fail (failures listed per
    database), could not check, cannot verify, not applicable (all), or pass with evidence."""
    __tracebackhide__ = True
    for db, inv in per_db.inventories.items():
        t0 = time.perf_counter()
        if isinstance(inv, Unreachable):
            verdict, message = Verdict.ERROR, f"could not check: {inv}"
        else:
            verdict, message = judge_one(unit, {**values, FLEET_INPUT: inv})
        per_db.judged.append(Judged(db, verdict, message, round(time.perf_counter() - t0, 4)))
    by: dict[Verdict, list[Judged]] = {}
    for j in per_db.judged:
        by.setdefault(j.verdict, []).append(j)
    n = len(per_db.judged)
    worst = next((v for v in SEVERITY if v in by), None)
    if worst is None:  # a fleet item is only made when discovery found databases
        raise Unreachable("the fleet selection matched no database to judge")
    lines = listing(by, n)
    if worst is Verdict.FAIL:
        expect(lines)
    if worst is Verdict.ERROR:
        raise Unreachable("\n".join(lines))
    if worst is Verdict.CANNOT_VERIFY:
        raise CannotVerify("\n".join(lines))
    if worst is Verdict.SKIP:
        raise NotApplicable(f"on all {n} databases: {per_db.judged[0].message.removeprefix('not applicable: ')}")
    evidence(f"{len(by[Verdict.PASS])} of {n} databases pass"
             + (f", {len(by[Verdict.SKIP])} not applicable" if Verdict.SKIP in by else "")
             + " (each database's evidence: results.json, fleet matrix)")


def listing(by: Mapping[Verdict, list[Judged]], n: int) -> list[str]:
    """The fleet item's message: each failing database's sentences, then those that could not
    be checked or verified, each line starting with the database."""
    out: list[str] = []
    for verdict, head in ((Verdict.FAIL, "fail"), (Verdict.ERROR, "could not be checked"),
                          (Verdict.CANNOT_VERIFY, "cannot be verified")):
        rows = by.get(verdict, [])
        if not rows:
            continue
        out.append(f"{len(rows)} of {n} databases {head}:")
        for j in rows:
            text = j.message.removeprefix("could not check: ").removeprefix("cannot verify on this target: ")
            out += [f"{j.database}: {s}" for s in text.splitlines() if s.strip()]
    return out
