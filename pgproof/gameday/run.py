"""Run one game day: steady state -> load + clock -> fault -> recovery -> undo -> watch -> verify.

The load keeps running after the undo until every open verdict is decided
(``pgproof.gameday.watch``), and an interrupted run still measures and reports
whatever ran before the interruption.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgproof import tunnel
from pgproof.errors import UserError
from pgproof.faults import record, snapshot
from pgproof.faults.base import FaultUndoError
from pgproof.faults.drivers import adapt, cannot, fault_text, make_driver
from pgproof.faults.protocol import FaultDriver, inject
from pgproof.gameday import metrics
from pgproof.gameday.clock import FailoverClock
from pgproof.gameday.host import HostLoad
from pgproof.gameday.journal import Journal
from pgproof.gameday.measure import Live, hold, measure, watch_recovery
from pgproof.gameday.measurements import Measurements, SplitBrain
from pgproof.gameday.safety import ChaosRefused, check_policy, signal_name, sigterm_unwinds
from pgproof.gameday.scenarios import SCENARIOS, Scenario, judge
from pgproof.load.runner import LoadProcess, load_env
from pgproof.load.schema import ensure_clock_table, ensure_ledger_table
from pgproof.report import results as res
from pgproof.target import Target

BASELINE_SECONDS = metrics.BASELINE_SECONDS
BASELINE_MAX_MAD = 0.15  # the last seconds spread more than this: keep measuring before the fault
BASELINE_EXTRA_S = 15.0
LOAD_MARGIN_S = 120.0  # start-up, control-plane calls, undo and a loaded machine


def load_limit_s(s: Scenario, target: Target, baseline_s: float, budget_s: float) -> float:
    """Locust's --run-time: every phase's budget plus a margin, so an orphan cannot run forever."""
    hold_s = budget_s if s.expect_failover else target.chaos.duration_s
    th = target.thresholds
    return (baseline_s + BASELINE_EXTRA_S + hold_s + th.recovery_budget_s + th.recovery_sustain_s
            + LOAD_MARGIN_S)


def check_workers(workers: int, users: int) -> None:
    """Every worker needs a user: an idle worker would add a ledger with nothing in it."""
    if workers > users:
        raise UserError(f"--workers {workers} is more than the {users} Locust users: every worker "
                        "needs at least one user (raise --users or lower --workers)")


def load_text(users: int, workers: int) -> list[str]:
    """Plan step 2: one Locust process, or a master and its workers (and how to add remote ones)."""
    if not workers:
        return [f"2. start Locust ({users} ledger writers) and the failover clock (a write every 50 ms)"]
    return [f"2. start a Locust master (127.0.0.1, a free port chosen at start) and {workers} worker "
            f"processes ({users} ledger writers between them), and the failover clock (a write every 50 ms)",
            f"   the master waits for these {workers} (no rebalancing: a worker joining later stays idle); "
            "load from other machines is Locust's own distributed mode by hand: "
            "locust -f locustfiles/ledger.py --worker --master-host <master> --master-port <port> "
            "(docs/gamedays.md: workers on other machines)"]


def plan(s: Scenario, target: Target, users: int, baseline_s: float, budget_s: float,
         driver: FaultDriver | None = None, workers: int = 0) -> list[str]:
    steady = (driver.STEADY_TEXT if driver is not None else None) or "leader + streaming sync standby"
    return [
        f"target {target.name} (driver {target.chaos.driver}); scenario {s.name}: {s.description}",
        *(["0. take a snapshot (RDS snapshot / pgBackRest backup); refuse to start if it fails"]
          if target.chaos.snapshot_before else []),
        f"1. check steady state ({steady}); refuse if unhealthy",
        *(["   switch the cluster to asynchronous replication (restored afterwards)"]
          if not s.synchronous else []),
        *load_text(users, workers),
        f"3. measure >= {baseline_s:.0f} s of baseline, until its last {BASELINE_SECONDS} full seconds "
        f"spread <= {BASELINE_MAX_MAD:.0%} (median absolute deviation; at most {BASELINE_EXTRA_S:.0f} s more)",
        f"4. inject fault: {fault_text(driver, s, duration_s=target.chaos.duration_s)}",
        (f"5. wait for writes to succeed again (budget {budget_s:.0f} s)" if s.expect_failover
         else f"5. hold the fault {target.chaos.duration_s:.0f} s"),
        "6. undo the fault (always: also on failure, Ctrl-C, SIGTERM)",
        f"7. keep the load on until load recovery, p95 (CH-LAT) and heal each held "
        f"{target.thresholds.recovery_sustain_s} s (budget {target.thresholds.recovery_budget_s:.0f} s each)",
        f"8. verify the write ledger; verdicts for {', '.join(s.controls)}",
    ]


def run(target: Target, scenario: str, *, reports: Path = Path("reports"), users: int | None = None,
        baseline_s: float | None = None, budget_s: float | None = None,
        i_mean_production: bool = False, dry_run: bool = False, workers: int = 0,
        echo: Callable[[str], None] = print) -> tuple[Journal, Path | None]:
    s = SCENARIOS[scenario]
    users = users or target.chaos.load_users
    check_workers(workers, users)
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
        for line in plan(s, target, users, baseline_s, budget_s, driver, workers):
            echo(line)
        return Journal(uuid.uuid4().hex[:12], target.name, s.name, s.description,
                       target.chaos.driver, {}, verdict="dry-run"), None
    run_id = f"{s.name}-{uuid.uuid4().hex[:8]}"
    try:
        rec = record.FaultRecord.create(target, run_id, s.name, None)
    except record.RecordExists:
        raise ChaosRefused(f"another game day just claimed target {target.name!r}") from None
    snap = None
    if target.chaos.snapshot_before:  # before anything is injected; no snapshot, no game day
        try:
            snap = snapshot.take(target, driver, run_id)
        except BaseException:
            rec.delete()  # nothing touched, nothing half-written
            raise
    try:
        out = res.run_dir(reports.resolve(), target.name, s.name)
    except BaseException:
        rec.delete()  # nothing touched yet: no record, nothing half-written
        raise
    rec.data["run_dir"] = str(out)
    rec.save()
    j = Journal(run_id, target.name, s.name, s.description,
                target.chaos.driver, {"users": users, "workers": workers,
                                      "budget_s": budget_s, "baseline_s": baseline_s,
                                      "recovery_budget_s": target.thresholds.recovery_budget_s,
                                      "recovery_sustain_s": target.thresholds.recovery_sustain_s,
                                      **s.fault_args}, echo=echo)
    if snap:
        j.snapshot = snap
        j.event("snapshot", f"snapshot before the fault: {snap['id']}", f"{snap['kind']}, {snap['took_s']} s")
    j.save_stub(out, rec.delete)  # the stub an interrupted (SIGKILLed) run leaves behind for `gameday recover`
    live = Live(driver=driver)  # what has started: measured even after an interrupt
    pg = target.require_postgres("a game day")
    app = target.conninfo(user=pg.app_role or pg.user)
    try:
        with sigterm_unwinds(), record.activate(rec):
            _run(target, driver, s, j, out, users, baseline_s, budget_s, live, workers)
    except FaultUndoError as exc:
        j.manual_fix = str(exc)
        j.event("undo", "UNDO FAILED", str(exc))
        j.verdict = "error"
        _measure_after_abort(target, s, j, live, app)
    except KeyboardInterrupt as exc:
        _interrupted(j, exc)
        j.event("abort", "interrupted; every registered undo has run", type(exc).__name__)
        j.verdict = "error"
        _measure_after_abort(target, s, j, live, app)
        _finish(j, out, rec)
        raise
    except Exception as exc:  # noqa: BLE001 - the journal must say what broke
        j.event("abort", "game day failed", f"{type(exc).__name__}: {exc}")
        j.verdict = "error"
        _measure_after_abort(target, s, j, live, app)
    _finish(j, out, rec)
    return j, out


def _interrupted(j: Journal, exc: BaseException) -> None:
    """Record the first interruption (the instant it arrived, before any undo ran)."""
    if j.interrupted is None:
        last = j.events[-1]["phase"] if j.events else "start"
        j.interrupted = {"at": time.time(), "by": signal_name(exc),
                         "phase": last}


def _measure_after_abort(target: Target, s: Scenario, j: Journal, live: Live,
                         app: dict[str, Any]) -> None:
    """Whatever ran is still evidence: series, RTO, ledger up to the abort (never raises)."""
    if "load" not in live:
        return
    with contextlib.suppress(BaseException):
        measure(target, s, j, j.measurements, live, app)


def _finish(j: Journal, out: Path, rec: record.FaultRecord | None = None) -> None:
    """Close the run's fault record (kept if anything is still in place), save, report, index."""
    if rec is not None and not rec.close():  # something is still in place: recover must find it
        j.event("undo", "fault record kept", f"{rec.path}: {rec.summary()}")
    j.ended_at = time.time()
    j.save(out)
    with contextlib.suppress(Exception):
        from pgproof.report.gameday import write_reports

        write_reports(j.to_dict(), out)
    res.point_latest(out.parent, out)
    from pgproof.report import index  # history line, reports/latest-gameday, index.html

    index.after_run(out, "gameday", j.to_dict())


