"""Every control pgproof checks today, in report order: one module per family holds each
control's definition and its checks per layer (``tls.py``, ``net.py``, ...; game days in
``gameday.py``). Adding a control is adding it to its family's ``CONTROLS`` (or a new family
module listed in ``FAMILIES``); docs/adding-a-control.md walks through it.

A control without a check is deliberately absent: a report must not list what nothing proves.
Framework references cite the IDs listed (with their sources) in catalogue/frameworks.py;
tests/test_frameworks.py holds every citation to that list. A compliance control without a
HIPAA citation says why (``unmapped_reason``). Severity is what a failure exposes, not this
run's verdict: where Security Hub rates the matching FSBP control, the same label (RDS.2
critical, RDS.13 high, RDS.3 medium, RDS.5 medium, RDS.6 low, RDS.8 low); the rest by the same
yardstick: data readable or writable by others high/critical, weakened defence in depth
medium, hygiene low.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from types import ModuleType

from pgproof.catalogue import (
    audit,
    auth,
    bak,
    enc,
    gameday,
    ha,
    hostcis,
    log,
    mnt,
    mon,
    net,
    pool,
    priv,
    tls,
)
from pgproof.catalogue.model import Control

# Controls of your own: a module with ``CONTROLS`` (written like tls.py) registered under the
# entry-point group ``pgproof.controls`` of any installed distribution; after the built-ins.
PLUGIN_GROUP = "pgproof.controls"
FAMILIES: tuple[ModuleType, ...] = (
    tls, net, auth, priv, enc, audit, log, bak, ha, pool, mon, mnt, hostcis, gameday,
    *(ep.load() for ep in entry_points(group=PLUGIN_GROUP)))

ENTRIES: tuple[Control, ...] = tuple(c for family in FAMILIES for c in family.CONTROLS)
_twice = sorted({c.id for c in ENTRIES if [e.id for e in ENTRIES].count(c.id) > 1})
assert not _twice, f"control IDs defined twice: {_twice}"


def family_of(cid: str) -> str:
    """The module that defines control ``cid`` (its one home)."""
    return next(f.__name__ for f in FAMILIES if any(c.id == cid for c in f.CONTROLS))
