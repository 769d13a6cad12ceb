"""Exit codes that cannot lie: a run that is no verdict of its target says so everywhere.

Interrupted (a signal, a KeyboardInterrupt in a probe), stopped early (``-x``) and
fault-polluted runs: their exit code, results.json, summary.html, history line and
index, and drift skipping them. No lab here: the writers a real run uses, the real
signal handlers, and pytest over ``suites/`` in a subprocess for ``-n``. The same
behaviour against the lab, with real signals during real runs: test_interrupts_lab.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pgproof.catalogue.registry import of_kind
from pgproof.cli_parser import build_parser
from pgproof.interrupts import Catcher, Interrupted
from pgproof.report import index, summary
from pgproof.report import results as res
from pgproof.report.history import drift, incomplete
from pgproof.verdict import Verdict as V

REPO = Path(__file__).resolve().parent.parent
PGPROOF = Path(sys.executable).parent / "pgproof"
IDS = of_kind("compliance")
STOPPED = "stopping after 1 failures: 12 of 70 checks ran"
ORPHAN = ("ORPHANED FAULT on target 'staging' from game day gd-1 (its runner is gone or its undo "
          "failed): latency toxic on writer; run `pgproof gameday recover --target staging`")


def _controls(verdicts: dict[str, str]) -> list[res.ControlResult]:
    return res.aggregate([res.CheckResult(f"suites/t.py::{c}", [c], V(v), f"saw {v}")
                          for c, v in verdicts.items()], IDS)


def _run(base: Path, verdicts: dict[str, str], **meta: object) -> dict:  # type: ignore[type-arg]
    d = res.run_dir(base, "staging")
    res.write(d, "staging", _controls(verdicts), dict(meta))
    return json.loads((d / "results.json").read_text())


# -- the exit code ---------------------------------------------------------------------------
def test_a_run_that_is_no_verdict_never_exits_0() -> None:
    passed, failed = _controls({"TLS-1": "pass"}), _controls({"TLS-1": "fail"})
    waived = _controls({"TLS-1": "pass"})
    waived[0].verdict = res.WAIVED
    assert res.run_code(passed) == 0 and res.run_code(failed) == 1 and res.run_code(waived) == 0
    for c in (passed, failed, waived):  # interrupted or polluted: no verdict, whatever it saw
        assert res.run_code(c, interrupted=True) == 2
        assert res.run_code(c, orphaned_fault=ORPHAN) == 2
    # -x: the failure it stopped at stands; with none seen, the checks left might have failed.
    assert res.run_code(failed, stopped_early=STOPPED) == 1
    assert res.run_code(passed, stopped_early=STOPPED) == 2
    assert res.run_code(waived, stopped_early=STOPPED) == 2


def test_interrupted_run_is_marked_in_results_history_and_summary(tmp_path: Path) -> None:
    at = "2026-12-07T15:42:49.004558+00:00"
    doc = _run(tmp_path, {"TLS-1": "pass", "NET-1": "pass"}, interrupted=True,
               interrupted_by="SIGTERM", interrupted_at=at)
    assert (doc["interrupted"], doc["interrupted_by"], doc["interrupted_at"]) == (True, "SIGTERM", at)
    assert doc["partial"] is True and doc["exit_code"] == 2  # not "compliant", not a full run
    assert doc["summary"]["not-checked"] == len(IDS) - 2
    (line,) = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert line["interrupted"] is True and line["interrupted_by"] == "SIGTERM"
    assert line["exit_code"] == 2 and line["partial"] is True
    assert incomplete(line) == "interrupted by SIGTERM"
    page = summary.render("staging", "run", _controls({"TLS-1": "pass"}),
                          incomplete=[f"interrupted by SIGTERM at {at}"])
    assert f"Not a verdict: interrupted by SIGTERM at {at}" in page
    assert page.index("Not a verdict") < page.index("<table")  # said before any count


def test_complete_run_says_so(tmp_path: Path) -> None:
    doc = _run(tmp_path, dict.fromkeys(IDS, "pass"))
    assert (doc["interrupted"], doc["stopped_early"], doc["orphaned_fault"]) == (False, None, None)
    assert doc["partial"] is False and doc["exit_code"] == 0
    line = json.loads((tmp_path / "history.jsonl").read_text())
    assert incomplete(line) is None and line["exit_code"] == 0 and "interrupted" not in line


def test_orphan_polluted_run_is_marked_and_exits_2(tmp_path: Path) -> None:
    doc = _run(tmp_path, dict.fromkeys(IDS, "pass"), orphaned_fault=ORPHAN)
    assert doc["orphaned_fault"] == ORPHAN and doc["exit_code"] == 2
    line = json.loads((tmp_path / "history.jsonl").read_text())
    assert line["orphaned_fault"] == ORPHAN and incomplete(line)


# -- drift, the index and the timeline skip them ----------------------------------------------
def test_drift_skips_interrupted_stopped_and_polluted_runs(tmp_path: Path) -> None:
    healthy = dict.fromkeys(IDS, "pass")
    first = _run(tmp_path, healthy)
    _run(tmp_path, {"TLS-1": "pass"}, interrupted=True, interrupted_by="SIGINT",
         interrupted_at="2026-12-07T15:00:00+00:00")
    _run(tmp_path, {**healthy, "POOL-1": "fail"}, stopped_early=STOPPED)
    _run(tmp_path, {**healthy, "TLS-1": "fail"}, orphaned_fault=ORPHAN)
    last = _run(tmp_path, healthy)
    prev, newest, changes = drift(tmp_path / "history.jsonl", "staging")
    assert prev is not None and newest is not None
    assert prev["at"] == first["generated_at"] and newest["at"] == last["generated_at"]
    assert changes == []  # on main: 31 "pass -> not-checked" against the interrupted run


def test_drift_command_says_what_it_did_not_compare(tmp_path: Path) -> None:
    healthy = dict.fromkeys(IDS, "pass")
    _run(tmp_path, healthy)
    _run(tmp_path, healthy)
    _run(tmp_path, {"TLS-1": "pass"}, interrupted=True, interrupted_by="SIGHUP",
         interrupted_at="2026-12-07T15:00:00+00:00")
    r = subprocess.run([str(PGPROOF), "drift", "--target", "staging", "--reports", str(tmp_path)],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "not compared:" in r.stdout and "interrupted by SIGHUP" in r.stdout, r.stdout
    assert "no control changed verdict" in r.stdout


def test_index_never_calls_an_interrupted_run_compliant(tmp_path: Path) -> None:
    healthy = dict.fromkeys(IDS, "pass")
    for meta in ({}, {"interrupted": True, "interrupted_by": "SIGTERM",
                      "interrupted_at": "2026-12-07T15:00:00+00:00"}, {}):
        d = res.run_dir(tmp_path, "staging")
        res.write(d, "staging", _controls(healthy if not meta else {"TLS-1": "pass"}), meta)
        index.after_run(d, "check")
    page = (tmp_path / "index.html").read_text()
    assert "not a verdict: interrupted by SIGTERM" in page
    assert page.count(">compliant<") == 2, page
    assert "->not-checked" not in page and "not-checked->" not in page  # no drift against it


# -- the signal handlers -----------------------------------------------------------------------
def test_sigterm_and_sighup_interrupt_like_ctrl_c_and_ignored_signals_stay_ignored() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup: the caller's choice
    catcher = Catcher().install()
    try:
        with pytest.raises(Interrupted) as exc:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2)  # the handler runs in this thread, at the next instruction
        assert exc.value.signame == "SIGTERM" and isinstance(exc.value, KeyboardInterrupt)
        assert catcher.first is not None and catcher.first.by == "SIGTERM"
        os.kill(os.getpid(), signal.SIGHUP)  # ignored: no exception, nothing recorded
        assert catcher.first.by == "SIGTERM"
        fresh = Catcher().install()
        fresh.raising = False  # writing reports: the first signal is only recorded ...
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        assert fresh.first is not None and fresh.first.by == "SIGINT"
        with pytest.raises(Interrupted):  # ... a second one stops all the same
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(2)
        fresh.restore()
    finally:
        catcher.restore()
        for s, h in before.items():
            signal.signal(s, h)
    assert signal.getsignal(signal.SIGTERM) == before[signal.SIGTERM]


# -- one run, one directory --------------------------------------------------------------------
def test_runs_of_the_same_second_get_their_own_directories(tmp_path: Path) -> None:
    made: list[Path] = []
    threads = [threading.Thread(target=lambda: made.append(res.run_dir(tmp_path, "staging")))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 8 and all(d.is_dir() for d in made)


# -- -n with one target: refused before anything is made ---------------------------------------
@pytest.mark.slow
def test_numprocesses_with_one_target_is_refused_in_one_sentence(tmp_path: Path) -> None:
    cfg = tmp_path / "pgproof.toml"
    cfg.write_text('[targets.box.postgres]\nuser = "auditor"\n'
                   'writer = { host = "127.0.0.1", port = 1 }\n')
    for extra in (["-n", "2"], ["-n", "auto"], ["--tx", "2*popen", "--dist", "load"]):
        r = subprocess.run([sys.executable, "-m", "pytest", str(REPO / "suites"), "--target", "box",
                            "--pgproof-config", str(cfg), "--reports", str(tmp_path / "reports"),
                            "-p", "no:randomly", *extra], capture_output=True, text=True,
                           timeout=120, cwd=REPO)
        assert r.returncode == 2, (extra, r.stdout[-2000:], r.stderr)
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith("pgproof: ") and extra[0] in line and "--target a,b" in line, line
        assert not (tmp_path / "reports").exists(), list((tmp_path / "reports").rglob("*"))


# -- documented where a user looks -------------------------------------------------------------
def test_exit_codes_are_in_the_help_and_the_readme() -> None:
    top = build_parser().format_help()
    check = next(a for a in build_parser()._subparsers._group_actions  # type: ignore[union-attr]
                 ).choices["check"].format_help()
    for text in (top, check):
        assert "exit codes" in text and "SIGTERM" in text and "SIGHUP" in text
    for needle in ("interrupted", "orphaned_fault", "-n/--numprocesses", "drift"):
        assert needle in check, needle
    readme = (REPO / "README.md").read_text()
    assert '"interrupted": true' in readme and "orphaned_fault" in readme