def _versions(target: Target, driver: FaultDriver) -> dict[str, str]:
    v = {p: md.version(p) for p in ("locust", "psycopg", "pgproof")}
    with contextlib.suppress(Exception):
        import psycopg

        with psycopg.connect(**target.conninfo(connect_timeout=3)) as conn:
            v["postgres"] = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    return {**v, **driver.versions()}


def _run(target: Target, driver: FaultDriver, s: Scenario, j: Journal, out: Path, users: int,
         baseline_s: float, budget_s: float, live: Live, workers: int = 0) -> None:
    j.versions = _versions(target, driver)
    ok, detail = driver.steady()
    j.steady_state_before = {"ok": ok, "detail": detail}
    j.event("steady-before", "steady state " + ("holds" if ok else "BROKEN"), detail)
    if not ok:
        raise RuntimeError(f"refusing to start: the target is not in steady state ({detail})")
    pg = target.require_postgres("a game day")
    app = target.conninfo(user=pg.app_role or pg.user)
    m = Measurements(load_workers=workers) if workers else Measurements()
    j.measurements = m
    with contextlib.ExitStack() as stack:
        if not s.synchronous:
            stack.enter_context(driver.synchronous(False))
            j.event("steady-before", "asynchronous replication for this run")
        ensure_ledger_table(app)
        ensure_clock_table(app)
        # The driver may route the load through its own client-path proxy (latency on RDS).
        load_app = stack.enter_context(driver.app_path(s.fault, app, out / "load"))
        limit = load_limit_s(s, target, baseline_s, budget_s)
        load = LoadProcess("ledger.py", load_app, out / "load", users=users, run_id=j.run_id,
                           run_time=limit, workers=workers, env=load_env(target.chaos.load_rate))
        rec = record.active()
        if rec is not None:
            stack.callback(_forget_if_stopped, rec, load)  # runs after load.stop (LIFO)
        stack.callback(load.stop)
        live["load"] = load
        live["host"] = host = HostLoad().start()
        stack.callback(host.stop)
        # Each process is in the durable record before the next starts: recover finds them all.
        load.start(on_spawn=(lambda role, pid: rec.add_process(role, pid, group=True))
                   if rec is not None else None)
        load.wait_running()
        load_pid = load.pid
        clock = FailoverClock(load_app, run_id=j.run_id)
        stack.callback(clock.stop)
        live["clock"] = clock
        clock.start()
        paced = f", {target.chaos.load_rate:g} tasks/s each" if target.chaos.load_rate else ""
        j.event("load", f"Locust started ({users} users{paced}, {_load_pids(load)}); "
                "failover clock ticking",
                f"Locust --run-time {limit:.0f} s (hard limit)" + _path_note(target))
        base = _baseline(load, baseline_s, target.thresholds.load_recovery_ratio)
        old_leader, tl0 = driver.leader(), driver.timeline()
        live["old_leader"], live["timeline"] = old_leader, tl0
        j.event("baseline", f"baseline done; leader {old_leader}, timeline {tl0}", base)
        fault_cm = inject(driver, s.fault, stack, s.fault_args)
        j.fault = {"name": s.fault, "description": s.description, "injected_at": None,
                   "undone_at": None, "undo_ok": None, "undo_error": None}
        fault_at = time.time()  # the instant we act: a control-plane call may take seconds
        live["fault_at"] = fault_at
        try:
            with fault_cm:
                j.event("fault", f"fault injected: {s.fault}",
                        f"{s.fault_args or ''} (call took {time.time() - fault_at:.2f} s)".strip())
                j.fault["injected_at"] = fault_at
                j.save(out)  # a SIGKILLed runner leaves a journal that shows the fault
                try:
                    if s.expect_failover:
                        _wait_recovery(clock, fault_at, budget_s, j)
                        if s.split_brain_check:
                            m["split_brain"] = _split_brain(driver, old_leader, j)
                    else:
                        m["leader_during"] = hold(driver, target.chaos.duration_s, old_leader, j)
                except KeyboardInterrupt as exc:
                    _interrupted(j, exc)
                    j.event("abort", f"interrupted ({(j.interrupted or {}).get('by')}) during the fault; undoing")
                    raise
        except FaultUndoError as exc:
            j.fault["undo_ok"], j.fault["undo_error"] = False, str(exc)
            raise
        finally:  # the undo ran (or failed) on the way out of the with, whatever ended it
            j.fault["undone_at"] = j.event("undo", "fault undone" if j.fault["undo_ok"] is not False
                                           else "undo FAILED")
            if j.fault["undo_ok"] is None:
                j.fault["undo_ok"] = True
        watch_recovery(target, s, j, m, load, clock, driver, fault_at, host)
        clock.stop()
        load.stop()
        j.event("load", "load and clock stopped",
                f"Locust {'master ' if workers else ''}pid {load_pid} ran throughout")
    measure(target, s, j, m, live, app)
    th = target.thresholds
    j.verdicts = judge(s, m, budget_s, th.latency_error_budget)
    ok_after, detail_after = driver.steady(require_sync=s.synchronous)
    j.steady_state_after = {"ok": ok_after, "detail": detail_after}
    j.event("steady-after", "steady state " + ("holds" if ok_after else "BROKEN"), detail_after)
    verdicts = {v["verdict"] for v in j.verdicts}
    j.verdict = "fail" if "fail" in verdicts else "error" if "error" in verdicts else "pass"
    j.event("verify", f"verdict {j.verdict}", "; ".join(f"{v['id']} {v['verdict']}" for v in j.verdicts))


