"""The ARM twin with the live lab bridged in: a restart with failover and an NSG rule act on processes.

Plain, the twin stores resources. Bridged (``lab up --cloud azure`` passes the
lab's state directory), its flexible server *is* the lab's Patroni cluster:

- ``Servers_Restart`` with ``restartWithFailover`` on an HA server answers
  202 with ``Azure-AsyncOperation`` and ``Location`` headers, as the service
  does (Microsoft.DBforPostgreSQL 2026-10-01 Servers_Restart, long-running,
  202); the server shows ``state = Restarting`` and ``highAvailability.state =
  FailingOver`` while Patroni fails over (``ForcedFailover``: REST
  ``/failover``; ``PlannedFailover``: ``/switchover`` naming the leader), then
  ``Ready``/``Healthy`` with ``availabilityZone`` and
  ``standbyAvailabilityZone`` swapped, and the operation ``Succeeded`` (or
  ``Failed`` with the reason, zones unchanged);
- after any Microsoft.Network change, the DB subnet's NSG is evaluated for
  the flow app subnet -> DB subnet on 5432 with ``faults.azure_nsg.admits``
  (the documented first-match-by-priority semantics); if it no longer admits
  the app tier, the lab's client->writer and client->reader Toxiproxy proxies
  are disabled, and re-enabled once it does again. State, not events: any
  order of calls converges.

Unbridged (unit tests, a twin without a lab), a restart with failover completes
at once with the zones swapped. Security rules are child resources as on ARM
(SecurityRules_CreateOrUpdate / _Get / _Delete / _List, Microsoft.Network
2024-05-01): a PUT or DELETE of ``.../networkSecurityGroups/n/securityRules/r``
edits the parent's ``properties.securityRules``, which NetworkSecurityGroups_Get returns.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("pgproof.azure_bridge")
FAILOVER_TIMEOUT_S = 90.0
RULE = re.compile(r"^(?P<nsg>/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.network/"
                  r"networksecuritygroups/[^/]+)/securityrules(?:/(?P<name>[^/]+))?$")
OPS = re.compile(r"/providers/microsoft\.dbforpostgresql/locations/[^/]+/"
                 r"(?P<kind>azureasyncoperation|operationresults)/(?P<id>[^/]+)$")
RULE_TYPE = "Microsoft.Network/networkSecurityGroups/securityRules"


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


# -- security rules as child resources ---------------------------------------------------------
def fill_rule_ids(rec: dict[str, Any]) -> None:
    """ARM gives every rule of an NSG its own id (NetworkSecurityGroups_Get response)."""
    p = rec.get("properties") or {}
    for key, kind in (("securityRules", "securityRules"), ("defaultSecurityRules", "defaultSecurityRules")):
        for r in p.get(key) or []:
            r.setdefault("id", f"{rec['id']}/{kind}/{r.get('name')}")
            r.setdefault("type", RULE_TYPE if kind == "securityRules"
                         else "Microsoft.Network/networkSecurityGroups/defaultSecurityRules")
            (r.setdefault("properties", {})).setdefault("provisioningState", "Succeeded")


def security_rule(items: dict[str, dict[str, Any]], method: str, path: str,
                  body: dict[str, Any]) -> tuple[int, Any] | None:
    """A request on a security rule, answered from its parent NSG (None: not a rule path)."""
    m = RULE.match(path.lower())
    if m is None:
        return None
    nsg = items.get(m["nsg"])
    if nsg is None:
        return 404, _error("ResourceNotFound", f"The Resource 'Microsoft.Network/networkSecurityGroups/"
                           f"{m['nsg'].rsplit('/', 1)[-1]}' was not found.")
    rules: list[dict[str, Any]] = nsg.setdefault("properties", {}).setdefault("securityRules", [])
    name = path.rstrip("/").rsplit("/", 1)[-1] if m["name"] else None
    if name is None:
        return (200, {"value": rules}) if method == "GET" else (405, _error("MethodNotAllowed", path))
    i = next((k for k, r in enumerate(rules) if str(r.get("name")).lower() == name.lower()), None)
    if method == "GET":
        return (200, rules[i]) if i is not None else (404, _error(
            "NotFound", f"Resource {path} not found."))
    if method == "DELETE":
        if i is None:
            return 204, None
        del rules[i]
        return 200, None
    if method != "PUT":
        return 405, _error("MethodNotAllowed", f"{method} is not supported on a security rule")
    p = dict(body.get("properties") or {})
    clash = next((r for k, r in enumerate(rules) if k != i
                  and (r.get("properties") or {}).get("priority") == p.get("priority")
                  and (r.get("properties") or {}).get("direction") == p.get("direction")), None)
    if clash is not None:
        return 400, _error("SecurityRuleConflict", f"Security rule {name} conflicts with rule "
                           f"{clash.get('name')}. Rules cannot have the same Priority and Direction.")
    p["provisioningState"] = "Succeeded"
    rule = {"name": name, "id": f"{nsg['id']}/securityRules/{name}", "type": RULE_TYPE,
            "etag": f'W/"{uuid.uuid4()}"', "properties": p}
    if i is None:
        rules.append(rule)
    else:
        rules[i] = rule
    return 200, rule


# -- long-running operations ---------------------------------------------------------------------
def start_operation(items: dict[str, dict[str, Any]], base: str, server_id: str,
                    location: str) -> tuple[str, dict[str, str]]:
    """An operation record and the 202 headers pointing at it (ARM async-operation pattern)."""
    op = uuid.uuid4().hex
    sub = server_id.split("/")[2]
    root = f"/subscriptions/{sub}/providers/Microsoft.DBforPostgreSQL/locations/{location}"
    key = f"{root}/azureAsyncOperation/{op}".lower()
    items[key] = {"name": op, "status": "InProgress",
                  "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return key, {"Azure-AsyncOperation": f"{base}{root}/azureAsyncOperation/{op}?api-version=2026-10-01",
                 "Location": f"{base}{root}/operationResults/{op}?api-version=2026-10-01",
                 "Retry-After": "0"}


def operation(items: dict[str, dict[str, Any]], path: str) -> tuple[int, Any, dict[str, str]] | None:
    """GET of an operation's status (200 + status) or result (202 while running, then 204)."""
    m = OPS.search(path.lower())
    if m is None:
        return None
    key = path.lower()[:m.start("kind")] + "azureasyncoperation/" + m["id"]
    op = items.get(key)
    if op is None:
        return 404, _error("OperationNotFound", f"Operation {m['id']} was not found."), {}
    running = op["status"] == "InProgress"
    wait = {"Retry-After": "1"} if running else {}
    if m["kind"] == "azureasyncoperation":
        return 200, op, wait
    return (202, None, wait) if running else (204, None, {})


