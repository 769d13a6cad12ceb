"""What a game day asks of a fault driver (lab, aws, azure, ssh): the ``FaultDriver`` protocol.

A driver subclasses ``FaultDriver`` explicitly, so mypy checks every signature
against this one. The required members have no body. The optional capabilities
have a body here that gives the "cannot" answer (no snapshot, no promotion
times, load straight to the database, nothing else to refuse), so a caller asks
the driver, never ``hasattr`` or ``driver.name``. A driver that cannot do a
fault or a capability names it in ``UNSUPPORTED`` with the reason; ``cannot``
in ``pgproof.faults.drivers`` asks that before a game day touches anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, TypedDict

# The faults a scenario may name (``Scenario.fault``): each is a method below.
FaultName = Literal["kill_primary", "crash_postmaster", "force_failover", "latency",
                    "partition_primary"]
FAULTS: tuple[FaultName, ...] = ("kill_primary", "crash_postmaster", "force_failover", "latency",
                                 "partition_primary")


class Snapshot(TypedDict):
    """``chaos.snapshot_before``: what was taken (``took_s`` is added by the caller)."""

    id: str
    kind: str


class FaultDriver(Protocol):
    """One target's faults and the observations a game day needs around them."""

    name: str
    # method or capability -> why this driver cannot do it (the method raises the same)
    UNSUPPORTED: ClassVar[Mapping[str, str]] = {}
    # fault -> what it really does here (the plan and the journal say this; str.format'ed)
    FAULT_TEXT: ClassVar[Mapping[str, str]] = {}
    STEADY_TEXT: ClassVar[str | None] = None  # None: "leader, streaming standby, writable writer"
    # scenario name -> fields replaced on it (its words on this driver, e.g. no split-brain probe)
    SCENARIO_OVERRIDES: ClassVar[Mapping[str, Mapping[str, Any]]] = {}

    # -- observe (required) --------------------------------------------------------------
    def steady(self, require_sync: bool = True) -> tuple[bool, str]:
        """Steady state holds, and in what words (the journal shows them)."""
        ...

    def leader(self) -> str | None: ...

    def timeline(self) -> int | None: ...

    def versions(self) -> dict[str, str]: ...

    def active_faults(self) -> list[str]:
        """What this driver sees still in place (``gameday recover`` and the safety check)."""
        ...

    def node_conninfo(self, node: str) -> dict[str, Any]:
        """A direct session to one node (the split-brain probe); raises when there is none."""
        ...

    # -- faults (required; an unsupported one is in UNSUPPORTED and raises) ------------------
    def kill_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]: ...

    def crash_postmaster(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]: ...

    def force_failover(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]: ...

    def latency(self, ms: int, jitter_ms: int = 0,
                undo_stack: ExitStack | None = None) -> AbstractContextManager[None]: ...

    def partition_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]: ...

    def synchronous(self, on: bool) -> AbstractContextManager[None]:
        """Run with synchronous replication on or off; restored afterwards."""
        ...

    def undo_recorded(self, kind: str, data: dict[str, Any]) -> str:
        """Undo one durably recorded fault of this driver (after the runner died); idempotent."""
        ...

    # -- optional capabilities: the bodies here are the "cannot" answers ---------------------
    def why_not(self, method: str) -> str | None:
        """A refusal that depends on the target's configuration (None: nothing against it)."""
        return None

    def app_path(self, fault_name: str, app: dict[str, Any],
                 log_dir: Path | None = None) -> AbstractContextManager[dict[str, Any]]:
        """The conninfo the load and the clock use; straight to the database unless overridden."""
        return contextlib.nullcontext(app)

    def promotion_times(self, node: str, since: float) -> dict[str, Any] | None:
        """When ``node`` was promoted, by the driver's own sources (None: it cannot tell)."""
        return None

    def snapshot(self, ident: str) -> Snapshot:
        """A snapshot to return to, taken before the fault (``chaos.snapshot_before``); ``ident``
        names it where the driver chooses names (letters, digits, hyphens, <= 63)."""
        raise NotImplementedError(self.UNSUPPORTED.get(
            "snapshot", f"the {self.name} driver cannot take a snapshot"))


def inject(driver: FaultDriver, fault: FaultName, undo_stack: ExitStack | None,
           args: Mapping[str, Any]) -> AbstractContextManager[None]:
    """The scenario's fault on this driver (its undo registered on ``undo_stack``)."""
    if fault == "kill_primary":
        return driver.kill_primary(undo_stack=undo_stack)
    if fault == "crash_postmaster":
        return driver.crash_postmaster(undo_stack=undo_stack)
    if fault == "force_failover":
        return driver.force_failover(undo_stack=undo_stack)
    if fault == "latency":
        return driver.latency(int(args["ms"]), int(args.get("jitter_ms", 0)), undo_stack=undo_stack)
    return driver.partition_primary(undo_stack=undo_stack)
