"""An ARM-shaped management API (plus a Key Vault data plane) over HTTPS: the lab's Azure twin.

Why a generic store and not one handler per operation: every resource the
probes read follows the same ARM resource-id grammar (Azure REST API
guidelines, "Resource IDs"): ``PUT`` creates or replaces the resource at its
id, ``PATCH`` merges, ``GET`` on an id returns it and on a collection returns
``{"value": [...]}``, ``DELETE`` removes it, and unknown ids answer 404 with
the ARM error envelope ``{"error": {"code", "message"}}``. The shapes of the
bodies themselves come from the fixtures in ``azure_spec`` (written after the
published azure-rest-api-specs examples), provisioned through the real SDKs.

Served over HTTPS with the lab CA: azure-core's bearer-token policy refuses
plain HTTP. A request without a bearer token answers 401, as ARM
does. Started with a token (the lab's: a random one in a 0600 file of the lab's
owner), only that token is accepted and any other answers 401
InvalidAuthenticationToken: the vault holds the server's admin password and the
port is open to every local user. Without one (a twin for tests), any token is. A token listed in ``deny`` (a file beside the
state) answers 403 AuthorizationFailed for the named resource types, so the
"no read permission on one resource type" path can be exercised.
"""

from __future__ import annotations

import copy
import hmac
import json
import os
import re
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pgproof.lab import azure_bridge

_STORE_LOCK = threading.Lock()
# Key Vault data plane on its own port (the SDK parses ids as <vault root>/keys/<name>/<version>):
# keys and secrets with versions (API 7.5, keys.json /
# secrets.json operations GetKey, UpdateKey, GetKeyRotationPolicy, UpdateKeyRotationPolicy,
# CreateKey, SetSecret, GetSecret, UpdateSecret).
KV = re.compile(r"^/(?P<kind>keys|secrets)/(?P<name>[^/]+)(?:/(?P<rest>[^/]*))?$")


def arm_type(rid: str) -> str:
    """``Microsoft.X/a/b`` from ``/subscriptions/s/resourceGroups/g/providers/Microsoft.X/a/n/b/m``."""
    parts = rid.strip("/").split("/")
    if "providers" not in parts:
        return "Microsoft.Resources/resourceGroups" if len(parts) == 4 else "Microsoft.Resources/subscriptions"
    i = len(parts) - 1 - parts[::-1].index("providers")
    tail = parts[i + 1:]
    return "/".join([tail[0], *tail[1::2]])


class Store:
    """Resources by lower-cased id (ARM ids are case-insensitive), with their original spelling."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.items: dict[str, dict[str, Any]] = {}
        self.actions: list[dict[str, Any]] = []
        if path and path.exists():
            doc = json.loads(path.read_text())
            self.items, self.actions = doc["items"], doc.get("actions", [])

    def save(self) -> None:
        """Atomically, owner-only: the store holds the vault's secret values."""
        if self.path:
            tmp = self.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(json.dumps({"items": self.items, "actions": self.actions}))
            tmp.replace(self.path)

    def put(self, rid: str, body: dict[str, Any]) -> dict[str, Any]:
        rid = rid.rstrip("/")
        name = rid.split("/")[-1]
        rec = {**body, "id": rid, "name": name, "type": arm_type(rid)}
        props = rec.get("properties")
        if isinstance(props, dict) and "/providers/" in rid and arm_type(rid).count("/") == 1:
            props.setdefault("provisioningState", "Succeeded")
        if rec["type"] == "Microsoft.DBforPostgreSQL/flexibleServers":
            _server_defaults(rec)
        if rec["type"] == "Microsoft.Network/networkSecurityGroups":
            azure_bridge.fill_rule_ids(rec)
        self.items[rid.lower()] = rec
        return rec

    def children(self, collection: str) -> list[dict[str, Any]]:
        prefix = collection.rstrip("/").lower() + "/"
        return [v for k, v in sorted(self.items.items())
                if k.startswith(prefix) and "/" not in k[len(prefix):]]


def merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396): ARM PATCH semantics for the properties bag."""
    out = copy.deepcopy(base)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def _is_collection(parts: list[str]) -> bool:
    """A path ending in a type segment (``.../flexibleServers``), not a name."""
    if "providers" not in parts:
        return len(parts) % 2 == 1
    tail = parts[::-1].index("providers")  # segments after the last "providers"
    return tail % 2 == 0


def _server_defaults(rec: dict[str, Any]) -> None:
    """Read-only facts ARM computes for a flexible server (Servers_Get response, 2024-08-01)."""
    props = rec.setdefault("properties", {})
    props.setdefault("state", "Ready")
    props.setdefault("fullyQualifiedDomainName", f"{rec['name']}.postgres.database.azure.com")
    backup = props.setdefault("backup", {})
    # Real answers carry 7 fractional digits ("2021-05-26T01:16:58.3723361+00:00", recorded).
    backup.setdefault("earliestRestoreDate", time.strftime("%Y-%m-%dT%H:%M:%S.1234567+00:00",
                                                           time.gmtime(time.time() - 3600)))
    ha = props.get("highAvailability") or {}
    if ha.get("mode") not in (None, "Disabled"):
        ha.setdefault("state", "Healthy")


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class Handler(BaseHTTPRequestHandler):
    server: ArmServer
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: one line per request to the log
        self.server.log(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", str(uuid.uuid4()))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw.strip() else {}

    def _dispatch(self) -> None:
        path = re.sub(r"/{2,}", "/", urlsplit(self.path).path)
        auth = self.headers.get("Authorization", "")
        vault = self.server.vault
        if vault and not auth:
            # Key Vault's challenge: the SDK first asks without a token, then authenticates.
            self._body()
            return self._send(401, _error("Unauthorized", "AKV10000: Request is missing a Bearer "
                                          "or PoP token."), {"WWW-Authenticate": (
                'Bearer authorization="https://login.microsoftonline.com/lab", '
                'resource="https://vault.azure.net"')})
        if not auth.startswith("Bearer "):
            return self._send(401, _error("AuthenticationFailed", "Authentication failed. The "
                                          "'Authorization' header is missing."))
        token = auth.removeprefix("Bearer ")
        if self.server.token and not hmac.compare_digest(token.encode(), self.server.token.encode()):
            self._body()
            return self._send(401, _error("InvalidAuthenticationToken", "The access token is "
                                          "invalid."))
        denied = self.server.denied_types(token)
        rtype = arm_type(path) if path.startswith("/subscriptions/") else "Microsoft.KeyVault/data"
        if any(rtype.lower().startswith(d.lower()) for d in denied):
            self._body()
            return self._send(403, _error("AuthorizationFailed", f"The client does not have "
                                          f"authorization to perform action '{rtype}/read' over "
                                          f"scope '{path}'."))
        self._extra: dict[str, str] = {}
        with _STORE_LOCK:
            m = KV.match(path) if vault else None
            if vault and m is None:
                status, body = 400, _error("BadParameter", f"{path} is not a Key Vault operation")
            else:
                status, body = (self._kv(m, vault) if m else self._arm(path))
            if (not vault and self.command in ("PUT", "PATCH", "DELETE") and status < 300
                    and "/microsoft.network/" in path.lower()):
                self.server.network_changed()
            self.server.store.save()
        headers = self._extra  # an operation's own headers (restart with failover, its status)
        if (not headers and not vault and self.command in ("PUT", "PATCH", "POST") and status == 200
                and "/Microsoft.DBforPostgreSQL/" in path):
            # Long-running on the real service (202 + Location, Servers_Create 2024-08-01); the
            # location answers at once, and Retry-After: 0 keeps the SDK's poller from sleeping.
            status = 202
            where = path.rsplit("/", 1)[0] if self.command == "POST" else path
            headers = {"Location": f"{self.server.url}{where}?api-version=poll", "Retry-After": "0"}
        self._send(status, body if status != 202 else None, headers)

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST = _dispatch

    # -- ARM ----------------------------------------------------------------------------------
    def _arm(self, path: str) -> tuple[int, Any]:
        store, method = self.server.store, self.command
        body = self._body() if method in ("PUT", "PATCH", "POST") else {}
        path = path.rstrip("/")
        key = path.lower()
        parts = path.strip("/").split("/")
        missing = self._missing_scope(parts)
        if missing and method != "PUT":
            return 404, missing
        if method == "GET":
            op = azure_bridge.operation(store.items, path)
            if op is not None:
                self._extra = op[2]
                return op[0], op[1]
        rule = azure_bridge.security_rule(store.items, method, path, body)
        if rule is not None:
            return rule
        if method == "POST":
            return self._action(path, body)
        if method == "PUT":
            return 200, store.put(path, body)  # every pinned SDK accepts 200 for create-or-update
        if method == "PATCH":
            if key not in store.items:
                return 404, self._not_found(path)
            rec = merge(store.items[key], body)
            store.items[key] = rec
            return 200, rec
        if method == "DELETE":
            gone = store.items.pop(key, None)
            for k in [k for k in store.items if k.startswith(key + "/")]:
                del store.items[k]
            # Microsoft.DBforPostgreSQL deletes are long-running (202/204 only, FirewallRules_Delete).
            pg = "/microsoft.dbforpostgresql/" in key
            return (200 if gone and not pg else 204), None
        if key in store.items:
            return 200, store.items[key]
        if _is_collection(parts):
            return 200, {"value": store.children(path)}
        return 404, self._not_found(path)

    def _missing_scope(self, parts: list[str]) -> dict[str, Any] | None:
        items = self.server.store.items
        if len(parts) >= 2 and f"/subscriptions/{parts[1]}".lower() not in items:
            return _error("SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found.")
        if len(parts) >= 4 and parts[2].lower() == "resourcegroups" and \
                "/".join(["", *parts[:4]]).lower() not in items:
            return _error("ResourceGroupNotFound", f"Resource group '{parts[3]}' could not be found.")
        return None

    def _not_found(self, path: str) -> dict[str, Any]:
        return _error("ResourceNotFound", f"The Resource '{arm_type(path)}/{path.split('/')[-1]}' "
                      f"under resource group '{path.split('/')[4] if path.count('/') > 4 else ''}' "
                      f"was not found.")

    def _action(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """Server actions (Servers_Restart / Servers_Stop / Servers_Start, spec 2024-08-01)."""
        target, action = path.rsplit("/", 1)
        rec = self.server.store.items.get(target.lower())
        if rec is None:
            return 404, self._not_found(target)
        self.server.store.actions.append({"at": time.time(), "id": target, "action": action,
                                          "body": body})
        props = rec.setdefault("properties", {})
        if action == "stop":
            props["state"] = "Stopped"
        elif action == "start":
            props["state"] = "Ready"
        elif action == "restart" and (body.get("restartWithFailover")
                                      or (body.get("failoverMode") or "").endswith("Failover")):
            return self._failover(rec, body)
        return 200, None

    def _failover(self, rec: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        """Servers_Restart with failover (2026-10-01): 202 + Azure-AsyncOperation; see azure_bridge."""
        props = rec["properties"]
        ha = props.get("highAvailability") or {}
        if ha.get("mode") not in ("ZoneRedundant", "SameZone"):
            # The twin's wording: the service refuses a failover without a standby.
            return 400, _error("HighAvailabilityNotEnabled", f"Server '{rec['name']}' has no "
                               "high availability standby to fail over to.")
        if props.get("state") != "Ready" or ha.get("state") != "Healthy":
            return 409, _error("ServerBusy", f"Server '{rec['name']}' is {props.get('state')} "
                               f"(standby {ha.get('state')}); another operation is in progress.")
        items = self.server.store.items
        key, self._extra = azure_bridge.start_operation(items, self.server.url, rec["id"],
                                                        str(rec.get("location") or "eastus"))
        props["state"], ha["state"] = "Restarting", "FailingOver"
        mode = str(body.get("failoverMode") or "ForcedFailover")
        self.server.on_failover(rec, items[key], mode)
        return 202, None

    # -- Key Vault data plane -----------------------------------------------------------------
    def _kv(self, m: re.Match[str], vault: str) -> tuple[int, Any]:
        store, method = self.server.store, self.command
        body = self._body() if method in ("PUT", "PATCH", "POST") else {}
        kind, name, rest = m["kind"], m["name"], m["rest"] or ""
        base = f"{self.server.url}/{kind}/{name}"
        latest_key = f"kv/{vault}/{kind}/{name}".lower()
        cur = store.items.get(latest_key)
        if kind == "keys" and rest == "rotationpolicy":
            pkey = latest_key + "/rotationpolicy"
            if method == "PUT":
                store.items[pkey] = {**body, "id": base + "/rotationpolicy"}
            pol = store.items.get(pkey)
            if pol is None:
                return 404, _error("KeyNotFound", f"A rotation policy for key {name} was not found.")
            return 200, pol
        now = int(time.time())
        if method in ("PUT", "POST"):  # SetSecret / CreateKey: a new version
            version = uuid.uuid4().hex
            attrs = {"enabled": True, **(body.get("attributes") or {}), "created": now, "updated": now}
            rec: dict[str, Any] = {"attributes": attrs, "tags": body.get("tags")}
            if kind == "secrets":
                rec.update(id=f"{base}/{version}", value=body.get("value"),
                           contentType=body.get("contentType"))
            else:
                rec["key"] = {"kid": f"{base}/{version}", "kty": body.get("kty", "RSA"),
                              "key_ops": body.get("key_ops") or ["wrapKey", "unwrapKey"],
                              "n": "sw", "e": "AQAB"}
            store.items[latest_key] = rec
            return 200, rec
        if cur is None:
            code = "SecretNotFound" if kind == "secrets" else "KeyNotFound"
            return 404, _error(code, f"A {kind[:-1]} with (name/id) {name} was not found in "
                               f"this key vault.")
        if method == "PATCH":
            cur["attributes"] = {**cur["attributes"], **(body.get("attributes") or {}),
                                 "updated": now}
            if "tags" in body:
                cur["tags"] = body["tags"]
        return 200, cur


class ArmServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, cert: Path, key: Path, store: Store, log: Path | None = None,
                 deny_file: Path | None = None, vault: str = "", token: str = "") -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.vault = vault  # non-empty: this listener is that vault's data plane
        self.token = token  # non-empty: the only bearer token served
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cert), str(key))
        self.socket = ctx.wrap_socket(self.socket, server_side=True)
        self.store = store
        self.url = f"https://127.0.0.1:{self.server_address[1]}"
        self._log = log
        self.deny_file = deny_file
        self.bridge: azure_bridge.Bridge | None = None

    def log(self, line: str) -> None:
        if self._log:
            with self._log.open("a") as fh:
                fh.write(line + "\n")

    def denied_types(self, token: str) -> list[str]:
        if not (self.deny_file and self.deny_file.exists()):
            return []
        denied: list[str] = json.loads(self.deny_file.read_text()).get(token, [])
        return denied

    def network_changed(self) -> None:
        """After a Microsoft.Network change: the bridge re-decides the lab's client path."""
        if self.bridge is None:
            return
        try:
            self.bridge.sync_client_path(self.store.items)
        except Exception as exc:  # noqa: BLE001 - logged; the ARM call itself succeeded
            self.log(f"client-path sync failed: {exc}")

    def on_failover(self, rec: dict[str, Any], op: dict[str, Any], mode: str) -> None:
        """The lab bridge fails Patroni over in a thread; unbridged, the failover completes now."""
        self.log(f"{mode} of {rec['id']}")
        if self.bridge is None or not self.bridge.failover(_STORE_LOCK, self.store.save, rec, op, mode):
            azure_bridge.finish(rec, op, None)


