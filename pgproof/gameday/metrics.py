"""Numbers derived from the load's per-second stats: HA-4, the load recovers without restarts."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Protocol


class Second(Protocol):
    """What a per-second sample needs (``pgproof.load.runner.SecondStats`` fits)."""

    t: float
    requests: int
    failures: int
    users: int


def _ok(s: Second) -> int:
    # Failed connects during an outage are requests too; only successes are throughput.
    return s.requests - s.failures


def baseline(stats: Sequence[Second], fault_at: float) -> float:
    """Median successful requests per second before the fault, over seconds at full user count.

    Ramp-up seconds (fewer users than the pre-fault maximum) would drag the
    median down and make recovery look easier than it is.
    """
    pre = [s for s in stats if s.t + 1 <= fault_at]
    if not pre:
        raise ValueError("no complete second of load before the fault: start the load earlier")
    full = max(s.users for s in pre)
    return float(median(_ok(s) for s in pre if s.users >= full))


def load_recovery(stats: Sequence[Second], fault_at: float, ratio: float = 0.9,
                  sustain: int = 1) -> float | None:
    """Seconds from the fault until throughput is back to >= ``ratio`` x the pre-fault median.

    The clock starts at the fault; recovery is the start of the first second
    (held for ``sustain`` consecutive seconds) after throughput first dipped
    below the threshold. No dip at all returns 0.0; a dip that never recovers
    returns None. Stats are whole wall-clock seconds ``[t, t+1)``.
    """
    threshold = ratio * baseline(stats, fault_at)
    post = sorted((s for s in stats if s.t + 1 > fault_at), key=lambda s: s.t)
    dip = next((i for i, s in enumerate(post) if _ok(s) < threshold), None)
    if dip is None:
        return 0.0
    for i in range(dip + 1, len(post) - sustain + 1):
        window = post[i:i + sustain]
        contiguous = all(b.t - a.t == 1 for a, b in zip(window, window[1:], strict=False))
        if contiguous and all(_ok(s) >= threshold for s in window):
            return max(0.0, window[0].t - fault_at)
    return None
