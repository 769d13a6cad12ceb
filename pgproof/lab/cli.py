"""``pgproof lab up|down|status|mutations|break|heal``: registered as the ``lab`` command
(entry point group ``pgproof.commands``); the checker's CLI never imports it."""

from __future__ import annotations

import argparse
from pathlib import Path

from pgproof.errors import UserError
from pgproof.lab import lifecycle, mutations
from pgproof.lab.inplace import in_place
from pgproof.lab.state import LabState, default_state_dir


def run(args: argparse.Namespace) -> int:
    """One ``pgproof lab`` action; its exit code."""
    state_dir = args.lab_dir
    if args.action == "up":
        lifecycle.up(state_dir, timeout=args.timeout,
                     with_aws=not args.no_aws and args.cloud in ("aws", "both"),
                     with_azure=args.cloud in ("azure", "both"),
                     progress=lambda m: print(m, flush=True), topology_name=args.topology,
                     supervisor=args.supervisor)
        return _print_status(lifecycle.status(state_dir))
    if args.action == "down":
        stopped = lifecycle.down(state_dir)
        print("lab: stopped " + (", ".join(stopped) if stopped else "nothing (no lab running)"))
        return 0
    if args.action == "status":
        rc = _print_status(lifecycle.status(state_dir))
        return rc if rc == 3 else max(rc, _print_in_place(state_dir))
    if args.action == "mutations":
        for m in mutations.catalogue().values():
            side = "+".join(x for x, on in (("live", m.live_break), ("aws", m.aws)) if on)
            print(f"  {m.name:<28} {', '.join(sorted(m.breaks)):<16} [{side}] {m.description}")
        for cid, why in mutations.UNBREAKABLE.items():
            print(f"  (none for {cid}: {why})")
        return 0
    if args.action == "break":
        if not args.name:
            raise UserError("pgproof lab break needs a mutation name; "
                            "`pgproof lab mutations` lists them")
        print(mutations.apply(state_dir, args.name, aurora=args.shape == "aurora"))
        return 0
    if args.action == "heal":
        print(mutations.heal(state_dir))
        return 0
    return 2


def _print_in_place(state_dir: Path | None) -> int:
    """Toxics, disabled proxies and recorded faults on a running lab; exit 1 if any."""
    state = LabState.load((state_dir or default_state_dir()).resolve())
    left = in_place(state) if state else []
    for line in left:
        print(f"  FAULT {line}")
    return 1 if left else 0


def _print_status(rows: list[lifecycle.ComponentStatus]) -> int:
    if not rows:
        print("lab: not running")
        return 3
    for r in rows:
        mark = "ok  " if r.healthy else "DOWN"
        print(f"  {mark} {r.name:<11} port {r.port or '-':<6} {r.detail}")
    return 0 if all(r.healthy for r in rows) else 1
