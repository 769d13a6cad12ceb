"""Responses recorded from real AWS and Azure accounts, replayed through the probes and judges.

Why: the twins are written by us, so a twin and a probe can share one
misreading. These answers come from accounts nobody on this project built
(Cloud Custodian's published recordings; see tests/data/recorded/README.md).
Every probe call is answered from a recording (a call without one fails the
test), and every judge's verdict on them is asserted: a real shape may be
judged pass, fail or cannot-verify, never crash and never a false verdict.
Fast tier: no lab, no network.
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path
from typing import Any

import placebo
import pytest
from recorded_replay import (
    DATA,
    DB_INSTANCES,
    Cassettes,
    aws_replay,
    azure_replay,
    cassette_body,
    verdicts,
)

from pgproof.catalogue.registry import judges
from pgproof.checks import aws as aws_checks
from pgproof.checks import azure as azure_checks
from pgproof.probes import aws as aws_probe
from pgproof.probes.aws_fleet import FleetProbe
from pgproof.target import Aws, Azure, Thresholds
from pgproof.verdict import Unreachable

# The target a user would write for each recording: a secret and a backup bucket to read.
AWS_CFG = {"secret_id": "test1", "backup_bucket": "recorded-bucket"}

# Verdict per control on each recorded DB instance (the rest of the account is shared:
# aws/instance/). Reasons are asserted apart where a verdict was wrong before.
_COMMON = {"TLS-1": "fail", "TLS-2": "fail", "TLS-4": "fail", "TLS-6": "not-applicable",
           "NET-2": "pass", "AUTH-2": "cannot-verify", "AUTH-3": "cannot-verify", "ENC-2": "pass",
           "ENC-3": "fail", "AUDIT-1": "fail", "BAK-3": "fail", "BAK-4": "pass", "MON-1": "fail",
           "MON-2": "fail", "MNT-1": "fail", "HA-5": "not-applicable",
           # Every recorded RDS group: PostgreSQL's defaults where unset (LOG-6..11 pass, LOG-12,
           # LOG-15, LOG-18 fail) and RDS's own log_hostname = 1 (Source system, modifiable).
           **dict.fromkeys(("LOG-6", "LOG-7", "LOG-8", "LOG-9", "LOG-10", "LOG-11"), "pass"),
           **dict.fromkeys(("LOG-12", "LOG-13", "LOG-15", "LOG-18"), "fail")}
EXPECTED_AWS = {
    "postgres-14.7": {**_COMMON, "NET-1": "fail", "NET-3": "cannot-verify", "AUTH-5": "pass",
                      "ENC-1": "fail", "BAK-1": "fail", "BAK-2": "fail", "BAK-5": "fail",
                      "HA-1": "fail"},
    # A Multi-AZ DB cluster's member named by db_instance_id only: cluster settings unknown.
    "postgres-13.7-cluster-member": {**_COMMON, "NET-1": "pass", "NET-3": "cannot-verify",
                                     "AUTH-5": "fail", "ENC-1": "fail", "BAK-1": "pass",
                                     "BAK-2": "cannot-verify", "BAK-5": "cannot-verify",
                                     "HA-1": "cannot-verify"},
    "postgres-13.4": {**_COMMON, "NET-1": "pass", "NET-3": "cannot-verify", "AUTH-5": "fail",
                      "ENC-1": "fail", "BAK-1": "pass", "BAK-2": "cannot-verify", "BAK-5": "fail",
                      "HA-1": "fail"},
    "postgres-12.10": {**_COMMON, "NET-1": "pass", "NET-3": "cannot-verify", "AUTH-5": "fail",
                       "ENC-1": "fail", "BAK-1": "fail", "BAK-2": "fail", "BAK-5": "fail",
                       "HA-1": "fail"},
    "postgres-9.6.2": {**_COMMON, "NET-1": "fail", "NET-3": "fail", "AUTH-5": "pass",
                       "ENC-1": "fail", "BAK-1": "pass", "BAK-2": "fail",
                       "BAK-5": "cannot-verify", "HA-1": "pass"},
    "postgres-9.5.2-console-sg": {**_COMMON, "NET-1": "fail", "NET-3": "fail", "AUTH-5": "pass",
                                  "ENC-1": "fail", "BAK-1": "pass", "BAK-2": "fail",
                                  "BAK-5": "cannot-verify", "HA-1": "fail"},
}
VERDICTS = {"pass", "fail", "cannot-verify", "not-applicable", "error"}


@pytest.fixture(autouse=True)
def _offline_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing leaves the process: no endpoint override, dummy keys (placebo answers first)."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "recorded")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "recorded")


def _instance(name: str) -> Path:
    return DB_INSTANCES / f"{name}.json"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_AWS))
def test_every_recorded_db_instance_is_judged_without_a_crash(name: str, tmp_path: Path) -> None:
    inv = aws_replay(tmp_path, _instance(name), **AWS_CFG)
    got = verdicts(judges("aws"), inv)
    assert set(got) == set(judges("aws"))
    assert {v for v, _ in got.values()} <= VERDICTS
    want = EXPECTED_AWS[name]
    assert {c: v for c, (v, _) in got.items()} == want, {c: got[c] for c in got if got[c][0] != want[c]}


@pytest.mark.slow
def test_the_recorded_parameter_group_is_read_across_its_pages(tmp_path: Path) -> None:
    """Real DescribeDBParameters answers 100 parameters a page with a Marker; unset ones have no value."""
    inv = aws_replay(tmp_path, _instance("postgres-14.7"), **AWS_CFG)
    params = inv.parameters["default.postgres14"]
    assert len(params) > 200
    assert params["rds.force_ssl"] == "0" and params["log_connections"] is None
    assert params["max_connections"] == "LEAST({DBInstanceClassMemory/9531392},5000)"


def test_a_multi_az_db_cluster_member_is_not_failed_on_instance_level_fields(tmp_path: Path) -> None:
    """Every member of a real Multi-AZ DB cluster reports MultiAZ false and DeletionProtection false.

    Before: HA-1 "MultiAZ is off" and BAK-5 "DeletionProtection is off" (false FAILs on a
    three-AZ cluster); now both name the cluster and the setting that would judge it.
    """
    inv = aws_replay(tmp_path, _instance("postgres-13.7-cluster-member"), **AWS_CFG)
    assert inv.primary is not None and inv.primary["MultiAZ"] is False
    got = verdicts(judges("aws"), inv)
    for cid in ("HA-1", "BAK-5"):
        assert got[cid][0] == "cannot-verify", got[cid]
        assert "member of DB cluster test" in got[cid][1] and 'db_cluster_id = "test"' in got[cid][1]


def test_enc1_names_the_keys_own_alias_from_an_unfiltered_alias_list(tmp_path: Path) -> None:
    """The recorded ListAliases lists every alias of the account; only the key's own may count."""
    inv = aws_replay(tmp_path, _instance("postgres-14.7"), **AWS_CFG)
    key = next(iter(inv.kms_keys.values()))
    assert key["Aliases"] == ["alias/aws/rds"]
    problems = aws_checks.judge_enc1(inv, aws_checks.Thresholds())
    assert problems and "alias/aws/rds is AWS-managed" in problems[0], problems


