"""Every probe has a time limit (fast tier, no lab): config, the timeout -> error mapping, commands.

The lab half (a blackholed SQL session, a stalled backup repository, Ctrl-C) is in
tests/test_probe_limits.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pgproof.checks import backup as backup_judge
from pgproof.probes import commands
from pgproof.probes.backup import BackupFacts
from pgproof.target import ConfigError, Thresholds, parse_target
from pgproof.verdict import TimedOut, Unreachable

REPO = Path(__file__).resolve().parent.parent
PG = {"writer": {"host": "127.0.0.1", "port": 5432}, "user": "auditor"}


def test_defaults_and_libpq_session_limits() -> None:
    t = parse_target("staging", {"postgres": PG}, "pgproof.toml")
    assert (t.timeouts.connect_s, t.timeouts.statement_s, t.timeouts.subprocess_s,
            t.timeouts.run_s) == (10, 30, 60, 900)
    info = t.conninfo()
    assert info["connect_timeout"] == 10
    assert (info["keepalives"], info["keepalives_idle"], info["keepalives_interval"],
            info["keepalives_count"], info["tcp_user_timeout"]) == (1, 10, 5, 3, 30_000)


def test_limits_are_configurable_per_target() -> None:
    t = parse_target("staging", {"postgres": PG, "timeouts": {
        "connect_s": 2.5, "statement_s": 4, "tcp_user_timeout_s": 7, "run_s": 60}}, "pgproof.toml")
    info = t.conninfo()
    assert info["connect_timeout"] == 3 and info["tcp_user_timeout"] == 7000
    assert t.timeouts.statement_s == 4 and t.timeouts.run_s == 60
    old = parse_target("staging", {"postgres": {**PG, "connect_timeout": 4}}, "pgproof.toml")
    assert old.connect_limit_s == 4 and old.conninfo()["connect_timeout"] == 4


@pytest.mark.parametrize("field,value", [
    ("statement_s", 0), ("connect_s", -1), ("run_s", float("inf")), ("subprocess_s", float("nan")),
    ("sdk_attempts", 0), ("keepalives_count", 0), ("http_s", "soon"), ("run_s", 10**9),
])
def test_bad_limit_is_one_sentence_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as err:
        parse_target("staging", {"postgres": PG, "timeouts": {field: value}}, "pgproof.toml")
    msg = str(err.value)
    assert f"targets.staging.timeouts.{field}:" in msg and "\n" not in msg


def test_unknown_limit_and_contradicting_connect_limits() -> None:
    with pytest.raises(ConfigError, match=r"timeouts\.statement: unknown field"):
        parse_target("staging", {"postgres": PG, "timeouts": {"statement": 3}}, "pgproof.toml")
    with pytest.raises(ConfigError, match="postgres.connect_timeout .* disagree"):
        parse_target("staging", {"postgres": {**PG, "connect_timeout": 4},
                                 "timeouts": {"connect_s": 9}}, "pgproof.toml")
    with pytest.raises(ConfigError, match=r"postgres\.connect_timeout:"):
        parse_target("staging", {"postgres": {**PG, "connect_timeout": float("inf")}}, "pgproof.toml")


def _facts(status: dict[str, object], repos: int = 1) -> BackupFacts:
    info = {"name": "main", "status": {**status, "message": "other"}, "backup": [],
            "repo": [{"key": k + 1, "cipher": "aes-256-cbc", "status": status} for k in range(repos)]}
    return BackupFacts("pgbackrest", "main", "local://", info, {})


def test_unreachable_repository_is_an_error_never_a_failure() -> None:
    """pgbackrest's status 99 with its own timeout: BAK-2 and BAK-3 could not check."""
    stalled = {"code": 99, "message": "[HostConnectError] repository unreachable "
                                      "(timeout after 60000ms)"}
    with pytest.raises(Unreachable, match="could not read the repository: .*timeout after 60000ms"):
        backup_judge.judge_bak2_full_backup(_facts(stalled), Thresholds())
    with pytest.raises(Unreachable, match="could not read repo1"):
        backup_judge.judge_bak3(_facts(stalled, repos=2))
    missing = {"code": 2, "message": "no valid backups"}  # the tool read it: a real finding
    assert "status 2" in backup_judge.judge_bak2_full_backup(_facts(missing), Thresholds())[0]


