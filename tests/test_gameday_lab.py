"""Game days on the real lab: verdicts, independent cross-checks, and undo under signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labcli import wait_steady

from pgproof import procs
from pgproof.faults import toxiproxy
from pgproof.gameday import ledger as ledger_mod
from pgproof.gameday import run as gameday
from pgproof.gameday.journal import Journal
from pgproof.gameday.safety import ChaosRefused
from pgproof.lab.driver import LabDriver
from pgproof.lab.state import LabState
from pgproof.load.runner import LedgerEntry, read_jsonl
from pgproof.target import Target

pytestmark = pytest.mark.stage("gameday")

FAST = {"baseline_s": 3, "users": 8}


def _run(target: Target, scenario: str, tmp_path: Path) -> tuple[Journal, Path]:
    journal, out = gameday.run(target, scenario, reports=tmp_path, echo=print, **FAST)  # type: ignore[arg-type]
    assert out is not None
    return journal, out


def _verdicts(j: Journal) -> dict[str, str]:
    """Verdicts; a relative one (HA-4, CH-LAT) the host's neighbours made unjudgeable reads "busy"."""
    return {v["id"]: "busy" if v["verdict"] == "error" and "host got busier" in v["evidence"]
            else v["verdict"] for v in j.verdicts}


def _assert_waited(j: Journal, name: str) -> None:
    """The condition was decided on a held window, and load ran until then (never on a fixed sleep)."""
    c = j.measurements["conditions"][name]
    assert c["decided_at"] is not None, c
    if c["ok"]:
        assert c["held_s"] >= c["window_s"] and c["met_at"] <= c["deadline"], c
        last = max(x["t"] for x in j.series)
        assert last + 1 >= c["met_at"] + c["window_s"] - 1, (last, c)  # load outlived the window


def _entries(out: Path) -> list[LedgerEntry]:
    return [LedgerEntry(**r) for r in read_jsonl(list((out / "load").glob("ledger.*.jsonl")))]


def _assert_ledger_cross_check(j: Journal, out: Path, target: Target) -> None:
    app = target.conninfo(user=target.postgres.app_role)
    independent = ledger_mod.full_diff(app, j.run_id, _entries(out))
    assert independent.counts() == {k: v for k, v in j.measurements["ledger"].items()
                                    if k != "lost_keys"}


def test_kill_primary_meets_ha_controls_and_agrees_with_logs(lab_target: Target, lab: LabState,
                                                            tmp_path: Path) -> None:
    j, out = _run(lab_target, "kill-primary", tmp_path)
    assert _verdicts(j) in ({"HA-2": "pass", "HA-3": "pass", "HA-4": ha4, "HA-6": "pass"}
                            for ha4 in ("pass", "busy")), j.verdicts
    m = j.measurements
    for name in ("load", "heal"):
        _assert_waited(j, name)
    b = m["baseline"]
    assert b["seconds"] >= 8 and b["min"] <= b["tps"] <= b["max"], b
    ha4 = next(v["evidence"] for v in j.verdicts if v["id"] == "HA-4")
    assert f"cv {b['cv']:.0%}" in ha4 and ("held 5 s" in ha4 or "busier" in ha4), ha4
    # The clock ticks every 50 ms; its resolution adds the p95 write latency, which a loaded 2-core
    # host pushes past 50 ms (0.107 s measured at load 8): <= 0.1 s was a flake, not a finding.
    # The RTO's own uncertainty adds the reconnect: 0.35 s measured at load 13 on 2 cores, 0.525 s
    # at load 20. It only has to be small next to the 60 s budget it is judged against.
    assert m["clock_resolution_s"] <= 0.15 and m["rto"]["resolution_s"] <= 1.0, m["rto"]
    # Independent clock: the promotion instant PostgreSQL and Patroni wrote in their logs.
    first_ack, promo = m["rto"]["first_ack_after"], m["promotion"]
    assert promo["postgres_log_at"] and promo["patroni_log_at"], promo
    assert 0 <= first_ack - promo["postgres_log_at"] <= 0.5, (first_ack, promo)
    assert abs(promo["patroni_log_at"] - promo["postgres_log_at"]) <= 0.5
    assert m["ledger"]["lost"] == 0 and m["ledger"]["acknowledged"] > 100
    _assert_ledger_cross_check(j, out, lab_target)
    for name in ("journal.json", "timeline.png", "report.html", "report.md"):
        assert (out / name).stat().st_size > 0, name
    assert not LabDriver(lab_target).active_faults()
    secrets = [s.encode() for s in lab.secrets().values()]
    leaked = [f.name for f in out.rglob("*") if f.is_file() and any(s in f.read_bytes() for s in secrets)]
    assert not leaked, f"lab secrets in game-day output: {leaked}"


