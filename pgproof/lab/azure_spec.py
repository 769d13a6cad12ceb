"""The healthy Azure deployment the twin holds, provisioned through the pinned SDKs.

Bodies are REST-shaped JSON written for pgproof after the published examples in
Azure/azure-rest-api-specs (our own fixtures, not copies):
- Microsoft.DBforPostgreSQL flexible servers (specification/postgresql/resource-manager/
  Microsoft.DBforPostgreSQL/stable, examples ServerCreate.json "create a server with VNet
  integration", ConfigurationUpdate.json, FirewallRuleCreate.json);
- Microsoft.Network (stable, VirtualNetworkCreate.json, SubnetCreateWithDelegation.json,
  NetworkSecurityGroupCreateWithRule.json);
- Microsoft.KeyVault vaults (stable, createVault.json) and the Key Vault data plane
  (keys CreateKey / UpdateKeyRotationPolicy, secrets SetSecret);
- Microsoft.Storage (stable, StorageAccountCreate.json, BlobServicesPut.json,
  BlobContainersPut.json, StorageAccountSetManagementPolicy.json);
- Microsoft.Insights (metricAlert createOrUpdateMetricAlertSingleResource.json 2018-03-01,
  actionGroups createOrUpdateActionGroup.json, diagnosticSettings createOrUpdate);
- Microsoft.Authorization management locks (2020-05-01, ManagementLocks_CreateOrUpdateAtResourceLevel);
- Microsoft.OperationalInsights workspaces (WorkspacesCreate.json, retentionInDays).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pgproof.probes.azure_sdk import Clients, body

SUBSCRIPTION = "00000000-0000-4000-8000-00000000a2e0"
GROUP = "pgproof-lab"
LOCATION = "eastus"
SERVER = "pgproof-lab-pg"
VAULT = "pgproof-lab-kv"
CMK = "pgproof-cmk"
ADMIN_SECRET = "pgproof-admin"
ACCOUNT = "pgproofbackups"
CONTAINER = "backups"
DB_PORT = 5432
ALERTS = {"cpu_percent": 80, "memory_percent": 85, "storage_percent": 80,
          "active_connections": 450, "physical_replication_delay_in_seconds": 30}
PARAMETERS = {
    "ssl_min_protocol_version": "TLSv1.2", "require_secure_transport": "on",
    "shared_preload_libraries": "pg_qs,pg_stat_statements,pgaudit", "pgaudit.log": "ddl,role",
    "log_connections": "on", "log_disconnections": "on", "log_min_duration_statement": "1000",
    "pg_qs.query_capture_mode": "top", "max_connections": "500",
    # CIS 3.1.x (LOG-*): what Azure lists for every server; the customer sets the three whose
    # defaults fail (log_error_verbosity default, log_line_prefix %t-%c-, log_statement none).
    "log_min_messages": "warning", "log_min_error_statement": "error",
    "debug_print_parse": "off", "debug_print_rewritten": "off", "debug_print_plan": "off",
    "debug_pretty_print": "on", "log_error_verbosity": "verbose",
    "log_line_prefix": "%m [%p]: db=%d,user=%u,app=%a,client=%h ", "log_statement": "ddl",
}


@dataclass(frozen=True)
class Ids:
    """Resource ids of the twin's deployment (ARM spelling)."""

    sub: str = SUBSCRIPTION

    @property
    def group(self) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{GROUP}"

    def provider(self, ns: str, rest: str) -> str:
        return f"{self.group}/providers/{ns}/{rest}"

    @property
    def server(self) -> str:
        return self.provider("Microsoft.DBforPostgreSQL", f"flexibleServers/{SERVER}")

    @property
    def vnet(self) -> str:
        return self.provider("Microsoft.Network", "virtualNetworks/pgproof-vnet")

    @property
    def db_subnet(self) -> str:
        return f"{self.vnet}/subnets/db"

    @property
    def app_subnet(self) -> str:
        return f"{self.vnet}/subnets/app"

    @property
    def nsg(self) -> str:
        return self.provider("Microsoft.Network", "networkSecurityGroups/pgproof-db-nsg")

    @property
    def dns_zone(self) -> str:
        return self.provider("Microsoft.Network",
                             "privateDnsZones/pgproof-lab.private.postgres.database.azure.com")

    @property
    def action_group(self) -> str:
        return self.provider("Microsoft.Insights", "actionGroups/pgproof-oncall")

    @property
    def workspace(self) -> str:
        return self.provider("Microsoft.OperationalInsights", "workspaces/pgproof-logs")

    @property
    def identity(self) -> str:
        return self.provider("Microsoft.ManagedIdentity", "userAssignedIdentities/pgproof-pg")


