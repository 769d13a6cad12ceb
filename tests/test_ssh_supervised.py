"""The ssh driver's destructive paths against lab nodes run as services of a supervisor.

systemd is not PID 1 here, so the lab's own equivalent is used: `lab up --supervisor
supervisord` runs each Patroni node as a supervisord program and writes `lab-ssh` (the ssh
driver on local:// hosts, each naming its program and data directory). Every fault and undo
below goes through supervisorctl; supervisord's own view (program state and pid) is the
independent check. This module has its own lab (module-scoped, torn down at its end) and
needs no STAGES entry: it never touches the session lab, which may be up beside it (stage 0
also holds tests that bring the session lab up).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from labcli import gameday_rc_ok, lab_cli_env

from pgproof import procs
from pgproof.errors import UserError
from pgproof.faults.drivers import make_driver
from pgproof.faults.ssh import SshDriver
from pgproof.faults.ssh_service import host_settings, manager, parse_pid
from pgproof.lab import components, lifecycle, supervised
from pgproof.lab.driver import LabDriver
from pgproof.lab.state import NODES, LabState
from pgproof.target import Target, load_target, parse_target

pytestmark = pytest.mark.lab  # brings up a lab of its own


# -- settings (no lab) -------------------------------------------------------------------------
def test_host_urls_override_the_shared_tags() -> None:
    tags = {"service": "patroni", "pgdata": "/srv/pg", "patroni_config": "/etc/p.yml"}
    a, b, c = host_settings(["local://?name=n1&service=n1&pgdata=/var/n1", "ssh://admin@db2",
                             "ssh://admin@db2?pg_ctl_log=/tmp/x.log"], tags)
    assert (a.name, a.service, a.pgdata, a.patroni_config) == ("n1", "n1", "/var/n1", "/etc/p.yml")
    assert (b.name, b.service, b.pgdata) == ("db2", "patroni", "/srv/pg")
    assert (c.name, c.pg_ctl_log) == ("db2#2", "/tmp/x.log")


def test_service_managers_and_their_bad_input() -> None:
    sv = manager("t", {"supervisor": "supervisord", "supervisor_config": "/etc/sv.conf",
                       "supervisorctl": "/opt/bin/supervisorctl"})
    assert sv.stop("node 1") == "/opt/bin/supervisorctl -c /etc/sv.conf stop 'node 1'"
    assert manager("t", {}).pid("patroni") == "systemctl show -p MainPID --value patroni"
    assert parse_pid("0\n") == parse_pid("ERROR (no such process)") == "" and parse_pid("42") == "42"
    with pytest.raises(UserError, match="tags.supervisor = 'upstart' is not one of systemd, "
                                        "supervisord"):
        manager("t", {"supervisor": "upstart"})
    with pytest.raises(UserError, match="needs tags.supervisor_config"):
        manager("t", {"supervisor": "supervisord"})
    target = parse_target("t", {"hosts": ["local://?service=patroni", "local://?name=b"],
                                "chaos": {"allowed": True, "driver": "ssh"}}, "test")
    with pytest.raises(UserError, match=r"\?service= on every host"):
        SshDriver(target)


def test_lab_ssh_needs_a_supervised_loopback_lab(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="start the lab with `pgproof lab up --supervisor supervisord`"):
        load_target("lab-ssh", config=Path("/nonexistent"), lab_file=tmp_path / "target.toml")
    for kw, why in (({"topology_name": "vpc"}, "loopback topology only"),
                    ({"supervisor": "upstart"}, "unknown supervisor 'upstart'")):
        with pytest.raises(procs.ComponentError, match=why):  # refused before anything starts
            lifecycle.up(tmp_path / "lab", **{"supervisor": "supervisord", **kw})  # type: ignore[arg-type]
    assert not (tmp_path / "lab").exists()


# -- the supervised lab ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def sv_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    if not procs.running_as_root():
        pytest.skip("lab up --supervisor runs the nodes as the postgres OS user: needs root")
    d = tmp_path_factory.mktemp("sv-lab")
    try:
        yield lifecycle.up(d, timeout=90, with_aws=False, supervisor="supervisord")
    finally:
        lifecycle.down(d)


@pytest.fixture(scope="module")
def target(sv_lab: LabState) -> Target:
    return load_target("lab-ssh", config=Path("/nonexistent"), lab_file=sv_lab.target_file)


@pytest.fixture
def driver(target: Target) -> SshDriver:
    d = make_driver(target)
    assert isinstance(d, SshDriver)
    _until(lambda: d.steady()[0], 90, lambda: f"not steady: {d.steady()[1]}")
    return d


def _until(check: Callable[[], bool], timeout: float, why: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(why())


def _program(state: LabState, node: str) -> tuple[str, int]:
    """supervisord's own view of a node: its program state and pid (0 when not running)."""
    r = supervised.ctl(state, "status", node, timeout=10)
    words = r.stdout.split()
    pid = int(words[3].rstrip(",")) if len(words) > 3 and words[2] == "pid" else 0
    return (words[1] if len(words) > 1 else r.stdout.strip()), pid


