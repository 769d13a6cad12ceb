"""The restore drill on the lab: `pgproof gameday restore-pitr` proves BAK-6, leaves nothing behind
(also when SIGKILLed mid-restore), and fails when archiving is broken.

Stage 4 (after the matrix): it writes load and markers into the lab's database.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from labcli import lab_cli_env as _env

from pgproof import procs
from pgproof.faults import record
from pgproof.lab import mutations
from pgproof.lab.state import LabState
from pgproof.target import Target

pytestmark = pytest.mark.stage("gameday")

REPO = Path(__file__).resolve().parent.parent


def _drill(lab: LabState, reports: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgproof.cli", "gameday", "restore-pitr", "--target",
                           "lab", "--reports", str(reports), "--users", "4", *extra],
                          capture_output=True, text=True, env=_env(lab), cwd=REPO, timeout=600)


def _journal(reports: Path) -> dict:  # type: ignore[type-arg]
    [d] = [p for p in reports.iterdir() if p.is_dir() and p.name.endswith("restore-pitr")]
    return json.loads((d / "journal.json").read_text())


def _leftovers(lab: LabState) -> list[str]:
    """Scratch directories or postgres processes of any restore drill still on the machine."""
    left = [str(p) for p in lab.run_dir.glob("restore-restore-pitr-*")]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"restore-restore-pitr-" in cmd and b"postgres" in cmd:
                left.append(f"pid {proc.name}")
    return left


def test_restore_pitr_proves_bak6_and_leaves_nothing(lab: LabState, lab_target: Target,
                                                     tmp_path: Path) -> None:
    r = _drill(lab, tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "PASS   BAK-6" in r.stdout
    j = _journal(tmp_path)
    m = j["measurements"]
    assert j["verdicts"][0]["id"] == "BAK-6" and j["verdict"] == "pass"
    assert m["before_t"] > 0 and m["after_t_acked"] > 0, m  # rows on both sides of T were written
    assert m["missing"] == [] and m["after_t"] == []
    assert 0 <= m["rpo_s"] <= lab_target.thresholds.rpo_minutes * 60
    assert m["restore_s"] > 0 and m["probe"]["ssl"]["ssl"] is True
    assert m["probe"]["plaintext"].startswith("refused") and m["probe"]["hba"] == m["probe"]["source_hba"]
    assert "removed" in m["scratch"]["deleted"]
    assert _leftovers(lab) == [] and record.FaultRecord.load(lab_target) is None
    hist = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert hist[-1]["verdicts"] == {"BAK-6": "pass"} and hist[-1]["scenario"] == "restore-pitr"
    report = next(tmp_path.glob("*restore-pitr/report.md")).read_text()
    assert "| RPO |" in report and "| Restore time |" in report


def test_sigkilled_drill_leaves_a_record_that_recover_deletes(lab: LabState, lab_target: Target,
                                                              tmp_path: Path) -> None:
    path = record.record_path(lab_target)
    proc = subprocess.Popen([sys.executable, "-m", "pgproof.cli", "gameday", "restore-pitr",
                             "--target", "lab", "--reports", str(tmp_path), "--users", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(lab), cwd=REPO)
    scratch: dict = {}  # type: ignore[type-arg]
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:  # until the postmaster runs
            rec = record.FaultRecord.load_path(path)
            found = [f["data"] for f in (rec.faults if rec else []) if f["kind"] == "restore_scratch"]
            if found and found[0].get("pid"):
                scratch = found[0]
                break
            time.sleep(0.05)
        assert scratch, "the drill never recorded a running scratch instance"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert procs.pid_alive(int(scratch["pid"])) and Path(scratch["dir"]).exists()  # orphaned
    r = subprocess.run([sys.executable, "-m", "pgproof.cli", "gameday", "recover", "--target", "lab"],
                       capture_output=True, text=True, env=_env(lab), cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "scratch restore instance deleted" in r.stdout
    assert not procs.pid_alive(int(scratch["pid"])) and not Path(scratch["dir"]).exists()
    assert _leftovers(lab) == [] and not path.exists()
    again = subprocess.run([sys.executable, "-m", "pgproof.cli", "gameday", "recover", "--target", "lab"],
                           capture_output=True, text=True, env=_env(lab), cwd=REPO, timeout=120)
    assert again.returncode == 0 and "nothing to recover" in again.stdout  # idempotent
    assert _journal(tmp_path)["interrupted"] is True


def test_broken_archiving_makes_the_restore_to_t_impossible(lab: LabState, tmp_path: Path) -> None:
    """The mutation proving BAK-6 can fail: WAL after T never reaches the repository."""
    name = mutations.GAMEDAY_MUTATIONS["BAK-6"]
    mutations.apply(lab.state_dir, name)
    try:
        r = _drill(lab, tmp_path, "--archive-wait", "8")
    finally:
        mutations.heal(lab.state_dir)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "FAIL   BAK-6" in r.stdout and "impossible" in r.stdout, r.stdout[-2000:]
    j = _journal(tmp_path)
    assert j["measurements"]["archived"] is False
    assert _leftovers(lab) == []


def test_snapshot_before_on_the_lab_is_a_pgbackrest_backup(lab: LabState, lab_target: Target) -> None:
    from pgproof.faults import snapshot
    from pgproof.lab import backup
    from pgproof.lab.driver import LabDriver

    snap = snapshot.take(lab_target, LabDriver(lab_target), "latency-0000beef")
    r = backup.run_tool(lab, "--output=json", "info")
    labels = [b["label"] for b in json.loads(r.stdout)[0]["backup"]]
    assert snap["id"] in labels and snap["kind"].startswith("pgbackrest backup from node")