def make_servers(ports: tuple[int, int], cert: Path, key: Path, state_file: Path | None,
                 subscription: str, vault: str, log: Path | None = None,
                 deny_file: Path | None = None,
                 lab_state: Path | None = None, token: str = "") -> tuple[ArmServer, ArmServer]:
    """ARM on ``ports[0]`` holding ``subscription`` (any other is SubscriptionNotFound) and the
    data plane of Key Vault ``vault`` on ``ports[1]``, sharing one store; ``token``, if
    given, is the only bearer token either accepts."""
    store = Store(state_file)
    store.items.setdefault(f"/subscriptions/{subscription}".lower(), {
        "id": f"/subscriptions/{subscription}", "subscriptionId": subscription,
        "displayName": "pgproof lab", "state": "Enabled"})
    arm = ArmServer(ports[0], cert, key, store, log, deny_file, token=token)
    if lab_state is not None:  # bridged: the lab's Patroni and client path behind the twin
        arm.bridge = azure_bridge.Bridge(lab_state)
    return arm, ArmServer(ports[1], cert, key, store, log, deny_file, vault=vault, token=token)


if __name__ == "__main__":  # the lab's twin process: python -m pgproof.lab.azure_arm ARM KV ...
    import sys

    a = sys.argv[1:]  # ... LOG DENY [LAB_STATE [TOKEN_FILE]]
    arm, kv = make_servers((int(a[0]), int(a[1])), Path(a[2]), Path(a[3]), Path(a[4]), a[5], a[6],
                           Path(a[7]), Path(a[8]), Path(a[9]) if len(a) > 9 else None,
                           Path(a[10]).read_text().strip() if len(a) > 10 else "")
    threading.Thread(target=kv.serve_forever, daemon=True).start()
    arm.serve_forever()
