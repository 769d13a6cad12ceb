"""The Azure driver: Azure Database for PostgreSQL flexible server faults through ARM (pinned SDKs).

What it can do is what Azure offers: a restart with failover
(``servers.begin_restart`` with ``RestartParameter(restart_with_failover=True,
failover_mode=...)``, Microsoft.DBforPostgreSQL 2026-10-01 Servers_Restart):
``ForcedFailover`` (the service terminates the primary's database process, then
fails over: the closest Azure has to a crash) for kill-primary, and
``PlannedFailover`` (graceful) for force-failover, both only on a zone-redundant
HA server; a partition as one NSG deny rule (``faults.azure_nsg``); latency on the
client path through a Toxiproxy beside the load generator (``faults.client_proxy``,
driver-independent). Everything it observes is the control plane's view (server
state, HA state, primary and standby zones); it never logs in to the database, so
``steady()`` says nothing about whether writes succeed: the failover clock and the
write ledger measure that.

The lab's ARM twin bridges a restart with failover to a real Patroni failover
and an NSG deny rule to a cut client path (``lab.azure_bridge``), so a whole
Azure game day runs on the lab. Only real Azure proves the timings.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import threading
import time
import uuid
from contextlib import AbstractContextManager, ExitStack
from typing import Any

from pgproof.errors import UserError
from pgproof.faults import azure_nsg, client_proxy
from pgproof.faults.base import FaultUndoError, Undo, fault
from pgproof.faults.protocol import FaultDriver
from pgproof.target import Target

RESTART = ("restart with failover: `servers.begin_restart(restart_with_failover=True, "
           "failover_mode=\"{mode}\")` on the zone-redundant server; Azure offers no way to crash "
           "a host, so this is not a SIGKILL")
MODES = {"kill_primary": "ForcedFailover", "force_failover": "PlannedFailover"}


def _parse(rid: str) -> dict[str, str]:
    """ARM id segments by lower-cased type: {"resourcegroups": "rg", "subnets": "db", ...}."""
    parts = rid.strip("/").split("/")
    return {parts[i].lower(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}


class AzureDriver(client_proxy.ClientPathLatency, FaultDriver):
    """One flexible server (``azure.server_name``); the app tier is ``azure.app_subnet_id``."""

    name = "azure"
    UNSUPPORTED = {
        "crash_postmaster": "there is no access to a flexible server's processes",
        "synchronous": "zone-redundant HA replication is synchronous and not switchable",
        "snapshot": "the azure driver cannot take a snapshot yet (lab: pgBackRest backup; aws: "
                    "RDS snapshot)",
    }
    FAULT_TEXT = {
        "kill_primary": RESTART.format(mode="ForcedFailover"),
        "force_failover": RESTART.format(mode="PlannedFailover"),
        "latency": client_proxy.LATENCY_TEXT,
        "partition_primary": "NSG deny rule: one inbound Deny rule on the DB subnet's network "
                             "security group (app subnet -> DB ports 5432/6432, smallest free "
                             "priority, ahead of the rule admitting the app tier), held "
                             "{duration_s:.0f} s, then deleted; the NSG's rules compared before/after",
    }
    STEADY_TEXT = "control plane: server Ready, highAvailability ZoneRedundant and Healthy"
    SCENARIO_OVERRIDES = {
        "kill-primary": {"description": "forced failover of the primary under load (Azure has no "
                         "host to crash: servers.begin_restart ForcedFailover)"},
        "force-failover": {"description": "planned failover through the control plane "
                           "(servers.begin_restart PlannedFailover) under load"},
        "latency": {"description": "200 ms (+/- 20 ms) latency on the client path (a Toxiproxy "
                    "beside the load generator) under load"},
        "partition": {"description": "cut the app subnet off from the database (an NSG deny rule "
                      "on the DB ports) for chaos.duration_s, then delete it; writes must resume "
                      "and none may be lost", "split_brain_check": False},
    }

    def __init__(self, target: Target, wait_timeout_s: float = 900, poll_s: float = 2) -> None:
        if target.azure is None:
            raise UserError(f"target {target.name!r} has no [targets.{target.name}.azure] section; "
                            "chaos.driver = \"azure\" needs its subscription, resource group and server")
        from pgproof.probes.azure_sdk import Clients

        self.target, self.az = target, target.azure
        self.group, self.server = self.az.resource_group, self.az.server_name
        self.wait_timeout_s, self.poll_s = wait_timeout_s, poll_s
        self.c = Clients(self.az)
        self.evidence: list[dict[str, Any]] = []  # one entry per failover this driver asked for
        self._require_resource()

    def _require_resource(self) -> None:
        """A mistyped name or missing credentials is bad input: say so before the game day starts."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
        )

        try:
            self._server()
        except ClientAuthenticationError as exc:
            raise UserError(f"targets.{self.target.name}.azure: no usable Azure credentials "
                            f"({str(exc).splitlines()[0][:160]})") from None
        except ResourceNotFoundError:
            raise UserError(f"targets.{self.target.name}.azure.server_name: flexible server "
                            f"{self.server!r} does not exist in resource group {self.group!r} of "
                            f"subscription {self.az.subscription_id}") from None
        except (HttpResponseError, OSError):
            pass  # throttling or an unreachable endpoint: steady() records it in the journal

    # -- describe -----------------------------------------------------------------------------
    def _server(self) -> dict[str, Any]:
        from pgproof.probes.azure_inventory import raw

        return raw(self.c.pg.servers.get(self.group, self.server))

    @staticmethod
    def _ha(rec: dict[str, Any]) -> dict[str, Any]:
        p = rec.get("properties") or {}
        ha = p.get("highAvailability") or {}
        return {"state": p.get("state"), "ha_mode": ha.get("mode"), "ha_state": ha.get("state"),
                "zone": p.get("availabilityZone"), "standby_zone": ha.get("standbyAvailabilityZone")}

    def steady(self, require_sync: bool = True) -> tuple[bool, str]:
        """Control plane only; zone-redundant HA commits synchronously by design (no mode to require)."""
        h = self._ha(self._server())
        ok = h["state"] == "Ready" and h["ha_mode"] == "ZoneRedundant" and h["ha_state"] == "Healthy"
        return ok, (f"server {self.server} {h['state']}, HA {h['ha_mode']}/{h['ha_state']}, primary "
                    f"zone {h['zone']}, standby zone {h['standby_zone']} (control-plane view only; "
                    "writes are measured by the failover clock)")

    def leader(self) -> str | None:
        """The primary's availability zone: the identity a zone-redundant failover changes."""
        zone = self._ha(self._server())["zone"]
        return f"zone {zone}" if zone else None

    def timeline(self) -> int | None:
        """Unknown: ARM exposes no failover counter (the Activity Log is not read here)."""
        return None

    def promotion_times(self, node: str, since: float) -> dict[str, Any]:
        """What this driver saw of its last failover: when ARM accepted it, finished, and the zones."""
        return dict(self.evidence[-1]) if self.evidence else {}

    def versions(self) -> dict[str, str]:
        p = self._server().get("properties") or {}
        return {"driver": self.name,
                "azure-mgmt-postgresqlflexibleservers": md.version("azure-mgmt-postgresqlflexibleservers"),
                "azure-mgmt-network": md.version("azure-mgmt-network"),
                "engine_version": f"{p.get('version')}.{p.get('minorVersion')}"}

    def active_faults(self) -> list[str]:
        h = self._ha(self._server())
        return [] if h["state"] == "Ready" else [f"server {self.server} is {h['state']!r}, not 'Ready'"]

    def node_conninfo(self, node: str) -> dict[str, Any]:
        raise NotImplementedError("the azure driver cannot reach the HA standby directly (it has no "
                                  "endpoint of its own); no split-brain probe on Azure")

    # -- faults -------------------------------------------------------------------------------
    def why_not(self, method: str) -> str | None:
        """Refusals that depend on the server and the target, asked before anything starts."""
        if method in MODES:
            h = self._ha(self._server())
            if h["ha_mode"] != "ZoneRedundant":
                return (f"server {self.server} has highAvailability.mode = {h['ha_mode'] or 'Disabled'}; "
                        "a failover game day needs ZoneRedundant HA (a standby in another zone)")
        if method == "partition_primary" and not (self.az.app_subnet_id or self.target.chaos.app_cidrs):
            return (f"an NSG deny rule needs the app tier: set targets.{self.target.name}"
                    ".azure.app_subnet_id or chaos.app_cidrs")
        return None

    def _wait_ready(self, zone_before: str | None = None) -> dict[str, Any]:
        """Until Ready + Healthy (and, after a failover, the primary in another zone)."""
        deadline = time.monotonic() + self.wait_timeout_s
        h: dict[str, Any] = {}
        while True:
            with contextlib.suppress(Exception):  # a throttled GET is retried, not fatal
                h = self._ha(self._server())
                if h["state"] == "Ready" and h["ha_state"] == "Healthy" and (
                        zone_before is None or h["zone"] != zone_before):
                    return h
            if time.monotonic() >= deadline:
                raise FaultUndoError(
                    f"server {self.server} is {h.get('state')!r} (standby {h.get('ha_state')!r}, "
                    f"primary zone {h.get('zone')}) {self.wait_timeout_s:.0f} s after the failover",
                    f"server {self.server} not Ready", self._manual_fix())
            time.sleep(self.poll_s)

    def _manual_fix(self) -> str:
        return (f"watch `az postgres flexible-server show -g {self.group} -n {self.server}` and the "
                "Activity Log; if it stays unavailable open an Azure support request")

    def _failover(self, mode: str) -> None:
        """Ask for the failover, wait for ARM's operation, then for Ready with the zones swapped.

        Returning only when the server is Ready again (as Patroni's /failover blocks) keeps
        the clock's "first failure, then first success" from reading a not-yet-started
        failover as instant recovery.
        """
        from azure.mgmt.postgresqlflexibleservers.models import RestartParameter

        why = self.why_not("kill_primary")
        if why:
            raise RuntimeError(why)
        before = self._ha(self._server())
        ev: dict[str, Any] = {"mode": mode, "before": before, "asked_at": time.time()}
        self.evidence.append(ev)
        poller = self.c.pg.servers.begin_restart(
            self.group, self.server, parameters=RestartParameter(
                restart_with_failover=True, failover_mode=mode), polling_interval=1)
        poller.result(timeout=self.wait_timeout_s)
        ev["operation_done_at"] = time.time()
        ev["after"] = self._wait_ready(before["zone"])
        ev["ready_at"] = time.time()

    def _fault(self, method: str, undo_stack: ExitStack | None) -> AbstractContextManager[None]:
        undo = Undo(self._wait_ready, f"server {self.server} may still be failing over",
                    self._manual_fix())
        return fault(undo, lambda: self._failover(MODES[method]), undo_stack)

    def kill_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """ForcedFailover: the service terminates the primary's database process, then fails over."""
        return self._fault("kill_primary", undo_stack)

    def force_failover(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """PlannedFailover: a graceful failover to the standby in the other zone."""
        return self._fault("force_failover", undo_stack)

    def crash_postmaster(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        raise NotImplementedError("crash_postmaster is not possible on Azure: there is no access "
                                  "to a flexible server's processes")

    def synchronous(self, on: bool) -> AbstractContextManager[None]:
        raise NotImplementedError("zone-redundant HA replication is synchronous and not switchable")

    # -- partition: one NSG deny rule ------------------------------------------------------------
    def _subnet(self, rid: str) -> dict[str, Any]:
        from pgproof.probes.azure_inventory import raw

        p = _parse(rid)
        return raw(self.c.network.subnets.get(p["resourcegroups"], p["virtualnetworks"], p["subnets"]))

    def nsg(self, nsg_id: str) -> dict[str, Any]:
        from pgproof.probes.azure_inventory import raw

        p = _parse(nsg_id)
        return raw(self.c.network.network_security_groups.get(p["resourcegroups"],
                                                              p["networksecuritygroups"]))

    def partition_plan(self) -> dict[str, Any]:
        """Where the deny rule goes: {nsg_id, src, dst, priority, rule, rule_id}; raises why not."""
        net = (self._server().get("properties") or {}).get("network") or {}
        subnet_id = net.get("delegatedSubnetResourceId")
        if not subnet_id:
            raise RuntimeError(f"server {self.server} is not VNet-integrated (no delegated subnet): "
                               "there is no subnet NSG to put a deny rule on")
        db = self._subnet(subnet_id).get("properties") or {}
        nsg_id = (db.get("networkSecurityGroup") or {}).get("id")
        if not nsg_id:
            raise RuntimeError(f"the DB subnet {subnet_id.rsplit('/', 1)[-1]} has no network security "
                               "group to put a deny rule on")
        if self.az.app_subnet_id:
            app = self._subnet(self.az.app_subnet_id).get("properties") or {}
            src = app.get("addressPrefix") or (app.get("addressPrefixes") or [None])[0]
        else:
            src = self.target.chaos.app_cidrs[0]
        dst = db.get("addressPrefix") or (db.get("addressPrefixes") or ["*"])[0]
        nsg = self.nsg(nsg_id)
        priority, why = azure_nsg.free_priority(nsg, src, dst)
        if priority is None:
            raise RuntimeError(f"network security group {nsg_id.rsplit('/', 1)[-1]}: {why}")
        name = f"{azure_nsg.RULE_PREFIX}{uuid.uuid4().hex[:8]}"
        return {"nsg_id": nsg_id, "src": src, "dst": dst, "priority": priority, "rule": name,
                "rule_id": f"{nsg_id}/securityRules/{name}", "before": azure_nsg.snapshot(nsg)}

    def _delete_rule(self, data: dict[str, Any]) -> bool:
        """Delete exactly the recorded rule; True when it existed. Then the rules must equal before."""
        p = _parse(data["nsg_id"])
        nsg = self.nsg(data["nsg_id"])
        had = any(r.get("name") == data["rule"] for r in (nsg.get("properties") or {}).get("securityRules") or [])
        if had:
            self.c.network.security_rules.begin_delete(p["resourcegroups"], p["networksecuritygroups"],
                                                       data["rule"], polling_interval=1).result()
        after = azure_nsg.snapshot(self.nsg(data["nsg_id"]))
        if after != data["before"]:
            raise RuntimeError(f"rules of {p['networksecuritygroups']} differ from before the fault: "
                               f"{sorted(set(after) ^ set(data['before']))}")
        return had

    def partition_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Add the deny rule for ``chaos.duration_s``; a timer and the undo delete exactly that rule."""
        data = self.partition_plan()
        p = _parse(data["nsg_id"])
        lock, timer = threading.Lock(), []

        def restore() -> None:
            with lock:
                self._delete_rule(data)

        def quiet_restore() -> None:
            with contextlib.suppress(Exception):  # the undo at the end retries and reports
                restore()

        def act() -> None:
            rule = azure_nsg.deny_rule(data["rule"], data["src"], data["dst"], data["priority"])
            from pgproof.probes.azure_sdk import body

            with lock:
                self.c.network.security_rules.begin_create_or_update(
                    p["resourcegroups"], p["networksecuritygroups"], data["rule"], body(rule),
                    polling_interval=1).result()
            timer.append(threading.Timer(self.target.chaos.duration_s, quiet_restore))
            timer[0].daemon = True
            timer[0].start()

        def undo() -> None:
            for t in timer:
                t.cancel()
            restore()

        what = f"NSG deny rule {data['rule_id']} ({azure_nsg.describe(azure_nsg.deny_rule('', data['src'], data['dst'], data['priority']))})"
        fix = (f"az network nsg rule delete -g {p['resourcegroups']} --nsg-name "
               f"{p['networksecuritygroups']} -n {data['rule']}")
        return fault(Undo(undo, what, fix), act, undo_stack, durable=("nsg_deny_rule", data))

    def undo_recorded(self, kind: str, data: dict[str, Any]) -> str:
        """Undo one durably recorded fault of this driver (after the runner died); idempotent."""
        done = client_proxy.undo_recorded(kind, data)
        if done is not None:
            return done
        if kind == "nsg_deny_rule":
            had = self._delete_rule(data)
            return (f"deleted NSG deny rule {data['rule']} (rules equal to before the fault)" if had
                    else f"NSG deny rule {data['rule']} was already gone (rules equal to before the fault)")
        raise ValueError(f"the azure driver cannot undo a recorded {kind!r}")
