"""The control registry: every catalogue entry by ID (built-ins, then plug-ins), and
selection by ID or glob (``TLS-*``) so the CLI and the pytest plugin agree on it.

Kept out of ``pgproof/catalogue/__init__.py`` so that a family module importing its
helpers (``build``, ``seen``, ``runner``) never imports the registry that imports it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from typing import Any

from pgproof.catalogue.controls import ENTRIES, family_of
from pgproof.catalogue.model import FRAMEWORKS, LAYERS, Control, Kind
from pgproof.catalogue.runner import resolve

__all__ = ["CATALOGUE", "FRAMEWORKS", "LAYERS", "Control", "Kind", "UnknownControl", "family_of",
           "judges", "of_kind", "seen", "select", "setting_uses", "split_patterns", "title"]


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


def judges(layer: str, controls: Iterable[Control] | None = None) -> dict[str, Callable[..., list[str]]]:
    """Control ID -> its judge at ``layer`` (cloud layers have one per control), untagged."""
    from_ = CATALOGUE.values() if controls is None else controls
    return {c.id: resolve(k.judge) for c in from_ for k in c.checks if k.layer == layer}


def seen(layer: str, cid: str, *args: Any) -> str:
    """The evidence line of ``cid``'s check at ``layer`` for these inputs ("" if it has none)."""
    check = next(k for k in CATALOGUE[cid].checks if k.layer == layer)
    return str(resolve(check.evidence)(*args)) if check.evidence else ""


def setting_uses(controls: Iterable[Control] | None = None) -> dict[str, str]:
    """Server setting -> the controls whose checks read it (``doctor`` names them when the
    role may not read it): ``"TLS-1"``, or ``"ENC-1 host layer"`` for a layer other than SQL."""
    out: dict[str, list[str]] = {}
    for c in CATALOGUE.values() if controls is None else controls:
        for k in c.checks:
            for s in k.settings:
                out.setdefault(s, []).append(c.id if k.layer == "sql" else f"{c.id} {k.layer} layer")
    return {s: ", ".join(dict.fromkeys(v)) for s, v in out.items()}