def test_real_findings_on_recordings_name_what_was_found(tmp_path: Path) -> None:
    inv = aws_replay(tmp_path, _instance("postgres-9.5.2-console-sg"), **AWS_CFG)
    got = verdicts(judges("aws"), inv)
    assert "sg-f6a42890: tcp 5432-5432 is open to public range 108.56.194.116/32" in got["NET-3"][1]
    assert "DeletionProtection not reported" in got["BAK-5"][1]  # a 2016 record has no such field
    assert "GetSecretValue was refused (AccessDeniedException)" in got["AUTH-3"][1]
    assert "RotationRules" not in (inv.secret or {}) and got["AUTH-2"][0] == "cannot-verify"


# Keys every real answer carries (the resource's own identifier, or built by the probe):
# a judge may index them. Any other field may be absent from a real record.
IDENTITY = {"DBInstanceIdentifier", "VpcSecurityGroupId", "DBParameterGroupName", "DBProxyName",
            "DBSnapshotIdentifier", "BackupPlan", "BackupPlanId",
            "Aliases", "routes", "route_table_id", "explicit"}  # the last four: built by the probe


def _paths(obj: Any, pre: tuple = ()) -> Any:
    """Every key path in a record (each list's items too)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield (*pre, k)
            yield from _paths(v, (*pre, k))
    elif isinstance(obj, list):
        for i, el in enumerate(obj):
            yield from _paths(el, (*pre, i))


def _without_each_field(inv: Any, attrs: tuple[str, ...], judges: dict) -> dict[tuple, str]:
    """Remove one field at a time from the recorded records; every judge must still answer."""
    crashes: dict[tuple, str] = {}
    for attr in attrs:
        for path in list(_paths(getattr(inv, attr))):
            if path[-1] in IDENTITY:
                continue
            probe = copy.deepcopy(inv)
            rec = getattr(probe, attr)
            for step in path[:-1]:
                rec = rec[step]
            rec.pop(path[-1])
            try:
                verdicts(judges, probe)
            except Exception as exc:  # noqa: BLE001 - any crash is the finding
                crashes[(attr, *path)] = f"{type(exc).__name__}: {exc}"
    return crashes


def test_no_judge_crashes_when_any_recorded_aws_field_is_absent(tmp_path: Path) -> None:
    inv = aws_replay(tmp_path, _instance("postgres-14.7"), extra=DATA / "aws" / "proxy",
                     db_proxy_name="proxy-test-1", **AWS_CFG)
    attrs = ("primary", "secret", "proxy", "snapshots", "kms_keys", "bucket", "backup_plans",
             "alarms", "certificates", "automated_backups", "engine_version_info", "subnet_routes",
             "security_groups")
    assert _without_each_field(inv, attrs, judges("aws")) == {}


def test_a_recorded_rds_proxy_without_require_tls_fails_tls6(tmp_path: Path) -> None:
    inv = aws_replay(tmp_path, _instance("postgres-14.7"), extra=DATA / "aws" / "proxy",
                     db_proxy_name="proxy-test-1", **AWS_CFG)
    assert verdicts({"TLS-6": aws_checks.judge_tls6}, inv)["TLS-6"] == (
        "fail", "db-proxy proxy-test-1: RequireTLS is off, so clients may connect in plaintext; "
                "the spec wants RequireTLS on")


def test_a_recorded_aurora_cluster_plugs_into_the_replay(tmp_path: Path) -> None:
    """Cluster recordings replay the same way (``extra=`` + ``db_cluster_id``).

    The public Aurora PostgreSQL recordings have no members: with only the cluster named
    there is no database to describe (one sentence, never a crash); with the instance
    named too, the cluster-level judges read the cluster's record.
    """
    cluster = DATA / "aws" / "cluster-aurora-postgresql"
    with pytest.raises(Unreachable, match="neither db_instance_id nor a DB cluster with a writer"):
        aws_replay(tmp_path / "alone", _instance("postgres-14.7"), extra=cluster,
                   db_cluster_id="c7n-test", db_instance_id=None, **AWS_CFG)
    inv = aws_replay(tmp_path / "named", _instance("postgres-14.7"), extra=cluster,
                     db_cluster_id="c7n-test", **AWS_CFG)
    assert inv.cluster is not None and inv.cluster["Engine"] == "aurora-postgresql"
    got = verdicts(judges("aws"), inv)
    assert {v for v, _ in got.values()} <= VERDICTS
    assert got["BAK-5"] == ("fail", "db-cluster c7n-test: DeletionProtection is off; the spec "
                                    "wants it on for the primary")
    assert got["BAK-1"] == ("pass", "")  # the cluster's retention (7 days), not the instance's 0


def test_fleet_discovery_on_a_recorded_account_keeps_only_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real account lists MySQL beside PostgreSQL; the fleet selects only the PostgreSQL one."""
    real_session = aws_probe.session

    def recorded_session(*args: Any, **kw: Any) -> Any:
        s = real_session(*args, **kw)
        placebo.attach(s, str(DATA / "aws" / "fleet")).playback()
        return s

    monkeypatch.setattr(aws_probe, "session", recorded_session)
    probe = FleetProbe(Aws(region="us-west-2", db_instance_id="*"), max_attempts=1)
    assert probe.discover() == ["us-west-2/zebramoon"]