def test_kill_primary_async_ledger_matches_full_diff(lab_target: Target, tmp_path: Path) -> None:
    """Lost writes are possible without sync replication: the tool must count them exactly."""
    j, out = _run(lab_target, "kill-primary-async", tmp_path)
    assert _verdicts(j)["HA-2"] == "pass"
    _assert_ledger_cross_check(j, out, lab_target)
    assert _verdicts(j)["HA-3"] == ("pass" if j.measurements["ledger"]["lost"] == 0 else "fail")
    print("async ledger:", j.measurements["ledger"])
    wait_steady(lab_target, timeout=60)


def test_latency_triggers_no_failover(lab_target: Target, lab: LabState, tmp_path: Path) -> None:
    j, out = _run(lab_target, "latency", tmp_path)
    assert _verdicts(j) in ({"CH-LAT": "pass"}, {"CH-LAT": "busy"}), j.verdicts
    m = j.measurements
    assert m["failovers"] == 0 and m["leader_during"]["other_leader_seen"] == 0, m
    _assert_waited(j, "p95")
    assert m["p95_during_ms"] >= 180 > m["p95_baseline_ms"], m  # 200 ms +/- 20 on the client path
    keys = (out / "report.md").read_text().split("## Key numbers")[1].split("## Timeline")[0]
    assert "healed" not in keys.lower(), keys
    load_row = next(x for x in keys.splitlines() if x.startswith("| Load recovery |"))
    assert ("not recovered" in load_row) == (not m["conditions"]["load"]["ok"]), load_row
    assert not toxiproxy.active_faults(lab.toxiproxy_url)


def test_partition_replaces_primary_without_split_brain(lab_target: Target, lab: LabState,
                                                       tmp_path: Path) -> None:
    j, _ = _run(lab_target, "partition", tmp_path)
    assert _verdicts(j) == {"CH-PART": "pass"}, j.verdicts
    sb = j.measurements["split_brain"]
    assert sb["write_refused"] and sb["old_primary"] != sb["new_primary"]
    assert not toxiproxy.active_faults(lab.toxiproxy_url)
    wait_steady(lab_target, timeout=60)


def test_force_failover(lab_target: Target, tmp_path: Path) -> None:
    j, out = _run(lab_target, "force-failover", tmp_path)
    assert _verdicts(j) == {"CH-FORCE": "pass"}, j.verdicts
    assert j.measurements["old_primary"] != j.measurements["new_primary"]
    # Patroni's /failover blocks ~3 s while writes still succeed: the outage is the RTO judged.
    rto = j.measurements["rto"]
    assert rto["judged"] == "outage" and 0 < rto["outage_s"] <= rto["rto_s"], rto
    assert "HA-2 judges" in j.verdicts[0]["evidence"], j.verdicts
    _assert_ledger_cross_check(j, out, lab_target)


def test_policy_refuses_and_dry_run_touches_nothing(lab_target: Target, tmp_path: Path) -> None:
    locked = lab_target.model_copy(update={"chaos": lab_target.chaos.model_copy(update={"allowed": False})})
    with pytest.raises(ChaosRefused, match="chaos.allowed"):
        gameday.run(locked, "kill-primary", reports=tmp_path)
    prod = lab_target.model_copy(update={"name": "prod-eu"})
    with pytest.raises(ChaosRefused, match="--i-mean-production"):
        gameday.run(prod, "latency", reports=tmp_path)
    leader = LabDriver(lab_target).leader()
    lines: list[str] = []
    j, out = gameday.run(lab_target, "kill-primary", reports=tmp_path, dry_run=True, echo=lines.append)
    assert out is None and j.verdict == "dry-run" and any("kill_primary" in x for x in lines)
    assert not list(tmp_path.iterdir()) and LabDriver(lab_target).leader() == leader


def test_unhealthy_steady_state_refuses_to_start(lab_target: Target, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LabDriver, "steady", lambda self, require_sync=True: (False, "no leader"))
    j, _ = gameday.run(lab_target, "kill-primary", reports=tmp_path, echo=lambda _: None)
    assert j.verdict == "error" and j.fault == {} and "refusing to start" in j.events[-1]["detail"]


