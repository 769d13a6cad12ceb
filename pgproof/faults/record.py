"""The durable fault record: what a game day changed on a target, written before it acts.

The in-process undo stack dies with the runner on ``kill -9``. So before a fault
acts, its undo (a kind plus the data a driver needs: toxic name and proxy, the
killed node, the replication mode to restore, ...) is appended to one JSON file
per target, fsync'd and atomically replaced; it is removed only when that undo
succeeded. The file also names the runner and its load processes by PID *and*
start time, so ``pgproof gameday recover`` can tell an orphan (runner gone) from
a run in progress, and never signals a recycled PID.

Where: ``<lab state_dir>/faults/<target>.json`` for lab targets, else
``$PGPROOF_FAULTS_DIR`` (default ``.pgproof/faults``) ``/<target>.json``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pgproof.target import Target

SCHEMA = 1
_ACTIVE: contextvars.ContextVar[FaultRecord | None] = contextvars.ContextVar("pgproof_fault_record",
                                                                              default=None)


class RecordExists(Exception):
    """A record for this target already exists: a run is in progress or left an orphan."""


def record_path(target: Target) -> Path:
    if target.lab is not None:
        return Path(target.lab.state_dir).resolve() / "faults" / f"{target.name}.json"
    return Path(os.environ.get("PGPROOF_FAULTS_DIR", ".pgproof/faults")).resolve() / f"{target.name}.json"


def start_time(pid: int) -> int | None:
    """Kernel start time of ``pid`` (clock ticks since boot, /proc/<pid>/stat field 22); None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def same_process(pid: int, started: int | None) -> bool:
    """``pid`` is alive and is the very process recorded (not a recycled PID)."""
    return started is not None and start_time(pid) == started


def _write_atomic(path: Path, data: dict[str, Any], exclusive: bool = False) -> None:
    """Write to a temp file, fsync, then rename (or link, when it must not exist yet); fsync the dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise RecordExists(str(path)) from None
        else:
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass
class FaultRecord:
    """One target's record: the owning run, its processes, and the faults not yet undone."""

    path: Path
    data: dict[str, Any]

    # -- lifecycle ------------------------------------------------------------------------------
    @classmethod
    def create(cls, target: Target, run_id: str, scenario: str, run_dir: Path | None) -> FaultRecord:
        """Claim the target for a run; raises RecordExists if a record is already there."""
        me = os.getpid()
        data = {"schema": SCHEMA, "target": target.name, "driver": target.chaos.driver,
                "run_id": run_id, "scenario": scenario, "run_dir": str(run_dir) if run_dir else None,
                "created_at": time.time(), "owner": {"pid": me, "start": start_time(me)},
                "processes": [], "faults": []}
        rec = cls(record_path(target), data)
        _write_atomic(rec.path, data, exclusive=True)
        return rec

    @classmethod
    def load(cls, target: Target) -> FaultRecord | None:
        return cls.load_path(record_path(target))

    @classmethod
    def load_path(cls, path: Path) -> FaultRecord | None:
        try:
            return cls(path, json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except ValueError:  # a torn file cannot happen (atomic replace); a hand-edited one can
            return cls(path, {"target": path.stem, "faults": [{"id": "?", "kind": "unreadable",
                              "what": f"{path} is not valid JSON", "fix": f"inspect and remove {path}",
                              "data": {}}], "processes": [], "owner": {}})

    def save(self) -> None:
        _write_atomic(self.path, self.data)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)

    # -- entries --------------------------------------------------------------------------------
    @property
    def faults(self) -> list[dict[str, Any]]:
        return list(self.data.get("faults", []))

    @property
    def processes(self) -> list[dict[str, Any]]:
        return list(self.data.get("processes", []))

    def add_fault(self, kind: str, data: dict[str, Any], what: str, fix: str) -> str:
        fid = uuid.uuid4().hex[:8]
        self.data["faults"].append({"id": fid, "kind": kind, "data": data, "what": what, "fix": fix,
                                    "at": time.time()})
        self.save()
        return fid

    def remove_fault(self, fid: str) -> None:
        self.data["faults"] = [f for f in self.data["faults"] if f["id"] != fid]
        self.save()

    def add_process(self, role: str, pid: int, group: bool = True) -> None:
        self.data["processes"].append({"role": role, "pid": pid, "start": start_time(pid), "group": group})
        self.save()

    def remove_process(self, pid: int) -> None:
        self.data["processes"] = [p for p in self.data["processes"] if p["pid"] != pid]
        self.save()

    def close(self) -> bool:
        """End of a run: delete the record if nothing is left to undo; True if deleted."""
        self.data["processes"] = [p for p in self.data["processes"] if same_process(p["pid"], p["start"])]
        if self.data["faults"] or self.data["processes"]:
            self.data["owner_ended_at"] = time.time()
            self.save()
            return False
        self.delete()
        return True

    # -- state ----------------------------------------------------------------------------------
    def owner_alive(self) -> bool:
        owner = self.data.get("owner") or {}
        if self.data.get("owner_ended_at"):  # the run ended with something still in place
            return False
        return bool(owner.get("pid")) and same_process(owner["pid"], owner.get("start"))

    def summary(self) -> str:
        parts = [f["what"] for f in self.faults]
        live = [p for p in self.processes if same_process(p["pid"], p["start"])]
        parts += [f"{p['role']} pid {p['pid']} still running" for p in live]
        return "; ".join(parts) or "nothing left in place"

    def notice(self) -> str:
        """One line: what is left on the target and what to run."""
        name = self.data.get("target", self.path.stem)
        run = f"game day {self.data.get('run_id', '?')}"
        if self.owner_alive():
            return (f"{run} is in progress on target {name!r} "
                    f"(pid {self.data['owner']['pid']}): {self.summary()}")
        return (f"ORPHANED FAULT on target {name!r} from {run} (its runner is gone or its undo failed): "
                f"{self.summary()}; run `pgproof gameday recover --target {name}`")


def notice(target: Target) -> str | None:
    """The one-line notice for ``target`` (None: no record, nothing in place)."""
    rec = FaultRecord.load(target)
    return rec.notice() if rec else None


def orphaned(target: Target) -> FaultRecord | None:
    rec = FaultRecord.load(target)
    return rec if rec is not None and not rec.owner_alive() else None


# -- the record faults write to while a game day runs -------------------------------------------
def active() -> FaultRecord | None:
    return _ACTIVE.get()


@contextlib.contextmanager
def activate(rec: FaultRecord) -> Iterator[FaultRecord]:
    token = _ACTIVE.set(rec)
    try:
        yield rec
    finally:
        _ACTIVE.reset(token)
