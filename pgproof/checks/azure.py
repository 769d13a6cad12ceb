"""Azure-layer judges for TLS, NET, AUTH and ENC.

Same contract and sentences as ``checks.aws``: ``judge_<control>(inv, th)`` is
pure, returns problems (empty = compliant), raises ``CannotVerify`` for a
fact the target does not report and ``Unreachable`` when the fact family it
needs was refused (that layer is error; the rest are still judged).
Resilience judges (AUDIT, BAK, HA, MON, MNT) live in ``checks.azure_ops``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pgproof.catalogue.build import reads
from pgproof.checks.aws import TLS_ORDER
from pgproof.checks.aws_util import ON, verdict
from pgproof.checks.azure_util import need, param, srv
from pgproof.probes.azure import AzureInventory
from pgproof.probes.network import subnet_of
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, NotApplicable

Judge = Callable[[AzureInventory, Thresholds], list[str]]
WORLD = {"*", "0.0.0.0/0", "::/0", "internet", "any"}
# The service tag of Azure's health probes (168.63.129.16), in every NSG's default rules: the
# platform, not a client path (recorded real NSGs carry AllowAzureLoadBalancerInBound).
PLATFORM_PROBE = "azureloadbalancer"


@reads("Configurations_ListByServer",
       "parameter `ssl_min_protocol_version`; `name`",
       "parameter not reported: cannot verify")
def judge_tls1(inv: AzureInventory, th: Thresholds) -> list[str]:
    """The server parameter ssl_min_protocol_version is at the spec's minimum or newer."""
    v = param(inv, "ssl_min_protocol_version")
    floor = TLS_ORDER.index(th.tls_min_version)
    if v in TLS_ORDER and TLS_ORDER.index(v) >= floor:
        return []
    return [f"{srv(inv)}: ssl_min_protocol_version is {v}; the spec wants "
            f"{th.tls_min_version} or newer"]


@reads("Configurations_ListByServer",
       "parameter `require_secure_transport`; `name`",
       "parameter not reported: cannot verify")
def judge_tls2(inv: AzureInventory, th: Thresholds) -> list[str]:
    """require_secure_transport on makes the flexible server refuse plaintext connections."""
    v = param(inv, "require_secure_transport")
    if v.lower() in ON:
        return []
    return [f"{srv(inv)}: require_secure_transport is {v}; the spec wants on"]


@reads("Servers_Get",
       "`certificate`, `sslCertificate`, `caCertificate`; `name`",
       "none of them (real servers report none: Azure rotates the certificate): cannot verify; the"
       " live TLS layer reads the leaf")
def judge_tls4(inv: AzureInventory, th: Thresholds) -> list[str]:
    """Azure rotates the flexible server's certificate itself and exposes no expiry or CA id."""
    facts = [k for k in ("certificate", "sslCertificate", "caCertificate") if k in inv.props]
    if not facts:
        raise CannotVerify(f"{srv(inv)}: the server resource reports no certificate or CA "
                           "rotation facts (provider-managed); the live TLS layer reads the leaf")
    return []


@reads("Servers_Get",
       "`network` → `publicNetworkAccess`; `name`",
       "absent: cannot verify")
def judge_net1(inv: AzureInventory, th: Thresholds) -> list[str]:
    """Public network access is disabled."""
    net = inv.props.get("network") or {}
    if "publicNetworkAccess" not in net:
        raise CannotVerify(f"{srv(inv)}: network.publicNetworkAccess not reported")
    if net["publicNetworkAccess"] != "Disabled":
        return [f"{srv(inv)}: publicNetworkAccess is {net['publicNetworkAccess']}; the spec "
                f"wants it Disabled"]
    return []


@reads("Servers_Get, Subnets_Get",
       "`network` → `delegatedSubnetResourceId`, `privateEndpointConnections`; subnet `properties`"
       " → `delegations` → `serviceName`, `name`",
       "no delegated subnet and no private endpoint: fail; subnet not found: fail")
