"""The SSH driver: faults on self-managed PostgreSQL hosts (Patroni or plain) through testinfra.

One testinfra host per entry of ``target.hosts`` (``ssh://admin@db1``,
``local://`` ...). Settings come from ``target.tags`` (shared by all hosts; a host URL's
query may override the per-host ones, see pgproof/faults/ssh_service.py):

- ``pgdata``: data directory (default ``/var/lib/postgresql/15/main``); its
  ``postmaster.pid`` gives the postmaster pid, port and socket directory.
- ``service``: the systemd unit or supervisord program that runs the node (``patroni``,
  ``postgresql@15-main``). Without it PostgreSQL is started/stopped with pg_ctl.
- ``supervisor``: ``systemd`` (default) or ``supervisord`` (with ``supervisor_config`` and
  optionally ``supervisorctl``): who starts and stops ``service``.
- ``patroni``: ``true``/``false``; default true when ``service`` contains "patroni".
  Patroni needs ``service`` on every host (its pid is the service's main pid).
- ``patroni_config`` (default ``/etc/patroni/patroni.yml``), ``patronictl`` (default ``patronictl``).
- ``pg_bin`` (default ``/usr/lib/postgresql/15/bin``), ``pg_ctl`` / ``psql`` to override each binary.
- ``pg_ctl_log``: where ``pg_ctl start`` writes (default ``/tmp/pgproof-pg_ctl.log``).
- ``os_user`` (default ``postgres``): the OS user owning the cluster; ``db_user`` (default
  ``postgres``): the role psql uses over the local socket (peer/trust auth, as Debian ships).
- ``sudo``: ``true`` (default) runs commands through sudo; a ``?sudo=`` in a host URL wins.

Why observe on the host (psql over the local socket) and not through ``postgres.nodes``:
the answer is about *this* host (no host-to-endpoint mapping to get wrong), needs no
password, and still works when a fault has cut the client network path.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import json
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import Any

import testinfra

from pgproof.errors import UserError
from pgproof.faults import client_proxy
from pgproof.faults.base import Undo, fault
from pgproof.faults.client_proxy import ClientPathLatency
from pgproof.faults.protocol import FaultDriver
from pgproof.faults.ssh_service import HostSettings, host_settings, manager, parse_pid
from pgproof.target import Target

TRUE = {"1", "true", "yes", "on"}
NO_NETEM = ("is not implemented by the ssh driver: it would need tc/netem or iptables rules "
            "on the hosts, which pgproof does not manage")
STATE_SQL = ("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN '' "
             "ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END, "
             "(SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'), "
             "(SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
             "AND sync_state IN ('sync', 'quorum'))")
SYNC_ROLES = ("Sync Standby", "Quorum Standby")
CLEAN = "unset PGPASSWORD PGPASSFILE PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS; "


@dataclass
class NodeState:
    """What one host's PostgreSQL says about itself (``error`` when it could not say)."""

    name: str
    running: bool
    primary: bool = False
    timeline: int | None = None
    streaming: int = 0
    sync: int = 0
    error: str = ""

    def describe(self) -> str:
        if not self.running:
            return f"{self.name}=down"
        if self.error:
            return f"{self.name}=running/unanswered ({self.error})"
        return f"{self.name}={'primary' if self.primary else 'standby'}"


def _host(target: Target, url: str, sudo: bool) -> Any:
    """A testinfra host, or one sentence naming the URL it could not make sense of."""
    try:
        return testinfra.get_host(url, sudo=sudo)
    except Exception as exc:  # noqa: BLE001 - testinfra raises bare RuntimeError/ValueError
        raise UserError(f"targets.{target.name}.hosts: cannot use {url!r} ({exc}); expected a "
                        "testinfra URL such as ssh://user@host or local://") from None