def test_a_read_replicas_cloudwatch_lag_is_judged_on_the_recorded_shape(tmp_path: Path) -> None:
    """GetMetricStatistics in its published shape (hand-written: no public recording of a
    replica's lag) through the probe: the worst Maximum is judged; 8 s is within 30 s."""
    doc = json.loads(_instance("postgres-14.7").read_text())
    primary = doc["data"]["DBInstances"][0]
    primary["ReadReplicaDBInstanceIdentifiers"] = ["recorded-replica"]
    replica = {**copy.deepcopy(primary), "DBInstanceIdentifier": "recorded-replica",
               "ReadReplicaDBInstanceIdentifiers": [],
               "ReadReplicaSourceDBInstanceIdentifier": primary["DBInstanceIdentifier"]}
    extra = tmp_path / "extra"
    shutil.copytree(DATA / "aws" / "read-replica", extra)
    (extra / "rds.DescribeDBInstances_2.json").write_text(json.dumps(
        {**doc, "data": {**doc["data"], "DBInstances": [replica]}}))
    first = tmp_path / "postgres-14.7.json"
    first.write_text(json.dumps(doc))
    inv = aws_replay(tmp_path, first, extra=extra, **AWS_CFG)
    assert [r["DBInstanceIdentifier"] for r in inv.replicas] == ["recorded-replica"]
    assert verdicts({"HA-5": judges("aws")["HA-5"]}, inv)["HA-5"] == ("pass", "")
    tight = Thresholds(replica_lag_max_s=7.5)
    assert verdicts({"HA-5": judges("aws")["HA-5"]}, inv, tight)["HA-5"] == (
        "fail", "db-instance recorded-replica: ReplicaLag reached 8 s in the last 300 s; the spec "
                "wants at most 7.5 s")


