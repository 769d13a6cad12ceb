"""``pgproof``: lab up|down|status|break|heal, check, gameday."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pgproof.lab.procs import ComponentError
from pgproof.target import ConfigError


def _lab(args: argparse.Namespace) -> int:
    from pgproof.lab import lifecycle

    state_dir = args.lab_dir
    if args.action == "up":
        lifecycle.up(state_dir, timeout=args.timeout, with_aws=not args.no_aws,
                     progress=lambda m: print(m, flush=True))
        return _print_status(lifecycle.status(state_dir))
    if args.action == "down":
        stopped = lifecycle.down(state_dir)
        print("lab: stopped " + (", ".join(stopped) if stopped else "nothing (no lab running)"))
        return 0
    if args.action == "status":
        rc = _print_status(lifecycle.status(state_dir))
        return rc if rc == 3 else max(rc, _print_in_place(state_dir))
    from pgproof.lab import mutations

    if args.action == "mutations":
        for m in mutations.catalogue().values():
            side = "+".join(x for x, on in (("live", m.live_break), ("aws", m.aws)) if on)
            print(f"  {m.name:<28} {', '.join(sorted(m.breaks)):<16} [{side}] {m.description}")
        for cid, why in mutations.UNBREAKABLE.items():
            print(f"  (none for {cid}: {why})")
        return 0
    if args.action == "break":
        print(mutations.apply(state_dir, args.name))
        return 0
    if args.action == "heal":
        print(mutations.heal(state_dir))
        return 0
    return 2


REPO = Path(__file__).resolve().parent.parent


def _check(args: argparse.Namespace) -> int:
    """Run the compliance suites; exit 0 compliant, 1 non-compliant, 2 could not check."""
    import json

    import pytest

    from pgproof.target import load_target

    target = load_target(args.target, args.config)  # a bad config: one message, exit 2, no report
    orphan = _orphan_notice(target)
    base = args.reports.resolve()
    argv = [str(REPO / "suites"), "--target", args.target, "--reports", str(base),
            "-p", "no:cacheprovider", "-q", "-rN", "--tb=line", *args.pytest_args]
    if args.config:
        argv += ["--pgproof-config", str(args.config)]
    before = (base / "latest").resolve() if (base / "latest").exists() else None
    rc = pytest.main(argv)
    if orphan:  # the verdict would describe our leftover fault, not the target: could not check
        print(f"pgproof: {orphan}", file=sys.stderr)
        return 2
    latest = base / "latest"
    if not (latest / "results.json").exists() or latest.resolve() == before:
        return 2 if rc != 0 else 0
    doc = json.loads((latest / "results.json").read_text())
    return int(doc["exit_code"])


def _gameday(args: argparse.Namespace) -> int:
    """One game day; exit 0 all verdicts pass, 1 a control failed, 2 error/refused."""
    from pgproof.gameday import run as gd
    from pgproof.gameday.safety import ChaosRefused
    from pgproof.target import load_target

    target = load_target(args.target, args.config)
    try:
        if args.scenario == "recover":
            from pgproof.gameday.recover import recover

            return recover(target)
        journal, out = gd.run(target, args.scenario, reports=args.reports, users=args.users,
                              baseline_s=args.baseline, i_mean_production=args.i_mean_production,
                              dry_run=args.dry_run)
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


def _history(args: argparse.Namespace) -> int:
    """Controls whose verdict changed between the last two runs of a target (exit 1 if any)."""
    from pgproof.report.history import drift

    prev, last, changes = drift(args.reports / "history.jsonl", args.target)
    if last is None:
        print(f"no runs of target {args.target!r} in {args.reports / 'history.jsonl'}")
        return 0
    if prev is None:
        print(f"one run of {args.target!r} so far ({last['at']}): nothing to compare")
        return 0
    print(f"{args.target}: {prev['at']} -> {last['at']}")
    for c in changes:
        print(f"  {c.control:<8} {c.before} -> {c.after}")
    if not changes:
        print("  no control changed verdict")
    return 1 if changes else 0


def _orphan_notice(target: object) -> str | None:
    """Print and return the one-line notice of a fault left on ``target`` (None: nothing left)."""
    from pgproof.faults.record import notice

    line = notice(target)  # type: ignore[arg-type]
    if line:
        print(f"pgproof: {line}", file=sys.stderr, flush=True)
    return line


def _print_in_place(state_dir: Path | None) -> int:
    """Toxics, disabled proxies and recorded faults on a running lab; exit 1 if any."""
    from pgproof.lab.inplace import in_place
    from pgproof.lab.state import LabState, default_state_dir

    state = LabState.load((state_dir or default_state_dir()).resolve())
    left = in_place(state) if state else []
    for line in left:
        print(f"  FAULT {line}")
    return 1 if left else 0


def _print_status(rows: list) -> int:
    if not rows:
        print("lab: not running")
        return 3
    for r in rows:
        mark = "ok  " if r.healthy else "DOWN"
        print(f"  {mark} {r.name:<10} port {r.port or '-':<6} {r.detail}")
    return 0 if all(r.healthy for r in rows) else 1


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="pgproof", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="the embedded lab")
    lab.add_argument("action", choices=["up", "down", "status", "break", "heal", "mutations"])
    lab.add_argument("name", nargs="?", help="mutation name (for break)")
    lab.add_argument("--lab-dir", type=Path, default=None, help="state directory (default .pgproof/lab)")
    lab.add_argument("--timeout", type=float, default=60)
    lab.add_argument("--no-aws", action="store_true", help="skip the moto AWS twin")
    lab.set_defaults(func=_lab)
    chk = sub.add_parser("check", help="run the compliance suites against a target")
    chk.add_argument("--target", default="lab")
    chk.add_argument("--config", type=Path, default=None)
    chk.add_argument("--reports", type=Path, default=Path("reports"))
    chk.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    chk.set_defaults(func=_check)
    hist = sub.add_parser("drift", help="controls that changed verdict since the previous run")
    hist.add_argument("--target", default="lab")
    hist.add_argument("--reports", type=Path, default=Path("reports"))
    hist.set_defaults(func=_history)
    from pgproof.gameday.scenarios import SCENARIOS

    gd = sub.add_parser("gameday", help="run a chaos game day against a target")
    gd.add_argument("scenario", choices=[*sorted(SCENARIOS), "recover"],
                    help="a scenario, or recover: undo what a killed game day left in place")
    gd.add_argument("--target", default="lab")
    gd.add_argument("--config", type=Path, default=None)
    gd.add_argument("--reports", type=Path, default=Path("reports"))
    gd.add_argument("--users", type=int, default=None, help="Locust users (default: target's)")
    gd.add_argument("--baseline", type=float, default=None,
                    help="seconds of load before the fault (default: target's chaos.baseline_s)")
    gd.add_argument("--dry-run", action="store_true", help="print the plan, touch nothing")
    gd.add_argument("--i-mean-production", action="store_true")
    gd.set_defaults(func=_gameday)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, ComponentError) as exc:
        print(f"pgproof: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pgproof: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