def finish(rec: dict[str, Any], op: dict[str, Any], error: str | None) -> None:
    """The server after a failover: zones swapped on success, Ready/Healthy either way."""
    p = rec.setdefault("properties", {})
    ha = p.get("highAvailability") or {}
    if error is None:
        p["availabilityZone"], ha["standbyAvailabilityZone"] = (
            ha.get("standbyAvailabilityZone"), p.get("availabilityZone"))
        op["status"] = "Succeeded"
    else:
        op["status"], op["error"] = "Failed", {"code": "InternalServerError", "message": error}
    op["endTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    p["state"], ha["state"] = "Ready", "Healthy"


# -- the lab behind the twin ---------------------------------------------------------------------
class Bridge:
    """Lab state looked up per call: the lab exists only after ``lab up`` wrote its state."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.cut = False  # whether *we* disabled the client path

    def state(self) -> Any:
        from pgproof.lab.state import LabState

        with contextlib.suppress(Exception):
            st = LabState.load(self.state_dir)
            return st if st is not None and st.azure else None
        return None

    def failover(self, lock: Any, save: Any, rec: dict[str, Any], op: dict[str, Any], mode: str) -> bool:
        """Start the Patroni failover in a thread (False: no lab behind the twin; caller finishes)."""
        st = self.state()
        if st is None:
            return False
        threading.Thread(target=self._failover, args=(st, lock, save, rec, op, mode), daemon=True).start()
        return True

    def _failover(self, st: Any, lock: Any, save: Any, rec: dict[str, Any], op: dict[str, Any],
                  mode: str) -> None:
        from pgproof.faults import patroni
        from pgproof.lab.state import NODES

        rest = [st.rest_url(n) for n in NODES]
        error = None
        try:
            lead = _poll(lambda: patroni.leader(rest), 20)
            if lead is None:
                raise RuntimeError("no Patroni leader")
            cand = next(n for n in NODES if n != lead)
            patroni.failover(st.rest_url(lead), cand, lead if mode.startswith("Planned") else None)
            if _poll(lambda: patroni.leader(rest) == cand or None, FAILOVER_TIMEOUT_S) is None:
                raise RuntimeError(f"{cand} did not become leader within {FAILOVER_TIMEOUT_S:.0f} s")
            log.info("%s of %s: %s -> %s", mode, rec["name"], lead, cand)
        except Exception as exc:  # noqa: BLE001 - reported as ARM does: a Failed operation
            error = f"failover failed; the primary was not changed: {exc}"
            log.warning("%s of %s failed: %s", mode, rec["name"], exc)
        with lock:
            finish(rec, op, error)
            save()

    def sync_client_path(self, items: dict[str, dict[str, Any]]) -> None:
        """Cut or restore the lab's client path from the DB subnet NSG's current rules."""
        st = self.state()
        if st is None:
            return
        admitted = self._admitted(st, items)
        if admitted is None or admitted == (not self.cut):
            return
        from pgproof.faults import toxiproxy

        toxiproxy.set_enabled(st.toxiproxy_url, ["writer", "reader"], admitted)
        self.cut = not admitted
        log.info("client path %s", "re-enabled" if admitted else "cut (the DB subnet's NSG denies the app subnet)")

    @staticmethod
    def _admitted(st: Any, items: dict[str, dict[str, Any]]) -> bool | None:
        from pgproof.faults import azure_nsg

        server = next((v for v in items.values()
                       if v.get("type") == "Microsoft.DBforPostgreSQL/flexibleServers"
                       and v.get("name") == st.azure.get("server_name")), None)
        if server is None:
            return None
        subnet_id = ((server.get("properties") or {}).get("network") or {}).get("delegatedSubnetResourceId")
        db = items.get(str(subnet_id).lower())
        app = items.get(str(st.azure.get("app_subnet_id")).lower())
        if db is None or app is None:
            return None
        nsg_id = ((db.get("properties") or {}).get("networkSecurityGroup") or {}).get("id")
        nsg = items.get(str(nsg_id).lower())
        if nsg is None:
            return True  # no NSG on the DB subnet: nothing filters the app tier
        src, dst = app["properties"]["addressPrefix"], db["properties"]["addressPrefix"]
        return azure_nsg.admits(nsg, src, dst, azure_nsg.DB_PORTS[0])


def _poll(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            got = check()
            if got:
                return got
        time.sleep(0.25)
    return None
