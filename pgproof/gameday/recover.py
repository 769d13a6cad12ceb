"""``pgproof gameday recover``: run the durably recorded undos of a game day whose runner died.

Idempotent: every undo tolerates "already undone" (a toxic removed by name
answers 404, a running node is left alone), and an entry leaves the record only
when its undo succeeded, so recover can simply be run again. Orphaned load
processes are stopped by recorded PID *and* start time: a recycled PID is
never signalled. What was done is appended to the interrupted run's journal.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pgproof import procs
from pgproof.faults import aws_alarm, client_proxy, toxiproxy
from pgproof.faults.drivers import make_driver
from pgproof.faults.protocol import FaultDriver
from pgproof.faults.record import FaultRecord, same_process, start_time
from pgproof.gameday import restore_aws
from pgproof.gameday.safety import ChaosRefused
from pgproof.load.runner import group_pids
from pgproof.target import Target

STEADY_BUDGET_S = 120.0


def stop_process(p: dict[str, Any]) -> str:
    """Stop one recorded process (its group when recorded so), only if it is the very process."""
    pid, started, role = int(p["pid"]), p.get("start"), p.get("role", "process")
    if same_process(pid, started):
        if p.get("group"):
            procs.stop_pid(pid, timeout=10)
        else:
            _stop_one(pid)
        return f"{role} pid {pid} stopped" + (" (whole process group)" if p.get("group") else "")
    if procs.pid_alive(pid):  # recycled: this PID (and any group it leads) is someone else's
        return f"{role} pid {pid}: now a different process (start time differs), not touched"
    left = []
    if p.get("group") and started is not None:  # leader gone: stragglers forked after it started
        left = [q for q in group_pids(pid) if (start_time(q) or -1) >= started]
        for q in left:
            _stop_one(q)
    return f"{role} pid {pid} already gone" + (f"; stopped {len(left)} straggler(s)" if left else "")


def _stop_one(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and procs.pid_alive(pid):
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        if procs.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def undo_one(f: dict[str, Any], driver: Callable[[], FaultDriver]) -> str:
    """One recorded undo. Toxiproxy and client-path proxy kinds are driver-independent (a
    client proxy must be stopped even when the driver's control plane is unreachable);
    others go to the driver."""
    kind, data = f["kind"], f.get("data") or {}
    done = client_proxy.undo_recorded(kind, data)
    if done is not None:
        return done
    if kind == "toxic":
        toxiproxy.remove_toxic(data["api_url"], data["proxy"], data["name"])
        return f"toxic {data['name']} removed from proxy {data['proxy']}"
    if kind == "proxies_disabled":
        toxiproxy.enable(data["api_url"], data["proxies"])
        return f"proxies {', '.join(data['proxies'])} enabled"
    if kind == "rds_restore_scratch":
        return restore_aws.delete_recorded(data)
    if kind in aws_alarm.KINDS:  # the alarm drill reaches AWS itself, whatever the chaos driver
        return aws_alarm.undo_recorded(kind, data)
    return driver().undo_recorded(kind, data)  # raises ValueError for a kind it does not know


def recover(target: Target, echo: Callable[[str], None] = print) -> int:
    """Exit 0: nothing left and steady state holds; 2: something is still broken (said why)."""
    rec = FaultRecord.load(target)
    if rec is None:
        echo(f"target {target.name!r}: no fault record, nothing to recover")
        return 0
    if rec.owner_alive():
        raise ChaosRefused(f"{rec.notice()}; it undoes its own faults when it ends "
                           "(Ctrl-C or SIGTERM stop it early)")
    events: list[dict[str, Any]] = []

    def note(event: str, detail: str = "") -> None:
        events.append({"t": time.time(), "phase": "recover", "event": event, "detail": detail})
        echo(f"recover: {event}" + (f": {detail}" if detail else ""))

    note("recovering orphaned game day", f"{rec.data.get('run_id')} on target {target.name}")
    for p in rec.processes:  # load first: it must not write through a healing cluster forever
        note(stop_process(p))
        rec.remove_process(int(p["pid"]))
    cached: list[FaultDriver] = []

    def driver() -> FaultDriver:
        if not cached:
            cached.append(make_driver(target))
        return cached[0]

    failed = []
    for f in reversed(rec.faults):  # last applied, first undone
        try:
            note("undone", undo_one(f, driver))
            rec.remove_fault(f["id"])
        except Exception as exc:  # noqa: BLE001 - every failure is reported with its manual fix
            failed.append(f)
            note("UNDO FAILED", f"{f['what']}: {exc}; fix by hand: {f['fix']}")
    steady, detail = (False, "not checked: an undo failed") if failed else _wait_steady(driver)
    note("steady state " + ("holds" if steady else "BROKEN"), detail)
    ok = not failed and steady
    _append_journal(rec, events, ok)
    if not failed:
        rec.delete()
    return 0 if ok else 2


def _wait_steady(driver: Callable[[], FaultDriver]) -> tuple[bool, str]:
    try:
        d = driver()
    except Exception as exc:  # noqa: BLE001
        return False, f"no driver: {exc}"
    deadline = time.monotonic() + STEADY_BUDGET_S
    ok, detail = False, ""
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            ok, detail = d.steady()
            if ok:
                return ok, detail
        time.sleep(1)
    return ok, detail or "no answer"


def _append_journal(rec: FaultRecord, events: list[dict[str, Any]], ok: bool) -> None:
    """The interrupted run's journal (a stub written at its start) learns what recover did."""
    run_dir = rec.data.get("run_dir")
    if not run_dir:
        return
    path = Path(run_dir) / "journal.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {"run_id": rec.data.get("run_id"), "target": rec.data.get("target"),
               "scenario": rec.data.get("scenario"), "events": [], "verdict": "error"}
    doc.setdefault("events", []).extend(events)
    doc["verdict"] = "error"  # an interrupted run measured nothing to the end
    doc["interrupted"] = True
    doc["recovery"] = {"at": time.time(), "ok": ok, "events": events}
    if not ok:
        doc["manual_fix"] = "; ".join(e["detail"] for e in events if e["event"] == "UNDO FAILED") or None
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=2, default=str))
    os.replace(tmp, path)
