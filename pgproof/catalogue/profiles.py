"""Selection by benchmark profile: ``--profile cis-level1`` runs the controls citing CIS at that level.

A CIS profile level includes the levels below it (Level 2 = Level 1 + its own items). The CIS
PostgreSQL 15, 16 and 17 benchmarks have only Level 1 recommendations, so ``cis-level2``
selects exactly what ``cis-level1`` does; it exists so a pipeline written for another
benchmark's levels reads the same.
"""

from __future__ import annotations

from pgproof.catalogue.frameworks import CIS
from pgproof.catalogue.registry import CATALOGUE

PROFILES: dict[str, tuple[str, int]] = {"cis-level1": ("cis", 1), "cis-level2": ("cis", 2)}
PROFILE_HELP = ("run only the compliance controls citing a CIS recommendation of that profile "
                "level or below: cis-level1, cis-level2 (the CIS PostgreSQL benchmarks have only "
                "Level 1 items, so both select the same controls)")


class UnknownProfile(ValueError):
    """A profile name pgproof does not know (phrased for the user)."""


def controls_of(name: str) -> list[str]:
    """Compliance control IDs, in catalogue order, citing a requirement of profile ``name``."""
    key = name.strip().lower()
    if key not in PROFILES:
        raise UnknownProfile(f"unknown profile {name!r}: pgproof knows {', '.join(PROFILES)}")
    framework, level = PROFILES[key]
    assert framework == "cis"
    wanted = {rid for rid, rec in CIS.recommendations.items() if rec.level <= level}
    return [c.id for c in CATALOGUE.values()
            if c.kind == "compliance" and wanted & set(c.frameworks.get("cis", ()))]
