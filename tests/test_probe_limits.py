"""Probes that stop answering, against the real lab: every run ends within its limits, with errors.

(a) An established SQL session blackholed (a Toxiproxy ``timeout`` toxic added after the
session opened, on a proxy of this test's own in front of the lab's writer): ``pgproof
check`` ends within its limits, the SQL-layer control is an error naming the limit, exit 2.
(b) The backup repository stalled (the lab's S3 twin SIGSTOPped): ``check --control BAK-2``
and ``doctor`` both end within the limit, BAK-2 an error, never a failure.
(c) Ctrl-C to ``pgproof check`` while a probe waits on a blackholed session: it exits within 2 s.

Every change is undone in ``finally`` (the proxy deleted, the twin continued), so this runs
in stage 2 beside the other read-only lab checks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests

from pgproof.lab import components as c
from pgproof.lab.state import LabState

pytestmark = pytest.mark.stage("suites")

PGPROOF = Path(sys.executable).parent / "pgproof"
LATENCY_MS = 300  # slows the session down so the blackhole lands after it opened, mid-probe


def _api(lab: LabState, method: str, path: str, body: object = None) -> requests.Response:
    r = requests.request(method, lab.toxiproxy_url.rstrip("/") + path, json=body, timeout=10)
    assert r.status_code in (200, 201, 204), f"toxiproxy {method} {path}: {r.status_code} {r.text}"
    return r


@pytest.fixture
def own_proxy(lab: LabState) -> Iterator[tuple[str, int]]:
    """A proxy of this test's own in front of the lab's writer (HAProxy), with added latency."""
    name = f"limits_{uuid.uuid4().hex[:8]}"
    made = _api(lab, "POST", "/proxies", {"name": name, "listen": "127.0.0.1:0",
                                           "upstream": f"127.0.0.1:{lab.ports['haproxy_writer']}"})
    port = int(made.json()["listen"].rsplit(":", 1)[1])
    try:
        _api(lab, "POST", f"/proxies/{name}/toxics",
             {"name": "slow", "type": "latency", "stream": "downstream",
              "attributes": {"latency": LATENCY_MS, "jitter": 0}})
        yield name, port
    finally:
        requests.delete(f"{lab.toxiproxy_url.rstrip('/')}/proxies/{name}", timeout=10)


def _config(tmp_path: Path, lab: LabState, name: str, **timeouts: float) -> Path:
    """The lab's target as ``[targets.<name>]`` of a config file, with ``timeouts`` added."""
    text = lab.target_file.read_text()
    out = [f"[targets.{name}]"]
    for line in text.splitlines():
        if line.startswith("[["):
            line = f"[[targets.{name}.{line[2:]}"
        elif line.startswith("["):
            line = f"[targets.{name}.{line[1:]}"
        out.append(line)
    out.append(f"[targets.{name}.timeouts]")
    out += [f"{k} = {v}" for k, v in timeouts.items()]
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text("\n".join(out) + "\n")
    tomllib.loads(cfg.read_text())  # a broken rewrite fails here, not as a confusing run
    return cfg


def _sql_target(tmp_path: Path, lab: LabState, port: int, **timeouts: float) -> Path:
    """A target whose only layer is SQL at ``port`` (the proxy), with ``timeouts``."""
    lab_doc = tomllib.loads(lab.target_file.read_text())["postgres"]
    cfg = tmp_path / "pgproof.toml"
    limits = ", ".join(f"{k} = {v}" for k, v in timeouts.items())
    cfg.write_text(f"""[targets.blackholed]
timeouts = {{ {limits} }}
[targets.blackholed.postgres]
user = "{lab_doc['user']}"
dbname = "{lab_doc['dbname']}"
passfile = "{lab_doc['passfile']}"
sslrootcert = "{lab_doc['sslrootcert']}"
writer = {{ host = "127.0.0.1", port = {port}, dbname = "{lab_doc['dbname']}" }}
""")
    return cfg


def _env() -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_"))},
            "PGPROOF_LAB_TARGET": "/nonexistent"}


