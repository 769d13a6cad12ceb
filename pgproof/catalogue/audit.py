"""AUDIT-1: pgaudit loaded and logging, connections logged, logs exported with a retention."""

from __future__ import annotations

from pgproof.catalogue import seen
from pgproof.catalogue.build import aws, azure, check, control

CONTROLS = (
    control(
        "AUDIT-1", "Audit logging",
        "pgaudit is loaded and logging, log_connections and log_disconnections are on, and the "
        "logs are exported to CloudWatch with a retention.",
        "Load pgaudit (shared_preload_libraries), set pgaudit.log, enable connection logging, "
        "and export the postgresql log with a retention.", severity="medium",
        hipaa=("164.312(b)", "164.308(a)(1)(ii)(D)", "164.308(a)(5)(ii)(C)"),
        cis=("3.1.20", "3.1.21", "3.2"), fsbp=("RDS.9",),
        checks=(
            check("sql", "postgres:judge_audit1", "pg_facts",
                  settings="shared_preload_libraries log_connections log_disconnections",
                  evidence=lambda pg: f"pgaudit.log={pg.pgaudit_log}; log_connections="
                                      f"{pg.settings.get('log_connections')}"),
            aws("aws_ops:judge_audit1", lambda i: seen.cluster(i, "EnabledCloudwatchLogsExports")
                + "; log groups: " + ", ".join(f"{k} ({v.get('retentionInDays')} d)"
                                               for k, v in i.log_groups.items())),
            azure("azure_ops:judge_audit1",
                  params=("shared_preload_libraries", "pgaudit.log", "log_connections")),
        )),
)
