"""Drivers by name, imported lazily (add one without touching a central switch).

The checker's own drivers are listed here; another package (the lab's ``lab`` driver) registers
its driver under the ``pgproof.drivers`` entry-point group, so the checker never imports it."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pgproof import plugins
from pgproof.errors import UserError
from pgproof.faults.protocol import FaultDriver
from pgproof.target import Target

if TYPE_CHECKING:  # faults never import the game day at run time
    from pgproof.gameday.scenarios import Scenario

DRIVERS = {
    "aws": "pgproof.faults.aws:AwsDriver",
    "ssh": "pgproof.faults.ssh:SshDriver",
    "azure": "pgproof.faults.azure:AzureDriver",
}


def driver_class(name: str) -> Callable[[Target], FaultDriver]:
    """The class behind ``chaos.driver = name`` (imported now, not before): the checker's own
    drivers, or one another package registered under the ``pgproof.drivers`` entry point."""
    if name in DRIVERS:
        module, cls = DRIVERS[name].split(":")
        found: Callable[[Target], FaultDriver] = getattr(importlib.import_module(module), cls)
        return found
    plugged: Callable[[Target], FaultDriver] = plugins.load(plugins.DRIVERS, name)
    return plugged


def make_driver(target: Target) -> FaultDriver:
    name = target.chaos.driver
    if name not in DRIVERS:
        if name == "lab":
            plugins.require_extra("lab", f"chaos.driver = 'lab' (target {target.name!r})")
        if plugins.find(plugins.DRIVERS, name) is None:
            raise UserError(f"target {target.name!r}: no driver {name!r} is installed (drivers: "
                            f"{', '.join(sorted({*DRIVERS, *plugins.names(plugins.DRIVERS)}))})")
    return driver_class(name)(target)


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
