"""Azure-layer judges for AUDIT, BAK, HA, MON and MNT (same sentences as ``checks.aws_ops``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pgproof.catalogue.build import reads
from pgproof.checks.aws_util import ON
from pgproof.checks.azure_util import need, param, srv
from pgproof.probes.azure import AzureInventory
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify, NotApplicable

Judge = Callable[[AzureInventory, Thresholds], list[str]]
# MON-1 metrics (Microsoft.DBforPostgreSQL/flexibleServers metric names) and the threshold field.
ALERT_METRICS = {"cpu_percent": "cpu_alarm_max_pct", "memory_percent": "memory_alarm_max_pct",
                 "storage_percent": "storage_alarm_max_pct", "active_connections": None,
                 "physical_replication_delay_in_seconds": None}
SUPPORTED_MINORS = {"15": 7}  # oldest 15.x minor still offered (Azure "supported versions" page)


@reads("Configurations_ListByServer, DiagnosticSettings_List, Workspaces_Get",
       "parameters `shared_preload_libraries` (contains `pgaudit`), `pgaudit.log`, "
       "`log_connections`, `log_disconnections`; diagnostic `properties` → `logs` → `category`, "
       "`categoryGroup`, `enabled`, `workspaceId`, `name`; workspace `properties` → "
       "`retentionInDays`",
       "`shared_preload_libraries` not reported: cannot verify; other parameters absent: fail; no "
       "diagnostic setting to a workspace (a real setting to a storage account only): fail")
def judge_audit1(inv: AzureInventory, th: Thresholds) -> list[str]:
    """pgaudit preloaded and logging, connections logged, PostgreSQLLogs sent to a retained workspace."""
    problems = []
    libs = [x.strip() for x in param(inv, "shared_preload_libraries").split(",")]
    if "pgaudit" not in libs:
        problems.append(f"{srv(inv)}: pgaudit is not in shared_preload_libraries; the spec wants "
                        f"pgaudit loaded")
    log = inv.parameters.get("pgaudit.log")
    if not log or log.lower() == "none":
        problems.append(f"{srv(inv)}: pgaudit.log is {log}; the spec wants pgaudit logging")
    for setting in ("log_connections", "log_disconnections"):
        if (inv.parameters.get(setting) or "off").lower() not in ON:
            problems.append(f"{srv(inv)}: {setting} is {inv.parameters.get(setting)}; the spec wants on")
    need(inv, "diagnostics")
    sinks = []
    for d in inv.diagnostic_settings:
        p = d.get("properties") or {}
        on = [lg for lg in p.get("logs", []) if lg.get("enabled") and (
            lg.get("category") == "PostgreSQLLogs" or lg.get("categoryGroup") in ("allLogs", "audit"))]
        if on and p.get("workspaceId"):
            sinks.append((d.get("name"), p["workspaceId"]))
    if not sinks:
        problems.append(f"{srv(inv)}: no diagnostic setting sends PostgreSQLLogs to a Log Analytics "
                        f"workspace; the spec wants logs exported with a retention")
    for name, ws in sinks:
        w = inv.workspaces.get(ws)
        days = ((w or {}).get("properties") or {}).get("retentionInDays")
        if w is None:
            problems.append(f"diagnostic setting {name}: workspace {ws} does not exist")
        elif not days:
            problems.append(f"workspace {ws.rsplit('/', 1)[-1]}: no retention set")
    return problems


@reads("Servers_Get",
       "`backup` → `backupRetentionDays`; `name`",
       "absent: cannot verify")
def judge_bak1(inv: AzureInventory, th: Thresholds) -> list[str]:
    """Backup retention inside the spec's range (Azure allows 7-35; the spec wants 7-30)."""
    days = (inv.props.get("backup") or {}).get("backupRetentionDays")
    if days is None:
        raise CannotVerify(f"{srv(inv)}: backup.backupRetentionDays not reported")
    lo, hi = th.backup_retention_min_days, th.backup_retention_max_days
    if not lo <= days <= hi:
        return [f"{srv(inv)}: backup retention is {days} days; the spec wants {lo}-{hi}"]
    return []


@reads("Servers_Get",
       "`backup` → `earliestRestoreDate` (ISO 8601; real answers carry 7 fractional digits), "
       "`state`; `name`",
       "`earliestRestoreDate` absent: cannot verify")
