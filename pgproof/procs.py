"""Start, track and stop lab processes: one log file and one PID file each."""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SERVICE_USER = "postgres"


class ComponentError(Exception):
    """A lab component failed; the message names it and carries its log tail."""

    def __init__(self, component: str, problem: str, log: Path | None = None) -> None:
        self.component = component
        tail = ""
        if log is not None:
            tail = "\n--- last lines of " + str(log) + " ---\n" + log_tail(log)
        super().__init__(f"{component}: {problem}{tail}")


def log_tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def running_as_root() -> bool:
    return os.geteuid() == 0


def service_ids() -> tuple[int, int]:
    """uid/gid database processes run as: ``postgres`` when we are root, else ourselves."""
    if not running_as_root():
        return os.getuid(), os.getgid()
    pw = pwd.getpwnam(SERVICE_USER)
    return pw.pw_uid, pw.pw_gid


def as_service_user(argv: Sequence[str], umask: str = "077") -> list[str]:
    """Wrap ``argv`` so it runs as the postgres user with ``umask`` (077, CIS 2.1: what the
    account creates is private); ``sh`` and setpriv exec in place: same PID, the program's
    command line."""
    private = ["sh", "-c", f'umask {umask} && exec "$@"', "sh"]
    if not running_as_root():
        return [*private, *argv]
    return [*private, "setpriv", f"--reuid={SERVICE_USER}", f"--regid={SERVICE_USER}",
            "--init-groups", "--", *argv]


def chown_service(*paths: Path) -> None:
    if running_as_root():
        uid, gid = service_ids()
        for p in paths:
            os.chown(p, uid, gid)


def clean_env(home: str | None = None, **extra: str) -> dict[str, str]:
    """A minimal environment: no PG* or AWS* variables leak into children."""
    env = {
        "PATH": f"{PG_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "HOME": home or (pwd.getpwnam(SERVICE_USER).pw_dir if running_as_root() else os.environ.get("HOME", "/tmp")),
    }
    env.update(extra)
    return env


def spawn(argv: Sequence[str], log: Path, pidfile: Path, env: dict[str, str], cwd: Path | None = None) -> int:
    """Start ``argv`` detached in its own session; record its PID.

    A daemon starts in ``/`` unless told otherwise, as daemons do: the caller's directory
    may be one the process's user cannot enter (a game day run from ``/root`` or a
    pytest tmp dir restarted Patroni as ``postgres``, whose multiprocessing then failed
    to ``chdir`` there and the node never came back).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as fh:
        proc = subprocess.Popen(
            list(argv), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd or "/", start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_pid(pid: int, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Signal the process group of ``pid``; SIGKILL what is left after ``timeout``."""
    signals: tuple[Callable[[int], None], ...] = (lambda s: os.killpg(pid, s), lambda s: os.kill(pid, s))
    for target in signals:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            target(sig)
            break
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.05)
    if pid_alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.05)


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(check: Callable[[], bool], timeout: float, component: str, what: str,
               log: Path | None = None, pid: int | None = None, interval: float = 0.1) -> None:
    """Poll ``check`` until true; fail naming the component (and its early death)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        if pid is not None and not pid_alive(pid):
            raise ComponentError(component, f"exited before it was {what}", log)
        time.sleep(interval)
    raise ComponentError(component, f"not {what} within {timeout:.0f} s", log)


def free_ports(count: int, low: int = 10000, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct free TCP ports above ``low`` (kernel-chosen, so parallel runs differ)."""
    ports: list[int] = []
    socks: list[socket.socket] = []
    try:
        while len(ports) < count:
            s = socket.socket()
            s.bind((host, 0))
            port = s.getsockname()[1]
            socks.append(s)
            if port > low and port not in ports:
                ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports
