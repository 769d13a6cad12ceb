"""Waivers: a known failure accepted for a while, by a named owner, for a written reason.

``[[targets.X.waivers]]`` names a ``control`` (catalogue ID) or a ``check`` (a pytest node
id, with or without its ``[parameters]``). A waiver is valid until its ``expires`` date
(exclusive: on that day it has expired), and only ever turns a *fail* into *waived*; an
error or cannot-verify is not a known failure and stays what it is. An expired waiver
waives nothing: the failure stays a fail and the report says "waiver expired on <date>".
This module holds the model and the judging; reports only render what it decides.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from pgproof.catalogue import registry as catalogue
from pgproof.catalogue.runner import SUITE_TEST


class Waiver(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    control: str | None = None
    check: str | None = None
    justification: str
    owner: str
    expires: dt.date

    @field_validator("control")
    @classmethod
    def _known_control(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cid = value.strip().upper()
        if cid not in catalogue.CATALOGUE:
            raise ValueError(f"unknown control ID {value!r} (`pgproof controls` lists them)")
        if catalogue.CATALOGUE[cid].kind != "compliance":
            raise ValueError(f"{cid} is a game-day control; waivers apply to the compliance "
                             "checks of `pgproof check`")
        return cid

    @field_validator("check")
    @classmethod
    def _node_id(cls, value: str | None) -> str | None:
        if value is not None and "::" not in value:
            raise ValueError(f"{value!r} is not a test node id (e.g. "
                             f"'{SUITE_TEST}[TLS-1-tls]')")
        if value is not None and value.endswith(SUITE_TEST.split("/")[-1]):
            raise ValueError(f"{value!r} names every control's check: name one item, e.g. "
                             f"'{SUITE_TEST}[TLS-1-tls]' (or waive a control by its ID)")
        return value

    @field_validator("justification", "owner")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty: a waiver needs a reason and someone who owns it")
        return value.strip()

    @model_validator(mode="after")
    def _one_subject(self) -> Waiver:
        if (self.control is None) == (self.check is None):
            raise ValueError("a waiver names exactly one of 'control' (an ID) or 'check' "
                             "(a test node id)")
        return self

    @property
    def subject(self) -> str:
        return f"control {self.control}" if self.control else f"check {self.check}"

    def matches(self, control_ids: list[str], nodeid: str) -> bool:
        if self.control is not None:
            return self.control in control_ids
        # the suites of an installed wheel are collected as ".../site-packages/pgproof/suites/...":
        # "suites/test_controls.py::test_control[X]" names that item too
        return any(n == self.check or n.endswith("/" + str(self.check))
                   for n in (nodeid, nodeid.split("[")[0]))

    def valid_on(self, today: dt.date) -> bool:
        return today < self.expires


Status = Literal["valid", "expired"]


@dataclass(frozen=True)
class Decision:
    """What a waiver did to one failing check: waived it, or could not (expired)."""

    waiver: Waiver
    status: Status

    @property
    def note(self) -> str:
        w = self.waiver
        if self.status == "expired":
            return f"waiver expired on {w.expires.isoformat()} (owner {w.owner}: {w.justification})"
        return f"waived until {w.expires.isoformat()} by {w.owner}: {w.justification}"

    def as_dict(self) -> dict[str, str]:
        w = self.waiver
        return {"status": self.status, "subject": w.subject, "justification": w.justification,
                "owner": w.owner, "expires": w.expires.isoformat(), "note": self.note}


def decide(waivers: list[Waiver], control_ids: list[str], nodeid: str,
           today: dt.date) -> Decision | None:
    """The waiver that applies to a failing check: a valid one first (a check waiver before a
    control waiver), else the expired one that would have, so the report can say so."""
    hits = [w for w in waivers if w.matches(control_ids, nodeid)]
    if not hits:
        return None
    hits.sort(key=lambda w: (not w.valid_on(today), w.control is not None))
    w = hits[0]
    return Decision(w, "valid" if w.valid_on(today) else "expired")


def unmatched(waivers: list[Waiver], checks: list[tuple[list[str], str]]) -> list[str]:
    """One warning sentence per waiver that names no control or check of this run."""
    out = []
    for w in waivers:
        if not any(w.matches(ids, nodeid) for ids, nodeid in checks):
            out.append(f"waiver for {w.subject} (owner {w.owner}) matches no "
                       f"{'control' if w.control else 'check'} in this run")
    return out


def today() -> dt.date:
    """Waivers expire by the UTC calendar, the same clock every report's timestamps use."""
    return dt.datetime.now(dt.UTC).date()