def test_a_probe_call_without_a_recording_fails_loudly(tmp_path: Path) -> None:
    """The replay never invents an answer: a describe call with no file is an error here."""
    with pytest.raises(OSError, match="response file"):  # no DescribeDBProxies recording here
        aws_replay(tmp_path, _instance("postgres-14.7"), db_proxy_name="unrecorded", **AWS_CFG)


# ---- Azure -------------------------------------------------------------------------------

SUB = "ea42f556-5106-4743-99b0-c129bfa71a47"
RG = f"/subscriptions/{SUB}/resourceGroups/testrg"
HAND = DATA / "azure" / "hand-written"
NSG = cassette_body("NetworkSecurityGroupTest.test_find_by_name.json", 0, 0)


def _routes(server: str, item: int) -> list[tuple[str, Any]]:
    srv = f"{RG}/providers/Microsoft.DBforPostgreSQL/flexibleServers/{server}"
    return [
        (srv, cassette_body("PostgreSQLFlexibleServerTest.test_find_by_name.json", 0, item)),
        (srv + "/configurations",
         cassette_body("PostgresqlServerTest.test_find_server_by_configuration.json", 0)),
        (srv + "/firewallRules", cassette_body("PostgresqlServerTest.firewall-bypass.json", 0)),
        (srv + "/providers/Microsoft.Authorization/locks",
         cassette_body("ResourceLockFilter.test_find_by_lock.json", 1)),
        (srv + "/providers/Microsoft.Insights/diagnosticSettings",
         cassette_body("DiagnosticSettingsFilterTest.test_filter_diagnostic_settings_enabled.json", 0)),
        (f"{RG}/providers/Microsoft.Network/virtualNetworks/test-vnet/subnets/test-vnet-subnet",
         json.loads((HAND / "Subnets_Get.delegated.json").read_text())),
        (f"{RG}/providers/Microsoft.Insights/metricAlerts",
         json.loads((HAND / "MetricAlerts_ListByResourceGroup.empty.json").read_text())),
        (NSG["id"], NSG),
    ]


