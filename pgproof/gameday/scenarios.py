"""The game-day scenarios: which fault, what to wait for, and how each control is judged."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import median
from typing import Any

from pgproof.controls import title
from pgproof.faults.protocol import FaultName
from pgproof.gameday.host import busier
from pgproof.gameday.measurements import Measurements


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    controls: tuple[str, ...]
    fault: FaultName  # a FaultDriver method
    fault_args: dict[str, Any] = field(default_factory=dict)
    expect_failover: bool = True
    synchronous: bool = True
    split_brain_check: bool = False
    # The fault is an API call that takes seconds (Patroni /failover, RDS reboot, Azure restart)
    # while writes still succeed: the RTO judged is the outage the clock saw (last acknowledged
    # write before the gap to the first after), not the time since the call started.
    control_plane: bool = False


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("kill-primary", "crash the primary (Patroni and PostgreSQL killed together) under load",
             ("HA-2", "HA-3", "HA-4", "HA-6"), "kill_primary"),
    Scenario("kill-primary-async", "crash the primary with asynchronous replication: lost "
             "acknowledged writes are possible and must be detected", ("HA-2", "HA-3", "HA-4", "HA-6"),
             "kill_primary", synchronous=False),
    Scenario("latency", "200 ms (+/- 20 ms) latency on the client-to-database path under load",
             ("CH-LAT",), "latency", {"ms": 200, "jitter_ms": 20}, expect_failover=False),
    Scenario("partition", "cut the primary off from clients, its replica and etcd",
             ("CH-PART",), "partition_primary", split_brain_check=True),
    Scenario("crash-postmaster", "kill only the primary's postmaster: Patroni restarts it in place "
             "(no failover expected)", ("HA-2", "HA-3", "HA-6"), "crash_postmaster"),
    Scenario("force-failover", "failover through the control plane (Patroni /failover, RDS "
             "reboot with failover, Azure restart with failover)", ("CH-FORCE",), "force_failover",
             control_plane=True),
)}


def _v(cid: str, ok: bool | None, evidence: str) -> dict[str, str]:
    verdict = "error" if ok is None else ("pass" if ok else "fail")
    return {"id": cid, "title": title(cid), "verdict": verdict, "evidence": evidence}


def judge(s: Scenario, m: Measurements, budget_s: float,
          error_budget: float = 0.01) -> list[dict[str, str]]:
    """Verdict per control from the measurements: sentences say what was found and wanted."""
    rto: Mapping[str, Any] = m.get("rto") or {}
    ledger = m.get("ledger")
    rto_s, res = rto.get("rto_s"), rto.get("resolution_s")
    rto_ok = None if not rto else (rto_s is not None and rto_s <= budget_s)
    rto_text = (f"writes acknowledged again {rto_s:.2f} s (+/- {res or 0:.2f} s) after the fault; "
                f"budget {budget_s:.0f} s" if rto_s is not None
                else f"no write acknowledged within the {budget_s:.0f} s budget")
    if s.control_plane and rto_s is not None:
        rto_ok, rto_text = _outage(rto, budget_s)
    lost_ok = None if ledger is None else ledger["lost"] == 0
    lost_text = ("ledger unavailable" if ledger is None else
                 f"{ledger['acknowledged']} acknowledged, {ledger['lost']} lost, {ledger['unknown']} "
                 f"unknown ({ledger['unknown_landed']} landed), {ledger['failed']} failed")
    conds = m.get("conditions") or {}
    out = []
    for cid in s.controls:
        if cid == "HA-2":
            out.append(_v(cid, rto_ok, rto_text))
        elif cid == "HA-3":
            out.append(_v(cid, lost_ok, lost_text))
        elif cid == "HA-4":
            out.append(_v(cid, *_load(m, conds.get("load"))))
        elif cid == "HA-6":
            heal, after = conds.get("heal") or {}, m.get("steady_after_ok")
            ok = None if not heal else bool(heal.get("ok") and after)
            out.append(_v(cid, ok, f"steady state ({heal.get('what', '?')}) {heal.get('sentence', 'not watched')}"
                          + ("" if after or not heal.get("ok") else "; but BROKEN again at the final check")))
        elif cid == "CH-LAT":
            out.append(_v(cid, *_latency(m, conds.get("p95"), error_budget)))
        elif cid == "CH-PART" and not s.split_brain_check:  # e.g. an SG blackhole: no failover
            ok = None if rto_ok is None or lost_ok is None else (rto_ok and lost_ok)
            out.append(_v(cid, ok, f"{rto_text}; {lost_text}; the app tier was cut off, the "
                          "database was not (no split-brain probe: nothing fails over)"))
        elif cid == "CH-PART":
            sb: Mapping[str, Any] = m.get("split_brain") or {}
            ok = None if not rto or not sb else bool(rto_ok and sb.get("write_refused"))
            out.append(_v(cid, ok, f"{rto_text}; old primary {sb.get('old_primary')} "
                          f"{'refused' if sb.get('write_refused') else 'ACCEPTED'} a direct write "
                          f"({sb.get('error', '')})"))
        elif cid == "CH-FORCE":
            ok = None if rto_ok is None or lost_ok is None else (rto_ok and lost_ok)
            out.append(_v(cid, ok, f"{rto_text}; {lost_text}"))
    return out


def outage(rto: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(outage s, its resolution s): last acknowledged write before the gap to the first after
    (journals recorded before the outage was stored: from the two instants)."""
    out, res = rto.get("outage_s"), rto.get("outage_resolution_s")
    lo, hi = rto.get("last_ack_before"), rto.get("first_ack_after")
    if out is None and lo is not None and hi is not None:
        out = hi - lo
    return out, res if res is not None else rto.get("resolution_s")


