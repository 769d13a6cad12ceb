"""Against the lab: a run that is no verdict never exits 0, and every run reads its own results.

Real signals during real runs of the suites (``pytest suites`` and ``pgproof check``),
held at a known check by tests/holdplugin.py so the signal lands inside a check on
a loaded machine; ``-x``/``--maxfail``; a game day's fault record left on the target;
``-n`` with one target; two checks with different verdicts writing into one reports
folder at once. The targets are the lab, and copies of it whose POOL-1 fails
(``pool_size = 7``; the lab's PgBouncer has 20), one with a waiver for it.
Nothing here changes the cluster.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from labcli import lab_cli_env, lab_target_as

from pgproof.faults.record import FaultRecord
from pgproof.lab.state import LabState
from pgproof.target import load_target

pytestmark = pytest.mark.stage("suites")

REPO = Path(__file__).resolve().parent.parent
CONTROLS = "MON-3,POOL-1,TLS-1"  # items TLS-1-* (first), POOL-1-pooler, MON-3-health (last)
TIMEOUT = 300


@pytest.fixture(scope="module")
def config(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``strict`` (POOL-1 fails) and ``strictwaived`` (that failure waived): the lab otherwise."""
    waiver = {"control": "POOL-1", "justification": "pool size under review (CHG-7)",
              "owner": "dba@example.com", "expires": dt.date(2099, 1, 1)}
    out = [lab_target_as(lab, "strict", thresholds={"pool_size": 7}),
           lab_target_as(lab, "strictwaived", thresholds={"pool_size": 7}, waivers=[waiver])]
    path = tmp_path_factory.mktemp("exitcodes") / "pgproof.toml"
    path.write_text("\n".join(out) + "\n")
    return path


def _env(lab: LabState, **extra: str) -> dict[str, str]:
    return {**lab_cli_env(lab), "PYTHONPATH": str(REPO / "tests"), **extra}


def _pytest(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(REPO / "suites"), "-q", "-p", "no:randomly", *args]


def _check(*args: str) -> list[str]:
    return [sys.executable, "-m", "pgproof.cli", "check", *args]


class Run:
    """One run in the background, its output in files (no pipe to fill)."""

    def __init__(self, cmd: list[str], env: dict[str, str], tmp: Path, name: str,
                 release: Path | None = None) -> None:
        self.out, self.err = tmp / f"{name}.out", tmp / f"{name}.err"
        self.held, self.release = tmp / f"{name}.held", release or tmp / f"{name}.release"
        env = {**env, "PGPROOF_TEST_HELD": str(self.held), "PGPROOF_TEST_RELEASE": str(self.release)}
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=REPO)

    def wait_held(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not self.held.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the run never reached the held check (exit {self.proc.poll()}):"
                                     f"\n{self.text()}")
            time.sleep(0.05)

    def finish(self) -> int:
        try:
            return self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the run did not end within {TIMEOUT} s:\n{self.text()}") from None

    def stderr(self) -> str:
        return self.err.read_text()

    def text(self) -> str:
        return self.out.read_text()[-3000:] + "\n--- stderr ---\n" + self.err.read_text()[-2000:]


def _run_dirs(reports: Path) -> list[Path]:
    return sorted(p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()) if reports.exists() else []


def _results(reports: Path) -> tuple[Path, dict[str, Any]]:
    (d,) = _run_dirs(reports)
    return d, json.loads((d / "results.json").read_text())


def _history(reports: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (reports / "history.jsonl").read_text().splitlines()]


def _by_id(doc: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in doc["controls"]}


