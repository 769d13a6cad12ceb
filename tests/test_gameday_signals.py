"""Game days that lose their terminal or their disk still undo everything and say why.

An ssh session dropping sends SIGHUP; before, it killed the runner with exit 129, no
message, the toxic left on the writer and Locust loading on. A full reports disk was
blamed on Locust ("not producing successful requests"). Both run on the real lab.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labcli import lab_cli_env, wait_steady

from pgproof import procs
from pgproof.faults import record, toxiproxy
from pgproof.gameday.safety import UNWIND_SIGNALS, Terminated, sigterm_unwinds
from pgproof.lab.driver import LabDriver
from pgproof.lab.state import LabState
from pgproof.load.runner import group_pids
from pgproof.target import Target

pytestmark = pytest.mark.stage("gameday")

REPO = Path(__file__).resolve().parent.parent


# -- no lab: which signals unwind ----------------------------------------------------------------
@pytest.mark.parametrize("sig", UNWIND_SIGNALS)
def test_every_termination_signal_unwinds_like_sigterm(sig: int) -> None:
    undone = []
    with pytest.raises(Terminated) as err, sigterm_unwinds():
        try:
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the handler raises at the next bytecode
        finally:
            undone.append(sig)
    assert undone == [sig] and err.value.exit_code == 128 + sig
    assert err.value.signame == signal.Signals(sig).name
    assert signal.getsignal(sig) in (signal.SIG_DFL, signal.SIG_IGN, signal.default_int_handler)


# -- on the lab ----------------------------------------------------------------------------------
def _start(lab: LabState, reports: Path, scenario: str = "latency") -> subprocess.Popen[str]:
    """A game day as a scheduler or a dropped ssh session runs it: its own session (no
    controlling terminal, like setsid) and stdin closed."""
    return subprocess.Popen(
        [sys.executable, "-m", "pgproof.cli", "gameday", scenario, "--target", "lab",
         "--reports", str(reports), "--baseline", "2", "--users", "4"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=lab_cli_env(lab), cwd=REPO, start_new_session=True,
        preexec_fn=lambda: os.close(0))


def _load_pid(text: str) -> int:
    m = re.search(r"Locust started \(\d+ users(?:, [\d.]+ tasks/s each)?, pid (\d+)\)", text)
    assert m, text
    return int(m.group(1))


def _assert_nothing_left(lab: LabState, lab_target: Target, load_pid: int | None) -> None:
    assert not toxiproxy.active_faults(lab.toxiproxy_url), toxiproxy.active_faults(lab.toxiproxy_url)
    assert not LabDriver(lab_target).active_faults(), LabDriver(lab_target).active_faults()
    if load_pid is not None:
        assert not procs.pid_alive(load_pid), f"Locust pid {load_pid} still running"
        assert not group_pids(load_pid), f"Locust's process group {load_pid} still has members"
    assert record.FaultRecord.load(lab_target) is None, record.notice(lab_target)


def _running_in(path: Path) -> list[int]:
    """PIDs whose working directory is under ``path`` (Locust runs in the run's load/ folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cwd = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if cwd == path or path in cwd.parents:
                found.append(int(entry.name))
    return found


@pytest.fixture
def clean_lab(lab: LabState, lab_target: Target) -> Iterator[None]:
    wait_steady(lab_target, timeout=120)
    yield
    if record.FaultRecord.load(lab_target) is not None:  # never leave the next test an orphan
        subprocess.run([sys.executable, "-m", "pgproof.cli", "gameday", "recover", "--target", "lab"],
                       env=lab_cli_env(lab), cwd=REPO, capture_output=True, timeout=120)


def test_sighup_mid_fault_without_a_terminal_undoes_everything(
        lab: LabState, lab_target: Target, tmp_path: Path, clean_lab: None) -> None:
    proc = _start(lab, tmp_path)
    seen = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 240
    for line in proc.stdout:
        seen.append(line)
        if "fault injected" in line:
            break
        assert time.monotonic() < deadline, "no 'fault injected' within 240 s:\n" + "".join(seen)
    assert toxiproxy.active_faults(lab.toxiproxy_url), "the latency toxic should be on now"
    time.sleep(1.0)
    proc.send_signal(signal.SIGHUP)
    rest, err = proc.communicate(timeout=180)
    out = "".join(seen) + rest
    assert proc.returncode == 129, (proc.returncode, out[-3000:], err[-3000:])
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "pgproof: interrupted by SIGHUP", err
    journal = json.loads(next(tmp_path.glob("*/journal.json")).read_text())
    f, stop = journal["fault"], journal["interrupted"]
    assert stop["by"] == "SIGHUP" and journal["verdict"] == "error", stop
    assert f["injected_at"] < stop["at"] <= f["undone_at"] and f["undo_ok"] is True, (f, stop)
    _assert_nothing_left(lab, lab_target, _load_pid(out))


def test_a_game_day_without_a_terminal_runs_to_its_verdict(
        lab: LabState, lab_target: Target, tmp_path: Path, clean_lab: None) -> None:
    """Under setsid with stdin closed (cron, nohup, a dropped ssh session's survivors)."""
    proc = _start(lab, tmp_path)
    out, err = proc.communicate(timeout=600)
    assert "Traceback" not in err, err
    journal = json.loads(next(tmp_path.glob("*/journal.json")).read_text())
    assert journal["interrupted"] is None and journal["fault"]["undo_ok"] is True, journal["fault"]
    assert [v["id"] for v in journal["verdicts"]] == ["CH-LAT"], journal["verdicts"]
    want = {"pass": 0, "fail": 1}.get(journal["verdict"], 2)
    assert proc.returncode == want, (proc.returncode, journal["verdict"], out[-2000:], err[-2000:])
    assert f"game day latency: {journal['verdict']}; report: " in out, out[-2000:]
    _assert_nothing_left(lab, lab_target, _load_pid(out))


def test_full_reports_disk_is_named_not_blamed_on_locust(
        lab: LabState, lab_target: Target, tmp_path: Path, clean_lab: None) -> None:
    """A 256 KB tmpfs with about 24 KB left: the journal stub fits, Locust's files do not."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], check=True)
    try:
        st = os.statvfs(small)
        (small / "filler").write_bytes(b"x" * (st.f_bavail * st.f_frsize - 24 * 1024))
        proc = _start(lab, small)
        out, err = proc.communicate(timeout=600)
        text = out + err
        print(text[-1500:])
        assert proc.returncode == 2, (proc.returncode, out[-3000:], err[-3000:])
        assert "No space left on device (ENOSPC)" in text, text[-3000:]
        assert "producing successful requests" not in text, text[-3000:]
        assert "Traceback" not in err, err
        _assert_nothing_left(lab, lab_target, _load_pid(text) if "Locust started" in text else None)
        assert not _running_in(small), "processes still working in the full reports folder"
        assert not (small / "latest").exists() or (small / "latest" / "journal.json").exists()
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)