def judge_net2(inv: AzureInventory, th: Thresholds) -> list[str]:
    """VNet integration: a delegated private subnet (or a private endpoint) carries the server."""
    need(inv, "network")
    net = inv.props.get("network") or {}
    sid = net.get("delegatedSubnetResourceId")
    if not sid:
        if inv.props.get("privateEndpointConnections"):
            return []
        return [f"{srv(inv)}: no delegated subnet and no private endpoint; the spec wants the "
                f"server in a private subnet"]
    if inv.subnet is None:
        return [f"{srv(inv)}: delegated subnet {sid} does not exist"]
    dels = [(d.get("properties") or {}).get("serviceName") for d in
            (inv.subnet.get("properties") or {}).get("delegations", [])]
    if "Microsoft.DBforPostgreSQL/flexibleServers" not in dels:
        return [f"subnet {inv.subnet.get('name')}: not delegated to Microsoft.DBforPostgreSQL/"
                f"flexibleServers (delegations: {dels or 'none'}); the spec wants a delegated "
                f"private subnet"]
    return []


@reads("Servers_Get",
       "`network` → `privateDnsZoneArmResourceId`, `privateEndpointConnections`; `name`",
       "no zone and no private endpoint: fail")
def judge_net4(inv: AzureInventory, th: Thresholds) -> list[str]:
    """The server's name resolves through a private DNS zone (VNet integration's requirement)."""
    zone = (inv.props.get("network") or {}).get("privateDnsZoneArmResourceId")
    if not zone and inv.props.get("privateEndpointConnections"):
        return []
    if not zone or not zone.lower().endswith(".postgres.database.azure.com"):
        return [f"{srv(inv)}: private DNS zone is {zone or 'not set'}; the spec wants a "
                f"*.private.postgres.database.azure.com zone so the endpoint resolves privately"]
    return []


def _covers(ports: str, port: int) -> bool:
    for part in str(ports).split(","):
        part = part.strip()
        if part == "*":
            return True
        lo, _, hi = part.partition("-")
        if lo.isdigit() and int(lo) <= port <= int(hi or lo):
            return True
    return False


def _within(source: str, prefixes: list[str]) -> bool:
    try:
        net = ipaddress.ip_network(source, strict=False)
    except ValueError:
        return False
    return any(subnet_of(net, p) for p in
               (ipaddress.ip_network(x, strict=False) for x in prefixes))


def _nsg_problems(nid: str, nsg: dict[str, Any], port: int, apps: list[str]) -> list[str]:
    """Inbound rules in priority order: the DB port admitted only from the app subnet."""
    props = nsg.get("properties") or {}
    every = props.get("securityRules", []) + props.get("defaultSecurityRules", [])
    rules = sorted(({**(r.get("properties") or {}), "name": r.get("name")} for r in every),
                   key=lambda r: r.get("priority", 99999))
    name = nid.rsplit("/", 1)[-1]
    problems: list[str] = []
    for r in rules:
        if r.get("direction") != "Inbound" or str(r.get("protocol")) not in ("*", "Tcp"):
            continue
        if not _covers(r.get("destinationPortRange", ""), port) and not any(
                _covers(p, port) for p in r.get("destinationPortRanges", [])):
            continue
        sources: list[str] = [s for s in [r.get("sourceAddressPrefix"),
                                          *(r.get("sourceAddressPrefixes") or [])] if s]
        if r.get("access") == "Deny":
            if any(s.lower() in WORLD for s in sources):
                return problems  # everything below is shadowed
            continue
        for s in sources:
            if apps and _within(s, apps) or s.lower() == PLATFORM_PROBE:
                continue
            problems.append(f"nsg {name} rule {r['name']} (priority {r.get('priority')}) admits "
                            f"port {port} from {s}; the spec wants it open only to the app "
                            f"subnet ({', '.join(apps) or 'not configured'})")
    return problems


@reads("FirewallRules_ListByServer, Subnets_Get, NetworkSecurityGroups_Get",
       "firewall `properties` → `startIpAddress`, `endIpAddress`, `name`; NSG `properties` → "
       "`securityRules`, `defaultSecurityRules` → `direction`, `protocol`, `destinationPortRange`,"
       " `destinationPortRanges`, `sourceAddressPrefix`, `sourceAddressPrefixes`, `access`, "
       "`priority`, `name`; app subnet `addressPrefix`",
       "no NSG on the subnet or in `nsg_ids`: cannot verify; a named NSG that does not exist: "
       "fail. The `AzureLoadBalancer` source (Azure's health probe, in every NSG's default rules) "
       "is not a client path")
