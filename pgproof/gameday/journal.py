"""A game day as data: phases, events with timestamps, measurements, verdicts (journal.json)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pgproof import fsio
from pgproof.gameday.measurements import Measurements


@dataclass
class Journal:
    run_id: str
    target: str
    scenario: str
    description: str
    driver: str
    parameters: dict[str, Any]
    schema: int = 1
    versions: dict[str, str] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    steady_state_before: dict[str, Any] | None = None
    steady_state_after: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    fault: dict[str, Any] = field(default_factory=dict)
    measurements: Measurements = field(default_factory=lambda: Measurements())
    series: list[dict[str, Any]] = field(default_factory=list)
    verdicts: list[dict[str, str]] = field(default_factory=list)
    verdict: str = "error"
    manual_fix: str | None = None
    snapshot: dict[str, Any] | None = None  # chaos.snapshot_before: {"id", "kind", "took_s"}
    interrupted: dict[str, Any] | None = None  # {"at", "by": SIGINT|SIGTERM, "phase"} of the first one
    echo: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def event(self, phase: str, event: str, detail: str = "") -> float:
        t = time.time()
        self.events.append({"t": t, "phase": phase, "event": event, "detail": detail})
        if self.echo:
            rel = t - self.started_at
            self.echo(f"[{rel:6.1f}s] {phase:<13} {event}" + (f": {detail}" if detail else ""))
        return t

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("echo", None)
        return d

    def save(self, out_dir: Path) -> Path:
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / "journal.json"
        fsio.write_text(path, json.dumps(self.to_dict(), indent=2, default=str))
        return path

    def save_stub(self, out_dir: Path, forget: Callable[[], None]) -> Path:
        """The first save, before anything is injected; if the disk refuses it (full, read-only),
        ``forget`` the run's fault record and drop the run directory: nothing is left behind."""
        try:
            return self.save(out_dir)
        except BaseException:
            forget()
            shutil.rmtree(out_dir, ignore_errors=True)
            raise