def _gameday_process(lab: LabState, scenario: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))}
    env.update(PGPROOF_LAB_TARGET=str(lab.target_file), PGPROOF_CONFIG="/nonexistent",
               PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-m", "pgproof.cli", "gameday", scenario, "--target", "lab",
         "--reports", str(tmp_path), "--baseline", "2", "--users", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        # A test runner started in the background inherits SIGINT ignored, and Python then never
        # raises KeyboardInterrupt: give the game day the default disposition a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _interrupt_after_fault(proc: subprocess.Popen[str], sig: int) -> str:
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if "fault injected" in line:
            time.sleep(1.0)
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=90)
    return "".join(seen) + rest


@pytest.mark.parametrize(("scenario", "sig"), [("latency", signal.SIGINT),
                                               ("kill-primary", signal.SIGTERM)])
def test_signal_mid_fault_undoes_everything(lab: LabState, lab_target: Target, tmp_path: Path,
                                            scenario: str, sig: int) -> None:
    proc = _gameday_process(lab, scenario, tmp_path)
    output = _interrupt_after_fault(proc, sig)
    assert proc.returncode != 0, output
    assert "interrupted" in output, output
    journal = json.loads(next(tmp_path.glob("*/journal.json")).read_text())
    assert journal["verdict"] == "error" and journal["fault"]["injected_at"]
    f, stop = journal["fault"], journal["interrupted"]
    assert stop["by"] == ("SIGINT" if sig == signal.SIGINT else "SIGTERM"), stop
    assert f["injected_at"] < stop["at"] <= f["undone_at"] and f["undo_ok"] is True, (f, stop)
    assert journal["series"] and any(x["t"] < f["injected_at"] for x in journal["series"])
    report = next(tmp_path.glob("*/report.md")).read_text()
    assert "INTERRUPTED (ERROR)" in report and "no undo was recorded" not in report, report
    driver = LabDriver(lab_target)
    assert not driver.active_faults(), driver.active_faults()  # toxics gone, killed node restarted
    started = next(e["event"] for e in journal["events"] if e["event"].startswith("Locust started"))
    load_pid = int(re.search(r"pid (\d+)", started).group(1))  # type: ignore[union-attr]
    assert not procs.pid_alive(load_pid), "Locust still running after the interrupt"
    wait_steady(lab_target, timeout=60)


def test_postmaster_crash_restarts_in_place(lab_target: Target, tmp_path: Path) -> None:
    """FIELD-NOTES: killing only the postmaster does not fail over; Patroni restarts it."""
    j, _ = _run(lab_target, "crash-postmaster", tmp_path)
    assert _verdicts(j) == {"HA-2": "pass", "HA-3": "pass", "HA-6": "pass"}, j.verdicts
    assert j.measurements["old_primary"] == j.measurements["new_primary"]
    assert j.measurements["rto"]["rto_s"] < 15


def test_client_path_faults_apply_and_undo(lab: LabState, lab_target: Target) -> None:
    import psycopg

    driver = LabDriver(lab_target)
    info = lab_target.conninfo(user="app", connect_timeout=2)
    with driver.cut_clients():
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(**info)
        assert len(driver.active_faults()) == 2  # writer and reader proxies disabled
    with driver.stall_clients(500):
        assert any("timeout" in f for f in driver.active_faults())
    assert not driver.active_faults()
    with psycopg.connect(**info) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_failed_undo_is_reported_loudly_with_the_manual_fix(lab_target: Target, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from pgproof.faults.base import Undo, fault

    def broken(self, ms, jitter_ms=0, undo_stack=None):  # type: ignore[no-untyped-def]
        def fail() -> None:
            raise RuntimeError("toxiproxy API unreachable")
        return fault(Undo(fail, "proxy writer still has a latency toxic",
                          "curl -X POST http://toxiproxy/reset"), lambda: None, undo_stack)

    monkeypatch.setattr(LabDriver, "latency", broken)
    j, out = gameday.run(lab_target, "latency", reports=tmp_path, echo=print, baseline_s=2,
                         users=4)
    assert j.verdict == "error"
    assert j.manual_fix and "curl -X POST http://toxiproxy/reset" in j.manual_fix
    assert "still broken: proxy writer still has a latency toxic" in j.manual_fix
    assert "UNDO FAILED" in (out / "report.html").read_text()
    load = next(e["event"] for e in j.events if e["event"].startswith("Locust started"))
    assert not procs.pid_alive(int(re.search(r"pid (\d+)", load).group(1)))  # type: ignore[union-attr]