def judge_net3(inv: AzureInventory, th: Thresholds) -> list[str]:
    """No allow-all or allow-Azure-services firewall rule; the NSG admits the port only from apps."""
    need(inv, "firewall", "network")
    problems, gaps = [], []
    for fw in inv.firewall_rules:
        p = fw.get("properties") or {}
        start, end = p.get("startIpAddress"), p.get("endIpAddress")
        if start == "0.0.0.0" and end == "255.255.255.255":
            problems.append(f"firewall rule {fw.get('name')} opens 0.0.0.0-255.255.255.255; the "
                            f"spec wants no world-open rule")
        elif start == "0.0.0.0" and end == "0.0.0.0":
            problems.append(f"firewall rule {fw.get('name')} allows all Azure services (0.0.0.0); "
                            f"the spec wants only the app tier")
    app_prefix = ((inv.app_subnet or {}).get("properties") or {}).get("addressPrefix")
    apps: list[str] = [app_prefix] if app_prefix else []
    if not inv.nsgs:
        gaps.append(f"{srv(inv)}: no network security group on the delegated subnet or in nsg_ids")
    for nid, nsg in sorted(inv.nsgs.items()):
        if not nsg:
            problems.append(f"nsg {nid} does not exist")
            continue
        problems += _nsg_problems(nid, nsg, 5432, apps)
    return verdict(problems, gaps)


@reads("Key Vault GetSecret",
       "inventory `exists`, `expires_on`, `created_on`, `updated_on`; `name`",
       "no secret configured or not found: fail; no expiry: fail")
def judge_auth2(inv: AzureInventory, th: Thresholds) -> list[str]:
    """The admin secret lives in Key Vault with an expiry no more than N days after it was set."""
    if inv.secret_name is None:
        return [f"{srv(inv)}: no admin secret in Key Vault (azure.admin_secret_name unset); the "
                f"spec wants a managed, rotated secret"]
    need(inv, "secret")
    s = inv.secret or {}
    if not s.get("exists"):
        return [f"secret {inv.secret_name} was not found in the vault; the spec wants the admin "
                f"secret in Key Vault"]
    if s.get("expires_on") is None:
        return [f"secret {inv.secret_name}: no expiry set, so nothing forces rotation; the spec "
                f"wants rotation every <= {th.secret_rotation_max_days} days"]
    since = s.get("updated_on") or s.get("created_on")
    life = s["expires_on"] - since if since else None
    if life is not None and life > timedelta(days=th.secret_rotation_max_days):
        return [f"secret {inv.secret_name}: expires {life.total_seconds() / 86400:.4g} days after "
                f"it was set; the spec wants "
                f"<= {th.secret_rotation_max_days} days"]
    if s["expires_on"] < datetime.now(UTC):
        return [f"secret {inv.secret_name}: expired {s['expires_on']:%Y-%m-%d} without rotation"]
    return []


@reads("Servers_Get",
       "`administratorLogin`; `name`",
       "absent: cannot verify")
def judge_auth5(inv: AzureInventory, th: Thresholds) -> list[str]:
    user = inv.props.get("administratorLogin")
    if user is None:
        raise CannotVerify(f"{srv(inv)}: administratorLogin not reported")
    if user.lower() in th.forbidden_admin_names:
        return [f"{srv(inv)}: administrator login is {user!r}; the spec wants a name other than "
                f"{', '.join(th.forbidden_admin_names)}"]
    return []


@reads("Servers_Get, Key Vault GetKey / GetKeyRotationPolicy, Vaults_Get",
       "`dataEncryption` → `type`, `primaryKeyURI`; key `exists`, `enabled`, rotation `actions` → "
       "`action`; vault `properties` → `enableSoftDelete`, `enablePurgeProtection`, `name`",
       "`dataEncryption` absent: fail (system-managed key); key not found: fail; no rotation "
       "policy: fail")
