"""MON-4: every MON-1 alarm, forced into ALARM, reaches a subscriber of its topic."""

from __future__ import annotations

from pathlib import Path

import pytest

from pgproof.errors import UserError
from pgproof.gameday import alarm_drill
from pgproof.gameday.safety import ChaosRefused
from pgproof.target import Target

pytestmark = pytest.mark.chaos


@pytest.mark.control("MON-4")
def test_alarms_deliver(target: Target, pytestconfig: pytest.Config, evidence) -> None:  # type: ignore[no-untyped-def]
    try:
        journal, out = alarm_drill.run(
            target, reports=Path(pytestconfig.getoption("reports")),
            i_mean_production=pytestconfig.getoption("i_mean_production"),
            dry_run=pytestconfig.getoption("dry_run"), echo=lambda _: None)
    except ChaosRefused as exc:
        pytest.skip(f"refused: {exc}")
    except UserError as exc:
        pytest.exit(f"pgproof: {exc}", returncode=2)
    if out is None:
        pytest.skip("dry run: plan printed, nothing touched")
    if not journal.verdicts:
        last = journal.events[-1] if journal.events else {}
        pytest.fail(f"MON-4: the alarm drill did not complete: {last.get('event')}: "
                    f"{last.get('detail')}", pytrace=False)
    bad = [v["evidence"] for v in journal.verdicts if v["verdict"] != "pass"]
    if bad:
        pytest.fail("MON-4: " + "; ".join(bad), pytrace=False)
    evidence("; ".join(v["evidence"] for v in journal.verdicts))
