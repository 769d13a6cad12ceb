"""The restore drill's scratch instance on the lab: a data directory on a free port.

The lab driver (``driver.py``) offers it to ``gameday/restore.py`` as ``restore_scratch`` and
undoes a recorded one (``undo_recorded("restore_scratch")``) for ``gameday recover``.

Crash-safe like every fault: :func:`plan` records the instance (directory, PID file,
port) in the durable fault record *before* anything exists, so a runner killed at
any instant leaves a record ``pgproof gameday recover`` turns into :func:`delete`.
:func:`delete` is idempotent (a missing process or directory is already deleted) and
only signals the very postmaster recorded (PID and start time, or the data
directory's own ``postmaster.pid`` while it names that directory).
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from pgproof import procs
from pgproof.faults import record
from pgproof.gameday import restore_probe as rp
from pgproof.gameday.journal import Journal
from pgproof.lab import backup
from pgproof.lab.state import LabState
from pgproof.target import Target

KIND = "restore_scratch"


@dataclass
class Scratch:
    dir: Path
    port: int
    pidfile: Path
    log: Path
    fault_id: str | None = None
    pid: int | None = None

    def data(self) -> dict[str, Any]:
        return {"dir": str(self.dir), "port": self.port, "pidfile": str(self.pidfile),
                "log": str(self.log), "pid": self.pid,
                "start": record.start_time(self.pid) if self.pid else None}


def plan(state: LabState, run_id: str, rec: record.FaultRecord | None) -> Scratch:
    """Choose the directory and port and record them (before they exist) in the fault record."""
    name = f"restore-{run_id}"
    s = Scratch(state.run_dir / name, procs.free_ports(1)[0], state.pidfile(name), state.log(name))
    if rec is not None:
        s.fault_id = rec.add_fault(KIND, s.data(), f"scratch restore instance {s.dir} on port {s.port}",
                                   f"stop the postgres running in {s.dir} and remove the directory")
    return s


def _update(s: Scratch, rec: record.FaultRecord | None) -> None:
    """The postmaster's PID and start time join the record as soon as it runs."""
    if rec is None or s.fault_id is None:
        return
    for f in rec.data["faults"]:
        if f["id"] == s.fault_id:
            f["data"] = s.data()
    rec.save()


def restore(state: LabState, s: Scratch, target_time: datetime, timeout: float = 600) -> str:
    """pgbackrest restore --type=time into the scratch directory; '' on success, else the error."""
    s.dir.mkdir(mode=0o700, parents=True, exist_ok=False)
    procs.chown_service(s.dir)
    try:
        r = subprocess.run(backup.restore_argv(state, s.dir, target_time), capture_output=True,
                           text=True, timeout=timeout, env=procs.clean_env(), cwd="/tmp")
    except subprocess.TimeoutExpired:
        return f"pgbackrest restore did not finish within {timeout:.0f} s"
    if r.returncode != 0:
        return f"pgbackrest restore exited {r.returncode}: {(r.stderr or r.stdout).strip()[-600:]}"
    return ""


def start(s: Scratch, rec: record.FaultRecord | None) -> int:
    s.pid = procs.spawn(backup.scratch_postgres_argv(s.dir, s.port), s.log, s.pidfile,
                        procs.clean_env())
    _update(s, rec)
    return s.pid


def running(s: Scratch) -> bool:
    return bool(s.pid) and procs.pid_alive(s.pid)  # type: ignore[arg-type]


def log_tail(s: Scratch, lines: int = 3) -> str:
    try:
        text = s.log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    keep = [t for t in text if "FATAL" in t or "PANIC" in t] or text
    return " | ".join(keep[-lines:])


def _postmaster_of(d: Path) -> int | None:
    """The PID in ``d/postmaster.pid`` if that process is a postgres running on ``d``."""
    pid = procs.read_pid(d / "postmaster.pid")
    if not pid:
        return None
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return pid if str(d).encode() in cmd else None


def delete(data: dict[str, Any]) -> str:
    """Stop the scratch postmaster (fast shutdown, then SIGKILL) and remove its directory."""
    d, pidfile = Path(data["dir"]), Path(data["pidfile"])
    pids = []
    if data.get("pid") and record.same_process(int(data["pid"]), data.get("start")):
        pids.append(int(data["pid"]))
    pm = _postmaster_of(d)
    if pm and pm not in pids:
        pids.append(pm)
    for pid in pids:
        procs.stop_pid(pid, timeout=10, sig=signal.SIGINT)  # SIGINT: fast shutdown, no checkpoint wait
    existed = d.exists()
    for _ in range(3):  # a dying backend may still write a file as rmtree walks
        shutil.rmtree(d, ignore_errors=True)
        if not d.exists():
            break
        time.sleep(0.2)
    pidfile.unlink(missing_ok=True)
    if d.exists():
        raise OSError(f"could not remove {d}")
    what = (f"postgres pid {', '.join(map(str, pids))} stopped; " if pids else "no postgres running; ")
    return what + (f"{d} removed" if existed else f"{d} already gone")


def delete_recorded(s: Scratch, rec: record.FaultRecord | None) -> str:
    """The in-process undo: delete, then drop the record entry (kept if the delete failed)."""
    done = delete(s.data())
    if rec is not None and s.fault_id:
        with contextlib.suppress(Exception):
            rec.remove_fault(s.fault_id)
    return done


def drill(target: Target, state: LabState, j: Journal, t: datetime, rec: record.FaultRecord) -> dict[str, Any]:
    """The restore drill's lab half: restore to ``t`` here, start, probe, always delete."""
    s = plan(state, j.run_id, rec)  # recorded before the directory exists
    j.event("restore", f"scratch instance recorded: {s.dir} port {s.port}")
    out: dict[str, Any] = {"scratch": {"dir": str(s.dir), "port": s.port}}
    try:
        err = restore(state, s, t)
        if err:
            out["restore_error"] = err
            j.event("restore", "restore failed", err)
            return out
        j.event("restore", "pgbackrest restore --type=time done; starting the scratch instance")
        start(s, rec)
        app = target.conninfo(user=target.require_postgres("the restore drill").app_role or target.require_postgres("the restore drill").user,
                              host="127.0.0.1", port=s.port)
        admin = target.conninfo(host="127.0.0.1", port=s.port)
        err = _wait_promoted(s, admin, target.thresholds.restore_budget_s)
        if err:
            out["restore_error"] = err
            j.event("restore", "scratch instance did not come up", err)
            return out
        j.event("restore", "recovered to T and promoted")
        out["probe"] = rp.probe(app, admin, target.conninfo(), j.run_id,
                                target.thresholds.tls_min_version)
        out["verified_at"] = time.monotonic()
        j.event("probe", "restored instance probed", f"{len(out['probe']['restored'])} markers")
    finally:
        done = delete_recorded(s, rec)
        out["scratch"]["deleted"] = done
        j.event("cleanup", "scratch instance deleted", done)
    return out


def _wait_promoted(s: Scratch, admin: dict[str, Any], budget_s: float) -> str:
    deadline = time.monotonic() + budget_s
    while time.monotonic() < deadline:
        if not running(s):
            return f"the restored postgres exited: {log_tail(s)}"
        with contextlib.suppress(psycopg.Error), \
                psycopg.connect(**{**admin, "connect_timeout": 2}, autocommit=True) as conn:
            if conn.execute("SELECT NOT pg_is_in_recovery()").fetchone() == (True,):
                return ""
        time.sleep(0.25)
    return f"not recovered and promoted within {budget_s:.0f} s: {log_tail(s)}"
