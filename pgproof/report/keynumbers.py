"""The "Key numbers" table of a game-day report: every row says only what the journal shows.

Rules that keep the report from contradicting its own run: a recovery row
comes from the recorded decision (met, given up, or still open when the run
stopped), never from a missing number; "healed" is only said when a failover
happened (otherwise what was checked is named); an interrupted run shows what
had been measured up to the interruption.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pgproof.gameday.host import busier
from pgproof.gameday.scenarios import SCENARIOS
from pgproof.gameday.scenarios import outage as scenario_outage
from pgproof.report.timeline import num, rto_text, section

NA = "n/a"
# Scenarios whose fault is a seconds-long API call: their RTO is the outage (scenarios.py).
CONTROL_PLANE = frozenset(n for n, s in SCENARIOS.items() if s.control_plane)
Rel = Callable[[Any], float | None]


def secs(v: float | None, signed: bool = False, unit: str = " s", digits: int = 1) -> str:
    return NA if v is None else f"{v:{'+' if signed else ''}.{digits}f}{unit}"


def _rto(j: Mapping[str, Any], m: Mapping[str, Any], rel: Rel) -> list[list[str]]:
    rto = section(m, "rto")
    if not rto:
        return []
    budget = num(section(j, "parameters").get("budget_s")) or 60
    rto_s, res = num(rto.get("rto_s")), num(rto.get("resolution_s"))
    lo, hi = rel(rto.get("last_ack_before")), rel(rto.get("first_ack_after"))
    outage = hi - lo if lo is not None and hi is not None else None
    if rto.get("judged") == "outage" or (rto.get("judged") is None
                                         and j.get("scenario") in CONTROL_PLANE):
        out, out_res = scenario_outage(dict(rto))
        return [["RTO (outage: last ack to first ack; HA-2 judges this)", rto_text(out, out_res),
                 f"budget {budget:g} s; last ack {secs(lo, True, digits=2)}, first ack "
                 f"{secs(hi, True, digits=2)} (from the failover API call's start)"],
                ["Writes back after the API call started", rto_text(rto_s, res),
                 "the control-plane call takes seconds while writes still succeed, so this is "
                 f"longer than the outage; {rto.get('failed_writes', NA)} probe writes failed"]]
    return [["RTO (writes succeed again)", rto_text(rto_s, res),
             f"budget {budget:g} s; resolution {secs(res, digits=3)}; outage "
             f"{secs(outage, digits=2)} (last ack {secs(lo, True, digits=2)}, "
             f"first ack {secs(hi, True, digits=2)}); "
             f"{rto.get('failed_writes', NA)} probe writes failed"]]


def _ledger(m: Mapping[str, Any]) -> list[list[str]]:
    led, unverified = section(m, "ledger"), section(m, "ledger_unverified")
    if led:
        return [["Acknowledged writes lost", str(led.get("lost", NA)),
                 f"acknowledged {led.get('acknowledged', NA)}, present {led.get('present', NA)}, "
                 f"failed {led.get('failed', NA)}, extra {led.get('extra', NA)}"],
                ["Unknown commits", str(led.get("unknown", NA)),
                 f"landed {led.get('unknown_landed', NA)}, missing {led.get('unknown_missing', NA)} "
                 "(connection broke before the answer; never counted as lost)"]]
    if unverified:
        return [["Ledger (not verified)", f"{unverified.get('acknowledged', NA)} acknowledged",
                 f"failed {unverified.get('failed', NA)}, unknown {unverified.get('unknown', NA)}; "
                 f"lost writes not counted: {unverified.get('why', '')}"]]
    return []


def _baseline(m: Mapping[str, Any]) -> list[list[str]]:
    b, tps = section(m, "baseline"), num(m.get("baseline_tps"))
    if b and num(b.get("tps")) is not None:
        cv = num(b.get("cv"))
        return [["Baseline throughput", f"{num(b['tps']):.0f} ok req/s",
                 f"median of {b.get('seconds', NA)} s before the fault at full load; per second "
                 f"{b.get('min', NA):.0f}-{b.get('max', NA):.0f}, cv {'n/a' if cv is None else f'{cv:.0%}'}; "
                 f"{b.get('below', NA)} of its own seconds were under 90 % of the median"]]
    if tps is not None:
        return [["Baseline throughput", f"{tps:.0f} ok req/s", "median before the fault"]]
    return []


def _condition_value(c: Mapping[str, Any], verb: str = "recovered") -> str:
    met, start = num(c.get("met_at")), num(c.get("start_at"))
    if c.get("ok") and met is not None and start is not None:
        return f"{verb} after {met - start:.1f} s, " \
               f"held {num(c.get('held_s')) or 0:.0f} s"
    if c.get("decided_at") is None:
        return "not decided (run ended first)"
    if c.get("start_at") is None:
        return f"not recovered: {c.get('note') or 'it could not start'}"
    return f"not recovered within {num(c.get('budget_s')) or 0:.0f} s"


def _load(m: Mapping[str, Any], rel: Rel, interrupted: bool) -> list[list[str]]:
    c = section(section(m, "conditions"), "load")
    if c:
        since = c.get("since") or "the start of recovery"
        detail = f"after {since} (+{secs(rel(c.get('start_at')))} from the fault): {c.get('what', '')}"
        if c.get("ok") and m.get("load_dropped") is False:
            return [["Load recovery", "no drop below 90 % of baseline", detail]]
        h = section(m, "host")
        if c.get("decided_at") is not None and not c.get("ok") and busier(
                num(h.get("runnable_baseline")), num(h.get("runnable_load")), int(h.get("cpus") or 1)):
            return [["Load recovery", f"{_condition_value(c)}; not judged: the host got busier",
                     f"{detail}; median runnable tasks {h.get('runnable_baseline')} during the baseline, "
                     f"{h.get('runnable_load')} while waiting, on {h.get('cpus')} cores"]]
        return [["Load recovery", _condition_value(c), detail]]
    if interrupted:
        return [["Load recovery", "not decided (interrupted)", "the run stopped before load recovery "
                 "was watched"]] if num(m.get("baseline_tps")) is not None else []
    if "load_recovery_s" in m:  # journals written before recoveries were watched
        rec = num(m.get("load_recovery_s"))
        return [["Load recovery", "not recovered" if rec is None else secs(rec),
                 "after the fault, back to >= 90 % of baseline throughput"]]
    return []


def _cluster(j: Mapping[str, Any], m: Mapping[str, Any], rel: Rel) -> list[list[str]]:
    """'Healed' only after a failover; otherwise say what was checked and what it showed."""
    heal, failovers = section(section(m, "conditions"), "heal"), m.get("failovers")
    during = section(m, "leader_during")
    rows: list[list[str]] = []
    if during:
        leaders = ", ".join(map(str, during.get("leaders") or [])) or "none answered"
        held = not during.get("other_leader_seen")
        rows.append(["Leader during the fault", f"{leaders}" + (" throughout" if held else " (CHANGED)"),
                     f"checked {during.get('samples', NA)} times while the fault was on"])
    if not heal:
        if "heal_s" in m and failovers:  # older journal
            rows.append(["Cluster healed", secs(num(m.get("heal_s"))), "old primary rejoined or new standby"])
        return rows
    what = str(heal.get("what") or "steady state")
    value = _condition_value(heal, "steady again")
    if failovers:
        rows.append(["Cluster healed", _condition_value(heal, "healed"),
                     f"{m.get('old_primary') or '?'} -> {m.get('new_primary') or '?'}; after the undo, "
                     f"{what}; {secs(num(m.get('heal_s')))} after the fault"])
    elif failovers == 0 and during and not during.get("other_leader_seen") and heal.get("ok"):
        rows.append(["Failover check", "leader held throughout (no failover)",
                     f"leader {m.get('old_primary') or '?'} kept its role; after the undo ({what}): "
                     f"{value}"])
    else:
        rows.append(["Cluster steady", value + " (from the undo)",
                     f"no failover: leader {m.get('old_primary') or '?'} kept its role; checked: {what}"
                     if failovers == 0 else f"checked: {what}"])
    return rows


def _latency(m: Mapping[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    p95b, p95d, p95a = (num(m.get(k)) for k in ("p95_baseline_ms", "p95_during_ms", "p95_after_ms"))
    if any(v is not None for v in (p95b, p95d, p95a)):
        c = section(section(m, "conditions"), "p95")
        rows.append(["p95 latency", f"{secs(p95b, unit=' ms')} -> {secs(p95d, unit=' ms')} -> "
                     f"{secs(p95a, unit=' ms')}", "before -> during the fault -> after the undo (median "
                     "of per-second p95)" + (f"; return: {_condition_value(c)}, {c.get('what', '')}"
                                             if c else "")])
    if m.get("requests_during") is not None and m.get("error_ratio") is not None:
        rows.append(["Errors during the fault", f"{num(m['error_ratio']) or 0:.2%}",
                     f"of {m['requests_during']} requests between fault and undo"])
    return rows


def _cross_check(pat: float | None, pg: float | None, ack: float | None, res: float | None) -> str:
    """Does the clock's RTO agree with the logs? A first ack before promotion means skew or split brain."""
    promoted = pg if pg is not None else pat
    notes = ([f"Patroni vs PostgreSQL {abs(pat - pg):.2f} s apart"]
             if pat is not None and pg is not None else [])
    if promoted is not None and ack is not None:
        gap = ack - promoted
        if gap < -(res or 0.1):
            notes.append(f"INCONSISTENT: first ack {-gap:.2f} s before promotion was logged "
                         "(clock skew, or a write landed on the old primary)")
        else:
            notes.append(f"consistent: first ack {gap:.2f} s after promotion (reconnect and routing)")
    return "; ".join(notes) or "nothing to compare"


