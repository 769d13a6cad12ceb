"""MON-1..MON-3: alarms that page, deep monitoring, the health endpoint contract. MON-4 (alarms
deliver) is a game day, in ``gameday.py``."""

from __future__ import annotations

from pgproof.catalogue import seen
from pgproof.catalogue.build import aws, azure, check, control

CONTROLS = (
    control(
        "MON-1", "Alarms that page",
        "Alarms exist for CPU, memory, storage, connections near max, replica lag and backup "
        "failures, each with an action whose topic has a subscriber; on AWS an RDS event "
        "subscription covers failure, failover, low storage and backup/recovery events to a "
        "subscribed topic.",
        "Create the CloudWatch alarms at the thresholds with an SNS action whose topic has a "
        "confirmed subscriber (on Aurora PostgreSQL on FreeLocalStorage per instance and "
        "AuroraReplicaLag, in milliseconds, instead of FreeStorageSpace and ReplicaLag), and "
        "an RDS event subscription (db-instance or db-cluster) for "
        "the failure, failover, low storage, backup and recovery categories to that topic.",
        severity="medium",
        thresholds="cpu_alarm_max_pct memory_alarm_max_pct storage_alarm_max_pct "
        "connections_alarm_max_pct replica_lag_max_s",
        hipaa=("164.308(a)(6)(ii)", "164.308(a)(1)(ii)(D)"),
        checks=(aws("aws_alarms:judge_mon1", seen.alarms),
                azure("azure_ops:judge_mon1",
                      seen=lambda inv: f"{len(inv.metric_alerts)} metric alerts"))),
    control(
        "MON-2", "Deep monitoring",
        "Enhanced Monitoring and Performance Insights are on and slow-query logging is set.",
        "Enable Enhanced Monitoring and Performance Insights and set "
        "log_min_duration_statement.", severity="low", hipaa=("164.308(a)(1)(ii)(D)",),
        fsbp=("RDS.6",),
        checks=(aws("aws_ops:judge_mon2", lambda i: seen.each(i, "MonitoringInterval")),
                check("sql", "postgres:judge_mon2_slow_query", "pg_facts",
                      settings="log_min_duration_statement",
                      evidence=lambda pg: f"log_min_duration_statement="
                                          f"{pg.settings.get('log_min_duration_statement')}"),
                azure("azure_ops:judge_mon2",
                      params=("pg_qs.query_capture_mode", "log_min_duration_statement")))),
    control(
        "MON-3", "Health endpoint",
        "GET /api/health/database returns connection status, version, SSL on, active "
        "connections and response time.",
        "Serve the health endpoint with every field, over a TLS connection to the database.",
        severity="low", unmapped_reason="an application health endpoint is an operational "
        "probe; no Security Rule standard asks for one",
        checks=(check("health", "live:judge_mon3", "health_facts",
                      evidence=lambda h: f"{h.url}: {h.body}"),)),
)