def _held(check: Callable[[], bool], seconds: float) -> bool:
    """``check`` true on every sample for ``seconds``: sustained, not one lucky read."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not check():
            return False
        time.sleep(0.25)
    return True


def _rejoined(d: SshDriver, node: str) -> Callable[[], bool]:
    def ok() -> bool:
        healthy, _ = d.steady()
        return healthy and d.leader() != node and not d.state(node).primary
    return ok


def test_driver_sees_the_supervised_nodes(sv_lab: LabState, driver: SshDriver) -> None:
    assert driver.names == list(NODES)
    assert driver.versions()["supervisor"] == "supervisord"
    assert driver.leader() == components.leader(sv_lab)  # Patroni agrees
    for node in NODES:
        status, pid = _program(sv_lab, node)
        assert status == "RUNNING" and pid == procs.read_pid(sv_lab.pidfile(node)), (node, status)
    rows = {r.name: r for r in lifecycle.status(sv_lab.state_dir)}
    assert rows["supervisord"].healthy and all(rows[n].healthy for n in NODES)


def test_kill_primary_fails_over_and_undo_restarts_through_supervisorctl(
        sv_lab: LabState, driver: SshDriver) -> None:
    old = driver.leader()
    assert old is not None
    other = next(n for n in NODES if n != old)
    _, old_pid = _program(sv_lab, old)
    tl = driver.timeline()
    with driver.kill_primary():
        assert not procs.pid_alive(old_pid)
        # autorestart=false: supervisord leaves the killed program down until the undo.
        assert _held(lambda: _program(sv_lab, old)[0] == "EXITED", 2), _program(sv_lab, old)
        _until(lambda: driver.leader() == other, 60, lambda: f"no failover: {driver.steady()[1]}")
    status, pid = _program(sv_lab, old)
    assert status == "RUNNING" and pid != old_pid and pid == procs.read_pid(sv_lab.pidfile(old))
    _until(_rejoined(driver, old), 90, lambda: f"{old} did not rejoin: {driver.steady()[1]}")
    assert (driver.timeline() or 0) > (tl or 0) and driver.active_faults() == []


def test_stop_primary_hands_over_and_undo_starts_it(sv_lab: LabState, driver: SshDriver) -> None:
    old = driver.leader()
    assert old is not None
    with driver.stop_primary():
        assert _program(sv_lab, old)[0] == "STOPPED"
        assert driver.active_faults() == [f"{old}: PostgreSQL not running"]
        # A clean stop releases the leader key: no ttl to wait out.
        _until(lambda: driver.leader() not in (None, old), 30,
               lambda: f"no handover: {driver.steady()[1]}")
    assert _program(sv_lab, old)[0] == "RUNNING"
    _until(_rejoined(driver, old), 90, lambda: f"{old} did not rejoin: {driver.steady()[1]}")


def _postmaster(d: SshDriver, node: str) -> int:
    return int(Path(d.nodes[node].pgdata, "postmaster.pid").read_text().split()[0])


def test_crash_postmaster_is_restarted_in_place_by_supervised_patroni(
        sv_lab: LabState, driver: SshDriver) -> None:
    """Only the postmaster dies: the program (Patroni) keeps running and restarts it, no failover."""
    old = driver.leader()
    assert old is not None
    _, patroni_pid = _program(sv_lab, old)
    pm = _postmaster(driver, old)
    with driver.crash_postmaster():
        assert not procs.pid_alive(pm)
        _until(lambda: driver.state(old).running and _postmaster(driver, old) != pm, 60,
               lambda: f"Patroni did not restart PostgreSQL on {old}: {driver.steady()[1]}")
    assert _program(sv_lab, old) == ("RUNNING", patroni_pid), "Patroni itself must not have died"
    _until(lambda: driver.steady()[0], 90, lambda: f"not steady: {driver.steady()[1]}")
    assert driver.active_faults() == []


def test_force_failover_through_patronictl_on_supervised_nodes(
        sv_lab: LabState, driver: SshDriver) -> None:
    old = driver.leader()
    assert old is not None
    pids = {n: _program(sv_lab, n)[1] for n in NODES}
    with driver.force_failover():
        pass
    _until(lambda: driver.leader() not in (None, old), 60,
           lambda: f"patronictl failover did not move the leader: {driver.steady()[1]}")
    _until(_rejoined(driver, old), 90, lambda: f"{old} did not rejoin: {driver.steady()[1]}")
    assert {n: _program(sv_lab, n)[1] for n in NODES} == pids, "a failover restarts no program"


def test_gameday_kill_primary_on_lab_ssh(sv_lab: LabState, driver: SshDriver,
                                         tmp_path: Path) -> None:
    env = lab_cli_env(sv_lab)
    old = driver.leader()
    r = subprocess.run([sys.executable, "-m", "pgproof.cli", "gameday", "kill-primary",
                        "--target", "lab-ssh", "--reports", str(tmp_path), "--baseline", "3",
                        "--users", "4"], capture_output=True, text=True, env=env, timeout=240)
    out = r.stdout + r.stderr
    j = json.loads(next(tmp_path.glob("*/journal.json")).read_text())
    assert gameday_rc_ok(r.returncode, j["verdicts"]), out
    verdicts = {v["id"]: v["verdict"] for v in j["verdicts"]}
    assert verdicts["HA-2"] == "pass" and verdicts["HA-3"] == "pass", (verdicts, out[-2000:])
    assert verdicts["HA-6"] == "pass", j["verdicts"]
    m = j["measurements"]
    assert m["ledger"]["lost"] == 0 and m["ledger"]["acknowledged"] > 0, m["ledger"]
    assert m["old_primary"] == old and m["new_primary"] not in (None, old), m
    assert j["fault"]["undo_ok"] is True, j["fault"]
    _until(_rejoined(driver, old), 90, lambda: f"{old} did not rejoin: {driver.steady()[1]}")
    assert _program(sv_lab, old)[0] == "RUNNING"


def test_the_lab_driver_restarts_a_supervised_node_through_supervisord(
        sv_lab: LabState, driver: SshDriver) -> None:
    """`--target lab` on the same lab: its undo must not start a second, unsupervised Patroni."""
    lab_driver = LabDriver(load_target("lab", config=Path("/nonexistent"), lab_file=sv_lab.target_file))
    standby = next(n for n in NODES if n != driver.leader())
    _, old_pid = _program(sv_lab, standby)
    with lab_driver.kill_node(standby):
        assert _held(lambda: _program(sv_lab, standby)[0] == "EXITED", 1)
    status, pid = _program(sv_lab, standby)
    assert status == "RUNNING" and pid not in (0, old_pid) and pid == procs.read_pid(sv_lab.pidfile(standby))
    _until(lambda: driver.steady()[0], 90, lambda: f"not steady: {driver.steady()[1]}")


def test_lab_down_stops_supervisord_and_its_programs(sv_lab: LabState) -> None:
    daemon = procs.read_pid(sv_lab.pidfile("supervisord"))
    nodes = [procs.read_pid(sv_lab.pidfile(n)) for n in NODES]
    assert daemon and procs.pid_alive(daemon) and all(nodes)
    stopped = lifecycle.down(sv_lab.state_dir)
    assert "supervisord" in stopped and all(n in stopped for n in NODES), stopped
    assert not any(procs.pid_alive(p) for p in (daemon, *nodes) if p)
    assert lifecycle._strays(sv_lab.run_dir) == [] and not sv_lab.run_dir.exists()
    assert not sv_lab.target_file.with_name("target-lab-ssh.toml").exists()
