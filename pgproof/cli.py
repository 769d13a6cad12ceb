"""``pgproof``: lab up|down|status|break|heal, check, doctor, controls, drift, gameday."""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
import threading
from pathlib import Path

from pgproof import interrupts, plugins, shipped
from pgproof.cli_parser import build_parser
from pgproof.errors import UserError
from pgproof.fsio import describe, prepare_reports
from pgproof.procs import ComponentError


def _lab(args: argparse.Namespace) -> int:
    """``pgproof lab ...`` is the lab's own command (pgproof[lab]), found by entry point."""
    plugins.require_extra("lab", "pgproof lab")
    return int(plugins.load(plugins.COMMANDS, "lab")(args))


# Test-tooling plugins that autoload from the environment and have no part in a check: Hypothesis
# imports itself at every session's end (~0.6 s on a loaded machine, Ctrl-C's 2 s budget included);
# pytest's unraisable-exception hook runs two full garbage collections at exit to surface
# exceptions from test objects' __del__ (~1.6e5 objects once the AWS clients exist: 0.09 s of CPU
# each, 1 s of wall each at load 19), a diagnostic for test authors, never a verdict.
NO_PLUGINS = ("-p", "no:hypothesispytest", "-p", "no:unraisableexception")
# One target is one process: pytest-xdist (and execnet, ~50 ms) only when asked for (-n/--tx, which
# the plugin then refuses in one sentence) or for several targets.
XDIST_FLAGS = ("-n", "--numprocesses", "--tx", "--dist", "--maxprocesses", "-d", "--looponfail", "-f")


def _one_target_plugins(pytest_args: list[str]) -> tuple[str, ...]:
    wants = any(a == f or a.startswith(f + ("=" if f.startswith("--") else "")) for a in pytest_args
                for f in XDIST_FLAGS)
    return () if wants else ("-p", "no:xdist", "-p", "no:xdist.looponfail")


class _FreezeImports:
    """``gc.freeze()`` once the suites are collected, undone after the run.

    The ~6.7e4 objects of the imported modules (pytest, boto3, psycopg, pydantic's schemas) live
    until exit; without this every full collection during the run (one per ~10^4 surviving
    allocations; a fleet run makes many) walks them again.
    Only reference cycles made before collection are exempt; nothing a check makes is."""

    def pytest_collection_finish(self) -> None:
        gc.freeze()


def _check(args: argparse.Namespace) -> int:
    """Run the compliance suites; exit 0 compliant, 1 non-compliant, 2 could not check.

    SIGINT, SIGTERM and SIGHUP interrupt it like Ctrl-C (inside pytest the plugin marks the
    report interrupted): exit 2, one sentence, never a verdict."""
    catcher = interrupts.Catcher().install()
    try:
        rc = _check_run(args)
        _CHECKED["done"] = True
        return rc
    except KeyboardInterrupt as exc:  # outside pytest's session: before it, or after it
        interrupts.mark()
        by = catcher.first.by if catcher.first else interrupts.describe(exc)
        print(f"pgproof: check interrupted by {by}: no verdict (exit 2)", file=sys.stderr)
        return 2
    finally:
        catcher.restore()


def _check_run(args: argparse.Namespace) -> int:
    import json

    from pgproof import preflight
    from pgproof.target import load_target

    selection = _control_args(args.control)
    profile = _profile_args(args.profile)
    if selection is None or profile is None:
        return 2
    selection += profile
    names = _target_names(args)
    if len(names) > 1:
        return _check_many(args, names, selection)
    args.target = names[0]
    # Bad config, wrong port, missing password: one message, exit 2, no report.
    target = load_target(args.target, args.config)
    if args.to_security_hub and target.aws is None:
        print(f"pgproof: --to-security-hub: target {args.target!r} has no [aws] section, so its "
              "findings belong to no AWS account", file=sys.stderr)
        return 2
    if args.notify:
        from pgproof.notify.dispatch import require_env

        if target.notify is None:
            raise UserError(f"--notify: target {args.target!r} has no [targets.{args.target}.notify] "
                            "section to say where to send")
        require_env(target.notify, args.target)
    orphan = _orphan_notice(target)
    preflight.check(target)
    args.reports = prepare_reports(args.reports)  # a file, read-only, full: said before the run
    import pytest  # after the pre-flight: on a loaded machine its import alone takes ~1 s
    base = args.reports.resolve()
    argv = [str(shipped.folder("suites")), "--target", args.target, "--reports", str(base),
            "-p", "no:cacheprovider", *NO_PLUGINS, "-q", "-rN", "--tb=line", *selection,
            *args.pytest_args]
    if args.config:
        argv += ["--pgproof-config", str(args.config)]
    if args.sarif_root:
        argv += ["--sarif-root", str(args.sarif_root)]
    from pgproof.report.results import RUNS_WRITTEN

    RUNS_WRITTEN.clear()
    argv[1:1] = _one_target_plugins(args.pytest_args)
    try:
        rc = pytest.main(argv, plugins=[_FreezeImports()])
    finally:
        gc.unfreeze()
    # This run's own directory, never reports/latest-check: a check beside this one (same
    # reports folder, another target) may have moved that link since.
    run = RUNS_WRITTEN[-1] if RUNS_WRITTEN else None
    if run is None or not (run / "results.json").exists():
        return 2 if rc != 0 or orphan else 0
    doc = json.loads((run / "results.json").read_text())
    if doc.get("interrupted") or doc.get("orphaned_fault"):  # the plugin said why, once
        return 2  # no verdict: nothing to file under a framework, import or notify
    if args.framework:
        from pgproof.report import framework

        for key in dict.fromkeys(args.framework):
            print(f"{key} report: {framework.write(run, key)[1]}")
    if args.to_security_hub:
        from pgproof.report.security_hub import send_run

        if not send_run(target, run):
            return 2
    if args.notify and target.notify is not None:  # after the run: its exit code stays the run's
        from pgproof.notify.dispatch import notify_run

        for line in notify_run(target.notify, run):
            print(line)
    return int(doc["exit_code"])


