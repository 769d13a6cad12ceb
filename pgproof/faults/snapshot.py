"""``chaos.snapshot_before``: a snapshot taken before a game day injects its fault.

The seed's backup flow promises "manual snapshots before changes". The driver
takes it (``FaultDriver.snapshot``): RDS/Aurora a manual DB (cluster) snapshot,
waited for until available; the lab a pgBackRest incremental backup from the
leader (a full one when none exists). A driver that cannot, or a failed
snapshot, refuses the game day (:class:`ChaosRefused`, one sentence): nothing
is injected without a way back. The snapshot is kept: it is the point to return to.
"""

from __future__ import annotations

import time
from typing import Any

from pgproof.faults.drivers import cannot
from pgproof.faults.protocol import FaultDriver
from pgproof.gameday.safety import ChaosRefused
from pgproof.target import Target


def snapshot_id(run_id: str) -> str:
    """An RDS snapshot identifier: letters, digits, hyphens; starts with a letter; <= 63."""
    return f"pgproof-before-{run_id}"[:63].rstrip("-")


def take(target: Target, driver: FaultDriver, run_id: str) -> dict[str, Any]:
    """Take the snapshot; returns {"id", "kind", "took_s"}; raises ChaosRefused if it failed."""
    why = cannot(driver, "snapshot")
    if why is not None:
        raise ChaosRefused(f"chaos.snapshot_before is set but {why}")
    t0 = time.monotonic()
    try:
        out = driver.snapshot(snapshot_id(run_id))
    except Exception as exc:  # noqa: BLE001 - any failure refuses the game day, said in one sentence
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ChaosRefused(f"the snapshot before the fault failed on target {target.name!r}, so the "
                           f"game day did not start: {first[:300]}") from None
    return {**out, "took_s": round(time.monotonic() - t0, 2)}
