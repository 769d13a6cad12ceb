"""The lab driver: faults on local Patroni nodes, the lab's Toxiproxy and Patroni's REST API.

Registered as ``chaos.driver = "lab"`` by entry point (group ``pgproof.drivers``,
pyproject.toml): the checker's game days find it there and never import the lab."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

from pgproof import procs
from pgproof.errors import UserError
from pgproof.faults import patroni, process, record, toxiproxy
from pgproof.faults.base import Undo, fault
from pgproof.faults.protocol import FaultDriver, Snapshot
from pgproof.gameday import restore_probe as rp
from pgproof.gameday.journal import Journal
from pgproof.lab import backup, components, scratch
from pgproof.lab.state import NODES, LabState
from pgproof.target import Target

PG_PROMOTED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) UTC .*(selected new timeline ID|"
                         r"archive recovery complete)")
PATRONI_PROMOTED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) INFO: (promoted self to leader|"
                              r"cleared rewind state after becoming the leader)")


def _epoch(stamp: str) -> float:
    stamp = stamp.replace(",", ".")
    return dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC).timestamp()


class LabDriver(FaultDriver):
    name = "lab"

    def __init__(self, target: Target) -> None:
        if target.lab is None:
            raise UserError(f"target {target.name!r} has no [lab] section; chaos.driver = \"lab\" "
                            "only works on the embedded lab (--target lab)")
        state = LabState.load(target.lab.state_dir)
        if state is None:
            raise UserError(f"no lab state in {target.lab.state_dir}; run `pgproof lab up`")
        self.state = state
        self.target = target
        self.rest = [state.rest_url(n) for n in NODES]

    # -- observe ------------------------------------------------------------------------------
    def steady(self, require_sync: bool = True) -> tuple[bool, str]:
        """Patroni's view and the client's: /cluster lags a restart, so also write-check the writer."""
        ok, detail = patroni.healthy(self.rest, require_sync)
        if not ok:
            return ok, detail
        import psycopg

        pg = self.target.require_postgres("the lab driver")
        try:
            with psycopg.connect(**self.target.conninfo(user=pg.app_role or pg.user, connect_timeout=2),
                                 autocommit=True) as conn:
                writable = conn.execute("SELECT NOT pg_is_in_recovery()").fetchone() == (True,)
        except psycopg.Error as exc:
            return False, f"{detail}; writer endpoint not answering: {str(exc).strip()[:120]}"
        return (True, detail) if writable else (False, f"{detail}; writer endpoint is read-only")

    def leader(self) -> str | None:
        return patroni.leader(self.rest)

    def timeline(self) -> int | None:
        return patroni.timeline(self.rest)

    def node_conninfo(self, node: str) -> dict[str, Any]:
        """A direct session to one node, bypassing proxies: the split-brain write probe."""
        pg = self.target.require_postgres("the lab driver")
        ep = pg.writer.model_copy(update={"port": self.state.ports[f"{node}_pg"]})
        return self.target.conninfo(ep, user=pg.app_role or pg.user, connect_timeout=2)

    def promotion_times(self, node: str, since: float) -> dict[str, float | None]:
        """When the new leader was promoted, from PostgreSQL's and Patroni's own logs."""
        return {"postgres_log_at": _first_after(self.state.pg_log(node), PG_PROMOTED, since),
                "patroni_log_at": _first_after(self.state.log(node), PATRONI_PROMOTED, since)}

    def versions(self) -> dict[str, str]:
        return {"patroni": "4.1.5", "driver": self.name}

    def snapshot(self, ident: str) -> Snapshot:
        """A pgBackRest backup from the leader (incremental; full when none exists), named by
        pgBackRest (its label), not ``ident``."""
        node = self.leader()
        if not node:
            raise RuntimeError("no Patroni leader to back up")
        label = backup.snapshot_backup(self.state, node)
        return {"id": label, "kind": f"pgbackrest backup from {node}"}

    # -- faults -------------------------------------------------------------------------------
    def _restart(self, node: str) -> None:
        pid = procs.read_pid(self.state.pidfile(node))
        if pid and procs.pid_alive(pid):
            return
        # Backends of a killed postmaster exit on their own; a stale lock must not block restart.
        pm = process.postmaster_pid(self.state.data_dir(node))
        if pm:
            procs.stop_pid(pm, timeout=3)
        components.start_patroni(self.state, node)

    def kill_node(self, node: str, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Crash a node: SIGKILL Patroni and its postmaster together. Undo: start Patroni again."""
        patroni_pid = procs.read_pid(self.state.pidfile(node))
        pm = process.postmaster_pid(self.state.data_dir(node))
        undo = Undo(lambda: self._restart(node), f"lab node {node} (Patroni + PostgreSQL) is down",
                    f"pgproof lab down && pgproof lab up (or restart Patroni for {node})")
        return fault(undo, lambda: _kill(patroni_pid, pm), undo_stack, durable=("node_down", {"node": node}))

    def kill_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        node = self._require_leader()
        return self.kill_node(node, undo_stack)

    def crash_postmaster(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Only the postmaster dies: Patroni restarts it in place (no failover expected)."""
        node = self._require_leader()
        pm = process.postmaster_pid(self.state.data_dir(node))
        undo = Undo(lambda: self._restart(node), f"lab node {node} may be down", "pgproof lab up")
        return fault(undo, lambda: _kill(pm), undo_stack, durable=("node_down", {"node": node}))

    def force_failover(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Control-plane failover (Patroni /failover); the cluster stays whole, nothing to undo."""
        lead = self._require_leader()
        candidate = next(n for n in NODES if n != lead)
        undo = Undo(lambda: None, "nothing (a failover is not reverted)", "none needed")
        return fault(undo, lambda: patroni.failover(self.state.rest_url(lead), candidate), undo_stack)

    def latency(self, ms: int, jitter_ms: int = 0,
                undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        return toxiproxy.latency(self.state.toxiproxy_url, "writer", ms, jitter_ms,
                                 undo_stack=undo_stack)

    def cut_clients(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Take the client path down (writer and reader proxies); the cluster itself is untouched."""
        return toxiproxy.down(self.state.toxiproxy_url, ["writer", "reader"], undo_stack=undo_stack)

    def stall_clients(self, ms: int = 1000,
                      undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Toxiproxy ``timeout`` on the client path: data stops, connections close after ``ms``."""
        return toxiproxy.timeout(self.state.toxiproxy_url, "writer", ms, undo_stack=undo_stack)

    def partition_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Cut the leader from clients (HAProxy), its peer (replication) and etcd."""
        node = self._require_leader()
        return toxiproxy.down(self.state.toxiproxy_url,
                              [f"{node}_pg", f"{node}_repl", f"{node}_etcd"], undo_stack=undo_stack)

    @contextlib.contextmanager
    def synchronous(self, on: bool) -> Iterator[None]:
        """Run with synchronous replication on or off; always restore sync mode afterwards."""
        url = self.state.rest_url(self._require_leader())
        rec = record.active()
        fid = rec.add_fault("replication_mode", {"synchronous_mode": True},
                            "lab cluster may still run with asynchronous replication",
                            "pgproof gameday recover --target " + self.target.name) if rec else None
        patroni.patch_config(url, {"synchronous_mode": on})
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                url = self.state.rest_url(self.leader() or NODES[0])
            patroni.patch_config(url, {"synchronous_mode": True})
            if rec and fid:
                rec.remove_fault(fid)

    # -- the restore drill (restore-pitr) -----------------------------------------------------
    def restore_ready(self) -> str | None:
        """Why the restore drill cannot start yet (None: a full backup to restore from exists)."""
        st = backup.read_status(self.state)
        if st and st.ready:
            return None
        return (f"no full backup to restore from yet ({st.state + ': ' + st.detail if st else 'no status'}); "
                "wait for `pgproof lab status` to say backup ready")

    def archive_after(self, wait_s: float) -> tuple[bool, str]:
        """Switch WAL and wait until it is archived (needs a superuser: the lab's own)."""
        return rp.archive_after(components.superuser_conninfo(self.state), wait_s)

    def restore_scratch(self, j: Journal, t: dt.datetime, rec: record.FaultRecord) -> dict[str, Any]:
        """Restore to ``t`` into a scratch data directory on a free port, probe it, delete it."""
        return scratch.drill(self.target, self.state, j, t, rec)

    def undo_recorded(self, kind: str, data: dict[str, Any]) -> str:
        """Undo one durably recorded fault of this driver (after the runner died); idempotent."""
        if kind == "node_down":
            node = data["node"]
            pid = procs.read_pid(self.state.pidfile(node))
            if pid and procs.pid_alive(pid):
                return f"lab node {node}: Patroni already running (pid {pid})"
            self._restart(node)
            return f"lab node {node}: Patroni restarted"
        if kind == "replication_mode":
            url = self.state.rest_url(self._require_leader(timeout=60))
            patroni.patch_config(url, {"synchronous_mode": bool(data["synchronous_mode"])})
            return f"synchronous_mode set to {bool(data['synchronous_mode'])}"
        if kind == "restore_scratch":  # the restore drill's scratch data directory and postmaster
            return "scratch restore instance deleted: " + scratch.delete(data)
        raise ValueError(f"the lab driver cannot undo a recorded {kind!r}")

    def active_faults(self) -> list[str]:
        left = toxiproxy.active_faults(self.state.toxiproxy_url)
        for node in NODES:
            pid = procs.read_pid(self.state.pidfile(node))
            if not (pid and procs.pid_alive(pid)):
                left.append(f"lab node {node}: Patroni not running")
        return left

    def _require_leader(self, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            lead = self.leader()
            if lead:
                return lead
            time.sleep(0.2)
        raise RuntimeError("the lab cluster has no leader")


def _kill(*pids: int | None) -> None:
    if not process.sigkill(*pids):
        raise RuntimeError(f"nothing to kill: none of {pids} is running")


def _first_after(log: Path, pattern: re.Pattern[str], since: float) -> float | None:
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in lines:
        m = pattern.match(line)
        if m:
            t = _epoch(m.group(1))
            if t >= since:
                return t
    return None