def _target_names(args: argparse.Namespace) -> list[str]:
    """``--target a --target b`` (or ``a,b``); none given: $PGPROOF_TARGET, else lab."""
    given = [t.strip() for v in (args.target or []) for t in v.split(",") if t.strip()]
    names = list(dict.fromkeys(given)) or [os.environ.get("PGPROOF_TARGET") or "lab"]
    if len(names) < len(given):
        raise UserError("--target: a target is named twice")
    return names


def _check_many(args: argparse.Namespace, names: list[str], selection: list[str]) -> int:
    """Several targets at once: pytest-xdist, one worker per target, one report each + an index."""
    import json

    from pgproof import pytest_targets
    from pgproof.target import load_target

    for flag, on in (("--to-security-hub", args.to_security_hub), ("--notify", args.notify)):
        if on:
            raise UserError(f"{flag} takes one target; run it once per target")
    for name in names:  # bad config: one sentence, exit 2, before any worker starts
        load_target(name, args.config)
    args.reports = prepare_reports(args.reports)
    import pytest

    base = args.reports.resolve()
    argv = [str(shipped.folder("suites")), "--target", ",".join(names), "--reports", str(base),
            "-p", "no:cacheprovider", *NO_PLUGINS, "-q", "-rN", "--tb=line", *selection,
            *args.pytest_args]
    if args.config:
        argv += ["--pgproof-config", str(args.config)]
    if args.sarif_root:
        argv += ["--sarif-root", str(args.sarif_root)]
    pytest_targets.LAST_INDEX.clear()
    try:
        rc = pytest.main(argv, plugins=[_FreezeImports()])
    finally:
        gc.unfreeze()
    if not pytest_targets.LAST_INDEX or rc == pytest.ExitCode.INTERRUPTED:
        return 2 if rc != 0 else 0
    doc = json.loads(pytest_targets.LAST_INDEX[-1].with_suffix(".json").read_text())
    if args.framework:
        from pgproof.report import framework

        for t in doc["targets"]:
            for key in dict.fromkeys(args.framework):
                print(f"{t['target']}: {key} report: {framework.write(Path(t['dir']), key)[1]}")
    done = {t["target"] for t in doc["targets"]}
    return 2 if done != set(names) else int(doc["exit_code"])


def _doctor(args: argparse.Namespace) -> int:
    """Reachability and permissions of every configured layer: 0 ready, 1 something missing."""
    from pgproof import doctor
    from pgproof.target import load_target

    return doctor.run(load_target(args.target, args.config))


def _control_args(values: list[str] | None) -> list[str] | None:
    """``--control`` for pytest, or None after saying why a pattern is wrong (exit 2)."""
    from pgproof.catalogue.registry import UnknownControl, select, split_patterns

    try:
        patterns = split_patterns(values)
        select(patterns, "compliance")
    except UnknownControl as exc:
        print(f"pgproof: --control: {exc}", file=sys.stderr)
        return None
    return ["--control", ",".join(patterns)] if patterns else []


def _profile_args(name: str | None) -> list[str] | None:
    """``--profile`` for pytest, or None after saying the profile is unknown (exit 2)."""
    from pgproof.catalogue.profiles import UnknownProfile, controls_of

    if name is None:
        return []
    try:
        controls_of(name)
    except UnknownProfile as exc:
        print(f"pgproof: --profile: {exc}", file=sys.stderr)
        return None
    return ["--profile", name]