def _check(cfg: Path, target: str, reports: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([str(PGPROOF), "check", "--target", target, "--config", str(cfg),
                             "--reports", str(reports), *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=_env())


def _server_now(lab: LabState) -> object:
    with psycopg.connect(**c.superuser_conninfo(lab), autocommit=True) as admin:
        return admin.execute("SELECT now()").fetchone()[0]  # type: ignore[index]


def _blackhole_once_querying(lab: LabState, proxy: str, proc: subprocess.Popen[str],
                             since: object, within_s: float = 60) -> float:
    """Wait until the check's SQL session has run a query, then blackhole it; the instant.

    The pre-flight logs in without a query; the probe's session is the first with one
    (sessions from before ``since``, e.g. an earlier test's, are not the check's)."""
    deadline = time.monotonic() + within_s
    with psycopg.connect(**c.superuser_conninfo(lab), autocommit=True) as admin:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"check ended before its session queried: {proc.stdout.read()}"  # type: ignore[union-attr]
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = 'pgproof' AND "
                "application_name = 'pgproof' AND backend_type = 'client backend' AND query <> ''"
                " AND backend_start > %s", (since,)).fetchone()
            if row and row[0]:
                _api(lab, "POST", f"/proxies/{proxy}/toxics",
                     {"name": "blackhole", "type": "timeout", "stream": "downstream",
                      "attributes": {"timeout": 0}})
                return time.monotonic()
            time.sleep(0.05)
    raise AssertionError(f"the check's SQL session ran no query within {within_s:.0f} s")


def _results(reports: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((reports / "latest" / "results.json").read_text())


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_blackholed_sql_session_is_an_error_naming_the_limit(
        lab: LabState, own_proxy: tuple[str, int], tmp_path: Path) -> None:
    proxy, port = own_proxy
    cfg = _sql_target(tmp_path, lab, port, connect_s=20, statement_s=3, run_s=120)
    since = _server_now(lab)
    proc = _check(cfg, "blackholed", tmp_path / "reports", "--control", "AUTH-1")
    try:
        at = _blackhole_once_querying(lab, proxy, proc, since)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError("pgproof check still waits on the blackholed session 60 s after "
                                 "the blackhole, with statement_s = 3") from None
        took = time.monotonic() - at
    finally:
        _stop(proc)
    assert proc.returncode == 2, out
    [auth] = [x for x in _results(tmp_path / "reports")["controls"] if x["id"] == "AUTH-1"]
    text = json.dumps(auth)
    assert auth["verdict"] == "error", text
    assert f"SQL statement on 127.0.0.1:{port} did not answer within 3 s (timeouts.statement_s)" in text
    print(f"blackholed session: exit {took:.2f} s after the blackhole (statement_s = 3)")
    assert took < 30, f"{took:.1f} s from the blackhole to the exit with statement_s = 3"


def test_ctrl_c_answers_within_2_s_while_a_probe_is_blackholed(
        lab: LabState, own_proxy: tuple[str, int], tmp_path: Path) -> None:
    proxy, port = own_proxy
    cfg = _sql_target(tmp_path, lab, port, connect_s=20, statement_s=120, run_s=600)
    since = _server_now(lab)
    proc = _check(cfg, "blackholed", tmp_path / "reports", "--control", "AUTH-1")
    try:
        _blackhole_once_querying(lab, proxy, proc, since)
        time.sleep(2 * LATENCY_MS / 1000 + 1)  # the probe is now waiting on the blackhole
        assert proc.poll() is None, proc.communicate()[0]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("pgproof check ignored SIGINT for 30 s while blackholed") from None
        took = time.monotonic() - t0
    finally:
        _stop(proc)
    print(f"SIGINT to exit: {took:.2f} s")
    assert took < 2.0, f"SIGINT took {took:.2f} s to end the check: {out}"
    assert proc.returncode != 0, out


@pytest.fixture
def stalled_repository(lab: LabState) -> Iterator[int]:
    """The lab's S3 twin (the backup repository) stopped, and always continued afterwards."""
    pid = int((lab.pids / "moto.pid").read_text())
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def test_stalled_backup_repository_is_an_error_in_check_and_doctor(
        lab: LabState, stalled_repository: int, tmp_path: Path) -> None:
    cfg = _config(tmp_path, lab, "stalled", subprocess_s=5, sdk_connect_s=2, sdk_read_s=3,
                  sdk_attempts=1, run_s=120)
    t0 = time.monotonic()
    proc = _check(cfg, "stalled", tmp_path / "reports", "--control", "BAK-2")
    try:
        out, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise AssertionError("check --control BAK-2 waited > 90 s on a stalled repository with "
                             "subprocess_s = 5") from None
    took = time.monotonic() - t0
    assert proc.returncode == 2, out
    [bak2] = [x for x in _results(tmp_path / "reports")["controls"] if x["id"] == "BAK-2"]
    text = json.dumps(bak2)
    assert bak2["verdict"] == "error", text
    assert "did not answer within 5 s (timeouts.subprocess_s)" in text, text
    print(f"stalled repository: check --control BAK-2 ended in {took:.1f} s")
    assert took < 60, f"check took {took:.1f} s"

    t0 = time.monotonic()
    try:
        doc = subprocess.run([str(PGPROOF), "doctor", "--target", "stalled", "--config", str(cfg)],
                             capture_output=True, text=True, env=_env(), timeout=90)
    except subprocess.TimeoutExpired:
        raise AssertionError("doctor waited > 90 s on a stalled repository") from None
    took = time.monotonic() - t0
    assert doc.returncode == 1, doc.stdout + doc.stderr
    assert "doctor: asking backup: `pgbackrest info`" in doc.stderr, doc.stderr
    [line] = [x for x in doc.stdout.splitlines() if x.split()[:2] == ["MISSING", "backup"]]
    assert "did not answer within 5 s (timeouts.subprocess_s)" in line, doc.stdout
    print(f"stalled repository: doctor ended in {took:.1f} s")
    assert took < 60, f"doctor took {took:.1f} s"
