"""Game-day controls: they change the target and are proven by a scenario (``scenarios/``,
``pgproof gameday``), not by a judge here: HA-2..HA-6, CH-*, BAK-6, MON-4."""

from __future__ import annotations

from pgproof.catalogue.build import RESILIENCE, control

CONTROLS = (
    control(
        "HA-2",
        "Failover completes within the RTO budget",
        "After the primary is killed under load, writes succeed again on a new primary within "
         "the RTO budget, measured at <= 100 ms resolution.",
        "Shorten failure detection (Patroni ttl/loop_wait; RDS: Multi-AZ) and make clients "
         "reconnect on error.",
        severity="high",
        kind="gameday",
        layers="clock",
        thresholds="rto_budget_s",
        hipaa=RESILIENCE),
    control(
        "HA-3",
        "No acknowledged write lost",
        "Every write acknowledged before or during the failover is on the new primary.",
        "Use synchronous replication (synchronous_mode / Multi-AZ) so no commit is acknowledged "
         "before a standby has it.",
        severity="critical",
        kind="gameday",
        layers="ledger",
        hipaa=(*RESILIENCE, "164.312(c)(1)")),
    control(
        "HA-4",
        "Load recovers without restarting clients",
        "Throughput returns to the recovery ratio of its pre-fault median without restarting "
         "clients.",
        "Make the pool and clients reconnect and retry instead of holding dead connections.",
        severity="medium",
        kind="gameday",
        layers="load",
        thresholds="load_recovery_ratio recovery_sustain_s recovery_budget_s",
        hipaa=("164.308(a)(7)(ii)(D)",)),
    control(
        "HA-6",
        "The cluster heals",
        "The old primary rejoins or a new standby appears, and steady state holds again.",
        "Enable pg_rewind (use_pg_rewind) or automatic replica re-creation.",
        severity="medium",
        kind="gameday",
        layers="cluster",
        thresholds="recovery_sustain_s recovery_budget_s",
        hipaa=RESILIENCE),
    control(
        "CH-LAT",
        "Latency on the client path triggers no failover",
        "Latency on the client path triggers no failover, errors stay within budget, and p95 "
         "returns to baseline after the fault is removed.",
        "Raise client and health-check timeouts above the expected latency; keep failover "
         "detection off the client path.",
        severity="medium",
        kind="gameday",
        layers="load cluster",
        thresholds="latency_error_budget p95_recovery_factor recovery_sustain_s recovery_budget_s",
        hipaa=("164.308(a)(7)(ii)(D)",)),
    control(
        "CH-PART",
        "Partitioned primary is replaced, no split brain",
        "A primary cut off from clients and the cluster is replaced within the RTO budget and "
         "accepts no write after the new one is promoted.",
        "Make the old primary demote itself when it loses the consensus store (Patroni does; "
         "check watchdog and synchronous settings).",
        severity="critical",
        kind="gameday",
        layers="clock split-brain",
        thresholds="rto_budget_s",
        hipaa=(*RESILIENCE, "164.312(c)(1)")),
    control(
        "BAK-6",
        "Restore proven",
        "A point-in-time restore drill under load restores to T into a scratch instance that "
         "brings back every acknowledged row up to T and none after (measured RPO within the "
         "budget), accepts a login over TLS, is as private as its source, and is ready within "
         "the restore budget; the scratch instance is deleted.",
        "Keep WAL archiving healthy and base backups restorable (test restores regularly); "
         "shorten restore time with more frequent full or incremental backups.",
        severity="high",
        kind="gameday",
        layers="restore",
        thresholds="rpo_minutes restore_budget_s tls_min_version",
        hipaa=("164.308(a)(7)(ii)(A)", "164.308(a)(7)(ii)(B)", "164.308(a)(7)(ii)(D)")),
    control(
        "CH-FORCE",
        "Control-plane failover as HA-2 and HA-3",
        "A failover through the control plane meets the RTO budget and loses no acknowledged "
         "write.",
        "As HA-2 and HA-3: fast detection, reconnecting clients, synchronous replication.",
        severity="high",
        kind="gameday",
        layers="clock ledger",
        thresholds="rto_budget_s",
        hipaa=(*RESILIENCE, "164.312(c)(1)")),
    control(
        "MON-4",
        "Alarms deliver",
        "Each MON-1 alarm, forced into ALARM, delivers its notification through its SNS topic to "
         "a subscriber within the delivery budget.",
        "Fix the alarm's action (enabled, pointing at an existing topic) and the topic's "
         "subscriptions and access policy until a forced alarm arrives.",
        severity="medium",
        kind="gameday",
        layers="aws sns-delivery",
        thresholds="alarm_delivery_budget_s",
        hipaa=("164.308(a)(6)(ii)", "164.308(a)(1)(ii)(D)")),
)
