"""What an Azure check looked at, in one line: the evidence a passing control carries in reports."""

from __future__ import annotations

from pgproof.probes.azure import AzureInventory

_PARAMS = {"TLS-1": ("ssl_min_protocol_version",), "TLS-2": ("require_secure_transport",),
           "AUDIT-1": ("shared_preload_libraries", "pgaudit.log", "log_connections"),
           "MON-2": ("pg_qs.query_capture_mode", "log_min_duration_statement")}
_PROPS = {"NET-1": ("network",), "NET-2": ("network",), "NET-4": ("network",),
          "AUTH-5": ("administratorLogin",), "ENC-1": ("dataEncryption",), "BAK-1": ("backup",),
          "BAK-2": ("backup", "state"), "BAK-3": ("backup",), "HA-1": ("highAvailability",
                                                                     "availabilityZone"),
          "MNT-1": ("version", "minorVersion", "maintenanceWindow")}


def seen(inv: AzureInventory, control: str) -> str:
    name = inv.server.get("name", "?")
    if control in _PARAMS:
        return f"{name}: " + ", ".join(f"{p}={inv.parameters.get(p)}" for p in _PARAMS[control])
    if control in _PROPS:
        return f"{name}: " + ", ".join(f"{p}={inv.props.get(p)}" for p in _PROPS[control])
    extra = {"NET-3": f"{len(inv.firewall_rules)} firewall rules, nsgs {sorted(inv.nsgs)}",
             "AUTH-2": f"secret {inv.secret_name}: expires {(inv.secret or {}).get('expires_on')}",
             "ENC-3": f"account {inv.storage_account_name}, container public {inv.container_public}",
             "BAK-4": f"lifecycle {bool(inv.management_policy)}",
             "BAK-5": f"locks {[lk.get('name') for lk in inv.locks]}",
             "MON-1": f"{len(inv.metric_alerts)} metric alerts",
             "TLS-4": "no certificate facts on the server resource"}
    return f"{name}: {extra.get(control, '')}"
