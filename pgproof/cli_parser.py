"""The ``pgproof`` command line's options: one parser, kept apart from what each command does."""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


class _Parser(argparse.ArgumentParser):
    """Bad arguments are bad input like any other: one sentence on stderr, exit 2 (no usage dump)."""

    def error(self, message: str) -> NoReturn:
        message = re.sub(r"^argument (\S+): takes ", r"\1 takes ", message).removeprefix("argument ")
        self.exit(2, f"pgproof: {message} (`{self.prog} --help` lists the options)\n")


def _positive(kind: Callable[[str], float], what: str) -> Callable[[str], float]:
    """An argparse type: a finite number greater than 0, or one sentence saying so.

    ``--baseline -5`` used to start Locust and then die in ``time.sleep``; ``--users 0``
    silently meant the default; ``inf``/``nan`` parse as floats but bound nothing."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"takes {what}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


SECONDS = _positive(float, "a positive number of seconds (finite, > 0)")
COUNT = _positive(int, "a positive whole number (>= 1)")


class _Version(argparse.Action):
    """``--version``, reading the installed metadata only when asked (its import is slow)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kw: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        import importlib.metadata as md

        try:
            print(f"pgproof {md.version('pgproof')}")
        except md.PackageNotFoundError:
            print("pgproof (not installed)")
        parser.exit()


CHECK_EXIT_CODES = """\
exit codes (what a scheduler reads):
  0  compliant: this run, of exactly this target, ran every selected check to the end and
     every selected control passed, was waived, skipped, cannot-verify or inherited
  1  non-compliant: a control failed (also when -x/--maxfail stopped the run at a failure)
  2  no verdict: bad input; a control errored or no layer was checked; interrupted
     (Ctrl-C/SIGINT, SIGTERM, SIGHUP, a KeyboardInterrupt in a probe: the report, if any
     check finished, says "interrupted": true and when); stopped early without a failure;
     run while a game day's fault was left on the target ("orphaned_fault"); -n/--numprocesses
     with one target (refused); a Security Hub import failed
Interrupted, stopped-early and fault-polluted runs are recorded but `pgproof drift` skips them."""

