"""Every threshold judged at its exact boundary, in the unit the user configured.

For each judge with a threshold: a value exactly at the spec passes and one unit
beyond fails, on each side of each comparison. Hypothesis draws the thresholds
(decimals as a user writes them in TOML) and the sizes; no lab, no network.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pgproof.checks import aws as aws_checks
from pgproof.checks import aws_ops, azure, azure_ops, backup, live, postgres, tls
from pgproof.checks.aws_alarms import drill_alarms, judge_mon1
from pgproof.exact import exact, whole
from pgproof.gameday import alarm_drill, metrics, restore_probe, scenarios
from pgproof.probes.aws import AwsInventory
from pgproof.probes.azure import AzureInventory
from pgproof.probes.backup import ArchiverFacts, BackupFacts
from pgproof.probes.pooler import PoolerFacts
from pgproof.probes.postgres import PostgresFacts, ReplicaFacts
from pgproof.probes.tls import CertInfo, PlaintextOutcome, PlaintextResult, TlsFacts
from pgproof.target import Thresholds
from pgproof.verdict import CannotVerify

FAST = settings(max_examples=60, deadline=None)
GIB = 1024**3
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TOPIC = "arn:aws:sns:us-east-1:123456789012:pages"

# Percentages and durations as users write them: up to two decimals.
pcts = st.decimals(min_value=Decimal("1"), max_value=Decimal("99"), places=2).map(float)
minutes = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("120"), places=1).map(float)
seconds = st.decimals(min_value=Decimal("0.5"), max_value=Decimal("3600"), places=2).map(float)
days = st.integers(min_value=1, max_value=400)


def up(x: float) -> float:
    """The next float above ``x``: the smallest step beyond a real-valued limit."""
    return math.nextafter(x, math.inf)


# MON-1 ------------------------------------------------------------------------------------------

def _alarm(metric: str, op: str, threshold: float, instance: str | None = "db1") -> dict[str, Any]:
    dims = ([{"Name": "DBInstanceIdentifier", "Value": instance}] if instance
            else [{"Name": "BackupVaultName", "Value": "v"}])
    return {"AlarmName": f"{metric}-{op}", "Namespace": "AWS/Backup" if instance is None else "AWS/RDS",
            "MetricName": metric, "Dimensions": dims, "ComparisonOperator": op,
            "Threshold": threshold, "ActionsEnabled": True, "AlarmActions": [TOPIC]}


def _inventory(mem: int, storage_gib: int, maxc: int | None = None, **over: Any) -> AwsInventory:
    """A healthy MON-1 inventory whose alarms sit exactly at the default thresholds."""
    params = {"max_connections": str(maxc)} if maxc else {}
    inv = AwsInventory(
        region="us-east-1", endpoint="moto",
        primary={"DBInstanceIdentifier": "db1", "DBInstanceClass": "db.test", "AllocatedStorage":
                 storage_gib, "DBParameterGroups": [{"DBParameterGroupName": "pg"}]},
        replicas=[{"DBInstanceIdentifier": "db1-r"}], parameters={"pg": params},
        instance_memory_bytes=mem, topic_subscriptions={TOPIC: [{"SubscriptionArn": TOPIC + ":1"}]},
        event_subscriptions=[{"CustSubscriptionId": "e", "SourceType": "db-instance",
                              "SourceIdsList": ["db1"], "EventCategoriesList": [], "Enabled": True,
                              "Status": "active", "SnsTopicArn": TOPIC}])
    conns = maxc if maxc else min(mem // 9531392, 5000)
    th = Thresholds()
    inv.alarms = [
        _alarm("CPUUtilization", "GreaterThanThreshold", over.get("cpu", 80.0)),
        _alarm("FreeableMemory", "LessThanThreshold",
               over.get("free_mem", mem * (1 - th.memory_alarm_max_pct / 100))),
        _alarm("FreeStorageSpace", "LessThanThreshold",
               over.get("storage", storage_gib * GIB * (1 - th.storage_alarm_max_pct / 100))),
        _alarm("DatabaseConnections", "GreaterThanThreshold", over.get("conns", conns * 0.9)),
        _alarm("NumberOfBackupJobsFailed", "GreaterThanOrEqualToThreshold", over.get("backup", 1.0),
               instance=None),
        _alarm("ReplicaLag", "GreaterThanThreshold", over.get("lag", 30.0), instance="db1-r"),
    ]
    return inv


def mon1(inv: AwsInventory, th: Thresholds | None = None) -> list[str]:
    return judge_mon1(inv, th or Thresholds())


def test_memory_alarm_at_85_percent_of_8_gib_passes() -> None:
    """The measured false FAIL: FreeableMemory < 1.2 GiB on 8 GiB is exactly 85 % used."""
    mem = 8 * GIB
    assert mem * (1 - 85 / 100) == 1288490188.8000002
    for at in (1288490188.8, 1288490188.8000002, 1288490189.0):
        assert mon1(_inventory(mem, 100, free_mem=at)) == [], at
    late = mon1(_inventory(mem, 100, free_mem=1288490188.0))  # one byte less free: fires later
    assert len(late) == 1 and "FreeableMemory" in late[0] and "fires later" in late[0], late


@FAST
@given(mem_gib=st.integers(1, 1024), extra=st.integers(0, GIB - 1), pct=pcts)
@example(mem_gib=8, extra=0, pct=85.0)
def test_freeable_memory_boundary(mem_gib: int, extra: int, pct: float) -> None:
    """LessThanThreshold at the free bytes at pct (to the nearest byte) passes, and so does the
    float a user computes; one byte lower fails."""
    mem = mem_gib * GIB + extra
    th = Thresholds(memory_alarm_max_pct=pct)
    limit = whole(mem * (100 - Fraction(str(pct))) / 100)
    assert mon1(_inventory(mem, 100, free_mem=float(limit)), th) == []
    assert mon1(_inventory(mem, 100, free_mem=mem * (1 - pct / 100)), th) == []
    assert mon1(_inventory(mem, 100, free_mem=float(limit - 1)), th) != []


@FAST
@given(gib=st.integers(5, 65536), pct=pcts)
def test_free_storage_boundary(gib: int, pct: float) -> None:
    th = Thresholds(storage_alarm_max_pct=pct)
    limit = whole(gib * GIB * (100 - Fraction(str(pct))) / 100)
    assert mon1(_inventory(8 * GIB, gib, storage=float(limit)), th) == []
    assert mon1(_inventory(8 * GIB, gib, storage=gib * GIB * (1 - pct / 100)), th) == []
    assert mon1(_inventory(8 * GIB, gib, storage=float(limit - 1)), th) != []


@FAST
@given(maxc=st.integers(10, 20000), pct=pcts)
def test_connections_boundary(maxc: int, pct: float) -> None:
    """GreaterThanThreshold at pct of max (to the nearest connection) passes; one more fails."""
    th = Thresholds(connections_alarm_max_pct=pct)
    limit = whole(maxc * Fraction(str(pct)) / 100)
    assert mon1(_inventory(8 * GIB, 100, maxc, conns=float(limit)), th) == []
    assert mon1(_inventory(8 * GIB, 100, maxc, conns=maxc * pct / 100), th) == []
    assert mon1(_inventory(8 * GIB, 100, maxc, conns=float(limit + 1)), th) != []


@FAST
@given(pct=pcts, lag=seconds)
def test_cpu_and_replica_lag_boundary(pct: float, lag: float) -> None:
    """Real-valued metrics: the threshold itself passes, the next float above fails."""
    th = Thresholds(cpu_alarm_max_pct=pct, replica_lag_max_s=lag)
    assert mon1(_inventory(8 * GIB, 100, cpu=pct, lag=lag), th) == []
    assert mon1(_inventory(8 * GIB, 100, cpu=up(pct), lag=lag), th) != []
    assert mon1(_inventory(8 * GIB, 100, cpu=pct, lag=up(lag)), th) != []


@pytest.mark.parametrize("op, threshold, ok", [
    ("GreaterThanOrEqualToThreshold", 1.0, True), ("GreaterThanThreshold", 0.0, True),
    ("GreaterThanThreshold", 0.5, True), ("GreaterThanOrEqualToThreshold", 2.0, False),
    ("GreaterThanThreshold", 1.0, False)])
def test_backup_failure_alarm_fires_on_the_first_failure(op: str, threshold: float, ok: bool) -> None:
    inv = _inventory(8 * GIB, 100)
    inv.alarms[4] = _alarm("NumberOfBackupJobsFailed", op, threshold, instance=None)
    assert (mon1(inv) == []) is ok


@pytest.mark.parametrize("metric, index, op, fires_at", [
    ("FreeableMemory", 1, "LessThanOrEqualToThreshold", 0), ("DatabaseConnections", 3,
                                                            "GreaterThanOrEqualToThreshold", 1)])
def test_or_equal_operators_are_one_integer_apart(metric: str, index: int, op: str, fires_at: int) -> None:
    """x <= t-1 fires exactly where x < t does (integers); one more step is late."""
    mem, maxc = 8 * GIB, 100
    inv = _inventory(mem, 100, maxc)
    if metric == "FreeableMemory":
        edge = whole(mem * Fraction(15, 100)) - 1
        good, bad = edge, edge - 1
    else:
        edge = 90 + fires_at  # > 90 connections == >= 91
        good, bad = edge, edge + 1
    inv.alarms[index] = _alarm(metric, op, float(good))
    assert mon1(inv, Thresholds(connections_alarm_max_pct=90)) == []
    inv.alarms[index] = _alarm(metric, op, float(bad))
    assert mon1(inv, Thresholds(connections_alarm_max_pct=90)) != []


# Secrets, passwords, certificates ---------------------------------------------------------------

def _secret_inv(rules: dict[str, Any], length: int = 20) -> AwsInventory:
    return AwsInventory(region="us-east-1", endpoint="moto", primary={"DBInstanceIdentifier": "db1"},
                        secret_id="s", secret={"Name": "s", "RotationEnabled": True,
                                               "RotationRules": rules},
                        secret_password_length=length)


@FAST
@given(limit=days)
def test_aws_rotation_boundary(limit: int) -> None:
    th = Thresholds(secret_rotation_max_days=limit)
    assert aws_checks.judge_auth2(_secret_inv({"AutomaticallyAfterDays": limit}), th) == []
    assert aws_checks.judge_auth2(_secret_inv({"AutomaticallyAfterDays": limit + 1}), th) != []
    hours = limit * 24
    assert aws_checks.judge_auth2(_secret_inv({"ScheduleExpression": f"rate({hours} hours)"}), th) == []
    assert aws_checks.judge_auth2(_secret_inv({"ScheduleExpression": f"rate({hours + 1} hours)"}), th) != []


@FAST
@given(limit=days, extra=st.integers(1, 86399))
def test_azure_secret_expiry_boundary(limit: int, extra: int) -> None:
    """An expiry exactly N days after it was set passes; one second later fails (not floored to days)."""
    th = Thresholds(secret_rotation_max_days=limit)
    set_on = datetime.now(UTC)

    def inv(life: timedelta) -> AzureInventory:
        return AzureInventory(endpoint="arm", server_id="/s/srv", secret_name="admin",
                              secret={"exists": True, "updated_on": set_on, "expires_on": set_on + life})
    assert azure.judge_auth2(inv(timedelta(days=limit)), th) == []
    assert azure.judge_auth2(inv(timedelta(days=limit, seconds=extra)), th) != []


@FAST
@given(n=st.integers(1, 128))
def test_password_length_boundary(n: int) -> None:
    th = Thresholds(min_password_length=n)
    assert aws_checks.judge_auth3(_secret_inv({}, length=n), th) == []
    assert aws_checks.judge_auth3(_secret_inv({}, length=n - 1), th) != []


def _cert(days_left: int) -> CertInfo:
    return CertInfo("CN=x", "CN=ca", NOW + timedelta(days=days_left), days_left, "EC", 256)


@FAST
@given(n=st.integers(0, 400))
def test_live_certificate_days_boundary(n: int) -> None:
    th = Thresholds(cert_min_days=n)

    def facts(left: int) -> TlsFacts:
        return TlsFacts("h", 5432, "h", True, {}, "TLSv1.3", None, None, (_cert(left),), None, True,
                        "", True, "", _cert(left), PlaintextResult(PlaintextOutcome.REFUSED_NO_ENCRYPTION))
    assert tls.judge_tls4(facts(n), th) == []
    assert tls.judge_tls4(facts(n - 1), th) != []


@FAST
@given(n=st.integers(0, 400))
def test_aws_certificate_expiry_boundary(n: int) -> None:
    th = Thresholds(cert_min_days=n)

    def inv(till: datetime) -> AwsInventory:
        return AwsInventory(region="us-east-1", endpoint="moto", primary={
            "DBInstanceIdentifier": "db1", "CACertificateIdentifier": "rds-ca-rsa2048-g1",
            "CertificateDetails": {"ValidTill": till}},
            certificates={"rds-ca-rsa2048-g1": {"ValidTill": NOW + timedelta(days=9999)}})
    assert aws_checks.judge_tls4(inv(NOW + timedelta(days=n)), th, now=NOW) == []
    assert aws_checks.judge_tls4(inv(NOW + timedelta(days=n, microseconds=-1)), th, now=NOW) != []


# Backups ----------------------------------------------------------------------------------------

@FAST
@given(lo=st.integers(1, 35), span=st.integers(0, 30))
def test_retention_window_both_edges(lo: int, span: int) -> None:
    """BAK-1 on AWS, Azure and the backup tool: lo and hi pass, lo-1 and hi+1 fail."""
    hi = lo + span
    th = Thresholds(backup_retention_min_days=lo, backup_retention_max_days=hi)

    def aws(d: int) -> list[str]:
        return aws_ops.judge_bak1(AwsInventory(region="r", endpoint="e", primary={
            "DBInstanceIdentifier": "db1", "BackupRetentionPeriod": d}), th)

    def az(d: int) -> list[str]:
        return azure_ops.judge_bak1(AzureInventory(endpoint="e", server_id="/s/srv", server={
            "properties": {"backup": {"backupRetentionDays": d}}}), th)

    def tool(d: int) -> list[str]:
        return backup.judge_bak1(BackupFacts("pgbackrest", "main", "h", {}, {
            "repo-retention-full-type": "time", "repo-retention-full": str(d)}), th)
    for judge in (aws, az, tool):
        assert judge(lo) == [] and judge(hi) == []
        assert judge(lo - 1) != [] and judge(hi + 1) != []


@FAST
@given(rpo=minutes)
def test_pitr_lag_boundary(rpo: float) -> None:
    """BAK-2 on AWS: latest restorable time exactly the RPO ago passes, 1 µs more fails."""
    th = Thresholds(rpo_minutes=rpo)
    exact_rpo = timedelta(microseconds=int(Fraction(str(rpo)) * 60_000_000))

    def inv(ago: timedelta) -> AwsInventory:
        return AwsInventory(region="r", endpoint="e", primary={
            "DBInstanceIdentifier": "db1", "BackupRetentionPeriod": 7,
            "LatestRestorableTime": NOW - ago})
    assert aws_ops.judge_bak2(inv(exact_rpo), th, now=NOW) == []
    assert aws_ops.judge_bak2(inv(exact_rpo + timedelta(microseconds=1)), th, now=NOW) != []


@FAST
@given(rpo=minutes)
def test_wal_waiting_boundary(rpo: float) -> None:
    """BAK-2 (pg_stat_archiver): a segment waiting exactly the RPO passes, a bit longer fails."""
    th = Thresholds(rpo_minutes=rpo)
    wait = float(Fraction(str(rpo)) * 60)

    def facts(waited: float) -> ArchiverFacts:
        return ArchiverFacts("h:5432", "on", 60, 10, "0001", NOW, 0, None, None, NOW,
                             ("0002", waited))
    assert backup.judge_bak2_archiving(facts(wait), th) == []
    assert backup.judge_bak2_archiving(facts(up(wait)), th) != []


@FAST
@given(limit=st.decimals(min_value=Decimal("0.1"), max_value=Decimal("60"), places=1).map(float))
def test_full_backup_age_boundary(limit: float) -> None:
    th = Thresholds(full_backup_max_age_days=limit)
    now = 1_800_000_000
    age = int(Fraction(str(limit)) * 86400)  # 0.1 day is 8640 s: whole seconds

    def facts(stop: int) -> BackupFacts:
        return BackupFacts("pgbackrest", "main", "h", {"backup": [
            {"type": "full", "label": "F", "timestamp": {"stop": stop}}]}, {})
    assert backup.judge_bak2_full_backup(facts(now - age), th, now=now) == []
    assert backup.judge_bak2_full_backup(facts(now - age - 1), th, now=now) != []


@FAST
@given(keep=st.integers(1, 3650))
def test_archive_days_boundary(keep: int) -> None:
    th = Thresholds(archive_min_days=keep)

    def aws(d: int) -> list[str]:
        return aws_ops.judge_bak4(AwsInventory(region="r", endpoint="e", bucket_name="b", bucket={
            "lifecycle": [{"ID": "r", "Status": "Enabled", "Expiration": {"Days": d},
                           "Transitions": [{"StorageClass": "GLACIER", "Days": 1}]}]}), th)

    def az(d: int) -> list[str]:
        return azure_ops.judge_bak4(AzureInventory(
            endpoint="e", server_id="/s/srv", storage_account_name="sa", management_policy={
                "properties": {"policy": {"rules": [{"enabled": True, "definition": {"actions": {
                    "baseBlob": {"tierToArchive": {"daysAfterModificationGreaterThan": 1},
                                 "delete": {"daysAfterModificationGreaterThan": d}}}}}]}}}), th)
    for judge in (aws, az):
        assert judge(keep) == [] and judge(keep - 1) != []


# Live layers and game days ----------------------------------------------------------------------

@FAST
@given(size=st.integers(1, 10000))
def test_pool_size_boundary(size: int) -> None:
    th = Thresholds(pool_size=size)

    def facts(n: int) -> PoolerFacts:
        return PoolerFacts("p:6432", {"default_pool_size": str(n), "server_idle_timeout": "600",
                                      "server_check_query": "select 1", "server_check_delay": "30"})
    assert live.judge_pool1_pgbouncer(facts(size), th) == []
    assert live.judge_pool1_pgbouncer(facts(size + 1), th) != []
    assert live.judge_pool1_pgbouncer(facts(size - 1), th) != []


@FAST
@given(limit=seconds)
def test_replica_lag_boundary(limit: float) -> None:
    th = Thresholds(replica_lag_max_s=limit)

    def facts(lag: float) -> PostgresFacts:
        return PostgresFacts("w:5432", {}, None, [], None, {}, {},
                             [ReplicaFacts("r:5432", True, True, "read-only", lag)])
    assert postgres.judge_ha5(facts(limit), th) == []
    assert postgres.judge_ha5(facts(up(limit)), th) != []


@FAST
@given(limit=seconds, aurora=st.booleans())
@example(limit=30.0, aurora=True)
@example(limit=0.07, aurora=False)
def test_cloudwatch_replica_lag_boundary(limit: float, aurora: bool) -> None:
    """CloudWatch's Maximum at the threshold passes, one step above fails, in either unit."""
    th = Thresholds(replica_lag_max_s=limit)
    metric, scale = ("AuroraReplicaLag", 1000) if aurora else ("ReplicaLag", 1)

    def inv(value: float) -> AwsInventory:
        return AwsInventory(region="r", endpoint="e", primary={"DBInstanceIdentifier": "w"},
                            replicas=[{"DBInstanceIdentifier": "r1"}],
                            replica_lag={"r1": {"MetricName": metric, "window_s": 300,
                                                "Datapoints": [{"Maximum": 0.0}, {"Maximum": value}]}})
    at = float(exact(limit) * scale)  # whole milliseconds: exact as a float
    assert aws_ops.judge_ha5(inv(at), th) == []
    assert aws_ops.judge_ha5(inv(up(at)), th) != []


