"""``pgproof lab up | down | status``: build the lab from nothing, tear it down to nothing."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from pgproof import procs
from pgproof.faults.record import FaultRecord
from pgproof.gameday.recover import stop_process
from pgproof.lab import (
    aws_twin,
    azure_lab,
    backup,
    bastion,
    configs,
    live_mutations,
    pki,
    supervised,
    topology,
)
from pgproof.lab import components as c
from pgproof.lab.state import NODES, PORT_NAMES, LabState, default_state_dir
from pgproof.target import LAB_TARGETS

# Stop order: clients first, the consensus store last.
VPC_ONLY = ("bastion_root", "bastion_ns", "sshd", "mgmt", "s3_endpoint")
COMPONENTS = (*VPC_ONLY[:4], "backup", "health", "pgbouncer", "haproxy", *NODES, "supervisord",
              "toxiproxy",
              "etcd", "s3_endpoint", "s3front", "moto", "azure-arm", "azurite")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def up(state_dir: Path | None = None, timeout: float = 60, with_aws: bool = True,
       progress: Progress = _quiet, topology_name: str = "loopback",
       with_azure: bool = False, supervisor: str = "none") -> LabState:
    """Bring the whole lab up; on any failure tear down what was started and re-raise.

    ``topology_name`` "vpc" puts the tiers in their own network namespaces (lab/topology.py);
    ``supervisor`` "supervisord" runs the nodes as its programs (lab/supervised.py, lab-ssh).
    """
    _check_supervisor(supervisor, topology_name)
    if topology_name not in topology.TOPOLOGIES:
        raise procs.ComponentError("lab", f"unknown topology {topology_name!r}; "
                                   f"known: {', '.join(topology.TOPOLOGIES)}")
    if topology_name == "vpc" and not procs.running_as_root():
        raise procs.ComponentError("lab", "the vpc topology makes network namespaces: run as root")
    state_dir = (state_dir or default_state_dir()).resolve()
    existing = LabState.load(state_dir)
    if existing and any(procs.pid_alive(p) for p in _recorded_pids(existing).values()):
        raise procs.ComponentError("lab", f"already running from {state_dir}; run `pgproof lab down` first")
    if existing:
        down(state_dir)
    c.check_prerequisites()
    for attempt in (1, 2):
        state = LabState.new(state_dir)
        state.topology = topology_name
        state.supervisor = "" if supervisor == "none" else supervisor
        try:
            _up(state, timeout, with_aws, progress, with_azure)
            return state
        except procs.ComponentError as exc:
            progress("lab: start failed, tearing down what was started")
            down(state_dir)
            # Ports are picked free but bound later: another process may win the race.
            if attempt == 1 and "address already in use" in str(exc).lower():
                progress(f"lab: {exc.component} lost a port race; retrying with fresh ports")
                continue
            raise
        except BaseException:
            progress("lab: start failed, tearing down what was started")
            down(state_dir)
            raise
    raise AssertionError("unreachable")


def _check_supervisor(supervisor: str, topology_name: str) -> None:
    if supervisor not in supervised.SUPERVISORS:
        raise procs.ComponentError("lab", f"unknown supervisor {supervisor!r}; "
                                   f"known: {', '.join(supervised.SUPERVISORS)}")
    if supervisor == "none":
        return
    if topology_name != "loopback":
        raise procs.ComponentError("lab", "--supervisor runs on the loopback topology only")
    if not procs.running_as_root():  # lab-ssh's driver reads each node as the postgres OS user
        raise procs.ComponentError("lab", "--supervisor runs the lab-ssh target's nodes as the "
                                   "postgres OS user: run as root")


def _up(state: LabState, timeout: float, with_aws: bool, progress: Progress,
        with_azure: bool = False) -> None:
    t0 = time.monotonic()
    state.state_dir.mkdir(parents=True, exist_ok=True)
    state.state_dir.chmod(0o700)  # secrets, keys, twin stores, logs: the lab's owner only
    shutil.rmtree(state.run_dir, ignore_errors=True)
    state.run_dir.mkdir(parents=True)
    state.run_dir.chmod(0o755)
    for d in (state.logs, state.pids):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    state.ports = dict(zip(PORT_NAMES, procs.free_ports(len(PORT_NAMES)), strict=True))
    state.save()
    vpc = topology.is_vpc(state)
    if vpc:
        state.vpc = topology.plan(state)
        state.save()  # before anything exists: `down` must find what a crash leaves
        topology.create(state)
        progress(f"lab: vpc namespaces {state.vpc['db_ns']}, {state.vpc['app_ns']} "
                 f"({state.vpc['subnet']}) ({time.monotonic() - t0:.1f} s)")
    pw = state.make_secrets()
    ca = pki.make_ca(state.tls)
    pki.issue_server_cert(ca, state.tls, hosts=("127.0.0.1", "localhost",
                                                *([state.vpc["db_ip"]] if vpc else [])))
    live_mutations.app_source(state)
    state.netns = c.make_outside_netns(state)
    state.save()
    sshd = bastion.start(state) if vpc else None  # needs nothing of the DB tier: start it early
    if vpc:  # the DB tier's control APIs on the runner's loopback, as a cloud's API would be
        c.start_mgmt_bridge(state)
    with ThreadPoolExecutor(max_workers=2) as pool:
        aws: Future[tuple[dict[str, object], dict[str, object]]] | None = None
        if with_aws:
            moto_pid = c.start_moto(state)
            aws = pool.submit(_provision_aws, state, moto_pid, timeout)
        azure: Future[dict[str, object]] | None = None
        if with_azure:
            azure = pool.submit(azure_lab.start, state.state_dir, state.tls, (
                state.ports["azure_arm"], state.ports["azure_kv"], state.ports["azurite"]),
                timeout, state.logs)
        with topology.db(state):  # vpc: this thread talks to the DB tier from inside its subnet
            bouncer, health = _db_tier(state, pw, timeout, progress, t0)
        with topology.app(state):
            procs.wait_until(lambda: c.http_ok(c.health_url(state), 2), timeout, "health app",
                             "healthy (through pgbouncer)", state.log("health"), health)
        procs.wait_until(lambda: procs.pid_alive(bouncer), 0.1, "pgbouncer", "running",
                         state.log("pgbouncer"), bouncer)
        if sshd is not None:
            procs.wait_until(lambda: bastion.answers(state), timeout, "bastion",
                             "answering SSH on 127.0.0.1:" + str(state.ports["ssh_bridge"]),
                             state.log("sshd"), sshd)
        progress(f"lab: postgres cluster, pgbouncer, health app up ({time.monotonic() - t0:.1f} s)")
        if aws is not None:
            state.aws, state.aws_aurora = aws.result()
        if azure is not None:
            state.azure = azure.result()
            progress(f"lab: Azure twin provisioned ({time.monotonic() - t0:.1f} s)")
    state.save()
    backup.start(state)  # the first full backup runs in the background; `lab status` says when
    # lab: its nodes are also judged as hosts (local://), the machine-wide facts waived.
    state.target_file.write_text(configs.target_toml(state, hosts=configs.db_hosts(state),
                                                     waivers=True))
    if state.aws:  # lab-rds: the same lab through its AWS twin, bridged by lab/aws_bridge.py
        state.target_file.with_name(LAB_TARGETS["lab-rds"]).write_text(configs.target_toml(state, "aws"))
    if state.aws_aurora:  # lab-aurora: the same lab through the twin's Aurora cluster
        state.target_file.with_name(LAB_TARGETS["lab-aurora"]).write_text(
            configs.target_toml(state, "aws", cloud="aws-aurora"))
    if state.azure:
        state.azure_target_file.write_text(configs.target_toml(state, "azure", cloud="azure"))
    if state.supervisor:  # lab-ssh: the ssh driver on the supervised nodes
        state.target_file.with_name(LAB_TARGETS["lab-ssh"]).write_text(configs.target_toml(
            state, "ssh", cloud="none", tags=supervised.ssh_tags(state, c.PATRONI.parent / "patronictl"),
            hosts=supervised.ssh_hosts(state)))
    progress(f"lab: up in {time.monotonic() - t0:.1f} s; target written to {state.target_file}")


def _db_tier(state: LabState, pw: dict[str, str], timeout: float, progress: Progress,
             t0: float) -> tuple[int, int]:
    """etcd, Toxiproxy, Patroni, HAProxy, roles, PgBouncer, the health app; their PIDs."""
    etcd_pid = c.start_etcd(state)
    tox_pid = c.start_toxiproxy(state)
    c.wait_etcd(state, etcd_pid, timeout)
    c.populate_toxiproxy(state, tox_pid, timeout)
    progress(f"lab: etcd and toxiproxy up ({time.monotonic() - t0:.1f} s)")
    if state.supervisor:
        c.start_supervisor(state, timeout)
    pids = {}
    for node in NODES:
        c.prepare_node(state, node, pw)
        pids[node] = c.start_patroni(state, node)
    c.start_haproxy(state)
    _wait_leader(state, pids, timeout)
    procs.wait_until(lambda: c.writer_accepts_sql(state), timeout, "haproxy",
                     "routing writes to the leader", state.log("haproxy"))
    c.create_roles(state, pw)
    progress(f"lab: leader elected, roles created ({time.monotonic() - t0:.1f} s)")
    bouncer = c.start_pgbouncer(state, pw)
    health = c.start_health(state)
    procs.wait_until(lambda: c.sync_standby_streaming(state), timeout, "patroni",
                     "streaming to a synchronous standby", state.log("node2"))
    return bouncer, health


def _wait_leader(state: LabState, pids: dict[str, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if c.leader(state):
            return
        for node, pid in pids.items():
            if not procs.pid_alive(pid):
                raise procs.ComponentError(node, "patroni exited during bootstrap", state.log(node))
        time.sleep(0.1)
    raise procs.ComponentError("patroni", f"no leader within {timeout:.0f} s", state.log(NODES[0]))


def _provision_aws(state: LabState, pid: int, timeout: float) -> tuple[dict[str, object], dict[str, object]]:
    url = f"http://127.0.0.1:{state.ports['moto']}"
    procs.wait_until(lambda: c.http_ok(url + "/moto-api/"), timeout, "moto", "answering",
                     state.log("moto"), pid)
    return aws_twin.provision_lab(state, url)


# -- down ----------------------------------------------------------------------------------

def _recorded_pids(state: LabState) -> dict[str, int]:
    pids = {}
    for name in COMPONENTS:
        pid = procs.read_pid(state.pidfile(name))
        if pid:
            pids[name] = pid
    return pids


def _postmaster_pids(state: LabState) -> list[int]:
    out = []
    for node in NODES:
        pid = procs.read_pid(state.data_dir(node) / "postmaster.pid")
        if pid and procs.pid_alive(pid):
            out.append(pid)
    return out


def _backup_status(state: LabState, alive: bool) -> tuple[bool, str]:
    st = backup.read_status(state)
    if st is None:
        return False, "not started"
    if not alive:
        return False, f"scheduler not running (last: {st.state}, {st.detail})"
    when = time.strftime("%H:%M:%S", time.localtime(st.at))
    return st.state in ("ready", "running", "starting"), f"{st.state}: {st.detail} ({when})"


def _strays(run_dir: Path) -> list[int]:
    """Processes whose command line names this lab's run directory (orphans after a crash)."""
    found, me = [], os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError):
            if str(run_dir).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


