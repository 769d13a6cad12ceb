"""Last stage: `lab down` stops every process of the lab and frees every port."""

from __future__ import annotations

from pathlib import Path

from pgproof.lab import lifecycle, procs
from pgproof.lab.state import LabState


def test_down_leaves_no_process_and_no_listening_port(lab: LabState, lab_dir: Path) -> None:
    pids = {f.stem: procs.read_pid(f) for f in lab.pids.glob("*.pid")}
    assert pids, "the lab recorded no pids"
    stopped = lifecycle.down(lab_dir)
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
    assert not any(s.healthy for s in lifecycle.status(lab_dir))