def key_numbers(j: Mapping[str, Any], rel: Rel) -> list[list[str]]:
    m = section(j, "measurements")
    rto, sb, promo = (section(m, k) for k in ("rto", "split_brain", "promotion"))
    interrupted = bool(section(j, "interrupted"))
    rows = _rto(j, m, rel) + _ledger(m) + _baseline(m) + _load(m, rel, interrupted)
    rows += _cluster(j, m, rel) + _latency(m) + _restore(m)
    if m.get("failovers") is not None:
        rows.append(["Failovers", str(m["failovers"]),
                     f"leader {m.get('old_primary') or '?'} before, {m.get('new_primary') or '?'} after"])
    if sb:
        refused = sb.get("write_refused")
        rows.append(["Split brain", "none: write refused" if refused else "WRITE ACCEPTED",
                     f"direct write on old primary {sb.get('old_primary', '?')}: {sb.get('error') or '-'}"])
    if promo and (promo.get("patroni_log_at") is not None or promo.get("postgres_log_at") is not None
                  or m.get("failovers")):
        pat, pg = rel(promo.get("patroni_log_at")), rel(promo.get("postgres_log_at"))
        rows.append(["Promotion logged", f"Patroni {secs(pat, True)}, PostgreSQL {secs(pg, True)}",
                     _cross_check(pat, pg, rel(rto.get("first_ack_after")), num(rto.get("resolution_s")))])
    for item in m.get("unmeasured") or []:
        rows.append(["Not measured", str(item).split(":", 1)[0], str(item).split(":", 1)[-1].strip()])
    return rows


