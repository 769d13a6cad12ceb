"""pytest plugin: ``--target``, control markers, verdicts, and per-run reports."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pgproof import fsio, pytest_targets, shipped
from pgproof.errors import UserError
from pgproof.faults.record import FaultRecord
from pgproof.interrupts import Catcher, describe
from pgproof.pytest_targets import TARGET_KEY, get_target
from pgproof.pytest_units import EVERY_DATABASE, FLEET_JUDGED, check_id, unit_of
from pgproof.report import results as res
from pgproof.target import Target
from pgproof.verdict import (
    CannotVerify,
    Inherited,
    NotApplicable,
    NotChecked,
    NotOnPlatform,
    Unreachable,
    Verdict,
)

pytest_plugins = ["pgproof.pytest_fixtures",  # one fixture per layer: the probes' facts
                  "pgproof.pytest_units",  # the catalogue's checks: test_control[ID-layer]
                  "pgproof.pytest_selection",  # --control, ID markers, what a run left out
                  "pgproof.pytest_outputs",  # control IDs in junit.xml and report.html
                  "pgproof.pytest_targets",  # --target a,b: one target per xdist worker
                  "pgproof.pytest_limits"]  # timeouts.run_s: the whole run's time limit

REPORT_DIRS = ("suites", "scenarios")
_RESULTS = pytest.StashKey[list[res.CheckResult]]()
_RUN_DIR = pytest.StashKey[Path]()
_CONTROLS = pytest.StashKey[list[res.ControlResult]]()
_SECRETS = pytest.StashKey[list[str]]()
_WARNINGS = pytest.StashKey[list[str]]()
_TODAY = pytest.StashKey[dt.date]()
_CATCHER = pytest.StashKey[Catcher]()  # SIGINT/SIGTERM/SIGHUP: which stopped the run, and when
_RAN = pytest.StashKey[set[str]]()  # checks that ran to the end (fewer than collected: stopped early)
_ORPHAN = pytest.StashKey[str]()  # a fault record on the target: the run describes the fault
_STOPPED = pytest.StashKey[str]()  # pytest's own reason for stopping (-x: "stopping after 1 failures")
_INCOMPLETE = pytest.StashKey[dict[str, object]]()
_REPORTING = pytest.StashKey[bool]()  # this process made a run directory (kept or dropped)


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("pgproof")
    g.addoption("--target", default=os.environ.get("PGPROOF_TARGET", "lab"),
                help="target name from pgproof.toml (default: lab)")
    g.addoption("--pgproof-config", type=Path, default=None, help="config file (default pgproof.toml)")
    g.addoption("--reports", type=Path, default=Path("reports"), help="report base directory")
    g.addoption("--no-reports", action="store_true", help="write no report directory")
    g.addoption("--i-mean-production", action="store_true",
                help="allow chaos on a target that looks like production")
    g.addoption("--dry-run", action="store_true", help="chaos: print the plan, touch nothing")


def _wants_reports(config: pytest.Config) -> bool:
    if config.getoption("no_reports"):
        return False
    root = Path(config.rootpath)
    # A repository's own suites/ and scenarios/, or the ones installed with pgproof.
    dirs = [root / d for d in REPORT_DIRS] + [shipped.folder(d).resolve() for d in REPORT_DIRS]
    for arg in config.args:
        p = Path(arg.split("::")[0]).resolve()
        if any(p == d or d in p.parents for d in dirs):
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``-n``/``--tx`` with one target: refused in one sentence (exit 2), before anything is made.

    xdist would split one target's checks over workers whose results never reach the
    process that writes the report; several targets (``--target a,b``) are how pgproof
    uses xdist, one whole suite per worker (``pgproof.pytest_targets``)."""
    if hasattr(config, "workerinput") or len(pytest_targets.names(config)) > 1:
        return None
    n = getattr(config.option, "numprocesses", None)
    if (n in (None, 0) and not getattr(config.option, "tx", None)) or not _wants_reports(config):
        return None
    given = f"-n {n}" if n not in (None, 0) else "--tx"
    print(f"pgproof: {given} would split one target's checks across pytest-xdist workers, which "
          "cannot report them as one run: drop it, or name several targets (--target a,b) to "
          "check them in parallel, one worker each", file=sys.stderr)
    return 2


