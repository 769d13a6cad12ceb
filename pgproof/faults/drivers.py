"""Drivers by name, imported lazily (add one without touching a central switch)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pgproof.faults.protocol import FaultDriver
from pgproof.target import Target

if TYPE_CHECKING:  # faults never import the game day at run time
    from pgproof.gameday.scenarios import Scenario

DRIVERS = {
    "lab": "pgproof.faults.lab:LabDriver",
    "aws": "pgproof.faults.aws:AwsDriver",
    "ssh": "pgproof.faults.ssh:SshDriver",
    "azure": "pgproof.faults.azure:AzureDriver",
}


def driver_class(name: str) -> Callable[[Target], FaultDriver]:
    """The class behind ``chaos.driver = name`` (imported now, not before)."""
    module, cls = DRIVERS[name].split(":")
    found: Callable[[Target], FaultDriver] = getattr(importlib.import_module(module), cls)
    return found


def make_driver(target: Target) -> FaultDriver:
    return driver_class(target.chaos.driver)(target)


def cannot(driver: FaultDriver, method: str) -> str | None:
    """Why ``driver`` cannot do ``method`` (None: it can), asked before a game day touches anything."""
    why = driver.UNSUPPORTED.get(method)
    if why is None:
        why = driver.why_not(method)  # depends on the target's configuration
    return why


def adapt(driver: FaultDriver, s: Scenario) -> Scenario:
    """The scenario as this driver really runs it (its words, e.g. no split-brain probe on RDS)."""
    return dataclasses.replace(s, **driver.SCENARIO_OVERRIDES.get(s.name, {}))


def fault_text(driver: FaultDriver | None, s: Scenario, **values: Any) -> str:
    """What ``s.fault`` does on this driver, for plans and reports."""
    text = driver.FAULT_TEXT.get(s.fault) if driver is not None else None
    if text is None:
        return f"{s.fault} {s.fault_args or ''}".rstrip()
    return str(text).format(**{**values, **s.fault_args})
