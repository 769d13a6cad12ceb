"""Crash-safe faults: the undo survives SIGKILL of the runner (durable record + gameday recover)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labcli import lab_cli_env as _env

from pgproof import procs
from pgproof.faults import record, toxiproxy
from pgproof.faults.base import FaultUndoError, Undo, fault
from pgproof.faults.record import FaultRecord, RecordExists, start_time
from pgproof.gameday import run as gameday
from pgproof.gameday.recover import recover, stop_process
from pgproof.gameday.scenarios import SCENARIOS
from pgproof.lab.driver import LabDriver
from pgproof.lab.state import LabState
from pgproof.target import Target, parse_target

pytestmark = pytest.mark.stage("gameday")

REPO = Path(__file__).resolve().parent.parent


def _target(tmp_path: Path, name: str = "t1") -> Target:
    return parse_target(name, {"postgres": {"writer": {"host": "127.0.0.1", "port": 1}, "user": "x"},
                               "chaos": {"allowed": True}, "lab": {"state_dir": str(tmp_path)}},
                        "test")


# -- the record itself (no lab) ------------------------------------------------------------------
def test_fault_is_on_disk_before_it_acts_and_struck_off_after_its_undo(tmp_path: Path) -> None:
    t = _target(tmp_path)
    rec = FaultRecord.create(t, "r1", "latency", tmp_path)
    seen: list[list[str]] = []
    with record.activate(rec):
        undo = Undo(lambda: None, "proxy writer has toxic x", "curl -X DELETE ...")
        act = lambda: seen.append([f["kind"] for f in json.loads(record.record_path(t).read_text())["faults"]])  # noqa: E731
        with fault(undo, act, durable=("toxic", {"api_url": "u", "proxy": "writer", "name": "x"})):
            assert FaultRecord.load(t).faults[0]["what"] == "proxy writer has toxic x"  # type: ignore[union-attr]
    assert seen == [["toxic"]]  # written before act() ran
    assert FaultRecord.load(t).faults == []  # type: ignore[union-attr]
    assert rec.close() and not record.record_path(t).exists()


def test_failed_undo_keeps_the_record_and_a_second_run_is_refused(tmp_path: Path) -> None:
    t = _target(tmp_path)
    rec = FaultRecord.create(t, "r1", "latency", tmp_path)

    def broken() -> None:
        raise RuntimeError("api down")

    with record.activate(rec), pytest.raises(FaultUndoError):  # noqa: SIM117
        with fault(Undo(broken, "toxic left", "fix"), lambda: None, durable=("toxic", {})):
            pass
    assert record.orphaned(t) is None and "in progress" in (record.notice(t) or "")
    assert not rec.close()  # the run ended with its undo failed: an orphan, even in this process
    assert record.orphaned(t) is not None
    assert [f["what"] for f in FaultRecord.load(t).faults] == ["toxic left"]  # type: ignore[union-attr]
    with pytest.raises(RecordExists):
        FaultRecord.create(t, "r2", "latency", tmp_path)
    with pytest.raises(gameday.ChaosRefused, match="ORPHANED FAULT.*gameday recover --target t1"):
        gameday.run(t, "latency", reports=tmp_path / "r", dry_run=True, echo=lambda _: None)


def test_recover_never_signals_a_recycled_pid(tmp_path: Path) -> None:
    """A PID is only ours if its start time matches the recorded one (/proc/<pid>/stat field 22)."""
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        real = start_time(sleeper.pid)
        assert real is not None
        msg = stop_process({"role": "locust", "pid": sleeper.pid, "start": real - 1, "group": True})
        assert "not touched" in msg and procs.pid_alive(sleeper.pid)
        msg = stop_process({"role": "locust", "pid": sleeper.pid, "start": real, "group": True})
        assert "stopped" in msg
        assert not procs.pid_alive(sleeper.pid)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_locust_run_time_is_bounded_by_the_budgets(tmp_path: Path) -> None:
    t = _target(tmp_path)
    for s in SCENARIOS.values():
        limit = gameday.load_limit_s(s, t, 5, 60)
        # Longer than every phase (baseline, the fault or its RTO budget, the recovery watch) ...
        assert 5 + 60 + t.thresholds.recovery_budget_s < limit < 600, (s.name, limit)


# -- SIGKILL of a real `pgproof gameday` on the lab -------------------------------------------------
def _cli(lab: LabState, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgproof.cli", *args], capture_output=True,
                          text=True, env=_env(lab), cwd=REPO, timeout=timeout)


def _sigkill_mid_fault(lab: LabState, scenario: str, reports: Path) -> str:
    proc = subprocess.Popen([sys.executable, "-m", "pgproof.cli", "gameday", scenario, "--target",
                             "lab", "--reports", str(reports), "--baseline", "2", "--users", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(lab), cwd=REPO)
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if "fault injected" in line:
            time.sleep(1.0)
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(30)
    out = "".join(seen)
    assert proc.returncode == -signal.SIGKILL, out
    assert "fault injected" in out, out
    return out


def _wait_steady(target: Target, timeout: float = 120) -> tuple[bool, str]:
    driver = LabDriver(target)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok, detail = driver.steady()
        if ok:
            return ok, detail
        time.sleep(1)
    return driver.steady()


EXPECTED = {"latency": {"toxic"}, "kill-primary": {"node_down"}, "partition": {"proxies_disabled"}}


@pytest.mark.parametrize("scenario", ["latency", "kill-primary", "partition"])
def test_sigkill_mid_fault_then_recover_leaves_nothing(lab: LabState, lab_target: Target,
                                                      tmp_path: Path, scenario: str) -> None:
    ok, detail = _wait_steady(lab_target)  # an earlier test may have failed over just now
    assert ok, detail
    output = _sigkill_mid_fault(lab, scenario, tmp_path)

    # The runner is gone; what it did is on disk, and the leftovers are real.
    rec = FaultRecord.load(lab_target)
    assert rec is not None and not rec.owner_alive(), output
    assert {f["kind"] for f in rec.faults} == EXPECTED[scenario], rec.data
    (locust,) = rec.processes
    assert procs.pid_alive(locust["pid"]), "Locust should be orphaned, still running"
    cmdline = Path(f"/proc/{locust['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"--run-time" in cmdline, cmdline  # an orphan cannot write forever
    assert LabDriver(lab_target).active_faults(), "the fault should still be in place"
    run_dir = Path(rec.data["run_dir"])
    assert json.loads((run_dir / "journal.json").read_text())["fault"]["injected_at"]  # the stub

    # Every command that touches the target says so in one line, and what to run.
    status = _cli(lab, "lab", "status", "--lab-dir", str(lab.state_dir))
    assert status.returncode == 1 and "ORPHANED FAULT" in status.stdout, status.stdout
    assert "pgproof gameday recover --target lab" in status.stdout
    if scenario == "latency":
        assert "toxic pgproof_latency" in status.stdout, status.stdout
    dry = _cli(lab, "gameday", "latency", "--target", "lab", "--dry-run")
    assert dry.returncode == 2 and "ORPHANED FAULT" in dry.stderr, dry.stdout + dry.stderr
    assert len(dry.stderr.strip().splitlines()) == 1, dry.stderr
    if scenario == "latency":  # check keeps running but cannot vouch for a faulted target
        chk = _cli(lab, "check", "--target", "lab", "--reports", str(tmp_path / "check-orphan"))
        assert chk.returncode == 2 and "ORPHANED FAULT" in chk.stderr, chk.stdout[-2000:] + chk.stderr

    rec_run = _cli(lab, "gameday", "recover", "--target", "lab")
    assert rec_run.returncode == 0, rec_run.stdout + rec_run.stderr
    assert "steady state holds" in rec_run.stdout

    assert FaultRecord.load(lab_target) is None
    assert not procs.pid_alive(locust["pid"]), "orphaned Locust still running after recover"
    assert not LabDriver(lab_target).active_faults(), LabDriver(lab_target).active_faults()
    assert not toxiproxy.active_faults(lab.toxiproxy_url)
    assert LabDriver(lab_target).steady()[0]
    journal = json.loads((run_dir / "journal.json").read_text())
    assert journal["interrupted"] and journal["recovery"]["ok"]
    assert any(e["phase"] == "recover" and e["event"] == "undone" for e in journal["events"])

    again = _cli(lab, "gameday", "recover", "--target", "lab")  # idempotent
    assert again.returncode == 0 and "nothing to recover" in again.stdout, again.stdout
    chk = _cli(lab, "check", "--target", "lab", "--reports", str(tmp_path / "check"))
    assert chk.returncode == 0, chk.stdout[-3000:] + chk.stderr[-2000:]
    assert "ORPHANED" not in chk.stderr


def test_recover_restores_replication_mode_and_restarts_a_killed_node(lab_target: Target,
                                                                     tmp_path: Path) -> None:
    """Recorded by hand (no runner): recover runs each kind's undo, also when already undone."""
    ok, detail = _wait_steady(lab_target)
    assert ok, detail
    driver = LabDriver(lab_target)
    from pgproof.faults import patroni

    patroni.patch_config(driver.state.rest_url(driver.leader() or "node1"), {"synchronous_mode": False})
    rec = FaultRecord.create(lab_target, "manual", "kill-primary-async", tmp_path)
    rec.data["owner"] = {"pid": 1, "start": -1}  # a runner that is gone
    rec.add_fault("replication_mode", {"synchronous_mode": True}, "async replication", "fix")
    replica = next(n for n in ("node1", "node2") if n != driver.leader())
    rec.add_fault("node_down", {"node": replica}, f"{replica} down", "fix")  # it is not: idempotent
    assert record.orphaned(lab_target) is not None
    lines: list[str] = []
    assert recover(lab_target, echo=lines.append) == 0, lines
    assert any("already running" in x for x in lines), lines
    assert any("synchronous_mode set to True" in x for x in lines), lines
    assert FaultRecord.load(lab_target) is None
    ok, detail = _wait_steady(lab_target, timeout=60)  # the sync standby is re-elected after a moment
    assert ok, detail


