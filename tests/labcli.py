"""What the tests that drive the real CLI against the session lab share."""

from __future__ import annotations

import os
import time
import tomllib
from typing import Any

import tomli_w

from pgproof.lab.driver import LabDriver
from pgproof.lab.state import LabState
from pgproof.target import Target


def lab_cli_env(lab: LabState) -> dict[str, str]:
    """The CLI's environment for ``--target lab``: this lab only, no inherited PG*/AWS_*/AZURE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "AWS_", "AZURE_"))}
    env.update(PGPROOF_LAB_TARGET=str(lab.target_file), PGPROOF_CONFIG="/nonexistent",
               PYTHONUNBUFFERED="1")
    return env


def wait_steady(target: Target, timeout: float = 120) -> None:
    """Until the lab is in steady state again (a previous game day's heal may still run)."""
    driver = LabDriver(target)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if driver.steady()[0]:
            return
        time.sleep(0.5)
    raise AssertionError(f"lab not in steady state after {timeout:.0f} s: {driver.steady()[1]}")


def gameday_rc_ok(rc: int, verdicts: list[dict[str, str]]) -> bool:
    """A game day's exit code is its verdict; 2 (error) is accepted only where every error is a
    relative control (HA-4, CH-LAT) that pgproof refused to judge because the host got busier
    than during the baseline (a loaded 2-core CI machine), never for the failover or the ledger."""
    if rc in (0, 1):
        return True
    errors = [v for v in verdicts if v["verdict"] == "error"]
    return rc == 2 and bool(errors) and all(
        v["id"] in ("HA-4", "CH-LAT") and "host got busier" in v["evidence"] for v in errors)


def lab_target_as(lab: LabState, name: str, thresholds: dict[str, Any] | None = None,
                  waivers: list[dict[str, Any]] | None = None,
                  **sections: dict[str, Any]) -> str:
    """The lab's generated target as ``[targets.<name>]`` of a pgproof.toml, with thresholds
    and waivers added to its own and extra sections (``notify={...}``): parsed and written as
    TOML, so whatever tables `lab up` writes (``[[waivers]]``, ``[thresholds]``) stay valid."""
    doc = tomllib.loads(lab.target_file.read_text())
    doc["thresholds"] = {**doc.get("thresholds", {}), **(thresholds or {})}
    doc["waivers"] = [*doc.get("waivers", []), *(waivers or [])]
    doc.update(sections)
    return tomli_w.dumps({"targets": {name: doc}})


def lab_waived(lab: LabState) -> set[str]:
    """Controls the lab's own target waives (machine-wide facts such as FIPS and the disk)."""
    doc = tomllib.loads(lab.target_file.read_text())
    return {w.get("control") or str(w["check"]).split("[")[1].rsplit("-", 1)[0]
            for w in doc.get("waivers", [])}