def _azure(server: str, item: int) -> tuple[Any, Cassettes]:
    cfg = Azure(subscription_id=SUB, resource_group="testrg", server_name=server,
                credential="lab-static", endpoint="https://management.azure.com",
                nsg_ids=[NSG["id"]])
    adapter = Cassettes(_routes(server, item))
    inv = azure_replay(cfg, adapter)
    assert adapter.unmatched == [], f"probe asked for answers with no recording: {adapter.unmatched}"
    return inv, adapter


_AZ_COMMON = {"TLS-1": "cannot-verify", "TLS-2": "cannot-verify", "TLS-4": "cannot-verify",
              "NET-3": "fail", "AUTH-2": "fail", "AUTH-5": "pass", "ENC-1": "fail",
              "ENC-3": "not-applicable", "AUDIT-1": "fail", "BAK-1": "pass", "BAK-2": "pass",
              "BAK-3": "fail", "BAK-4": "not-applicable", "BAK-5": "pass", "MON-1": "fail",
              "MON-2": "fail", "MNT-1": "fail",
              # Azure's defaults (recorded): log_error_verbosity default, log_line_prefix %t-%c-,
              # log_statement none fail CIS; debug_pretty_print is not listed by these servers.
              **dict.fromkeys(("LOG-6", "LOG-7", "LOG-8", "LOG-9", "LOG-10"), "pass"),
              "LOG-11": "cannot-verify", "LOG-12": "fail", "LOG-14": "fail", "LOG-15": "fail"}
EXPECTED_AZURE = {
    ("pgtestsvc4", 0): {**_AZ_COMMON, "NET-1": "pass", "NET-2": "pass", "NET-4": "pass", "HA-1": "pass"},
    ("pgtestsvc1", 1): {**_AZ_COMMON, "NET-1": "fail", "NET-2": "fail", "NET-4": "fail", "HA-1": "fail"},
}


@pytest.mark.parametrize(("server", "item"), sorted(EXPECTED_AZURE))
def test_recorded_flexible_servers_are_judged_without_a_crash(server: str, item: int) -> None:
    inv, adapter = _azure(server, item)
    assert inv.missing == {} and inv.denied == {}
    # server, configurations, firewall, (delegated subnet), nsg, locks, alerts, diagnostics
    assert len(adapter.seen) == (8 if server == "pgtestsvc4" else 7), adapter.seen
    got = verdicts(judges("azure"), inv)
    want = EXPECTED_AZURE[(server, item)]
    assert {c: v for c, (v, _) in got.items()} == want, {c: got[c] for c in got if got[c][0] != want[c]}


def test_recorded_server_fields_keep_their_wire_shape() -> None:
    """The SDK's model keeps the recorded strings (earliestRestoreDate has 7 fractional digits)."""
    inv, _ = _azure("pgtestsvc4", 0)
    assert inv.props["backup"]["earliestRestoreDate"] == "2021-05-26T01:16:58.3723361+00:00"
    assert inv.props["highAvailability"]["standbyAvailabilityZone"] == "2"
    assert inv.subnet is not None and inv.parameters["log_disconnections"] == "off"


