"""``chaos.snapshot_before``: a snapshot taken before a game day injects its fault.

The seed's backup flow promises "manual snapshots before changes". RDS/Aurora get a
manual DB (cluster) snapshot, waited for until available; the lab gets a pgBackRest
incremental backup from the leader (a full one when none exists). A failed snapshot
refuses the game day (:class:`ChaosRefused`, one sentence): nothing is injected
without a way back. The snapshot is kept: it is the point to return to.
"""

from __future__ import annotations

import time
from typing import Any

from pgproof.gameday.safety import ChaosRefused
from pgproof.target import Target


def snapshot_id(run_id: str) -> str:
    """An RDS snapshot identifier: letters, digits, hyphens; starts with a letter; <= 63."""
    return f"pgproof-before-{run_id}"[:63].rstrip("-")


def take(target: Target, driver: Any, run_id: str) -> dict[str, Any]:
    """Take the snapshot; returns {"id", "kind", "took_s"}; raises ChaosRefused if it failed."""
    t0 = time.monotonic()
    try:
        if driver.name == "aws":
            out = _rds(driver, snapshot_id(run_id))
        elif callable(getattr(driver, "snapshot_before", None)):  # the lab: a pgBackRest backup
            out = driver.snapshot_before()
        else:
            raise ChaosRefused(f"chaos.snapshot_before is set but the {driver.name} driver cannot take "
                               "a snapshot yet (lab: pgBackRest backup; aws: RDS snapshot)")
    except ChaosRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure refuses the game day, said in one sentence
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ChaosRefused(f"the snapshot before the fault failed on target {target.name!r}, so the "
                           f"game day did not start: {first[:300]}") from None
    return {**out, "took_s": round(time.monotonic() - t0, 2)}


def _rds(driver: Any, ident: str) -> dict[str, Any]:
    rds = driver.rds
    if driver.cluster_id:
        rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=ident,
                                       DBClusterIdentifier=driver.cluster_id)
        get = lambda: rds.describe_db_cluster_snapshots(  # noqa: E731
            DBClusterSnapshotIdentifier=ident)["DBClusterSnapshots"][0]
        kind = "rds-cluster-snapshot"
    else:
        rds.create_db_snapshot(DBSnapshotIdentifier=ident, DBInstanceIdentifier=driver.instance_id)
        get = lambda: rds.describe_db_snapshots(DBSnapshotIdentifier=ident)["DBSnapshots"][0]  # noqa: E731
        kind = "rds-snapshot"
    deadline = time.monotonic() + driver.wait_timeout_s
    status = "?"
    while time.monotonic() < deadline:
        status = str(get().get("Status", "?"))
        if status == "available":
            return {"id": ident, "kind": kind}
        if status in ("failed", "deleted", "deleting", "incompatible-restore"):
            break
        time.sleep(driver.poll_s)
    raise RuntimeError(f"snapshot {ident} is {status!r}, not available")

