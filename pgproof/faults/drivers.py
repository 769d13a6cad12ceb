"""Drivers by name, imported lazily (add one without touching a central switch)."""

from __future__ import annotations

import importlib
from typing import Any

from pgproof.target import Target

DRIVERS = {
    "lab": "pgproof.faults.lab:LabDriver",
    "aws": "pgproof.faults.aws:AwsDriver",
    "ssh": "pgproof.faults.ssh:SshDriver",
}


def make_driver(target: Target) -> Any:
    module, cls = DRIVERS[target.chaos.driver].split(":")
    return getattr(importlib.import_module(module), cls)(target)


def cannot(driver: Any, method: str) -> str | None:
    """Why ``driver`` cannot do ``method`` (None: it can), asked before a game day touches anything."""
    if not callable(getattr(driver, method, None)):
        return f"the {driver.name} driver has no {method}"
    return getattr(driver, "UNSUPPORTED", {}).get(method)
