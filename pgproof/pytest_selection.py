"""Selecting checks by control ID in pytest, and remembering what a run left out.

``--control TLS-1,NET-*`` keeps only the checks of matching controls; ``--profile cis-level1``
only those of controls citing a CIS recommendation of that level (with both: the controls in
both). Every
control ID is also a registered marker on its checks, so ``-m "TLS-1 or NET-2"``
and ``-k AUTH-2`` select by ID too. Whatever deselects (these, ``-k``, ``-m``,
``--deselect``, a subset of files), the plugin records which controls still have
a check, so the report can mark the run partial instead of "not-checked".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pgproof.catalogue.profiles import PROFILE_HELP, UnknownProfile, controls_of
from pgproof.catalogue.registry import CATALOGUE, UnknownControl, select, split_patterns

_WANTED = pytest.StashKey[list[str]]()
_SELECTION = pytest.StashKey["Selection"]()


@dataclass
class Selection:
    """Control IDs with at least one selected check, and those with a deselected one."""

    selected: list[str] = field(default_factory=list)
    deselected: set[str] = field(default_factory=set)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("pgproof").addoption(
        "--control", action="append", default=[], metavar="IDS",
        help="run only the checks of these control IDs (comma-separated, globs like NET-*, "
             "repeatable); `pgproof controls` lists them")
    parser.getgroup("pgproof").addoption("--profile", default=None, metavar="NAME",
                                         help=PROFILE_HELP)


def _ids(item: pytest.Item) -> list[str]:
    return [str(a) for m in item.iter_markers("control") for a in m.args]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register one marker per control; a bad ``--control`` stops here, before any report exists."""
    for c in CATALOGUE.values():
        config.addinivalue_line("markers", f"{c.id}: control {c.title} (set from @control)")
    config.stash[_SELECTION] = Selection()
    try:
        config.stash[_WANTED] = select(split_patterns(config.getoption("control")))
    except UnknownControl as exc:
        pytest.exit(f"pgproof: --control: {exc}", returncode=2)
    profile = config.getoption("profile")
    if profile is not None:
        try:
            in_profile = controls_of(profile)
        except UnknownProfile as exc:
            pytest.exit(f"pgproof: --profile: {exc}", returncode=2)
        by_id: list[str] = config.stash[_WANTED]
        mine = set(by_id if config.getoption("control") else in_profile)
        config.stash[_WANTED] = [c for c in in_profile if c in mine]


def pytest_itemcollected(item: pytest.Item) -> None:
    for cid in _ids(item):
        if cid in CATALOGUE:
            item.add_marker(cid)  # a marker is also a keyword: -m TLS-1 and -k TLS-1 both work


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    patterns = split_patterns(config.getoption("control"))
    profile = config.getoption("profile")
    if not patterns and profile is None:
        return
    chosen = config.stash[_WANTED]
    wanted = set(chosen)
    if profile is not None and not wanted & {cid for item in items for cid in _ids(item)}:
        pytest.exit(f"pgproof: --profile {profile}: no collected test proves a control of it"
                    + (" among --control " + ",".join(patterns) if patterns else ""), returncode=2)
    collected = {cid for item in items for cid in _ids(item)}
    for p in patterns if profile is None else ():  # with a profile: checked just above
        hits = set(select([p])) & wanted
        if not hits & collected:
            pytest.exit(f"pgproof: --control {p}: no collected test proves {', '.join(sorted(hits))}"
                        " (game-day controls run from scenarios/, compliance ones from suites/)",
                        returncode=2)
    keep = [i for i in items if wanted & set(_ids(i))]
    drop = [i for i in items if i not in keep]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        item.config.stash[_SELECTION].deselected.update(_ids(item))


def pytest_collection_finish(session: pytest.Session) -> None:
    ids = {cid for item in session.items for cid in _ids(item)}
    session.config.stash[_SELECTION].selected = [c for c in CATALOGUE if c in ids]


def report_scope(config: pytest.Config, ran: set[str]) -> tuple[list[str], list[str], bool]:
    """(scope, selected, partial) for the report of this run.

    The scope is every catalogue control of each kind the run touched (compliance,
    game-day); a control of that kind with no selected check is "not-selected".
    ``ran`` (controls with a result) backs up the selection if collection was bypassed.
    """
    sel = config.stash.get(_SELECTION, Selection())
    chosen = list(dict.fromkeys([*sel.selected, *(c for c in CATALOGUE if c in ran)]))
    return plan(chosen, sel.deselected)


def plan(selected: list[str], deselected: set[str]) -> tuple[list[str], list[str], bool]:
    kinds = {CATALOGUE[c].kind for c in selected if c in CATALOGUE}
    scope = [c.id for c in CATALOGUE.values() if c.kind in kinds]
    partial = any(c not in selected for c in scope) or bool(deselected & set(selected))
    return scope, selected, partial
