"""The lab's backup schedule, as its own tracked process: first full backup now, then periodic ones.

Started by ``lab up`` in the background (a PID file like every component) so the
first full backup never delays ``lab up``; progress goes to ``backup-status.json``,
which ``lab status`` and :func:`pgproof.lab.backup.wait_ready` read.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pgproof import procs
from pgproof.lab import backup
from pgproof.lab import components as c
from pgproof.lab.state import LabState

FULL_EVERY_S = 24 * 3600  # a daily full backup; retention (time, 7 days) expires the old ones


def _leader(state: LabState, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        name = c.leader(state)
        if name:
            return name
        time.sleep(1)
    raise procs.ComponentError("backup", f"no Patroni leader within {timeout:.0f} s")


def backup_once(state: LabState, attempts: int = 3) -> str:
    """A full backup from the current leader; retried (a failover may move the leader mid-way)."""
    last: Exception | None = None
    for _ in range(attempts):
        node = _leader(state, 120)
        backup.write_status(state, "running", f"full backup from {node}")
        try:
            label = backup.full_backup(state, node)
        except procs.ComponentError as exc:
            last = exc
            time.sleep(3)
            continue
        return f"full backup {label} from {node}"
    raise last or procs.ComponentError("backup", "no attempt made")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--state-dir", type=Path, required=True)
    args = ap.parse_args()
    state = LabState.load(args.state_dir)
    if state is None:
        raise SystemExit(f"no lab state in {args.state_dir}")
    while True:
        t0 = time.monotonic()
        try:
            done = backup_once(state)
        except Exception as exc:  # noqa: BLE001 - recorded for `lab status`, then retried later
            backup.write_status(state, "failed", str(exc).splitlines()[0][:500])
            print(f"backup failed: {exc}", flush=True)
            time.sleep(60)
            continue
        backup.write_status(state, "ready", f"{done} in {time.monotonic() - t0:.1f} s")
        print(f"{done} in {time.monotonic() - t0:.1f} s", flush=True)
        time.sleep(FULL_EVERY_S)


if __name__ == "__main__":
    main()
