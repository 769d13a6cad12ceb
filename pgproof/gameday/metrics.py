"""Numbers derived from the load's per-second stats: the baseline, and recoveries that must hold."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from statistics import fmean, median, pstdev
from typing import Protocol

from pgproof.exact import exact


class Second(Protocol):
    """What a per-second sample needs (``pgproof.load.runner.SecondStats`` fits)."""

    @property
    def t(self) -> float: ...
    @property
    def requests(self) -> int: ...
    @property
    def failures(self) -> int: ...
    @property
    def users(self) -> int: ...


class SecondP95(Second, Protocol):
    """A per-second sample with its p95 (None: no request that second)."""

    @property
    def p95_ms(self) -> float | None: ...


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


def floor_of(ratio: float, base: float) -> Fraction:
    """``ratio`` x the baseline, exactly: 0.9 x 100 req/s is 90, not 90.00000000000001."""
    return exact(ratio) * Fraction(base)


def load_recovery(stats: Sequence[Second], fault_at: float, ratio: float = 0.9,
                  sustain: int = 1) -> float | None:
    """Seconds from the fault until throughput is back to >= ``ratio`` x the pre-fault median.

    The clock starts at the fault; recovery is the start of the first second
    (held for ``sustain`` consecutive seconds) after throughput first dipped
    below the threshold. No dip at all returns 0.0; a dip that never recovers
    returns None. Stats are whole wall-clock seconds ``[t, t+1)``.
    """
    threshold = floor_of(ratio, baseline(stats, fault_at))
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


# Sustained recoveries --------------------------------------------------------------------------
#
# Throughput per second on a loaded 2-core machine spreads by +/- 20 % around its median, so a
# single steady-state second falls below 90 % of the baseline median quite often (the baseline's
# own ``below`` count shows how often). Comparing like with like, a recovery is a window of
# ``window`` consecutive seconds whose typical second is at the threshold: at most one second in
# it may miss (``dips``), and none may be an outage-sized miss (``broken``). A real stall fails
# ``broken``; a one-off wobble the baseline itself shows does not decide the verdict.


BASELINE_SECONDS = 8  # the baseline is the median of this many full seconds just before the fault


@dataclass(frozen=True)
class Baseline:
    """Pre-fault throughput and how much it spread: a verdict is only as stable as its baseline."""

    tps: float  # median successful requests per second
    seconds: int
    min: float
    max: float
    cv: float  # coefficient of variation (stdev / mean)
    mad: float  # median absolute deviation / median: robust to one odd second
    below: int  # baseline seconds that were themselves under ratio x median

    def to_dict(self) -> dict[str, float | int]:
        return {"tps": round(self.tps, 1), "seconds": self.seconds, "min": self.min,
                "max": self.max, "cv": round(self.cv, 3), "mad": round(self.mad, 3),
                "below": self.below}


def baseline_seconds(stats: Sequence[Second], fault_at: float, skip: int = 1) -> list[Second]:
    """Complete pre-fault seconds at full user count, the first ``skip`` (connection warm-up) dropped."""
    pre = [s for s in stats if s.t + 1 <= fault_at]
    if not pre:
        return []
    full = max(s.users for s in pre)
    return sorted((s for s in pre if s.users >= full), key=lambda s: s.t)[skip:]


def describe_baseline(stats: Sequence[Second], fault_at: float, ratio: float = 0.9,
                      skip: int = 1, last: int | None = None) -> Baseline:
    """Median, range, spread and self-miss count of the pre-fault throughput.

    ``last``: only the final seconds before the fault. On a shared machine the
    throughput shifts level when neighbours start work; the seconds just before
    the fault are the conditions the recovery is compared under.
    """
    secs = baseline_seconds(stats, fault_at, skip) or baseline_seconds(stats, fault_at, 0)
    secs = secs[-last:] if last else secs
    if not secs:
        raise ValueError("no complete second of load before the fault: start the load earlier")
    vals = [float(_ok(s)) for s in secs]
    med, mean = float(median(vals)), fmean(vals)
    cv = pstdev(vals) / mean if mean > 0 else 0.0
    mad = float(median(abs(v - med) for v in vals)) / med if med > 0 else 0.0
    return Baseline(med, len(vals), min(vals), max(vals), cv, mad,
                    sum(1 for v in vals if v < floor_of(ratio, med)))


def sustained(values: Sequence[tuple[float, float | None]], good: Callable[[float | None], bool],
              broken: Callable[[float | None], bool], window: int, dips: int = 1) -> float | None:
    """Start ``t`` of the first ``window`` contiguous seconds with <= ``dips`` misses and none broken.

    ``values`` are ``(t, value)`` per whole second, in time order. ``dips`` is
    capped at a quarter of the window, so short windows must hold every second.
    """
    dips = min(dips, window // 4)
    for i in range(len(values) - window + 1):
        win = values[i:i + window]
        if any(b[0] - a[0] != 1 for a, b in zip(win, win[1:], strict=False)):
            continue
        if any(broken(v) for _, v in win):
            continue
        if sum(1 for _, v in win if not good(v)) <= dips:
            return win[0][0]
    return None


def throughput_after(stats: Sequence[Second], start: float) -> list[tuple[float, float | None]]:
    """``(t, ok requests)`` of the whole seconds that began at or after ``start``."""
    return [(s.t, float(_ok(s))) for s in sorted(stats, key=lambda s: s.t) if s.t >= start]


def p95_after(stats: Sequence[SecondP95], start: float) -> list[tuple[float, float | None]]:
    """``(t, p95 ms)`` of the whole seconds that began at or after ``start`` (None: no request)."""
    return [(s.t, s.p95_ms) for s in sorted(stats, key=lambda s: s.t)
            if s.t >= start]
