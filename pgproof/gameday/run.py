"""Run one game day: steady state -> load + clock -> fault -> recovery -> undo -> heal -> verify."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgproof.faults import record
from pgproof.faults.base import FaultUndoError
from pgproof.faults.drivers import adapt, cannot, fault_text, make_driver
from pgproof.gameday import ledger as ledger_mod
from pgproof.gameday import metrics
from pgproof.gameday.clock import FailoverClock
from pgproof.gameday.journal import Journal
from pgproof.gameday.safety import ChaosRefused, check_policy, sigterm_unwinds
from pgproof.gameday.scenarios import SCENARIOS, Scenario, judge, p95_median
from pgproof.load.runner import LoadProcess
from pgproof.load.schema import ensure_clock_table, ensure_ledger_table
from pgproof.report import results as res
from pgproof.target import Target

HEAL_BUDGET_S = 60.0
LOAD_MARGIN_S = 120.0  # start-up, control-plane calls, undo and a loaded machine


def load_limit_s(s: Scenario, target: Target, baseline_s: float, budget_s: float,
                 settle_s: float) -> float:
    """Locust's --run-time: every phase's budget plus a margin, so an orphan cannot run forever."""
    hold = budget_s if s.expect_failover else target.chaos.duration_s
    return baseline_s + hold + HEAL_BUDGET_S + settle_s + LOAD_MARGIN_S


def plan(s: Scenario, target: Target, users: int, baseline_s: float, budget_s: float,
         driver: Any = None) -> list[str]:
    steady = getattr(driver, "STEADY_TEXT", "leader + streaming sync standby")
    return [
        f"target {target.name} (driver {target.chaos.driver}); scenario {s.name}: {s.description}",
        f"1. check steady state ({steady}); refuse if unhealthy",
        *(["   switch the cluster to asynchronous replication (restored afterwards)"]
          if not s.synchronous else []),
        f"2. start Locust ({users} ledger writers) and the failover clock (a write every 50 ms)",
        f"3. measure {baseline_s:.0f} s of baseline",
        f"4. inject fault: {fault_text(driver, s, duration_s=target.chaos.duration_s)}",
        (f"5. wait for writes to succeed again (budget {budget_s:.0f} s)" if s.expect_failover
         else f"5. hold the fault {target.chaos.duration_s:.0f} s"),
        "6. undo the fault (always: also on failure, Ctrl-C, SIGTERM)",
        f"7. wait for the cluster to heal (budget {HEAL_BUDGET_S:.0f} s), load recovery, p95",
        f"8. verify the write ledger; verdicts for {', '.join(s.controls)}",
    ]


def run(target: Target, scenario: str, *, reports: Path = Path("reports"), users: int | None = None,
        baseline_s: float | None = None, budget_s: float | None = None, settle_s: float = 4,
        i_mean_production: bool = False, dry_run: bool = False,
        echo: Callable[[str], None] = print) -> tuple[Journal, Path | None]:
    s = SCENARIOS[scenario]
    users = users or target.chaos.load_users
    baseline_s = baseline_s or target.chaos.baseline_s
    budget_s = budget_s or target.thresholds.rto_budget_s
    check_policy(target, i_mean_production)
    left = record.FaultRecord.load(target)
    if left is not None:  # dry-run too: the plan would be refused
        raise ChaosRefused(f"{left.notice()}; a new game day waits until it is recovered")
    driver = make_driver(target)
    s = adapt(driver, s)
    needs = [s.fault] + ([] if s.synchronous else ["synchronous"])
    for method in needs:
        why = cannot(driver, method)
        if why:
            raise ChaosRefused(f"scenario {s.name} cannot run on target {target.name!r}: {why}")
    if dry_run:
        for line in plan(s, target, users, baseline_s, budget_s, driver):
            echo(line)
        return Journal(uuid.uuid4().hex[:12], target.name, s.name, s.description,
                       target.chaos.driver, {}, verdict="dry-run"), None
    run_id = f"{s.name}-{uuid.uuid4().hex[:8]}"
    try:
        rec = record.FaultRecord.create(target, run_id, s.name, None)
    except record.RecordExists:
        raise ChaosRefused(f"another game day just claimed target {target.name!r}") from None
    try:
        out = res.run_dir(reports.resolve(), target.name, s.name)
    except BaseException:
        rec.delete()  # nothing touched yet: no record, nothing half-written
        raise
    rec.data["run_dir"] = str(out)
    rec.save()
    j = Journal(run_id, target.name, s.name, s.description,
                target.chaos.driver, {"users": users, "budget_s": budget_s, "baseline_s": baseline_s,
                                      "heal_budget_s": HEAL_BUDGET_S, **s.fault_args}, echo=echo)
    j.save(out)  # the stub an interrupted (SIGKILLed) run leaves behind for `gameday recover`
    try:
        with sigterm_unwinds(), record.activate(rec):
            _run(target, driver, s, j, out, users, baseline_s, budget_s, settle_s)
    except FaultUndoError as exc:
        j.manual_fix = str(exc)
        j.event("undo", "UNDO FAILED", str(exc))
        j.verdict = "error"
    except KeyboardInterrupt as exc:
        j.event("abort", "interrupted; every registered undo has run", type(exc).__name__)
        j.verdict = "error"
        _finish(j, out, rec)
        raise
    except Exception as exc:  # noqa: BLE001 - the journal must say what broke
        j.event("abort", "game day failed", f"{type(exc).__name__}: {exc}")
        j.verdict = "error"
    _finish(j, out, rec)
    return j, out


def _finish(j: Journal, out: Path, rec: record.FaultRecord) -> None:
    if not rec.close():  # something is still in place: recover must find it
        j.event("undo", "fault record kept", f"{rec.path}: {rec.summary()}")
    j.ended_at = time.time()
    j.save(out)
    with contextlib.suppress(Exception):
        from pgproof.report.gameday import write_reports

        write_reports(j.to_dict(), out)
    res.point_latest(out.parent, out)


def _versions(target: Target, driver: Any) -> dict[str, str]:
    v = {p: md.version(p) for p in ("locust", "psycopg", "pgproof")}
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(**target.conninfo(connect_timeout=3)) as conn:
            v["postgres"] = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    return {**v, **driver.versions()}


def _run(target: Target, driver: Any, s: Scenario, j: Journal, out: Path, users: int,
         baseline_s: float, budget_s: float, settle_s: float) -> None:
    j.versions = _versions(target, driver)
    ok, detail = driver.steady()
    j.steady_state_before = {"ok": ok, "detail": detail}
    j.event("steady-before", "steady state " + ("holds" if ok else "BROKEN"), detail)
    if not ok:
        raise RuntimeError(f"refusing to start: the target is not in steady state ({detail})")
    app = target.conninfo(user=target.postgres.app_role or target.postgres.user)
    m: dict[str, Any] = {}
    j.measurements = m
    with contextlib.ExitStack() as stack:
        if not s.synchronous:
            stack.enter_context(driver.synchronous(False))
            j.event("steady-before", "asynchronous replication for this run")
        ensure_ledger_table(app)
        ensure_clock_table(app)
        # The driver may route the load through its own client-path proxy (latency on RDS).
        load_app = (stack.enter_context(driver.app_path(s.fault, app, out / "load"))
                    if hasattr(driver, "app_path") else app)
        limit = load_limit_s(s, target, baseline_s, budget_s, settle_s)
        load = LoadProcess("ledger.py", load_app, out / "load", users=users, run_id=j.run_id,
                           run_time=limit)
        rec = record.active()
        if rec is not None:
            stack.callback(_forget_if_stopped, rec, load)  # runs after load.stop (LIFO)
        stack.callback(load.stop)
        load.start()
        if rec is not None and load.pid:
            rec.add_process("locust", load.pid, group=True)
        load.wait_running()
        load_pid = load.pid
        clock = FailoverClock(load_app, run_id=j.run_id)
        stack.callback(clock.stop)
        clock.start()
        j.event("load", f"Locust started ({users} users, pid {load_pid}); failover clock ticking",
                f"Locust --run-time {limit:.0f} s (hard limit)")
        time.sleep(baseline_s)
        old_leader, tl0 = driver.leader(), driver.timeline()
        j.event("baseline", f"baseline done; leader {old_leader}, timeline {tl0}")
        fault_cm = getattr(driver, s.fault)(undo_stack=stack, **s.fault_args)
        j.fault = {"name": s.fault, "description": s.description, "injected_at": None,
                   "undone_at": None, "undo_ok": None, "undo_error": None}
        fault_at = time.time()  # the instant we act: a control-plane call may take seconds
        with fault_cm:
            j.event("fault", f"fault injected: {s.fault}",
                    f"{s.fault_args or ''} (call took {time.time() - fault_at:.2f} s)".strip())
            j.fault["injected_at"] = fault_at
            j.save(out)  # a SIGKILLed runner leaves a journal that shows the fault
            if s.expect_failover:
                _wait_recovery(clock, fault_at, budget_s, j)
                if s.split_brain_check:
                    m["split_brain"] = _split_brain(driver, old_leader, j)
            else:
                time.sleep(target.chaos.duration_s)
        j.fault["undone_at"] = j.event("undo", "fault undone")
        j.fault["undo_ok"] = True
        m["heal_s"] = _wait_heal(driver, fault_at, j, s.synchronous)
        time.sleep(settle_s)
        clock.stop()
        load.stop()
        j.event("load", "load and clock stopped", f"Locust pid {load_pid} ran throughout")
    _measure(target, s, j, m, load, clock, app, fault_at, old_leader, tl0, driver)
    th = target.thresholds
    j.verdicts = judge(s, m, budget_s, th.latency_error_budget, th.p95_recovery_factor)
    ok_after, detail_after = driver.steady()
    j.steady_state_after = {"ok": ok_after, "detail": detail_after}
    j.event("steady-after", "steady state " + ("holds" if ok_after else "BROKEN"), detail_after)
    verdicts = {v["verdict"] for v in j.verdicts}
    j.verdict = "fail" if "fail" in verdicts else "error" if "error" in verdicts else "pass"
    j.event("verify", f"verdict {j.verdict}", "; ".join(f"{v['id']} {v['verdict']}" for v in j.verdicts))


def _forget_if_stopped(rec: record.FaultRecord, load: LoadProcess) -> None:
    if load.pid and not load.running():
        rec.remove_process(load.pid)


def _wait_recovery(clock: FailoverClock, fault_at: float, budget_s: float, j: Journal) -> None:
    deadline = fault_at + budget_s
    while time.time() < deadline:
        if clock.rto(fault_at).recovered and time.time() > fault_at + 1:
            r = clock.rto(fault_at)
            j.event("recovery", f"writes acknowledged again after {r.rto_s:.2f} s")
            return
        time.sleep(0.1)
    j.event("recovery", f"no write acknowledged within {budget_s:.0f} s")


def _split_brain(driver: Any, old: str | None, j: Journal) -> dict[str, Any]:
    import psycopg

    new = driver.leader()
    result = {"old_primary": old, "new_primary": new, "write_refused": False, "error": ""}
    try:
        with psycopg.connect(**driver.node_conninfo(old), autocommit=True) as conn:
            # A real, committed row: if it lands, the old primary took a write (split brain).
            conn.execute("INSERT INTO pgproof_clock (run_id, seq, t) VALUES (%s, -1, 0)",
                         (j.run_id + "-split-brain",))
            result["error"] = "write accepted"
    except psycopg.Error as exc:
        result["write_refused"] = True
        result["error"] = str(exc).strip().splitlines()[0]
    j.event("recovery", "split-brain probe on old primary", f"{old}: {result['error']}")
    return result


def _wait_heal(driver: Any, fault_at: float, j: Journal, sync: bool) -> float | None:
    """Healed: a leader and a streaming standby (synchronous unless the run is asynchronous)."""
    deadline = time.time() + HEAL_BUDGET_S
    while time.time() < deadline:
        ok, detail = driver.steady(require_sync=sync)
        if ok:
            t = time.time() - fault_at
            j.event("heal", f"cluster healed {t:.1f} s after the fault", detail)
            return t
        time.sleep(0.25)
    j.event("heal", f"cluster not healed within {HEAL_BUDGET_S:.0f} s", driver.steady()[1])
    return None


def _measure(target: Target, s: Scenario, j: Journal, m: dict[str, Any], load: LoadProcess,
             clock: FailoverClock, app: dict[str, Any], fault_at: float, old_leader: str | None,
             tl0: int | None, driver: Any) -> None:
    stats = load.stats()
    j.series = [{"t": x.t, "requests": x.requests, "failures": x.failures, "p95_ms": x.p95_ms,
                 "users": x.users} for x in stats]
    rto = clock.rto(fault_at)
    m["clock_resolution_s"] = clock.resolution()
    m["rto"] = {"fault_at": fault_at, "rto_s": rto.rto_s, "resolution_s": rto.resolution_s,
                "last_ack_before": rto.last_ack_before, "first_ack_after": rto.first_ack_after,
                "failed_writes": rto.failed_writes} if s.expect_failover else None
    verdict = ledger_mod.verify(app, j.run_id, load.ledger())
    m["ledger"] = verdict.counts()
    if verdict.lost:
        m["ledger"]["lost_keys"] = [list(k) for k in verdict.lost_keys[:20]]
    with contextlib.suppress(ValueError):
        m["baseline_tps"] = round(metrics.baseline(stats, fault_at), 1)
        m["load_recovery_s"] = metrics.load_recovery(stats, fault_at, target.thresholds.load_recovery_ratio)
    undone = j.fault.get("undone_at") or fault_at
    m["p95_baseline_ms"] = p95_median(j.series, fault_at - 60, fault_at)
    m["p95_after_ms"] = p95_median(j.series, undone + 1, undone + 60)
    during = [x for x in stats if fault_at <= x.t < undone]
    total = sum(x.requests for x in during)
    m["error_ratio"] = (sum(x.failures for x in during) / total) if total else 0.0
    new_leader, tl1 = driver.leader(), driver.timeline()
    m["failovers"] = 0 if (new_leader == old_leader and tl1 == tl0) else max(1, (tl1 or 0) - (tl0 or 0))
    m["old_primary"], m["new_primary"] = old_leader, new_leader
    m["steady_after_ok"] = driver.steady()[0]
    if s.expect_failover and new_leader and hasattr(driver, "promotion_times"):
        m["promotion"] = driver.promotion_times(new_leader, fault_at)
