"""`lab up` failing part-way names the component, shows its log, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pgproof.lab.state import LabState


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pgproof.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


@pytest.mark.slow
def test_component_that_never_gets_healthy_is_named_and_torn_down(tmp_path: Path) -> None:
    bindir = Path(tempfile.mkdtemp(prefix="pgproof-fake-"))
    bindir.chmod(0o755)  # Patroni runs as postgres: it must be able to execute the fake
    fake = bindir / "patroni"
    fake.write_text("#!/bin/sh\necho 'FATAL: simulated patroni failure' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = {**os.environ, "PGPROOF_PATRONI": str(fake)}
    state_dir = tmp_path / "lab"
    r = _run(["lab", "up", "--lab-dir", str(state_dir), "--no-aws", "--timeout", "20"], env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "node1: patroni exited during bootstrap" in r.stderr
    assert "simulated patroni failure" in r.stderr  # the log tail is shown
    state = LabState.load(state_dir)
    assert state is not None
    for pidfile in state.pids.glob("*.pid"):
        raise AssertionError(f"pid file left behind: {pidfile}")
    assert not state.run_dir.exists()


@pytest.mark.slow
def test_missing_binary_names_the_debian_package(tmp_path: Path) -> None:
    env = {**os.environ, "PGPROOF_PATRONI": str(tmp_path / "nope")}
    r = _run(["lab", "up", "--lab-dir", str(tmp_path / "lab"), "--no-aws"], env)
    assert r.returncode == 2
    assert "patroni" in r.stderr and "make setup" in r.stderr


def test_external_toxiproxy_and_a_second_lab_side_by_side(tmp_path: Path, lab: LabState) -> None:
    """TOXIPROXY_URL: the lab creates its proxies there, and removes them on down.

    It runs while the session's lab is up: two labs side by side, no shared port.
    """
    import requests

    from pgproof import procs
    from pgproof.lab import lifecycle

    (port,) = procs.free_ports(1)
    server = subprocess.Popen([sys.executable, "-m", "pgproof.proxy.server", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        procs.wait_until(lambda: requests.get(url + "/version", timeout=1).ok, 10, "toxiproxy", "up")
        os.environ["TOXIPROXY_URL"] = url
        try:
            state = lifecycle.up(tmp_path / "lab", timeout=60, with_aws=False)
        finally:
            del os.environ["TOXIPROXY_URL"]
        try:
            assert state.external_toxiproxy and state.toxiproxy_url == url
            assert not set(state.ports.values()) & set(lab.ports.values())
            assert {"writer", "node1_etcd", "node2_repl"} <= set(requests.get(url + "/proxies", timeout=3).json())
            toxiproxy_row = next(s for s in lifecycle.status(tmp_path / "lab") if s.name == "toxiproxy")
            assert toxiproxy_row.healthy and "external" in toxiproxy_row.detail
        finally:
            lifecycle.down(tmp_path / "lab")
        assert requests.get(url + "/proxies", timeout=3).json() == {}
    finally:
        server.terminate()
        server.wait(10)
