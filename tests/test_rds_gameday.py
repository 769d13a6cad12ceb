"""RDS game days end to end on the lab: `--target lab-rds` drives the live lab through its AWS twin.

The twin's moto server is bridged to the lab (pgproof/lab/aws_bridge.py): a reboot with
failover fails Patroni over and emits RDS failover events, and revoking the DB security
group's app-tier rule cuts the lab's client path. So every game day here runs through the
AWS driver only (boto3 calls, RDS events, SG rules) and is judged on real writes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
import requests
from labcli import gameday_rc_ok
from labcli import lab_cli_env as _env

from pgproof import procs
from pgproof.faults import aws_sg, record
from pgproof.faults.aws import AwsDriver
from pgproof.faults.client_proxy import ClientProxy
from pgproof.gameday import run as gameday
from pgproof.gameday.journal import Journal
from pgproof.lab.driver import LabDriver
from pgproof.lab.state import LabState
from pgproof.target import Target, load_target

pytestmark = pytest.mark.stage("gameday")

REPO = Path(__file__).resolve().parent.parent
FAST = {"baseline_s": 3, "users": 4}


@pytest.fixture(scope="module")
def rds(lab: LabState) -> Target:
    return load_target("lab-rds", config=Path("/nonexistent"), lab_file=lab.target_file)


def _run(target: Target, scenario: str, tmp_path: Path) -> Journal:
    j, out = gameday.run(target, scenario, reports=tmp_path, echo=print, **FAST)  # type: ignore[arg-type]
    assert out is not None and (out / "journal.json").exists()
    return j


def _verdicts(j: Journal) -> dict[str, str]:
    return {v["id"]: v["verdict"] for v in j.verdicts}


def _rules(d: AwsDriver) -> list[str]:
    return aws_sg.snapshot(d.ec2, d.db_security_groups()[0])


def _proxies_enabled(lab: LabState) -> dict[str, bool]:
    got = requests.get(lab.toxiproxy_url + "/proxies", timeout=10).json()
    return {p: got[p]["enabled"] for p in ("writer", "reader")}


def _events(d: AwsDriver, since: float) -> list[str]:
    return [e["message"] for e in d.events(since)]


def _as_lab(target: Target) -> Target:
    """The same lab seen by the lab driver: only to check what the AWS twin did to it."""
    return target.model_copy(update={"chaos": target.chaos.model_copy(update={"driver": "lab"})})


def _wait_lab_steady(target: Target, timeout: float = 90) -> None:
    """The next game day starts from a synchronously replicating cluster (the standby may lag)."""
    driver = LabDriver(_as_lab(target))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.steady()[0]:
            return
        time.sleep(0.5)
    pytest.fail(f"lab not steady: {driver.steady()[1]}")


# -- the target and its plans -----------------------------------------------------------------
def test_lab_rds_is_the_lab_through_the_aws_driver(rds: Target, lab: LabState, tmp_path: Path) -> None:
    assert rds.chaos.driver == "aws" and rds.aws is not None and rds.aws.endpoint_url
    assert rds.postgres.writer.port == lab.ports["writer"]
    lines: list[str] = []
    gameday.run(rds, "kill-primary", reports=tmp_path, dry_run=True, echo=lines.append)
    text = "\n".join(lines)
    assert "reboot_db_instance(ForceFailover=True)" in text and "not a SIGKILL" in text
    assert "killed together" not in text
    lines.clear()
    gameday.run(rds, "partition", reports=tmp_path, dry_run=True, echo=lines.append)
    assert "security-group blackhole" in "\n".join(lines)
    with pytest.raises(gameday.ChaosRefused, match="replication mode is not switchable"):
        gameday.run(rds, "kill-primary-async", reports=tmp_path, dry_run=True)
    no_app = rds.model_copy(update={"aws": rds.aws.model_copy(update={"app_security_group_ids": []})})
    with pytest.raises(gameday.ChaosRefused, match="app_security_group_ids or chaos.app_cidrs"):
        gameday.run(no_app, "partition", reports=tmp_path, dry_run=True)
    assert not list(tmp_path.iterdir())  # dry runs and refusals write nothing


def test_client_proxy_keeps_the_host_name_for_verify_full(rds: Target) -> None:
    """TLS passes the TCP proxy unchanged: libpq checks the cert against `host`, not `hostaddr`."""
    app = rds.conninfo(user="app", host="localhost", connect_timeout=5)
    assert app["sslmode"] == "verify-full"
    proxy = ClientProxy("127.0.0.1", rds.postgres.writer.port)
    proxy.start()
    try:
        via = proxy.conninfo(app)
        assert via["hostaddr"] == "127.0.0.1" and via["port"] != rds.postgres.writer.port
        with psycopg.connect(**via) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError, match="does not match|certificate"):
            psycopg.connect(**{**via, "host": "db.example.invalid"}).close()
    finally:
        proxy.stop()
    assert proxy.pid is not None and not procs.pid_alive(proxy.pid)


# -- the four scenarios on lab-rds ------------------------------------------------------------
def test_kill_primary_is_a_reboot_with_failover_and_rds_says_so(rds: Target, lab: LabState,
                                                                 tmp_path: Path) -> None:
    d = AwsDriver(rds)
    since = time.time()
    az_before = d.leader()
    lead_before = LabDriver(_as_lab(rds)).leader()
    j = _run(rds, "kill-primary", tmp_path)
    v = _verdicts(j)
    assert {k: v[k] for k in ("HA-2", "HA-3", "HA-6")} == {"HA-2": "pass", "HA-3": "pass",
                                                           "HA-6": "pass"}, j.verdicts
    # HA-4 compares seconds of throughput with a 3 s baseline: on a 2-core machine shared with
    # other labs it is judged, or refused only because the host got busier than during the
    # baseline (tests/labcli.gameday_rc_ok); which verdict is test_gameday_lab's to assert.
    ha4 = [x for x in j.verdicts if x["id"] == "HA-4"]
    assert gameday_rc_ok(2 if v["HA-4"] == "error" else 0, ha4), ha4
    assert j.measurements["baseline_tps"] > 0
    m = j.measurements
    assert LabDriver(_as_lab(rds)).leader() != lead_before  # Patroni really failed over
    assert m["failovers"] == 1 and m["old_primary"] == az_before != m["new_primary"] == d.leader()
    promo = m["promotion"]  # read from describe_events, not invented
    assert promo["rds_failover_started_at"] and promo["rds_event_at"]
    assert j.fault["injected_at"] <= promo["rds_failover_started_at"] <= promo["rds_event_at"]
    msgs = _events(d, since)
    assert "Multi-AZ instance failover started." in msgs
    assert "Multi-AZ instance failover completed." in msgs
    _wait_lab_steady(rds)


def test_force_failover_through_the_aws_driver(rds: Target, tmp_path: Path) -> None:
    d = AwsDriver(rds)
    before = d.leader()
    j = _run(rds, "force-failover", tmp_path)
    assert _verdicts(j) == {"CH-FORCE": "pass"}, j.verdicts
    assert j.measurements["ledger"]["lost"] == 0 and j.measurements["promotion"]["rds_event_at"]
    assert d.leader() != before and d.timeline() == 1  # one completed failover since d was made
    _wait_lab_steady(rds)


def test_latency_on_the_client_path(rds: Target, lab: LabState, tmp_path: Path) -> None:
    j = _run(rds, "latency", tmp_path)
    assert _verdicts(j) == {"CH-LAT": "pass"}, j.verdicts
    at, undone = j.fault["injected_at"], j.fault["undone_at"]
    during = [x["p95_ms"] for x in j.series if at + 1 <= x["t"] < undone - 1 and x["p95_ms"]]
    assert during and min(during) >= 200, during  # the load really went through the toxic proxy
    assert j.measurements["failovers"] == 0
    lab_own = procs.read_pid(lab.pidfile("toxiproxy"))  # a child of ours when the fixture made the lab
    left = [p for p in _children("pgproof.proxy.server") if p != lab_own]
    assert not left, f"client-path proxy still running: {left}"
    assert record.FaultRecord.load(rds) is None


def test_partition_is_a_security_group_blackhole_undone_rule_by_rule(rds: Target, lab: LabState,
                                                                     tmp_path: Path) -> None:
    d = AwsDriver(rds)
    before = _rules(d)
    assert d.app_rules(), "the twin's DB security group must admit the app tier"
    j = _run(rds, "partition", tmp_path)
    assert _verdicts(j) == {"CH-PART": "pass"}, j.verdicts
    rto = j.measurements["rto"]["rto_s"]
    assert rto >= rds.chaos.duration_s, rto  # writes failed for the whole blackhole
    assert j.measurements["failovers"] == 0
    assert _rules(d) == before  # rule by rule, descriptions included
    assert _proxies_enabled(lab) == {"writer": True, "reader": True}


def _sigkill_after_fault(lab: LabState, scenario: str, reports: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pgproof.cli", "gameday", scenario, "--target",
                             "lab-rds", "--reports", str(reports), "--baseline", "2", "--users", "4"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(lab), cwd=REPO)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "fault injected" in line:
            proc.send_signal(signal.SIGKILL)  # well inside the hold (chaos.duration_s)
            break
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "".join(seen)


def _recover(lab: LabState) -> str:
    done = subprocess.run([sys.executable, "-m", "pgproof.cli", "gameday", "recover", "--target",
                           "lab-rds"], capture_output=True, text=True, env=_env(lab), cwd=REPO,
                          timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_sigkill_mid_partition_then_recover_restores_the_rules(rds: Target, lab: LabState,
                                                              tmp_path: Path) -> None:
    d = AwsDriver(rds)
    before = _rules(d)
    _sigkill_after_fault(lab, "partition", tmp_path)
    rec = record.FaultRecord.load(rds)
    assert rec is not None and [f["kind"] for f in rec.faults] == ["sg_ingress_revoked"]
    time.sleep(rds.chaos.duration_s + 2)  # the runner's restore timer died with it
    assert _rules(d) != before
    assert _proxies_enabled(lab) == {"writer": False, "reader": False}  # the bridge cut the lab
    assert "re-authorized 1 ingress rule" in _recover(lab)
    assert _rules(d) == before
    assert _proxies_enabled(lab) == {"writer": True, "reader": True}
    assert record.FaultRecord.load(rds) is None
    journal = json.loads(next(tmp_path.rglob("journal.json")).read_text())
    assert journal["interrupted"] and journal["recovery"]["ok"]
    _wait_lab_steady(rds)


def test_sigkill_mid_latency_then_recover_stops_the_client_proxy(rds: Target, lab: LabState,
                                                                tmp_path: Path) -> None:
    _sigkill_after_fault(lab, "latency", tmp_path)
    rec = record.FaultRecord.load(rds)
    assert rec is not None and [f["kind"] for f in rec.faults] == ["client_proxy", "client_toxic"]
    proxy = rec.faults[0]["data"]
    assert record.same_process(proxy["pid"], proxy["start"])  # it outlived the runner
    toxics = requests.get(f"{proxy['api_url']}/proxies/{proxy['proxy']}/toxics", timeout=10).json()
    assert [t["type"] for t in toxics] == ["latency"]
    out = _recover(lab)
    assert "removed from client-path proxy" in out and f"proxy pid {proxy['pid']} stopped" in out
    assert not record.same_process(proxy["pid"], proxy["start"])
    assert record.FaultRecord.load(rds) is None


def _children(needle: str) -> list[int]:
    """Live processes this test process started whose command line holds ``needle``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            ppid = int(next(x for x in status.splitlines() if x.startswith("PPid:")).split()[1])
            if ppid == os.getpid() and needle.encode() in (entry / "cmdline").read_bytes() \
                    and procs.pid_alive(int(entry.name)):
                found.append(int(entry.name))
        except (OSError, StopIteration, ValueError):
            continue
    return found
