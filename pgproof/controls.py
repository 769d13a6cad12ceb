"""Compatibility view of the catalogue: ``CONTROLS`` / ``SCENARIOS`` as ID -> title.

The catalogue (``pgproof.catalogue``) is the source; this module keeps the
older imports working (``from pgproof.controls import CONTROLS``).
"""

from __future__ import annotations

from pgproof.catalogue.registry import CATALOGUE, of_kind, title

CONTROLS: dict[str, str] = {cid: CATALOGUE[cid].title for cid in of_kind("compliance")}
SCENARIOS: dict[str, str] = {cid: CATALOGUE[cid].title for cid in of_kind("gameday")}
ALL = {**CONTROLS, **SCENARIOS}

__all__ = ["ALL", "CONTROLS", "SCENARIOS", "title"]