def _restore(m: Mapping[str, Any]) -> list[list[str]]:
    """The restore drill (BAK-6): RPO, restore time, what came back, the scratch instance's end."""
    if not m.get("target_time"):
        return []
    rows = [["Target time T", str(m["target_time"]), "taken in a gap between acknowledged markers"]]
    if m.get("rpo_s") is not None:
        rows.append(["RPO", f"{m['rpo_s']:.2f} s", f"T minus the newest restored marker "
                     f"({m.get('newest_restored')})"])
    if m.get("restore_s") is not None:
        rows.append(["Restore time", f"{m['restore_s']:.1f} s", "restore requested to restored instance "
                     f"verified; T chosen to verified {m.get('drill_s', 0):.1f} s"])
    if m.get("before_t") is not None:
        rows.append(["Markers", f"{m['before_t']} <= T, {m['after_t_acked']} > T",
                     f"{len(m.get('missing') or [])} missing, {len(m.get('after_t') or [])} after T restored"])
    if m.get("database_bytes"):
        rows.append(["Database size", f"{m['database_bytes'] / 2**20:.1f} MiB", "all databases of the source"])
    if m.get("restore_error"):
        rows.append(["Restore", "FAILED", str(m["restore_error"])])
    scratch = section(m, "scratch")
    if scratch:
        rows.append(["Scratch instance", str(scratch.get("deleted") or "NOT deleted (see the fault record)"),
                     str(scratch.get("dir") or scratch.get("id") or "")])
    return rows