def test_timed_out_names_what_and_the_limit_and_is_an_error() -> None:
    exc = TimedOut("SQL statement on db:5432", 30, "statement_s")
    assert isinstance(exc, Unreachable)  # pytest_plugin._verdict: Unreachable -> error
    assert str(exc) == "SQL statement on db:5432 did not answer within 30 s (timeouts.statement_s)"


def test_command_is_killed_at_its_limit() -> None:
    t0 = time.monotonic()
    with pytest.raises(TimedOut, match=r"`sleep` did not answer within 0.5 s \(timeouts.subprocess_s\)"):
        commands.run(["sh", "-c", "sleep 30 & sleep 30"], 0.5, "`sleep`")
    assert time.monotonic() - t0 < 5


def test_testinfra_command_is_killed_at_its_limit() -> None:
    """testinfra waits with no limit of its own; ``commands.host`` bounds it (local backend)."""
    host = commands.host("local://", 0.5, "`{command}`")
    assert host.run("echo hi").stdout.strip() == "hi"
    t0 = time.monotonic()
    with pytest.raises(TimedOut, match=r"`sleep 30` on local:// did not answer within 0.5 s"):
        host.run("sleep 30")
    assert time.monotonic() - t0 < 5


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP listener that accepts and never says a word (a blackholing proxy or firewall)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                continue

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    yield srv.getsockname()[1]
    stop.set()
    th.join(2)
    for s in held:
        s.close()
    srv.close()


def test_sql_connect_to_a_silent_server_times_out_naming_the_limit(silent_server: int) -> None:
    from pgproof.probes import postgres

    t = parse_target("staging", {"postgres": {**PG, "writer": {"host": "127.0.0.1",
                                                                "port": silent_server}},
                                 "timeouts": {"connect_s": 2}}, "pgproof.toml")
    t0 = time.monotonic()
    with pytest.raises(TimedOut, match=rf"SQL connect to 127.0.0.1:{silent_server} as auditor "
                                       r"did not answer within 2 s \(timeouts.connect_s\)"):
        postgres.connect(t)
    assert time.monotonic() - t0 < 8


