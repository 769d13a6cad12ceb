"""Fleet checks: one target selects many RDS databases; each AWS control is judged per database.

A real moto server with a small fleet in two regions: the compliant twin, one broken
instance (public, unencrypted) and one of another team that the tag filter must drop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import boto3
import pytest
import requests

from pgproof import procs
from pgproof.lab.aws_fleet_twin import provision_fleet
from pgproof.probes.aws import AwsProbe
from pgproof.probes.aws_fleet import FleetProbe, gather_fleet
from pgproof.target import ConfigError, parse_target

REPO = Path(__file__).resolve().parent.parent
PGPROOF = Path(sys.executable).parent / "pgproof"
REGIONS = ["us-east-1", "eu-west-1"]
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
         "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture
def moto_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for k, v in CREDS.items():
        monkeypatch.setenv(k, v)
    (port,) = procs.free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)  # moto's state is per process
        server.stop()


def fleet_config(path: Path, url: str, name: str = "fleet") -> Path:
    path.write_text(f"""
[targets.{name}.postgres]
user = "auditor"
writer = {{ host = "127.0.0.1", port = 1 }}
[targets.{name}.aws]
region = "us-east-1"
regions = {json.dumps(REGIONS)}
endpoint_url = "{url}"
db_instance_id = "*"
db_tags = {{ team = "pay" }}
""")
    return path


@pytest.mark.slow
def test_fleet_matrix_names_the_broken_database(moto_url: str, tmp_path: Path) -> None:
    fleet = provision_fleet(moto_url, REGIONS, 3, bad_every=2, other_every=3)
    assert len(fleet.bad) == 2 and len(fleet.other_team) == 2 and len(fleet.good) == 2
    cfg = fleet_config(tmp_path / "pgproof.toml", moto_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PGPROOF_"))}
    r = subprocess.run([str(PGPROOF), "check", "--target", "fleet", "--config", str(cfg),
                        "--reports", str(tmp_path / "reports"), "--control", "NET-1,ENC-1"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300,
                       env={**env, **CREDS})
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    run = (tmp_path / "reports" / "latest-check").resolve()
    doc = json.loads((run / "results.json").read_text())
    rows = doc["fleet"]["matrix"]
    assert {row["database"] for row in rows} == set(fleet.good + fleet.bad)  # other team: dropped
    assert [row["database"] for row in rows[:2]] == sorted(fleet.bad)  # worst first
    for row in rows:
        want = "fail" if row["database"] in fleet.bad else "pass"
        assert row["controls"]["NET-1"] == want, row
    enc1 = {ch["database"]: ch["evidence"] for c in doc["controls"] if c["id"] == "ENC-1"
            for ch in c["checks"] if ch.get("database") and ch["verdict"] == "fail"}
    assert set(enc1) == set(fleet.bad) and all(db.split("/")[1] in enc1[db] for db in enc1)
    for out in ("results.sarif", "junit.xml", "summary.html"):
        assert (run / out).exists(), out
    assert fleet.bad[0] in (run / "summary.html").read_text()
    # One pytest item per control and layer, not per database: it fails if any database fails
    # and lists each failing database with its sentence; results.json keeps one check per database.
    cases = {str(tc.get("name")).split(" [")[0]: tc for tc in ET.parse(run / "junit.xml").iter("testcase")}
    assert {n for n in cases if "-aws" in n} == {"test_control[NET-1-aws]", "test_control[ENC-1-aws]"}
    failure = cases["test_control[NET-1-aws]"].find("failure")
    assert failure is not None
    text = failure.get("message", "") + (failure.text or "")
    assert f"{len(fleet.bad)} of {len(rows)} databases fail" in text, text
    for db in fleet.bad:
        assert f"{db}: db-instance {db.split('/')[1]}: PubliclyAccessible is true" in text, text
    for db in fleet.good:
        assert f"{db}: " not in text, text
    net1 = {ch["database"]: ch for c in doc["controls"] if c["id"] == "NET-1" for ch in c["checks"]
            if ch.get("database")}
    assert set(net1) == set(fleet.good + fleet.bad)
    assert all(ch["check"] == f"suites/test_controls.py::test_control[NET-1-aws-{db}]"
               for db, ch in net1.items())
    sarif = json.loads((run / "results.sarif").read_text())["runs"][0]["results"]
    assert len([r for r in sarif if r["ruleId"] == "NET-1"]) == len(fleet.bad)  # one per database


def test_fleet_describes_each_database_once_by_discovery(moto_url: str) -> None:
    """Discovery's DescribeDBInstances pages already hold every instance's record: the
    inventories start from them (one listing per region), not one more describe per database."""
    fleet = provision_fleet(moto_url, REGIONS, 3, bad_every=2, other_every=3)
    cfg = parse_target("fleet", {"postgres": {"user": "a", "writer": {"host": "127.0.0.1", "port": 1}},
                                 "aws": {"region": "us-east-1", "regions": REGIONS, "endpoint_url": moto_url,
                                         "db_instance_id": "*", "db_tags": {"team": "pay"}}}, "t").aws
    assert cfg is not None
    probe = FleetProbe(cfg, max_attempts=1)
    calls: list[dict[str, object]] = []
    listings: list[dict[str, object]] = []
    for region in REGIONS:
        events = probe._ctx[region].client("rds").meta.events
        events.register("before-parameter-build.rds.DescribeDBInstances", lambda params, **_: calls.append(params))
        for op in ("DescribeDBSnapshots", "DescribeDBInstanceAutomatedBackups"):
            events.register(f"before-parameter-build.rds.{op}", lambda params, **_: listings.append(params))
    ids = probe.discover()
    got = gather_fleet(cfg, ids=ids, probe=probe)
    assert sorted(ids) == sorted(fleet.good + fleet.bad)
    assert [c for c in calls if "DBInstanceIdentifier" in c] == []  # no per-database describe
    assert len([c for c in calls if "Filters" not in c]) == len(REGIONS)  # discovery: once a region
    assert len(listings) == 2 * len(REGIONS) and all("DBInstanceIdentifier" not in c for c in listings)
    # Snapshots, automated backups and RDS log groups: one listing a region, filtered per database,
    # equal to what the single-database probe's filtered calls return (the twins hold some).
    single: dict[str, dict[str, object]] = {}
    for key in ids:
        region, db = key.split("/", 1)
        single[key] = asdict(AwsProbe(cfg.model_copy(update={"region": region, "regions": [], "db_tags": {},
                                                              "db_instance_id": db}), workers=1).gather())
    assert any(s["snapshots"] for s in single.values()) and any(s["log_groups"] for s in single.values())
    for key, inv in got.inventories.items():  # the record equals what describing that database returns
        assert not isinstance(inv, Exception), inv
        region, db = key.split("/", 1)
        again = boto3.client("rds", region_name=region, endpoint_url=moto_url).describe_db_instances(
            DBInstanceIdentifier=db)["DBInstances"][0]
        assert inv.primary is not None
        moving = {"LatestRestorableTime"}  # "now" when asked, on moto
        assert {k: v for k, v in inv.primary.items() if k not in moving} == \
            {k: v for k, v in again.items() if k not in moving}, key
        mine = asdict(inv)
        for fact in ("snapshots", "snapshot_restore", "automated_backups", "log_group_prefix", "log_groups",
                     "parameters", "parameter_families", "engine_defaults", "missing"):
            assert mine[fact] == single[key][fact], (key, fact)


def test_fleet_section_refuses_single_database_resources(tmp_path: Path) -> None:
    data = {"postgres": {"user": "a", "writer": {"host": "127.0.0.1", "port": 1}},
            "aws": {"region": "us-east-1", "db_instance_id": "*", "secret_id": "one-secret"}}
    with pytest.raises(ConfigError, match="secret_id names one database's resource"):
        parse_target("f", data, str(tmp_path / "pgproof.toml"))


@pytest.mark.slow
def test_two_targets_side_by_side(moto_url: str, tmp_path: Path) -> None:
    """`pgproof check --target east --target west`: xdist, one worker each, a report each + index."""
    fleet = provision_fleet(moto_url, REGIONS, 2, bad_every=1)  # per region: the twin + 1 broken
    east = next(k for k in fleet.good if k.startswith("us-east-1/")).split("/")[1]
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text(f"""
[targets.east.postgres]
user = "auditor"
writer = {{ host = "127.0.0.1", port = 1 }}
[targets.east.aws]
region = "us-east-1"
endpoint_url = "{moto_url}"
db_instance_id = "{east}"
[targets.west.postgres]
user = "auditor"
writer = {{ host = "127.0.0.1", port = 1 }}
[targets.west.aws]
region = "eu-west-1"
endpoint_url = "{moto_url}"
db_instance_id = "fleet-*"
""")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PGPROOF_"))}
    r = subprocess.run([str(PGPROOF), "check", "--target", "east", "--target", "west", "--config",
                        str(cfg), "--reports", str(tmp_path / "reports"), "--control", "NET-1"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**env, **CREDS})
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    (index,) = (tmp_path / "reports").glob("targets-*.json")
    doc = json.loads(index.read_text())
    by = {t["target"]: t for t in doc["targets"]}
    assert set(by) == {"east", "west"} and doc["exit_code"] == 1
    assert by["west"]["exit_code"] == 1 and by["east"]["exit_code"] != 1, by
    for name, t in by.items():
        run = json.loads((Path(t["dir"]) / "results.json").read_text())
        assert run["target"] == name and Path(t["dir"]).name.endswith(f"-{name}")
        assert (Path(t["dir"]) / "junit.xml").is_file() and (Path(t["dir"]) / "results.sarif").is_file()
    west = json.loads((Path(by["west"]["dir"]) / "results.json").read_text())
    assert [row["database"] for row in west["fleet"]["matrix"]] == ["eu-west-1/fleet-eu-west-1-001",
                                                                   "eu-west-1/fleet-eu-west-1"]
    assert "combined index:" in r.stdout and index.with_suffix(".html").is_file()
