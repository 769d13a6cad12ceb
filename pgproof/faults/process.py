"""Process faults on local nodes: crash a node (Patroni + postmaster) or only its postmaster."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from pgproof.procs import pid_alive, read_pid


def postmaster_pid(data_dir: Path) -> int | None:
    pid = read_pid(data_dir / "postmaster.pid")
    return pid if pid and pid_alive(pid) else None


def sigkill(*pids: int | None) -> list[int]:
    """SIGKILL each live pid at (nearly) the same instant; returns those signalled."""
    hit = []
    for pid in pids:
        if pid and pid_alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
                hit.append(pid)
            except ProcessLookupError:
                pass
    return hit
