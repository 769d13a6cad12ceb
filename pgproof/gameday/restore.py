"""``pgproof gameday restore-pitr``: restore to a point in time T into a scratch instance and prove it.

Under ledger load, markers are written, T is taken in a gap between them, more
markers follow, and the WAL holding them is archived. Then the backup is restored
to T into a scratch instance (lab/self-managed: a data directory on a free port,
never the cluster's; AWS: ``restore_db_instance_to_point_in_time``), which must
bring back every acknowledged marker at or before T and none after, accept a
login over TLS and be as private as its source. The scratch instance is recorded
in the durable fault record before it exists and is always deleted.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from pgproof.exact import exact
from pgproof.faults import record
from pgproof.faults.drivers import cannot, make_driver
from pgproof.gameday import restore_aws
from pgproof.gameday import restore_probe as rp
from pgproof.gameday.journal import Journal
from pgproof.gameday.measurements import Measurements
from pgproof.gameday.run import _finish as finish
from pgproof.gameday.safety import ChaosRefused, check_policy, signal_name, sigterm_unwinds
from pgproof.load.runner import LoadProcess, load_env
from pgproof.load.schema import ensure_ledger_table
from pgproof.report import results as res
from pgproof.target import Postgres, Target

SCENARIO = "restore-pitr"
CONTROLS = ("BAK-6",)
DESCRIPTION = ("point-in-time restore to T under ledger load into a scratch instance: every "
               "acknowledged row up to T back, none after, login, TLS and privacy as the source")
MARK_BEFORE_S = 3.0  # markers before T, and after it
GAP_S = 0.3  # no marker in flight within this much of T
ARCHIVE_WAIT_S = 60.0


def run(target: Target, *, reports: Path = Path("reports"), users: int | None = None,
        i_mean_production: bool = False, archive_wait_s: float = ARCHIVE_WAIT_S,
        dry_run: bool = False, echo: Callable[[str], None] = print) -> tuple[Journal, Path | None]:
    check_policy(target, i_mean_production)
    _pg(target)
    left = record.FaultRecord.load(target)
    if left is not None:
        raise ChaosRefused(f"{left.notice()}; a new game day waits until it is recovered")
    driver = None if target.chaos.driver == "aws" else _scratch_driver(target)
    why = driver.restore_ready() if driver is not None else None
    if why:
        raise ChaosRefused(why)
    users = users or target.chaos.load_users
    if dry_run:
        for line in plan(target, users, archive_wait_s):
            echo(line)
        return Journal(uuid.uuid4().hex[:12], target.name, SCENARIO, DESCRIPTION,
                       target.chaos.driver, {}, verdict="dry-run"), None
    run_id = f"{SCENARIO}-{uuid.uuid4().hex[:8]}"
    try:
        rec = record.FaultRecord.create(target, run_id, SCENARIO, None)
    except record.RecordExists:
        raise ChaosRefused(f"another game day just claimed target {target.name!r}") from None
    try:
        out = res.run_dir(reports.resolve(), target.name, SCENARIO)
    except BaseException:
        rec.delete()
        raise
    rec.data["run_dir"] = str(out)
    rec.save()
    th = target.thresholds
    j = Journal(run_id, target.name, SCENARIO, DESCRIPTION, target.chaos.driver,
                {"users": users, "rpo_budget_s": th.rpo_minutes * 60,
                 "restore_budget_s": th.restore_budget_s, "archive_wait_s": archive_wait_s}, echo=echo)
    j.save_stub(out, rec.delete)  # the stub a SIGKILLed run leaves for `gameday recover`
    try:
        with sigterm_unwinds(), record.activate(rec):
            _drill(target, driver, j, out, users, archive_wait_s, rec)
    except KeyboardInterrupt as exc:
        j.interrupted = {"at": time.time(), "by": signal_name(exc), "phase": j.events[-1]["phase"]
                         if j.events else "start"}
        j.event("abort", "interrupted; the scratch instance was deleted", type(exc).__name__)
        j.verdict = "error"
        _finish(j, out, rec)
        raise
    except Exception as exc:  # noqa: BLE001 - the journal must say what broke
        j.event("abort", "restore drill failed", f"{type(exc).__name__}: {exc}")
        j.verdict = "error"
    _finish(j, out, rec)
    return j, out


def plan(target: Target, users: int, archive_wait_s: float) -> list[str]:
    where = ("an RDS instance restored with restore_db_instance_to_point_in_time (source's subnet "
             "group, security groups, KMS key)" if target.chaos.driver == "aws"
             else "a scratch data directory on a free loopback port (pgbackrest restore --type=time)")
    th = target.thresholds
    return [f"target {target.name} (driver {target.chaos.driver}); scenario {SCENARIO}: {DESCRIPTION}",
            f"1. start Locust ({users} ledger writers)",
            f"2. write markers {MARK_BEFORE_S:.0f} s, pick T in a {GAP_S * 2:.1f} s gap, write markers "
            f"{MARK_BEFORE_S:.0f} s more",
            f"3. switch WAL and wait (<= {archive_wait_s:.0f} s) until it is archived; stop the load",
            f"4. record the scratch instance in the fault record, then restore to T into {where}",
            "5. prove: markers <= T all back, none after; login; TLS; listens on loopback, same hba rules",
            f"6. delete the scratch instance (always); BAK-6 with RPO (budget {th.rpo_minutes:g} min) "
            f"and restore time (budget {th.restore_budget_s:.0f} s)"]


def _scratch_driver(target: Target) -> Any:
    """The driver that restores into a scratch instance (the lab's); refused in one sentence
    when the target's driver cannot."""
    driver = make_driver(target)
    if cannot(driver, "restore_scratch") is not None:
        raise ChaosRefused(f"restore-pitr on target {target.name!r} (driver {target.chaos.driver}) needs "
                           "a lab target or chaos.driver = 'aws'; restoring a self-managed host's "
                           "repository over ssh is not built yet")
    return driver


def _drill(target: Target, driver: Any, j: Journal, out: Path, users: int, archive_wait_s: float,
           rec: record.FaultRecord) -> None:
    app = target.conninfo(user=_pg(target).app_role or _pg(target).user)
    admin = target.conninfo()
    m = Measurements()
    j.measurements = m
    m["database_bytes"] = _database_bytes(admin)
    ensure_ledger_table(app)
    rp.ensure_markers(app)
    with contextlib.ExitStack() as stack:
        load = LoadProcess("ledger.py", app, out / "load", users=users, run_id=j.run_id, run_time=600,
                           env=load_env(target.chaos.load_rate))
        stack.callback(_forget, rec, load)
        stack.callback(load.stop)
        load.start()
        if load.pid:
            rec.add_process("locust", load.pid, group=True)
        load.wait_running()
        j.event("load", f"Locust started ({users} ledger writers, pid {load.pid})")
        marks = rp.Markers(app, j.run_id)
        stack.callback(marks.close)
        marks.write_for(MARK_BEFORE_S)
        time.sleep(GAP_S)
        t = marks.server_now()
        t_chosen = time.monotonic()
        time.sleep(GAP_S)
        marks.write_for(MARK_BEFORE_S)
        m["target_time"] = t.isoformat()
        j.event("markers", f"T = {t.isoformat()}", f"{len(marks.acked)} markers acknowledged, "
                f"{marks.failed} failed")
        if driver is not None:  # switching WAL needs a superuser: the driver's own
            ok, detail = driver.archive_after(archive_wait_s)
        else:
            ok, detail = restore_aws.wait_restorable(target, t, archive_wait_s)
        m["archived"] = ok
        j.event("archive", detail)
        load.stop()
        j.event("load", "load stopped")
    j.save(out)
    t0 = time.monotonic()
    if driver is None:
        res_ = restore_aws.drill(target, j, t, rec)
    else:
        res_ = driver.restore_scratch(j, t, rec)
    verified = res_.pop("verified_at", None) or time.monotonic()
    m["restore_s"] = round(verified - t0, 2)  # restore requested -> restored instance verified
    m["drill_s"] = round(verified - t_chosen, 2)  # T chosen -> verified (bench/restore)
    m.update(cast(Measurements, res_))  # restore_error or probe (restore_aws.drill, _lab_restore)
    if "probe" in m:
        m.update(rp.compare(marks.acked, m["probe"].pop("restored"), t))
    th = target.thresholds
    j.verdicts = [rp.judge(m, exact(th.rpo_minutes) * 60, th.restore_budget_s)]
    j.verdict = j.verdicts[0]["verdict"]
    j.event("verify", f"verdict {j.verdict}", j.verdicts[0]["evidence"])


def _database_bytes(admin: dict[str, Any]) -> int | None:
    import psycopg

    with contextlib.suppress(psycopg.Error), psycopg.connect(**admin, autocommit=True) as conn:
        row = conn.execute("SELECT sum(pg_database_size(oid))::bigint FROM pg_database").fetchone()
        return int(row[0]) if row and row[0] is not None else None
    return None


def _forget(rec: record.FaultRecord, load: LoadProcess) -> None:
    if load.pid and not load.running():
        rec.remove_process(load.pid)


def _finish(j: Journal, out: Path, rec: record.FaultRecord) -> None:
    finish(j, out, rec)


def _pg(target: Target) -> Postgres:
    return target.require_postgres("the restore drill")  # markers and probes log in to PostgreSQL