EXIT_CODES = """\
exit codes:
  check     0 compliant, 1 non-compliant, 2 no verdict (bad input, error, interrupted by
            SIGINT/SIGTERM/SIGHUP, stopped early, a fault left on the target); see check --help
  drift     0 no change, 1 a control changed verdict, 2 bad input
  doctor    0 ready, 1 something missing, 2 bad input
  gameday   0 every verdict passed, 1 a control failed, 2 error, refused or bad input
  lab       status: 0 healthy, 1 unhealthy or a fault in place, 3 no lab running; 2 bad input
  any other command interrupted: 128 + the signal (Ctrl-C 130, SIGTERM 143, SIGHUP 129);
            a game day runs its undo first"""


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="pgproof", description="pgproof: lab up|down|status|break|heal, check, doctor, controls, drift, gameday.",
                 epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", action=_Version)
    target_default = os.environ.get("PGPROOF_TARGET") or "lab"  # --target wins over the env
    target_help = "target name (default: $PGPROOF_TARGET, else lab)"
    sub = ap.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab", help="the embedded lab")
    lab.add_argument("action", choices=["up", "down", "status", "break", "heal", "mutations"])
    lab.add_argument("name", nargs="?", help="mutation name (for break)")
    lab.add_argument("--lab-dir", type=Path, default=None, help="state directory (default .pgproof/lab)")
    lab.add_argument("--shape", choices=["rds", "aurora"], default="rds",
                     help="break: the AWS twin that takes the mutation's AWS half: the RDS "
                     "instance (lab-rds) or the Aurora cluster (lab-aurora)")
    lab.add_argument("--timeout", type=SECONDS, default=60)
    lab.add_argument("--no-aws", action="store_true", help="skip the moto AWS twin")
    lab.add_argument("--topology", choices=["loopback", "vpc"], default="loopback",
                     help="up: vpc puts the DB and app tiers in their own network namespaces")
    lab.add_argument("--cloud", choices=["aws", "azure", "both"], default="aws",
                     help="which cloud twin(s) to start; azure writes the lab-azure target")
    lab.add_argument("--supervisor", choices=["none", "supervisord"], default="none",
                     help="up: run the Patroni nodes as supervisord programs and write the "
                     "lab-ssh target (the ssh driver through supervisorctl)")
    lab.set_defaults(handler="lab")
    chk = sub.add_parser("check", help="run the compliance suites against a target",
                         epilog=CHECK_EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    chk.add_argument("--target", action="append", default=None,
                     help=target_help + "; repeat (or a,b) to check several targets in parallel "
                     "(pytest-xdist, one worker each): one report per target plus a combined index")
    chk.add_argument("--config", type=Path, default=None)
    chk.add_argument("--reports", type=Path, default=Path("reports"))
    chk.add_argument("--control", action="append", metavar="IDS",
                     help="only these controls: IDs or globs, comma-separated, repeatable "
                          "(TLS-1,NET-*); the run is marked partial")
    chk.add_argument("--profile", default=None, metavar="NAME",
                     help="only the controls citing a CIS recommendation of this profile: "
                          "cis-level1 or cis-level2 (which includes level 1; the CIS PostgreSQL "
                          "benchmarks have only Level 1 items, so both select the same); with "
                          "--control, the controls in both; the run is marked partial")
    chk.add_argument("--framework", action="append", choices=["hipaa", "cis", "fsbp"],
                     help="also write framework-<name>.html/.json: the run grouped by that "
                          "framework's requirements (repeatable)")
    chk.add_argument("--to-security-hub", action="store_true",
                     help="import the findings (ASFF, passing controls too) into AWS Security "
                          "Hub in the target's account and region")
    chk.add_argument("--notify", action="store_true",
                     help="send non-compliance and drift to the target's [notify] channels "
                          "(Slack, PagerDuty, e-mail)")
    chk.add_argument("--sarif-root", type=Path, default=None,
                     help="directory results.sarif paths are relative to (default: the git "
                          "root of the working directory)")
    chk.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    chk.set_defaults(handler="check")
    doc = sub.add_parser("doctor", help="before a run: is every configured layer reachable, "
                                        "with every permission the suites need?")
    doc.add_argument("--target", default=target_default, help=target_help)
    doc.add_argument("--config", type=Path, default=None)
    doc.set_defaults(handler="doctor")
    ctl = sub.add_parser("controls", help="list the control catalogue (IDs, titles, layers)")
    ctl.add_argument("patterns", nargs="*", metavar="ID",
                     help="IDs or globs (default: all); `show ID`: everything about one control "
                          "(judges, suite items, mutations, citations)")
    ctl.add_argument("--kind", choices=["compliance", "gameday"], default=None)
    ctl.add_argument("--platform", choices=["rds", "aurora", "azure", "self-managed"], default=None,
                     help="where each control applies on this platform: checked (by which "
                          "layers), inherited from the provider (with its source) or n/a (why)")
    ctl.add_argument("--format", choices=["table", "json", "markdown"], default="table",
                     help="markdown is docs/controls.md")
    ctl.set_defaults(handler="controls")
    hist = sub.add_parser("drift", help="controls that changed verdict since the previous run")
    hist.add_argument("--target", default=target_default, help=target_help)
    hist.add_argument("--reports", type=Path, default=Path("reports"))
    hist.set_defaults(handler="history")
    from pgproof.gameday.scenarios import SCENARIOS

    gd = sub.add_parser("gameday", help="run a chaos game day against a target")
    gd.add_argument("scenario", choices=[*sorted(SCENARIOS), "alarm-drill", "restore-pitr", "recover"],
                    help="a scenario, alarm-drill (MON-4: force each alarm, see it delivered), "
                    "restore-pitr (BAK-6: the point-in-time restore drill), "
                    "or recover: undo what a killed game day left in place")
    gd.add_argument("--target", default=target_default, help=target_help)
    gd.add_argument("--config", type=Path, default=None)
    gd.add_argument("--reports", type=Path, default=Path("reports"))
    gd.add_argument("--users", type=COUNT, default=None, help="Locust users (default: target's)")
    gd.add_argument("--workers", default=None, metavar="N",
                    help="run the load on Locust's distributed engine: a master on 127.0.0.1 and N "
                         "worker processes, ledgers and stats merged (default 0: one process)")
    gd.add_argument("--baseline", type=SECONDS, default=None,
                    help="seconds of load before the fault (default: target's chaos.baseline_s)")
    gd.add_argument("--dry-run", action="store_true", help="print the plan, touch nothing")
    gd.add_argument("--alarm", action="append", default=None, metavar="NAME",
                    help="alarm-drill: drill only this MON-1 alarm (repeatable; default: all)")
    gd.add_argument("--i-mean-production", action="store_true")
    gd.add_argument("--archive-wait", type=SECONDS, default=None, metavar="SECONDS",
                    help="restore-pitr: how long to wait for the WAL after T to be archived "
                         "(default 60)")
    gd.set_defaults(handler="gameday")
    return ap
