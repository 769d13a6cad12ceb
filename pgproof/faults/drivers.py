"""Drivers by name, imported lazily (add one without touching a central switch).

The checker's own drivers are listed here; another package (the lab's ``lab`` driver) registers
its driver under the ``pgproof.drivers`` entry-point group, so the checker never imports it."""

from __future__ import annotations

import dataclasses
import importlib
from typing import TYPE_CHECKING, Any

from pgproof import plugins
from pgproof.errors import UserError
from pgproof.target import Target

if TYPE_CHECKING:  # faults never import the game day at run time
    from pgproof.gameday.scenarios import Scenario

DRIVERS = {
    "aws": "pgproof.faults.aws:AwsDriver",
    "ssh": "pgproof.faults.ssh:SshDriver",
    "azure": "pgproof.faults.azure:AzureDriver",
}


def make_driver(target: Target) -> Any:
    name = target.chaos.driver
    if name in DRIVERS:
        module, cls = DRIVERS[name].split(":")
        return getattr(importlib.import_module(module), cls)(target)
    if name == "lab":
        plugins.require_extra("lab", f"chaos.driver = 'lab' (target {target.name!r})")
    if plugins.find(plugins.DRIVERS, name) is None:
        raise UserError(f"target {target.name!r}: no driver {name!r} is installed (drivers: "
                        f"{', '.join(sorted({*DRIVERS, *plugins.names(plugins.DRIVERS)}))})")
    return plugins.load(plugins.DRIVERS, name)(target)


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