def judge_bak2(inv: AzureInventory, th: Thresholds) -> list[str]:
    """PITR possible now: earliest restore point reported, server running (so WAL is shipped)."""
    b = inv.props.get("backup") or {}
    earliest = b.get("earliestRestoreDate")
    if earliest is None:
        raise CannotVerify(f"{srv(inv)}: backup.earliestRestoreDate not reported")
    when = datetime.fromisoformat(str(earliest).replace("Z", "+00:00"))
    problems = []
    if when > datetime.now(UTC):
        problems.append(f"{srv(inv)}: earliest restore point {when:%Y-%m-%d %H:%M} is in the "
                        f"future, so no point-in-time restore is possible yet")
    state = inv.props.get("state")
    if state != "Ready":
        problems.append(f"{srv(inv)}: state is {state}; a server that is not Ready ships no WAL, "
                        f"so the restore window falls behind the spec's RPO of "
                        f"{th.rpo_minutes:g} min")
    return problems


@reads("Servers_Get",
       "`backup` → `geoRedundantBackup`; `name`",
       "absent: cannot verify")
def judge_bak3(inv: AzureInventory, th: Thresholds) -> list[str]:
    geo = (inv.props.get("backup") or {}).get("geoRedundantBackup")
    if geo is None:
        raise CannotVerify(f"{srv(inv)}: backup.geoRedundantBackup not reported")
    if geo != "Enabled":
        return [f"{srv(inv)}: geoRedundantBackup is {geo}; the spec wants backups copied to the "
                f"paired region"]
    return []


@reads("ManagementPolicies_Get",
       "`properties` → `policy` → `rules` → `enabled`, `definition` → `actions` → `baseBlob` → "
       "`tierToArchive`, `delete` → `daysAfterModificationGreaterThan`",
       "no storage account configured: not applicable; no policy: fail")
def judge_bak4(inv: AzureInventory, th: Thresholds) -> list[str]:
    """A lifecycle rule on the backup container moves blobs to Archive and keeps them >= N days."""
    if not inv.storage_account_name:
        raise NotApplicable("no backup storage account is configured (azure.backup_storage_account)")
    need(inv, "storage")
    where = f"storage account {inv.storage_account_name}"
    rules = (((inv.management_policy or {}).get("properties") or {}).get("policy") or {}).get("rules", [])
    for r in rules:
        if not r.get("enabled", True):
            continue
        base = ((r.get("definition") or {}).get("actions") or {}).get("baseBlob") or {}
        archive = base.get("tierToArchive")
        delete = (base.get("delete") or {}).get("daysAfterModificationGreaterThan")
        if archive and (delete is None or delete >= th.archive_min_days):
            return []
    return [f"{where}: no enabled lifecycle rule moves backups to the Archive tier and keeps them "
            f">= {th.archive_min_days} days; the spec wants a long-term archive"]


@reads("ManagementLocks_ListAtResourceLevel",
       "`properties` → `level`; `name`",
       "no lock: fail")
def judge_bak5(inv: AzureInventory, th: Thresholds) -> list[str]:
    need(inv, "locks")
    if any((lk.get("properties") or {}).get("level") in ("CanNotDelete", "ReadOnly") for lk in inv.locks):
        return []
    return [f"{srv(inv)}: no CanNotDelete lock; the spec wants deletion protection (a delete "
            f"lock on Azure)"]


@reads("Servers_Get",
       "`highAvailability` → `mode`, `standbyAvailabilityZone`; `availabilityZone`; `name`",
       "`highAvailability` absent: fail (Disabled); a zone absent with ZoneRedundant on: cannot "
       "verify")
def judge_ha1(inv: AzureInventory, th: Thresholds) -> list[str]:
    ha = inv.props.get("highAvailability") or {}
    if ha.get("mode") != "ZoneRedundant":
        return [f"{srv(inv)}: high availability is {ha.get('mode') or 'Disabled'}; the spec wants "
                f"ZoneRedundant"]
    zone, standby = inv.props.get("availabilityZone"), ha.get("standbyAvailabilityZone")
    if not zone or not standby:
        raise CannotVerify(f"{srv(inv)}: primary or standby availability zone not reported")
    if zone == standby:
        return [f"{srv(inv)}: standby zone {standby} equals the primary's; the spec wants "
                f"different zones"]
    return []


