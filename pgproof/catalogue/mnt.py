"""MNT-1: PostgreSQL of the expected major version, with automatic minor upgrades."""

from __future__ import annotations

from pgproof.catalogue import seen
from pgproof.catalogue.build import aws, azure, check, control

CONTROLS = (
    control(
        "MNT-1", "Patched engine",
        "The engine is PostgreSQL of the expected major version and automatic minor upgrades "
        "are on.",
        "Upgrade to a supported minor and enable auto minor version upgrade.", severity="high",
        thresholds="engine_major", hipaa=("164.308(a)(1)(ii)(B)",), cis=("1.5",),
        fsbp=("RDS.13",),
        checks=(check("sql", "postgres:judge_mnt1", "pg_facts", "thresholds",
                      settings="server_version server_version_num",
                      evidence=lambda pg, _th: f"server_version={pg.settings.get('server_version')}"),
                aws("aws_ops:judge_mnt1",
                    lambda i: seen.each(i, "EngineVersion", "AutoMinorVersionUpgrade")),
                azure("azure_ops:judge_mnt1", props=("version", "minorVersion", "maintenanceWindow")))),
)
