"""HA-1 and HA-5 (read-only checks): Multi-AZ, replicas read-only and fresh (HA-5 from SQL and,
on AWS, from CloudWatch's replica lag). The game-day HA controls are in ``gameday.py``."""

from __future__ import annotations

from pgproof.catalogue import seen
from pgproof.catalogue.build import aws, azure, check, control

CONTROLS = (
    control(
        "HA-1", "Multi-AZ",
        "Multi-AZ is on and the standby's availability zone differs from the primary's.",
        "Modify the instance with --multi-az.", severity="medium",
        hipaa=("164.308(a)(7)(i)", "164.308(a)(7)(ii)(C)"), fsbp=("RDS.5",),
        checks=(aws("aws_ops:judge_ha1", lambda i: seen.each(i, "MultiAZ", "AvailabilityZone")),
                azure("azure_ops:judge_ha1", props=("highAvailability", "availabilityZone")))),
    control(
        "HA-5", "Replicas read-only, fresh",
        "Every replica refuses writes and lags at most the threshold (on AWS also by CloudWatch's "
        "ReplicaLag, or AuroraReplicaLag in milliseconds, over the last 5 minutes).",
        "Investigate replica lag (I/O, long queries, network) and never promote a replica by "
        "hand while it serves reads.", severity="medium", thresholds="replica_lag_max_s",
        hipaa=("164.312(c)(1)", "164.308(a)(7)(i)"),
        checks=(check("sql", "postgres:judge_ha5", "pg_facts", "thresholds",
                      evidence=lambda pg, _th: "; ".join(f"{r.endpoint}: read-only, lag {r.lag_s}"
                                                         for r in pg.replicas)),
                aws("aws_ops:judge_ha5", seen.replica_lag))),
)