def _controls(args: argparse.Namespace) -> int:
    """List the catalogue: a table, JSON, or the Markdown of docs/controls.md."""
    from pgproof.catalogue import render
    from pgproof.catalogue.registry import CATALOGUE, UnknownControl, select, split_patterns

    if args.format == "markdown":
        if args.patterns or args.kind or args.platform:
            print("pgproof: controls --format markdown renders the whole catalogue (every "
                  "platform); drop the patterns, --kind and --platform", file=sys.stderr)
            return 2
        sys.stdout.write(render.markdown())
        return 0
    showing = bool(args.patterns) and args.patterns[0] == "show"
    patterns = args.patterns[1:] if showing else args.patterns
    if showing and not patterns:
        print("pgproof: controls show: name a control, e.g. `pgproof controls show TLS-5`",
              file=sys.stderr)
        return 2
    try:
        ids = select(split_patterns(patterns), args.kind) if patterns else list(CATALOGUE)
    except UnknownControl as exc:
        print(f"pgproof: controls: {exc}", file=sys.stderr)
        return 2
    if showing:
        breaks = _mutation_breaks()
        print("\n\n".join(render.show(CATALOGUE[i], breaks) for i in ids))
        return 0
    chosen = [CATALOGUE[i] for i in ids if args.kind in (None, CATALOGUE[i].kind)]
    if args.platform:
        print(render.platform_json(chosen, args.platform) if args.format == "json"
              else render.platform_table(chosen, args.platform))
        return 0
    print(render.as_json(chosen) if args.format == "json" else render.table(chosen))
    return 0


def _mutation_breaks() -> dict[str, frozenset[str]] | None:
    """Mutation name -> the controls it must fail, from every harness registered under the
    ``pgproof.mutations`` entry point (the lab's; None: no harness installed)."""
    found = [ep for name in plugins.names(plugins.MUTATIONS)
             if (ep := plugins.find(plugins.MUTATIONS, name)) is not None]
    if not found or plugins.missing_extra("lab"):
        return None
    out: dict[str, frozenset[str]] = {}
    for ep in found:
        out.update(ep.load()())
    return out


def _gameday(args: argparse.Namespace) -> int:
    """One game day; exit 0 all verdicts pass, 1 a control failed, 2 error/refused."""
    from pgproof import preflight
    from pgproof.gameday import run as gd
    from pgproof.gameday.safety import ChaosRefused
    from pgproof.target import load_target

    workers = _workers(args.workers, args.scenario)
    if args.archive_wait is not None and (args.scenario != "restore-pitr" or args.archive_wait <= 0):
        raise UserError("--archive-wait takes a positive number of seconds and only applies to "
                        f"restore-pitr (got {args.archive_wait:g} for {args.scenario})")
    target = load_target(args.target, args.config)
    if args.scenario == "recover":  # no pre-flight: the fault being undone may fail it
        from pgproof.gameday.recover import recover

        return recover(target)
    if args.scenario != "alarm-drill":  # the drill needs only [aws]: an AWS-only runner can drill
        target.require_postgres("a game day")  # the clock and the ledger write through the writer
    gd.check_workers(workers, args.users or target.chaos.load_users)
    preflight.check(target)
    if not args.dry_run:  # a dry run touches nothing, not even the reports folder
        args.reports = prepare_reports(args.reports)
    if args.scenario == "restore-pitr":
        return _restore_pitr(args, target)
    try:
        if args.scenario == "alarm-drill":  # not a failover: its own runner
            from pgproof.gameday import alarm_drill

            journal, out = alarm_drill.run(target, reports=args.reports, alarms=args.alarm,
                                           i_mean_production=args.i_mean_production,
                                           dry_run=args.dry_run)
        else:
            journal, out = gd.run(target, args.scenario, reports=args.reports, users=args.users,
                                  baseline_s=args.baseline, workers=workers,
                                  i_mean_production=args.i_mean_production, dry_run=args.dry_run)
    except ChaosRefused as exc:
        print(f"pgproof: refused: {exc}", file=sys.stderr)
        return 2
    if out is None:
        return 0
    for v in journal.verdicts:
        print(f"{v['verdict'].upper():<6} {v['id']:<9} {v['evidence']}")
    if journal.manual_fix:
        print(f"UNDO FAILED: {journal.manual_fix}", file=sys.stderr)
    print(f"game day {journal.scenario}: {journal.verdict}; report: {out}")
    return {"pass": 0, "fail": 1}.get(journal.verdict, 2)


def _workers(text: str | None, scenario: str) -> int:
    """``--workers N``: a whole number >= 0, only for the failover scenarios (0: one Locust process)."""
    if text is None:
        return 0
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0 or n > 64:
        raise UserError(f"--workers takes a whole number of Locust worker processes from 0 to 64 "
                        f"(0: one process), got {text!r}")
    if scenario in ("recover", "alarm-drill", "restore-pitr"):
        raise UserError(f"--workers only applies to the failover scenarios under load, not {scenario}")
    return n


