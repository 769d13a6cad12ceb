"""The read calls behind ``pgproof.probes.azure.gather``, one function per fact family.

Operations (azure-rest-api-specs names): Configurations_ListByServer,
FirewallRules_ListByServer, Subnets_Get, NetworkSecurityGroups_Get, Vaults_Get,
GetKey / GetKeyRotationPolicy / GetSecret (Key Vault data plane),
StorageAccounts_GetProperties, BlobServices_GetServiceProperties,
BlobContainers_Get, ManagementPolicies_Get, Get Container Properties (Blob
data plane), ManagementLocks_ListAtResourceLevel, MetricAlerts_ListByResourceGroup,
ActionGroups_Get, DiagnosticSettings_List, Workspaces_Get. The last four APIs
without a class in the pinned SDKs go through the resource client's pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from pgproof.probes.azure_inventory import AzureInventory, raw
from pgproof.probes.azure_sdk import Clients

Task = Callable[[], None]


def tasks(c: Clients, inv: AzureInventory) -> list[tuple[str, Task]]:
    cfg = c.cfg
    out: list[tuple[str, Task]] = [
        ("configurations", lambda: _configurations(c, inv)),
        ("firewall", lambda: _firewall(c, inv)),
        ("network", lambda: _network(c, inv)),
        ("locks", lambda: _locks(c, inv)),
        ("alerts", lambda: _alerts(c, inv)),
        ("diagnostics", lambda: _diagnostics(c, inv)),
        ("keys", lambda: _key(c, inv)),
    ]
    if cfg.key_vault:
        out.append(("keyvault", lambda: _vault(c, inv)))
    if cfg.admin_secret_name:
        out.append(("secret", lambda: _secret(c, inv)))
    if cfg.backup_storage_account:
        out.append(("storage", lambda: _storage(c, inv)))
        if cfg.backup_container:
            out.append(("blob", lambda: _blob(c, inv)))
    return out


def _configurations(c: Clients, inv: AzureInventory) -> None:
    cfg = c.cfg
    for item in c.pg.configurations.list_by_server(cfg.resource_group, cfg.server_name):
        rec = raw(item)
        inv.parameters[rec.get("name", "")] = (rec.get("properties") or {}).get("value")


def _firewall(c: Clients, inv: AzureInventory) -> None:
    cfg = c.cfg
    inv.firewall_rules = [raw(r) for r in c.pg.firewall_rules.list_by_server(
        cfg.resource_group, cfg.server_name)]


def _parse(rid: str) -> dict[str, str]:
    parts = rid.strip("/").split("/")
    return {parts[i].lower(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}


def _subnet(c: Clients, rid: str) -> dict[str, Any] | None:
    p = _parse(rid)
    try:
        return raw(c.network.subnets.get(p["resourcegroups"], p["virtualnetworks"], p["subnets"]))
    except ResourceNotFoundError:
        return None


def _network(c: Clients, inv: AzureInventory) -> None:
    """The delegated subnet, its NSG, the app subnet and any NSGs the target names."""
    net = (inv.props.get("network") or {})
    sid = net.get("delegatedSubnetResourceId")
    if sid:
        inv.subnet = _subnet(c, sid)
    if inv.app_subnet_id:
        inv.app_subnet = _subnet(c, inv.app_subnet_id)
    nsg_ids = list(c.cfg.nsg_ids)
    attached = ((inv.subnet or {}).get("properties") or {}).get("networkSecurityGroup") or {}
    if attached.get("id") and attached["id"].lower() not in [n.lower() for n in nsg_ids]:
        nsg_ids.append(attached["id"])
    for nid in nsg_ids:
        p = _parse(nid)
        try:
            inv.nsgs[nid] = raw(c.network.network_security_groups.get(
                p["resourcegroups"], p["networksecuritygroups"]))
        except ResourceNotFoundError:
            inv.nsgs[nid] = {}


def _vault(c: Clients, inv: AzureInventory) -> None:
    try:
        inv.vault = raw(c.keyvault.vaults.get(c.cfg.resource_group, c.cfg.key_vault))
    except ResourceNotFoundError:
        inv.vault = None


def _key(c: Clients, inv: AzureInventory) -> None:
    """The customer-managed key the server encrypts with, read from its own vault URI."""
    enc = inv.props.get("dataEncryption") or {}
    uri = enc.get("primaryKeyURI")
    if not uri or not c.cfg.key_vault:
        return
    name = uri.rstrip("/").split("/keys/")[-1].split("/")[0]
    try:
        key = c.keys.get_key(name)
    except ResourceNotFoundError:
        inv.key = {"name": name, "exists": False}
        return
    p = key.properties
    inv.key = {"name": name, "exists": True, "enabled": p.enabled, "expires_on": p.expires_on,
               "id": key.id}
    try:
        pol = c.keys.get_key_rotation_policy(name)
    except ResourceNotFoundError:
        inv.key_rotation = None
        return
    inv.key_rotation = {"expires_in": pol.expires_in, "actions": [
        {"action": str(getattr(a.action, "value", a.action)), "time_after_create": a.time_after_create,
         "time_before_expiry": a.time_before_expiry} for a in pol.lifetime_actions or []]}


def _secret(c: Clients, inv: AzureInventory) -> None:
    try:
        s = c.secrets.get_secret(c.cfg.admin_secret_name)
    except ResourceNotFoundError:
        inv.secret = {"exists": False}
        return
    p = s.properties
    inv.secret = {"exists": True, "enabled": p.enabled, "expires_on": p.expires_on,
                  "created_on": p.created_on, "updated_on": p.updated_on,
                  "length": len(s.value or "")}


def _storage(c: Clients, inv: AzureInventory) -> None:
    st, g, a = c.storage, c.cfg.resource_group, c.cfg.backup_storage_account
    try:
        inv.storage_account = raw(st.storage_accounts.get_properties(g, a))
    except ResourceNotFoundError:
        inv.storage_account = None
        return
    inv.blob_service = raw(st.blob_services.get_service_properties(g, a))
    if c.cfg.backup_container:
        try:
            inv.container = raw(st.blob_containers.get(g, a, c.cfg.backup_container))
        except ResourceNotFoundError:
            inv.container = None
    try:
        inv.management_policy = raw(st.management_policies.get(g, a, "default"))
    except ResourceNotFoundError:
        inv.management_policy = None


def _blob(c: Clients, inv: AzureInventory) -> None:
    """The Blob data plane's own answer on public access (Azurite in the lab)."""
    try:
        props = c.blob.get_container_client(c.cfg.backup_container).get_container_properties()
    except ResourceNotFoundError:
        inv.container_public = "missing"
        return
    inv.container_public = props.public_access or "off"