@FAST
@given(budget=seconds)
def test_rto_boundary(budget: float) -> None:
    """HA-2: writes back exactly at the budget passes, later fails."""
    s = scenarios.SCENARIOS["kill-primary"]

    def verdict(rto: float) -> str:
        m = {"rto": {"rto_s": rto, "resolution_s": 0.05}}
        return next(v["verdict"] for v in scenarios.judge(s, m, budget) if v["id"] == "HA-2")
    assert verdict(budget) == "pass"
    assert verdict(up(budget)) == "fail"


class _Sec:
    def __init__(self, t: float, ok: int) -> None:
        self.t, self.requests, self.failures, self.users = t, ok, 0, 10


@FAST
@given(base=st.integers(10, 5000), ratio=st.decimals(min_value=Decimal("0.5"), max_value=Decimal("1"),
                                                     places=2).map(float))
@example(base=25, ratio=0.56)  # 0.56 x 25 is 14.000000000000002 in floating point
def test_load_recovery_boundary(base: int, ratio: float) -> None:
    """HA-4: throughput back to exactly ratio x baseline recovers; one request less does not."""
    floor = math.ceil(base * Fraction(str(ratio)))
    pre = [_Sec(t, base) for t in range(100, 130)]

    def recovered(after: int) -> float | None:
        return metrics.load_recovery(pre + [_Sec(131, 0)] + [_Sec(t, after) for t in range(132, 140)],
                                     130.5, ratio, sustain=3)
    assert recovered(floor) is not None
    assert recovered(floor - 1) is None


