"""Network namespaces for the lab: create, enter (one thread), run in, and remove.

The vpc topology puts tiers in namespaces; the lab's own orchestration (health
waits, role creation) must then talk to them from inside. A network namespace
is per thread on Linux, so ``inside`` moves only the calling thread, and any
socket it opens (or child it forks) stays in that namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

CLONE_NEWNET = 0x40000000
NETNS_DIR = Path("/run/netns")


class NetnsError(Exception):
    """An ``ip`` command failed; the message carries the command and its stderr."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def add(name: str) -> None:
    """A fresh namespace with its loopback up (a stale one of the same name is replaced)."""
    remove(name)
    ip("netns", "add", name)
    ip("-n", name, "link", "set", "lo", "up")


def remove(name: str) -> None:
    """Delete the namespace; its veth ends and addresses go with it."""
    ip("netns", "del", name, check=False)


def exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside namespace ``name`` (``ip netns exec`` execs in place: same PID)."""
    return ["ip", "netns", "exec", name, *argv]


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def inside(name: str | None) -> Iterator[None]:
    """Run the block with the calling thread in namespace ``name`` (``None``: stay put)."""
    if not name:
        yield
        return
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        there = os.open(NETNS_DIR / name, os.O_RDONLY)
        try:
            _setns(there)
        finally:
            os.close(there)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)