def _path_note(target: Target) -> str:
    """Where the load and the clock connect from: the bastion's forwards when ``postgres.via``."""
    t = tunnel.ensure(target)  # the pre-flight opened it: this reuses the same tunnel
    return f"; load and clock through bastion {t.via.name}" if t is not None else ""


def _load_pids(load: LoadProcess) -> str:
    if not load.workers:
        return f"pid {load.pid}"
    workers = ", ".join(str(w.pid) for w in load.worker_procs)
    return (f"master pid {load.pid} on 127.0.0.1:{load.master_port}, "
            f"{load.workers} workers pids {workers}")


def _forget_if_stopped(rec: record.FaultRecord, load: LoadProcess) -> None:
    for p in load.members():  # stop() reaped them: a reaped pid may be reused, so drop it
        if p.poll() is not None:
            rec.remove_process(p.pid)


def _wait_recovery(clock: FailoverClock, fault_at: float, budget_s: float, j: Journal) -> None:
    deadline = fault_at + budget_s
    while time.time() < deadline:
        if clock.rto(fault_at).recovered and time.time() > fault_at + 1:
            r = clock.rto(fault_at)
            gap = (f"; outage {r.outage_s:.2f} s from the last acknowledged write"
                   if r.outage_s is not None else "")
            j.event("recovery", f"writes acknowledged again after {r.rto_s:.2f} s{gap}")
            return
        time.sleep(0.1)
    j.event("recovery", f"no write acknowledged within {budget_s:.0f} s")