def judge_enc1(inv: AzureInventory, th: Thresholds) -> list[str]:
    """Customer-managed Key Vault key, enabled, rotating; vault soft delete and purge protection."""
    enc = inv.props.get("dataEncryption") or {}
    if enc.get("type") != "AzureKeyVault":
        return [f"{srv(inv)}: data encryption is {enc.get('type') or 'SystemManaged'}; the spec "
                f"wants a customer-managed Key Vault key"]
    need(inv, "keys", "keyvault")
    problems = []
    k = inv.key or {}
    if not k.get("exists"):
        return [f"{srv(inv)}: key {enc.get('primaryKeyURI')} was not found in the vault"]
    if not k.get("enabled"):
        problems.append(f"key {k['name']} is disabled; the spec wants it enabled")
    rot = inv.key_rotation
    rotate = [a for a in (rot or {}).get("actions", []) if a["action"].lower() == "rotate"]
    if not rotate:
        problems.append(f"key {k['name']}: no automatic rotation in its rotation policy; the spec "
                        f"wants key rotation on")
    v = (inv.vault or {}).get("properties") or {}
    if inv.vault is None:
        problems.append("the configured key vault does not exist")
    else:
        for flag in ("enableSoftDelete", "enablePurgeProtection"):
            if v.get(flag) is not True:
                problems.append(f"key vault {inv.vault.get('name')}: {flag} is {v.get(flag)}; the "
                                f"spec wants it true so the key cannot be destroyed")
    return problems


@reads("StorageAccounts_GetProperties, BlobServices_GetServiceProperties, BlobContainers_Get, Blob"
       " Get Container Properties",
       "account `properties` → `allowBlobPublicAccess`, `minimumTlsVersion`, "
       "`supportsHttpsTrafficOnly`, `encryption` → `keySource`, `requireInfrastructureEncryption`;"
       " blob service `isVersioningEnabled`; container `immutableStorageWithVersioning` → "
       "`enabled`",
       "no storage account configured: not applicable; any setting absent: fail (not proven)")
def judge_enc3(inv: AzureInventory, th: Thresholds) -> list[str]:
    """Backup storage: no public blob access, TLS 1.2+, HTTPS only, encrypted, versioned/immutable."""
    if not inv.storage_account_name:
        raise NotApplicable("no backup storage account is configured (azure.backup_storage_account)")
    need(inv, "storage", "blob")
    acct = inv.storage_account
    where = f"storage account {inv.storage_account_name}"
    if acct is None:
        return [f"{where} does not exist; the spec wants locked backup storage"]
    p, problems = acct.get("properties") or {}, []
    if p.get("allowBlobPublicAccess") is not False:
        problems.append(f"{where}: allowBlobPublicAccess is {p.get('allowBlobPublicAccess')}; the "
                        f"spec wants false")
    if p.get("minimumTlsVersion") not in ("TLS1_2", "TLS1_3"):
        problems.append(f"{where}: minimumTlsVersion is {p.get('minimumTlsVersion')}; the spec "
                        f"wants TLS1_2 or newer")
    if p.get("supportsHttpsTrafficOnly") is not True:
        problems.append(f"{where}: supportsHttpsTrafficOnly is off; the spec wants HTTPS only")
    enc = p.get("encryption") or {}
    if not (enc.get("keySource") == "Microsoft.Keyvault" or enc.get("requireInfrastructureEncryption")):
        problems.append(f"{where}: encrypted only with Microsoft-managed keys and no infrastructure "
                        f"encryption; the spec wants a customer key or double encryption")
    versioned = ((inv.blob_service or {}).get("properties") or {}).get("isVersioningEnabled")
    immutable = (((inv.container or {}).get("properties") or {}).get(
        "immutableStorageWithVersioning") or {}).get("enabled")
    if not (versioned or immutable):
        problems.append(f"{where}: blob versioning off and container {inv.container_name} not "
                        f"immutable; the spec wants versioning or immutability")
    if inv.container_public not in (None, "off"):
        problems.append(f"container {inv.container_name}: public access level is "
                        f"{inv.container_public} (Blob service); the spec wants none")
    return problems
