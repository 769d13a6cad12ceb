"""Game-day fixtures: each scenario runs once per module; one test per control judges it."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from pgproof.errors import UserError
from pgproof.gameday import restore
from pgproof.gameday import run as gameday
from pgproof.gameday.journal import Journal
from pgproof.gameday.safety import ChaosRefused
from pgproof.target import Target

_CACHE: dict[str, Journal] = {}


@pytest.fixture(scope="session", autouse=True)
def _chaos_config_is_usable(target: Target) -> None:
    """A driver the target cannot build (ssh without hosts) stops the run before any scenario,
    whichever scenario pytest happens to collect first: no report for a run that never ran."""
    if target.chaos.allowed and target.chaos.driver == "ssh":
        from pgproof.faults.drivers import make_driver

        try:
            make_driver(target)
        except UserError as exc:
            pytest.exit(f"pgproof: {exc}", returncode=2)


@pytest.fixture(scope="session")
def run_scenario(target: Target, pytestconfig: pytest.Config) -> Callable[[str], Journal]:
    def run(name: str) -> Journal:
        if name not in _CACHE:
            runner = restore.run if name == restore.SCENARIO else partial(gameday.run, scenario=name)
            try:
                target.require_postgres("a game day")  # clock and ledger write to the writer
                journal, out = runner(
                    target, reports=Path(pytestconfig.getoption("reports")),
                    i_mean_production=pytestconfig.getoption("i_mean_production"),
                    dry_run=pytestconfig.getoption("dry_run"), echo=lambda _: None)
            except ChaosRefused as exc:
                pytest.skip(f"refused: {exc}")
            except UserError as exc:  # bad input (e.g. ssh driver without hosts): stop the run
                pytest.exit(f"pgproof: {exc}", returncode=2)
            if out is None:
                pytest.skip("dry run: plan printed, nothing touched")
            _CACHE[name] = journal
        return _CACHE[name]
    return run


def verdict_of(journal: Journal, control: str) -> dict[str, Any]:
    return next(v for v in journal.verdicts if v["id"] == control)


def judge(journal: Journal, control: str, evidence: Callable[[str], None]) -> None:
    """Fail with the game day's sentence; an aborted run is an error, not a pass."""
    __tracebackhide__ = True
    if not journal.verdicts:
        last = journal.events[-1] if journal.events else {}
        pytest.fail(f"{control}: game day {journal.scenario} did not complete: "
                    f"{last.get('event')}: {last.get('detail')}", pytrace=False)
    v = verdict_of(journal, control)
    if v["verdict"] != "pass":
        pytest.fail(f"{control}: {v['evidence']}", pytrace=False)
    evidence(v["evidence"])