def _write_run(tmp_path: Path, run_s: float) -> tuple[list[str], Path]:
    """A repository-shaped directory with two control checks: one that hangs, one after it."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_hang.py").write_text(
        "import time\nimport pytest\n\n\n"
        "@pytest.mark.control('AUTH-1')\ndef test_hangs():\n    time.sleep(120)\n\n\n"
        "@pytest.mark.control('AUDIT-1')\ndef test_after():\n    pass\n")
    (tmp_path / "pgproof.toml").write_text(
        "[targets.t]\naws = { region = 'us-east-1' }\n"
        f"timeouts = {{ run_s = {run_s} }}\n")
    reports = tmp_path / "reports"
    argv = [sys.executable, "-m", "pytest", str(tmp_path / "suites"), "-p", "pgproof.pytest_plugin",
            "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(tmp_path),
            "--target", "t", "--pgproof-config", str(tmp_path / "pgproof.toml"),
            "--reports", str(reports), "-q"]
    return argv, reports


@pytest.mark.slow
def test_run_time_limit_makes_the_rest_errors_and_still_reports(tmp_path: Path) -> None:
    argv, reports = _write_run(tmp_path, 6)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.monotonic()
    p = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=100)
    wall = time.monotonic() - t0
    assert wall < 60, f"the run took {wall:.0f} s with run_s = 6"
    out = p.stdout + p.stderr
    assert "run time limit exceeded (timeouts.run_s)" in out, out
    doc = json.loads((reports / "latest" / "results.json").read_text())
    by_id = {c["id"]: c for c in doc["controls"]}
    for cid in ("AUTH-1", "AUDIT-1"):
        assert by_id[cid]["verdict"] == "error", by_id[cid]
    hung = json.dumps(by_id["AUTH-1"])
    assert "run time limit 6 s exceeded (timeouts.run_s)" in hung
    assert "before this check started" in json.dumps(by_id["AUDIT-1"])
    assert doc["exit_code"] == 2


# `pgbackrest --output=json info` as it answered with the lab's S3 repository stalled (moto
# SIGSTOPped, pgBackRest 2.x, 120 s): exit 0, status 99, the reason only in the repository's status.
STALLED_INFO = (
    '[{"archive":[],"backup":[],"cipher":"aes-256-cbc","db":[],"name":"lab","repo":[{"cipher":'
    '"aes-256-cbc","key":1,"status":{"code":99,"message":"[FileReadError] timeout after 60000ms '
    'waiting for read from \'localhost:59271\'"}}],"status":{"code":99,"lock":{"backup":{"held":'
    'false}},"message":"other"}}]')


def test_doctor_says_a_repository_the_tool_could_not_read_is_missing(tmp_path: Path) -> None:
    """The tool exits 0 with status 99: the doctor must not call the backup layer ready."""
    from pgproof import doctor

    answer = tmp_path / "info.json"
    answer.write_text(STALLED_INFO)
    t = parse_target("box", {"hosts": ["local://"], "backup": {
        "stanza": "lab", "command": f"cat {answer} #"}}, "pgproof.toml")
    [finding] = doctor.backup_findings(t)
    assert finding.ok is False
    assert "could not read its repository: [FileReadError] timeout after 60000ms" in finding.text
    facts = BackupFacts("pgbackrest", "lab", "local://", json.loads(STALLED_INFO)[0], {})
    with pytest.raises(Unreachable, match=r"could not read the repository: \[FileReadError\] "
                                          r"timeout after 60000ms"):
        backup_judge.judge_bak2_full_backup(facts, Thresholds())


def test_ctrl_c_during_a_command_answers_at_once_and_kills_it(tmp_path: Path) -> None:
    """A probe stuck in a command (pgbackrest on a stalled repository): SIGINT ends it < 2 s."""
    marker = tmp_path / "child.pid"
    code = ("from pgproof.probes import commands\n"
            f"commands.run(['sh', '-c', 'echo $$ > {marker}; exec sleep 60'], 100, '`sleep`')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (marker.exists() and marker.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None, "the command never started"
        time.sleep(0.05)
    child = int(marker.read_text())
    t0 = time.monotonic()
    proc.send_signal(2)  # SIGINT
    proc.wait(30)
    took = time.monotonic() - t0
    assert took < 2.0, f"SIGINT took {took:.2f} s"
    assert "KeyboardInterrupt" in proc.stderr.read()  # type: ignore[union-attr]
    time.sleep(0.2)
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # the command's process group was killed, not left behind


def test_ctrl_c_does_not_wait_for_a_stuck_probe_thread(tmp_path: Path) -> None:
    """TLS/AWS/Azure probes run in pools; ``with ThreadPoolExecutor`` would wait for a stuck one,
    and so would interpreter shutdown (the CLI leaves through ``interrupts.exit_now``)."""
    ready = tmp_path / "ready"
    code = ("import pathlib, time\nfrom pgproof import interrupts, pools\n"
            "try:\n"
            "    with pools.threads(2) as pool:\n"
            "        f = pool.submit(time.sleep, 30)\n"
            f"        pathlib.Path({str(ready)!r}).write_text('x')\n"
            "        f.result()\n"
            "except KeyboardInterrupt:\n"  # as pgproof.cli does after an interrupted run
            "    print('KeyboardInterrupt', file=__import__('sys').stderr)\n"
            "    interrupts.exit_now(130)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not ready.exists():
        assert time.monotonic() < deadline and proc.poll() is None, "the pool never started"
        time.sleep(0.05)
    time.sleep(0.2)
    t0 = time.monotonic()
    proc.send_signal(2)  # SIGINT
    try:
        proc.wait(25)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("SIGINT waited for the stuck thread") from None
    assert time.monotonic() - t0 < 2.0 and "KeyboardInterrupt" in proc.stderr.read()  # type: ignore[union-attr]