@pytest.hookimpl(tryfirst=True)  # before pytest-html's: it reads --html only in its own configure
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "control(*ids): the control IDs (docs/controls.md) this check proves")
    config.stash[_RESULTS] = []
    config.stash[_RAN] = set()
    multi = pytest_targets.configure(config)
    if multi == "controller":
        config.stash[_CATCHER] = Catcher().install()  # SIGTERM: stop the workers, not die
        return
    if _wants_reports(config) and (multi == "worker" or not hasattr(config, "workerinput")):
        target = get_target(config)  # bad input stops here: before a report directory is made
        try:  # --reports a file, read-only, full, or `latest` a directory: one sentence, exit 2
            base = fsio.prepare_reports(config.getoption("reports"))
        except UserError as exc:
            pytest.exit(f"pgproof: {exc}", returncode=2)
        left = _fault_notice(target)
        if left:  # said now, so a long run is not a surprise; marked in every report at the end
            config.stash[_ORPHAN] = left
            print(f"pgproof: {left}", file=sys.stderr, flush=True)
        config.stash[_CATCHER] = Catcher().install()
        d = res.run_dir(base, config.getoption("target"))
        config.stash[_RUN_DIR] = d
        config.stash[_REPORTING] = True
        config.pluginmanager.register(_DropOnAbort(config), "pgproof-drop-on-abort")
        config.pluginmanager.register(_DiskGuard(config), "pgproof-disk-guard")
        if multi == "worker":  # pytest writes junit.xml on the controller only: one per target here
            pytest_targets.worker_junit(config, d / "junit.xml")
            return
        if not config.option.xmlpath:
            config.option.xmlpath = str(d / "junit.xml")
        if hasattr(config.option, "htmlpath") and not config.option.htmlpath:
            config.option.htmlpath = str(d / "report.html")
            config.option.self_contained_html = True


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    if any(item.get_closest_marker("control") for item in items):
        get_target(config)


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    return get_target(pytestconfig)


