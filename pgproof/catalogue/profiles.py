"""Selection by benchmark profile: ``--profile cis-level1`` runs the controls citing CIS at that level.

A CIS profile level includes the levels below it (Level 2 = Level 1 + its own items). The CIS
PostgreSQL 15, 16 and 17 benchmarks have only Level 1 recommendations, so ``cis-level2``
selects exactly what ``cis-level1`` does; it exists so a pipeline written for another
benchmark's levels reads the same.

A profile may also raise thresholds, never lower them (``PROFILE_THRESHOLDS``). CIS PostgreSQL 17
v1.0.0's 6.9 asks for TLS 1.3 as the minimum while the default spec (and CIS 15/16's 6.9, and 17
v1.1.0's) asks TLS 1.2+: so under ``--profile cis-level1`` TLS-1 judges ``tls_min_version =
TLSv1.3`` on every layer (handshakes, ssl_min_protocol_version, the RDS parameter group, the
Azure server parameter) and a plain ``pgproof check`` keeps its verdicts. A threshold, not a
second control: the same judges at a stricter minimum, so no layer can pass 1.3 while another
fails it.
"""

from __future__ import annotations

from pgproof.catalogue.frameworks import CIS
from pgproof.catalogue.registry import CATALOGUE

PROFILES: dict[str, tuple[str, int]] = {"cis-level1": ("cis", 1), "cis-level2": ("cis", 2)}
PROFILE_HELP = ("run only the compliance controls citing a CIS recommendation of that profile "
                "level or below: cis-level1, cis-level2 (the CIS PostgreSQL benchmarks have only "
                "Level 1 items, so both select the same controls)")


# What each profile raises: Thresholds field -> the profile's value (a target asking more keeps it).
PROFILE_THRESHOLDS: dict[str, dict[str, str]] = {
    "cis-level1": {"tls_min_version": "TLSv1.3"}, "cis-level2": {"tls_min_version": "TLSv1.3"}}
TLS_ORDER = ("TLSv1.2", "TLSv1.3")


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


def raised_thresholds(name: str, current: dict[str, str]) -> dict[str, str]:
    """The thresholds profile ``name`` raises above ``current`` (field -> value; empty when it
    raises none). Only the TLS minimum is raised today; a target already at 1.3 keeps it."""
    out = {}
    for key, value in PROFILE_THRESHOLDS.get(name.strip().lower(), {}).items():
        assert key == "tls_min_version"
        if TLS_ORDER.index(value) > TLS_ORDER.index(current[key]):
            out[key] = value
    return out
