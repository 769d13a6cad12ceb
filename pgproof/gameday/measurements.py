"""What a game day measured, as types: journal.json's ``measurements`` object, key for key.

TypedDicts, not dataclasses: the journal writes exactly the keys that were
measured, in the order they were measured (an interrupted run has fewer), and
reports read the same names back from JSON. docs/gamedays.md describes the
fields; tests/test_gameday_report.py reads them.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class Rto(TypedDict):
    """The failover clock's view of the outage (``pgproof.gameday.clock``)."""

    fault_at: float
    rto_s: float | None
    resolution_s: float | None
    last_ack_before: float | None
    first_ack_after: float | None
    failed_writes: int
    outage_s: float | None
    outage_resolution_s: float | None
    judged: Literal["outage", "from_fault"]  # which one RTO is judged on (control-plane faults: outage)


class LedgerCounts(TypedDict, total=False):
    """``LedgerVerdict.counts()``: commit attempts against the rows the server has."""

    acknowledged: int
    failed: int
    unknown: int
    present: int
    lost: int
    unknown_landed: int
    unknown_missing: int
    extra: int
    lost_keys: list[list[int]]  # only when rows were lost: (writer_id, seq), at most 20


class LedgerUnverified(TypedDict):
    acknowledged: int
    failed: int
    unknown: int
    why: str


class SplitBrain(TypedDict):
    """A write sent straight to the old primary after the failover (refused, or split brain)."""

    old_primary: str | None
    new_primary: str | None
    write_refused: bool
    error: str


class LeaderHold(TypedDict):
    """A non-failover fault held: the leader checked each second (CH-LAT wants no failover)."""

    samples: int
    other_leader_seen: int
    leaders: list[str]


class Measurements(TypedDict, total=False):
    """journal.json ``measurements``: the failover game day's numbers, then the restore drill's
    and the alarm drill's (each kind writes its own keys; all are optional)."""

    # failover game day (pgproof.gameday.run / measure)
    load_workers: int
    baseline: dict[str, float | int]  # metrics.Baseline.to_dict()
    baseline_tps: float
    p95_baseline_ms: float | None
    conditions: dict[str, dict[str, Any]]  # watch.Condition.to_dict() by name: load, p95, heal
    load_recovery_s: float | None
    heal_s: float | None
    host: dict[str, float | int | None]  # cpus, runnable_baseline, runnable_<condition>
    load_dropped: bool
    split_brain: SplitBrain
    leader_during: LeaderHold
    unmeasured: list[str]  # "<step>: <error>" for each number that could not be had
    clock_resolution_s: float | None
    rto: Rto | None  # None: the scenario expects no failover
    ledger: LedgerCounts
    ledger_unverified: LedgerUnverified
    p95_during_ms: float | None
    p95_after_ms: float | None
    requests_during: int
    error_ratio: float
    failovers: int
    old_primary: str | None
    new_primary: str | None
    steady_after_ok: bool
    promotion: dict[str, Any]  # FaultDriver.promotion_times: the driver's own sources
    # restore drill (pgproof.gameday.restore, restore_aws, restore_probe)
    database_bytes: int | None
    target_time: str
    archived: bool
    restore_s: float
    drill_s: float
    restore_error: str
    probe: dict[str, Any]
    before_t: int
    after_t_acked: int
    missing: list[int]  # marker seqs acknowledged before T, absent from the restore
    after_t: list[int]  # marker seqs restored though written after T
    restored_markers: int
    newest_restored: str | None
    rpo_s: float | None
    # alarm drill (pgproof.gameday.alarm_drill)
    twin: str
    budget_s: float
    alarms: list[dict[str, Any]]