@FAST
@given(rpo=minutes, budget=seconds)
def test_restore_drill_boundary(rpo: float, budget: float) -> None:
    """BAK-6: measured RPO and restore time exactly at their budgets pass; beyond fails."""
    rpo_s = float(Fraction(str(rpo)) * 60)

    def verdict(measured_rpo: float, restore_s: float) -> str:
        m = {"missing": [], "after_t": [], "before_t": 5, "after_t_acked": 1, "rpo_s": measured_rpo,
             "restore_s": restore_s, "probe": {
                 "ssl": {"ssl": True, "version": "TLSv1.3"}, "min_tls": "TLSv1.2",
                 "plaintext": "REFUSED", "listen_addresses": "127.0.0.1", "hba": None,
                 "source_hba": None, "in_recovery": False}}
        return restore_probe.judge(m, exact(rpo) * 60, budget)["verdict"]
    assert verdict(rpo_s, budget) == "pass"
    assert verdict(up(rpo_s), budget) == "fail"
    assert verdict(rpo_s, up(budget)) == "fail"


@FAST
@given(budget=seconds)
def test_alarm_delivery_boundary(budget: float) -> None:
    r = {"alarm": "a", "delivered_s": budget}
    assert alarm_drill.judge(r, budget)["verdict"] == "pass"
    assert alarm_drill.judge({**r, "delivered_s": up(budget)}, budget)["verdict"] == "fail"


