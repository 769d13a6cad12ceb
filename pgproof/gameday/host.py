"""How busy the machine running the load was: runnable tasks per second, from /proc/loadavg.

Throughput and p95 are relative verdicts (HA-4, CH-LAT): compared with a
baseline taken under the machine's conditions at that time. On a shared host
(the lab on a 2-core CI box) neighbours starting work after the baseline cut
the throughput 2-3x with nothing wrong in the database. The instant runnable
count (fourth field of /proc/loadavg, not the damped 1-minute average) says
whether the comparison still holds. Observation only; Linux only (None
elsewhere).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from statistics import median

LOADAVG = Path("/proc/loadavg")


def runnable() -> int | None:
    """Tasks runnable right now (including this reader), or None when the host does not say."""
    try:
        return int(LOADAVG.read_text().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None


class HostLoad:
    """Samples ``runnable()`` every ``interval`` s in a daemon thread until ``stop()``."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.cpus = os.cpu_count() or 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pgproof-hostload", daemon=True)

    def start(self) -> HostLoad:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(2)

    def _run(self) -> None:
        while not self._stop.is_set():
            n = runnable()
            if n is not None:
                self.samples.append((time.time(), n))
            self._stop.wait(self.interval)

    def median_between(self, start: float, end: float) -> float | None:
        vals = [n for t, n in list(self.samples) if start <= t < end]
        return float(median(vals)) if vals else None


def busier(before: float | None, after: float | None, cpus: int) -> bool:
    """The host got busier by at least one runnable task per core: a relative verdict cannot hold."""
    return before is not None and after is not None and after - before >= cpus
