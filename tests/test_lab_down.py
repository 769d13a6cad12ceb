"""Last stage: `lab down` stops every process of the lab and frees every port."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from pgproof import procs
from pgproof.lab import lifecycle
from pgproof.lab.state import LabState

pytestmark = pytest.mark.stage("teardown")


def test_down_leaves_no_process_and_no_listening_port(lab: LabState, lab_dir: Path) -> None:
    pids = {f.stem: procs.read_pid(f) for f in lab.pids.glob("*.pid")}
    assert pids, "the lab recorded no pids"
    # A crash first: Patroni dies hard and leaves its postmaster (and backends) orphaned.
    postmaster = procs.read_pid(lab.data_dir("node1") / "postmaster.pid")
    os.kill(pids["node1"], signal.SIGKILL)  # type: ignore[arg-type]
    os.kill(pids["etcd"], signal.SIGKILL)  # type: ignore[arg-type]
    assert postmaster and procs.pid_alive(postmaster)
    stopped = lifecycle.down(lab_dir)
    assert not procs.pid_alive(postmaster), "orphaned postmaster survived down"
    assert stopped
    alive = {name: pid for name, pid in pids.items() if pid and procs.pid_alive(pid)}
    assert not alive, f"still running after down: {alive}"
    listening = {name: port for name, port in lab.ports.items() if procs.port_open("127.0.0.1", port)}
    assert not listening, f"ports still open after down: {listening}"
    assert not lifecycle._strays(lab.run_dir)
    assert not lab.run_dir.exists()
    if lab.netns:
        import subprocess

        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert lab.netns not in listed, "outside network namespace left behind"
    assert not [s for s in lifecycle.status(lab_dir) if s.healthy and "not started" not in s.detail]