def _restore_pitr(args: argparse.Namespace, target: object) -> int:
    """The restore drill (BAK-6): exit 0 proven, 1 not, 2 error/refused."""
    from pgproof.gameday import restore
    from pgproof.gameday.safety import ChaosRefused

    try:
        journal, out = restore.run(target, reports=args.reports, users=args.users,  # type: ignore[arg-type]
                                   i_mean_production=args.i_mean_production, dry_run=args.dry_run,
                                   archive_wait_s=args.archive_wait or restore.ARCHIVE_WAIT_S)
    except ChaosRefused as exc:
        print(f"pgproof: refused: {exc}", file=sys.stderr)
        return 2
    if out is None:
        return 0
    for v in journal.verdicts:
        print(f"{v['verdict'].upper():<6} {v['id']:<9} {v['evidence']}")
    print(f"game day {journal.scenario}: {journal.verdict}; report: {out}")
    return {"pass": 0, "fail": 1}.get(journal.verdict, 2)


def _history(args: argparse.Namespace) -> int:
    """Controls whose verdict changed between the last two runs of a target (exit 1 if any)."""
    from pgproof.report.history import compared, drift, incomplete, runs
    from pgproof.target import check_target_name

    check_target_name(args.target)
    path = args.reports / "history.jsonl"
    prev, last, changes = drift(path, args.target)
    for r in runs(path, args.target):  # recorded, never compared: say so, newest last
        why = incomplete(r)
        if why and (last is None or str(r.get("at")) > str(last.get("at"))):
            print(f"not compared: {r.get('at')} ({r.get('dir')}): {why}")
    if last is None:
        _known_target(args.target)
        print(f"no complete runs of target {args.target!r} in {path}")
        return 0
    if prev is None:
        print(f"one run of {args.target!r} so far ({last['at']}): nothing to compare")
        return 0
    print(f"{args.target}: {prev['at']} -> {last['at']}")
    for c in changes:
        print(f"  {c.control:<8} {c.before} -> {c.after}")
    if not changes:
        print("  no control changed verdict")
    both, one = compared(prev, last)
    if one:
        print(f"  compared the {len(both)} controls both runs selected; not compared "
              f"(selected by one run only): {', '.join(one)}")
    return 1 if changes else 0


def _known_target(name: str) -> None:
    """A name with no history must at least be a target, or drift would answer 0 for a typo."""
    from pgproof.target import configured_targets, lab_target_file, valid_targets

    names = configured_targets()
    valid = valid_targets(names)
    if name in names or (name == "lab" and (lab_target_file().exists()
                                            or any(v.startswith("lab") for v in valid))):
        return
    raise UserError(f"no target named {name!r} (valid targets: {', '.join(valid) or 'none'})")


def _orphan_notice(target: object) -> str | None:
    """The one-line notice of a fault left on ``target`` (None: nothing left); the pytest
    plugin says it and marks the run."""
    from pgproof.faults.record import notice

    return notice(target)  # type: ignore[arg-type]


HANDLERS = {"lab": _lab, "check": _check, "doctor": _doctor, "controls": _controls,
            "history": _history, "gameday": _gameday}


def main(argv: list[str] | None = None) -> int:
    rc = _main(argv)
    if interrupts.interrupted() or _done_check():  # no module teardown (see below)
        interrupts.exit_now(rc)
    return rc


_CHECKED = {"done": False}  # a `pgproof check` ran to its end (its reports written and closed)


def _done_check() -> bool:
    """A finished check leaves without tearing its ~1e5 objects down one by one (interpreter
    finalization: ~0.25 s of CPU, a tenth of a check; its reports are closed by then), but only
    when no other thread is left: a probe still running after an error finishes (and reaps
    its subprocess) within its own limit, as at any interpreter exit."""
    alone = all(t.daemon or t is threading.main_thread() for t in threading.enumerate())
    return _CHECKED["done"] and alone


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        rc = HANDLERS[args.handler](args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return rc
    except (UserError, ComponentError) as exc:  # bad input: the one place that prints it
        print(f"pgproof: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C 130; SIGTERM 143, SIGHUP 129 (128 + the signal)
        interrupts.mark()
        signame, code = getattr(exc, "signame", "SIGINT"), getattr(exc, "exit_code", 130)
        with contextlib.suppress(OSError):
            print(f"pgproof: interrupted by {signame}", file=sys.stderr)
        return code
    except BrokenPipeError:  # `pgproof lab mutations | head`: the reader left, as with any tool
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # nothing more to flush at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the closed pipe
    except OSError as exc:  # a disk or path problem: could not run (2), never "non-compliant" (1)
        print(f"pgproof: {describe(exc, 'use')}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
