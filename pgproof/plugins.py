"""What another package adds to pgproof, found by entry point and never imported by name.

The checker never imports the lab (dependencies run lab -> product): the lab registers its
game-day driver and its ``pgproof lab`` command under the entry-point groups below
(pyproject.toml), and ships its Python dependencies as the ``lab`` extra.
"""

from __future__ import annotations

import importlib.metadata as md
import re
from typing import Any

from pgproof.errors import UserError

DRIVERS = "pgproof.drivers"  # chaos.driver name -> a FaultDriver class
COMMANDS = "pgproof.commands"  # `pgproof <name>` -> a handler taking the parsed arguments
MUTATIONS = "pgproof.mutations"  # a harness -> a function: mutation name -> the controls it breaks
DIST = "pgproof"


def find(group: str, name: str) -> md.EntryPoint | None:
    """The entry point ``name`` of ``group`` (None: nothing installed registers it)."""
    return next(iter(md.entry_points(group=group, name=name)), None)


def names(group: str) -> list[str]:
    return sorted({ep.name for ep in md.entry_points(group=group)})


def missing_extra(extra: str, dist: str = DIST) -> list[str]:
    """The requirements of ``dist[extra]`` that are not installed (their project names)."""
    try:
        reqs = md.requires(dist) or []
    except md.PackageNotFoundError:  # run from a checkout that was never installed
        return []
    missing = []
    for req in reqs:
        if not re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", req):
            continue
        project = re.split(r"[\s\[<>=!~;]", req, maxsplit=1)[0]
        try:
            md.version(project)
        except md.PackageNotFoundError:
            missing.append(project)
    return missing


def require_extra(extra: str, what: str) -> None:
    """Refuse ``what`` in one sentence (exit 2) when the ``extra``'s requirements are missing."""
    missing = missing_extra(extra)
    if missing:
        raise UserError(f"{what} needs the {extra} extra ({', '.join(missing)} not installed): "
                        f"install pgproof[{extra}], e.g. pip install 'pgproof[{extra}]'")


def load(group: str, name: str) -> Any:
    """The object entry point ``name`` of ``group`` names; UserError when none is installed."""
    ep = find(group, name)
    if ep is None:
        raise UserError(f"no {name!r} registered under entry point group {group!r}; install the "
                        "package that provides it (for the lab: pip install 'pgproof[lab]'; in a "
                        "checkout, `make setup` reinstalls pgproof with its entry points)")
    return ep.load()