@reads("MetricAlerts_ListByResourceGroup, ActionGroups_Get",
       "alert `properties` → `enabled`, `criteria` → `allOf` → `metricName` (`cpu_percent`, "
       "`memory_percent`, `storage_percent`, `active_connections`, "
       "`physical_replication_delay_in_seconds`), `threshold`, `actions` → `actionGroupId` (kept "
       "with its criterion as `_alert`); action group `properties` → `enabled`, `emailReceivers`, "
       "`smsReceivers`, `webhookReceivers`; `name`",
       "no alert on a metric: fail; a criterion without `threshold`: fail (not proven early "
       "enough)")
def judge_mon1(inv: AzureInventory, th: Thresholds) -> list[str]:
    """Metric alerts on CPU, memory, storage, connections, lag, each with a receiving action group."""
    need(inv, "alerts")
    found: dict[str, list[dict[str, Any]]] = {}
    for a in inv.metric_alerts:
        p = a.get("properties") or {}
        if not p.get("enabled", True):
            continue
        for crit in (p.get("criteria") or {}).get("allOf", []):
            found.setdefault(crit.get("metricName"), []).append({**crit, "_alert": a})
    problems = []
    for metric, field in ALERT_METRICS.items():
        crits = found.get(metric, [])
        if not crits:
            problems.append(f"no enabled metric alert on {metric} for {srv(inv)}; the spec wants "
                            f"one that pages")
            continue
        if field and not any(c.get("threshold", 1e9) <= getattr(th, field) for c in crits):
            problems.append(f"alert on {metric}: threshold above {getattr(th, field):g}; the spec "
                            f"wants <= {getattr(th, field):g}")
        if not any(_pages(inv, c["_alert"]) for c in crits):
            problems.append(f"alert on {metric}: no action group with an email, SMS or webhook "
                            f"receiver; the spec wants an alert that reaches a person")
    return problems


def _pages(inv: AzureInventory, alert: dict[str, Any]) -> bool:
    for act in (alert.get("properties") or {}).get("actions", []):
        g = inv.action_groups.get(act.get("actionGroupId"))
        p = (g or {}).get("properties") or {}
        if p.get("enabled", True) and any(p.get(k) for k in (
                "emailReceivers", "smsReceivers", "webhookReceivers")):
            return True
    return False


@reads("Configurations_ListByServer",
       "parameters `pg_qs.query_capture_mode`, `log_min_duration_statement`; `name`",
       "`pg_qs.query_capture_mode` not reported: cannot verify; `log_min_duration_statement` "
       "absent: fail")
def judge_mon2(inv: AzureInventory, th: Thresholds) -> list[str]:
    """Query Store captures queries and slow statements are logged."""
    problems = []
    qs = param(inv, "pg_qs.query_capture_mode")
    if qs.lower() == "none":
        problems.append(f"{srv(inv)}: Query Store is off (pg_qs.query_capture_mode = none); the "
                        f"spec wants deep monitoring")
    slow = inv.parameters.get("log_min_duration_statement")
    if slow is None or int(slow) < 0:
        problems.append(f"{srv(inv)}: log_min_duration_statement is {slow}; the spec wants "
                        f"slow-query logging set")
    return problems


@reads("Servers_Get",
       "`version`, `minorVersion`, `maintenanceWindow` → `customWindow`; `name`",
       "`minorVersion` absent: the minor is not judged; no custom window: fail")
def judge_mnt1(inv: AzureInventory, th: Thresholds) -> list[str]:
    p = inv.props
    problems = []
    ver, minor = str(p.get("version")), p.get("minorVersion")
    if ver != str(th.engine_major):
        problems.append(f"{srv(inv)}: PostgreSQL {ver}; the spec wants {th.engine_major}.x")
    elif minor is not None and ver in SUPPORTED_MINORS and int(minor) < SUPPORTED_MINORS[ver]:
        problems.append(f"{srv(inv)}: minor version {ver}.{minor} is no longer offered; the spec "
                        f"wants a supported minor")
    mw = p.get("maintenanceWindow") or {}
    if mw.get("customWindow") != "Enabled":
        problems.append(f"{srv(inv)}: no custom maintenance window (patches land at a time Azure "
                        f"picks); the spec wants a set window")
    return problems
