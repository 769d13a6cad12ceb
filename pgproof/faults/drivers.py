"""Drivers by name, imported lazily (add one without touching a central switch)."""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from pgproof.target import Target

if TYPE_CHECKING:  # faults never import the game day at run time
    from pgproof.gameday.scenarios import Scenario

DRIVERS = {
    "lab": "pgproof.faults.lab:LabDriver",
    "aws": "pgproof.faults.aws:AwsDriver",
    "ssh": "pgproof.faults.ssh:SshDriver",
    "azure": "pgproof.faults.azure:AzureDriver",
}


def make_driver(target: Target) -> Any:
    module, cls = DRIVERS[target.chaos.driver].split(":")
    return getattr(importlib.import_module(module), cls)(target)


def cannot(driver: Any, method: str) -> str | None:
    """Why ``driver`` cannot do ``method`` (None: it can), asked before a game day touches anything."""
    if not callable(getattr(driver, method, None)):
        return f"the {driver.name} driver has no {method}"
    why = getattr(driver, "UNSUPPORTED", {}).get(method)
    if why is None and callable(getattr(driver, "why_not", None)):
        why = driver.why_not(method)  # depends on the target's configuration
    return why


def adapt(driver: Any, s: Scenario) -> Scenario:
    """The scenario as this driver really runs it (its words, e.g. no split-brain probe on RDS)."""
    return dataclasses.replace(s, **getattr(driver, "SCENARIO_OVERRIDES", {}).get(s.name, {}))


def fault_text(driver: Any, s: Scenario, **values: Any) -> str:
    """What ``s.fault`` does on this driver, for plans and reports."""
    text = getattr(driver, "FAULT_TEXT", {}).get(s.fault)
    if text is None:
        return f"{s.fault} {s.fault_args or ''}".rstrip()
    return str(text).format(**{**values, **s.fault_args})