@pytest.fixture
def evidence(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Record what a passing check saw, so a report shows why it passed."""
    def record(text: str) -> None:
        request.node.user_properties.append(("evidence", text))
    return record


def _verdict(report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException] | None) -> tuple[Verdict, str]:
    if excinfo is not None:
        if excinfo.errisinstance(CannotVerify):
            return Verdict.CANNOT_VERIFY, f"cannot verify on this target: {excinfo.value}"
        if excinfo.errisinstance(NotApplicable):
            return Verdict.SKIP, f"not applicable: {excinfo.value}"
        if excinfo.errisinstance(Inherited):  # the provider's on this platform: never pass
            return Verdict.INHERITED, f"inherited: {excinfo.value}"
        if excinfo.errisinstance(NotChecked):  # the layer's vantage point is not configured
            return Verdict.NOT_CHECKED, str(excinfo.value)
        if excinfo.errisinstance(Unreachable):
            return Verdict.ERROR, f"could not check: {excinfo.value}"
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        return Verdict.SKIP, reason.removeprefix("Skipped: ")
    if report.failed:
        text = getattr(report, "longreprtext", "")
        return (Verdict.FAIL if report.when == "call" else Verdict.ERROR), text.strip()
    return Verdict.PASS, ""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    marker = item.get_closest_marker("control")
    exc = call.excinfo
    if exc is not None and exc.errisinstance((CannotVerify, NotApplicable, NotChecked, Inherited)):
        report.outcome = "skipped"
        prefix = ("cannot verify on this target: " if exc.errisinstance(CannotVerify) else
                  "" if exc.errisinstance(NotChecked) else
                  "inherited: " if exc.errisinstance(Inherited) else "not applicable: ")
        report.longrepr = (str(item.path), item.location[1] or 0, f"{prefix}{exc.value}")
    if marker is None:
        return
    done = report.when == "call" or (report.when == "setup" and not report.passed)
    if not done:
        return
    verdict, message = _verdict(report, exc)
    if verdict is Verdict.PASS:
        message = "; ".join(str(v) for k, v in item.user_properties if k == "evidence")
    item.user_properties.append(("pgproof_verdict", verdict.value))
    per_db = item.stash.get(FLEET_JUDGED, None)
    judged = per_db.judged if per_db is not None else []
    if verdict is Verdict.FAIL:
        for name in [check_id(item.nodeid, j.database) for j in judged
                     if j.verdict is Verdict.FAIL] or [item.nodeid]:
            _waiver_property(item, list(marker.args), name)
    from pgproof.layers import of_fixtures, reasons

    callspec = getattr(item, "callspec", None)
    database = (callspec.params.get("aws_inventory") or callspec.params.get("database")
                if callspec else None)
    unit = unit_of(item)
    seen = unit.layers if unit else of_fixtures(getattr(item, "fixturenames", ()))
    why = reasons(item.config.stash.get(TARGET_KEY, None), seen) if verdict is Verdict.NOT_CHECKED else (
        dict.fromkeys(seen, message) if exc is not None and exc.errisinstance(NotOnPlatform) else {})
    if judged:  # a fleet item: one result per database, as reports and the matrix want them
        item.config.stash[_RESULTS].extend(
            res.CheckResult(check_id(item.nodeid, j.database), list(marker.args), j.verdict, j.message,
                            j.duration_s, seen, {}, j.database) for j in judged)
        return
    item.config.stash[_RESULTS].append(res.CheckResult(
        item.nodeid, list(marker.args), verdict, message, round(report.duration, 3), seen, why,
        None if database == EVERY_DATABASE else database))


def _waiver_property(item: pytest.Item, ids: list[str], nodeid: str) -> None:
    """junit.xml: a ``waiver`` property on a failing check a waiver covers (or no longer does);
    ``nodeid``: the check (a fleet item's failing database: ``test_control[ID-aws-region/db]``).

    On the item, not this report: junit writes the properties of the teardown report."""
    from pgproof import waivers

    target = item.config.stash.get(TARGET_KEY, None)
    for cid in ids:
        d = waivers.decide(target.waivers if target else [], [cid], nodeid, _today(item.config))
        if d is not None:
            prop = ("waiver", f"{cid}: {d.status}: {d.note}")
            if prop not in item.user_properties:
                item.user_properties.append(prop)


def _today(config: pytest.Config) -> dt.date:
    """One date per run, so junit.xml and results.json judge every waiver on the same day."""
    if _TODAY not in config.stash:
        from pgproof import waivers

        config.stash[_TODAY] = waivers.today()
    return config.stash[_TODAY]


def _drop_empty_run(config: pytest.Config) -> None:
    """Nothing will be checked: drop the report directory, and junit/html with it, before they
    write into it and announce files that ``pytest_unconfigure`` would then remove.

    Called between hook calls (pluggy snapshots a hook's plugins when the call starts).
    """
    if _RUN_DIR not in config.stash or config.stash[_RESULTS]:
        return
    d = config.stash[_RUN_DIR].resolve()
    from _pytest.junitxml import xml_key

    xml = config.stash.get(xml_key, None)
    if xml is not None and Path(xml.logfile).resolve().is_relative_to(d):
        del config.stash[xml_key]
        config.pluginmanager.unregister(xml)
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "_report_path", None)  # pytest-html's report object
        if isinstance(path, Path) and path.resolve().is_relative_to(d):
            config.pluginmanager.unregister(plugin)
    shutil.rmtree(d, ignore_errors=True)
    del config.stash[_RUN_DIR]


def pytest_collection_finish(session: pytest.Session) -> None:
    if not any(item.get_closest_marker("control") for item in session.items):
        _drop_empty_run(session.config)  # e.g. -k matched no check


def _fault_notice(target: Target) -> str | None:
    """A game day's fault record on ``target`` not owned by this process (None: nothing left)."""
    rec = FaultRecord.load(target)
    if rec is None or (rec.data.get("owner") or {}).get("pid") == os.getpid():
        return None  # a game day this very run drives keeps its own record
    return rec.notice()


class _DropOnAbort:
    """Ctrl-C, pytest.exit or collection errors before any check: no half report.

    A per-config object because ``pytest_keyboard_interrupt`` is not given the config.
    The interruption is remembered (a KeyboardInterrupt raised inside a probe is no signal).
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo) -> None:  # type: ignore[type-arg]
        if _CATCHER in self.config.stash and excinfo.errisinstance(KeyboardInterrupt):
            self.config.stash[_CATCHER].note(describe(excinfo.value))  # not pytest.exit (bad input)
        _drop_empty_run(self.config)


_HISTORY_SIZE = pytest.StashKey[int | None]()


def _abandon_run(config: pytest.Config, exc: BaseException) -> None:
    """The disk refused a report file: say so in one sentence and leave no half run behind.

    The run directory goes (with whatever junit/html/JSON it holds), the history line this run
    appended is cut off again, and ``latest`` keeps pointing at the previous complete run."""
    d = config.stash.get(_RUN_DIR, None)
    text = fsio.describe(exc) if isinstance(exc, OSError) else str(exc)
    where = f"; nothing kept of this run ({d} removed)" if d is not None else ""
    print(f"pgproof: {text}{where}", file=sys.stderr, flush=True)
    if d is None:
        return
    history = d.parent / "history.jsonl"
    if _HISTORY_SIZE in config.stash:  # its size before this run wrote (None: it did not exist)
        size = config.stash[_HISTORY_SIZE]
        with contextlib.suppress(OSError):
            if size is None:
                history.unlink(missing_ok=True)
            elif history.stat().st_size > size:
                os.truncate(history, size)
    shutil.rmtree(d, ignore_errors=True)
    del config.stash[_RUN_DIR]


class _DiskGuard:
    """ENOSPC/EROFS/EACCES while any plugin writes the reports (ours, junit, html): exit 2."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int):  # type: ignore[no-untyped-def]
        d = self.config.stash.get(_RUN_DIR, None)
        if d is not None:
            history = d.parent / "history.jsonl"
            self.config.stash[_HISTORY_SIZE] = history.stat().st_size if history.exists() else None
        try:
            return (yield)
        except (OSError, fsio.DiskError) as exc:
            _abandon_run(self.config, exc)
            session.exitstatus = 2
            return None


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session):  # type: ignore[no-untyped-def]
    """After the last check a signal is only recorded, so no report is torn mid-file."""
    try:
        return (yield)
    finally:
        catcher = session.config.stash.get(_CATCHER, None)
        if catcher is not None:
            catcher.raising = False
        stopped = session.shouldfail or session.shouldstop  # -x, --maxfail, --sw
        if stopped:
            session.config.stash[_STOPPED] = str(stopped)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):  # type: ignore[no-untyped-def]
    out = yield  # an interrupted check raises here: it did not run to the end
    item.config.stash[_RAN].add(item.nodeid)
    return out


def _incomplete(session: pytest.Session) -> dict[str, object]:
    """Why this run is no verdict of its target: interrupted, stopped early, a fault left on it."""
    config, out = session.config, {}
    catcher = config.stash.get(_CATCHER, None)
    if catcher is not None and catcher.first is not None:
        out.update(catcher.first.as_dict())
    ran, collected = len(config.stash[_RAN]), len(session.items)
    if not out and (_STOPPED in config.stash or ran < collected):
        out["stopped_early"] = (f"{config.stash.get(_STOPPED, 'the run stopped')}: "
                                f"{ran} of {collected} checks ran")
    target = config.stash.get(TARGET_KEY, None)
    left = config.stash.get(_ORPHAN, None) or (_fault_notice(target) if target else None)
    if left:
        out["orphaned_fault"] = left
    return out


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    results = config.stash[_RESULTS]
    if _RUN_DIR not in config.stash or not results:
        return
    d = config.stash[_RUN_DIR]
    target = config.stash.get(TARGET_KEY, None)
    from pgproof.pytest_selection import report_scope

    scope, selected, partial = report_scope(config, {c for r in results for c in r.controls})
    controls_ = res.aggregate(results, scope, selected)
    warnings = res.apply_waivers(controls_, target.waivers if target else [], _today(config))
    incomplete = _incomplete(session)
    res.write(d, config.getoption("target"), controls_,
              {"finished_at": time.time(), "pytest_exit": int(exitstatus),
               "platform": target.runs_on if target else None,
               "waiver_warnings": warnings, **incomplete}, partial=partial)
    code = res.run_code(controls_, bool(incomplete.get("interrupted")),
                        incomplete.get("stopped_early"), incomplete.get("orphaned_fault"))  # type: ignore[arg-type]
    if incomplete and code == 2:  # the same code on the terminal as in results.json
        session.exitstatus = pytest.ExitCode.INTERRUPTED  # 2
    config.stash[_INCOMPLETE] = incomplete
    config.stash[_WARNINGS] = warnings
    from pgproof.report import summary

    summary.write(d, config.getoption("target"), d.name, controls_, warnings,
                  incomplete_lines(incomplete))
    from pgproof.report import outputs  # SARIF, OCSF, ASFF: what other tools read

    outputs.write(d, config.getoption("target"), target, controls_,
                  config.getoption("pgproof_config"), config.getoption("sarif_root", default=None))
    config.stash[_CONTROLS] = controls_
    config.stash[_SECRETS] = secrets_of(target)
    if hasattr(config, "workeroutput"):  # the controller writes the combined index from these
        config.workeroutput["pgproof_run_dir"] = str(d)
        config.workeroutput["pgproof_target"] = config.getoption("target")


def secrets_of(target: Target | None) -> list[str]:
    out = []
    if target is not None:
        pw = target.password()
        if pw:
            out.append(pw)
        if target.lab is not None:
            f = target.lab.state_dir / "secrets.json"
            if f.exists():
                out += list(json.loads(f.read_text()).values())
    return out


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:  # type: ignore[no-untyped-def]
    controls_ = config.stash.get(_CONTROLS, None)
    if controls_ is None or _RUN_DIR not in config.stash:
        return
    tr = terminalreporter
    tr.section("pgproof: controls")
    left_out = [c.id for c in controls_ if c.verdict == res.NOT_SELECTED]
    from pgproof.report.summary import terminal_lines

    for line in terminal_lines(controls_):  # each control's layers, then its waivers' notes
        tr.write_line(line)
    for warning in config.stash.get(_WARNINGS, []):
        tr.write_line(f"warning: {warning}")
    if left_out:
        tr.write_line(f"partial run: {len(left_out)} controls not selected ({', '.join(left_out)})")
    for line in incomplete_lines(config.stash.get(_INCOMPLETE, {})):
        tr.write_line(f"NOT A VERDICT: {line}")
    tr.write_line(f"report: {config.stash[_RUN_DIR]}")


def incomplete_lines(incomplete: dict[str, object]) -> list[str]:
    """The terminal's and summary.html's words for a run that is no verdict of its target."""
    out = []
    if incomplete.get("interrupted"):
        out.append(f"interrupted by {incomplete.get('interrupted_by')} at "
                   f"{incomplete.get('interrupted_at')}: checks that did not run read not-checked; "
                   "this run is no verdict (exit 2) and drift skips it")
    if incomplete.get("stopped_early"):
        out.append(f"stopped early ({incomplete['stopped_early']}): checks that did not run read "
                   "not-checked; never compliant (exit 1 if a control failed, else 2), and drift "
                   "skips it")
    if incomplete.get("orphaned_fault"):
        out.append(f"fault left on the target: {incomplete['orphaned_fault']}; the verdicts "
                   "describe that fault, not the target: exit 2, and drift skips this run")
    return out


def _say_why(config: pytest.Config, d: Path | None) -> None:
    """One sentence on stderr for a run that is no verdict: what stopped it, what is left."""
    incomplete = config.stash.get(_INCOMPLETE, {})
    catcher = config.stash.get(_CATCHER, None)
    first = catcher.first if catcher is not None else None
    if d is None and first is not None:
        print(f"pgproof: interrupted by {first.by} at {first.clock()} before any check finished: "
              "no report written (exit 2)", file=sys.stderr)
    elif incomplete.get("interrupted"):
        print(f"pgproof: interrupted by {incomplete['interrupted_by']} at {first.clock() if first else '?'}"
              f" before every check ran: no verdict (exit 2); the partial report {d} says so and "
              "drift skips it", file=sys.stderr)
    elif incomplete.get("stopped_early"):
        print(f"pgproof: the run stopped early ({incomplete['stopped_early']}): never compliant, "
              f"and drift skips it; partial report {d}", file=sys.stderr)
    elif first is not None:  # after results.json: the run was complete, its code stands
        print(f"pgproof: {first.by} arrived after every check had run; report {d} is complete",
              file=sys.stderr)
    if incomplete.get("orphaned_fault"):
        print("pgproof: a game day's fault was on the target during this run (see above): it is "
              "marked orphaned_fault in its reports, exits 2, and drift skips it", file=sys.stderr)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Runs after junit/html are written: scrub secrets and point reports/latest here."""
    catcher = config.stash.get(_CATCHER, None)
    try:
        if _RUN_DIR not in config.stash:  # never made (no report wanted), or dropped: empty
            if config.stash.get(_REPORTING, False):
                _say_why(config, None)
            return
        d = config.stash[_RUN_DIR]
        if not (d / "results.json").exists():
            # Nothing was checked (bad config, no control ran): leave no half report behind.
            shutil.rmtree(d, ignore_errors=True)
            _say_why(config, None)
            return
        try:  # `latest` moves last, and only to a complete run
            secrets: list[str] = config.stash.get(_SECRETS, [])
            res.scrub(d.iterdir(), secrets)
            res.point_latest(d.parent, d)
        except (OSError, fsio.DiskError) as exc:
            _abandon_run(config, exc)
            raise SystemExit(2) from None  # the exit status is already decided: this is the way out
        from pgproof.report import index  # reports/latest-check, index.html, nav bars

        index.after_run(d, "check")
        res.RUNS_WRITTEN.append(d)
        _say_why(config, d)
    finally:
        if catcher is not None:
            catcher.restore()