def _locks(c: Clients, inv: AzureInventory) -> None:
    doc = c.get(c.resources, f"{inv.server_id}/providers/Microsoft.Authorization/locks", "2020-05-01")
    inv.locks = doc.get("value", [])


def _alerts(c: Clients, inv: AzureInventory) -> None:
    mon = c.monitor
    alerts = [raw(a) for a in mon.metric_alerts.list_by_resource_group(c.cfg.resource_group)]
    sid = inv.server_id.lower()
    inv.metric_alerts = [a for a in alerts if sid in [s.lower() for s in
                                                      (a.get("properties") or {}).get("scopes", [])]]
    for a in inv.metric_alerts:
        for act in (a.get("properties") or {}).get("actions", []):
            gid = act.get("actionGroupId")
            if gid and gid not in inv.action_groups:
                p = _parse(gid)
                try:
                    inv.action_groups[gid] = raw(mon.action_groups.get(
                        p["resourcegroups"], p["actiongroups"]))
                except ResourceNotFoundError:
                    inv.action_groups[gid] = None


def _diagnostics(c: Clients, inv: AzureInventory) -> None:
    doc = c.get(c.resources, f"{inv.server_id}/providers/Microsoft.Insights/diagnosticSettings",
                "2021-05-01-preview")
    inv.diagnostic_settings = doc.get("value", [])
    for d in inv.diagnostic_settings:
        ws = (d.get("properties") or {}).get("workspaceId")
        if ws and ws not in inv.workspaces:
            try:
                inv.workspaces[ws] = c.get(c.resources, ws, "2022-10-01")
            except ResourceNotFoundError:
                inv.workspaces[ws] = None