def nsg_rules(app_prefix: str = "10.20.2.0/24") -> list[dict[str, Any]]:
    """DB port from the app subnet only; everything else inbound denied before AllowVnetInBound.

    The allow rule sits at 200, not the minimum 100, leaving room above it for an emergency
    deny (the Azure game day's partition, ``faults.azure_nsg``)."""
    return [
        {"name": "allow-app-postgres", "properties": {
            "protocol": "Tcp", "sourceAddressPrefix": app_prefix, "sourcePortRange": "*",
            "destinationAddressPrefix": "10.20.1.0/24", "destinationPortRange": str(DB_PORT),
            "access": "Allow", "priority": 200, "direction": "Inbound"}},
        {"name": "deny-other-inbound", "properties": {
            "protocol": "*", "sourceAddressPrefix": "*", "sourcePortRange": "*",
            "destinationAddressPrefix": "*", "destinationPortRange": "*",
            "access": "Deny", "priority": 4000, "direction": "Inbound"}},
    ]


DEFAULT_NSG_RULES = [  # what ARM adds to every NSG (NetworkSecurityGroups_Get defaultSecurityRules)
    {"name": "AllowVnetInBound", "properties": {
        "protocol": "*", "sourceAddressPrefix": "VirtualNetwork", "sourcePortRange": "*",
        "destinationAddressPrefix": "VirtualNetwork", "destinationPortRange": "*",
        "access": "Allow", "priority": 65000, "direction": "Inbound"}},
    {"name": "AllowAzureLoadBalancerInBound", "properties": {
        "protocol": "*", "sourceAddressPrefix": "AzureLoadBalancer", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "*",
        "access": "Allow", "priority": 65001, "direction": "Inbound"}},
    {"name": "DenyAllInBound", "properties": {
        "protocol": "*", "sourceAddressPrefix": "*", "sourcePortRange": "*",
        "destinationAddressPrefix": "*", "destinationPortRange": "*",
        "access": "Deny", "priority": 65500, "direction": "Inbound"}},
]


def server_body(ids: Ids, key_uri: str, **props: Any) -> dict[str, Any]:
    return {"location": LOCATION, "sku": {"name": "Standard_D4ds_v5", "tier": "GeneralPurpose"},
            "identity": {"type": "UserAssigned", "userAssignedIdentities": {ids.identity: {}}},
            "properties": {
                "administratorLogin": "pgproofadmin", "version": "15", "minorVersion": "8",
                "storage": {"storageSizeGB": 128, "autoGrow": "Enabled"},
                "backup": {"backupRetentionDays": 14, "geoRedundantBackup": "Enabled"},
                "network": {"publicNetworkAccess": "Disabled",
                            "delegatedSubnetResourceId": ids.db_subnet,
                            "privateDnsZoneArmResourceId": ids.dns_zone},
                "highAvailability": {"mode": "ZoneRedundant", "standbyAvailabilityZone": "2"},
                "availabilityZone": "1",
                "dataEncryption": {"type": "AzureKeyVault", "primaryKeyURI": key_uri,
                                   "primaryUserAssignedIdentityId": ids.identity},
                "maintenanceWindow": {"customWindow": "Enabled", "dayOfWeek": 0,
                                      "startHour": 2, "startMinute": 0},
                **props}}