def down(state_dir: Path | None = None) -> list[str]:
    """Stop exactly this lab's processes (recorded PIDs, postmasters, strays) and remove its data."""
    state_dir = (state_dir or default_state_dir()).resolve()
    state = LabState.load(state_dir)
    if state is None:
        return []
    stopped: list[str] = _drop_orphaned_faults(state_dir)
    pids = {n: p for n, p in _recorded_pids(state).items() if procs.pid_alive(p)}
    postmasters = _postmaster_pids(state)
    # The data is about to be deleted: nodes need no graceful shutdown, only a sure one.
    jobs = [(pid, 4.0, signal.SIGKILL if name in NODES else signal.SIGTERM)
            for name, pid in pids.items()]
    jobs += [(pid, 2.0, signal.SIGQUIT) for pid in postmasters]
    with ThreadPoolExecutor(max_workers=len(jobs) or 1) as pool:
        list(pool.map(lambda j: procs.stop_pid(j[0], timeout=j[1], sig=j[2]), jobs))
    stopped += [n for n in COMPONENTS if n in pids]
    stopped += [f"postmaster {pid}" for pid in postmasters]
    for pid in _strays(state.run_dir):
        procs.stop_pid(pid, timeout=2, sig=signal.SIGKILL)
        stopped.append(f"stray pid {pid}")
    for name in (*COMPONENTS, *live_mutations.EXPOSE):
        state.pidfile(name).unlink(missing_ok=True)
    if state.netns:
        c.remove_netns(state.netns)
    if topology.is_vpc(state):
        topology.remove(state)  # namespaces (their veths go with them) and the root's route
    if state.external_toxiproxy:
        c.remove_proxies(state)
    shutil.rmtree(state.run_dir, ignore_errors=True)
    for name in LAB_TARGETS.values():
        state.target_file.with_name(name).unlink(missing_ok=True)
    state.azure_target_file.unlink(missing_ok=True)
    return stopped


