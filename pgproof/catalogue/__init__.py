"""The control catalogue as data: one entry per control, the source reports, CLI and docs read.

Each control says what it requires, which layers prove it (what the suites and
scenarios really look at), which ``Target.thresholds`` fields it judges against,
how to fix it, and where it maps in compliance frameworks. Selection by ID or
glob (``TLS-*``) lives here too, so the CLI and the pytest plugin agree on it.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from pgproof.catalogue.controls import ENTRIES
from pgproof.catalogue.model import FRAMEWORKS, LAYERS, Control, Kind

__all__ = ["CATALOGUE", "FRAMEWORKS", "LAYERS", "Control", "Kind", "UnknownControl", "of_kind",
           "select", "split_patterns", "title"]


class UnknownControl(ValueError):
    """A control ID or pattern that names nothing in the catalogue (phrased for the user)."""


CATALOGUE: dict[str, Control] = {c.id: c for c in ENTRIES}


def of_kind(kind: Kind) -> list[str]:
    return [c.id for c in CATALOGUE.values() if c.kind == kind]


def title(control_id: str) -> str:
    c = CATALOGUE.get(control_id)
    return c.title if c else "unknown control"


def split_patterns(values: list[str] | None) -> list[str]:
    """``["TLS-1,NET-*", "AUTH-2"]`` -> ``["TLS-1", "NET-*", "AUTH-2"]`` (upper-cased, no blanks).

    Given values that hold no pattern (``--control ''``) raise: selecting nothing must not
    silently mean selecting everything."""
    patterns = [p.strip().upper() for v in values or [] for p in v.split(",") if p.strip()]
    if values and not patterns:
        raise UnknownControl("no control ID given (an empty value would select every control); "
                             "give IDs or globs such as TLS-1,NET-* (`pgproof controls` lists them)")
    return patterns


def select(patterns: list[str], kind: Kind | None = None) -> list[str]:
    """Catalogue IDs matching any pattern, in catalogue order; a pattern matching nothing raises."""
    pool = [c.id for c in CATALOGUE.values() if kind is None or c.kind == kind]
    chosen: set[str] = set()
    for p in patterns:
        hits = [cid for cid in pool if fnmatchcase(cid, p)]
        if not hits:
            raise UnknownControl(_no_match(p, kind))
        chosen.update(hits)
    return [cid for cid in pool if cid in chosen]


def _no_match(pattern: str, kind: Kind | None) -> str:
    other = [cid for cid in CATALOGUE if fnmatchcase(cid, pattern)]
    if other and kind is not None:
        return (f"control {pattern!r} is a {_KIND_NAME[CATALOGUE[other[0]].kind]} control, not a "
                f"{_KIND_NAME[kind]} one: "
                + ("run it with `pgproof gameday` or `pytest scenarios`" if kind == "compliance"
                   else "run it with `pgproof check` or `pytest suites`"))
    what = "pattern" if any(ch in pattern for ch in "*?[") else "control ID"
    return f"unknown {what} {pattern!r}: no control matches it (`pgproof controls` lists them)"


_KIND_NAME = {"compliance": "compliance", "gameday": "game-day"}