def _split_brain(driver: FaultDriver, old: str | None, j: Journal) -> SplitBrain:
    import psycopg

    new = driver.leader()
    result = SplitBrain(old_primary=old, new_primary=new, write_refused=False, error="")
    try:
        with psycopg.connect(**driver.node_conninfo(str(old)), autocommit=True) as conn:
            # A real, committed row: if it lands, the old primary took a write (split brain).
            conn.execute("INSERT INTO pgproof_clock (run_id, seq, t) VALUES (%s, -1, 0)",
                         (j.run_id + "-split-brain",))
            result["error"] = "write accepted"
    except psycopg.Error as exc:
        result["write_refused"] = True
        result["error"] = str(exc).strip().splitlines()[0]
    j.event("recovery", "split-brain probe on old primary", f"{old}: {result['error']}")
    return result


def _baseline(load: LoadProcess, baseline_s: float, ratio: float) -> str:
    """Wait out the baseline: at least ``baseline_s``, then until its last seconds have settled.

    Neighbours on a shared machine shift the throughput level; a fault injected
    mid-shift would compare the recovery with a level that no longer exists.
    """
    time.sleep(baseline_s)
    deadline = time.time() + BASELINE_EXTRA_S
    while True:
        now = time.time()
        stats = load.stats()
        if len(metrics.baseline_seconds(stats, now)) >= BASELINE_SECONDS:
            b = metrics.describe_baseline(stats, now, ratio, last=BASELINE_SECONDS)
            if b.mad <= BASELINE_MAX_MAD or now > deadline:
                return (f"{b.tps:.0f} ok req/s, median of the last {b.seconds} s (min {b.min:.0f}, "
                        f"max {b.max:.0f}, cv {b.cv:.0%}, mad {b.mad:.0%})"
                        + ("" if b.mad <= BASELINE_MAX_MAD else "; NOT settled within the extra time"))
        elif now > deadline:
            return "fewer full seconds of load than wanted: the baseline is short"
        time.sleep(0.5)