def _outage(rto: Mapping[str, Any], budget_s: float) -> tuple[bool | None, str]:
    """HA-2 for a control-plane failover: the outage is the RTO, the time since the API call
    started is stated beside it (the call itself takes seconds while writes still succeed)."""
    out, res = outage(rto)
    rto_s, fault_at, lo = rto.get("rto_s"), rto.get("fault_at"), rto.get("last_ack_before")
    since = (f"; writes acknowledged again {rto_s:.2f} s after the failover API call started"
             + (f" (writes still succeeded {lo - fault_at:.2f} s into it)"
                if lo is not None and fault_at is not None and lo > fault_at else ""))
    if out is None:
        return None, (f"no acknowledged write before the failover to time the outage from{since}; "
                      f"budget {budget_s:.0f} s")
    return out < budget_s, (f"RTO (outage) {out:.2f} s (+/- {res or 0:.2f} s) from the last "
                            f"acknowledged write before the gap to the first after: the number "
                            f"HA-2 judges{since}; budget {budget_s:.0f} s")


def _spread(m: Measurements) -> str:
    b = m.get("baseline") or {}
    if not b:
        return f"{m.get('baseline_tps')} ok req/s"
    return (f"{b['tps']:.0f} ok req/s (median of {b['seconds']} s, {b['min']:.0f}-{b['max']:.0f}, "
            f"cv {b['cv']:.0%})")


def _same_load(m: Measurements) -> str:
    w = m.get("load_workers") or 0
    return f"same Locust master and {w} workers" if w else "same Locust process"


def _load(m: Measurements, c: dict[str, Any] | None) -> tuple[bool | None, str]:
    """HA-4: throughput back to >= 90 % of the baseline, held, in the same Locust process."""
    if not c:
        return None, "load recovery was not watched"
    head = f"baseline {_spread(m)}; "
    if c.get("ok"):
        rto = m.get("rto")
        after = (c["met_at"] - rto["fault_at"]) if rto and rto.get("fault_at") else None
        return True, (head + f"throughput {c['sentence']}" + (f" ({after:.1f} s after the fault)" if after
                      is not None else "") + f"; {_same_load(m)}, no client restarted")
    text = head + f"throughput {c['sentence']}"
    confounded = _confounded(m, "load")
    if confounded:
        return None, text + confounded
    return (None if c.get("decided_at") is None else False), text


def _confounded(m: Measurements, name: str) -> str:
    """Why a relative verdict cannot be judged: the host got busier than during the baseline."""
    h = m.get("host") or {}
    before, after, cpus = h.get("runnable_baseline"), h.get(f"runnable_{name}"), int(h.get("cpus") or 1)
    if not busier(before, after, cpus):
        return ""
    return (f"; cannot judge: the host got busier after the baseline (median runnable tasks "
            f"{before:g} -> {after:g} on {cpus} cores), so the comparison says nothing about the "
            "database: rerun on a quieter host")


def _latency(m: Measurements, c: dict[str, Any] | None,
             error_budget: float) -> tuple[bool | None, str]:
    failovers, ratio = m.get("failovers", 0), m.get("error_ratio") or 0.0
    base, during, after = m.get("p95_baseline_ms"), m.get("p95_during_ms"), m.get("p95_after_ms")
    back = bool(c and c.get("ok"))
    ok = failovers == 0 and ratio <= error_budget and back
    text = (f"{failovers} failover(s); errors {ratio:.2%} of requests during the fault "
            f"(budget {error_budget:.0%}); p95 {base} ms before, {during} ms during, {after} ms "
            f"after the undo: {(c or {}).get('sentence', 'not watched')}")
    confounded = "" if back else _confounded(m, "p95")
    if confounded and failovers == 0 and ratio <= error_budget:
        return None, text + confounded
    return ok, text


def p95_median(series: list[dict[str, Any]], start: float, end: float) -> float | None:
    vals = [s["p95_ms"] for s in series if start <= s["t"] < end and s.get("p95_ms")]
    return round(median(vals), 1) if vals else None