def test_unknown_memory_is_not_judged() -> None:
    """No instance memory: the byte thresholds cannot be derived, so MON-1 cannot pass."""
    inv = _inventory(8 * GIB, 100)
    inv.instance_memory_bytes = None
    with pytest.raises(CannotVerify, match="instance memory"):
        mon1(inv)


def test_unmeasured_replica_lag_is_not_a_pass() -> None:
    """A standby that reports no replay position (Aurora readers) cannot pass HA-5 on lag."""
    f = PostgresFacts("w:5432", {}, None, [], None, {}, {},
                      [ReplicaFacts("r:5432", True, True, "read-only", None, "no replay position")])
    with pytest.raises(CannotVerify, match="no replay position"):
        postgres.judge_ha5(f, Thresholds())


@pytest.mark.parametrize("dims, ok", [
    ([{"Name": "BackupVaultName", "Value": "v"}], True),  # the vault the target's plan writes to
    ([], True),  # every backup job of the account
    ([{"Name": "BackupVaultName", "Value": "other-db-vault"}], False)])  # pages for another database
def test_backup_failure_alarm_watches_the_targets_vault(dims: list[dict[str, str]], ok: bool) -> None:
    """Two databases in one account: the other one's vault alarm does not page for this one (and
    the alarm drill does not force it)."""
    inv = _inventory(8 * GIB, 100)
    inv.backup_plans = [{"BackupPlanId": "p", "BackupPlan": {"Rules": [{"TargetBackupVaultName": "v"}]}}]
    inv.alarms[4] = {**inv.alarms[4], "Dimensions": dims}
    assert (mon1(inv) == []) is ok
    assert (inv.alarms[4] in drill_alarms(inv, Thresholds())) is ok