def alert_body(ids: Ids, metric: str, threshold: float) -> dict[str, Any]:
    return {"location": "global", "properties": {
        "description": f"{metric} above {threshold}", "severity": 2, "enabled": True,
        "scopes": [ids.server], "evaluationFrequency": "PT1M", "windowSize": "PT5M",
        "criteria": {"odata.type": "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria",
                     "allOf": [{"criterionType": "StaticThresholdCriterion", "name": "high",
                                "metricName": metric, "operator": "GreaterThan",
                                "metricNamespace": "Microsoft.DBforPostgreSQL/flexibleServers",
                                "threshold": threshold, "timeAggregation": "Average"}]},
        "actions": [{"actionGroupId": ids.action_group}]}}


def lifecycle_body() -> dict[str, Any]:
    return {"properties": {"policy": {"rules": [{
        "name": "archive-backups", "enabled": True, "type": "Lifecycle", "definition": {
            "filters": {"blobTypes": ["blockBlob"], "prefixMatch": [f"{CONTAINER}/"]},
            "actions": {"baseBlob": {"tierToArchive": {"daysAfterModificationGreaterThan": 30},
                                     "delete": {"daysAfterModificationGreaterThan": 400}}}}}]}}}


def provision(c: Clients, vault_uri: str) -> dict[str, str]:
    """Create the healthy deployment through the SDKs; return the ids a target names."""
    ids = Ids(c.cfg.subscription_id)
    c.resources.resource_groups.create_or_update(GROUP, body({"location": LOCATION}))
    net = c.network
    net.network_security_groups.begin_create_or_update(GROUP, "pgproof-db-nsg", body({
        "location": LOCATION, "properties": {"securityRules": nsg_rules(),
                                             "defaultSecurityRules": DEFAULT_NSG_RULES}})).result()
    net.virtual_networks.begin_create_or_update(GROUP, "pgproof-vnet", body({
        "location": LOCATION, "properties": {"addressSpace": {"addressPrefixes": ["10.20.0.0/16"]}}})).result()
    put_subnets(c, ids)
    kv = c.keyvault
    kv.vaults.begin_create_or_update(GROUP, VAULT, body({"location": LOCATION, "properties": {
        "tenantId": "00000000-0000-4000-8000-0000000000aa", "sku": {"family": "A", "name": "standard"},
        "enableSoftDelete": True, "softDeleteRetentionInDays": 90, "enablePurgeProtection": True,
        "enableRbacAuthorization": True, "vaultUri": vault_uri}})).result()
    key = c.keys.create_rsa_key(CMK, size=3072)
    put_rotation_policy(c)
    put_admin_secret(c, days=90)
    pg = c.pg
    pg.servers.begin_create_or_update(GROUP, SERVER, server_body(ids, key.id)).result()
    for name, value in PARAMETERS.items():
        pg.configurations.begin_put(GROUP, SERVER, name, {"properties": {
            "value": value, "source": "user-override"}}).result()
    put_lock(c, ids)
    _monitoring(c, ids)
    _storage(c)
    return {"server_id": ids.server, "app_subnet_id": ids.app_subnet, "nsg_id": ids.nsg}


def put_subnets(c: Clients, ids: Ids, delegated: bool = True) -> None:
    deleg = [{"name": "pg", "properties": {"serviceName": "Microsoft.DBforPostgreSQL/flexibleServers"}}]
    c.network.subnets.begin_create_or_update(GROUP, "pgproof-vnet", "db", body({"properties": {
        "addressPrefix": "10.20.1.0/24", "networkSecurityGroup": {"id": ids.nsg},
        "delegations": deleg if delegated else []}})).result()
    c.network.subnets.begin_create_or_update(GROUP, "pgproof-vnet", "app", body({"properties": {
        "addressPrefix": "10.20.2.0/24"}})).result()


