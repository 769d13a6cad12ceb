"""Running a control's checks: one unit per control and layer, its judges' sentences tagged.

``units()`` is what the suite item ``suites/test_controls.py::test_control[ID-layer]`` runs;
``judge()`` calls every check of a unit and returns its problem sentences, each ending in
``(ID)`` (a judge never types its own control ID), or raises the worst "could not judge".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pgproof.catalogue.model import Check, Control, Ref
from pgproof.verdict import CannotVerify, NotApplicable, Unreachable

SUITE_TEST = "suites/test_controls.py::test_control"


@dataclass(frozen=True)
class Unit:
    """The checks of one control at one layer: one pytest item, ``test_control[ID-layer]``."""

    control: str
    layer: str
    checks: tuple[Check, ...]

    @property
    def id(self) -> str:
        return f"{self.control}-{self.layer}"

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(i for c in self.checks for i in (*c.inputs, *c.shows)))

    @property
    def layers(self) -> list[str]:
        return list(dict.fromkeys(layer for c in self.checks for layer in c.layers))

    def __str__(self) -> str:  # what pytest shows for the parameter
        return self.id


def units(controls: Iterable[Control]) -> list[Unit]:
    """Every control's checks grouped by layer, in catalogue and layer order."""
    out = []
    for c in controls:
        for layer in dict.fromkeys(k.layer for k in c.checks):
            out.append(Unit(c.id, layer, tuple(k for k in c.checks if k.layer == layer)))
    return out


def resolve(ref: Ref) -> Callable[..., Any]:
    """The function a ``"module:function"`` reference names (a callable is itself)."""
    if callable(ref):
        return ref
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def where(ref: Ref) -> str:
    """``module:function`` of a judge, for people (``pgproof controls show``)."""
    if isinstance(ref, str):
        return ref
    return f"{ref.__module__}:{ref.__qualname__}"


def judge(unit: Unit, values: Mapping[str, Any]) -> list[str]:
    """Every problem of the unit's checks, tagged ``(ID)``; none found but some check could not
    judge: raise the worst of those (could not reach > cannot verify); all not applicable:
    not applicable."""
    problems: list[str] = []
    raised: list[Exception] = []
    for c in unit.checks:
        args = [values[i] for i in c.inputs]
        try:
            if c.per_endpoint:
                problems += every_endpoint(args[0], resolve(c.judge), *args[1:])
            else:
                problems += resolve(c.judge)(*args)
        except (Unreachable, CannotVerify, NotApplicable) as exc:
            raised.append(exc)
    if problems:
        return [tag(p, unit.control) for p in problems]
    for kind in (Unreachable, CannotVerify):
        mine = [str(e) for e in raised if isinstance(e, kind)]
        if mine:
            raise kind("\n".join(mine))
    if raised and len(raised) == len(unit.checks):
        raise raised[0]
    return []


def tag(sentence: str, cid: str) -> str:
    """A judge's sentence as reports show it: the control it fails, named by the runner."""
    return f"{sentence} ({cid})"


def evidence(unit: Unit, values: Mapping[str, Any]) -> str:
    """What the passing checks looked at; never raises (evidence is a courtesy)."""
    out = []
    for c in unit.checks:
        if c.evidence is None:
            continue
        try:
            out.append(str(resolve(c.evidence)(*(values[i] for i in (*c.inputs, *c.shows)))))
        except Exception:  # noqa: BLE001
            continue
    return "; ".join(o for o in out if o)


def every_endpoint(facts: Mapping[str, Any], fn: Callable[..., list[str]], *args: Any) -> list[str]:
    """Judge every endpoint; a definite problem anywhere wins over "cannot verify" elsewhere."""
    problems: list[str] = []
    unknown: list[str] = []
    for f in facts.values():
        try:
            problems += fn(f, *args)
        except CannotVerify as exc:
            unknown.append(str(exc))
    if unknown and not problems:
        raise CannotVerify("\n".join(unknown))
    return problems