def test_the_default_azure_load_balancer_rule_is_not_a_client_path() -> None:
    """Every real NSG carries AllowAzureLoadBalancerInBound (Azure's health probe, 168.63.129.16).

    Before: NET-3 said it "admits port 5432 from AzureLoadBalancer". AllowVnetInBound still
    counts: the whole virtual network reaching the port is a real finding without a deny above it.
    """
    inv, _ = _azure("pgtestsvc4", 0)
    sentence = verdicts(judges("azure"), inv)["NET-3"][1]
    assert "AllowAzureLoadBalancerInBound" not in sentence
    assert "rule AllowVnetInBound (priority 65000) admits port 5432 from VirtualNetwork" in sentence
    assert "firewall rule AllowAllAzureIps allows all Azure services (0.0.0.0)" in sentence


def test_recorded_backup_storage_is_judged_on_its_real_shape() -> None:
    """A real 2022 storage account has no allowBlobPublicAccess/minimumTlsVersion keys (old
    defaults: public access allowed, TLS 1.0): ENC-3 fails, not proven locked. Its lifecycle
    policy deletes after 3.0 days (a float) and archives nothing: BAK-4 fails."""
    acct = "cctstorageyenndgetjsvtg"
    base = f"{RG}/providers/Microsoft.Storage/storageAccounts/{acct}"
    listed = cassette_body("StorageTest.test_storage_blob_services.json", 0)["value"]
    routes = [*_routes("pgtestsvc4", 0),
              (base, next(a for a in listed if a["name"] == acct)),
              (base + "/blobServices/default",
               cassette_body("StorageTest.test_storage_blob_services.json", 1)),
              (base + "/managementPolicies/default",
               cassette_body("StorageTest.test_storage_management_policy_rules_filter.json", 0))]
    cfg = Azure(subscription_id=SUB, resource_group="testrg", server_name="pgtestsvc4",
                credential="lab-static", endpoint="https://management.azure.com",
                nsg_ids=[NSG["id"]], backup_storage_account=acct)
    adapter = Cassettes(routes)
    inv = azure_replay(cfg, adapter)
    assert adapter.unmatched == [] and inv.missing == {} and inv.denied == {}
    got = verdicts({"ENC-3": azure_checks.judge_enc3, "BAK-4": judges("azure")["BAK-4"]}, inv)
    assert got["ENC-3"][0] == "fail"
    for fact in ("allowBlobPublicAccess is None", "minimumTlsVersion is None",
                 "supportsHttpsTrafficOnly is off", "Microsoft-managed keys", "blob versioning off"):
        assert fact in got["ENC-3"][1], (fact, got["ENC-3"][1])
    assert got["BAK-4"][0] == "fail" and "Archive tier" in got["BAK-4"][1]


def test_no_judge_crashes_when_any_recorded_azure_field_is_absent() -> None:
    inv, _ = _azure("pgtestsvc4", 0)
    attrs = ("server", "firewall_rules", "subnet", "nsgs", "locks", "diagnostic_settings")
    assert _without_each_field(inv, attrs, judges("azure")) == {}


def test_every_recorded_file_names_its_source() -> None:
    """SOURCES.tsv names each file's origin (repository, path, commit) or says it is hand-written."""
    with (DATA / "SOURCES.tsv").open() as fh:
        rows = {r["local"]: r for r in csv.DictReader(fh, delimiter="\t")}
    files = {str(p.relative_to(DATA)) for p in DATA.rglob("*.json")}
    assert files <= set(rows), sorted(files - set(rows))
    for local, r in rows.items():
        assert (DATA / local).is_file(), local
        assert r["repository"] in ("cloud-custodian/cloud-custodian", "hand-written"), r
        if r["repository"] != "hand-written":
            assert len(r["commit"]) == 40 and r["path"], r
