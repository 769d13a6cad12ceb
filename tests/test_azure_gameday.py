"""Azure game days: the azure driver's calls against the ARM twin, then whole game days on the lab.

`--target lab-azure` is the live lab behind the ARM twin, bridged (pgproof/lab/azure_bridge.py):
a restart with failover fails Patroni over, an NSG deny rule between the app and DB subnets
cuts the lab's client path. Every game day here runs through the azure driver only (SDK
calls, server and HA state, NSG rules) and is judged on real writes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from labcli import lab_cli_env as _env

from pgproof.faults import azure_nsg, record
from pgproof.faults.azure import AzureDriver
from pgproof.gameday import run as gameday
from pgproof.gameday.journal import Journal
from pgproof.lab import azure_lab, pki
from pgproof.lab.driver import LabDriver
from pgproof.lab.state import LabState
from pgproof.probes.azure_sdk import body
from pgproof.procs import free_ports
from pgproof.target import Target, load_target

pytestmark = pytest.mark.stage("gameday")

REPO = Path(__file__).resolve().parent.parent
FAST = {"baseline_s": 3, "users": 4}


# -- the driver's calls against a plain (unbridged) twin ----------------------------------------
@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    d = tmp_path_factory.mktemp("azure-twin")
    pki.make_ca(d / "tls")
    try:
        section = azure_lab.start(d, d / "tls", tuple(free_ports(3)), timeout=90)  # type: ignore[arg-type]
        yield Target.model_validate({
            "name": "twin", "postgres": {"writer": {"host": "db.example", "port": 5432}, "user": "u"},
            "azure": section, "chaos": {"allowed": True, "driver": "azure", "duration_s": 60}})
    finally:
        azure_lab.stop(d)


def _ha(d: AzureDriver, mode: str) -> None:
    d.c.pg.servers.begin_update(d.group, d.server, body({"properties": {"highAvailability": {
        "mode": mode}}}), polling_interval=0).result()


def test_restart_with_failover_swaps_zones_and_refuses_without_zone_redundancy(twin: Target) -> None:
    d = AzureDriver(twin)
    assert d.steady()[0] and d.leader() == "zone 1"
    with d.kill_primary():
        pass
    ev = d.evidence[-1]
    assert ev["mode"] == "ForcedFailover" and ev["before"]["zone"] == ev["after"]["standby_zone"] == "1"
    assert ev["after"]["zone"] == ev["before"]["standby_zone"] == "2" and d.leader() == "zone 2"
    with d.force_failover():
        pass
    assert d.evidence[-1]["mode"] == "PlannedFailover" and d.leader() == "zone 1"
    _ha(d, "SameZone")
    try:
        why = d.why_not("kill_primary")
        assert why == ("server pgproof-lab-pg has highAvailability.mode = SameZone; a failover game "
                       "day needs ZoneRedundant HA (a standby in another zone)")
        with pytest.raises(RuntimeError, match="needs ZoneRedundant"), d.kill_primary():
            pass
    finally:
        _ha(d, "ZoneRedundant")


def test_nsg_deny_rule_is_added_ahead_of_the_allow_and_deleted_exactly(twin: Target) -> None:
    d = AzureDriver(twin)
    plan = d.partition_plan()
    nsg = d.nsg(plan["nsg_id"])
    before = azure_nsg.snapshot(nsg)
    assert azure_nsg.admits(nsg, plan["src"], plan["dst"], 5432) and plan["priority"] == 100
    with d.partition_primary():
        nsg = d.nsg(plan["nsg_id"])
        added = [r for r in nsg["properties"]["securityRules"] if r["name"].startswith("pgproof-partition-")]
        assert len(added) == 1 and added[0]["properties"]["access"] == "Deny"
        assert added[0]["id"].endswith(f"/securityRules/{added[0]['name']}")
        assert not azure_nsg.admits(nsg, plan["src"], plan["dst"], 5432)
        assert not azure_nsg.admits(nsg, plan["src"], plan["dst"], 6432)
    assert azure_nsg.snapshot(d.nsg(plan["nsg_id"])) == before


def test_no_deny_rule_when_the_allow_rule_has_the_top_priority(twin: Target) -> None:
    d = AzureDriver(twin)
    p = d.partition_plan()
    g, n = p["nsg_id"].split("/")[4], p["nsg_id"].rsplit("/", 1)[-1]
    rules = d.c.network.security_rules
    top = {"properties": {"protocol": "Tcp", "sourceAddressPrefix": p["src"], "sourcePortRange": "*",
                          "destinationAddressPrefix": p["dst"], "destinationPortRange": "5432",
                          "access": "Allow", "priority": 100, "direction": "Inbound"}}
    rules.begin_create_or_update(g, n, "allow-top", body(top), polling_interval=0).result()
    try:
        with pytest.raises(Exception, match="SecurityRuleConflict"):  # ARM: one rule per priority
            rules.begin_create_or_update(g, n, "clash", body(top), polling_interval=0).result()
        with pytest.raises(RuntimeError, match="rule allow-top admits the app tier at priority 100"):
            d.partition_plan()
    finally:
        rules.begin_delete(g, n, "allow-top", polling_interval=0).result()


# -- whole game days on the lab ------------------------------------------------------------------
@pytest.fixture(scope="module")
def azure(lab: LabState) -> Target:
    if not lab.azure:
        pytest.skip("lab started without the Azure twin (--cloud azure|both)")
    return load_target("lab-azure", config=Path("/nonexistent"), lab_file=lab.target_file)


def _as_lab(target: Target) -> Target:
    """The same lab seen by the lab driver: only to check what the twin did to it."""
    return target.model_copy(update={"chaos": target.chaos.model_copy(update={"driver": "lab"})})


def _wait_lab_steady(target: Target, timeout: float = 90) -> None:
    driver = LabDriver(_as_lab(target))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.steady()[0]:
            return
        time.sleep(0.5)
    pytest.fail(f"lab not steady: {driver.steady()[1]}")


def _verdicts(j: Journal) -> dict[str, str]:
    return {v["id"]: v["verdict"] for v in j.verdicts}


def _proxies_enabled(lab: LabState) -> dict[str, bool]:
    got = requests.get(lab.toxiproxy_url + "/proxies", timeout=10).json()
    return {p: got[p]["enabled"] for p in ("writer", "reader")}


def _rules(d: AzureDriver) -> list[str]:
    return azure_nsg.snapshot(d.nsg(d.az.nsg_ids[0]))


def test_lab_azure_plans_say_what_azure_does(azure: Target, tmp_path: Path) -> None:
    assert azure.chaos.driver == "azure" and azure.azure is not None
    lines: list[str] = []
    gameday.run(azure, "kill-primary", reports=tmp_path, dry_run=True, echo=lines.append)
    gameday.run(azure, "partition", reports=tmp_path, dry_run=True, echo=lines.append)
    gameday.run(azure, "latency", reports=tmp_path, dry_run=True, echo=lines.append)
    text = "\n".join(lines)
    assert 'failover_mode="ForcedFailover"' in text and "NSG deny rule" in text
    assert "client path" in text and "killed together" not in text
    with pytest.raises(gameday.ChaosRefused, match="not switchable"):
        gameday.run(azure, "kill-primary-async", reports=tmp_path, dry_run=True)
    assert not list(tmp_path.iterdir())


def test_kill_primary_is_a_forced_failover_on_the_lab(azure: Target, tmp_path: Path) -> None:
    d = AzureDriver(azure)
    lead_before = LabDriver(_as_lab(azure)).leader()
    j, out = gameday.run(azure, "kill-primary", reports=tmp_path, echo=print, **FAST)  # type: ignore[arg-type]
    assert out is not None
    v = _verdicts(j)
    assert {k: v[k] for k in ("HA-2", "HA-3", "HA-6")} == {"HA-2": "pass", "HA-3": "pass",
                                                           "HA-6": "pass"}, j.verdicts
    m = j.measurements
    assert m["ledger"]["lost"] == 0 and m["rto"]["rto_s"] > 0
    assert LabDriver(_as_lab(azure)).leader() != lead_before  # Patroni really failed over
    promo = m["promotion"]  # what ARM said: the operation, and the zones before/after
    assert promo["mode"] == "ForcedFailover" and promo["before"]["zone"] == promo["after"]["standby_zone"]
    assert m["failovers"] == 1 and m["old_primary"] != m["new_primary"] == d.leader()
    _wait_lab_steady(azure)


def test_partition_is_an_nsg_deny_rule_undone_exactly(azure: Target, lab: LabState,
                                                      tmp_path: Path) -> None:
    d = AzureDriver(azure)
    before = _rules(d)
    j, _ = gameday.run(azure, "partition", reports=tmp_path, echo=print, **FAST)  # type: ignore[arg-type]
    assert _verdicts(j) == {"CH-PART": "pass"}, j.verdicts
    assert j.measurements["rto"]["rto_s"] >= azure.chaos.duration_s  # writes failed for the hold
    assert j.measurements["failovers"] == 0 and j.measurements["ledger"]["lost"] == 0
    assert _rules(d) == before
    assert _proxies_enabled(lab) == {"writer": True, "reader": True}


def _cli(lab: LabState, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgproof.cli", *args], capture_output=True,
                          text=True, env=_env(lab), cwd=REPO, timeout=240, **kw)


def test_sigkill_mid_partition_then_recover_deletes_the_rule(azure: Target, lab: LabState,
                                                             tmp_path: Path) -> None:
    d = AzureDriver(azure)
    before = _rules(d)
    proc = subprocess.Popen([sys.executable, "-m", "pgproof.cli", "gameday", "partition", "--target",
                             "lab-azure", "--reports", str(tmp_path), "--baseline", "2", "--users", "4"],
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
    rec = record.FaultRecord.load(azure)
    assert rec is not None and [f["kind"] for f in rec.faults] == ["nsg_deny_rule"]
    rule = rec.faults[0]["data"]["rule"]
    time.sleep(azure.chaos.duration_s + 2)  # the runner's own restore timer died with it
    assert rule in "".join(_rules(d)) and _rules(d) != before
    assert _proxies_enabled(lab) == {"writer": False, "reader": False}  # the bridge cut the lab
    done = _cli(lab, "gameday", "recover", "--target", "lab-azure")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"deleted NSG deny rule {rule}" in done.stdout
    assert _rules(d) == before and record.FaultRecord.load(azure) is None
    assert _proxies_enabled(lab) == {"writer": True, "reader": True}
    journal = json.loads(next(tmp_path.rglob("journal.json")).read_text())
    assert journal["interrupted"] and journal["recovery"]["ok"]
    _wait_lab_steady(azure)
