"""The lab's real backups: pgBackRest in the twin's bucket, encrypted, archiving from whichever node
leads, and restorable to a point in time into a scratch data directory.

Runs after the matrix (stage 4): it switches the leader over.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import psycopg
import pytest
import requests

from pgproof import procs
from pgproof.checks import backup as judge
from pgproof.lab import aws_twin, backup, lifecycle
from pgproof.lab import components as c
from pgproof.lab.state import NODES, LabState
from pgproof.probes import backup as probe
from pgproof.target import Target

pytestmark = pytest.mark.stage("gameday")


def _info(lab: LabState) -> dict:  # type: ignore[type-arg]
    r = backup.run_tool(lab, "--output=json", "info")
    assert r.returncode == 0, r.stderr
    [stanza] = json.loads(r.stdout)
    return stanza


def _sql(lab: LabState, query: str, port: str = "haproxy_writer") -> object:
    with psycopg.connect(**c.superuser_conninfo(lab, port), autocommit=True) as conn:
        cur = conn.execute(query)
        row = cur.fetchone() if cur.description else None
        return row[0] if row else None


def _archived_after(lab: LabState, since: datetime, timeout: float = 90) -> str:
    """Switch WAL until the leader's archiver reports a success after ``since``; the WAL name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _sql(lab, "CREATE TABLE IF NOT EXISTS pgproof_archive_nudge (at timestamptz)")
        _sql(lab, "INSERT INTO pgproof_archive_nudge VALUES (now())")
        _sql(lab, "SELECT pg_switch_wal()")
        time.sleep(1)
        row = None
        with psycopg.connect(**c.superuser_conninfo(lab), autocommit=True) as conn:
            row = conn.execute("SELECT last_archived_wal, last_archived_time FROM pg_stat_archiver"
                               ).fetchone()
        if row and row[1] and row[1] > since:
            return str(row[0])
    raise AssertionError(f"nothing archived after {since} within {timeout:.0f} s")


def test_first_full_backup_lands_encrypted_in_the_twin_bucket(lab: LabState) -> None:
    st = backup.wait_ready(lab)
    assert st.ready and "full backup" in st.detail
    rows = {s.name: s for s in lifecycle.status(lab.state_dir)}
    assert rows["backup"].healthy and rows["backup"].detail.startswith("ready: full backup")
    info = _info(lab)
    assert info["status"]["code"] == 0, info["status"]
    assert [r["cipher"] for r in info["repo"]] == ["aes-256-cbc"]
    assert any(b["type"] == "full" for b in info["backup"])
    if not lab.aws:
        pytest.skip("no AWS twin: the repository is a local directory")
    # Independently of pgbackrest: the objects are in the twin's bucket and are ciphertext.
    key_id, secret = aws_twin.lab_credentials(aws_twin.lab_files(lab.state_dir)[0])
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{lab.ports['moto']}",
                      region_name="us-east-1", aws_access_key_id=key_id,
                      aws_secret_access_key=secret)
    bucket = str(lab.aws["backup_bucket"])
    label = next(b["label"] for b in info["backup"] if b["type"] == "full")
    for prefix in (f"pgbackrest/backup/lab/{label}/", "pgbackrest/archive/lab/15-1/"):
        assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount"), prefix
    body = s3.get_object(Bucket=bucket, Key="pgbackrest/backup/lab/backup.info")["Body"].read()
    assert body.startswith(b"Salted__"), body[:40]  # OpenSSL-encrypted, not the INI text


def test_passphrase_only_in_0600_files(lab: LabState) -> None:
    phrase = lab.secrets()[backup.SECRET_KEY]
    for f in (lab.secrets_file, backup.config_file(lab)):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert phrase in backup.config_file(lab).read_text()
    assert phrase not in lab.target_file.read_text()
    assert phrase not in (lab.state_dir / "state.json").read_text()