# -- status --------------------------------------------------------------------------------

@dataclass
class ComponentStatus:
    name: str
    port: int | None
    healthy: bool
    detail: str


def _drop_orphaned_faults(state_dir: Path) -> list[str]:
    """Faults of a dead game day die with the lab; its orphaned load must not outlive it."""
    done = []
    for path in sorted((state_dir / "faults").glob("*.json")):
        rec = FaultRecord.load_path(path)
        if rec is None or rec.owner_alive():
            continue
        done += [stop_process(p) for p in rec.processes]
        rec.delete()
        done.append(f"fault record {path.name}")
    return done


def status(state_dir: Path | None = None) -> list[ComponentStatus]:
    state = LabState.load((state_dir or default_state_dir()).resolve())
    if state is None:
        return []
    pids = _recorded_pids(state)
    p = state.ports
    try:
        with topology.db(state):
            members = {m["name"]: m for m in c.cluster(state).get("members", [])}
    except OSError:  # vpc namespace gone (crash): every component reads "not running"
        members = {}
    out = []
    for name in COMPONENTS:
        if (name in VPC_ONLY and not topology.is_vpc(state)) or (
                name == "supervisord" and not state.supervisor):
            continue
        alive = name in pids and procs.pid_alive(pids[name])
        port = {"health": p.get("health"), "pgbouncer": p.get("pgbouncer"),
                "haproxy": p.get("haproxy_writer"), "toxiproxy": p.get("toxiproxy"),
                "etcd": p.get("etcd_client"), "moto": p.get("moto"), "sshd": p.get("ssh_bridge"),
                "bastion_root": p.get("ssh_bridge"), "mgmt": p.get("toxiproxy"), "s3front": p.get("s3_tls"),
                "s3_endpoint": p.get("s3_tls"), "azure-arm": p.get("azure_arm"),
                "azurite": p.get("azurite")}.get(name) or p.get(f"{name}_pg")
        detail = "running" if alive else "not running"
        if name in NODES and name in members:
            m = members[name]
            lag = m.get("lag", 0)
            detail = f"{m.get('role')} {m.get('state')}" + (f", lag {lag}" if m.get("role") != "leader" else "")
            alive = alive and m.get("state") in ("running", "streaming")
        elif name == "backup":
            alive, detail = _backup_status(state, alive)
        elif name in ("moto", "s3front", "s3_endpoint") and not state.aws and name not in pids:
            alive, detail = True, "not started (--no-aws)"
        elif name in ("azure-arm", "azurite") and not state.azure and name not in pids:
            alive, detail = True, "not started (--cloud azure starts it)"
        elif name == "toxiproxy" and state.external_toxiproxy:
            alive, detail = c.http_ok(state.toxiproxy_url + "/version"), f"external {state.toxiproxy_url}"
        elif name == "health" and alive:
            try:
                with topology.app(state):
                    r = requests.get(c.health_url(state), timeout=3)
                alive, detail = r.status_code == 200, r.json().get("status", "?")
            except (requests.RequestException, ValueError, OSError) as exc:
                alive, detail = False, str(exc)
        out.append(ComponentStatus(name, port, alive, detail))
    return out
