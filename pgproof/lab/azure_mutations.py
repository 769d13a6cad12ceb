"""Named misconfigurations of the Azure twin, each with the control IDs its Azure layer must fail.

Applied and healed through the same SDK calls a real operator would make;
``twin_only`` marks changes Azure refuses in place (network mode, geo backup,
admin login, major version, purge protection off): on a real subscription the
same fault needs a new server, not a toggle. Heal puts back what
``azure_spec.provision`` created.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pgproof.lab import azure_spec as spec
from pgproof.probes.azure_sdk import Clients, body

Step = Callable[[Clients], None]
G, S = spec.GROUP, spec.SERVER


@dataclass(frozen=True)
class AzureMutation:
    name: str
    description: str
    breaks: frozenset[str]
    apply: Step
    heal: Step
    twin_only: bool = False


def _param(name: str, value: str) -> Step:
    def step(c: Clients) -> None:
        c.pg.configurations.begin_put(G, S, name, {"properties": {
            "value": value, "source": "user-override"}}).result()
    return step


def _params(values: dict[str, str]) -> Step:
    def step(c: Clients) -> None:
        for name, value in values.items():
            _param(name, value)(c)
    return step


def _patch(props: dict[str, Any]) -> Step:
    """Servers_Update (PATCH): the properties a running server accepts in place."""
    def step(c: Clients) -> None:
        c.pg.servers.begin_update(G, S, {"properties": props}).result()
    return step


def _replace(**props: object) -> Step:
    """Servers_Create over the existing server (twin only: Azure refuses these in place)."""
    def step(c: Clients) -> None:
        cur = c.pg.servers.get(G, S).as_dict()
        cur["properties"] = {**cur["properties"], **props}
        c.pg.servers.begin_create_or_update(G, S, cur).result()
    return step


def _firewall(start: str, end: str) -> tuple[Step, Step]:
    def add(c: Clients) -> None:
        c.pg.firewall_rules.begin_create_or_update(G, S, "mutation", {"properties": {
            "startIpAddress": start, "endIpAddress": end}}).result()

    def remove(c: Clients) -> None:
        c.pg.firewall_rules.begin_delete(G, S, "mutation").result()
    return add, remove


def _nsg(rules: list[dict[str, Any]]) -> Step:
    def step(c: Clients) -> None:
        c.network.network_security_groups.begin_create_or_update(G, "pgproof-db-nsg", body({
            "location": spec.LOCATION, "properties": {
                "securityRules": rules, "defaultSecurityRules": spec.DEFAULT_NSG_RULES}})).result()
    return step


def _account(props: dict[str, Any]) -> Step:
    def step(c: Clients) -> None:
        c.storage.storage_accounts.update(G, spec.ACCOUNT, body({"properties": props}))
    return step


def _container_public(level: str | None) -> Step:
    def step(c: Clients) -> None:
        c.blob.get_container_client(spec.CONTAINER).set_container_access_policy({}, public_access=level)
    return step


def _vault(**props: object) -> Step:
    def step(c: Clients) -> None:
        from pgproof.probes.azure import raw

        v = raw(c.keyvault.vaults.get(G, spec.VAULT))
        v["properties"].update(props)
        c.keyvault.vaults.begin_create_or_update(G, spec.VAULT, body(
            {"location": v["location"], "properties": v["properties"]})).result()
    return step


def _key_enabled(on: bool) -> Step:
    return lambda c: c.keys.update_key_properties(spec.CMK, enabled=on) and None


def _alert_delete(c: Clients) -> None:
    c.monitor.metric_alerts.delete(G, "pg-cpu_percent")


def _alert_heal(c: Clients) -> None:
    ids = spec.Ids(c.cfg.subscription_id)
    c.monitor.metric_alerts.create_or_update(G, "pg-cpu_percent", body(
        spec.alert_body(ids, "cpu_percent", spec.ALERTS["cpu_percent"])))


def _lock_delete(c: Clients) -> None:
    from azure.core.rest import HttpRequest

    ids = spec.Ids(c.cfg.subscription_id)
    c.resources.send_request(HttpRequest("DELETE", f"{c.arm}{ids.server}/providers/Microsoft."
                                         f"Authorization/locks/pgproof-no-delete?api-version=2020-05-01"))


def _lifecycle_delete(c: Clients) -> None:
    c.storage.management_policies.delete(G, spec.ACCOUNT, "default")


def _lifecycle_heal(c: Clients) -> None:
    c.storage.management_policies.create_or_update(G, spec.ACCOUNT, "default",
                                                   body(spec.lifecycle_body()))


def _ids(c: Clients) -> spec.Ids:
    return spec.Ids(c.cfg.subscription_id)


FW_ALL = _firewall("0.0.0.0", "255.255.255.255")
FW_AZURE = _firewall("0.0.0.0", "0.0.0.0")
WORLD_RULE = {"name": "allow-internet-postgres", "properties": {
    "protocol": "Tcp", "sourceAddressPrefix": "Internet", "sourcePortRange": "*",
    "destinationAddressPrefix": "*", "destinationPortRange": "5432", "access": "Allow",
    "priority": 90, "direction": "Inbound"}}
P = spec.PARAMETERS


def _am(name: str, description: str, breaks: str, apply: Step, heal: Step,
        twin_only: bool = False) -> AzureMutation:
    return AzureMutation(name, description, frozenset(breaks.split()), apply, heal, twin_only)


AZURE_MUTATIONS: dict[str, AzureMutation] = {m.name: m for m in [
    _am("az-tls-min-1.0", "ssl_min_protocol_version = TLSv1", "TLS-1",
        _param("ssl_min_protocol_version", "TLSv1"), _param("ssl_min_protocol_version", "TLSv1.2")),
    _am("az-secure-transport-off", "require_secure_transport = off", "TLS-2",
        _param("require_secure_transport", "off"), _param("require_secure_transport", "on")),
    _am("az-public-access", "publicNetworkAccess Enabled", "NET-1",
        _patch({"network": {"publicNetworkAccess": "Enabled"}}),
        _patch({"network": {"publicNetworkAccess": "Disabled"}})),
    _am("az-subnet-undelegated", "the server's subnet loses its delegation", "NET-2",
        lambda c: spec.put_subnets(c, _ids(c), delegated=False),
        lambda c: spec.put_subnets(c, _ids(c)), twin_only=True),
    _am("az-no-private-dns", "no private DNS zone on the server", "NET-4",
        _replace(network={"publicNetworkAccess": "Disabled",
                          "delegatedSubnetResourceId": spec.Ids().db_subnet}),
        _replace(network={"publicNetworkAccess": "Disabled",
                          "delegatedSubnetResourceId": spec.Ids().db_subnet,
                          "privateDnsZoneArmResourceId": spec.Ids().dns_zone}), twin_only=True),
    _am("az-firewall-allow-all", "firewall rule 0.0.0.0-255.255.255.255", "NET-3", *FW_ALL),
    _am("az-firewall-azure-services", "firewall rule 0.0.0.0 (all Azure services)", "NET-3",
        *FW_AZURE),
    _am("az-nsg-internet", "NSG admits 5432 from Internet before the deny", "NET-3",
        _nsg([WORLD_RULE, *spec.nsg_rules()]), _nsg(spec.nsg_rules())),
    _am("az-nsg-no-deny", "NSG without its deny rule: AllowVnetInBound admits the whole VNet",
        "NET-3", _nsg(spec.nsg_rules()[:1]), _nsg(spec.nsg_rules())),
    _am("az-secret-no-expiry", "admin secret set again without an expiry", "AUTH-2",
        lambda c: spec.put_admin_secret(c, None), lambda c: spec.put_admin_secret(c, 90)),
    _am("az-secret-long-expiry", "admin secret expires after 365 days", "AUTH-2",
        lambda c: spec.put_admin_secret(c, 365), lambda c: spec.put_admin_secret(c, 90)),
    _am("az-admin-postgres", "administrator login 'postgres'", "AUTH-5",
        _replace(administratorLogin="postgres"), _replace(administratorLogin="pgproofadmin"),
        twin_only=True),
    _am("az-key-disabled", "the customer-managed key is disabled", "ENC-1",
        _key_enabled(False), _key_enabled(True)),
    _am("az-key-no-rotation", "the key's rotation policy has no rotate action", "ENC-1",
        lambda c: spec.put_rotation_policy(c, None), lambda c: spec.put_rotation_policy(c)),
    _am("az-vault-no-purge-protection", "key vault purge protection off", "ENC-1",
        _vault(enablePurgeProtection=False), _vault(enablePurgeProtection=True), twin_only=True),
    _am("az-storage-public", "storage account allows public blob access", "ENC-3",
        _account({"allowBlobPublicAccess": True}), _account({"allowBlobPublicAccess": False})),
    _am("az-storage-tls10", "storage minimum TLS 1.0, HTTP allowed", "ENC-3",
        _account({"minimumTlsVersion": "TLS1_0", "supportsHttpsTrafficOnly": False}),
        _account({"minimumTlsVersion": "TLS1_2", "supportsHttpsTrafficOnly": True})),
    _am("az-container-public", "backup container public (Blob service, Azurite)", "ENC-3",
        _container_public("container"), _container_public(None)),
    _am("az-pgaudit-off", "pgaudit dropped from shared_preload_libraries", "AUDIT-1",
        _param("shared_preload_libraries", "pg_qs,pg_stat_statements"),
        _param("shared_preload_libraries", P["shared_preload_libraries"])),
    _am("az-diagnostics-off", "the PostgreSQLLogs diagnostic category disabled", "AUDIT-1",
        lambda c: spec.put_diagnostics(c, _ids(c), enabled=False),
        lambda c: spec.put_diagnostics(c, _ids(c))),
    _am("az-retention-35", "backup retention 35 days", "BAK-1",
        _patch({"backup": {"backupRetentionDays": 35}}), _patch({"backup": {"backupRetentionDays": 14}})),
    _am("az-server-stopped", "the server is stopped (Servers_Stop)", "BAK-2",
        lambda c: c.pg.servers.begin_stop(G, S).result(),
        lambda c: c.pg.servers.begin_start(G, S).result()),
    _am("az-geo-backup-off", "geo-redundant backup disabled", "BAK-3",
        _replace(backup={"backupRetentionDays": 14, "geoRedundantBackup": "Disabled",
                         "earliestRestoreDate": "2026-01-01T00:00:00+00:00"}),
        _replace(backup={"backupRetentionDays": 14, "geoRedundantBackup": "Enabled",
                         "earliestRestoreDate": "2026-01-01T00:00:00+00:00"}), twin_only=True),
    _am("az-no-lifecycle", "the storage lifecycle policy deleted", "BAK-4",
        _lifecycle_delete, _lifecycle_heal),
    _am("az-no-delete-lock", "the server's CanNotDelete lock removed", "BAK-5",
        _lock_delete, lambda c: spec.put_lock(c, _ids(c))),
    _am("az-ha-off", "high availability Disabled", "HA-1",
        _patch({"highAvailability": {"mode": "Disabled"}}),
        _patch({"highAvailability": {"mode": "ZoneRedundant", "standbyAvailabilityZone": "2"}})),
    _am("az-same-zone", "standby in the primary's zone", "HA-1",
        _patch({"highAvailability": {"standbyAvailabilityZone": "1"}}),
        _patch({"highAvailability": {"standbyAvailabilityZone": "2"}})),
    _am("az-no-cpu-alert", "the cpu_percent alert deleted", "MON-1", _alert_delete, _alert_heal),
    _am("az-query-store-off", "Query Store off and no slow-query logging", "MON-2",
        lambda c: (_param("pg_qs.query_capture_mode", "none")(c),
                   _param("log_min_duration_statement", "-1")(c))[0],
        lambda c: (_param("pg_qs.query_capture_mode", "top")(c),
                   _param("log_min_duration_statement", "1000")(c))[0]),
    _am("az-log-quiet", "logging turned down: log_min_messages=error, log_min_error_statement="
        "fatal, log_error_verbosity=terse, log_statement=none", "LOG-6 LOG-7 LOG-12 LOG-15",
        _params({"log_min_messages": "error", "log_min_error_statement": "fatal",
                 "log_error_verbosity": "terse", "log_statement": "none"}),
        _params({k: P[k] for k in ("log_min_messages", "log_min_error_statement",
                                   "log_error_verbosity", "log_statement")})),
    _am("az-log-debug", "debug_print_parse/rewritten/plan on, debug_pretty_print off",
        "LOG-8 LOG-9 LOG-10 LOG-11",
        _params({"debug_print_parse": "on", "debug_print_rewritten": "on", "debug_print_plan": "on",
                 "debug_pretty_print": "off"}),
        _params({k: P[k] for k in ("debug_print_parse", "debug_print_rewritten", "debug_print_plan",
                                   "debug_pretty_print")})),
    _am("az-log-prefix-default", "log_line_prefix back to Azure's default '%t-%c-' (no user, "
        "database or client)", "LOG-14",
        _param("log_line_prefix", "%t-%c-"), _param("log_line_prefix", P["log_line_prefix"])),
    _am("az-no-maintenance-window", "system-managed maintenance window", "MNT-1",
        _patch({"maintenanceWindow": {"customWindow": "Disabled"}}),
        _patch({"maintenanceWindow": {"customWindow": "Enabled"}})),
    _am("az-version-14", "PostgreSQL 14", "MNT-1", _replace(version="14"), _replace(version="15"),
        twin_only=True),
]}
# The Azure layer of TLS-4 has nothing to break: the service exposes no certificate facts.
UNBREAKABLE = {"TLS-4": "Azure exposes no server certificate or CA facts; the layer is cannot-verify"}
