"""What a game day measured: the recovery watch after the undo, then the numbers the verdicts use.

Split from ``run`` so the phase order stays readable there. ``measure`` also
runs after an interrupt, on whatever had started: each number is taken on its
own, so one that cannot be had (the writer is mid-failover) does not hide the
others.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

from pgproof.faults.protocol import FaultDriver
from pgproof.gameday import ledger as ledger_mod
from pgproof.gameday import metrics
from pgproof.gameday.clock import FailoverClock
from pgproof.gameday.host import HostLoad
from pgproof.gameday.journal import Journal
from pgproof.gameday.measurements import LeaderHold, LedgerUnverified, Measurements, Rto
from pgproof.gameday.scenarios import Scenario, p95_median
from pgproof.gameday.watch import Condition, Streak, watch
from pgproof.load.runner import LoadProcess, SecondStats
from pgproof.target import Target

STALL_SHARE = 0.5  # a second under half the baseline is an outage, never a tolerated dip


class Live(TypedDict, total=False):
    """What a game day has started so far: ``measure`` takes what is there, even after an interrupt."""

    driver: FaultDriver
    load: LoadProcess
    host: HostLoad
    clock: FailoverClock
    old_leader: str | None
    timeline: int | None
    fault_at: float


def series(stats: list[SecondStats]) -> list[dict[str, Any]]:
    return [{"t": x.t, "requests": x.requests, "failures": x.failures, "p95_ms": x.p95_ms,
             "users": x.users} for x in stats]


def watch_recovery(target: Target, s: Scenario, j: Journal, m: Measurements, load: LoadProcess,
                   clock: FailoverClock, driver: FaultDriver, fault_at: float, host: HostLoad | None = None) -> None:
    """Keep load running until load recovery, p95 return (CH-LAT) and heal are each decided."""
    th = target.thresholds
    w, budget, ratio = th.recovery_sustain_s, th.recovery_budget_s, th.load_recovery_ratio
    undone = j.fault.get("undone_at") or time.time()
    stats = load.stats()
    conds: list[Condition] = []
    checks: dict[str, tuple[Callable[[], Any], Callable[[float | None], bool],
                            Callable[[float | None], bool]]] = {}
    try:
        base: metrics.Baseline | None = metrics.describe_baseline(stats, fault_at, ratio,
                                                                     last=metrics.BASELINE_SECONDS)
    except ValueError:
        base = None
    if base is not None:
        m["baseline"] = base.to_dict()
        m["baseline_tps"] = round(base.tps, 1)
    if s.expect_failover:
        start, since = clock.rto(fault_at).first_ack_after, "writes returned"
    else:
        start, since = undone, "the undo"
    if base is None or base.tps <= 0:
        load_c = Condition("load", "throughput back to its baseline", w, budget, None, since,
                           note="no pre-fault throughput to compare with")
    else:
        floor, stall = metrics.floor_of(ratio, base.tps), STALL_SHARE * base.tps
        load_c = Condition("load", f"ok req/s >= {float(floor):.0f} ({ratio:.0%} of the {base.tps:.0f} baseline) "
                           f"for {w} consecutive s, at most 1 s short and none under {stall:.0f}",
                           w, budget, start, since,
                           note="" if start is not None else "no write was acknowledged after the fault")
        load_from = start or 0.0
        checks["load"] = (lambda: metrics.throughput_after(load.stats(), load_from),
                          lambda v: v is not None and v >= floor,
                          lambda v: v is None or v < stall)
    conds.append(load_c)
    p95_base = p95_median(series(stats), fault_at - 60, fault_at)
    m["p95_baseline_ms"] = p95_base
    if "CH-LAT" in s.controls:
        if p95_base is None:
            conds.append(Condition("p95", "p95 back to its baseline", w, budget, None, "the undo",
                                   note="no p95 measured before the fault"))
        else:
            limit = p95_base * th.p95_recovery_factor + 10
            conds.append(Condition("p95", f"per-second p95 <= {limit:.0f} ms ({th.p95_recovery_factor:g} x "
                                   f"{p95_base:.0f} ms + 10) for {w} consecutive s, at most 1 s over and "
                                   f"none over {2 * limit:.0f} ms", w, budget, undone, "the undo"))
            checks["p95"] = (lambda: metrics.p95_after(load.stats(), undone),
                             lambda v: v is not None and v <= limit,
                             lambda v: v is None or v > 2 * limit)
    need = driver.STEADY_TEXT or (  # the driver's own words (RDS: control plane)
        "leader, streaming " + ("sync " if s.synchronous else "") + "standby, writable writer endpoint")
    heal = Condition("heal", need, w, budget, undone, "the undo")
    conds.append(heal)
    watch(j, conds, checks, lambda: driver.steady(require_sync=s.synchronous), Streak(heal))
    m["conditions"] = {c.name: c.to_dict() for c in conds}
    m["load_recovery_s"] = round(load_c.met_at - fault_at, 2) if load_c.met_at is not None else None
    m["heal_s"] = round(heal.met_at - fault_at, 2) if heal.met_at is not None else None
    if host is not None:
        def window(c: Condition) -> float | None:
            return host.median_between(c.start_at or fault_at, c.decided_at or time.time())
        m["host"] = {"cpus": host.cpus, "runnable_baseline": host.median_between(
            fault_at - metrics.BASELINE_SECONDS, fault_at),
            **{f"runnable_{c.name}": window(c) for c in conds if c.name in ("load", "p95")}}
    if base is not None:
        end = load_c.decided_at or time.time()
        m["load_dropped"] = any(x.ok < metrics.floor_of(ratio, base.tps) for x in load.stats() if fault_at <= x.t + 1
                                and x.t < end)


def measure(target: Target, s: Scenario, j: Journal, m: Measurements, live: Live,
            app: dict[str, Any]) -> None:
    """Every number that can be had from what ran; after an interrupt some parts are missing."""
    load, clock = live.get("load"), live.get("clock")
    driver, fault_at = live.get("driver"), live.get("fault_at")
    stats = load.stats() if load is not None else []
    j.series = series(stats)

    def step(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - one missing number must not hide the rest
            m.setdefault("unmeasured", []).append(f"{getattr(fn, '__name__', '?')}: "
                                                  f"{type(exc).__name__}: {str(exc)[:160]}")

    def rto() -> None:
        if clock is None or fault_at is None:
            return
        r = clock.rto(fault_at)
        m["clock_resolution_s"] = clock.resolution()
        m["rto"] = Rto(**{"fault_at": fault_at, "rto_s": r.rto_s, "resolution_s": r.resolution_s,
                    "last_ack_before": r.last_ack_before, "first_ack_after": r.first_ack_after,
                    "failed_writes": r.failed_writes, "outage_s": r.outage_s,
                    "outage_resolution_s": r.outage_resolution_s,
                    "judged": "outage" if s.control_plane else "from_fault"
                    }) if s.expect_failover else None

    def ledger() -> None:
        if load is None:
            return
        entries = load.ledger()
        try:
            verdict = ledger_mod.verify({**app, "connect_timeout": 3}, j.run_id, entries)
        except Exception:
            by = {st: sum(1 for e in entries if e.status == st) for st in ("acknowledged", "failed",
                                                                             "unknown")}
            m["ledger_unverified"] = LedgerUnverified(
                acknowledged=by["acknowledged"], failed=by["failed"], unknown=by["unknown"],
                why="the database could not be asked which rows landed")
            raise
        m["ledger"] = verdict.counts()
        if verdict.lost:
            m["ledger"]["lost_keys"] = [list(k) for k in verdict.lost_keys[:20]]

    def latency() -> None:
        if fault_at is None:
            return
        undone = j.fault.get("undone_at") or (stats[-1].t + 1 if stats else fault_at)
        if "baseline_tps" not in m:
            base = metrics.describe_baseline(stats, fault_at, target.thresholds.load_recovery_ratio,
                                            last=metrics.BASELINE_SECONDS)
            m["baseline"], m["baseline_tps"] = base.to_dict(), round(base.tps, 1)
        m["p95_baseline_ms"] = p95_median(j.series, fault_at - 60, fault_at)
        m["p95_during_ms"] = p95_median(j.series, fault_at, undone)
        p95 = section(section(m, "conditions"), "p95")
        held = p95.get("met_at")
        m["p95_after_ms"] = (p95_median(j.series, held, held + (p95.get("window_s") or 5))
                             if held is not None else p95_median(j.series, undone + 1, undone + 60))
        during = [x for x in stats if fault_at <= x.t < undone]
        total = sum(x.requests for x in during)
        m["requests_during"] = total
        m["error_ratio"] = (sum(x.failures for x in during) / total) if total else 0.0

    def cluster() -> None:
        if driver is None or "old_leader" not in live:
            return
        old_leader, tl0 = live["old_leader"], live.get("timeline")
        new_leader, tl1 = driver.leader(), driver.timeline()
        m["failovers"] = 0 if (new_leader == old_leader and tl1 == tl0) else max(1, (tl1 or 0) - (tl0 or 0))
        m["old_primary"], m["new_primary"] = old_leader, new_leader
        m["steady_after_ok"] = driver.steady(require_sync=s.synchronous)[0]
        promotion = (driver.promotion_times(new_leader, fault_at)
                     if s.expect_failover and new_leader and fault_at else None)
        if promotion is not None:  # None: the driver cannot tell (ssh)
            m["promotion"] = promotion

    for fn in (rto, ledger, latency, cluster):
        step(fn)


def section(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    return v if isinstance(v, dict) else {}


def hold(driver: FaultDriver, duration_s: float, old_leader: str | None, j: Journal) -> LeaderHold:
    """Hold a non-failover fault, checking the leader each second: CH-LAT wants no failover."""
    end, samples, changed = time.time() + duration_s, 0, 0
    seen: set[str | None] = set()
    while time.time() < end:
        with contextlib.suppress(Exception):
            leader = driver.leader()
            samples += 1
            seen.add(leader)
            changed += leader != old_leader
        time.sleep(max(0.0, min(1.0, end - time.time())))
    result = LeaderHold(samples=samples, other_leader_seen=changed, leaders=sorted(map(str, seen)))
    j.event("fault", f"held {duration_s:.0f} s; leader checked {samples} times",
            f"leaders seen: {', '.join(result['leaders']) or 'none'}")
    return result