def test_lab_down_stops_an_orphans_load_and_drops_its_record(tmp_path: Path) -> None:
    from pgproof.lab import lifecycle

    LabState.new(tmp_path).save()  # a lab with no processes left
    t = _target(tmp_path, "lab")
    rec = FaultRecord.create(t, "gone", "latency", None)
    rec.data["owner"] = {"pid": 1, "start": -1}  # its runner was SIGKILLed
    rec.add_fault("toxic", {"api_url": "http://127.0.0.1:1", "proxy": "writer", "name": "x"}, "x", "y")
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        rec.add_process("locust", sleeper.pid)
        stopped = lifecycle.down(tmp_path)
        assert not procs.pid_alive(sleeper.pid)
        assert "fault record lab.json" in stopped and FaultRecord.load(t) is None
    finally:
        sleeper.kill()
        sleeper.wait()


CRASHER = """
import sys, time
from pathlib import Path
from pgproof.faults import record
from pgproof.faults.drivers import make_driver
from pgproof.target import load_target

t = load_target("local-ssh", Path(sys.argv[1]))
rec = record.FaultRecord.create(t, "crashed", "kill-primary", None)
with record.activate(rec), make_driver(t).kill_primary():
    print("killed", flush=True)
    time.sleep(600)
"""


def test_a_non_lab_target_is_recovered_from_its_record(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """ssh driver on a real local PostgreSQL: a SIGKILLed runner's killed node comes back."""
    import getpass

    import psycopg

    from pgproof.gameday import recover as recover_mod
    from pgproof.lab.standalone import standalone_postgres
    from pgproof.target import load_target

    monkeypatch.setenv("PGPROOF_FAULTS_DIR", str(tmp_path / "faults"))
    monkeypatch.setattr(recover_mod, "STEADY_BUDGET_S", 3.0)
    with standalone_postgres() as pg:
        monkeypatch.setenv("PGPROOF_TEST_SSH_PW", pg.password)
        os_user = procs.SERVICE_USER if procs.running_as_root() else getpass.getuser()
        config = tmp_path / "pgproof.toml"
        config.write_text(f"""[targets.local-ssh]
hosts = ["local://"]
tags = {{ pgdata = "{pg.datadir}", pg_ctl_log = "{pg.log}", os_user = "{os_user}", sudo = "false", pg_bin = "{procs.PG_BIN}" }}
chaos = {{ allowed = true, driver = "ssh" }}
[targets.local-ssh.postgres]
writer = {{ host = "{pg.host}", port = {pg.port} }}
user = "{pg.user}"
password_env = "PGPROOF_TEST_SSH_PW"
sslrootcert = "{pg.ca}"
connect_timeout = 2
""")
        t = load_target("local-ssh", config)
        assert record.record_path(t) == tmp_path / "faults" / "local-ssh.json"
        runner = subprocess.Popen([sys.executable, "-c", CRASHER, str(config)], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert runner.stdout is not None and runner.stdout.readline().strip() == "killed"
        finally:
            runner.send_signal(signal.SIGKILL)
            runner.wait(30)
        assert not procs.port_open(pg.host, pg.port)
        assert record.orphaned(t) is not None
        assert [f["kind"] for f in FaultRecord.load(t).faults] == ["node_down"]  # type: ignore[union-attr]
        lines: list[str] = []
        rc = recover(t, echo=lines.append)
        # One node has no synchronous standby, so steady state cannot hold: said, exit 2.
        assert rc == 2 and any("PostgreSQL on local running" in x for x in lines), lines
        assert any("no synchronous standby" in x for x in lines), lines
        assert FaultRecord.load(t) is None  # every undo worked: nothing left to recover
        with psycopg.connect(**t.conninfo()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