def test_backup_layer_reads_the_tool_and_passes_on_the_lab(lab_target: Target) -> None:
    assert lab_target.backup is not None and lab_target.backup.stanza == backup.STANZA
    f = probe.gather(lab_target)
    th = lab_target.thresholds
    assert f.options == {"repo-retention-full-type": "time", "repo-retention-full": "7"}
    assert judge.judge_bak1(f, th) == [] and judge.judge_enc2(f) == []
    assert judge.judge_bak2_full_backup(f, th) == []
    assert judge.judge_bak2_archiving(f.archiver, th) == []  # type: ignore[arg-type]
    assert f.archiver and f.archiver.archive_timeout_s == backup.ARCHIVE_TIMEOUT_S


def test_archiving_follows_the_leader_after_a_switchover(lab: LabState) -> None:
    backup.wait_ready(lab)
    old = c.leader(lab)
    assert old
    new = next(n for n in NODES if n != old)
    r = requests.post(lab.rest_url(old) + "/switchover", json={"leader": old, "candidate": new},
                      timeout=30)
    assert r.status_code == 200, r.text
    procs.wait_until(lambda: c.leader(lab) == new and c.writer_accepts_sql(lab), 60, "patroni",
                     f"{new} leading and writable")
    since = datetime.now(UTC)
    wal = _archived_after(lab, since)
    timeline = int(wal[:8], 16)
    assert timeline >= 2, wal
    # The repository saw it too: pgbackrest's archive range reaches the new timeline.
    archive = _info(lab)["archive"]
    assert max(int(a["max"][:8], 16) for a in archive if a.get("max")) >= timeline, archive
    procs.wait_until(lambda: c.sync_standby_streaming(lab), 60, "patroni", "sync standby back")


@pytest.fixture
def scratch(lab: LabState) -> Iterator[tuple[Path, int]]:
    d = lab.run_dir / "restore-scratch"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o700)
    procs.chown_service(d)
    port = procs.free_ports(1)[0]
    yield d, port
    pid = procs.read_pid(lab.pidfile("restore-scratch"))
    if pid:
        procs.stop_pid(pid, timeout=5, sig=2)  # SIGINT: fast shutdown
    lab.pidfile("restore-scratch").unlink(missing_ok=True)
    shutil.rmtree(d, ignore_errors=True)


def test_point_in_time_restore_into_a_scratch_directory(lab: LabState,
                                                        scratch: tuple[Path, int]) -> None:
    """The layout a restore drill needs: rows before T come back, rows after T do not."""
    backup.wait_ready(lab)
    run = f"r{time.time_ns()}"
    _sql(lab, "CREATE TABLE IF NOT EXISTS pgproof_restore_marks (run text, tag text, at timestamptz)")
    _sql(lab, f"INSERT INTO pgproof_restore_marks VALUES ('{run}', 'before', now())")
    time.sleep(1.5)
    target = datetime.now(UTC)
    time.sleep(1.5)
    _sql(lab, f"INSERT INTO pgproof_restore_marks VALUES ('{run}', 'after', now())")
    _archived_after(lab, datetime.now(UTC))
    d, port = scratch
    r = subprocess.run(backup.restore_argv(lab, d, target), capture_output=True,
                       text=True, timeout=300, env=procs.clean_env(), cwd="/tmp")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (d / "postgresql.auto.conf").read_text().count("restore_command") == 1
    pid = procs.spawn(backup.scratch_postgres_argv(d, port), lab.log("restore-scratch"),
                      lab.pidfile("restore-scratch"), procs.clean_env())
    info = {**c.superuser_conninfo(lab), "port": port, "sslmode": "require", "connect_timeout": 3}
    info.pop("sslrootcert")

    def promoted() -> bool:
        with psycopg.connect(**info, autocommit=True) as conn:
            return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone() == (True,)

    procs.wait_until(promoted, 120, "restore", "recovered and promoted", lab.log("restore-scratch"),
                     pid, interval=0.5)
    with psycopg.connect(**info, autocommit=True) as conn:
        tags = [t for (t,) in conn.execute(
            "SELECT tag FROM pgproof_restore_marks WHERE run = %s ORDER BY at", (run,))]
        archive_mode = conn.execute("SHOW archive_mode").fetchone()
    assert tags == ["before"], tags
    assert archive_mode == ("off",)  # it never writes into the lab's repository
    assert os.path.exists(d / "PG_VERSION")