class SshDriver(ClientPathLatency, FaultDriver):
    """Latency comes from ``ClientPathLatency``: a Toxiproxy on the client path, beside the load."""

    name = "ssh"
    # What a game day must know before it starts anything (the methods raise the same).
    UNSUPPORTED = {
        "partition_primary": f"partition_primary {NO_NETEM}",
        "synchronous": "the ssh driver does not switch replication modes",
        "snapshot": "the ssh driver cannot take a snapshot yet (lab: pgBackRest backup; aws: "
                    "RDS snapshot)",
    }

    def __init__(self, target: Target, start_timeout_s: float = 60) -> None:
        if not target.hosts:
            raise UserError(f"targets.{target.name}.hosts is empty: chaos.driver = \"ssh\" needs "
                            "the database hosts, e.g. hosts = [\"ssh://admin@db1\", \"ssh://admin@db2\"]")
        t = target.tags
        self.target, self.start_timeout_s = target, start_timeout_s
        self.manager = manager(target.name, t)
        self.nodes: dict[str, HostSettings] = {h.name: h for h in host_settings(target.hosts, t)}
        services = [h.service or "" for h in self.nodes.values()]
        self.patroni = t.get("patroni", str(any("patroni" in s for s in services))).lower() in TRUE
        if self.patroni and not all(services):
            raise UserError(f"target {target.name!r}: tags.patroni needs tags.service (or "
                            "?service= on every host): the service whose main pid is Patroni")
        pg_bin = t.get("pg_bin", "/usr/lib/postgresql/15/bin")
        self.pg_ctl, self.psql = t.get("pg_ctl", f"{pg_bin}/pg_ctl"), t.get("psql", f"{pg_bin}/psql")
        self.os_user, self.db_user = t.get("os_user", "postgres"), t.get("db_user", "postgres")
        self.patronictl = t.get("patronictl", "patronictl")
        sudo = t.get("sudo", "true").lower() in TRUE
        self.names = list(self.nodes)
        self.hosts = {n: _host(target, h.url, sudo) for n, h in self.nodes.items()}
        self._login: dict[str, str] = {}

    # -- commands -----------------------------------------------------------------------------
    def _root(self, node: str, cmd: str) -> Any:
        return self.hosts[node].run(cmd)

    def _pg(self, node: str, script: str) -> Any:
        """Run a shell script as the cluster's OS user (runuser when we are root)."""
        if node not in self._login:
            self._login[node] = self._root(node, "id -un").stdout.strip()
        script = CLEAN + script
        if self._login[node] != self.os_user:
            script = f"runuser -u {shlex.quote(self.os_user)} -- sh -c {shlex.quote(script)}"
        return self._root(node, script)

    def _running_guard(self, node: str) -> str:
        """Shell prelude: prints ``down`` and stops unless the pid file names a live postmaster."""
        pidfile = shlex.quote(f"{self.nodes[node].pgdata}/postmaster.pid")
        return (f"f={pidfile}; pm=$(sed -n 1p \"$f\" 2>/dev/null); "
                "if [ -z \"$pm\" ] || ! kill -0 \"$pm\" 2>/dev/null; then echo down; exit 0; fi; ")

    def state(self, node: str) -> NodeState:
        script = (self._running_guard(node) + "port=$(sed -n 4p \"$f\"); sock=$(sed -n 5p \"$f\"); "
                  f"exec {shlex.quote(self.psql)} -X -A -t -q -h \"${{sock:-localhost}}\" -p \"$port\" "
                  f"-U {shlex.quote(self.db_user)} -d postgres -c {shlex.quote(STATE_SQL)}")
        r = self._pg(node, script)
        out = r.stdout.strip()
        if out == "down":
            return NodeState(node, running=False)
        parts = out.split("|")
        if r.rc != 0 or len(parts) != 4:
            return NodeState(node, running=True, error=(r.stderr or out).strip()[:200] or f"rc {r.rc}")
        return NodeState(node, True, primary=parts[0] == "f",
                         timeline=int(parts[1], 16) if parts[1] else None,
                         streaming=int(parts[2]), sync=int(parts[3]))

    def states(self) -> list[NodeState]:
        with ThreadPoolExecutor(max_workers=min(8, len(self.names))) as pool:
            return list(pool.map(self.state, self.names))

    # -- observe ------------------------------------------------------------------------------
    def steady(self, require_sync: bool = True) -> tuple[bool, str]:
        """One primary; every other host a running standby the primary sees streaming."""
        states = self.states()
        desc = ", ".join(s.describe() for s in states)
        primaries = [s for s in states if s.running and not s.error and s.primary]
        if len(primaries) != 1:
            return False, f"{len(primaries)} primaries: {desc}"
        p, others = primaries[0], [s for s in states if s is not primaries[0]]
        desc += f"; {p.name} streams to {p.streaming} ({p.sync} synchronous)"
        if any(not s.running or s.error or s.primary for s in others) or p.streaming < len(others):
            return False, desc
        if require_sync and p.sync < 1:
            return False, desc + "; no synchronous standby"
        if require_sync and self.patroni:
            # pg_stat_replication says "sync" a moment before Patroni's /sync key names the
            # standby; stopping the leader in between leaves no candidate allowed to promote.
            members = self._members(p.name)
            if not any(m.get("Role") in SYNC_ROLES and m.get("State") == "streaming" for m in members):
                roles = ", ".join(f"{m.get('Member')}={m.get('Role')}/{m.get('State')}"
                                  for m in members) or "patronictl list answered nothing"
                return False, desc + f"; Patroni names no synchronous standby yet ({roles})"
        return True, desc

    def leader(self) -> str | None:
        primaries = [s.name for s in self.states() if s.running and not s.error and s.primary]
        return primaries[0] if len(primaries) == 1 else None  # two primaries: no single leader

    def timeline(self) -> int | None:
        lead = self.leader()
        return self.state(lead).timeline if lead else None

    def node_conninfo(self, node: str) -> dict[str, Any]:
        """A direct session to ``node`` as the app would write (the split-brain probe):
        ``postgres.nodes`` listed in the same order as ``hosts``."""
        pg = self.target.require_postgres("the split-brain probe")
        if len(pg.nodes) != len(self.names):
            raise NotImplementedError("list postgres.nodes in the same order as hosts to reach one node")
        return self.target.conninfo(pg.nodes[self.names.index(node)],
                                    user=pg.app_role or pg.user, connect_timeout=2)

    def versions(self) -> dict[str, str]:
        services = any(h.service for h in self.nodes.values())
        return {"driver": self.name, "testinfra": md.version("pytest-testinfra"),
                "manager": "patroni" if self.patroni else ("service" if services else "pg_ctl"),
                "supervisor": self.manager.kind if services else "none"}

    def active_faults(self) -> list[str]:
        return [f"{s.name}: PostgreSQL not running" for s in self.states() if not s.running]

    # -- faults -------------------------------------------------------------------------------
    def _start(self, node: str) -> None:
        """Undo of a kill/stop: start the node if it is not running, wait until it answers."""
        deadline = time.monotonic() + self.start_timeout_s
        last, h = "", self.nodes[node]
        if not self.state(node).running:
            if h.service:  # "already started" (Patroni alive, restarting PostgreSQL) is fine
                r = self._root(node, self.manager.start(h.service))
                last = (r.stderr or r.stdout).strip()
            else:  # a killed postmaster's backends may hold shared memory a moment: retry
                cmd = (f"{shlex.quote(self.pg_ctl)} start -w -t 10 -D {shlex.quote(h.pgdata)} "
                       f"-l {shlex.quote(h.pg_ctl_log)}")
                while time.monotonic() < deadline:
                    r = self._pg(node, cmd)
                    last = (r.stderr or r.stdout).strip()
                    if r.rc == 0 or self.state(node).running:
                        break
                    time.sleep(0.5)
        while time.monotonic() < deadline:
            s = self.state(node)
            if s.running and not s.error:
                return
            last = s.error or last
            time.sleep(0.5)
        raise RuntimeError(f"PostgreSQL on {node} not answering {self.start_timeout_s:.0f} s "
                           f"after start ({last[-300:]})")

    def _start_fix(self, node: str) -> str:
        h = self.nodes[node]
        how = (self.manager.fix(h.service) if h.service else
               f"{self.pg_ctl} start -D {h.pgdata} (as {self.os_user})")
        return f"on {node}: {how}"

    def _kill(self, node: str, with_patroni: bool = True) -> None:
        pids, service = "", self.nodes[node].service
        if self.patroni and with_patroni and service:
            pids = parse_pid(self._root(node, self.manager.pid(service)).stdout)
        # Both die in one command; then wait (<= 5 s) until the postmaster is really gone.
        r = self._pg(node, self._running_guard(node) + f"kill -9 \"$pm\" {pids}; "
                     "for i in $(seq 50); do kill -0 \"$pm\" 2>/dev/null || exit 0; sleep 0.1; done; exit 1")
        if r.rc != 0 or r.stdout.strip() == "down":
            raise RuntimeError(f"could not kill PostgreSQL on {node}: "
                               f"{(r.stderr or r.stdout).strip() or 'postmaster still alive'}")

    def _stop(self, node: str) -> None:
        h = self.nodes[node]
        r = (self._root(node, self.manager.stop(h.service)) if h.service else
             self._pg(node, f"{shlex.quote(self.pg_ctl)} stop -w -m fast -D {shlex.quote(h.pgdata)}"))
        if r.rc != 0:
            raise RuntimeError(f"could not stop PostgreSQL on {node}: {(r.stderr or r.stdout).strip()}")

    def _node_fault(self, node: str, act: Any, what: str,
                    undo_stack: ExitStack | None) -> AbstractContextManager[None]:
        undo = Undo(lambda: self._start(node), f"PostgreSQL on {node} is down ({what})",
                    self._start_fix(node))
        return fault(undo, lambda: act(node), undo_stack, durable=("node_down", {"node": node}))

    def undo_recorded(self, kind: str, data: dict[str, Any]) -> str:
        """Undo a durably recorded fault after the runner died (``gameday recover``); idempotent."""
        done = client_proxy.undo_recorded(kind, data)
        if done is not None:
            return done
        if kind != "node_down":
            raise ValueError(f"the ssh driver cannot undo a recorded {kind!r}")
        self._start(data["node"])  # starts only a node that is not running
        return f"PostgreSQL on {data['node']} running"

    def kill_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """SIGKILL the leader's postmaster (and Patroni, so it cannot restart it in place)."""
        return self._node_fault(self._require_leader(), self._kill, "killed", undo_stack)

    def crash_postmaster(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Only the postmaster dies: Patroni restarts it in place (plain PostgreSQL stays down)."""
        return self._node_fault(self._require_leader(), lambda n: self._kill(n, with_patroni=False),
                                "postmaster killed", undo_stack)

    def stop_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """Clean stop (systemctl / supervisorctl stop, pg_ctl stop -m fast): Patroni hands over
        its leader key."""
        return self._node_fault(self._require_leader(), self._stop, "stopped", undo_stack)

    def force_failover(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        """``patronictl failover`` to a streaming standby; a failover is not reverted."""
        if not self.patroni:
            raise NotImplementedError("force_failover needs Patroni (tags.service/patroni): plain "
                                      "PostgreSQL has no failover manager to ask")
        node = self._require_leader()
        undo = Undo(lambda: None, "nothing (a failover is not reverted)", "none needed")
        return fault(undo, lambda: self._patroni_failover(node), undo_stack)

    def _patronictl(self, node: str) -> str:
        return f"{shlex.quote(self.patronictl)} -c {shlex.quote(self.nodes[node].patroni_config)}"

    def _members(self, node: str) -> list[dict[str, Any]]:
        """Patroni's own view of the cluster (its DCS), asked on ``node``; [] when it cannot say."""
        r = self._pg(node, f"{self._patronictl(node)} list -f json")
        with contextlib.suppress(ValueError):
            got = json.loads(r.stdout or "[]") if r.rc == 0 else []
            return got if isinstance(got, list) else []
        return []

    def _patroni_failover(self, node: str) -> None:
        ctl = self._patronictl(node)
        members = self._members(node)
        standbys = sorted((m for m in members if m.get("Role") in ("Sync Standby", "Replica")
                           and m.get("State") == "streaming"), key=lambda m: m["Role"] != "Sync Standby")
        if not standbys:
            raise RuntimeError("no streaming Patroni standby to fail over to (patronictl list: "
                               f"{json.dumps(members)[:300]})")
        cand = shlex.quote(str(standbys[0]["Member"]))
        r = self._pg(node, f"{ctl} failover --candidate {cand} --force")
        if r.rc != 0:
            raise RuntimeError(f"patronictl failover refused: {(r.stderr or r.stdout).strip()}")

    def partition_primary(self, undo_stack: ExitStack | None = None) -> AbstractContextManager[None]:
        raise NotImplementedError(f"partition_primary {NO_NETEM}")

    def synchronous(self, on: bool) -> AbstractContextManager[None]:
        raise NotImplementedError("the ssh driver does not switch replication modes; run the "
                                  "synchronous scenarios or change synchronous_mode by hand")

    def _require_leader(self, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):
                lead = self.leader()
                if lead:
                    return lead
            if time.monotonic() >= deadline:
                raise RuntimeError(f"no single primary among {', '.join(self.names)}")
            time.sleep(0.5)
