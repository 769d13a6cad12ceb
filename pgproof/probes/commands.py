"""Commands a probe runs (locally or over testinfra), each with a time limit.

testinfra waits for its command with no limit: a backup tool stuck on a stalled
repository, or ssh to a host that stopped answering, would hold the run forever.
Here every subprocess-based testinfra backend (local, ssh, docker, ...) runs its
command in its own process group, killed at ``timeouts.subprocess_s`` or on an
interrupt, and the probe raises ``TimedOut`` naming the command and the limit.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
from typing import Any

from pgproof.verdict import TimedOut

FIELD = "subprocess_s"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The whole process group (a shell and what it started), then reap without waiting long."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=1)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def run(argv: str | list[str], limit_s: float, what: str, **kw: Any) -> subprocess.CompletedProcess[bytes]:
    """``subprocess.run`` with a limit: killed (whole group) at ``limit_s`` -> ``TimedOut``.

    Ctrl-C reaches the caller at once: the child is killed on the way out, not waited for."""
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, **kw)
    try:
        out, err = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        _kill(proc)
        raise TimedOut(what, limit_s, FIELD) from None
    except BaseException:
        _kill(proc)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _run_local(backend: Any, limit_s: float, what: str, command: str, *args: str) -> Any:
    """testinfra's ``BaseBackend.run_local`` with a limit (same quoting, same result type)."""
    command = backend.quote(command, *args)
    cmd = backend.encode(command)
    done = run(cmd, limit_s, what.replace("{command}", command), shell=True)
    return backend.result(done.returncode, cmd, done.stdout, done.stderr)


def host(url: str, limit_s: float, what: str = "`{command}`") -> Any:
    """A testinfra host for ``url`` whose commands are bounded by ``limit_s``.

    A fresh backend, not testinfra's cached one, so the limit stays with this caller.
    ``what`` may hold ``{command}``; the TimedOut sentence names it and ``url``.
    """
    from testinfra.backend import get_backend  # testinfra only when a target has hosts
    from testinfra.host import Host

    backend = get_backend(url)
    h = Host(backend)
    backend.set_host(h)
    # Every subprocess-based backend goes through run_local (paramiko/winrm bring their own).
    backend.run_local = functools.partial(_run_local, backend, limit_s, f"{what} on {url}")
    return h