@pytest.mark.parametrize("how", ["pytest", "check"])
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_during_a_run_is_exit_2_and_marked_interrupted(lab: LabState, tmp_path: Path,
                                                                how: str, sig: str) -> None:
    reports = tmp_path / "reports"
    cmd = (_pytest("--target", "lab", "--reports", str(reports), "--control", CONTROLS,
                   "-p", "holdplugin") if how == "pytest" else
           _check("--target", "lab", "--reports", str(reports), "--control", CONTROLS,
                  "--framework", "hipaa", "--", "-p", "holdplugin"))
    run = Run(cmd, _env(lab, PGPROOF_TEST_HOLD_AT="[POOL-1-pooler]"), tmp_path, "run")
    run.wait_held()
    sent = time.time()
    run.proc.send_signal(getattr(signal, sig))
    rc = run.finish()
    assert rc == 2, run.text()
    lines = [x for x in run.stderr().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"pgproof: interrupted by {sig} at "), run.text()
    assert "Traceback" not in run.stderr()
    d, doc = _results(reports)
    assert doc["interrupted"] is True and doc["interrupted_by"] == sig, doc["interrupted"]
    at = doc["interrupted_at"]
    assert abs(time.mktime(time.strptime(at[:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone - sent) < 30
    assert doc["partial"] is True and doc["exit_code"] == 2
    verdicts = _by_id(doc)
    assert verdicts["TLS-1"] == "pass" and verdicts["MON-3"] == "not-checked", verdicts
    assert f"Not a verdict: interrupted by {sig} at {at}" in (d / "summary.html").read_text()
    (line,) = _history(reports)
    assert line["interrupted"] is True and line["interrupted_by"] == sig and line["exit_code"] == 2
    assert "not a verdict: interrupted by" in (reports / "index.html").read_text()
    assert not (d / "framework-hipaa.html").exists()  # no verdict to file under a framework


def test_sigterm_before_any_check_finished_leaves_no_run_directory(lab: LabState,
                                                                   tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    run = Run(_check("--target", "lab", "--reports", str(reports), "--control", CONTROLS, "--",
                     "-p", "holdplugin"),
              _env(lab, PGPROOF_TEST_HOLD_AT="[TLS-1-tls]"), tmp_path, "first")
    run.wait_held()
    run.proc.send_signal(signal.SIGTERM)
    assert run.finish() == 2, run.text()
    (line,) = run.stderr().strip().splitlines()
    assert line.startswith("pgproof: interrupted by SIGTERM") and "no report written" in line, line
    assert _run_dirs(reports) == [], list(reports.rglob("*"))


def test_keyboard_interrupt_inside_a_probe_is_an_interruption(lab: LabState, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    r = subprocess.run(_check("--target", "lab", "--reports", str(reports), "--control", CONTROLS,
                              "--", "-p", "holdplugin"), capture_output=True, text=True, cwd=REPO,
                       timeout=TIMEOUT,
                       env=_env(lab, PGPROOF_TEST_RAISE_IN="pgproof.probes.pooler:gather"))
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr
    assert "pgproof: interrupted by KeyboardInterrupt" in r.stderr, r.stderr
    _, doc = _results(reports)
    assert doc["interrupted"] is True and doc["interrupted_by"] == "KeyboardInterrupt"
    assert doc["exit_code"] == 2 and _by_id(doc)["TLS-1"] == "pass"


def test_stopped_early_is_never_compliant_and_drift_skips_it(lab: LabState, config: Path,
                                                             tmp_path: Path) -> None:
    """-x at a real failure: exit 1; --maxfail at a waived one: exit 2 (the rest never ran)."""
    reports = tmp_path / "reports"
    env = _env(lab)
    r = subprocess.run(_pytest("--target", "strict", "--pgproof-config", str(config), "--reports",
                               str(reports / "x"), "--control", CONTROLS, "-x"),
                       capture_output=True, text=True, cwd=REPO, timeout=TIMEOUT, env=env)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr
    _, doc = _results(reports / "x")
    assert doc["stopped_early"].startswith("stopping after 1 failures"), doc["stopped_early"]
    assert doc["partial"] is True and doc["exit_code"] == 1
    assert _by_id(doc)["POOL-1"] == "fail" and _by_id(doc)["MON-3"] == "not-checked"
    assert "stopped early" in r.stderr and "NOT A VERDICT: stopped early" in r.stdout

    r = subprocess.run(_check("--target", "strictwaived", "--config", str(config), "--reports",
                              str(reports / "waived"), "--control", CONTROLS, "--",
                              "--maxfail", "1"),
                       capture_output=True, text=True, cwd=REPO, timeout=TIMEOUT, env=env)
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr  # on main: 0, "compliant"
    _, doc = _results(reports / "waived")
    assert _by_id(doc)["POOL-1"] == "waived" and doc["exit_code"] == 2 and doc["stopped_early"]
    (line,) = _history(reports / "waived")
    assert line["stopped_early"] and line["exit_code"] == 2


def test_a_fault_left_on_the_target_is_exit_2_everywhere(lab: LabState, config: Path,
                                                         tmp_path: Path) -> None:
    target = load_target("strict", config)
    rec = FaultRecord.create(target, "gd-exitcodes", "latency", None)
    rec.add_fault("toxic", {"proxy": "writer"}, "latency toxic on writer (left by a test)",
                  "remove it")
    rec.data["owner_ended_at"] = time.time()  # its runner is gone: an orphan
    rec.save()
    try:
        reports = tmp_path / "reports"
        r = subprocess.run(_check("--target", "strict", "--config", str(config), "--reports",
                                  str(reports), "--control", CONTROLS, "--framework", "hipaa"),
                           capture_output=True, text=True, cwd=REPO, timeout=TIMEOUT, env=_env(lab))
        r2 = subprocess.run(_pytest("--target", "strict", "--pgproof-config", str(config),
                                    "--reports", str(tmp_path / "direct"), "--control", CONTROLS),
                            capture_output=True, text=True, cwd=REPO, timeout=TIMEOUT, env=_env(lab))
    finally:
        rec.delete()
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr
    assert r2.returncode == 2, r2.stdout[-3000:] + r2.stderr  # pytest direct: the same code
    assert r.stderr.count("ORPHANED FAULT") == 1 and "marked orphaned_fault" in r.stderr, r.stderr
    for base in (reports, tmp_path / "direct"):
        d, doc = _results(base)
        assert doc["exit_code"] == 2, doc["exit_code"]  # on main: 1 (POOL-1), terminal 2
        assert "ORPHANED FAULT" in doc["orphaned_fault"] and "latency toxic" in doc["orphaned_fault"]
        assert "Not a verdict: fault left on the target: ORPHANED FAULT" in (
            d / "summary.html").read_text()
        (line,) = _history(base)
        assert line["orphaned_fault"] == doc["orphaned_fault"] and line["exit_code"] == 2


def test_numprocesses_with_one_target_is_refused(lab: LabState, config: Path, tmp_path: Path) -> None:
    """On main: the run went ahead with no report, and exit 2 hid POOL-1's real failure."""
    reports = tmp_path / "reports"
    r = subprocess.run(_check("--target", "strict", "--config", str(config), "--reports",
                              str(reports), "--", "-n", "2"),
                       capture_output=True, text=True, cwd=REPO, timeout=TIMEOUT, env=_env(lab))
    assert r.returncode == 2, r.stdout[-3000:] + r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("pgproof: -n 2 would split one target's checks"), line
    assert _run_dirs(reports) == [] and "report" not in r.stdout, r.stdout


def test_bad_input_during_collection_is_no_interruption(lab: LabState, tmp_path: Path) -> None:
    """pytest.exit (bad input) is not a Ctrl-C: its own sentence only, and no run directory."""
    r = subprocess.run(_pytest("--target", "lab", "--reports", str(tmp_path / "reports"),
                               "--control", "HA-2"),
                       capture_output=True, text=True, cwd=REPO, timeout=TIMEOUT, env=_env(lab))
    assert r.returncode == 2 and "no collected test proves HA-2" in r.stdout + r.stderr, r.stdout
    assert "interrupted" not in r.stderr, r.stderr
    assert _run_dirs(tmp_path / "reports") == []


def test_two_checks_into_one_reports_folder_each_exit_with_their_own_verdict(
        lab: LabState, config: Path, tmp_path: Path) -> None:
    """Both held at their last check, released together: their reports land in the same second.

    On main the exit code and ``--framework`` read reports/latest-check, which the other run
    may have moved: the strict run exited 0 and filed its HIPAA report in the lab's run."""
    reports = tmp_path / "reports"
    wrong = []
    for n in range(3):
        runs = {}
        for name in ("lab", "strict"):
            runs[name] = Run(_check("--target", name, "--config", str(config), "--reports",
                                    str(reports), "--control", CONTROLS, "--framework", "hipaa",
                                    "--", "-p", "holdplugin"),
                             _env(lab, PGPROOF_TEST_HOLD_AT="[MON-3-health]"), tmp_path, f"{name}{n}",
                             release=tmp_path / f"go{n}")
        for run in runs.values():
            run.wait_held()
        (tmp_path / f"go{n}").touch()
        for name, run in runs.items():
            rc = run.finish()
            out = run.out.read_text()
            m = re.search(r"^hipaa report: (.+)$", out, re.M)
            assert m, run.text()
            d = Path(m[1]).parent
            doc = json.loads((d / "results.json").read_text())
            if (rc, doc["target"], doc["exit_code"]) != (1 if name == "strict" else 0, name, rc):
                wrong.append((n, name, rc, doc["target"], doc["exit_code"]))
    assert not wrong, wrong
    dirs = _run_dirs(reports)
    assert len(dirs) == 6 and all((d / "framework-hipaa.html").exists() for d in dirs), dirs