def put_rotation_policy(c: Clients, after: str | None = "P90D") -> None:
    from azure.keyvault.keys import (
        KeyRotationLifetimeAction,
        KeyRotationPolicy,
        KeyRotationPolicyAction,
    )

    actions = [KeyRotationLifetimeAction(KeyRotationPolicyAction.rotate, time_after_create=after)] \
        if after else []
    c.keys.update_key_rotation_policy(CMK, KeyRotationPolicy(lifetime_actions=actions,
                                                             expires_in="P180D"))


def put_admin_secret(c: Clients, days: int | None) -> None:
    import secrets

    expires = dt.datetime.now(dt.UTC) + dt.timedelta(days=days) if days else None
    c.secrets.set_secret(ADMIN_SECRET, secrets.token_urlsafe(24), expires_on=expires,
                         content_type="postgres admin password")


def put_lock(c: Clients, ids: Ids) -> None:
    from azure.core.rest import HttpRequest

    req = HttpRequest("PUT", f"{c.arm}{ids.server}/providers/Microsoft.Authorization/locks/"
                      f"pgproof-no-delete?api-version=2020-05-01",
                      json={"properties": {"level": "CanNotDelete",
                                           "notes": "backups die with the server"}})
    c.resources.send_request(req).raise_for_status()


def _monitoring(c: Clients, ids: Ids) -> None:
    from azure.core.rest import HttpRequest

    mon = c.monitor
    mon.action_groups.create_or_update(GROUP, "pgproof-oncall", body({
        "location": "Global", "properties": {
            "groupShortName": "oncall", "enabled": True,
            "emailReceivers": [{"name": "dba", "emailAddress": "dba@example.com",
                                "useCommonAlertSchema": True}]}}))
    for metric, threshold in ALERTS.items():
        mon.metric_alerts.create_or_update(GROUP, f"pg-{metric}", body(alert_body(ids, metric, threshold)))
    c.resources.send_request(HttpRequest(
        "PUT", f"{c.arm}{ids.workspace}?api-version=2022-10-01",
        json={"location": LOCATION, "properties": {"retentionInDays": 90,
                                                    "sku": {"name": "PerGB2018"}}})).raise_for_status()
    put_diagnostics(c, ids)


def put_diagnostics(c: Clients, ids: Ids, enabled: bool = True) -> None:
    """DiagnosticSettings_CreateOrUpdate (2021-05-01-preview): not in azure-mgmt-monitor 7.0.0,
    so sent through the resource client's pipeline."""
    from azure.core.rest import HttpRequest

    c.resources.send_request(HttpRequest(
        "PUT", f"{c.arm}{ids.server}/providers/Microsoft.Insights/diagnosticSettings/pgproof-logs"
        "?api-version=2021-05-01-preview", json={"properties": {
            "workspaceId": ids.workspace,
            "logs": [{"category": "PostgreSQLLogs", "enabled": enabled}]}})).raise_for_status()


def _storage(c: Clients) -> None:
    st = c.storage
    st.storage_accounts.begin_create(GROUP, ACCOUNT, body({
        "sku": {"name": "Standard_GRS"}, "kind": "StorageV2", "location": LOCATION,
        "properties": {"allowBlobPublicAccess": False, "minimumTlsVersion": "TLS1_2",
                       "supportsHttpsTrafficOnly": True, "encryption": {
                           "keySource": "Microsoft.Keyvault", "requireInfrastructureEncryption": True,
                           "services": {"blob": {"enabled": True, "keyType": "Account"}}}}})).result()
    st.blob_services.set_service_properties(GROUP, ACCOUNT, body({"properties": {
        "isVersioningEnabled": True, "deleteRetentionPolicy": {"enabled": True, "days": 30}}}))
    st.blob_containers.create(GROUP, ACCOUNT, CONTAINER, body({"properties": {
        "publicAccess": "None", "immutableStorageWithVersioning": {"enabled": True}}}))
    st.management_policies.create_or_update(GROUP, ACCOUNT, "default", body(lifecycle_body()))
    svc = c.blob
    if not svc.get_container_client(CONTAINER).exists():
        svc.create_container(CONTAINER)
